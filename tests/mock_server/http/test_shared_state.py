"""Two servers on one PostgreSQL database and one data folder answer as one mock
(issue 23's first steps): a task submitted through either is polled, listed,
billed and downloaded through the other, on one clock and timing profile."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings

from .._support import T2V, wait_until

pytestmark = pytest.mark.postgres
AUTH = {"Authorization": "Bearer shared-key"}


@pytest.fixture
def pair(
    database: str, tmp_path: Path
) -> Iterator[tuple[LiveServer, LiveServer, httpx.Client]]:
    """Two servers on one database and data folder (instant profile, every
    answer checked against the contract), and a client with the key."""
    settings = Settings(
        data_dir=tmp_path / "shared", port=0, profile="instant", database=database,
        check_responses=True,
    )  # fmt: skip
    with (
        LiveServer(settings) as first,
        LiveServer(settings) as second,
        httpx.Client(headers=AUTH, timeout=30) as client,
    ):
        yield first, second, client
        assert first.service.contract_violations == []
        assert second.service.contract_violations == []


def test_a_task_submitted_through_one_server_is_served_by_the_other(
    database: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "shared", port=0, profile="fast", database=database,
        check_responses=True, starting_balance=10.0,
    )  # fmt: skip
    with LiveServer(settings) as first, LiveServer(settings) as second:
        with httpx.Client(headers=AUTH, timeout=30) as client:
            answer = client.post(first.url + T2V, json={"prompt": "Shared waves."})
            assert answer.status_code == 200, answer.text
            task = answer.json()["data"]["id"]
            poll = f"{second.url}/api/v3/predictions/{task}/result"
            # The render runs on the first server; the second reads its outcome
            # from the database.
            for _ in range(1200):  # a bound for a busy machine, not a timing
                view = client.get(poll).json()["data"]
                if view["status"] in ("completed", "failed"):
                    break
                time.sleep(0.05)
            assert view["status"] == "completed", view
            clip = client.get(view["outputs"][0].replace(first.url, second.url))
            assert clip.status_code == 200 and clip.content[4:8] == b"ftyp"

            listed = client.get(second.url + "/api/v3/predictions").json()["data"]
            assert [item["id"] for item in listed["items"]] == [task]
            balance = client.get(second.url + "/api/v3/balance").json()["data"]
            assert balance["balance"] == pytest.approx(10.0 - 0.15)
        assert first.service.contract_violations == []
        assert second.service.contract_violations == []


def _cut_off(server_url: str, database: str, cut: bool) -> None:
    """Refuse (or allow again) connections to ``database`` and end its open ones:
    the database is down for this test's server only."""
    import psycopg

    name = database.rsplit("/", 1)[1]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if cut else "true"}'
        )
        if cut:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )


def test_a_database_outage_is_a_503_that_stores_and_charges_nothing(
    database: str,
    postgres_server: str,
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", port=0, profile="instant", database=database,
        check_responses=True, starting_balance=10.0,
    )  # fmt: skip
    with (
        LiveServer(settings) as server,
        httpx.Client(headers=AUTH, timeout=60) as client,
    ):
        answer = client.post(server.url + T2V, json={"prompt": "Before the outage."})
        assert answer.status_code == 200, answer.text
        task = answer.json()["data"]["id"]
        poll = f"{server.url}/api/v3/predictions/{task}/result"
        for _ in range(1200):  # a bound for a busy machine, not a timing
            if client.get(poll).json()["data"]["status"] == "completed":
                break
            time.sleep(0.05)
        _cut_off(postgres_server, database, cut=True)
        try:
            down = client.get(poll)
            refused = client.post(server.url + T2V, json={"prompt": "During it."})
        finally:
            _cut_off(postgres_server, database, cut=False)
        for answer in (down, refused):
            assert answer.status_code == 503, answer.text
            body = answer.json()
            assert body["code"] == 503
            assert "Service unavailable" in body["message"]
            assert "database" in body["message"] and "Retry" in body["message"]
        for _ in range(1200):  # the pool connects again by itself
            back = client.get(poll)
            if back.status_code == 200:
                break
            time.sleep(0.05)
        assert back.json()["data"]["status"] == "completed"
        listed = client.get(server.url + "/api/v3/predictions").json()["data"]
        assert [item["id"] for item in listed["items"]] == [task]  # nothing half-made
        balance = client.get(server.url + "/api/v3/balance").json()["data"]
        assert balance["balance"] == pytest.approx(10.0 - 0.15)  # charged once
        assert server.service.contract_violations == []


