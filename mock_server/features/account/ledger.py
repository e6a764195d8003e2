"""The account: spend and balance, prediction history and deletion, catalogue, prices.

Every prediction is charged at creation, per API key, at the model registry's
price ($0.15 per started 5 s clip, minimum 5 s, for Ovi). A prediction that
ends ``failed``, ``cancelled`` or ``timeout`` is refunded; refunds are worked
out when a balance is read, from the predictions' statuses, so nothing has to
happen when a task ends. The charges are kept in ``data_dir/ledger.sqlite3``.

With ``settings.starting_balance`` set, each key starts with that many dollars
and a submit that the balance cannot pay is refused with HTTP 403 (the docs'
"Forbidden (account issue)" is the best fit [inferred]). Unset (None), spending
is unlimited and the balance shows :data:`UNLIMITED_BALANCE` minus the spend.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ....contracts import (
    ModelSpec,
    UnknownModelError,
    get_model,
    iter_errors,
    list_models,
    request_schema,
)
from ...core.sqlite_writer import SQLiteWriter
from ...errors import ApiError
from ...http.auth import require_api_key
from ...http.bodies import read_json_body
from ...http.responses import envelope

if TYPE_CHECKING:
    from ...core.prediction import Prediction
    from ...core.service import MockService

__all__ = [
    "REFUNDED_STATUSES",
    "RETENTION_S",
    "UNLIMITED_BALANCE",
    "Account",
    "Ledger",
    "install",
    "model_catalogue",
]

UNLIMITED_BALANCE = 1_000_000.0
"""What an unlimited account's balance starts from (minus what it spent). [inferred]"""
REFUNDED_STATUSES = frozenset({"failed", "cancelled", "timeout"})
"""Refunded automatically [documented: D-REFUND, "within 3 hours"; here at once]."""
RETENTION_S = 7 * 24 * 3600
"""History shows the past 7 days [documented: D-HIST]."""
MICROS = 1_000_000
BODY_LIMIT = 64 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    prediction_id TEXT PRIMARY KEY,
    api_key TEXT NOT NULL,
    model TEXT NOT NULL,
    amount_micros INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS credits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    api_key TEXT NOT NULL,
    amount_micros INTEGER NOT NULL,
    created_at REAL NOT NULL
);
"""


class Ledger:
    """Charges per prediction and credits per key, in SQLite and mirrored in memory.

    Amounts are integer micro-dollars, so sums never drift.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._charges: dict[str, dict[str, int]] = {}
        self._credits: dict[str, int] = {}
        # Writes leave the submit path and commit in batches (see sqlite_writer).
        self._db = SQLiteWriter(path, _SCHEMA)
        for pid, key, amount in self._db.read(
            "SELECT prediction_id, api_key, amount_micros FROM charges"
        ):
            self._charges.setdefault(key, {})[pid] = int(amount)
        for key, amount in self._db.read(
            "SELECT api_key, SUM(amount_micros) FROM credits GROUP BY api_key"
        ):
            self._credits[key] = int(amount)

    def close(self) -> None:
        self._db.close()

    def charge(self, p: Prediction, amount_usd: float) -> None:
        micros = round(amount_usd * MICROS)
        with self._lock:
            self._charges.setdefault(p.api_key, {})[p.id] = micros
        self._db.write(
            "INSERT OR REPLACE INTO charges VALUES (?, ?, ?, ?, ?)",
            (p.id, p.api_key, p.model, micros, p.created_at),
        )

    def credit(self, api_key: str, amount_usd: float, *, at: float) -> None:
        """Add money to a key (a top-up; negative takes it away)."""
        micros = round(amount_usd * MICROS)
        with self._lock:
            self._credits[api_key] = self._credits.get(api_key, 0) + micros
        self._db.write(
            "INSERT INTO credits (api_key, amount_micros, created_at) VALUES (?, ?, ?)",
            (api_key, micros, at),
        )

    def charges(self, api_key: str) -> dict[str, int]:
        """Prediction id to charge in micro-dollars."""
        with self._lock:
            return dict(self._charges.get(api_key, {}))

    def credits(self, api_key: str) -> int:
        return self._credits.get(api_key, 0)

    def clear(self) -> None:
        with self._lock:
            self._charges.clear()
            self._credits.clear()
        self._db.write("DELETE FROM charges")
        self._db.write("DELETE FROM credits")


class Account:
    """Balances, the admission check and the charge, for one service."""

    def __init__(self, service: MockService, ledger: Ledger) -> None:
        self.service = service
        self.ledger = ledger
        start = getattr(service.settings, "starting_balance", None)
        self.starting_balance: float | None = None if start is None else float(start)

    def refunded(self, p: Prediction) -> bool:
        status = self.service.status(p)
        if status == "deleted":
            return p.failure_code != 0
        return status in REFUNDED_STATUSES

    def spent(self, api_key: str) -> float:
        """Net spend: charges of predictions the store still has, less refunds.

        A reset forgets predictions and, with them, their charges. [inferred]
        """
        store = self.service.store
        total = 0
        for pid, micros in self.ledger.charges(api_key).items():
            p = store.get(pid)
            if p is not None and not self.refunded(p):
                total += micros
        return total / MICROS

    def balance(self, api_key: str) -> float:
        start = (
            UNLIMITED_BALANCE
            if self.starting_balance is None
            else self.starting_balance
        )
        return round(
            start + self.ledger.credits(api_key) / MICROS - self.spent(api_key), 6
        )

    def check_admission(self, model: ModelSpec, api_key: str) -> None:
        """Refuse a submit the balance cannot pay (only with a starting balance)."""
        if self.starting_balance is None:
            return
        price = model.price_for()
        balance = self.balance(api_key)
        if balance < price:
            raise ApiError(
                403,
                f"Insufficient balance: the account has ${balance:.2f} and "
                f"{model.id} costs ${price:.2f} per run; top up to continue.",
            )

    def on_created(self, p: Prediction) -> None:
        self.ledger.charge(p, get_model(p.model).price_for())


