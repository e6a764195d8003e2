"""Bounded growth: retention by count and age, upload expiry, the cache bound,
``POST /_mock/prune``, ``wavespeed-mock prune``, and a reset that clears uploads."""

from __future__ import annotations

import base64
import io
import os
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image
from wavespeed_mock.mock_server.cli import main
from wavespeed_mock.mock_server.media.cache import EVICTION_GRACE_S, ClipCache

from .._support import (
    I2V,
    PROMPT,
    T2V,
    make_server,
    poll_until_terminal,
    running,
    upload_binary,
    wait_for,
)


def png(colour: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (colour, 10, 10)).save(out, format="PNG")
    return out.getvalue()


def data_uri(colour: int) -> str:
    return "data:image/png;base64," + base64.b64encode(png(colour)).decode()


async def submit(client: httpx.AsyncClient, body: dict[str, object]) -> str:
    answer = await client.post(I2V if "image" in body else T2V, json=body)
    assert answer.status_code == 200, answer.text
    pid: str = answer.json()["data"]["id"]
    assert (await poll_until_terminal(client, pid))["status"] == "completed"
    return pid


@pytest.mark.anyio
async def test_count_retention_removes_the_oldest_with_their_files(
    tmp_path: Path,
) -> None:
    server = make_server(tmp_path, max_predictions=3, starting_balance=10.0)
    service = server.service
    async with running(server) as client:
        ids = [await submit(client, {"image": data_uri(i), **PROMPT}) for i in range(5)]
        await wait_for(lambda: len(service.store) == 3)
        assert [p.id for p in service.store.all()] == ids[2:]
        for pid in ids[:2]:
            gone = await client.get(f"/api/v3/predictions/{pid}/result")
            assert gone.status_code == 404
        await wait_for(lambda: not (tmp_path / "outputs" / f"{ids[0]}.mp4").exists())
        kept = sorted(f.name for f in (tmp_path / "outputs").iterdir())
        assert kept == sorted(f"{pid}.mp4" for pid in ids[2:])
        inputs = list((tmp_path / "inputs").iterdir())
        assert len(inputs) == 3  # each pruned task's data: image went with it
        # Pruning never changes a balance: the pruned tasks stay charged.
        balance = (await client.get("/api/v3/balance")).json()["data"]["balance"]
    price = 10.0 - balance
    assert price > 0 and round(price / 5, 6) * 5 == pytest.approx(price)


@pytest.mark.anyio
async def test_a_kept_image_stays_while_a_stored_prediction_uses_it(
    tmp_path: Path,
) -> None:
    server = make_server(tmp_path, max_predictions=1)
    async with running(server) as client:
        await submit(client, {"image": data_uri(7), **PROMPT, "seed": 1})
        await submit(client, {"image": data_uri(7), **PROMPT, "seed": 2})
        await wait_for(lambda: len(server.service.store) == 1)
        [kept] = (tmp_path / "inputs").iterdir()
        assert kept.read_bytes() == png(7)


@pytest.mark.anyio
async def test_age_retention_on_the_server_clock_and_the_prune_route(
    tmp_path: Path,
) -> None:
    server = make_server(tmp_path, virtual_clock=True, max_age_s=3600.0)
    service = server.service
    async with running(server) as client:
        old = await submit(client, {"prompt": "old", "seed": 1})
        await client.post("/_mock/clock", json={"advance": 1800})
        young = await submit(client, {"prompt": "young", "seed": 2})
        nothing = await client.post("/_mock/prune", json={})
        assert nothing.status_code == 200
        assert nothing.json()["data"]["predictions"] == 0
        await client.post("/_mock/clock", json={"advance": 1801})
        pruned = (await client.post("/_mock/prune")).json()["data"]
        assert pruned["predictions"] == 1 and pruned["outputs"] == 1
        assert [p.id for p in service.store.all()] == [young]
        assert (
            await client.get(f"/api/v3/predictions/{old}/result")
        ).status_code == 404
        # A one-off bound: the body overrides the settings for this prune only.
        once = await client.post("/_mock/prune", json={"max_predictions": 0})
        assert once.json()["data"]["predictions"] == 0  # 0 keeps all
        assert service.retention.max_age_s == 3600.0
        bad = await client.post("/_mock/prune", json={"max_age_s": -1})
        assert bad.status_code == 400 and "max_age_s" in bad.json()["message"]
        unknown = await client.post("/_mock/prune", json={"max_age": 1})
        assert unknown.status_code == 400 and "max_age" in unknown.json()["message"]


