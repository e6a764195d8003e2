"""``GET /api/v3/models``: the server's catalogue in WaveSpeed's live entry shape."""

from __future__ import annotations

from typing import Any

from ....contracts import Catalogue

__all__ = ["model_catalogue"]


def model_catalogue(catalogue: Catalogue, base_url: str) -> list[dict[str, Any]]:
    """``GET /api/v3/models``' items: each entry as the catalogue states it, the
    mock's own ``x-mock`` data left out, ``server`` pointing at this server.

    An entry without a ``sort_order`` gets its place in the catalogue. The
    JSONata ``formula`` is served where the entry has one and never evaluated:
    prices come from the entry's ``x-mock.price`` rule. [inferred]
    """
    return [spec.served(base_url, order) for order, spec in enumerate(catalogue)]
