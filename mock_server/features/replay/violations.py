"""Recorded bodies checked against the contract: where a recording and it disagree.

A violation in a recording of the real API is evidence that the contract is
wrong (or too strict); it is listed in the cassette, never refused.
"""

from __future__ import annotations

from ....contracts import iter_request_errors, iter_response_errors
from ....contracts.errors import WavespeedMockError
from .cassette import Exchange

__all__ = ["exchange_violations"]


def exchange_violations(
    exchange: Exchange, where: str, *, model: str | None = None
) -> list[dict[str, str]]:
    """Every way ``exchange`` breaks the contract, as cassette entries.

    ``model`` is given for a submit: then a body the upstream accepted (HTTP 200)
    is also checked against the model's input schema.
    """
    found: list[dict[str, str]] = []
    if exchange.body is not None:
        for error in iter_response_errors(
            exchange.method, exchange.path, exchange.status, exchange.body
        ):
            found.append(_entry(f"{where}.response", error))
    if model is not None and exchange.status == 200:
        try:
            for error in iter_request_errors(model, exchange.request_body):
                found.append(_entry(f"{where}.request", error))
        except WavespeedMockError as exc:  # a model the contract does not know
            found.append(
                {"where": f"{where}.request", "path": "$", "message": str(exc)}
            )
    return found


def _entry(where: str, error: WavespeedMockError) -> dict[str, str]:
    return {
        "where": where,
        "path": str(getattr(error, "path", "$")),
        "message": str(getattr(error, "message", error)),
    }