def test_a_clock_and_profile_set_through_one_server_hold_on_the_other(
    database: str, tmp_path: Path
) -> None:
    """The virtual clock and the timing profile are shared: frozen, switched and
    advanced through the first server, a task submitted and polled through the
    second follows them (a poll reads the shared clock with its row)."""
    settings = Settings(
        data_dir=tmp_path / "shared", port=0, profile="instant", database=database,
        check_responses=True,
    )  # fmt: skip
    with LiveServer(settings) as first, LiveServer(settings) as second:
        with httpx.Client(headers=AUTH, timeout=30) as client:
            control = first.url + "/_mock"
            assert client.post(control + "/clock", json={"virtual": True}).is_success
            # realistic: Ovi takes 84 s, so only the shared clock can finish it
            assert client.post(
                control + "/profile", json={"profile": "realistic"}
            ).is_success
            answer = client.post(second.url + T2V, json={"prompt": "Shared time."})
            assert answer.status_code == 200, answer.text
            task = answer.json()["data"]["id"]
            poll = f"{second.url}/api/v3/predictions/{task}/result"
            assert client.get(poll).json()["data"]["status"] in (
                "created",
                "processing",
            )

            moved = client.post(control + "/clock", json={"advance": 3600}).json()
            for _ in range(1200):  # the render on the second server: a bound
                view = client.get(poll).json()["data"]
                if view["status"] != "processing":
                    break
                time.sleep(0.05)
            assert view["status"] == "completed", view

            state = client.get(second.url + "/_mock/state").json()["data"]
            assert state["profile"] == "realistic"
            assert state["clock"]["virtual"] is True
            assert state["clock"]["now"] == moved["data"]["clock"]["now"]

            # Without a request, the second server hears of a change (LISTEN):
            # its sleepers (webhook retries, sync waits) wake on the new time.
            assert client.post(control + "/clock", json={"virtual": False}).is_success
            deadline = time.monotonic() + 30  # a bound for a busy machine
            while second.service.clock.virtual and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not second.service.clock.virtual
        assert first.service.contract_violations == []
        assert second.service.contract_violations == []


def test_a_webhook_attempt_made_by_one_server_is_listed_by_the_other(
    database: str, tmp_path: Path
) -> None:
    """The webhook attempt log is shared: the server that took the submit
    delivers; ``GET /_mock/webhooks`` on the other lists the attempt."""
    from .._support import Receiver

    settings = Settings(
        data_dir=tmp_path / "shared", port=0, profile="instant", database=database,
        check_responses=True,
    )  # fmt: skip
    with (
        Receiver() as receiver,
        LiveServer(settings) as first,
        LiveServer(settings) as second,
        httpx.Client(headers=AUTH, timeout=30) as client,
    ):
        task, items = submit_then_list(
            client, first.url, receiver.url, second.url + "/_mock/webhooks"
        )
        assert [(i["prediction_id"], i["status_code"]) for i in items] == [(task, 200)]
        assert len(receiver.deliveries) == 1
        assert client.post(second.url + "/_mock/reset").is_success  # clears it for all
        assert client.get(first.url + "/_mock/webhooks").json()["data"]["items"] == []
        assert first.service.contract_violations == []
        assert second.service.contract_violations == []


