"""The layer rules of ARCHITECTURE.md, checked against the real imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AREAS = ("contracts", "mock_server", "plugins", "real_engine")
FORBIDDEN = {
    "contracts": {"mock_server", "plugins", "real_engine"},
    "mock_server": {"plugins", "real_engine"},
    "real_engine": {"plugins"},
    "plugins": set(),
}
# The CLI is the front door: it wires `wavespeed-mock check` from plugins.
EXCEPTIONS = {("mock_server", "cli/main.py", "plugins")}


def imported_areas(path: Path, area: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    depth_of_file = len(path.relative_to(ROOT / area).parts) - 1
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names = [node.module or ""]
            else:
                up = node.level - 1 - depth_of_file
                if up >= 1:  # climbs out of this area into wavespeed_mock
                    names = ["wavespeed_mock." + (node.module or "")]
        for name in names:
            parts = name.split(".")
            if parts[0] == "wavespeed_mock" and len(parts) > 1:
                found.add(parts[1])
            elif parts[0] in AREAS:
                found.add("bare:" + parts[0])
    return found


@pytest.mark.parametrize("area", AREAS)
def test_layers_point_one_way(area: str) -> None:
    problems = []
    for path in sorted((ROOT / area).rglob("*.py")):
        for target in imported_areas(path, area):
            if target.startswith("bare:"):
                problems.append(
                    f"{path.relative_to(ROOT)} imports a bare {target[5:]!r}"
                )
            elif (
                target in FORBIDDEN[area]
                and (area, path.relative_to(ROOT / area).as_posix(), target)
                not in EXCEPTIONS
            ):
                problems.append(f"{path.relative_to(ROOT)} imports {target}")
    assert problems == []


# Inside mock_server/: the rooms of ARCHITECTURE.md and whom each may import.
# Top-level modules (settings, errors, assembly, synthetic_engine) are named by
# their file; everything else by its folder.
INNER_MAY_IMPORT = {
    "core": {"core", "settings", "errors"},
    "media": {"media"},
    "features": {"core", "settings", "errors", "http"},
    "http": {"core", "settings", "errors", "http", "assembly"},
    "cli": {"cli", "core", "settings", "errors", "http", "media", "assembly"},
    "settings": set(),
    "errors": set(),
    "assembly": {"core", "features", "http", "settings"},
    "synthetic_engine": {"core", "media", "settings"},
}
# The package's front: it re-exports the public names of every room.
INNER_MAY_IMPORT["__init__"] = set(INNER_MAY_IMPORT)
# ``python -m wavespeed_mock.mock_server``: the command line and nothing else.
INNER_MAY_IMPORT["__main__"] = {"cli"}


def inner_room(path: Path) -> str:
    parts = path.relative_to(ROOT / "mock_server").parts
    return parts[0] if len(parts) > 1 else path.stem


def inner_imports(path: Path) -> set[str]:
    """The rooms of mock_server/ that ``path`` imports (module level and lazy)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = ["mock_server", *path.relative_to(ROOT / "mock_server").parts[:-1]]
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
        target = [*base, *(node.module or "").split(".")]
        target = [t for t in target if t]
        if target[:1] != ["mock_server"]:
            continue
        if len(target) == 1:  # from .. import x: each name is a module
            found.update(a.name for a in node.names)
        else:
            found.add(target[1])
    return found


def test_rooms_inside_the_server_point_one_way() -> None:
    problems = []
    for path in sorted((ROOT / "mock_server").rglob("*.py")):
        room = inner_room(path)
        allowed = INNER_MAY_IMPORT[room] | {room}
        for target in sorted(inner_imports(path) - allowed):
            problems.append(f"{path.relative_to(ROOT)} ({room}) imports {target}")
    assert problems == []


def test_a_feature_imports_no_other_feature() -> None:
    problems = []
    for path in sorted((ROOT / "mock_server" / "features").rglob("*.py")):
        parts = path.relative_to(ROOT / "mock_server" / "features").parts
        if len(parts) < 2:
            continue
        own = parts[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                module = node.module or ""
                # from ..<other> (a sibling feature) or ...features.<other>
                if node.level == 2 and module and module.split(".")[0] != own:
                    problems.append(
                        f"{path.relative_to(ROOT)} imports feature {module}"
                    )
    assert problems == []


def test_feature_domains_know_no_http() -> None:
    """A feature's rules can be read and tested without an app (moto's models/responses)."""
    problems = []
    for path in sorted((ROOT / "mock_server" / "features").rglob("*.py")):
        if path.name in ("routes.py", "__init__.py"):
            continue
        source = path.read_text(encoding="utf-8")
        for banned in ("starlette", "fastapi", ".http."):
            if banned in source:
                problems.append(f"{path.relative_to(ROOT)} mentions {banned}")
    assert problems == []
