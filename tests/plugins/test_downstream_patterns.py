"""The patterns downstream suites write: the SDK's module functions, advance(),
Hypothesis, assert_conforms on any answer, and a webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from wavespeed_mock.mock_server import LiveServer, Settings
from wavespeed_mock.mock_server.core.service import SettleTimeout
from wavespeed_mock.plugins import ContractViolation, assert_conforms
from wavespeed_mock.plugins._server import WavespeedServer
from wavespeed_mock.plugins._webhooks import WebhookReceiver

from ..mock_server._fakes import FakeEngine

pytest_plugins = ["pytester"]

T2V = "character-ai/ovi/text-to-video"
KEY = "pattern-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(autouse=True)
def _share_renders(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Each pytester run is a new session; one cache keeps this file fast.
    cache = tmp_path_factory.getbasetemp() / "pattern-render-cache"
    monkeypatch.setenv("WAVESPEED_MOCK_CACHE_DIR", str(cache))


# -- the SDK's module-level functions ----------------------------------------------

SDK_MODULE = """
import pytest
import wavespeed
import wavespeed.api

T2V = "character-ai/ovi/text-to-video"
# App code may have made the SDK's default client before any test ran.
BEFORE = wavespeed.api._get_default_client()


def test_module_level_run_reaches_the_mock(wavespeed_sdk, wavespeed_server):
    output = wavespeed.run(T2V, {"prompt": "Waves. <S>Hi.<E>", "seed": 3})
    assert output["outputs"][0].startswith(wavespeed_server.url)
    assert wavespeed.Client().base_url == wavespeed_server.url
    assert wavespeed_sdk is wavespeed


@pytest.mark.wavespeed(api_keys=("second-server-key",))
def test_a_second_server_gets_the_calls(wavespeed_sdk, wavespeed_server):
    assert wavespeed_server.api_key == "second-server-key"
    output = wavespeed.run(T2V, {"prompt": "p", "seed": 4})
    assert output["outputs"][0].startswith(wavespeed_server.url)
    assert len(wavespeed_server.predictions) == 1


def test_nothing_leaks_after():
    assert wavespeed.config.api.base_url == "https://api.wavespeed.ai"
    assert wavespeed.config.api.retry_interval == 1.0
    assert wavespeed.api._default_client is BEFORE
"""


def test_sdk_module_functions_point_at_the_mock_and_are_restored(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_sdk_module=SDK_MODULE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=3)


# -- advance(): returns once what is due has happened -------------------------------


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[WavespeedServer, FakeEngine]]:
    """A server on the fast profile and a virtual clock, its renders held at a gate."""
    engine = FakeEngine()
    engine.gate.clear()
    settings = Settings(
        port=0, data_dir=tmp_path, profile="fast", virtual_clock=True,
        check_responses=True,
    )  # fmt: skip
    server = WavespeedServer(LiveServer(settings, engine=engine).start(), KEY)
    try:
        yield server, engine
    finally:
        engine.gate.set()
        server.close()
    assert server.contract_violations == []


def _submit(server: WavespeedServer, **query: str) -> str:
    answer = httpx.post(
        f"{server.url}/api/v3/{T2V}", json={"prompt": "p"}, headers=AUTH, params=query
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"]["id"])


def _status(server: WavespeedServer, pid: str) -> str:
    answer = httpx.get(f"{server.url}/api/v3/predictions/{pid}/result", headers=AUTH)
    return str(answer.json()["data"]["status"])


def test_advance_waits_for_the_renders_due(
    gated: tuple[WavespeedServer, FakeEngine],
) -> None:
    server, engine = gated
    pid = _submit(server)
    server.advance(10, settle=False)
    assert _status(server, pid) == "processing"  # due, but its render is held
    with pytest.raises(SettleTimeout, match=f"the render of {pid}"):
        server.settle(timeout_s=0.5)  # cannot settle while the render is held
    engine.gate.set()
    server.advance(0)
    assert _status(server, pid) == "completed"


def test_a_render_not_yet_due_does_not_hold_advance(
    gated: tuple[WavespeedServer, FakeEngine],
) -> None:
    server, engine = gated
    pid = _submit(server)
    server.advance(0.1, settle=True)  # before its schedule: nothing is due
    assert _status(server, pid) == "created"
    engine.gate.set()


def test_advance_waits_for_webhook_attempts_due_and_not_for_later_retries(
    gated: tuple[WavespeedServer, FakeEngine],
) -> None:
    server, engine = gated
    engine.gate.set()
    receiver = WebhookReceiver(server.webhook_secret(), now=server.service.clock.now)
    try:
        receiver.status = 500  # refuse: the server retries 1 s later on its clock
        pid = _submit(server, webhook=receiver.url)
        server.advance(10)
        assert [d.prediction_id for d in receiver.deliveries] == [pid]
        server.advance(1)
        assert len(receiver.deliveries) == 2
        assert all(d.verified for d in receiver.deliveries), receiver.deliveries
    finally:
        receiver.close()


# -- Hypothesis ----------------------------------------------------------------------

HYPOTHESIS_MODULE = """
import httpx
from hypothesis import given, settings, strategies as st
from wavespeed_mock.plugins import prompts, request_bodies

