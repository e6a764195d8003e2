"""The lifecycle: statuses follow the clock, the poll count or the engine."""

from __future__ import annotations

import httpx
import pytest
from wavespeed_mock.contracts import terminal_statuses
from wavespeed_mock.mock_server import RenderFailed
from wavespeed_mock.mock_server.core.clock import VirtualClock
from wavespeed_mock.mock_server.http.live import LiveServer

from .._fakes import FakeEngine, ProgressEngine
from .._support import T2V, wait_until
from ..conftest import AUTH, StartServer

ORDER = {"created": 0, "processing": 1}


def submit(server: LiveServer, body: dict[str, object] | None = None) -> str:
    response = httpx.post(
        server.url + T2V,
        json=body or {"prompt": "waves", "seed": 1},
        headers=AUTH,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["id"])


def poll(server: LiveServer, pid: str) -> dict[str, object]:
    response = httpx.get(
        f"{server.url}/api/v3/predictions/{pid}/result", headers=AUTH, timeout=90
    )
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()["data"]
    return data


def control(
    server: LiveServer, path: str, body: dict[str, object]
) -> dict[str, object]:
    response = httpx.post(server.url + "/_mock/" + path, json=body)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()["data"]
    return data


def wait_for_render(server: LiveServer, pid: str) -> None:
    """The fake engine renders in real time, whatever the virtual clock says."""
    wait_until(
        lambda: server.service.get(pid).outcome_known, what=f"render of {pid} finished"
    )


def poll_until_completed(server: LiveServer, pid: str) -> list[object]:
    """Poll (within a generous bound) until ``completed``; the statuses seen."""
    seen: list[object] = []

    def completed() -> bool:
        seen.append(poll(server, pid)["status"])
        return seen[-1] == "completed"

    wait_until(completed, what=f"{pid} completed")
    return seen


def test_a_poll_under_instant_is_answered_while_the_render_runs(
    start_server: StartServer,
) -> None:
    engine = FakeEngine()
    engine.gate.clear()  # the render cannot finish until the gate opens
    server = start_server(engine=engine)
    pid = submit(server)
    # Answered while the render is held: a poll never waits for a clip.
    held = poll(server, pid)
    assert held["status"] == "processing" and held["outputs"] == []
    engine.gate.set()
    wait_for_render(server, pid)
    data = poll(server, pid)  # the first poll once the clip exists
    assert data["status"] == "completed"
    assert data["outputs"] == [f"{server.url}/outputs/{pid}.mp4"]
    assert data["has_nsfw_contents"] == [False]
    assert data["timings"] == {"inference": 1234} and data["executionTime"] == 1234


def test_polls_profile_answers_its_nth_poll_while_the_render_runs(
    start_server: StartServer,
) -> None:
    engine = FakeEngine()
    engine.gate.clear()
    server = start_server(engine=engine, profile="polls:2")
    pid = submit(server)
    assert [poll(server, pid)["status"] for _ in range(3)] == ["processing"] * 3
    engine.gate.set()
    wait_for_render(server, pid)
    assert poll(server, pid)["status"] == "completed"


def test_fast_profile_under_a_virtual_clock(start_server: StartServer) -> None:
    server = start_server(profile="fast", virtual_clock=True)
    pid = submit(server)
    assert poll(server, pid)["status"] == "created"
    control(server, "clock", {"advance": 0.5})
    assert poll(server, pid)["status"] == "processing"
    control(server, "clock", {"advance": 1.0})
    assert poll(server, pid)["status"] == "processing"
    state = control(server, "clock", {"advance": 1.0})
    assert state["clock"]["virtual"] is True  # type: ignore[index]
    wait_for_render(server, pid)
    assert poll(server, pid)["status"] == "completed"


def test_realistic_profile_takes_about_a_minute_and_a_half(
    start_server: StartServer,
) -> None:
    server = start_server(profile="realistic", virtual_clock=True)
    pid = submit(server)
    control(server, "clock", {"advance": 80})
    assert poll(server, pid)["status"] == "processing"
    control(server, "clock", {"advance": 11})
    wait_for_render(server, pid)
    assert poll(server, pid)["status"] == "completed"


