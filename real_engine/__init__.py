"""The real Ovi engine, run on a GPU behind the mock server.

Selected with ``wavespeed-mock serve --engine ovi --ovi-checkout ~/Ovi``, or in
Python with ``Settings(engine="ovi", engine_options={"checkout": Path("~/Ovi")})``.
Importing this package is light: torch and Ovi are imported only inside the worker
process the engine spawns.
"""

from __future__ import annotations

from ._engine import FACTORY_ENV, OviEngine
from ._options import OviOptions
from ._request import GenerationParams
from ._setup import check_ovi_setup, required_checkpoints
from ._variants import VARIANTS, OviVariant
from ._worker import OviLike
from .errors import OviSetupError, OviWorkerError

__all__ = [
    "FACTORY_ENV",
    "VARIANTS",
    "GenerationParams",
    "OviEngine",
    "OviLike",
    "OviOptions",
    "OviSetupError",
    "OviVariant",
    "OviWorkerError",
    "check_ovi_setup",
    "required_checkpoints",
]
