"""Scenarios from a downstream suite: ``wavespeed_server.scenario(...)`` and
``@pytest.mark.wavespeed(scenarios=[...])``, run with pytester."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

DOWNSTREAM = """
import time

import httpx
import pytest
import wavespeed

from wavespeed_mock.plugins import ScenarioError

T2V = "character-ai/ovi/text-to-video"


def test_scenario_method(wavespeed_server, wavespeed_client):
    wavespeed_server.scenario(fail_code=1200)
    with pytest.raises(RuntimeError, match="sensitive"):
        wavespeed_client.run(T2V, {"prompt": "p"})


def test_scenarios_are_cleared_between_tests(wavespeed_client):
    assert wavespeed_client.run(T2V, {"prompt": "p"})["outputs"]


@pytest.mark.wavespeed(scenarios=[{"submit_error": 503}])
def test_marker_scenarios(wavespeed_server, wavespeed_client):
    with pytest.raises(RuntimeError, match="HTTP 503"):
        wavespeed_client.run(T2V, {"prompt": "p"})
    assert wavespeed_server.predictions == []


@pytest.mark.wavespeed(
    profile="polls:2",
    scenarios=[
        {"scope": "key", "api_key": "moderated", "fail_code": 1200},
        {"scope": "next", "count": 1, "gateway_error": 502, "routes": ["result"]},
    ],
)
def test_marker_scenarios_beside_settings(wavespeed_server, wavespeed_client):
    assert wavespeed_client.run(T2V, {"prompt": "p"})["outputs"]  # 502, then retried
    moderated = wavespeed.Client(api_key="moderated", base_url=wavespeed_server.url)
    with pytest.raises(RuntimeError, match="sensitive"):
        moderated.run(T2V, {"prompt": "p"}, poll_interval=0.01)


def test_scopes_through_the_method(wavespeed_server, wavespeed_client):
    wavespeed_server.scenario("next", count=1, lost_answer="reset")
    with pytest.raises(RuntimeError, match="did not return a response"):
        wavespeed_client.run(T2V, {"prompt": "p"})
    [lost] = wavespeed_server.predictions
    for _ in range(600):  # a poll may say processing until the clip exists
        if wavespeed_client.get_result(lost["id"])["data"]["status"] == "completed":
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the lost task never completed")


def test_a_refused_scenario_says_why(wavespeed_server):
    with pytest.raises(ScenarioError, match="submit_error"):
        wavespeed_server.scenario(submit_error=404)


@pytest.mark.wavespeed(scenarios=[{"timestamp_digits": 9}])
def test_marker_applies_to_wavespeed_httpx(wavespeed_httpx):
    headers = {"Authorization": "Bearer k"}
    pid = httpx.post(f"https://api.wavespeed.ai/api/v3/{T2V}", json={"prompt": "p"},
                     headers=headers).json()["data"]["id"]
    got = httpx.get(f"https://api.wavespeed.ai/api/v3/predictions/{pid}/result",
                    headers=headers).json()["data"]["created_at"]
    assert len(got.split(".")[1]) == len("123456789Z")
    wavespeed_httpx.scenario(submit_error=429)
    assert httpx.post(f"https://api.wavespeed.ai/api/v3/{T2V}", json={"prompt": "p"},
                      headers=headers).status_code == 429
"""


@pytest.fixture
def downstream(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_downstream=DOWNSTREAM)
    return pytester


def test_scenarios_from_the_fixture_and_the_marker(downstream: pytest.Pytester) -> None:
    result = downstream.runpytest_subprocess(
        "-W", "error", "-p", "no:cacheprovider", "--strict-markers"
    )
    result.assert_outcomes(passed=7)


def test_a_bad_marker_argument_fails_the_test_with_the_reason(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_bad="""
import pytest

@pytest.mark.wavespeed(scenarios={"fail_code": 1200})
def test_one_mapping_not_a_list(wavespeed_server):
    pass
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ScenarioError*a list of scenario objects*"])
