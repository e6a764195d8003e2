"""The pytest plugin as a downstream repo meets it, run with pytester."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

DOWNSTREAM = """
import asyncio

import httpx
import pytest

T2V = "character-ai/ovi/text-to-video"
API = "https://api.wavespeed.ai/api/v3"
KEY = {"Authorization": "Bearer any-key"}


def test_sdk_client(wavespeed_client):
    output = wavespeed_client.run(T2V, {"prompt": "Waves. <S>Hello.<E>", "seed": 1})
    assert output["outputs"][0].endswith(".mp4")


def test_live_server(wavespeed_server):
    response = httpx.post(f"{wavespeed_server.url}/api/v3/{T2V}", json={"prompt": "p"},
                          headers={"Authorization": f"Bearer {wavespeed_server.api_key}"})
    assert response.status_code == 200
    assert [p["id"] for p in wavespeed_server.predictions] == [response.json()["data"]["id"]]


def test_reset_between_tests(wavespeed_server):
    assert wavespeed_server.predictions == []


@pytest.mark.wavespeed(profile="polls:3")
def test_marker_sets_the_profile(wavespeed_server):
    headers = {"Authorization": f"Bearer {wavespeed_server.api_key}"}
    pid = httpx.post(f"{wavespeed_server.url}/api/v3/{T2V}", json={"prompt": "p"}, headers=headers).json()["data"]["id"]
    url = f"{wavespeed_server.url}/api/v3/predictions/{pid}/result"
    wavespeed_server.wait_for_renders()  # a poll never waits for a clip
    assert [httpx.get(url, headers=headers).json()["data"]["status"] for _ in range(3)] == ["created", "processing", "completed"]


def test_virtual_clock(wavespeed_server):
    wavespeed_server.set_profile("fast")
    wavespeed_server.use_virtual_clock()
    headers = {"Authorization": f"Bearer {wavespeed_server.api_key}"}
    pid = httpx.post(f"{wavespeed_server.url}/api/v3/{T2V}", json={"prompt": "p"}, headers=headers).json()["data"]["id"]
    url = f"{wavespeed_server.url}/api/v3/predictions/{pid}/result"
    assert httpx.get(url, headers=headers).json()["data"]["status"] == "created"
    wavespeed_server.advance(1.0)
    assert httpx.get(url, headers=headers).json()["data"]["status"] == "processing"


@pytest.mark.wavespeed(api_keys=("only-this",))
def test_marker_restricts_keys(wavespeed_server):
    assert wavespeed_server.api_key == "only-this"
    bad = httpx.post(f"{wavespeed_server.url}/api/v3/{T2V}", json={"prompt": "p"},
                     headers={"Authorization": "Bearer other"})
    assert bad.status_code == 401


def test_httpx_sync(wavespeed_httpx):
    with httpx.Client() as client:
        pid = client.post(f"{API}/{T2V}", json={"prompt": "p", "seed": 2}, headers=KEY).json()["data"]["id"]
        wavespeed_httpx.wait_for_renders()
        data = client.get(f"{API}/predictions/{pid}/result", headers=KEY).json()["data"]
        assert data["status"] == "completed"
        clip = client.get(data["outputs"][0])
        assert clip.headers["content-type"] == "video/mp4" and clip.content[4:8] == b"ftyp"
    assert len(wavespeed_httpx.calls) == 3


def test_httpx_async(wavespeed_httpx):
    async def main():
        async with httpx.AsyncClient() as client:
            r = await client.post(f"{API}/{T2V}", json={"prompt": ""}, headers=KEY)
            assert r.status_code == 400 and "$.prompt" in r.json()["message"]
            r = await client.post(f"{API}/{T2V}", json={"prompt": "p", "seed": 2}, headers=KEY)
            pid = r.json()["data"]["id"]
            await asyncio.to_thread(wavespeed_httpx.wait_for_renders)
            r = await client.get(f"{API}/predictions/{pid}/result", headers=KEY)
            return r.json()["data"]["status"]
    assert asyncio.run(main()) == "completed"


def test_httpx_other_hosts_pass_through(wavespeed_httpx, wavespeed_server):
    response = httpx.get(f"{wavespeed_server.url}/_mock/health")
    assert response.status_code == 200
    assert len(wavespeed_httpx.calls) == 0
