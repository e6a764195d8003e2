"""A user's suite against the installed wheel: each pattern of the README once."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import app
import httpx
import pytest
from hypothesis import given, settings
from wavespeed_mock.plugins import assert_conforms, request_bodies

REPO = Path(__file__).resolve().parents[1]

T2V = "character-ai/ovi/text-to-video"
API = "https://api.wavespeed.ai/api/v3"


@pytest.mark.parametrize("name", ["contracts", "plugins"])
def test_the_repos_own_packages_are_its_own(name: str) -> None:
    # The generic names resolve to this repository's folders, not to the wheel.
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None
    assert Path(spec.origin).resolve() == REPO / name / "__init__.py"
    import wavespeed_mock.plugins

    assert "site-packages" in (wavespeed_mock.plugins.__file__ or "")


def test_sdk_client(wavespeed_client) -> None:
    output = wavespeed_client.run(T2V, {"prompt": "Waves. <S>Hello!<E>", "seed": 42})
    assert output["outputs"][0].endswith(".mp4")


def test_app_code_using_the_module_functions(wavespeed_sdk, wavespeed_server) -> None:
    assert app.make_clip("A lighthouse").startswith(wavespeed_server.url)


def test_virtual_clock_and_advance(wavespeed_server) -> None:
    wavespeed_server.set_profile("fast")
    wavespeed_server.use_virtual_clock()
    headers = {"Authorization": f"Bearer {wavespeed_server.api_key}"}
    answer = httpx.post(
        f"{wavespeed_server.url}/api/v3/{T2V}", json={"prompt": "p"}, headers=headers
    )
    assert_conforms(answer)
    result = f"{wavespeed_server.url}/api/v3/predictions/{answer.json()['data']['id']}/result"
    wavespeed_server.advance(10)  # returns once the render due by then is done
    assert httpx.get(result, headers=headers).json()["data"]["status"] == "completed"


def test_httpx_in_process(wavespeed_httpx) -> None:
    answer = httpx.post(
        f"{API}/{T2V}", json={"prompt": ""}, headers={"Authorization": "Bearer k"}
    )
    assert answer.status_code == 400 and "$.prompt" in answer.json()["message"]


def test_webhooks_arrive_signed(wavespeed_server, wavespeed_webhooks) -> None:
    headers = {"Authorization": f"Bearer {wavespeed_server.api_key}"}
    pid = httpx.post(
        f"{wavespeed_server.url}/api/v3/{T2V}",
        json={"prompt": "p"},
        params={"webhook": wavespeed_webhooks.url},
        headers=headers,
    ).json()["data"]["id"]
    (delivery,) = wavespeed_webhooks.wait_for(pid)
    assert delivery.verified


@settings(max_examples=3, deadline=None)
@given(body=request_bodies(T2V))
def test_properties(wavespeed_session_server, body) -> None:
    wavespeed_session_server.reset()
    answer = httpx.post(
        f"{wavespeed_session_server.url}/api/v3/{T2V}",
        json=body,
        headers={"Authorization": "Bearer k"},
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.wavespeed(profile="polls:2")
def test_marker(wavespeed_server) -> None:
    assert wavespeed_server.service.profile.name == "polls:2"


def test_reference_page_and_command(wavespeed_server) -> None:
    page = httpx.get(f"{wavespeed_server.url}/docs")
    assert page.status_code == 200 and "content-security-policy" in page.headers
    version = subprocess.run(
        [sys.executable, "-m", "wavespeed_mock.mock_server", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.startswith("wavespeed-mock ")
