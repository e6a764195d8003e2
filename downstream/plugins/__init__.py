"""The downstream app's own ``plugins`` package (a name wavespeed-mock must not take)."""

from __future__ import annotations

OWNER = "downstream"
