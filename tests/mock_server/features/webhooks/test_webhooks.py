"""Webhooks: signing, verification, delivery, retries on the server clock, secrets."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from wavespeed_mock.contracts import WavespeedMockError, validate
from wavespeed_mock.mock_server.assembly import MockServer
from wavespeed_mock.mock_server.core.network import (
    AddressRule,
    DestinationRefused,
    resolve_checked,
)
from wavespeed_mock.mock_server.errors import ApiError
from wavespeed_mock.mock_server.features.webhooks import (
    InvalidSignature,
    MalformedWebhook,
    StaleTimestamp,
    WebhookVerificationError,
    check_webhook_url,
    loopback_only,
    sign_webhook,
    verify_webhook,
    webhook_body,
)

from ..._fakes import fake_engine
from ..._support import PROMPT, T2V, Receiver, make_server, running, wait_for

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"id":"45b392b22c3b449fa935bd4dc","status":"completed"}'
TS = 1758798328


def expected_signature(secret: str, webhook_id: str, ts: int, body: bytes) -> str:
    """The algorithm as the docs state it, written out independently of the helper."""
    key = secret[len("whsec_") :].encode()
    return hmac.new(
        key, f"{webhook_id}.{ts}.".encode() + body, hashlib.sha256
    ).hexdigest()


# -- signing and verifying ---------------------------------------------------------


def test_sign_webhook_follows_the_documented_algorithm() -> None:
    headers = sign_webhook(BODY, SECRET, webhook_id="abc", timestamp=TS)
    assert headers["webhook-id"] == "abc"
    assert headers["webhook-timestamp"] == str(TS)
    assert headers["webhook-signature"] == "v3," + expected_signature(
        SECRET, "abc", TS, BODY
    )
    # The key is the secret's text minus whsec_, not its base64 decoding.
    assert headers == sign_webhook(
        BODY, SECRET.removeprefix("whsec_"), webhook_id="abc", timestamp=TS
    )


def test_verify_webhook_accepts_a_good_delivery_and_returns_the_payload() -> None:
    headers = sign_webhook(BODY, SECRET, webhook_id="abc", timestamp=TS)
    upper = {k.upper(): v for k, v in headers.items()}
    payload = verify_webhook(upper, BODY, SECRET, now=TS + 299)
    assert payload == {"id": "45b392b22c3b449fa935bd4dc", "status": "completed"}


def test_verify_webhook_rejects_a_tampered_body_or_wrong_secret() -> None:
    headers = sign_webhook(BODY, SECRET, webhook_id="abc", timestamp=TS)
    with pytest.raises(InvalidSignature):
        verify_webhook(headers, BODY.replace(b"completed", b"failed"), SECRET, now=TS)
    with pytest.raises(InvalidSignature, match="check the secret"):
        verify_webhook(headers, BODY, "whsec_other", now=TS)
    with pytest.raises(InvalidSignature):
        verify_webhook({**headers, "webhook-id": "abd"}, BODY, SECRET, now=TS)


@pytest.mark.parametrize("offset", [301, -301, 10_000])
def test_verify_webhook_rejects_a_stale_timestamp(offset: int) -> None:
    headers = sign_webhook(BODY, SECRET, webhook_id="abc", timestamp=TS)
    with pytest.raises(StaleTimestamp, match="tolerance is 300 s"):
        verify_webhook(headers, BODY, SECRET, now=TS + offset)
    verify_webhook(headers, BODY, SECRET, now=TS + offset, tolerance_s=abs(offset))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"webhook-signature": None}, "missing header"),
        ({"webhook-timestamp": "12.5"}, "Unix seconds"),
        ({"webhook-signature": "v1,abcd"}, "v3,<hex>"),
        ({"webhook-signature": "v3,ab,cd"}, "v3,<hex>"),
    ],
)
def test_verify_webhook_rejects_malformed_headers(
    change: dict[str, str | None], match: str
) -> None:
    headers = sign_webhook(BODY, SECRET, webhook_id="abc", timestamp=TS)
    changed = {k: v for k, v in {**headers, **change}.items() if v is not None}
    with pytest.raises(MalformedWebhook, match=match):
        verify_webhook(changed, BODY, SECRET, now=TS)


def test_verify_webhook_rejects_a_body_that_is_not_an_object() -> None:
    headers = sign_webhook(b"[1]", SECRET, webhook_id="abc", timestamp=TS)
    with pytest.raises(MalformedWebhook, match="not an object"):
        verify_webhook(headers, b"[1]", SECRET, now=TS)


def test_verification_errors_are_typed() -> None:
    for cls in (InvalidSignature, StaleTimestamp, MalformedWebhook):
        assert issubclass(cls, WebhookVerificationError)
    assert issubclass(WebhookVerificationError, WavespeedMockError)
    assert issubclass(WebhookVerificationError, ValueError)


def test_webhook_body_is_compact_with_the_documented_key_order() -> None:
    view = {
        "code": 1405,
        "timings": {"inference": 1},
        "executionTime": 1,
        "error": "",
        "created_at": "t",
        "status": "failed",
        "has_nsfw_contents": [],
        "urls": {"get": "u"},
        "outputs": [],
        "input": {"prompt": "é"},
        "model": "m",
        "id": "i",
    }
    body = webhook_body(view)
    assert list(json.loads(body)) == [
        "id",
        "model",
        "input",
        "outputs",
        "urls",
        "has_nsfw_contents",
        "status",
        "created_at",
        "error",
        "executionTime",
        "timings",
        "code",
    ]
    assert b" " not in body
    assert "é".encode() in body


# -- which URLs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "https://localhost/x",
        "http://[::1]:8080/hook",
        # Any http(s) URL, as the real API accepts it: where it goes is decided
        # when the delivery is due.
        "https://hooks.example.com/wavespeed",
        "http://10.0.0.1/x",
        "http://169.254.169.254/latest",
        "http://0.0.0.0/",
    ],
)
def test_any_http_webhook_url_is_accepted_at_submit(url: str) -> None:
    check_webhook_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/x",
        "/relative",
        "http://127.0.0.1:99999/x",
        "http://[::1/x",
        "http:///x",
    ],
)
def test_a_webhook_that_is_not_an_http_url_is_refused_naming_the_parameter(
    url: str,
) -> None:
    with pytest.raises(ApiError) as info:
        check_webhook_url(url)
    assert info.value.status == 400
    assert "webhook" in info.value.message


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.9.8.7", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("169.254.169.254", False),
        ("93.184.216.34", False),
        ("0.0.0.0", False),
    ],
)
def test_deliveries_go_to_loopback_addresses_by_default(
    address: str, allowed: bool
) -> None:
    assert (loopback_only(ipaddress.ip_address(address)) is None) is allowed


# -- the server -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_finished_task_is_delivered_signed(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    with Receiver() as receiver:
        async with running(server) as client:
            secret = (await client.get("/api/v3/webhook/secret")).json()["data"][
                "secret"
            ]
            submitted = await client.post(
                T2V, json=PROMPT, params={"webhook": receiver.url}
            )
            pid = submitted.json()["data"]["id"]
            await wait_for(lambda: len(receiver.deliveries) == 1)
            result = (await client.get(f"/api/v3/predictions/{pid}/result")).json()[
                "data"
            ]

    headers, body = receiver.deliveries[0]
    assert headers["webhook-id"] == pid
    assert headers["content-type"] == "application/json"
    assert headers["webhook-signature"] == "v3," + expected_signature(
        secret, pid, int(headers["webhook-timestamp"]), body
    )
    payload = verify_webhook(headers, body, secret, now=server.service.clock.now())
    assert payload == result  # the bare prediction object, no envelope
    assert payload["status"] == "completed"
    assert payload["outputs"]
    validate("prediction.json", payload)
    assert body == webhook_body(result)

    # A receiver rejects a tampered body and a replay past the tolerance.
    with pytest.raises(InvalidSignature):
        verify_webhook(
            headers,
            body.replace(b"completed", b"failed"),
            secret,
            now=server.service.clock.now(),
        )
    with pytest.raises(StaleTimestamp):
        verify_webhook(
            headers, body, secret, now=int(headers["webhook-timestamp"]) + 301
        )

    [attempt] = server.features.webhooks.log.attempts()
    assert attempt["prediction_id"] == pid
    assert attempt["url"] == receiver.url
    assert attempt["attempt"] == 1
    assert attempt["status_code"] == 200
    assert attempt["error"] is None


@pytest.mark.anyio
async def test_a_failed_task_is_delivered_too(tmp_path: Path) -> None:
    from wavespeed_mock.mock_server import RenderFailed

    server = make_server(tmp_path)
    fake_engine(server).fail_with = RenderFailed("boom", code=1405)
    with Receiver() as receiver:
        async with running(server) as client:
            await client.post(T2V, json=PROMPT, params={"webhook": receiver.url})
            await wait_for(lambda: len(receiver.deliveries) == 1)
    payload = json.loads(receiver.deliveries[0][1])
    assert payload["status"] == "failed"
    assert payload["code"] == 1405
    assert payload["error"] == "boom"


@pytest.mark.anyio
async def test_a_failing_receiver_is_retried_with_backoff_on_the_clock(
    tmp_path: Path,
) -> None:
    server = make_server(tmp_path, virtual_clock=True)
    clock = server.service.clock
    with Receiver([500, 500, 200]) as receiver:
        async with running(server) as client:
            log = server.features.webhooks.log
            start = clock.now()
            await client.post(T2V, json=PROMPT, params={"webhook": receiver.url})
            await wait_for(lambda: len(log) == 1)
            clock.advance(0.9)
            await anyio.sleep(0.2)
            assert len(log) == 1  # the first backoff is 1 s of the server's clock
            clock.advance(0.1)
            await wait_for(lambda: len(log) == 2)
            clock.advance(2)
            await wait_for(lambda: len(log) == 3)

    attempts = log.attempts()
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert [a["status_code"] for a in attempts] == [500, 500, 200]
    assert [a["error"] for a in attempts] == ["HTTP 500", "HTTP 500", None]
    assert [a["at"] - start for a in attempts] == [0, 1, 3]
    stamps = [int(h["webhook-timestamp"]) for h, _ in receiver.deliveries]
    assert stamps == [int(start), int(start + 1), int(start + 3)]
    assert len({b for _, b in receiver.deliveries}) == 1  # the same body each time


@pytest.mark.anyio
async def test_delivery_gives_up_after_three_retries(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port with nothing listening: connection refused
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    server = make_server(tmp_path, virtual_clock=True)
    async with running(server) as client:
        log = server.features.webhooks.log
        await client.post(T2V, json=PROMPT, params={"webhook": url})
        for count in (1, 2, 3, 4):
            await wait_for(lambda: len(log) == count)  # noqa: B023 - awaited at once
            server.service.clock.advance(10)
    attempts = log.attempts()
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert all(
        a["status_code"] is None and "ConnectError" in a["error"] for a in attempts
    )


def _resolver(table: dict[str, str]) -> Callable[[str, int], list[str]]:
    """A stand-in for DNS: the suite touches no network but 127.0.0.1."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [table[host]]

    return resolve