def test_a_delivery_to_the_playground_inbox_is_listed_by_the_other(
    pair: tuple[LiveServer, LiveServer, httpx.Client],
) -> None:
    """The playground inbox is shared: a task submitted through the first
    server names the first's inbox as its webhook; the second lists the
    delivery, its signature checked, and a reset through it empties both."""
    first, second, client = pair
    task, items = submit_then_list(
        client,
        first.url,
        first.url + "/playground/inbox",
        second.url + "/_mock/playground/inbox",
    )
    assert [(i["prediction_id"], i["verdict"]) for i in items] == [(task, "valid")]
    assert client.post(second.url + "/_mock/reset").is_success
    assert (
        client.get(first.url + "/_mock/playground/inbox").json()["data"]["items"] == []
    )


def submit_then_list(
    client: httpx.Client, submit_to: str, webhook: str, listing: str
) -> tuple[str, list[dict[str, object]]]:
    """Submit with ``webhook``; the task id and the first non-empty ``listing``."""
    answer = client.post(
        submit_to + T2V,
        params={"webhook": webhook},
        json={"prompt": "Shared.", "seed": 3},
    )
    assert answer.status_code == 200, answer.text
    items: list[dict[str, object]] = []

    def listed() -> bool:
        items[:] = client.get(listing).json()["data"]["items"]
        return bool(items)

    wait_until(listed, timeout_s=60, what=f"an entry in {listing}")
    return answer.json()["data"]["id"], items


def completed_view(client: httpx.Client, base: str, task: str) -> dict[str, Any]:
    """The task's view through ``base`` once it completed."""
    view: dict[str, Any] = {}

    def completed() -> bool:
        view.update(
            client.get(f"{base}/api/v3/predictions/{task}/result").json()["data"]
        )
        return view["status"] == "completed"

    wait_until(completed, timeout_s=60, what=f"{task} completed")
    return view


def test_the_journal_lists_every_server_s_requests_once_answered(
    pair: tuple[LiveServer, LiveServer, httpx.Client],
) -> None:
    """The journal is shared: a request's entry is committed before its answer
    leaves, so the journal read through either server right after lists the
    requests both answered, in the order the client made them."""
    first, second, client = pair
    made = []
    for n in range(12):
        through = (first, second)[n % 2]
        path = f"/api/v3/predictions/missing-{n}/result"
        assert client.get(through.url + path).status_code == 404
        made.append(path)
    for reader in (first, second):
        items = client.get(reader.url + "/_mock/journal").json()["data"]["items"]
        assert [i["path"] for i in items] == made
    assert client.post(first.url + "/_mock/reset").is_success
    assert client.get(second.url + "/_mock/journal").json()["data"]["items"] == []


def test_a_custom_output_set_through_one_server_serves_the_other_once(
    pair: tuple[LiveServer, LiveServer, httpx.Client],
) -> None:
    """Custom outputs are shared: a rule set through the first applies to the
    next submit through the second (which had just found no rule), and its
    ``times`` counts uses through both."""
    import base64
    import io

    from PIL import Image

    first, second, client = pair
    z = "/api/v3/wavespeed-ai/z-image/turbo"
    picture = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 200, 0)).save(picture, format="PNG")

    def outputs(server: LiveServer, prompt: str) -> list[str]:
        answer = client.post(server.url + z, json={"prompt": prompt, "seed": 5})
        assert answer.status_code == 200, answer.text
        task = answer.json()["data"]["id"]
        return list(completed_view(client, server.url, task)["outputs"])

    synthetic = client.get(outputs(second, "before").pop()).content
    rule = {
        "model": "wavespeed-ai/z-image/turbo",
        "match": {"prompt": "cat"},
        "outputs": [
            {"base64": base64.b64encode(picture.getvalue()).decode(), "format": "png"}
        ],
        "times": 1,
    }
    assert client.post(first.url + "/_mock/outputs", json=rule).status_code == 200
    listed = client.get(second.url + "/_mock/outputs").json()["data"]["rules"]
    assert [(r["model"], r["times_left"]) for r in listed] == [(rule["model"], 1)]
    [url] = outputs(second, "cat")
    assert client.get(url).content == picture.getvalue()
    # Spent through the second: the first makes its synthetic image.
    [again] = outputs(first, "cat")
    assert client.get(again).content not in (picture.getvalue(), b"")
    assert synthetic != picture.getvalue()
    assert client.get(first.url + "/_mock/outputs").json()["data"]["rules"] == []


