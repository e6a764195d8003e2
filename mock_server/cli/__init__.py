"""The ``wavespeed-mock`` command line: serve, render, control, check."""

from __future__ import annotations

from .main import build_parser, main

__all__ = ["build_parser", "main"]
