"""The reference's routes: ``/docs``, ``/openapi.yaml``, ``/openapi.json``, ``/schemas/``.

The raw documents are the files the package ships, byte for byte (JSON converted
from the YAML). Their ``$ref``s name ``schemas/<file>.json`` relative to the
document, so the body schemas are served under ``/schemas/`` for tools that
fetch the document by URL.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from ....contracts import Catalogue, did_you_mean, load_openapi, schema_names
from ...errors import ApiError
from ...http.documents import yaml_document
from .page import CONTENT_SECURITY_POLICY, render_models, render_reference

__all__ = ["reference_routes"]


@cache
def _openapi_json() -> bytes:
    return json.dumps(load_openapi("openapi.yaml"), indent=2).encode()


def reference_routes(catalogue: Catalogue) -> list[BaseRoute]:
    """The routes; they need no key, like the hosted docs."""
    page: list[str] = []  # made on first use: the catalogue is fixed per server

    async def docs(request: Request) -> Response:
        if not page:
            page.append(
                render_reference().replace(
                    "</body></html>", render_models(catalogue) + "</body></html>"
                )
            )
        return HTMLResponse(
            page[0],
            headers={
                "content-security-policy": CONTENT_SECURITY_POLICY,
                "x-content-type-options": "nosniff",
                "referrer-policy": "no-referrer",
            },
        )

    async def openapi_yaml(request: Request) -> Response:
        return yaml_document("openapi.yaml", request.headers.get("accept", ""))

    async def openapi_json(request: Request) -> Response:
        return Response(_openapi_json(), media_type="application/json")

    async def schema(request: Request) -> Response:
        name = request.path_params["name"]
        names = schema_names()
        if name not in names:
            close = did_you_mean(name, names)
            hint = f" Did you mean {close!r}?" if close else ""
            raise ApiError(404, f"No schema {name!r}.{hint}")
        text = (
            resources.files("wavespeed_mock.contracts")
            .joinpath("schemas")
            .joinpath(name)
            .read_text(encoding="utf-8")
        )
        return Response(text, media_type="application/json")

    return [
        Route("/docs", docs, methods=["GET"]),
        Route("/openapi.yaml", openapi_yaml, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/schemas/{name}", schema, methods=["GET"]),
    ]