def test_servers_with_data_folders_of_their_own_share_files_through_s3(
    database: str, bucket: str, s3_endpoint: str, tmp_path: Path
) -> None:
    """Two machines, in effect: one database, one bucket, two data folders. A
    task's files and an upload made through the first are downloaded through
    the second (from the bucket: the second never made them), and a reset
    empties the bucket."""
    import base64
    import io

    import boto3
    from PIL import Image

    def settings(folder: str) -> Settings:
        return Settings(
            data_dir=tmp_path / folder, port=0, profile="instant", database=database,
            check_responses=True, outputs=bucket, s3_endpoint=s3_endpoint,
        )  # fmt: skip

    picture = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 200)).save(picture, format="PNG")
    z = "wavespeed-ai/z-image/turbo"
    with (
        LiveServer(settings("first")) as first,
        LiveServer(settings("second")) as second,
        httpx.Client(headers=AUTH, timeout=30) as client,
    ):
        # A custom output: bytes no server could make again.
        rule = {
            "model": z,
            "outputs": [
                {
                    "base64": base64.b64encode(picture.getvalue()).decode(),
                    "format": "png",
                }
            ],
        }
        assert client.post(first.url + "/_mock/outputs", json=rule).status_code == 200
        task = client.post(f"{first.url}/api/v3/{z}", json={"prompt": "blue"}).json()[
            "data"
        ]["id"]
        # A synthetic clip rendered by the first.
        clip_task = client.post(
            first.url + T2V, json={"prompt": "Waves.", "seed": 2}
        ).json()["data"]["id"]
        views = {
            pid: completed_view(client, first.url, pid) for pid in (task, clip_task)
        }
        [url] = views[task]["outputs"]
        got = client.get(url.replace(first.url, second.url))
        assert got.status_code == 200 and got.content == picture.getvalue()
        clip_url = views[clip_task]["outputs"][0]
        mine = client.get(clip_url).content
        theirs = client.get(
            clip_url.replace(first.url, second.url), headers={"Range": "bytes=0-99"}
        )
        assert theirs.status_code == 206 and theirs.content == mine[:100]
        # Kept in the bucket before the task read as completed.
        name = bucket.split("/")[2]
        s3 = boto3.client("s3", endpoint_url=s3_endpoint)
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]}
        assert f"team/mock/outputs/{clip_url.rsplit('/', 1)[1]}" in keys

        uploaded = client.post(
            first.url + "/api/v3/media/upload/binary",
            files={"file": ("face.png", picture.getvalue(), "image/png")},
        ).json()["data"]["download_url"]
        assert not (tmp_path / "second" / "uploads").exists() or not any(
            (tmp_path / "second" / "uploads").rglob("face.png")
        )
        assert (
            client.get(uploaded.replace(first.url, second.url)).content
            == picture.getvalue()
        )

        assert client.post(second.url + "/_mock/reset").is_success
        # Everything but the render cache, which is keyed by content: never stale.
        left = {o["Key"] for o in s3.list_objects_v2(Bucket=name).get("Contents", [])}
        assert left and all(k.startswith("team/mock/cache/") for k in left)


