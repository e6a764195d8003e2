"""Custom outputs: what a model returns for matching requests, chosen by a test."""

from __future__ import annotations

from .book import OutputBook, OutputRule
from .routes import output_routes

__all__ = ["OutputBook", "OutputRule", "output_routes"]
