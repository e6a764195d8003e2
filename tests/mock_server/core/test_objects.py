"""The object store (``core/objects.py``): the data folder only, or S3 (moto's
server here, as a user's MinIO or AWS would be)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from wavespeed_mock.mock_server.core.objects import (
    LocalFiles,
    ObjectStoreError,
    S3Objects,
    open_objects,
)
from wavespeed_mock.mock_server.settings import SettingsError


def test_the_default_keeps_files_in_the_data_folder_only(tmp_path: Path) -> None:
    objects = open_objects(None)
    assert isinstance(objects, LocalFiles) and not objects.shared
    (tmp_path / "a").write_bytes(b"x")
    objects.put("outputs/a", tmp_path / "a")
    assert objects.get("outputs/a", tmp_path / "b") is False
    assert not (tmp_path / "b").exists()


def test_a_file_put_is_got_back_and_deleted(
    bucket: str, s3_endpoint: str, tmp_path: Path
) -> None:
    objects = S3Objects(bucket, endpoint=s3_endpoint)
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    objects.put("outputs/clip.mp4", source)
    # Under the URL's prefix, by its path in the data folder.
    name = bucket.split("/")[2]
    listed = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=name)
    assert [o["Key"] for o in listed["Contents"]] == ["team/mock/outputs/clip.mp4"]
    target = tmp_path / "other" / "outputs" / "clip.mp4"
    assert objects.get("outputs/clip.mp4", target) is True
    assert target.read_bytes() == source.read_bytes()
    assert not list(target.parent.glob(".*.part"))  # written whole, then renamed
    assert objects.get("outputs/missing.mp4", tmp_path / "missing.mp4") is False
    objects.delete(["outputs/clip.mp4"])
    assert objects.get("outputs/clip.mp4", tmp_path / "again.mp4") is False


def test_a_reset_clears_only_its_own_prefix(
    bucket: str, s3_endpoint: str, tmp_path: Path
) -> None:
    name = bucket.split("/")[2]
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.put_object(Bucket=name, Key="someone-else/keep.txt", Body=b"keep")
    objects = S3Objects(bucket, endpoint=s3_endpoint)
    (tmp_path / "f").write_bytes(b"1")
    for key in ("outputs/a.png", "uploads/u1/b.png", "inputs/c.img"):
        objects.put(key, tmp_path / "f")
    objects.clear()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=name)["Contents"]]
    assert keys == ["someone-else/keep.txt"]


def test_an_unreachable_store_is_an_error_that_names_it(tmp_path: Path) -> None:
    objects = S3Objects("s3://nowhere/x", endpoint="http://127.0.0.1:9")
    (tmp_path / "f").write_bytes(b"1")
    with pytest.raises(ObjectStoreError, match="s3://nowhere/x/"):
        objects.put("outputs/f", tmp_path / "f")


@pytest.mark.parametrize("url", ["http://bucket/x", "s3://", "bucket/prefix"])
def test_outputs_takes_an_s3_url(url: str) -> None:
    with pytest.raises(SettingsError, match="s3://bucket/prefix"):
        S3Objects(url)


def test_a_store_that_refuses_fails_the_task_and_never_the_server(
    tmp_path: Path,
) -> None:
    """With the bucket unreachable: a render fails its task (5000, the files
    could not be kept), a custom output is a 503 that stores and charges
    nothing, and a reset still answers."""
    import base64
    import io

    import httpx
    from PIL import Image
    from wavespeed_mock.mock_server.http.live import LiveServer
    from wavespeed_mock.mock_server.settings import Settings

    settings = Settings(
        data_dir=tmp_path, port=0, profile="instant", check_responses=True,
        outputs="s3://nowhere/x", s3_endpoint="http://127.0.0.1:9",
    )  # fmt: skip
    picture = io.BytesIO()
    Image.new("RGB", (8, 8)).save(picture, format="PNG")
    z = "wavespeed-ai/z-image/turbo"
    with (
        LiveServer(settings) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": "Bearer k"}, timeout=60) as client,
    ):  # fmt: skip
        view = submitted_and_ended(client, {"prompt": "Kept?", "seed": 1})
        assert view["status"] == "failed" and "could not be kept" in str(view["error"])
        rule = {
            "model": z,
            "outputs": [
                {
                    "base64": base64.b64encode(picture.getvalue()).decode(),
                    "format": "png",
                }
            ],
        }
        assert client.post("/_mock/outputs", json=rule).status_code == 200
        before = len(server.service.store)
        answer = client.post(f"/api/v3/{z}", json={"prompt": "blue"})
        assert (
            answer.status_code == 503
            and "could not be kept" in answer.json()["message"]
        )
        assert len(server.service.store) == before
        assert client.post("/_mock/reset").status_code == 200
        assert server.service.contract_violations == []


def test_presigned_output_urls_download_from_the_bucket(
    bucket: str, s3_endpoint: str, tmp_path: Path
) -> None:
    """``--presign``: a completed task's output URL is the bucket's, signed, and
    downloads the very file the mock serves at its own URL."""
    import httpx
    from wavespeed_mock.mock_server.http.live import LiveServer
    from wavespeed_mock.mock_server.settings import Settings

    settings = Settings(
        data_dir=tmp_path, port=0, profile="instant", check_responses=True,
        outputs=bucket, s3_endpoint=s3_endpoint, presign_s=600,
    )  # fmt: skip
    with (
        LiveServer(settings) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": "Bearer k"}, timeout=60) as client,
    ):  # fmt: skip
        view = submitted_and_ended(client, {"prompt": "Signed.", "seed": 3})
        task = view["id"]
        assert view["status"] == "completed"
        [url] = view["outputs"]
        assert url.startswith(s3_endpoint) and "Signature" in url
        mine = client.get(f"/outputs/{task}.mp4").content
        assert httpx.get(url).content == mine and mine[4:8] == b"ftyp"
        assert server.service.contract_violations == []


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"presign_s": 60}, "add --outputs"),
        ({"presign_s": 60, "outputs": "s3://b/p", "lazy_renders": True}, "drop one"),
    ],
)
def test_presign_needs_the_bucket_and_every_file_in_it(
    settings: dict[str, Any], words: str
) -> None:
    with pytest.raises(SettingsError, match=words):
        open_objects(
            settings.get("outputs"),
            presign_s=settings["presign_s"],
            lazy_renders=settings.get("lazy_renders", False),
        )


def submitted_and_ended(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Submit an Ovi clip; its view once it ended (a bound for a busy machine)."""
    from .._support import T2V, wait_until

    task = client.post(T2V, json=body).json()["data"]["id"]
    view: dict[str, Any] = {}

    def ended() -> bool:
        view.update(client.get(f"/api/v3/predictions/{task}/result").json()["data"])
        return view["status"] in ("completed", "failed")

    wait_until(ended, timeout_s=120, what="the task ended")
    return view


def test_a_url_that_cannot_be_signed_is_an_object_store_error(
    bucket: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No credentials to sign with: an ObjectStoreError (the view then hands
    out the mock's own URL), never botocore's error reaching an answer."""
    from botocore.exceptions import NoCredentialsError

    objects = S3Objects(bucket, endpoint=s3_endpoint)

    def unsigned(*args: Any, **kwargs: Any) -> str:
        raise NoCredentialsError()

    monkeypatch.setattr(objects._client, "generate_presigned_url", unsigned)
    with pytest.raises(ObjectStoreError, match="cannot sign"):
        objects.presigned("outputs/a.mp4", 60)
