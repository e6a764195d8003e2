"""The account's queries: a key's history and its bill, filtered and paged.

The routes (``routes.py``) read and check the request; these answer it from the
service and the ledger, and are tested without a server.
"""

from __future__ import annotations

from typing import Any

from ...core.prediction import format_timestamp, parse_timestamp
from ...core.service import MockService
from .ledger import Account, BillingRow

__all__ = ["RETENTION_S", "billing_page", "history_page"]

RETENTION_S = 7 * 24 * 3600
"""History shows the past 7 days [documented: D-HIST]."""


def history_page(
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
        reversed(service.predictions()), key=lambda p: p.created_at, reverse=True
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


def billing_page(
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
