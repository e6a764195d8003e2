"""The README's first-screen example really runs, as a downstream test file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parents[2] / "README.md"


def first_python_block() -> str:
    match = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert match, "the README has no python example"
    return match.group(1)


def test_readme_example_is_short() -> None:
    assert len(first_python_block().strip().splitlines()) <= 12


def test_readme_example_passes_in_a_downstream_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_readme_example=first_python_block())
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def embedding_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Embedding the server") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the embedding section has no python example"
    return match.group(1)


def test_readme_embedding_example_runs(tmp_path: Path) -> None:
    namespace: dict[str, object] = {"tmp_path": tmp_path}
    exec(compile(embedding_block(), "README.md", "exec"), namespace)
    assert namespace["attempts"] == []
