"""Custom outputs: what a model returns for matching requests, chosen by a test."""

from __future__ import annotations

from .book import OutputBook, OutputRule, SharedOutputBook
from .routes import output_routes

__all__ = ["OutputBook", "OutputRule", "SharedOutputBook", "output_routes"]
