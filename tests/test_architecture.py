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
