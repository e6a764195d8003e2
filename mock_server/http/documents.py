"""The contract's YAML documents as answers: typed for a tool or for a browser."""

from __future__ import annotations

from importlib import resources

from starlette.responses import Response

__all__ = ["YAML_IN_A_BROWSER", "YAML_TYPE", "yaml_document", "yaml_media_type"]

YAML_TYPE = "application/yaml"
"""The registered type of YAML (RFC 9512)."""
YAML_IN_A_BROWSER = "text/plain; charset=utf-8"
"""What a browser asking for a page gets: shown in the tab, not downloaded."""


def yaml_media_type(accept: str) -> str:
    """``application/yaml``, or plain text for a browser (its Accept names HTML)."""
    return YAML_IN_A_BROWSER if "text/html" in accept.lower() else YAML_TYPE


def yaml_document(name: str, accept: str) -> Response:
    """A YAML file of the contract package, typed for whoever asked."""
    text = (
        resources.files("wavespeed_mock.contracts")
        .joinpath(name)
        .read_text(encoding="utf-8")
    )
    return Response(
        text,
        media_type=yaml_media_type(accept),
        headers={"vary": "accept", "x-content-type-options": "nosniff"},
    )