@pytest.mark.anyio
async def test_uploads_expire_and_a_reset_clears_them(tmp_path: Path) -> None:
    server = make_server(tmp_path, max_upload_age_s=3600.0)
    async with running(server) as client:
        first = await upload_binary(client, "a.png", png(1))
        second = await upload_binary(client, "b.png", png(2))
        unused = (
            await client.post(
                "/api/v3/media/uploads", json={"filename": "c.png", "size": 10}
            )
        ).json()["data"]
        folder = tmp_path / "uploads" / first["download_url"].split("/")[-2]
        hours_ago = time.time() - 7200
        os.utime(folder, (hours_ago, hours_ago))
        # The record says when it came in; age it as the clock would.
        upload_id = folder.name
        key = f"upload_ticket:{upload_id}"
        import json

        record = json.loads(server.service.store.get_value(key) or "{}")
        record["created_at"] = hours_ago
        server.service.store.set_value(key, json.dumps(record))
        pruned = (await client.post("/_mock/prune")).json()["data"]
        assert pruned["uploads"] == 1
        assert (await client.get(first["download_url"])).status_code == 404
        assert (await client.get(second["download_url"])).status_code == 200
        assert (await client.post("/_mock/reset")).status_code == 200
        assert (await client.get(second["download_url"])).status_code == 404
        put = await client.put(unused["upload"]["url"], content=png(3))
        assert put.status_code == 404  # its ticket went with the reset
    left = [p for p in (tmp_path / "uploads").iterdir() if p.name != ".partial"]
    assert left == []


def test_the_cache_bound_evicts_least_recently_used_clips(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    now = time.time()
    paths = []
    for i, age in enumerate([5000, 4000, 3000, 2000]):
        key = f"{i:02x}" + "0" * 62
        path = cache.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000)
        os.utime(path, (now - age, now - age))
        paths.append(path)
    cache.touch(paths[0].stem)  # used just now: the newest
    released: list[Path] = []
    files, freed = cache.trim(2500, released.extend)
    assert (files, freed) == (2, 2000)
    assert released == [paths[1], paths[2]]
    assert [p.exists() for p in paths] == [True, False, False, True]
    assert cache.size() == 2000
    # Clips used within the grace period stay, even over the bound.
    os.utime(paths[3], (now - EVICTION_GRACE_S / 2,) * 2)
    assert cache.trim(0) == (0, 0)
    os.utime(paths[3], (now - EVICTION_GRACE_S * 2,) * 2)
    assert cache.trim(0) == (1, 1000)  # only the one outside the grace period
    assert paths[0].exists() and not paths[3].exists()


@pytest.mark.anyio
async def test_an_evicted_clip_stays_served_to_its_predictions(tmp_path: Path) -> None:
    from wavespeed_mock.mock_server.assembly import build_server
    from wavespeed_mock.mock_server.settings import Settings

    settings = Settings(
        data_dir=tmp_path / "data",
        profile="instant",
        check_responses=True,
        prune_interval_s=0,
    )
    server = build_server(settings)
    async with running(server) as client:
        body = {"prompt": "Waves at dawn.", "seed": 3}
        first = await submit(client, body)
        second = await submit(client, body)  # a cache hit: served from the cache
        p = server.service.store.get(second)
        assert p is not None and p.output_file is not None
        clip = Path(p.output_file)
        old = time.time() - 2 * EVICTION_GRACE_S
        os.utime(clip, (old, old))
        pruned = (await client.post("/_mock/prune", json={"max_cache_bytes": 1})).json()
        assert pruned["data"]["cache_files"] == 1
        assert not clip.exists()
        for pid in (first, second):
            got = await client.get(f"/outputs/{pid}.mp4")
            assert got.status_code == 200 and got.content[4:8] == b"ftyp"


def test_prune_command_on_a_data_folder(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import anyio

    server = make_server(tmp_path)

    async def fill() -> None:
        async with running(server) as client:
            for seed in range(4):
                await submit(client, {"prompt": "p", "seed": seed})

    anyio.run(fill)
    server.service.close()
    code = main(["prune", "--data-dir", str(tmp_path), "--max-predictions", "1"])
    assert code == 0
    assert '"predictions": 3' in capsys.readouterr().out
    again = make_server(tmp_path)
    assert len(again.service.store) == 1
    again.service.close()