T2V = "character-ai/ovi/text-to-video"
API = "https://api.wavespeed.ai/api/v3"
FEW = settings(max_examples=4, deadline=None)


@FEW
@given(body=request_bodies(T2V))
def test_session_server(wavespeed_session_server, body):
    server = wavespeed_session_server
    server.reset()
    answer = httpx.post(f"{server.url}/api/v3/{T2V}", json=body,
                        headers={"Authorization": f"Bearer {server.api_key}"})
    assert answer.status_code == 200, answer.text
    assert len(server.predictions) == 1


@FEW
@given(seed=st.integers(0, 3))
def test_session_client(wavespeed_session_client, seed):
    output = wavespeed_session_client.run(T2V, {"prompt": "p", "seed": seed})
    assert output["outputs"][0].endswith(".mp4")


@FEW
@given(prompt=prompts(max_size=30))  # what the contract accepts: st.text draws NUL
def test_session_httpx(wavespeed_session_httpx, prompt):
    with wavespeed_session_httpx.routing() as router:
        answer = httpx.post(f"{API}/{T2V}", json={"prompt": prompt},
                            headers={"Authorization": "Bearer k"})
    assert answer.status_code == 200, answer.text
    assert len(router.calls) == 1


@given(n=st.integers())
def test_a_function_scoped_fixture_trips_the_health_check(wavespeed_server, n):
    pass
"""


def test_session_fixtures_pass_hypothesis_health_checks(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_properties=HYPOTHESIS_MODULE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*function_scoped_fixture*"])


# -- assert_conforms on any answer ---------------------------------------------------


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[LiveServer]:
    settings = Settings(port=0, data_dir=tmp_path, profile="instant", api_keys=(KEY,))
    with LiveServer(settings, engine=FakeEngine()) as server:
        yield server


def test_assert_conforms_takes_a_requests_response(plain: LiveServer) -> None:
    submitted = requests.post(
        f"{plain.url}/api/v3/{T2V}", json={"prompt": "p"}, headers=AUTH, timeout=30
    )
    assert_conforms(submitted)
    refused = requests.post(f"{plain.url}/api/v3/{T2V}", json={}, timeout=30)
    assert_conforms(refused)  # a 401 in the envelope conforms too
    with pytest.raises(ContractViolation, match=r"\$\.data"):
        assert_conforms(submitted, method="GET", path="/api/v3/balance")


def test_assert_conforms_takes_the_dicts_the_sdk_returns(plain: LiveServer) -> None:
    from wavespeed_mock.plugins._sdk import make_client

    client = make_client(plain.url, KEY)
    pid = httpx.post(
        f"{plain.url}/api/v3/{T2V}", json={"prompt": "p"}, headers=AUTH
    ).json()["data"]["id"]
    result = client.get_result(pid)
    assert_conforms(result)  # the prediction envelope, known by its shape
    assert_conforms({"code": 401, "message": "Invalid API key"})  # an error envelope
    broken: dict[str, Any] = {**result, "data": {**result["data"], "status": "done"}}
    with pytest.raises(ContractViolation, match=r"\$\.data\.status"):
        assert_conforms(broken)
    with pytest.raises(TypeError, match="cannot tell which answer"):
        assert_conforms({"outputs": []})


# -- the webhook receiver fixture ----------------------------------------------------

WEBHOOK_MODULE = """
import httpx

T2V = "character-ai/ovi/text-to-video"


def test_deliveries_arrive_verified(wavespeed_server, wavespeed_webhooks):
    headers = {"Authorization": f"Bearer {wavespeed_server.api_key}"}
    pid = httpx.post(f"{wavespeed_server.url}/api/v3/{T2V}", json={"prompt": "p"},
                     params={"webhook": wavespeed_webhooks.url}, headers=headers).json()["data"]["id"]
    (delivery,) = wavespeed_webhooks.wait_for(pid)
    assert delivery.verified and delivery.payload["status"] == "completed"


def test_a_forged_delivery_fails_the_test(wavespeed_webhooks):
    httpx.post(wavespeed_webhooks.url, content=b"{}", headers={
        "webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v3,00"})
"""


def test_webhook_receiver_verifies_signatures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_webhooks=WEBHOOK_MODULE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*do not verify*", "*x: *"])