def test_completed_waits_for_the_file_even_past_its_scheduled_time(
    start_server: StartServer,
) -> None:
    engine = FakeEngine()
    engine.gate.clear()
    server = start_server(engine=engine, profile="fast", virtual_clock=True)
    pid = submit(server)
    control(server, "clock", {"advance": 60})
    assert poll(server, pid)["status"] == "processing"
    engine.gate.set()
    assert set(poll_until_completed(server, pid)) <= {"processing", "completed"}


def test_polls_profile_completes_on_the_nth_poll(start_server: StartServer) -> None:
    server = start_server(profile="polls:3")
    pid = submit(server)
    assert [poll(server, pid)["status"] for _ in range(4)] == [
        "created",
        "processing",
        "completed",
        "completed",
    ]


def test_profile_can_be_changed_at_run_time_for_new_predictions(
    start_server: StartServer,
) -> None:
    server = start_server(profile="polls:2")
    before = submit(server)
    control(server, "profile", {"profile": "instant"})
    after = submit(server)
    wait_for_render(server, after)  # a poll never waits for the clip
    assert poll(server, after)["status"] == "completed"
    assert poll(server, before)["status"] == "processing"
    bad = httpx.post(server.url + "/_mock/profile", json={"profile": "slowish"})
    assert bad.status_code == 400 and "slowish" in bad.json()["message"]


def test_engine_profile_follows_the_engines_progress(start_server: StartServer) -> None:
    engine = ProgressEngine()
    engine.gate.clear()
    server = start_server(engine=engine, profile="engine")
    pid = submit(server)
    assert poll(server, pid)["status"] == "created"
    engine.gate.set()
    assert engine.started.wait(30)
    assert poll(server, pid)["status"] == "processing"
    engine.finish.set()
    assert set(poll_until_completed(server, pid)) <= {"processing", "completed"}
    assert poll(server, pid)["timings"] == {"inference": 77}


@pytest.mark.parametrize(
    ("failure", "code", "text"),
    [
        (
            RenderFailed("Failed to download image from the provided URL.", code=1402),
            1402,
            "download",
        ),
        (ValueError("engine bug"), 5000, "engine bug"),
    ],
)
def test_a_failed_render_is_a_failed_task_not_an_http_error(
    start_server: StartServer, failure: Exception, code: int, text: str
) -> None:
    engine = FakeEngine()
    engine.fail_with = failure
    server = start_server(engine=engine)
    pid = submit(server)
    data = poll(server, pid)
    assert (
        data["status"] == "failed"
        and data["code"] == code
        and text in str(data["error"])
    )
    assert data["outputs"] == []
    assert poll(server, pid)["status"] == "failed"  # terminal states stay


def test_statuses_never_go_backwards_and_terminal_states_stay(
    start_server: StartServer,
) -> None:
    server = start_server(profile="fast", virtual_clock=True)
    pid = submit(server)
    seen = []
    for _ in range(12):
        seen.append(poll(server, pid)["status"])
        control(server, "clock", {"advance": 0.35})
    wait_for_render(server, pid)
    seen.extend(poll(server, pid)["status"] for _ in range(3))
    ranks = [ORDER.get(str(s), 2) for s in seen]
    assert ranks == sorted(ranks)
    terminal = [s for s in seen if s in terminal_statuses()]
    assert terminal and set(terminal) == {"completed"}


def test_virtual_clock_never_goes_backwards(start_server: StartServer) -> None:
    server = start_server(virtual_clock=True)
    now = control(server, "clock", {})["clock"]["now"]  # type: ignore[index]
    assert (
        httpx.post(server.url + "/_mock/clock", json={"advance": -1}).status_code == 400
    )
    after = control(server, "clock", {"set": now - 100})["clock"]["now"]  # type: ignore[index]
    assert after == now
    real = control(server, "clock", {"advance": 3600, "virtual": False})
    assert real["clock"]["virtual"] is False  # type: ignore[index]
    assert real["clock"]["now"] >= now + 3600  # type: ignore[index]
    assert (
        httpx.post(server.url + "/_mock/clock", json={"advance": 1}).status_code == 409
    )


