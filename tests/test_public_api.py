"""Each package's ``__all__`` says exactly what it exports, and imports stay light."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest

PACKAGES = [
    "wavespeed_mock.contracts",
    "wavespeed_mock.mock_server",
    "wavespeed_mock.plugins",
    "wavespeed_mock.real_engine",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_matches_what_is_exported(name: str) -> None:
    package = importlib.import_module(name)
    declared = set(getattr(package, "__all__", ()))
    for exported in declared:
        assert getattr(package, exported) is not None, exported
    public = {
        n
        for n, v in vars(package).items()
        if not n.startswith("_")
        and not isinstance(v, types.ModuleType)
        and n not in ("annotations", "TYPE_CHECKING")
        and getattr(v, "__module__", "") != "typing"
    }
    assert public <= declared, f"public but not in __all__: {sorted(public - declared)}"


@pytest.mark.parametrize(
    "name",
    [
        "wavespeed_mock.contracts",
        "wavespeed_mock.plugins",
        "wavespeed_mock.plugins.pytest_plugin",
        "wavespeed_mock.real_engine",
    ],
)
def test_import_is_light(name: str) -> None:
    code = (
        f"import sys, {name}\n"
        "heavy = {'torch', 'uvicorn', 'fastapi', 'hypothesis', 'wavespeed', 'numpy'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = out.stdout.strip()
    allowed = {
        "wavespeed_mock.contracts": "[]",
        "wavespeed_mock.plugins": "[]",
        "wavespeed_mock.plugins.pytest_plugin": "[]",
        # numpy is a core dependency; torch and the server stack must stay out.
        "wavespeed_mock.real_engine": "['numpy']",
    }
    assert loaded == allowed[name], f"{name} imports {loaded}"


def test_no_generic_top_level_names_are_installed() -> None:
    for generic in ("contracts", "plugins", "mock_server", "real_engine"):
        code = f"import importlib.util, sys; sys.path = [p for p in sys.path if p not in ('', '.')]; print(importlib.util.find_spec({generic!r}))"
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd="/",
        )
        assert out.stdout.strip() == "None", f"{generic!r} is importable at top level"
