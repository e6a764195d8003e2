"""One image rule: what submit and uploads accept, the engines render; files stay inside.

And uploads accept what the real API accepts: a file whose name and content type
say nothing is sniffed (the Python SDK's in-memory upload, the JS SDK's path
without an extension).
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import textwrap
from pathlib import Path

import httpx
import pytest
from PIL import Image
from wavespeed_mock.contracts import image_formats
from wavespeed_mock.mock_server.features.uploads import names_nothing, sniff_media

from .._fakes import fake_engine
from .._support import (
    I2V,
    PROMPT,
    live_server,
    make_server,
    poll_until_terminal,
    running,
    upload_binary,
)

MIME = {"JPEG": "image/jpeg", "TIFF": "image/tiff", "WEBP": "image/webp"}


def image_bytes(fmt: str = "PNG", width: int = 32, height: int = 24) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(out, format=fmt)
    return out.getvalue()


def data_uri(fmt: str, data: bytes | None = None) -> str:
    mime = MIME.get(fmt, f"image/{fmt.lower()}")
    payload = base64.b64encode(data if data is not None else image_bytes(fmt))
    return f"data:{mime};base64,{payload.decode()}"


# -- submit and the engine agree ----------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", sorted(image_formats()))
async def test_every_format_submit_accepts_renders(tmp_path: Path, fmt: str) -> None:
    # GIF, BMP and TIFF data: images used to be accepted and charged, then fail 1402.
    server = build_synthetic(tmp_path)
    async with running(server) as client:
        answer = await client.post(I2V, json={"image": data_uri(fmt), **PROMPT})
        assert answer.status_code == 200, answer.text
        pid = answer.json()["data"]["id"]
        data = await poll_until_terminal(client, pid)  # a poll never waits
        assert data["status"] == "completed", data


def build_synthetic(tmp_path: Path, **options: object):  # type: ignore[no-untyped-def]
    from wavespeed_mock.mock_server.assembly import build_server
    from wavespeed_mock.mock_server.settings import Settings

    settings = Settings(
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        profile="instant",
        check_responses=True,
        **options,  # type: ignore[arg-type]
    )
    return build_server(settings)


@pytest.mark.anyio
async def test_a_format_outside_the_rule_is_refused_at_submit_uncharged(
    tmp_path: Path,
) -> None:
    server = make_server(tmp_path, starting_balance=1.0)
    async with running(server) as client:
        before = (await client.get("/api/v3/balance")).json()["data"]["balance"]
        answer = await client.post(
            I2V, json={"image": data_uri("PPM", image_bytes("PPM")), **PROMPT}
        )
        assert answer.status_code == 400
        message = answer.json()["message"]
        assert "image" in message and "unsupported image format 'PPM'" in message
        assert "BMP, GIF, JPEG, PNG, TIFF, WEBP" in message
        after = (await client.get("/api/v3/balance")).json()["data"]["balance"]
    assert after == before
    assert len(server.service.store) == 0


@pytest.mark.anyio
async def test_the_pixel_limit_holds_at_submit_and_upload(tmp_path: Path) -> None:
    server = make_server(tmp_path, max_image_pixels=32 * 24 - 1)
    async with running(server) as client:
        submit = await client.post(I2V, json={"image": data_uri("PNG"), **PROMPT})
        assert submit.status_code == 400
        assert "the limit is 767" in submit.json()["message"]
        upload = await client.post(
            "/api/v3/media/upload/binary",
            files={"file": ("big.png", image_bytes(), "image/png")},
        )
        assert upload.status_code == 400
        assert "the limit is 767" in upload.json()["message"]
        await upload_binary(client, "small.png", image_bytes(width=31))
    assert len(server.service.store) == 0


# -- files are read only from inside the data folder --------------------------------


@pytest.mark.anyio
async def test_an_upload_linked_outside_the_data_folder_is_not_read(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "outside.png"
    secret.write_bytes(image_bytes())
    server = make_server(tmp_path / "data")
    async with running(server) as client:
        d = await upload_binary(client, "pic.png", image_bytes())
        upload_id = d["download_url"].split("/")[-2]
        stored = tmp_path / "data" / "uploads" / upload_id / "pic.png"
        stored.unlink()
        stored.symlink_to(secret)
        served = await client.get(d["download_url"])
        assert served.status_code == 404
        answer = await client.post(I2V, json={"image": d["download_url"], **PROMPT})
        pid = answer.json()["data"]["id"]
        result = await poll_until_terminal(client, pid)
    assert result["status"] == "failed"
    assert result["code"] == 1402
    assert "no upload at" in result["error"]
    assert fake_engine(server).jobs == []  # the outside file never reached an engine


# -- sniffing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (image_bytes("PNG"), ("image", "image/png")),
        (image_bytes("JPEG"), ("image", "image/jpeg")),
        (image_bytes("GIF"), ("image", "image/gif")),
        (image_bytes("BMP"), ("image", "image/bmp")),
        (image_bytes("TIFF"), ("image", "image/tiff")),
        (image_bytes("WEBP"), ("image", "image/webp")),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00", ("video", "video/mp4")),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", ("video", "video/quicktime")),
        (b"\x00\x00\x00\x18ftyp3gp5\x00\x00\x00\x00", ("video", "video/3gpp")),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", ("audio", "audio/mp4")),
        (
            b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm",
            ("video", "video/webm"),
        ),
        (
            b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska",
            ("video", "video/x-matroska"),
        ),
        (b"RIFF\x00\x00\x00\x00AVI LIST", ("video", "video/x-msvideo")),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", ("audio", "audio/wav")),
        (b"FLV\x01\x05", ("video", "video/x-flv")),
        (b"0&\xb2u\x8ef\xcf\x11\xa6\xd9", ("video", "video/x-ms-wmv")),
        (b"ID3\x04\x00", ("audio", "audio/mpeg")),
        (b"\xff\xfb\x90\x64", ("audio", "audio/mpeg")),
        (b"\xff\xf1\x50\x80", ("audio", "audio/aac")),
        (b"fLaC\x00\x00\x00\x22", ("audio", "audio/flac")),
        (b"OggS\x00\x02" + b"\x00" * 22 + b"\x01vorbis", ("audio", "audio/ogg")),
        (b"OggS\x00\x02" + b"\x00" * 22 + b"OpusHead", ("audio", "audio/opus")),
        (b"OggS\x00\x02" + b"\x00" * 22 + b"\x80theora", ("video", "video/ogg")),
        (b"%PDF-1.7", None),
        (b"MZ\x90\x00", None),
        (b"", None),
        (b"\xff", None),
    ],
)
def test_sniff_media(head: bytes, expected: tuple[str, str] | None) -> None:
    assert sniff_media(head[:64]) == expected


def test_names_nothing() -> None:
    assert names_nothing("upload")
    assert names_nothing("upload", "application/octet-stream")
    assert not names_nothing("upload", "image/png")
    assert not names_nothing("notes.txt")


@pytest.mark.anyio
async def test_ticket_and_put_without_name_or_type_are_sniffed(tmp_path: Path) -> None:
    data = image_bytes("JPEG")
    server = make_server(tmp_path)
    async with running(server) as client:
        ticket = await client.post(
            "/api/v3/media/uploads", json={"filename": "upload", "size": len(data)}
        )
        assert ticket.status_code == 200, ticket.text
        t = ticket.json()["data"]
        assert "type" not in t  # not known until the bytes arrive
        url = t["upload"]["url"]
        garbage = await client.put(url, content=b"%PDF-1.7 not media")
        assert garbage.status_code == 400
        assert "format not supported" in garbage.json()["message"]
        assert (await client.put(url, content=data)).status_code == 200
        served = await client.get(t["download_url"])
        assert served.content == data
        assert served.headers["content-type"] == "image/jpeg"
        binary = await client.post(
            "/api/v3/media/upload/binary",
            files={"file": ("upload", data, "application/octet-stream")},
        )
        assert binary.status_code == 200
        assert binary.json()["data"]["type"] == "image"
        audio = await client.post(
            "/api/v3/media/upload/binary",
            files={"file": ("upload", b"ID3\x04\x00" + b"\x00" * 64, "")},
        )
        assert audio.json()["data"]["type"] == "audio"
        nothing = await client.post(
            "/api/v3/media/upload/binary",
            files={"file": ("upload", b"MZ\x90\x00", "application/octet-stream")},
        )
        assert nothing.status_code == 400
        assert "send a name with an extension" in nothing.json()["message"]


@pytest.mark.sdk
def test_python_sdk_uploads_from_memory_and_runs_with_it(tmp_path: Path) -> None:
    import wavespeed

    data = image_bytes("PNG", 64, 48)
    server = live_server(make_server(tmp_path / "data", port=0))
    try:
        client = wavespeed.Client(api_key="test-key", base_url=server.url)
        # The SDK sends the file name "upload" and no content type for a stream.
        url = client.upload(io.BytesIO(data))
        assert url.startswith(server.url + "/uploads/")
        got = httpx.get(url)
        assert got.content == data
        assert got.headers["content-type"] == "image/png"
        output = client.run(
            "character-ai/ovi/image-to-video",
            {"image": url, **PROMPT},
            timeout=30,
            poll_interval=0.05,
        )
        assert output["outputs"]
        [job] = fake_engine(server).jobs
        assert job.image == data
    finally:
        server.stop()
    assert server.service.contract_violations == []


@pytest.mark.sdk
def test_npm_sdk_uploads_a_path_without_an_extension(
    tmp_path: Path, wavespeed_npm_sdk: Path
) -> None:
    data = image_bytes("WEBP", 40, 30)
    path = tmp_path / "frame"  # no extension: the SDK sends no content type
    path.write_bytes(data)
    server = live_server(make_server(tmp_path / "data", port=0))
    script = textwrap.dedent(
        """
        const { Client } = require("wavespeed");
        const client = new Client("test-key", { baseUrl: process.env.BASE_URL });
        client.upload(process.env.FILE).then(
          (url) => console.log(JSON.stringify({ url })),
          (err) => { console.log(JSON.stringify({ error: String(err) })); },
        );
        """
    )
    try:
        ran = subprocess.run(
            ["node", "-e", script],
            cwd=wavespeed_npm_sdk,
            env={**os.environ, "BASE_URL": server.url, "FILE": str(path)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        answer = json.loads(ran.stdout.strip().splitlines()[-1])
        assert "url" in answer, answer
        got = httpx.get(answer["url"])
        assert got.content == data
        assert got.headers["content-type"] == "image/webp"
    finally:
        server.stop()
    assert server.service.contract_violations == []
