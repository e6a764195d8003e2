"""What the mock received: typed submissions and assertions that explain."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from wavespeed_mock.contracts import get_model
from wavespeed_mock.mock_server import Settings, SubmitRequest, build_server
from wavespeed_mock.mock_server.core.keys import mask_key
from wavespeed_mock.mock_server.core.service import MockService
from wavespeed_mock.plugins.verification import assert_submitted, submissions

from ..mock_server._fakes import FakeEngine
from .test_readme import block_after

pytest_plugins = ["pytester"]

T2V = "character-ai/ovi/text-to-video"
I2V = "character-ai/ovi/image-to-video"


def received(
    tmp_path: Path, *submits: tuple[str, dict[str, object], str | None]
) -> MockService:
    """A service that took these submits (model, body, webhook), then stopped;
    what it received stays readable."""
    # A fake engine: these tests are about what was received, not media.
    service = build_server(
        Settings(data_dir=tmp_path, profile="instant"), engine=FakeEngine()
    ).service

    async def go() -> None:
        service.start()
        try:
            for model, body, webhook in submits:
                request = SubmitRequest(
                    model=get_model(model), body=body, api_key="k", webhook=webhook
                )
                await service.submit(request)
            await service.settle()
        finally:
            await service.aclose()

    asyncio.run(go())
    return service


def test_submissions_are_typed_records_in_order(tmp_path: Path) -> None:
    service = received(
        tmp_path,
        (T2V, {"prompt": "one", "seed": 1}, None),
        (T2V, {"prompt": "two", "seed": 2}, "http://127.0.0.1:9/h"),
    )
    first, second = submissions(service, T2V)
    assert (first.body["prompt"], second.body["prompt"]) == ("one", "two")
    assert (first.seed, second.webhook) == (1, "http://127.0.0.1:9/h")
    assert second.key_hint == mask_key("k")  # the key itself is never kept
    assert submissions(service, I2V) == []
    assert [t.body["seed"] for t in submissions(service, where={"seed": 2})] == [2]
    assert [t.seed for t in submissions(service, where=lambda b: b["seed"] < 2)] == [1]


def test_a_failed_assertion_names_what_came_closest(tmp_path: Path) -> None:
    service = received(tmp_path, (T2V, {"prompt": "waves", "seed": 42}, None))
    with pytest.raises(AssertionError) as failed:
        assert_submitted(service, T2V, where={"seed": 7, "prompt": "waves"})
    message = str(failed.value)
    assert "none of the 1 submits matched" in message
    assert "seed 42 != 7" in message and "prompt" not in message.split("(")[-1]
    with pytest.raises(AssertionError, match="expected 2 of a submit"):
        assert_submitted(service, T2V, count=2)
    assert assert_submitted(service, T2V, count=1).seed == 42


def test_nothing_received_says_so(tmp_path: Path) -> None:
    service = received(tmp_path)
    with pytest.raises(AssertionError, match="received no submit at all"):
        assert_submitted(service, T2V)


def test_the_readme_example_runs_downstream(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sent=block_after("### Checking what your app sent"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
