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
    "plugins": {"real_engine"},
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
    "core": {"settings", "errors"},
    "media": set(),
    "features": {"core", "settings", "errors"},
    # A feature's routes.py (and its package's __init__, which exports them).
    "feature_routes": {"features", "core", "settings", "errors", "http"},
    "http": {"core", "settings", "errors"},
    "assembly": {"core", "features", "settings"},
    # The app's assembly: http/app.py, http/live.py, http/control.py.
    "app": {
        "http",
        "core",
        "settings",
        "errors",
        "assembly",
        "features",
        "feature_routes",
    },
    "cli": {"app", "http", "core", "settings", "errors", "media", "assembly"},
    "settings": set(),
    "errors": set(),
    "synthetic_engine": {"core", "media", "settings"},
}
# The package's front: it re-exports the public names of every room.
INNER_MAY_IMPORT["__init__"] = set(INNER_MAY_IMPORT)
# ``python -m wavespeed_mock.mock_server``: the command line and nothing else.
INNER_MAY_IMPORT["__main__"] = {"cli"}
APP_MODULES = {"app", "live", "control"}


def room_of(parts: list[str]) -> str:
    """The room of a module of mock_server/, given its path below it."""
    head = parts[0]
    if head == "http":
        return "app" if len(parts) > 1 and parts[1] in APP_MODULES else "http"
    if head == "features":
        domain = len(parts) > 2 and parts[2] not in ("routes", "__init__")
        return "features" if domain else "feature_routes"
    return head


def inner_room(path: Path) -> str:
    return room_of(list(path.relative_to(ROOT / "mock_server").with_suffix("").parts))


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
            found.update(room_of([a.name]) for a in node.names)
        else:
            found.add(room_of(target[1:]))
    return found


def room_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "mock_server").rglob("*.py")):
        room = inner_room(path)
        graph.setdefault(room, set()).update(inner_imports(path) - {room})
    return graph


def test_rooms_inside_the_server_point_one_way() -> None:
    problems = []
    for path in sorted((ROOT / "mock_server").rglob("*.py")):
        room = inner_room(path)
        allowed = INNER_MAY_IMPORT[room] | {room}
        for target in sorted(inner_imports(path) - allowed):
            problems.append(f"{path.relative_to(ROOT)} ({room}) imports {target}")
    assert problems == []


def test_the_rooms_import_one_another_without_a_cycle() -> None:
    graph = room_graph()
    fronts = {"__init__", "__main__"}  # they import everything; nothing imports them
    done: set[str] = set()

    def visit(room: str, trail: list[str]) -> None:
        if room in trail:
            cycle = [*trail[trail.index(room) :], room]
            raise AssertionError("rooms import in a cycle: " + " -> ".join(cycle))
        if room in done:
            return
        for target in sorted(graph.get(room, set()) - fronts):
            visit(target, [*trail, room])
        done.add(room)

    for room in sorted(set(graph) - fronts):
        visit(room, [])


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


def test_every_source_package_is_installed() -> None:
    """pyproject lists the packages by hand: a folder of code it misses would be
    absent from a wheel while an editable install still finds it."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(("wavespeed_mock", area, *init.parent.relative_to(ROOT / area).parts))
        for area in AREAS
        for init in (ROOT / area).rglob("__init__.py")
    }
    assert found <= listed, f"not in pyproject's packages: {sorted(found - listed)}"