async def _finished_with_webhook(
    server: MockServer, client: httpx.AsyncClient, url: str, count: int = 1
) -> tuple[str, list[dict[str, Any]]]:
    answer = await client.post(T2V, json=PROMPT, params={"webhook": url})
    assert answer.status_code == 200, answer.text
    pid = answer.json()["data"]["id"]
    log = server.features.webhooks.log
    await wait_for(lambda: len(log.attempts(pid)) >= count)
    return pid, log.attempts(pid)


@pytest.mark.anyio
async def test_a_public_webhook_is_accepted_and_logged_not_sent(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    server.features.webhooks.resolver = _resolver(
        {"hooks.example.com": "93.184.216.34"}
    )
    async with running(server) as client:
        secret = (await client.get("/api/v3/webhook/secret")).json()["data"]["secret"]
        pid, attempts = await _finished_with_webhook(
            server, client, "https://hooks.example.com/wavespeed"
        )
        listed = (await client.get("/_mock/webhooks")).json()["data"]["items"]
    assert len(server.service.store) == 1
    [blocked] = attempts
    assert blocked["blocked"] is True and blocked["status_code"] is None
    assert (
        "93.184.216.34" in blocked["reason"] and "--webhook-allow" in blocked["reason"]
    )
    # The body it would have sent, signed: a test can verify and read it.
    payload = verify_webhook(
        blocked["headers"], blocked["body"].encode(), secret, now=blocked["at"]
    )
    assert payload["id"] == pid and payload["status"] == "completed"
    assert listed == attempts


@pytest.mark.anyio
async def test_a_name_is_judged_by_the_address_it_resolves_to(tmp_path: Path) -> None:
    """``localhost.`` is not the literal name ``localhost``: it goes through the
    resolver, and what it resolves to decides."""
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        for table, delivered in (
            ({"localhost.": "127.0.0.1"}, True),
            ({"localhost.": "10.1.2.3"}, False),
            ({}, False),  # does not resolve
        ):
            server = make_server(tmp_path / str(len(table)) / str(delivered))
            server.features.webhooks.resolver = _resolver(table)
            before = len(receiver.deliveries)
            async with running(server) as client:
                _, attempts = await _finished_with_webhook(
                    server, client, f"http://localhost.:{port}/hook"
                )
            assert attempts[0]["blocked"] is (not delivered), attempts
            assert len(receiver.deliveries) - before == int(delivered)


@pytest.mark.anyio
async def test_an_allowed_host_gets_the_delivery_at_the_address_that_was_checked(
    tmp_path: Path,
) -> None:
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        server = make_server(tmp_path, webhook_allow=("hooks.test",))
        # The name resolves to loopback here; it is allowed by name and the
        # connection goes to the checked address, with the name as Host.
        server.features.webhooks.resolver = _resolver({"hooks.test": "127.0.0.1"})
        async with running(server) as client:
            _, attempts = await _finished_with_webhook(
                server, client, f"http://hooks.test:{port}/hook"
            )
    assert attempts[0]["blocked"] is False and attempts[0]["status_code"] == 200
    [(headers, _)] = receiver.deliveries
    assert headers["host"] == f"hooks.test:{port}"


@pytest.mark.anyio
async def test_an_allowed_network_and_the_wildcard() -> None:
    table = _resolver({"intranet.test": "10.9.9.9", "api.test": "93.184.216.34"})
    network = AddressRule(allow=("10.0.0.0/8",), default=loopback_only)
    assert await resolve_checked("intranet.test", 80, network, table) == ["10.9.9.9"]
    with pytest.raises(DestinationRefused, match=r"93\.184\.216\.34"):
        await resolve_checked("api.test", 80, network, table)
    anything = AddressRule(allow=("*",), default=loopback_only)
    assert await resolve_checked("api.test", 80, anything, table)


@pytest.mark.anyio
async def test_the_secret_is_per_key_and_survives_a_restart(tmp_path: Path) -> None:
    async with running(make_server(tmp_path)) as client:
        first = (await client.get("/api/v3/webhook/secret")).json()["data"]["secret"]
        again = (await client.get("/api/v3/webhook/secret")).json()["data"]["secret"]
        other = (
            await client.get(
                "/api/v3/webhook/secret", headers={"Authorization": "Bearer other"}
            )
        ).json()
        unauthenticated = await client.get(
            "/api/v3/webhook/secret", headers={"Authorization": ""}
        )
    assert first == again != other["data"]["secret"]
    assert first.startswith("whsec_")
    assert len(first) > 40
    assert unauthenticated.status_code == 401
    async with running(make_server(tmp_path)) as client:
        restarted = (await client.get("/api/v3/webhook/secret")).json()["data"][
            "secret"
        ]
    assert restarted == first


def test_the_delivery_log_keeps_the_newest_attempts_only() -> None:
    from wavespeed_mock.mock_server.features.webhooks.delivery import WebhookLog

    log = WebhookLog(size=3)
    for n in range(5):
        log.record({"prediction_id": f"p{n}", "attempt": 1})
    assert [a["prediction_id"] for a in log.attempts()] == ["p2", "p3", "p4"]
    assert len(log) == 3
