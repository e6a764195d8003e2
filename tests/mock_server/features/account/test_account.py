"""The account: ledger and balance, refunds, history, deletion, catalogue and prices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from wavespeed_mock.mock_server import RenderFailed
from wavespeed_mock.mock_server.core.prediction import format_timestamp
from wavespeed_mock.mock_server.features.account import UNLIMITED_BALANCE

from ..._fakes import fake_engine
from ..._support import I2V, PROMPT, T2V, make_server, poll_until_terminal, running

IMAGE = {"image": "https://example.com/knight.png", **PROMPT}


async def balance(client: httpx.AsyncClient) -> float:
    answer = await client.get("/api/v3/balance")
    assert answer.status_code == 200
    return float(answer.json()["data"]["balance"])


async def submit(client: httpx.AsyncClient, path: str = T2V, **headers: str) -> str:
    answer = await client.post(
        path, json=IMAGE if path == I2V else PROMPT, headers=headers
    )
    assert answer.status_code == 200, answer.text
    pid = str(answer.json()["data"]["id"])
    await poll_until_terminal(client, pid, **headers)
    return pid


@pytest.mark.anyio
async def test_unlimited_balance_shows_a_large_number_minus_the_spend(
    tmp_path: Path,
) -> None:
    async with running(make_server(tmp_path)) as client:
        assert await balance(client) == UNLIMITED_BALANCE
        await submit(client)
        await submit(client, I2V)
        assert await balance(client) == pytest.approx(UNLIMITED_BALANCE - 0.30)
        body = (await client.get("/api/v3/balance")).json()
        assert body["code"] == 200
        assert body["data"]["currency"] == "USD"
        # The newer docs' path: the same balance, the same key's spend.
        other = (await client.get("/api/v3/account/balance")).json()
        assert other["data"] == body["data"]
        assert (
            await client.get("/api/v3/account/balance", headers={"Authorization": ""})
        ).status_code == 401


@pytest.mark.anyio
async def test_insufficient_balance_is_403_and_charges_survive_a_restart(
    tmp_path: Path,
) -> None:
    server = make_server(tmp_path, starting_balance=0.40)
    async with running(server) as client:
        assert await balance(client) == 0.40
        await submit(client)
        await submit(client)
        assert await balance(client) == pytest.approx(0.10)
        refused = await client.post(T2V, json=PROMPT)
        assert refused.status_code == 403
        assert refused.json()["code"] == 403
        assert "Insufficient balance" in refused.json()["message"]
        assert "$0.10" in refused.json()["message"]
        assert len(server.service.store) == 2
        # Another key has its own ledger.
        assert await submit(client, Authorization="Bearer other")
    async with running(make_server(tmp_path, starting_balance=0.40)) as client:
        assert await balance(client) == pytest.approx(0.10)


@pytest.mark.anyio
async def test_failed_cancelled_and_timed_out_tasks_are_refunded(
    tmp_path: Path,
) -> None:
    server = make_server(tmp_path, starting_balance=0.15)
    async with running(server) as client:
        fake_engine(server).fail_with = RenderFailed("boom")
        failed = await submit(client)
        result = (await client.get(f"/api/v3/predictions/{failed}/result")).json()
        assert result["data"]["status"] == "failed"
        assert await balance(client) == 0.15
        fake_engine(server).fail_with = None
        done = await submit(client)
        assert await balance(client) == 0.0
        for status in ("cancelled", "timeout"):
            p = server.service.store.get(done)
            assert p is not None
            server.service.store.update(p, forced_status=status)
            assert await balance(client) == 0.15


@pytest.mark.anyio
async def test_the_bill_lists_charges_and_refunds_per_key(tmp_path: Path) -> None:
    server = make_server(tmp_path, virtual_clock=True)
    clock: Any = server.service.clock
    async with running(server) as client:
        first = await submit(client)
        clock.advance(10)
        second = await submit(client, I2V)
        clock.advance(10)
        fake_engine(server).fail_with = RenderFailed("boom")
        failed = await submit(client)
        fake_engine(server).fail_with = None
        others = await submit(client, Authorization="Bearer other")

        async def bill(**body: Any) -> dict[str, Any]:
            answer = await client.post("/api/v3/billings/search", json=body)
            assert answer.status_code == 200, answer.text
            data: dict[str, Any] = answer.json()["data"]
            return data

        everything = await bill(page_size=100)
        rows = [
            (r["prediction"]["uuid"], r["billing_type"]) for r in everything["items"]
        ]
        # Newest first; the failed task's charge and its refund; never another key's.
        assert rows[:2] == [(failed, "refund"), (failed, "deduct")]
        assert sorted(rows[2:]) == sorted([(first, "deduct"), (second, "deduct")])
        assert others not in {pid for pid, _ in rows}
        assert everything["has_more"] is False
        row = everything["items"][0]
        assert row["price"] == 0.15
        assert row["prediction"] == {
            "uuid": failed,
            "model_uuid": "character-ai/ovi/text-to-video",
            "status": "failed",
        }
        # The bill and the balance agree.
        signed = sum(
            r["price"] * (1 if r["billing_type"] == "deduct" else -1)
            for r in everything["items"]
        )
        assert await balance(client) == pytest.approx(UNLIMITED_BALANCE - signed)

        # What clients send to reconcile one task, oldest first.
        one = await bill(prediction_uuids=[failed], sort="created_at ASC")
        assert [r["billing_type"] for r in one["items"]] == ["deduct", "refund"]
        deducts = await bill(billing_type="deduct")
        assert {r["prediction"]["uuid"] for r in deducts["items"]} == {
            first,
            second,
            failed,
        }
        by_model = await bill(model_uuid="character-ai/ovi/image-to-video")
        assert [r["prediction"]["uuid"] for r in by_model["items"]] == [second]
        p = server.service.store.get(second)
        assert p is not None
        window = await bill(
            start_time=format_timestamp(p.created_at),
            end_time=format_timestamp(p.created_at + 5),
        )
        assert [r["prediction"]["uuid"] for r in window["items"]] == [second]
        paged = await bill(page=2, page_size=2)
        assert paged["page"] == 2 and paged["has_more"] is False
        assert len(paged["items"]) == 2
        assert (await bill(page=1, page_size=2))["has_more"] is True
        assert (await bill(access_key_uuid="someone-else"))["items"] == []
        # No body at all is the first page.
        bare = await client.post("/api/v3/billings/search")
        assert bare.status_code == 200
        assert len(bare.json()["data"]["items"]) == 4

        refused = await client.post("/api/v3/billings/search", json={"page_size": 1000})
        assert refused.status_code == 400
        assert "$.page_size" in refused.json()["message"]
        no_key = await client.post(
            "/api/v3/billings/search", json={}, headers={"Authorization": ""}
        )
        assert no_key.status_code == 401


@pytest.mark.anyio
async def test_history_pages_filters_and_keys(tmp_path: Path) -> None:
    server = make_server(tmp_path, virtual_clock=True)
    clock: Any = server.service.clock
    async with running(server) as client:
        ids = []
        for path in (T2V, T2V, I2V, T2V):
            ids.append(await submit(client, path))
            clock.advance(10)
        fake_engine(server).fail_with = RenderFailed("boom")
        ids.append(await submit(client))
        await submit(client, Authorization="Bearer other")
        newest_first = ids[::-1]

        async def history(**body: Any) -> list[str]:
            answer = await client.post("/api/v3/predictions", json=body)
            assert answer.status_code == 200, answer.text
            data = answer.json()["data"]
            assert data["page"] == body.get("page", 1)
            # GET takes the same filters as query parameters, with the same answer.
            by_query = await client.get("/api/v3/predictions", params=body)
            assert by_query.status_code == 200, by_query.text
            assert by_query.json() == answer.json()
            return [item["id"] for item in data["items"]]

        assert await history() == newest_first
        empty = await client.post("/api/v3/predictions")
        assert [i["id"] for i in empty.json()["data"]["items"]] == newest_first
        page = (
            await client.post("/api/v3/predictions", json={"page": 2, "page_size": 2})
        ).json()["data"]
        assert page["total"] == 5
        assert [i["id"] for i in page["items"]] == newest_first[2:4]
        assert await history(page=4, page_size=2) == []
        assert await history(model="character-ai/ovi/image-to-video") == [ids[2]]
        assert await history(status="failed") == [ids[4]]
        assert await history(status="completed") == newest_first[1:]
        created = [server.service.store.get(i).created_at for i in ids]  # type: ignore[union-attr]
        assert (
            await history(created_after=format_timestamp(created[1]))
            == newest_first[:4]
        )
        assert await history(created_before=format_timestamp(created[2])) == ids[1::-1]
        assert (
            await history(
                created_after="2020-01-01T00:00:00.123456789Z",
                created_before="2999-01-01T00:00:00+02:00",
            )
            == newest_first
        )

        for bad in (
            {"page_size": 101},
            {"page": 0},
            {"status": "bogus"},
            {"created_after": "yesterday"},
        ):
            answer = await client.post("/api/v3/predictions", json=bad)
            assert answer.status_code == 400, bad
            assert next(iter(bad)) in answer.json()["message"]
            by_query = await client.get("/api/v3/predictions", params=bad)
            assert by_query.status_code == 400, bad
            assert f"$.{next(iter(bad))}" in by_query.json()["message"]
        for bad_query in ({"page": "two"}, {"page_size": "1e3"}):
            answer = await client.get("/api/v3/predictions", params=bad_query)
            assert answer.status_code == 400, bad_query
            assert answer.json()["code"] == 400
            assert f"$.{next(iter(bad_query))}" in answer.json()["message"]

        # Only the past seven days are kept.
        clock.advance(
            7 * 24 * 3600 - 15
        )  # now - 7 days falls between ids[2] and ids[3]
        assert await history() == [ids[4], ids[3]]


@pytest.mark.anyio
async def test_delete_marks_own_predictions_deleted(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    async with running(server) as client:
        mine = await submit(client)
        kept = await submit(client)
        theirs = await submit(client, Authorization="Bearer other")
        answer = await client.post(
            "/api/v3/predictions/delete", json={"ids": [mine, theirs, "nope", mine]}
        )
        assert answer.status_code == 200
        assert answer.json() == {
            "code": 200,
            "message": "success",
            "data": {"deleted_count": 1},
        }
        result = (await client.get(f"/api/v3/predictions/{mine}/result")).json()["data"]
        assert result["status"] == "deleted"
        assert result["outputs"] == []
        assert not (server.service.outputs_dir / f"{mine}.mp4").exists()
        other = await client.get(
            f"/api/v3/predictions/{theirs}/result",
            headers={"Authorization": "Bearer other"},
        )
        assert other.json()["data"]["status"] == "completed"

        again = await client.post("/api/v3/predictions/delete", json={"ids": [mine]})
        assert again.json()["data"]["deleted_count"] == 0
        history = (await client.post("/api/v3/predictions", json={})).json()["data"]
        assert [i["id"] for i in history["items"]] == [kept]
        deleted = (
            await client.post("/api/v3/predictions", json={"status": "deleted"})
        ).json()["data"]
        assert [i["id"] for i in deleted["items"]] == [mine]
        bad_bodies: list[dict[str, Any]] = [{"ids": []}, {}, {"ids": "abc"}]
        for bad in bad_bodies:
            assert (
                await client.post("/api/v3/predictions/delete", json=bad)
            ).status_code == 400
        # A deleted completed task stays paid for.
        assert await balance(client) == pytest.approx(UNLIMITED_BALANCE - 0.30)


@pytest.mark.anyio
async def test_models_come_from_the_registry(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    async with running(server) as client:
        answer = await client.get("/api/v3/models")
    models = answer.json()["data"]
    ids = [m["model_id"] for m in models]
    assert ids[:2] == [
        "character-ai/ovi/image-to-video",
        "character-ai/ovi/text-to-video",
    ]
    assert len(ids) >= 40 and "wavespeed-ai/z-image/turbo" in ids
    i2v = models[0]
    assert i2v["base_price"] == 0.15
    assert i2v["type"] == "image-to-video"
    [api] = i2v["api_schema"]["api_schemas"]
    assert api["method"] == "POST"
    assert api["api_path"] == I2V
    assert api["server"] == server.service.base_url
    schema = api["request_schema"]
    assert schema["required"] == ["image", "prompt"]
    assert schema["x-order-properties"] == [
        "image",
        "prompt",
        "seed",
        "enable_sync_mode",
        "enable_base64_output",
    ]
    # The live shape: an uploader for the image, the API-only switches
    # disabled, no webhook_url, no unknown fields, none of the mock's notes.
    assert schema["properties"]["image"]["x-ui-component"] == "uploader"
    assert schema["properties"]["enable_sync_mode"]["disabled"] is True
    assert schema["additionalProperties"] is False
    text = json.dumps(models)
    assert "$ref" not in text and "webhook_url" not in text and "x-mock" not in text
    assert "data:image" not in text and "[inferred]" not in text


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/api/v3/model/price", "/api/v3/model/pricing"])
async def test_price_endpoints(tmp_path: Path, path: str) -> None:
    async with running(make_server(tmp_path)) as client:
        answer = await client.post(
            path, json={"model_id": "character-ai/ovi/text-to-video", "inputs": PROMPT}
        )
        assert answer.json()["data"] == {
            "model_id": "character-ai/ovi/text-to-video",
            "price": 0.15,
            "discounted_price": 0.15,
            "unit_price": 0.15,
            "currency": "USD",
        }
        unknown = await client.post(
            path, json={"model_id": "character-ai/ovi/text2video"}
        )
        assert unknown.status_code == 404
        assert (
            "Did you mean 'character-ai/ovi/text-to-video'" in unknown.json()["message"]
        )
        missing = await client.post(path, json={"inputs": {}})
        assert missing.status_code == 400
        assert "model_id" in missing.json()["message"]


@pytest.mark.anyio
async def test_account_routes_need_a_key(tmp_path: Path) -> None:
    async with running(make_server(tmp_path), key="") as client:
        for method, path in [
            ("GET", "/api/v3/balance"),
            ("GET", "/api/v3/models"),
            ("POST", "/api/v3/predictions"),
            ("POST", "/api/v3/predictions/delete"),
            ("POST", "/api/v3/model/price"),
        ]:
            answer = await client.request(method, path, json={})
            assert answer.status_code == 401, path


@pytest.mark.anyio
async def test_a_leap_second_is_a_time_like_any_other(tmp_path: Path) -> None:
    # RFC 3339 allows second 60; it was a 500 (datetime refuses it).
    leap = "2016-12-31T23:59:60Z"
    async with running(make_server(tmp_path)) as client:
        pid = await submit(client)
        history = await client.get(
            "/api/v3/predictions", params={"created_after": leap}
        )
        assert history.status_code == 200
        assert [p["id"] for p in history.json()["data"]["items"]] == [pid]
        bill = await client.post("/api/v3/billings/search", json={"start_time": leap})
        assert bill.status_code == 200
        assert [r["prediction"]["uuid"] for r in bill.json()["data"]["items"]] == [pid]
        journal = await client.get("/_mock/journal", params={"since": leap})
        assert journal.status_code == 200
        paths = [item["path"] for item in journal.json()["data"]["items"]]
        assert "/api/v3/character-ai/ovi/text-to-video" in paths
        # and since filters: nothing was sent after a time in the future
        later = await client.get(
            "/_mock/journal", params={"since": "2999-12-31T23:59:60Z"}
        )
        assert later.status_code == 200
        assert later.json()["data"]["items"] == []
