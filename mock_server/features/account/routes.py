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

from ....contracts import UnknownModelError, get_model, iter_errors
from ...core.keys import key_id
from ...core.prediction import format_timestamp, parse_timestamp
from ...core.service import MockService
from ...errors import ApiError, bad_request, bad_request_message
from ...http.auth import Authenticator
from ...http.bodies import read_json_object
from ...http.responses import envelope
from ...settings import CONTROL_PREFIX
from .catalogue import model_catalogue
from .ledger import Account, BillingRow

__all__ = ["RETENTION_S", "account_routes"]

RETENTION_S = 7 * 24 * 3600
"""History shows the past 7 days [documented: D-HIST]."""


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


def _history_page(
    service: MockService, key: str, body: dict[str, Any]
) -> dict[str, Any]:
    """One page of the predictions of the key whose id is ``key``, newest first,
    filtered as ``body`` asks."""
    page = int(body.get("page") or 1)
    page_size = int(body.get("page_size") or 100)
    now = service.clock.now()
    after = body.get("created_after")
    before = body.get("created_before")
    earliest = max(now - RETENTION_S, parse_timestamp(after) if after else -1.0)
    latest = parse_timestamp(before) if before else None
    model = body.get("model")
    status = body.get("status")
    found = []
    # Newest first; the store lists oldest first, so reversing keeps ties
    # (a frozen virtual clock) newest first too.
    for p in sorted(
        reversed(service.store.all()), key=lambda p: p.created_at, reverse=True
    ):
        if p.key_id != key or p.created_at < earliest:
            continue
        if latest is not None and p.created_at >= latest:
            continue
        if model and p.model != model:
            continue
        current = service.status(p)
        # Deleted predictions leave the history unless asked for. [inferred]
        if (status and current != status) or (not status and current == "deleted"):
            continue
        found.append(p)
    start = (page - 1) * page_size
    items = [service.view(p) for p in found[start : start + page_size]]
    return {"page": page, "total": len(found), "items": items}


def _billing_page(
    account: Account, service: MockService, key: str, body: dict[str, Any]
) -> dict[str, Any]:
    """One page of the bill of the key whose id is ``key``, filtered as ``body`` asks."""
    page = int(body.get("page") or 1)
    page_size = int(body.get("page_size") or 20)
    start_time, end_time = body.get("start_time"), body.get("end_time")
    earliest = parse_timestamp(start_time) if start_time else None
    latest = parse_timestamp(end_time) if end_time else None
    wanted_ids = set(body.get("prediction_uuids") or ())
    wanted_key = body.get("access_key_uuid")

    def wanted(row: BillingRow) -> bool:
        return (
            (not body.get("billing_type") or row.billing_type == body["billing_type"])
            and (not wanted_ids or row.prediction.id in wanted_ids)
            and (
                not body.get("model_uuid") or row.prediction.model == body["model_uuid"]
            )
            and (earliest is None or row.created_at >= earliest)
            and (latest is None or row.created_at < latest)
        )

    rows = [] if wanted_key and wanted_key != key else account.billing_rows(key)
    found = [row for row in rows if wanted(row)]
    if body.get("sort") != "created_at ASC":  # newest first by default [inferred]
        found.reverse()
    start = (page - 1) * page_size
    items = [
        {
            "uuid": row.uuid,
            "billing_type": row.billing_type,
            "price": row.price,
            "created_at": format_timestamp(row.created_at),
            "prediction": {
                "uuid": row.prediction.id,
                "model_uuid": row.prediction.model,
                "status": service.status(row.prediction),
            },
        }
        for row in found[start : start + page_size]
    ]
    return {"page": page, "has_more": start + page_size < len(found), "items": items}


def account_routes(
    account: Account, service: MockService, auth: Authenticator
) -> list[BaseRoute]:
    """The account routes of the API, and ``/_mock/ledger`` of the control API."""

    async def balance(request: Request) -> Response:
        key = key_id(auth(request))
        return envelope({"balance": account.balance(key), "currency": "USD"})

    async def history(request: Request) -> Response:
        key = key_id(auth(request))
        body = await read_json_object(request, "history.request.json", optional=True)
        return envelope(_history_page(service, key, body))

    async def history_by_query(request: Request) -> Response:
        # GET /api/v3/predictions with the same filters as query parameters: the
        # docs show a bare GET listing recent predictions and call the filters
        # "query parameters" [documented: what-are-predictions, D-HIST].
        key = key_id(auth(request))
        return envelope(_history_page(service, key, _history_query(request)))

    async def billings(request: Request) -> Response:
        key = key_id(auth(request))
        body = await read_json_object(
            request, "billings-search.request.json", optional=True
        )
        return envelope(_billing_page(account, service, key, body))

    async def delete(request: Request) -> Response:
        key = key_id(auth(request))
        body = await read_json_object(request, "delete.request.json")
        count = 0
        # Unknown ids and other keys' predictions are skipped, not errors. [inferred]
        for pid in dict.fromkeys(body["ids"]):
            p = service.store.get(pid)
            if p is None or p.key_id != key or p.forced_status == "deleted":
                continue
            service.store.update(p, forced_status="deleted")
            (service.outputs_dir / p.output_name).unlink(missing_ok=True)
            count += 1
        return envelope({"deleted_count": count})

    async def models(request: Request) -> Response:
        auth(request)
        return envelope(model_catalogue(service.base_url))

    async def price(request: Request) -> Response:
        auth(request)
        body = await read_json_object(request, "price.request.json")
        try:
            model = get_model(str(body["model_id"]))
        except UnknownModelError as exc:
            raise ApiError(404, str(exc)) from None
        amount = model.price_for()
        return envelope(
            {
                "model_id": model.id,
                "price": amount,
                "discounted_price": amount,
                "unit_price": amount,
                "currency": "USD",
            }
        )

    async def ledger(request: Request) -> Response:
        # Keys are stored hashed: each shows masked, with its id to match on;
        # a key whose predictions were all pruned keeps only its id.
        hints = {p.key_id: p.key_hint for p in service.store.all()}
        keys = sorted(service.store.key_ids())
        items = [
            {
                "api_key": hints.get(key, f"(pruned) {key[:8]}"),
                "key_id": key,
                "spent": account.spent(key),
                "balance": account.balance(key),
            }
            for key in keys
        ]
        return envelope({"items": items})

    return [
        Route("/api/v3/balance", balance, methods=["GET"]),
        Route("/api/v3/account/balance", balance, methods=["GET"]),
        Route("/api/v3/predictions", history, methods=["POST"]),
        Route("/api/v3/predictions", history_by_query, methods=["GET"]),
        Route("/api/v3/predictions/delete", delete, methods=["POST"]),
        Route("/api/v3/billings/search", billings, methods=["POST"]),
        Route("/api/v3/models", models, methods=["GET"]),
        Route("/api/v3/model/price", price, methods=["POST"]),
        Route("/api/v3/model/pricing", price, methods=["POST"]),
        Route(f"{CONTROL_PREFIX}/ledger", ledger, methods=["GET"]),
    ]
