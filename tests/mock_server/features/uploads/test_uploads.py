"""Media upload: the ticket + PUT flow, the binary upload, limits, and file safety."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from PIL import Image
from wavespeed_mock.contracts import upload_limits
from wavespeed_mock.mock_server.features.uploads import (
    media_type_of,
    safe_filename,
)

from ..._fakes import fake_engine
from ..._support import (
    I2V,
    PROMPT,
    live_server,
    make_server,
    poll_until_terminal,
    running,
    upload_binary,
)


def png_bytes(size: int = 0, *, fmt: str = "PNG", width: int = 32) -> bytes:
    """A small image; padded to ``size`` bytes (Pillow ignores what follows)."""
    out = io.BytesIO()
    Image.new("RGB", (width, 24), (10, 200, 30)).save(out, format=fmt)
    data = out.getvalue()
    return data + b"\0" * max(0, size - len(data))


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("photo.png", "photo.png"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\win.ini", "win.ini"),
        ("my pic (1).JPG", "my_pic_1_.JPG"),
        ("..", "upload"),
        (".hidden.png", "hidden.png"),
        ("", "upload"),
        ("ünï©ode.webp", "_n_ode.webp"),
        ("a" * 300 + ".png", "a" * 146 + ".png"),
    ],
)
def test_safe_filename(name: str, safe: str) -> None:
    assert safe_filename(name) == safe


def test_media_type_of() -> None:
    assert media_type_of("a.PNG") == "image"
    assert media_type_of("a.mov") == "video"
    assert media_type_of("a.webm") == "video"
    assert media_type_of("a.webm", "audio/webm") == "audio"
    assert media_type_of("noext", "image/png") == "image"
    assert media_type_of("a.txt", "text/plain") is None


@pytest.mark.anyio
async def test_ticket_put_download_and_use_as_image(tmp_path: Path) -> None:
    data = png_bytes()
    server = make_server(tmp_path)
    async with running(server) as client:
        ticket = await client.post(
            "/api/v3/media/uploads",
            json={
                "filename": "knight.png",
                "size": len(data),
                "content_type": "image/png",
            },
        )
        assert ticket.status_code == 200
        body = ticket.json()
        assert body["code"] == 200
        t = body["data"]
        assert t["type"] == "image"
        assert t["filename"] == "knight.png"
        assert t["size"] == len(data)
        assert t["upload"]["method"] == "PUT"
        assert t["upload"]["headers"] == {"Content-Type": "image/png"}
        assert t["download_url"].startswith(server.service.base_url + "/uploads/")

        # The PUT target needs no bearer key, like a pre-signed storage URL.
        put = await client.put(
            t["upload"]["url"],
            content=data,
            headers={"Authorization": "", **t["upload"]["headers"]},
        )
        assert put.status_code == 200
        assert put.json()["code"] == 200

        got = await client.get(t["download_url"], headers={"Authorization": ""})
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["content-type"] == "image/png"

        submitted = await client.post(I2V, json={"image": t["download_url"], **PROMPT})
        pid = submitted.json()["data"]["id"]
        assert (await poll_until_terminal(client, pid))["status"] == "completed"
    [job] = fake_engine(server).jobs
    assert job.image == data
    assert job.image_source == "upload"
    # The file sits where the image loader looks, and nothing half-written is left.
    upload_id = t["download_url"].split("/")[-2]
    assert (tmp_path / "uploads" / upload_id / "knight.png").read_bytes() == data
    assert list((tmp_path / "uploads" / ".partial").iterdir()) == []


@pytest.mark.anyio
async def test_ticket_refusals(tmp_path: Path) -> None:
    server = make_server(tmp_path, max_upload_bytes=1000)
    async with running(server) as client:
        unauthenticated = await client.post(
            "/api/v3/media/uploads",
            json={"filename": "a.png", "size": 1},
            headers={"Authorization": ""},
        )
        assert unauthenticated.status_code == 401
        too_big = await client.post(
            "/api/v3/media/uploads", json={"filename": "a.png", "size": 1001}
        )
        assert too_big.status_code == 413
        assert "1,000-byte limit" in too_big.json()["message"]
        missing = await client.post("/api/v3/media/uploads", json={"filename": "a.png"})
        assert missing.status_code == 400
        assert "size" in missing.json()["message"]
        unsupported = await client.post(
            "/api/v3/media/uploads", json={"filename": "notes.txt", "size": 3}
        )
        assert unsupported.status_code == 400
        assert "format not supported" in unsupported.json()["message"]


@pytest.mark.anyio
async def test_put_refusals(tmp_path: Path) -> None:
    server = make_server(tmp_path, max_upload_bytes=1000)
    async with running(server) as client:
        t = (
            await client.post(
                "/api/v3/media/uploads", json={"filename": "a.png", "size": 10}
            )
        ).json()["data"]
        url = t["upload"]["url"]
        unknown = await client.put(
            url.replace(url.split("/")[-2], "0" * 32), content=b"x"
        )
        assert unknown.status_code == 404
        assert "ticket" in unknown.json()["message"]
        wrong_name = await client.put(url.rsplit("/", 1)[0] + "/b.png", content=b"x")
        assert wrong_name.status_code == 404
        not_hex = await client.put(
            server.service.base_url + "/uploads/nothex/a.png", content=b"x"
        )
        assert not_hex.status_code == 404
        over_declared = await client.put(url, content=b"x" * 11)
        assert over_declared.status_code == 413

        async def chunks() -> object:  # no Content-Length: counted while streaming
            for _ in range(11):
                yield b"x"

        streamed = await client.put(url, content=chunks())  # type: ignore[arg-type]
        assert streamed.status_code == 413
        assert (await client.get(t["download_url"])).status_code == 404
        not_an_image = await client.put(url, content=b"y" * 10)
        assert not_an_image.status_code == 400
        assert "not a readable image" in not_an_image.json()["message"]
        assert (await client.get(t["download_url"])).status_code == 404
        small = png_bytes()[:10]  # a PNG's signature and no header: unreadable
        assert (await client.put(url, content=small)).status_code == 400
        image = png_bytes(1000)
        t = (
            await client.post(
                "/api/v3/media/uploads", json={"filename": "a.png", "size": 1000}
            )
        ).json()["data"]
        ok = await client.put(t["upload"]["url"], content=image)
        assert ok.status_code == 200
        assert (await client.get(t["download_url"])).content == image


@pytest.mark.anyio
async def test_binary_upload(tmp_path: Path) -> None:
    data = png_bytes()
    server = make_server(tmp_path)
    async with running(server) as client:
        answer = await client.post(
            "/api/v3/media/upload/binary",
            files={"file": ("../../pic.png", data, "image/png")},
        )
        assert answer.status_code == 200
        d = answer.json()["data"]
        assert d == {
            "type": "image",
            "download_url": d["download_url"],
            "filename": "pic.png",
            "size": len(data),
        }
        assert (await client.get(d["download_url"])).content == data

        wrong_field = await client.post(
            "/api/v3/media/upload/binary",
            files={"image": ("pic.png", data, "image/png")},
        )
        assert wrong_field.status_code == 400
        assert "'file'" in wrong_field.json()["message"]
        not_multipart = await client.post(
            "/api/v3/media/upload/binary", json={"file": "x"}
        )
        assert not_multipart.status_code == 400
        unsupported = await client.post(
            "/api/v3/media/upload/binary",
            files={"file": ("x.exe", b"MZ", "application/x")},
        )
        assert unsupported.status_code == 400
        audio = await client.post(
            "/api/v3/media/upload/binary",
            files={"file": ("voice.mp3", b"ID3", "audio/mpeg")},
        )
        assert audio.json()["data"]["type"] == "audio"
    stored = [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]
    assert all(
        p.resolve().is_relative_to((tmp_path / "uploads").resolve()) for p in stored
    )


@pytest.mark.anyio
async def test_binary_upload_size_limit(tmp_path: Path) -> None:
    server = make_server(tmp_path, max_upload_bytes=1000)
    async with running(server) as client:
        fits = await client.post(
            "/api/v3/media/upload/binary",
            files={"file": ("a.png", png_bytes(1000), "image/png")},
        )
        assert fits.status_code == 200
        over = await client.post(
            "/api/v3/media/upload/binary",
            files={"file": ("a.png", png_bytes(1001), "image/png")},
        )
        assert over.status_code == 413
        assert "File too large" in over.json()["message"]
        huge = await client.post(
            "/api/v3/media/upload/binary",
            files={"file": ("a.png", b"x" * 200_000, "image/png")},
        )
        assert huge.status_code == 413


@pytest.mark.anyio
async def test_the_documented_upload_route_answers_a_url(tmp_path: Path) -> None:
    data = png_bytes()
    server = make_server(tmp_path)
    async with running(server) as client:
        answer = await client.post(
            "/api/v3/upload", files={"file": ("pic.png", data, "image/png")}
        )
        assert answer.status_code == 200
        body = answer.json()
        assert body["code"] == 200
        assert list(body["data"]) == ["url"]
        url = body["data"]["url"]
        assert (await client.get(url)).content == data
        # The URL is an image a submit takes, like any other upload's.
        submitted = await client.post(I2V, json={"image": url, **PROMPT})
        assert submitted.status_code == 200
        result = await poll_until_terminal(client, submitted.json()["data"]["id"])
        assert result["status"] == "completed"

        unsupported = await client.post(
            "/api/v3/upload", files={"file": ("x.exe", b"MZ", "application/x")}
        )
        assert unsupported.status_code == 400
        assert "not supported" in unsupported.json()["message"]
        no_file = await client.post(
            "/api/v3/upload", files={"image": ("pic.png", data, "image/png")}
        )
        assert no_file.status_code == 400
        assert "'file'" in no_file.json()["message"]
        no_key = await client.post(
            "/api/v3/upload",
            files={"file": ("pic.png", data, "image/png")},
            headers={"Authorization": ""},
        )
        assert no_key.status_code == 401


@pytest.mark.anyio
async def test_the_documented_upload_route_bounds_images_at_20_mb(
    tmp_path: Path,
) -> None:
    limit = upload_limits()["image"]
    assert limit == 20 * 1024 * 1024
    over = png_bytes(limit + 1)
    server = make_server(tmp_path)
    async with running(server) as client:
        refused = await client.post(
            "/api/v3/upload", files={"file": ("big.png", over, "image/png")}
        )
        assert refused.status_code == 413
        assert "20,971,520-byte limit" in refused.json()["message"]
        # Sniffed too: a name that says nothing does not lift the bound.
        unnamed = await client.post(
            "/api/v3/upload", files={"file": ("upload", over, "")}
        )
        assert unnamed.status_code == 413
        fits = await client.post(
            "/api/v3/upload",
            files={"file": ("big.png", png_bytes(limit), "image/png")},
        )
        assert fits.status_code == 200
        # The binary route documents no per-kind bound: the server's own holds.
        binary = await client.post(
            "/api/v3/media/upload/binary",
            files={"file": ("big.png", over, "image/png")},
        )
        assert binary.status_code == 200
    kept = [p for p in (tmp_path / "uploads").rglob("big.png")]
    assert len(kept) == 2  # the two accepted; nothing of the refused ones


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    [
        "/uploads/{id}/..%2F..%2Fstate.sqlite3",
        "/uploads/{id}/%2E%2E",
        "/uploads/../state.sqlite3",
        "/uploads/{id}/missing.png",
        "/uploads/.partial/x.part",
    ],
)
async def test_nothing_outside_the_uploads_is_served(tmp_path: Path, path: str) -> None:
    server = make_server(tmp_path)
    async with running(server) as client:
        d = await upload_binary(client, "a.png", png_bytes())
        upload_id = d["download_url"].split("/")[-2]
        answer = await client.get(path.format(id=upload_id))
        assert answer.status_code == 404
        assert answer.json()["code"] == 404


@pytest.mark.sdk
def test_official_sdk_uploads_and_runs_with_the_upload(tmp_path: Path) -> None:
    import wavespeed

    image = tmp_path / "knight.png"
    image.write_bytes(png_bytes())
    server = make_server(tmp_path / "data", port=0)
    server = live_server(server)
    try:
        client = wavespeed.Client(api_key="test-key", base_url=server.url)
        url = client.upload(str(image))
        assert url.startswith(server.url + "/uploads/")
        assert url.endswith("/knight.png")
        assert httpx.get(url).content == image.read_bytes()
        output = client.run(
            "character-ai/ovi/image-to-video",
            {"image": url, **PROMPT},
            timeout=30,
            poll_interval=0.05,
        )
        assert output["outputs"]
        [job] = fake_engine(server).jobs
        assert job.image == image.read_bytes()
        assert job.image_source == "upload"
    finally:
        server.stop()
    assert server.service.contract_violations == []
