"""The account's HTTP routes: balance, history, delete, bill, models, price, ledger.

Thin: each reads its body through the contract, asks :class:`Account` or the
service, and answers the envelope.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ....contracts import UnknownModelError, iter_errors
from ...core.keys import key_id
from ...core.service import MockService
from ...errors import ApiError, bad_request, bad_request_message
from ...http.auth import Authenticator
from ...http.bodies import read_json_object
from ...http.responses import envelope
from ...settings import CONTROL_PREFIX
from .catalogue import model_catalogue
from .history import billing_page, history_page
from .ledger import Account

__all__ = ["AccountHandlers", "account_routes"]


_INTEGER_PARAMS = ("page", "page_size")


def _history_query(request: Request) -> dict[str, Any]:
    """The history filters of a GET's query string, as the POST body would hold them.

    Raises:
        ApiError: 400 naming the parameter that breaks the contract's schema.
    """
    params: dict[str, Any] = dict(request.query_params)
    for name in _INTEGER_PARAMS:
        text = params.get(name)
        if text is not None:
            if not re.fullmatch(r"-?\d{1,9}", text):
                raise bad_request(f"$.{name}", f"expected an integer, got {text!r:.40}")
            params[name] = int(text)
    problems = list(iter_errors("history.request.json", params))
    if problems:
        raise ApiError(400, bad_request_message(problems))
    return params


class AccountHandlers:
    """The account's handlers, bound to the account and the service: each takes
    the request and the checked API key (``Authenticator.routes`` supplies it),
    so a test can call one without a server."""

    def __init__(self, account: Account, service: MockService) -> None:
        self.account = account
        self.service = service

    async def balance(self, request: Request, api_key: str) -> Response:
        key = key_id(api_key)
        return envelope({"balance": self.account.balance(key), "currency": "USD"})

    async def history(self, request: Request, api_key: str) -> Response:
        key = key_id(api_key)
        body = await read_json_object(request, "history.request.json", optional=True)
        return envelope(history_page(self.service, key, body))

    async def history_by_query(self, request: Request, api_key: str) -> Response:
        # GET /api/v3/predictions with the same filters as query parameters: the
        # docs show a bare GET listing recent predictions and call the filters
        # "query parameters" [documented: what-are-predictions, D-HIST].
        key = key_id(api_key)
        return envelope(history_page(self.service, key, _history_query(request)))

    async def billings(self, request: Request, api_key: str) -> Response:
        key = key_id(api_key)
        body = await read_json_object(
            request, "billings-search.request.json", optional=True
        )
        return envelope(billing_page(self.account, self.service, key, body))

    async def delete(self, request: Request, api_key: str) -> Response:
        key = key_id(api_key)
        body = await read_json_object(request, "delete.request.json")
        count = self.service.delete_for(key, body["ids"])
        return envelope({"deleted_count": count})

    async def models(self, request: Request, api_key: str) -> Response:
        return envelope(model_catalogue(self.service.catalogue, self.service.base_url))

    async def price(self, request: Request, api_key: str) -> Response:
        body = await read_json_object(request, "price.request.json")
        try:
            model = self.service.catalogue.get(str(body["model_id"]))
        except UnknownModelError as exc:
            raise ApiError(404, str(exc)) from None
        inputs = body.get("inputs")
        amount = model.price_for(inputs if isinstance(inputs, dict) else None)
        return envelope(
            {
                "model_id": model.id,
                "price": amount,
                "discounted_price": amount,
                "unit_price": amount,
                "currency": "USD",
            }
        )

    async def ledger(self, request: Request) -> Response:
        # Keys are stored hashed: each shows masked, with its id to match on;
        # a key whose predictions were all pruned keeps only its id.
        hints = self.service.key_hints()
        items = [
            {
                "api_key": hints[key],
                "key_id": key,
                "spent": self.account.spent(key),
                "balance": self.account.balance(key),
            }
            for key in sorted(hints)
        ]
        return envelope({"items": items})

    def routes(self, auth: Authenticator) -> list[BaseRoute]:
        """The API's account routes (authenticated by ``auth``) and ``/_mock/ledger``."""
        return [
            *auth.routes(
                [
                    ("/api/v3/balance", self.balance, "GET"),
                    ("/api/v3/account/balance", self.balance, "GET"),
                    ("/api/v3/predictions", self.history, "POST"),
                    ("/api/v3/predictions", self.history_by_query, "GET"),
                    ("/api/v3/predictions/delete", self.delete, "POST"),
                    ("/api/v3/billings/search", self.billings, "POST"),
                    ("/api/v3/models", self.models, "GET"),
                    ("/api/v3/model/price", self.price, "POST"),
                    ("/api/v3/model/pricing", self.price, "POST"),
                ]
            ),
            Route(f"{CONTROL_PREFIX}/ledger", self.ledger, methods=["GET"]),
        ]


def account_routes(
    account: Account, service: MockService, auth: Authenticator
) -> list[BaseRoute]:
    """The account routes of the API, and ``/_mock/ledger`` of the control API."""
    return AccountHandlers(account, service).routes(auth)
