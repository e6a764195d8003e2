"""``@pytest.mark.wavespeed(cassette=..., record_mode=...)`` in a downstream suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings

pytest_plugins = ["pytester"]

RUN = """
T2V = "character-ai/ovi/text-to-video"


@pytest.mark.wavespeed(cassette="cassettes/run", record_mode="{mode}")
def test_a_run(wavespeed_client, wavespeed_server):
    output = wavespeed_client.run(T2V, {"prompt": "Waves. <S>Hello.<E>", "seed": 5})
    assert output["outputs"][0].startswith(wavespeed_server.url + "/outputs/recorded/")
"""

MISS = """

@pytest.mark.wavespeed(cassette="cassettes/run", record_mode="none")
def test_a_miss(wavespeed_client):
    with pytest.raises(RuntimeError, match="replay_miss"):
        wavespeed_client.run(T2V, {"prompt": "never recorded", "seed": 6})
"""


def downstream(mode: str, *, miss: bool = False) -> str:
    return "import pytest\n" + RUN.replace("{mode}", mode) + (MISS if miss else "")


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(
        Settings(data_dir=tmp_path / "upstream", port=0, profile="polls:2")
    ).start()
    yield live
    live.stop()


def test_record_once_then_replay_without_the_upstream(
    pytester: pytest.Pytester, upstream: LiveServer
) -> None:
    pytester.makepyfile(test_downstream=downstream("once"))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--wavespeed-upstream={upstream.url}"
    )
    result.assert_outcomes(passed=1)
    cassette = pytester.path / "cassettes" / "run"
    assert [p.name for p in (cassette / "tasks").glob("*.json")] == [
        "0001-text-to-video.json"
    ]
    upstream.stop()

    # Replayed from the cassette alone (the upstream is gone); a miss is an error.
    pytester.makepyfile(test_downstream=downstream("none", miss=True))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_missing_cassette_or_an_unknown_mode_errors_with_a_hint(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_none=downstream("none"),
        test_unknown=downstream("all"),
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "*record_mode='none' and no cassette at*",
            "*record_mode='all'*expected one of*",
        ]
    )
