"""The API reference: ``/docs`` rendered from the contract, the raw documents beside it."""

from __future__ import annotations

from .page import CONTENT_SECURITY_POLICY, render_reference
from .routes import reference_routes

__all__ = ["CONTENT_SECURITY_POLICY", "reference_routes", "render_reference"]
