"""The package's public surface and its import cost."""

from __future__ import annotations

import subprocess
import sys

import wavespeed_mock.real_engine as real_engine
from wavespeed_mock.mock_server.core.engine import Engine, load_engine_class


def test_all_lists_exactly_the_public_names():
    public = {n for n in vars(real_engine) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(real_engine, n)).__name__ == "module"}
    assert sorted(real_engine.__all__) == sorted(public - modules - {"annotations"})


def test_registered_as_the_ovi_engine():
    engine_class = load_engine_class("ovi")
    assert engine_class is real_engine.OviEngine
    for name in ("name", "max_concurrency", "reports_progress", "render", "close"):
        assert hasattr(engine_class, name), name
    assert set(Engine.__annotations__) <= set(vars(engine_class))


def test_importing_is_light():
    code = (
        "import sys, wavespeed_mock.real_engine; "
        "print(sorted(m for m in ('torch', 'omegaconf', 'uvicorn', 'hypothesis', "
        "'fastapi', 'ovi') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
