"""What keeps a web page, another key or a careless log from reaching what is not
theirs: the Host rule, the control API's Origin/content-type rules and token,
masked and hashed API keys, and per-key privacy of predictions."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from wavespeed_mock.mock_server.cli.main import main
from wavespeed_mock.mock_server.core.keys import key_id, mask_key
from wavespeed_mock.mock_server.core.store import PredictionStore
from wavespeed_mock.mock_server.http.guards import HostRule, host_of
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings

from .._support import T2V, make_server, running
from ..conftest import AUTH, StartServer

LONG_KEY = "wsk_live_0123456789abcdef0123456789abcdef"


def _submit(server: LiveServer, key: str = "test-key") -> str:
    answer = httpx.post(
        server.url + T2V,
        json={"prompt": "a secret prompt"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"]["id"])


def _refused(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and set(body) <= {"code", "message"}
    for word in words:
        assert word in body["message"], body["message"]


# -- the Host rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authority", "host"),
    [
        ("127.0.0.1:8000", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("LocalHost.", "localhost"),
        ("mock.test", "mock.test"),
        ("::1", "::1"),
    ],
)
def test_host_of_strips_port_brackets_and_the_trailing_dot(
    authority: str, host: str
) -> None:
    assert host_of(authority) == host


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:1",
        "127.8.9.10",
        "[::1]:80",
        "localhost",
        "app.localhost:3000",
        "[::ffff:127.0.0.1]",
    ],
)
def test_loopback_names_and_addresses_are_served(host: str) -> None:
    assert HostRule().allows(host)


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example",
        "localhost.attacker.example",
        "10.0.0.1",
        "0.0.0.0",
        "testserver",
        "",
    ],
)
def test_other_hosts_are_not_served_by_default(host: str) -> None:
    assert not HostRule().allows(host)


def test_the_public_url_the_bound_address_and_allowed_hosts_are_served() -> None:
    rule = HostRule.from_settings(
        Settings(
            host="192.168.1.5",
            public_url="https://mock.example.com/base",
            allowed_hosts=("testserver",),
        )
    )
    for host in ("mock.example.com", "192.168.1.5:8000", "testserver", "localhost"):
        assert rule.allows(host), host
    assert not rule.allows("attacker.example")
    # A wildcard bind names no host of its own.
    assert not HostRule.from_settings(Settings(host="0.0.0.0")).allows("0.0.0.0")


def test_a_rebinding_host_is_refused_on_every_route(start_server: StartServer) -> None:
    server = start_server()
    pid = _submit(server)
    evil = {"Host": "attacker.example"}
    with httpx.Client(base_url=server.url, headers=evil) as client:
        for response in (
            client.get("/_mock/predictions"),
            client.get("/_mock/state"),
            client.get("/_mock/health"),
            client.get(f"/api/v3/predictions/{pid}/result", headers=AUTH),
            client.post(T2V, json={"prompt": "p"}, headers=AUTH),
            client.get(f"/outputs/{pid}.mp4"),
            client.post("/_mock/reset", json={}),
            client.get("/no/such/route"),
        ):
            _refused(response, 403, "'attacker.example'", "--allowed-host")
            assert "secret prompt" not in response.text
    assert len(server.service.store) == 1  # neither reset nor a new submit


def test_served_hosts_still_work(start_server: StartServer) -> None:
    server = start_server(public_url=None)
    port = server.settings.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        response = httpx.get(server.url + "/_mock/state", headers={"Host": host})
        assert response.status_code == 200, host


@pytest.mark.anyio
async def test_a_test_client_host_is_served_only_when_allowed(tmp_path: Path) -> None:
    """Starlette's TestClient sends ``Host: testserver``: a suite allows it
    explicitly rather than the rule being weakened for everyone."""
    for allowed, status in (((), 403), (("testserver",), 200)):
        server = make_server(tmp_path / str(status), allowed_hosts=allowed)
        async with running(server) as client:
            answer = await client.get(
                "http://testserver/_mock/state", headers={"Host": "testserver"}
            )
        assert answer.status_code == status


def test_settings_read_the_allowed_hosts_and_token_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "WAVESPEED_MOCK_ALLOWED_HOSTS": "a.test, b.test",
            "WAVESPEED_MOCK_CONTROL_TOKEN": "tok",
            "WAVESPEED_MOCK_FETCH_ALLOW": "10.0.0.0/8",
            "WAVESPEED_MOCK_WEBHOOK_ALLOW": "*",
        }
    )
    assert settings.allowed_hosts == ("a.test", "b.test")
    assert settings.control_token == "tok"
    assert settings.fetch_allow == ("10.0.0.0/8",)
    assert settings.webhook_allow == ("*",)
    assert "tok" not in repr(settings)


# -- no web page drives the control API ------------------------------------------------


CROSS_SITE = [
    # (headers, body kind, status): what a page on another site can send
    ({"Origin": "http://attacker.example", "Content-Type": "text/plain"}, 403),
    ({"Origin": "http://attacker.example", "Content-Type": "application/json"}, 403),
    ({"Origin": "null", "Content-Type": "application/json"}, 403),
    ({"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, 403),
    ({"Content-Type": "text/plain"}, 415),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ({"Content-Type": "multipart/form-data; boundary=x"}, 415),
    ({}, 415),
]


@pytest.mark.parametrize(("headers", "status"), CROSS_SITE)
def test_a_cross_site_request_cannot_reset_or_set_scenarios(
    start_server: StartServer, headers: dict[str, str], status: int
) -> None:
    server = start_server()
    _submit(server)
    reset = httpx.post(server.url + "/_mock/reset", content=b"{}", headers=headers)
    scenario = httpx.post(
        server.url + "/_mock/scenarios", content=b'{"fail_code": 1402}', headers=headers
    )
    cleared = httpx.request("DELETE", server.url + "/_mock/scenarios", headers=headers)
    _refused(reset, status)
    _refused(scenario, status)
    assert len(server.service.store) == 1
    assert server.features.scenarios.state()["global"] is None
    if status == 403:
        _refused(cleared, 403, "web page")


def test_same_origin_and_plain_clients_may_steer(start_server: StartServer) -> None:
    server = start_server()
    _submit(server)
    own = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
    assert (
        httpx.post(
            server.url + "/_mock/scenarios", json={"fail_code": 1402}, headers=own
        ).status_code
        == 200
    )
    assert httpx.request("DELETE", server.url + "/_mock/scenarios").status_code == 200
    assert httpx.post(server.url + "/_mock/reset", json={}).status_code == 200
    assert len(server.service.store) == 0
    # Reading needs no Origin check: a cross-site page cannot read the answer.
    assert (
        httpx.get(
            server.url + "/_mock/state", headers={"Origin": "http://x.test"}
        ).status_code
        == 200
    )


def test_the_control_token_guards_the_control_api(start_server: StartServer) -> None:
    server = start_server(control_token="s3cret")
    _submit(server)
    url = server.url
    _refused(httpx.get(url + "/_mock/predictions"), 401, "--control-token")
    _refused(
        httpx.get(url + "/_mock/predictions", headers={"Authorization": "Bearer nope"}),
        401,
    )
    _refused(httpx.post(url + "/_mock/reset", json={}), 401)
    good = {"Authorization": "Bearer s3cret"}
    assert httpx.get(url + "/_mock/predictions", headers=good).status_code == 200
    assert httpx.get(url + "/_mock/health").status_code == 200
    assert httpx.get(url + "/_mock/documents/openapi.yaml").status_code == 200
    assert len(server.service.store) == 1
    # The API itself is not affected: it has its own keys.
    assert httpx.get(url + "/api/v3/balance", headers=AUTH).status_code == 200
    assert httpx.post(url + "/_mock/reset", json={}, headers=good).status_code == 200
    assert len(server.service.store) == 0


def test_the_control_command_sends_the_token(
    start_server: StartServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = start_server(control_token="s3cret")
    monkeypatch.delenv("WAVESPEED_MOCK_CONTROL_TOKEN", raising=False)
    assert main(["control", "--url", server.url, "state"]) == 1
    assert "control token" in capsys.readouterr().out
    assert (
        main(["control", "--url", server.url, "--control-token", "s3cret", "state"])
        == 0
    )
    monkeypatch.setenv("WAVESPEED_MOCK_CONTROL_TOKEN", "s3cret")
    assert main(["control", "--url", server.url, "reset"]) == 0


# -- API keys: masked where shown, hashed where kept -----------------------------------


def test_mask_key_shows_at_most_a_quarter() -> None:
    assert mask_key(LONG_KEY) == "wsk_…cdef"
    assert mask_key("test-key") == "t…y"
    assert mask_key("abc") == "…"
    for key in ("k", "short-key", LONG_KEY, "x" * 200):
        shown = mask_key(key).replace("…", "")
        assert len(shown) <= min(8, len(key) // 4)


def test_the_ledger_masks_keys(start_server: StartServer) -> None:
    server = start_server()
    _submit(server, LONG_KEY)
    _submit(server, "other-key-0123456789")
    ledger = httpx.get(server.url + "/_mock/ledger")
    assert LONG_KEY not in ledger.text and "other-key-0123456789" not in ledger.text
    items = {i["key_id"]: i for i in ledger.json()["data"]["items"]}
    mine = items[hashlib.sha256(LONG_KEY.encode()).hexdigest()[:32]]
    assert mine["api_key"] == "wsk_…cdef" and mine["spent"] > 0


def test_scenario_listings_mask_keys(start_server: StartServer) -> None:
    server = start_server()
    answer = httpx.post(
        server.url + "/_mock/scenarios",
        json={"scope": "key", "api_key": LONG_KEY, "fail_code": 1402},
    )
    assert answer.status_code == 200
    listing = httpx.get(server.url + "/_mock/scenarios")
    assert LONG_KEY not in listing.text and "wsk_…cdef" in listing.text


def test_keys_are_stored_only_hashed(start_server: StartServer, tmp_path: Path) -> None:
    data_dir = tmp_path / "kept"
    server = start_server(data_dir=data_dir)
    pid = _submit(server, LONG_KEY)
    httpx.get(
        server.url + "/api/v3/webhook/secret",
        headers={"Authorization": f"Bearer {LONG_KEY}"},
    )
    server.stop()
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert LONG_KEY.encode() not in path.read_bytes(), path
    store = PredictionStore(data_dir / "state.sqlite3")
    try:
        p = store.get(pid)
        assert p is not None and p.key_id == key_id(LONG_KEY)
        assert store.charges(key_id(LONG_KEY)) == {pid: store.charges(p.key_id)[pid]}
    finally:
        store.close()


def test_a_data_folder_with_plain_keys_is_hashed_on_open(tmp_path: Path) -> None:
    """Schema version 2 kept keys in plain text; opening it hashes them for good."""
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path)
    record = {
        "id": "a" * 32,
        "model": "character-ai/ovi/text-to-video",
        "input": {"prompt": "p"},
        "seed_requested": -1,
        "seed": 5,
        "created_at": 100.0,
        "profile": "instant",
        "start_at": 100.0,
        "done_at": 100.0,
        "api_key": LONG_KEY,
    }
    db.executescript(
        "CREATE TABLE predictions (seq INTEGER PRIMARY KEY, id TEXT NOT NULL,"
        " api_key TEXT NOT NULL, charge_micros INTEGER NOT NULL, record TEXT NOT NULL,"
        " polls, render_started_at, rendered_at, inference_ms, nsfw, failure_code,"
        " failure_message, forced_status, output_file);"
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "PRAGMA user_version = 2;"
    )
    db.execute(
        "INSERT INTO predictions (seq, id, api_key, charge_micros, record, polls, nsfw)"
        " VALUES (1, ?, ?, 500000, ?, 0, '[]')",
        ("a" * 32, LONG_KEY, json.dumps(record)),
    )
    db.commit()
    db.close()
    store = PredictionStore(path)
    try:
        p = store.get("a" * 32)
        assert p is not None
        assert (p.key_id, p.key_hint) == (key_id(LONG_KEY), "wsk_…cdef")
        assert store.charges(key_id(LONG_KEY)) == {"a" * 32: 500000}
    finally:
        store.close()
    assert LONG_KEY.encode() not in path.read_bytes()
    reopened = PredictionStore(path)  # the upgrade is done once
    try:
        assert reopened.get("a" * 32) is not None
    finally:
        reopened.close()


# -- a prediction is visible only to its key -------------------------------------------


def test_another_key_cannot_read_a_prediction(start_server: StartServer) -> None:
    server = start_server()
    pid = _submit(server, "key-a")
    mine = {"Authorization": "Bearer key-a"}
    theirs = {"Authorization": "Bearer key-b"}
    for path in (f"/api/v3/predictions/{pid}/result", f"/api/v3/predictions/{pid}"):
        assert httpx.get(server.url + path, headers=mine).status_code == 200
        other = httpx.get(server.url + path, headers=theirs)
        unknown = httpx.get(server.url + path.replace(pid, "f" * 32), headers=theirs)
        _refused(other, 404, "not found")
        assert "secret prompt" not in other.text
        # Indistinguishable from an id that does not exist.
        assert other.json()["message"].replace(pid, "ID") == unknown.json()[
            "message"
        ].replace("f" * 32, "ID")
    # The control API still sees every key's predictions.
    listed = httpx.get(server.url + "/_mock/predictions").json()["data"]["items"]
    assert [i["id"] for i in listed] == [pid]


def test_a_bodiless_control_post_from_no_web_page_is_served(
    start_server: StartServer,
) -> None:
    # Nothing to smuggle without a body; a browser's POST would carry an Origin.
    server = start_server()
    _submit(server)
    assert httpx.post(server.url + "/_mock/reset").status_code == 200
    assert len(server.service.store) == 0
    evil = httpx.post(
        server.url + "/_mock/reset", headers={"Origin": "http://attacker.example"}
    )
    _refused(evil, 403)