def test_reset_forgets_predictions(start_server: StartServer) -> None:
    server = start_server()
    pid = submit(server)
    poll(server, pid)
    assert control(server, "reset", {})["deleted"] == 1
    assert (
        httpx.get(
            f"{server.url}/api/v3/predictions/{pid}/result", headers=AUTH
        ).status_code
        == 404
    )
    assert httpx.get(f"{server.url}/outputs/{pid}.mp4").status_code == 404


def test_predictions_survive_a_restart(
    start_server: StartServer, tmp_path: object
) -> None:
    first = start_server()
    pid = submit(first)
    assert poll(first, pid)["status"] == "completed"
    data_dir = first.service.data_dir
    first.stop()
    second = start_server(data_dir=data_dir)
    data = poll(second, pid)
    assert data["status"] == "completed"
    assert httpx.get(str(data["outputs"][0])).status_code == 200  # type: ignore[index]


def test_a_render_in_flight_at_shutdown_finishes_after_a_restart(
    start_server: StartServer,
) -> None:
    engine = FakeEngine()
    engine.gate.clear()
    first = start_server(engine=engine, profile="fast")
    pid = submit(first)
    data_dir = first.service.data_dir
    first.stop()  # the render never ran: the gate was closed, the executor cancelled
    second = start_server(data_dir=data_dir, profile="instant")
    seen = poll_until_completed(second, pid)
    assert set(seen) <= {"created", "processing", "completed"}


def test_virtual_clock_wakes_sleepers() -> None:
    import asyncio

    async def scenario() -> None:
        clock = VirtualClock(start=100.0)
        sleeper = asyncio.ensure_future(clock.sleep_until(105.0))
        # The ready queue is FIFO: one turn of the loop runs the sleeper up to its
        # wait; a few more would run a (wrong) wake-up through to the task's end.
        await asyncio.sleep(0)
        clock.advance(4.0)
        for _ in range(3):
            await asyncio.sleep(0)
        assert not sleeper.done(), "woke before its time"
        clock.advance(1.0)
        await asyncio.wait_for(sleeper, 30)

    asyncio.run(scenario())


def test_a_cached_clip_is_served_from_the_cache_without_a_worker(
    start_server: StartServer,
) -> None:
    from wavespeed_mock.mock_server.synthetic_engine import SyntheticEngine

    server = start_server(engine="synthetic", profile="fast")
    assert isinstance(server.service.engine, SyntheticEngine)
    body = {"prompt": "cache me", "seed": 5}
    first = submit(server, body)
    wait_until(
        lambda: server.service.get(first).rendered_at is not None,
        timeout_s=60,  # a real (synthetic) render
        what="first render finished",
    )
    second = submit(server, body)
    again = server.service.get(second)
    assert again.rendered_at is not None  # finished on the submit path
    assert again.output_file is not None and "cache" in again.output_file
    one = httpx.get(f"{server.url}/outputs/{first}.mp4")
    two = httpx.get(f"{server.url}/outputs/{second}.mp4")
    assert one.status_code == two.status_code == 200
    assert one.content == two.content and two.content[4:8] == b"ftyp"
    part = httpx.get(
        f"{server.url}/outputs/{second}.mp4", headers={"Range": "bytes=0-7"}
    )
    assert part.status_code == 206 and part.content == two.content[:8]
    deleted = httpx.post(
        f"{server.url}/api/v3/predictions/delete", json={"ids": [second]}, headers=AUTH
    )
    assert deleted.status_code == 200
    assert httpx.get(f"{server.url}/outputs/{second}.mp4").status_code == 404
    assert httpx.get(f"{server.url}/outputs/{first}.mp4").status_code == 200


def test_realistic_takes_each_models_typical_time() -> None:
    from wavespeed_mock.contracts import get_model
    from wavespeed_mock.mock_server.core.profiles import parse_profile

    realistic, fast = parse_profile("realistic"), parse_profile("fast")
    image = get_model("wavespeed-ai/z-image/turbo").processing_s
    assert image is not None and image < 30
    assert realistic.processing_for(image) == image
    assert (
        realistic.processing_for(
            get_model("character-ai/ovi/text-to-video").processing_s
        )
        == 84
    )
    assert realistic.processing_for(None) == 84  # an entry that declares none
    assert (
        fast.processing_for(image) == fast.processing_s
    )  # the others: every model alike