def test_a_clip_made_on_one_machine_is_fetched_not_made_on_another(
    database: str,
    bucket: str,
    s3_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The render cache is the bucket's too: the same body through a server
    with a data folder (and cache) of its own gets the clip from the bucket,
    and its task's output is copied there from the cached clip."""
    import boto3
    from wavespeed_mock.mock_server.core.objects import S3Objects
    from wavespeed_mock.mock_server.media import cache

    made: list[Path] = []
    make = cache._make
    monkeypatch.setattr(
        cache, "_make", lambda *args: (made.append(args[5]), make(*args))[1]
    )
    sent: list[str] = []
    put = S3Objects.put
    monkeypatch.setattr(
        S3Objects,
        "put",
        lambda self, key, path: (sent.append(key), put(self, key, path))[1],
    )

    def settings(folder: str) -> Settings:
        return Settings(
            data_dir=tmp_path / folder, port=0, profile="instant", database=database,
            check_responses=True, outputs=bucket, s3_endpoint=s3_endpoint,
        )  # fmt: skip

    body = {"prompt": "Made once.", "seed": 9}
    with (
        LiveServer(settings("first")) as first,
        LiveServer(settings("second")) as second,
        httpx.Client(headers=AUTH, timeout=30) as client,
    ):
        tasks = []
        for server in (first, second):
            task = client.post(server.url + T2V, json=body).json()["data"]["id"]
            tasks.append(completed_view(client, server.url, task))
        assert len(made) == 1 and made[0].is_relative_to(tmp_path / "first")
        engine = second.service.engine
        assert engine.cache.fetched == 1  # type: ignore[attr-defined]
        clip = client.get(tasks[1]["outputs"][0]).content
        assert clip == client.get(tasks[0]["outputs"][0]).content
        name, prefix = bucket.split("/")[2], "team/mock/"
        s3 = boto3.client("s3", endpoint_url=s3_endpoint)
        kept = s3.get_object(Bucket=name, Key=f"{prefix}outputs/{tasks[1]['id']}.mp4")
        assert kept["Body"].read() == clip
        # Copied in the bucket from the cached clip: no task's output was sent.
        assert [k for k in sent if k.startswith("outputs/")] == []
        assert (
            s3.get_object(Bucket=name, Key=f"{prefix}cache/{made[0].name}")[
                "Body"
            ].read()
            == clip
        )


def test_a_scenario_set_through_one_server_applies_through_the_other(
    pair: tuple[LiveServer, LiveServer, httpx.Client],
) -> None:
    first, second, client = pair

    def set_scenario(server: LiveServer, **body: Any) -> None:
        answer = client.post(server.url + "/_mock/scenarios", json=body)
        assert answer.status_code == 200, answer.text
        wait_until(
            lambda: not (first.service.faults.idle() or second.service.faults.idle()),
            what="every server to know the scenario",
        )

    def submit(server: LiveServer, **headers: str) -> dict[str, Any]:
        answer = client.post(server.url + T2V, json={"prompt": "p"}, headers=headers)
        assert answer.status_code == 200, answer.text
        task = answer.json()["data"]["id"]
        poll = f"{server.url}/api/v3/predictions/{task}/result"
        wait_until(
            lambda: (
                client.get(poll).json()["data"]["status"] in ("completed", "failed")
            ),
            what=f"{task} to end",
        )
        data: dict[str, Any] = client.get(poll).json()["data"]
        return data

    # the next two submits fail, whichever server they reach
    set_scenario(first, scope="next", count=2, fail_code=1403)
    assert [submit(s).get("code") for s in (second, first, second)] == [
        1403, 1403, None,
    ]  # fmt: skip
    # a named scenario set through one, asked for through the other
    set_scenario(second, scope="named", name="flaky", fail_code=1200)
    assert submit(first, **{"X-Wavespeed-Mock-Scenario": "flaky"})["code"] == 1200
    listed = client.get(first.url + "/_mock/scenarios").json()["data"]
    assert listed == client.get(second.url + "/_mock/scenarios").json()["data"]
    assert listed["scenarios"]["named"]["flaky"]["uses"] == 1
    # cleared through one: gone for both
    assert client.delete(second.url + "/_mock/scenarios").status_code == 200
    wait_until(
        lambda: first.service.faults.idle() and second.service.faults.idle(),
        what="every server to know the scenarios are gone",
    )
    assert submit(first).get("code") is None