# -- the catalogue -------------------------------------------------------------------


def model_catalogue(base_url: str) -> list[dict[str, Any]]:
    """``GET /api/v3/models``' items, built from the model registry.

    ``api_schema.api_schemas[0].request_schema`` is the strict request schema (as
    the real API promises it, without the mock's conveniences) with its
    references inlined. No JSONata ``formula`` is given. [inferred]
    """
    items = []
    for order, model in enumerate(list_models()):
        schema = request_schema(model.id, strict=True, inlined=True)
        properties = schema.get("properties", {})
        items.append(
            {
                "model_id": model.id,
                "name": model.name,
                "description": model.description,
                "type": model.type,
                "base_price": model.price_for(),
                "sort_order": order,
                "api_schema": {
                    "api_schemas": [
                        {
                            "type": "model_run",
                            "method": "POST",
                            "server": base_url,
                            "api_path": model.path,
                            "request_schema": {
                                "type": "object",
                                "properties": properties,
                                "required": list(schema.get("required", [])),
                                "x-order-properties": list(properties),
                            },
                        }
                    ]
                },
            }
        )
    return items


# -- request helpers -------------------------------------------------------------------


async def _json_object(
    request: Request, schema: str, *, optional: bool = False
) -> dict[str, Any]:
    """The JSON object body, checked against ``schema`` (``{}`` if optional, empty)."""
    if optional:
        length = request.headers.get("content-length")
        if length == "0" or (
            length is None and "transfer-encoding" not in request.headers
        ):
            return {}
    body = await read_json_body(request, BODY_LIMIT)
    if not isinstance(body, dict):
        raise ApiError(
            400, f"Invalid request body: $: expected a JSON object, got {body!r:.60}"
        )
    problems = list(iter_errors(schema, body))
    if problems:
        raise ApiError(
            400,
            "Invalid request body: "
            + "; ".join(f"{e.path}: {e.message}" for e in problems[:5]),
        )
    return body


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def _parse_time(text: str) -> float:
    """Unix seconds of an RFC 3339 time (any fractional digits; naive means UTC)."""
    normal = _FRACTION.sub(
        r"\1", text.strip().replace("Z", "+00:00").replace("z", "+00:00"), 1
    )
    moment = datetime.fromisoformat(normal)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


# -- installing ------------------------------------------------------------------------


def install(service: MockService) -> list[BaseRoute]:
    """Register the ledger hooks on ``service``; return the account routes.

    Sets ``service.account`` (:class:`Account`). Reads ``starting_balance``
    (None: unlimited) with ``getattr``, so older settings without it work.
    """
    settings = service.settings
    account = Account(service, Ledger(service.data_dir / "ledger.sqlite3"))
    service.account = account
    service.close_listeners.append(account.ledger.close)
    service.reset_listeners.append(account.ledger.clear)
    service.admission_checks.append(account.check_admission)
    service.created_listeners.append(account.on_created)
    accepted = frozenset(settings.api_keys)

    async def balance(request: Request) -> Response:
        api_key = require_api_key(request, accepted)
        return envelope({"balance": account.balance(api_key), "currency": "USD"})

    async def history(request: Request) -> Response:
        api_key = require_api_key(request, accepted)
        body = await _json_object(request, "history.request.json", optional=True)
        page = int(body.get("page") or 1)
        page_size = int(body.get("page_size") or 100)
        now = service.clock.now()
        after = body.get("created_after")
        before = body.get("created_before")
        earliest = max(now - RETENTION_S, _parse_time(after) if after else -1.0)
        latest = _parse_time(before) if before else None
        model = body.get("model")
        status = body.get("status")
        found = []
        # Newest first; the store lists oldest first, so reversing keeps ties
        # (a frozen virtual clock) newest first too.
        for p in sorted(
            reversed(service.store.all()), key=lambda p: p.created_at, reverse=True
        ):
            if p.api_key != api_key or p.created_at < earliest:
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
        return envelope({"page": page, "total": len(found), "items": items})

    async def delete(request: Request) -> Response:
        api_key = require_api_key(request, accepted)
        body = await _json_object(request, "delete.request.json")
        count = 0
        # Unknown ids and other keys' predictions are skipped, not errors. [inferred]
        for pid in dict.fromkeys(body["ids"]):
            p = service.store.get(pid)
            if p is None or p.api_key != api_key or p.forced_status == "deleted":
                continue
            service.store.update(p, forced_status="deleted")
            (service.outputs_dir / p.output_name).unlink(missing_ok=True)
            count += 1
        return envelope({"deleted_count": count})

    async def models(request: Request) -> Response:
        require_api_key(request, accepted)
        return envelope(model_catalogue(service.base_url))

    async def price(request: Request) -> Response:
        require_api_key(request, accepted)
        body = await _json_object(request, "price.request.json")
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

    return [
        Route("/api/v3/balance", balance, methods=["GET"]),
        Route("/api/v3/predictions", history, methods=["POST"]),
        Route("/api/v3/predictions/delete", delete, methods=["POST"]),
        Route("/api/v3/models", models, methods=["GET"]),
        Route("/api/v3/model/price", price, methods=["POST"]),
        Route("/api/v3/model/pricing", price, methods=["POST"]),
    ]
