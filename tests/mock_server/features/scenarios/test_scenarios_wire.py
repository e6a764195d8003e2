"""Scenarios on the wire, over real sockets: answers before creation, lost answers,
gateway pages, connection faults, expiring URLs, timestamp styles, seeded draws.

Every server here checks each answer it sends against the contract
(``start_server`` fails the test on a violation), so the gateway pages and
storage errors are declared answers, not accidents.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from wavespeed_mock.mock_server.http.live import LiveServer

from ..._support import T2V, wait_until
from ...conftest import AUTH, StartServer


def scenario(server: LiveServer, **body: Any) -> dict[str, Any]:
    response = httpx.post(server.url + "/_mock/scenarios", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def submit(
    server: LiveServer, headers: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    return httpx.post(
        server.url + T2V,
        json={"prompt": "waves", "seed": 1},
        headers=headers or AUTH,
        timeout=kwargs.pop("timeout", 30),
        **kwargs,
    )


def poll(server: LiveServer, pid: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/api/v3/predictions/{pid}/result", headers=AUTH, timeout=30
    )


def settles(server: LiveServer, pid: str) -> None:
    """The task completes (a poll may say processing until its clip exists)."""
    wait_until(
        lambda: poll(server, pid).json()["data"]["status"] == "completed",
        what=f"{pid} completed",
    )


def spent(server: LiveServer) -> float:
    items = httpx.get(server.url + "/_mock/ledger").json()["data"]["items"]
    return float(sum(item["spent"] for item in items))


def journal(server: LiveServer) -> list[tuple[str, str, int]]:
    items = httpx.get(server.url + "/_mock/journal").json()["data"]["items"]
    return [(e["method"], e["path"], e["status"]) for e in items]


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 200, 30)).save(out, format="PNG")
    return out.getvalue()


# -- before creation: nothing created, nothing charged -------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_submit_error_creates_and_charges_nothing(
    start_server: StartServer, status: int
) -> None:
    server = start_server()
    scenario(server, submit_error=status)
    answer = submit(server)
    assert answer.status_code == status
    assert answer.json()["code"] == status
    assert len(server.service.store) == 0 and spent(server) == 0
    if status == 429:
        assert answer.headers["retry-after"] == "1"


# -- after creation: the answer is lost, the task goes on -----------------------------


def test_lost_answer_reset_after_the_task_is_created(start_server: StartServer) -> None:
    server = start_server()
    scenario(server, lost_answer="reset")
    with pytest.raises(httpx.ReadError):
        submit(server)
    [p] = server.service.store.all()
    settles(server, p.id)
    assert spent(server) == pytest.approx(0.15)  # charged once, answer lost


def test_lost_answer_timeout_holds_the_answer_until_the_client_leaves(
    start_server: StartServer,
) -> None:
    server = start_server()
    scenario(server, lost_answer="timeout")
    with pytest.raises(httpx.ReadTimeout):
        submit(server, timeout=httpx.Timeout(30, read=0.5))
    [p] = server.service.store.all()
    settles(server, p.id)


def test_lost_answer_spares_a_refused_submit(start_server: StartServer) -> None:
    server = start_server()
    scenario(server, lost_answer="reset")
    refused = httpx.post(server.url + T2V, json={"prompt": ""}, headers=AUTH)
    assert refused.status_code == 400  # no task: the answer is not lost
    assert len(server.service.store) == 0


def test_sync_mode_gateway_timeout_leaves_the_task_running(
    start_server: StartServer,
) -> None:
    server = start_server()
    scenario(server, sync_gateway_timeout=True)
    answer = httpx.post(
        server.url + T2V,
        json={"prompt": "p", "enable_sync_mode": True},
        headers=AUTH,
        timeout=30,
    )
    assert answer.status_code == 504
    assert answer.headers["content-type"].startswith("text/html")
    assert "504 Gateway Time-out" in answer.text
    [p] = server.service.store.all()
    settles(server, p.id)


# -- gateway pages on any route --------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "content_type", "text"),
    [
        ("html", "text/html", "<center><h1>502 Bad Gateway</h1></center>"),
        ("text", "text/plain", "error code: 502"),
        ("empty", None, ""),
        ("json", "application/json", '"code":502'),
    ],
)
def test_gateway_bodies_on_every_route(
    start_server: StartServer, style: str, content_type: str | None, text: str
) -> None:
    server = start_server()
    pid = submit(server).json()["data"]["id"]
    scenario(server, gateway_error=502, error_body=style)
    answers = [
        submit(server),
        poll(server, pid),
        httpx.get(server.url + "/api/v3/balance", headers=AUTH),
        httpx.post(
            server.url + "/api/v3/media/uploads",
            json={"filename": "a.png", "size": 10},
            headers=AUTH,
        ),
        httpx.get(f"{server.url}/outputs/{pid}.mp4"),
    ]
    for answer in answers:
        assert answer.status_code == 502
        assert answer.headers.get("content-type", "").split(";")[0] == (
            content_type or ""
        )
        assert text in answer.text
    assert len(server.service.store) == 1  # the faulted submit created nothing


def test_gateway_error_only_on_the_routes_named(start_server: StartServer) -> None:
    server = start_server()
    scenario(server, gateway_error=503, routes=["result"])
    pid = submit(server).json()["data"]["id"]
    assert poll(server, pid).status_code == 503
    assert httpx.get(server.url + "/api/v3/balance", headers=AUTH).status_code == 200


# -- connection faults ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("reset", httpx.ReadError),
        ("empty", httpx.RemoteProtocolError),
        ("malformed_chunk", httpx.RemoteProtocolError),
    ],
)
def test_connection_faults(
    start_server: StartServer, kind: str, error: type[Exception]
) -> None:
    server = start_server()
    pid = submit(server).json()["data"]["id"]
    scenario(server, scope="next", count=1, connection_fault=kind, routes=["result"])
    with pytest.raises(error):
        poll(server, pid)
    assert poll(server, pid).status_code == 200  # next-1 used up
    settles(server, pid)


def test_slow_dribble_sends_the_whole_answer_in_pieces(
    start_server: StartServer,
) -> None:
    server = start_server()
    pid = submit(server).json()["data"]["id"]
    scenario(
        server,
        connection_fault="dribble",
        routes=["result"],
        dribble_bytes=64,
        dribble_interval_ms=20,
    )
    with httpx.stream(
        "GET", f"{server.url}/api/v3/predictions/{pid}/result", headers=AUTH
    ) as answer:
        pieces = list(answer.iter_raw())
    body = b"".join(pieces)
    assert httpx.Response(200, content=body).json()["data"]["id"] == pid
    assert len(pieces) > 1 and max(len(p) for p in pieces) <= 64


# -- uploads and output URLs ----------------------------------------------------------------


def test_upload_ticket_and_put_failures(start_server: StartServer) -> None:
    server = start_server()
    scenario(server, scope="next", count=1, upload_ticket_error=503)
    ticket_body = {"filename": "a.png", "size": len(png()), "content_type": "image/png"}
    refused = httpx.post(
        server.url + "/api/v3/media/uploads", json=ticket_body, headers=AUTH
    )
    assert refused.status_code == 503 and refused.json()["code"] == 503
    # The one-request uploads answer the same way (no file is kept).
    scenario(server, scope="next", count=2, upload_ticket_error=502)
    for path in ("/api/v3/media/upload/binary", "/api/v3/upload"):
        one_shot = httpx.post(
            server.url + path,
            files={"file": ("a.png", png(), "image/png")},
            headers=AUTH,
        )
        assert one_shot.status_code == 502, path
    uploads = server.settings.data_dir / "uploads"
    assert list(uploads.rglob("a.png")) == []  # nothing kept of the refused ones
    # The two answers used the scenario up: the next upload is stored.
    stored = httpx.post(
        server.url + "/api/v3/upload",
        files={"file": ("a.png", png(), "image/png")},
        headers=AUTH,
    )
    assert stored.status_code == 200, stored.text
    assert len(list(uploads.rglob("a.png"))) == 1
    scenario(server, upload_put_error=403)
    ticket = httpx.post(
        server.url + "/api/v3/media/uploads", json=ticket_body, headers=AUTH
    ).json()["data"]
    put = httpx.put(
        ticket["upload"]["url"], content=png(), headers=ticket["upload"]["headers"]
    )
    assert put.status_code == 403
    assert put.headers["content-type"].startswith("application/xml")
    assert "<Code>AccessDenied</Code>" in put.text
    assert httpx.get(ticket["download_url"]).status_code == 404  # nothing stored


def test_output_urls_expire_after_their_ttl(start_server: StartServer) -> None:
    server = start_server(virtual_clock=True)
    scenario(server, output_ttl_s=3600)
    pid = submit(server).json()["data"]["id"]
    url = poll(server, pid).json()["data"]["outputs"][0]
    assert httpx.get(url).status_code == 200
    httpx.post(server.url + "/_mock/clock", json={"advance": 3600})
    expired = httpx.get(url)
    assert expired.status_code == 403
    assert "Request has expired" in expired.text


# -- timestamp styles ---------------------------------------------------------------------

STYLE = {
    0: r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
    2: r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{2}Z",
    3: r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
    9: r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{8}[1-9]Z",
}


@pytest.mark.parametrize("digits", [0, 2, 3, 9])
def test_fixed_timestamp_styles(start_server: StartServer, digits: int) -> None:
    server = start_server()
    scenario(server, timestamp_digits=digits)
    pid = submit(server).json()["data"]["id"]
    created_at = poll(server, pid).json()["data"]["created_at"]
    assert re.fullmatch(STYLE[digits], created_at), created_at


def test_drawn_timestamp_styles_repeat_from_the_seed(
    start_server: StartServer, tmp_path: Path
) -> None:
    def styles(server: LiveServer) -> list[int]:
        scenario(server, timestamp_digits="drawn", seed=3)
        pid = submit(server).json()["data"]["id"]
        texts = [poll(server, pid).json()["data"]["created_at"] for _ in range(9)]
        return [
            next(d for d, rx in STYLE.items() if re.fullmatch(rx, t)) for t in texts
        ]

    first = styles(start_server(data_dir=tmp_path / "a"))
    # The submit's answer drew the first style; these are draws 2 to 10.
    assert first == [2, 0, 0, 0, 9, 0, 3, 3, 9]
    assert styles(start_server(data_dir=tmp_path / "b")) == first


# -- seeded draws repeat across runs ------------------------------------------------------


def test_poll_errors_repeat_exactly_for_the_same_seed(
    start_server: StartServer, tmp_path: Path
) -> None:
    def statuses(server: LiveServer) -> list[int]:
        scenario(server, poll_error_rate=0.5, seed=11)
        pid = submit(server).json()["data"]["id"]
        return [poll_status(server, pid) for _ in range(12)]

    def poll_status(server: LiveServer, pid: str) -> int:
        return httpx.get(
            f"{server.url}/api/v3/predictions/{pid}/result", headers=AUTH, timeout=30
        ).status_code

    first = statuses(start_server(profile="polls:100", data_dir=tmp_path / "a"))
    # Fixed by the seed and the order of requests alone (not by ids, not by the
    # machine): the same on every run.
    assert first == [500, 200, 200, 503, 502, 200, 200, 500, 200, 200, 500, 200]
    again = statuses(start_server(profile="polls:100", data_dir=tmp_path / "b"))
    assert again == first


# -- bindings ----------------------------------------------------------------------------


def test_wire_faults_bind_per_key_next_n_and_per_request(
    start_server: StartServer,
) -> None:
    server = start_server()
    scenario(server, scope="key", api_key="flaky", submit_error=503)
    scenario(server, scope="named", name="gateway", gateway_error=502)
    assert submit(server, {"Authorization": "Bearer flaky"}).status_code == 503
    assert submit(server).status_code == 200
    named = submit(server, {**AUTH, "X-Wavespeed-Mock-Scenario": "gateway"})
    assert named.status_code == 502
    scenario(server, scope="next", count=2, submit_error=500)
    assert [submit(server).status_code for _ in range(3)] == [500, 500, 200]


def test_next_n_is_left_for_the_routes_it_touches(start_server: StartServer) -> None:
    server = start_server()
    scenario(server, scope="next", count=1, gateway_error=502, routes=["result"])
    pid = submit(server).json()["data"]["id"]  # a submit does not use it up
    assert poll(server, pid).status_code == 502
    assert poll(server, pid).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"submit_error": 404},
        {"lost_answer": "sometimes"},
        {"gateway_error": 418},
        {"error_body": "pdf"},
        {"connection_fault": "fire"},
        {"routes": ["nowhere"]},
        {"routes": "result"},
        {"timestamp_digits": 4},
        {"upload_put_error": 429},
        {"hang_s": 0},
        {"dribble_bytes": 0},
    ],
)
def test_bad_wire_scenarios_are_400(
    start_server: StartServer, body: dict[str, Any]
) -> None:
    server = start_server()
    response = httpx.post(server.url + "/_mock/scenarios", json=body)
    assert response.status_code == 400, response.text
    assert f"$.{next(iter(body))}" in response.json()["message"]


def test_a_poll_under_a_scenario_reads_its_row_once(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wire layer reads the polled row to choose the scenario, and the poll
    is answered from that read, not a second one (issue 20)."""
    from wavespeed_mock.mock_server.core.store import PredictionStore

    reads: list[str] = []
    fetch, get = PredictionStore.fetch, PredictionStore.get

    async def counted_fetch(self: PredictionStore, prediction_id: str) -> Any:
        reads.append(prediction_id)
        return await fetch(self, prediction_id)

    def counted_get(self: PredictionStore, prediction_id: str) -> Any:
        reads.append(prediction_id)
        return get(self, prediction_id)

    # Before the server starts: the app binds the store's methods when it is made.
    monkeypatch.setattr(PredictionStore, "fetch", counted_fetch)
    monkeypatch.setattr(PredictionStore, "get", counted_get)
    server = start_server()
    pid = submit(server).json()["data"]["id"]
    scenario(server, poll_error_rate=0.0)  # set: the wire layer decides each request
    reads.clear()
    answer = poll(server, pid)
    assert answer.status_code == 200 and answer.json()["data"]["id"] == pid
    assert reads == [pid]
    reads.clear()
    assert poll(server, "0" * 32).status_code == 404  # no row: one read as well
    assert reads == ["0" * 32]
