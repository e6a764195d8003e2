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


def block_after(marker: str) -> str:
    """The first python block of the README after ``marker``."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"```python\n(.*?)```", text[text.index(marker) :], re.S)
    assert match, f"the README has no python example after {marker!r}"
    return match.group(1)


def test_readme_embedding_example_runs(tmp_path: Path) -> None:
    namespace: dict[str, object] = {"tmp_path": tmp_path}
    exec(
        compile(block_after("## Embedding the server"), "README.md", "exec"), namespace
    )
    assert namespace["attempts"] == []


def test_readme_property_example_passes(pytester: pytest.Pytester) -> None:
    # A few examples each: the point is that every drawn input is accepted.
    pytester.makeconftest(
        "from hypothesis import settings\n"
        "settings.register_profile('few', max_examples=8)\n"
        "settings.load_profile('few')\n"
    )
    pytester.makepyfile(
        test_readme_properties=block_after(
            "The session-scoped fixtures are made for `@given`"
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_readme_pipeline_example_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_readme_pipeline=block_after("Every model of a real pipeline")
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_readme_plain_script_runs_against_a_server(tmp_path: Path) -> None:
    import wavespeed
    from wavespeed_mock.mock_server.http.live import LiveServer
    from wavespeed_mock.mock_server.settings import Settings

    script = block_after("Or from a plain script")
    assert "wavespeed.config.api.base_url" in script
    from wavespeed import api as sdk_api

    saved = (wavespeed.config.api.base_url, wavespeed.config.api.api_key)
    saved_client = sdk_api._default_client  # the SDK caches a client on first use
    with LiveServer(Settings(data_dir=tmp_path, port=0, profile="instant")) as server:
        try:
            namespace: dict[str, object] = {}
            exec(
                compile(
                    script.replace("http://127.0.0.1:8000", server.url),
                    "README.md",
                    "exec",
                ),
                namespace,
            )
        finally:
            wavespeed.config.api.base_url, wavespeed.config.api.api_key = saved
            sdk_api._default_client = saved_client
    output = namespace["output"]
    assert isinstance(output, dict) and output["outputs"][0].startswith(server.url)