"""


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("render-cache"))


@pytest.fixture(autouse=True)
def _share_renders(monkeypatch: pytest.MonkeyPatch, shared_cache: str) -> None:
    # Each pytester run is a new session; sharing the cache keeps this file fast.
    monkeypatch.setenv("WAVESPEED_MOCK_CACHE_DIR", shared_cache)


@pytest.fixture
def downstream(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_downstream=DOWNSTREAM)
    return pytester


def test_each_fixture_works_in_a_downstream_suite(downstream: pytest.Pytester) -> None:
    result = downstream.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=9)


def test_plugin_loads_beside_a_repos_own_plugins_and_contracts_packages(
    downstream: pytest.Pytester,
) -> None:
    for name in ("plugins", "contracts", "mock_server"):
        package = downstream.mkpydir(name)
        (package / "__init__.py").write_text(
            "RAISE = 1 / 0  # never imported by the plugin\n"
        )
    downstream.makeconftest("import sys; sys.path.insert(0, '.')\n")
    result = downstream.runpytest_subprocess(
        "-p", "no:cacheprovider", "-k", "sdk_client or httpx_sync"
    )
    result.assert_outcomes(passed=2)


def test_fixtures_work_under_xdist(downstream: pytest.Pytester) -> None:
    result = downstream.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=9)


def test_a_contract_violation_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_breaks(wavespeed_server):
            wavespeed_server.contract_violations.append("GET /x -> 200: $.data.status: 'pending' is not one of [...]")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*break its contract*", "*'pending' is not one of*"])


def test_settings_fixture_can_be_overridden_in_conftest(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def wavespeed_settings():
            return {"profile": "instant", "strict": True}
        """
    )
    pytester.makepyfile(
        """
        import httpx

        def test_strict(wavespeed_server):
            r = httpx.post(wavespeed_server.url + "/api/v3/character-ai/ovi/text-to-video",
                           json={"prompt": "p", "seeds": 1},
                           headers={"Authorization": "Bearer k"})
            assert r.status_code == 400 and "seeds" in r.json()["message"]
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_catalogue_marker_serves_a_teams_own_model(
    pytester: pytest.Pytester,
) -> None:
    from wavespeed_mock.contracts import get_model

    entry = get_model("wavespeed-ai/z-image/turbo").served()
    entry.update(model_id="acme/inhouse/text-to-image", name="In-house")
    entry["api_schema"]["api_schemas"][0]["api_path"] = (
        "/api/v3/acme/inhouse/text-to-image"
    )
    pytester.makefile(".json", models=json.dumps({"code": 200, "data": [entry]}))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.wavespeed(catalogue="models.json")
        def test_mine(wavespeed_client):
            out = wavespeed_client.run("acme/inhouse/text-to-image", {"prompt": "a cat"})
            assert out["outputs"][0].endswith(".jpg")

        def test_not_without_the_marker(wavespeed_client):
            result = wavespeed_client.run_no_throw("acme/inhouse/text-to-image", {"prompt": "a cat"})
            assert result["outputs"] is None
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_marker_rejects_positional_arguments(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.wavespeed("instant")
        def test_x(wavespeed_server):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*keyword arguments only*"])


PROPERTY_TEST = """
import httpx
from hypothesis import HealthCheck, given, settings

from wavespeed_mock.plugins import assert_conforms, invalid_request_bodies, request_bodies

I2V = "character-ai/ovi/image-to-video"
KEY = {"Authorization": "Bearer any-key"}
QUICK = settings(max_examples=25, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@QUICK
@given(case=invalid_request_bodies(I2V))
def test_every_broken_rule_is_a_400_naming_its_field(wavespeed_server, case):
    response = httpx.post(f"{wavespeed_server.url}/api/v3/{I2V}", json=case.body, headers=KEY)
    assert response.status_code == 400
    assert case.path in response.json()["message"]
    assert_conforms(response)


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=request_bodies(I2V))
def test_valid_bodies_become_tasks(wavespeed_server, body):
    response = httpx.post(f"{wavespeed_server.url}/api/v3/{I2V}", json=body, headers=KEY)
    assert response.status_code == 200, response.text
    assert_conforms(response)
"""


def test_a_property_test_with_the_strategies_runs_against_the_mock(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_properties=PROPERTY_TEST)
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
