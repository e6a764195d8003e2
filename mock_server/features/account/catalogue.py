"""``GET /api/v3/models``: the model catalogue, built from the contract's registry."""

from __future__ import annotations

from typing import Any

from ....contracts import list_models, request_schema

__all__ = ["model_catalogue"]


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
