"""The HTTP surface: auth, validation, errors in the envelope, files."""

from __future__ import annotations

import base64
import io
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from wavespeed_mock.contracts import validate
from wavespeed_mock.mock_server.http.live import LiveServer

from .._fakes import FAKE_MP4, fake_engine
from .._support import I2V, T2V, poll_until_ended, wait_until
from ..conftest import AUTH, StartServer

KNIGHT = {
    "image": "https://example.com/knight.png",
    "prompt": "A knight in the rain. <S>I will defend this land.<E> <AUDCAP>Thunder.<ENDAUDCAP>",
    "seed": 42,
}


def png_data_uri(width: int = 64, height: int = 48) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


# -- auth ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Token abc"},
        {"Authorization": "test-key"},
    ],
    ids=["missing", "empty", "empty-bearer", "other-scheme", "no-scheme"],
)
def test_missing_or_malformed_key_is_401_in_the_envelope(
    server: LiveServer, headers: dict[str, str]
) -> None:
    response = httpx.post(server.url + I2V, json=KNIGHT, headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == 401 and "Bearer" in body["message"]
    assert (
        httpx.get(
            server.url + "/api/v3/predictions/abc/result", headers=headers
        ).status_code
        == 401
    )


def test_any_non_empty_key_is_accepted_by_default(server: LiveServer) -> None:
    response = httpx.post(
        server.url + I2V, json=KNIGHT, headers={"Authorization": "Bearer whatever"}
    )
    assert response.status_code == 200


def test_api_keys_restrict_the_accepted_keys(start_server: StartServer) -> None:
    server = start_server(api_keys=("good",))
    bad = httpx.post(
        server.url + I2V, json=KNIGHT, headers={"Authorization": "Bearer bad"}
    )
    assert (
        bad.status_code == 401
        and bad.json()["message"] == "Unauthorized: invalid API key"
    )
    good = httpx.post(
        server.url + I2V, json=KNIGHT, headers={"Authorization": "Bearer good"}
    )
    assert good.status_code == 200


# -- submit and validation ----------------------------------------------------------------


def test_submit_is_http_200_with_a_task(
    client: httpx.Client, server: LiveServer
) -> None:
    response = client.post(I2V, json=KNIGHT)
    assert response.status_code == 200
    data = response.json()["data"]
    assert len(data["id"]) == 32 and int(data["id"], 16) >= 0
    assert data["model"] == "character-ai/ovi/image-to-video"
    assert data["status"] in ("created", "processing")
    assert data["outputs"] == [] and data["has_nsfw_contents"] == []
    assert data["urls"]["get"] == f"{server.url}/api/v3/predictions/{data['id']}/result"
    assert data["input"] == KNIGHT


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (I2V, {"seed": -1}, "$.image"),
        (I2V, {"image": "https://e.com/a.png", "prompt": "", "seed": 1}, "$.prompt"),
        (I2V, dict(KNIGHT, seed=2**53), "$.seed"),
        (I2V, dict(KNIGHT, seed="42"), "$.seed"),
        (I2V, dict(KNIGHT, image=42), "$.image"),
        (T2V, {"prompt": "p", "size": "1024*1024"}, "$.size"),
        (T2V, [1, 2], "$"),
    ],
)
def test_bad_body_is_400_naming_the_field(
    client: httpx.Client, path: str, body: object, field: str
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 400
    assert response.json()["code"] == 400
    assert field in response.json()["message"]


def test_the_docs_bare_seed_body_names_both_missing_fields(
    client: httpx.Client,
) -> None:
    message = client.post(I2V, json={"seed": -1}).json()["message"]
    assert "$.image" in message and "$.prompt" in message


def test_body_that_is_not_json_is_400(client: httpx.Client) -> None:
    response = client.post(
        T2V, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (
        response.status_code == 400 and "not valid JSON" in response.json()["message"]
    )
    empty = client.post(T2V, content=b"")
    assert empty.status_code == 400 and "empty" in empty.json()["message"]


def test_body_over_the_limit_is_413(start_server: StartServer) -> None:
    server = start_server(max_body_bytes=1000)
    response = httpx.post(server.url + T2V, json={"prompt": "x" * 2000}, headers=AUTH)
    assert response.status_code == 413 and response.json()["code"] == 413

    def chunks() -> object:
        yield b'{"prompt": "'
        for _ in range(10):
            yield b"x" * 200
        yield b'"}'

    streamed = httpx.post(
        server.url + T2V, content=chunks(), headers=AUTH
    )  # no Content-Length
    assert streamed.status_code == 413


def test_unknown_model_is_404_with_a_suggestion(client: httpx.Client) -> None:
    response = client.post("/api/v3/character-ai/ovi/image-to-vide", json=KNIGHT)
    assert response.status_code == 404
    assert (
        "Did you mean 'character-ai/ovi/image-to-video'" in response.json()["message"]
    )


def test_unknown_prediction_is_404(client: httpx.Client) -> None:
    for path in ("/api/v3/predictions/0123/result", "/api/v3/predictions/0123"):
        response = client.get(path)
        assert response.status_code == 404 and "not found" in response.json()["message"]


def test_wrong_method_is_405(client: httpx.Client) -> None:
    response = client.get(I2V)
    assert response.status_code == 405 and response.json()["code"] == 405
    assert client.delete("/api/v3/predictions/abc/result").status_code == 405


def test_unknown_fields_are_ignored_unless_strict(start_server: StartServer) -> None:
    lenient = start_server()
    assert (
        httpx.post(
            lenient.url + I2V, json=dict(KNIGHT, seeds=1), headers=AUTH
        ).status_code
        == 200
    )
    strict = start_server(strict=True)
    response = httpx.post(strict.url + I2V, json=dict(KNIGHT, seeds=1), headers=AUTH)
    assert response.status_code == 400
    assert (
        "$.seeds" in response.json()["message"]
        and "'seed'" in response.json()["message"]
    )
    data_uri = httpx.post(
        strict.url + I2V, json=dict(KNIGHT, image=png_data_uri()), headers=AUTH
    )
    assert data_uri.status_code == 400 and "$.image" in data_uri.json()["message"]


def test_data_uri_image_is_decoded_and_passed_to_the_engine(
    client: httpx.Client, server: LiveServer
) -> None:
    uri = png_data_uri(80, 60)
    data = client.post(I2V, json=dict(KNIGHT, image=uri)).json()["data"]
    assert poll_until_ended(client, data["id"])["status"] == "completed"
    job = fake_engine(server).jobs[-1]
    assert job.image == base64.b64decode(uri.split(",", 1)[1])
    assert job.image_source == "data-uri"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("data:image/png;base64,!!!!", "base64"),
        (
            "data:image/png;base64," + base64.b64encode(b"not an image").decode(),
            "not a readable image",
        ),
    ],
)
def test_bad_data_uri_is_400(client: httpx.Client, uri: str, expected: str) -> None:
    response = client.post(I2V, json=dict(KNIGHT, image=uri))
    assert response.status_code == 400
    assert (
        "$.image" in response.json()["message"]
        and expected in response.json()["message"]
    )


def test_image_over_the_pixel_limit_is_400(start_server: StartServer) -> None:
    server = start_server(max_image_pixels=1000)
    response = httpx.post(
        server.url + I2V, json=dict(KNIGHT, image=png_data_uri(50, 50)), headers=AUTH
    )
    assert response.status_code == 400 and "limit" in response.json()["message"]


def test_remote_image_is_not_fetched_by_default(
    client: httpx.Client, server: LiveServer
) -> None:
    data = client.post(
        I2V, json=dict(KNIGHT, image="http://127.0.0.1:9/never.png")
    ).json()["data"]
    assert poll_until_ended(client, data["id"])["status"] == "completed"
    job = fake_engine(server).jobs[-1]
    assert job.image_source == "placeholder" and job.image.startswith(b"\x89PNG")


def test_unreachable_remote_image_fails_the_task_with_1402(
    start_server: StartServer,
) -> None:
    server = start_server(fetch_remote_images=True)
    data = httpx.post(
        server.url + I2V,
        json=dict(KNIGHT, image="http://127.0.0.1:9/gone.png"),
        headers=AUTH,
    ).json()["data"]
    with httpx.Client(base_url=server.url, headers=AUTH) as client:
        body = poll_until_ended(client, data["id"])
    assert body["status"] == "failed" and body["code"] == 1402 and body["error"]


def test_seed_minus_one_is_resolved_and_shown_in_the_control_api(
    client: httpx.Client,
) -> None:
    first = client.post(I2V, json=dict(KNIGHT, seed=-1)).json()["data"]["id"]
    fixed = client.post(I2V, json=dict(KNIGHT, seed=7)).json()["data"]["id"]
    items = {
        i["id"]: i for i in client.get("/_mock/predictions").json()["data"]["items"]
    }
    assert (
        items[first]["seed_requested"] == -1 and 0 <= items[first]["seed"] <= 2147483647
    )
    assert items[fixed]["seed"] == 7


# -- output files ------------------------------------------------------------------------


def _completed(client: httpx.Client) -> dict[str, object]:
    pid = client.post(T2V, json={"prompt": "waves"}).json()["data"]["id"]
    data = poll_until_ended(client, pid)
    assert data["status"] == "completed"
    return data


def test_output_is_served_as_mp4_with_ranges(client: httpx.Client) -> None:
    url = _completed(client)["outputs"][0]  # type: ignore[index]
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.content == FAKE_MP4
    part = httpx.get(url, headers={"Range": "bytes=4-11"})
    assert part.status_code == 206 and part.content == b"ftypisom"
    assert part.headers["content-range"] == f"bytes 4-11/{len(FAKE_MP4)}"
    tail = httpx.get(url, headers={"Range": "bytes=-4"})
    assert tail.status_code == 206 and tail.content == FAKE_MP4[-4:]
    beyond = httpx.get(url, headers={"Range": f"bytes={len(FAKE_MP4) + 10}-"})
    assert beyond.status_code == 416 and beyond.json()["code"] == 416
    assert beyond.headers["content-range"] == f"bytes */{len(FAKE_MP4)}"
    garbage = httpx.get(url, headers={"Range": "pages=1-2"})
    assert garbage.status_code == 200 and garbage.content == FAKE_MP4


@pytest.mark.parametrize(
    "path",
    [
        "/outputs/..%2Fstate.sqlite3",
        "/outputs/%2E%2E%2Fstate.sqlite3",
        "/outputs/..%5Cstate.sqlite3",
        "/outputs/nothere.mp4",
        "/outputs/",
    ],
)
def test_files_outside_the_output_folder_are_never_served(
    server: LiveServer, path: str
) -> None:
    response = httpx.get(server.url + path)
    assert response.status_code == 404
    assert b"SQLite" not in response.content


def test_the_seed_docs_curl_commands_work_with_only_the_host_changed(
    server: LiveServer,
) -> None:
    submit = [
        "curl",
        "--silent",
        "--location",
        "--request",
        "POST",
        f"{server.url}/api/v3/character-ai/ovi/image-to-video",
        "--header",
        "Content-Type: application/json",
        "--header",
        "Authorization: Bearer test-key",
        "--data-raw",
        '{\n    "seed": -1\n}',
    ]
    bare = httpx.Response(
        200, content=subprocess.run(submit, capture_output=True, check=True).stdout
    ).json()
    assert (
        bare["code"] == 400
        and "$.image" in bare["message"]
        and "$.prompt" in bare["message"]
    )
    submit[-1] = (
        '{"image": "https://example.com/knight.png", "prompt": "A knight", "seed": -1}'
    )
    task = httpx.Response(
        200, content=subprocess.run(submit, capture_output=True, check=True).stdout
    ).json()
    validate("prediction-envelope", task)
    request_id = task["data"]["id"]
    result = [
        "curl",
        "--silent",
        "--location",
        "--request",
        "GET",
        f"{server.url}/api/v3/predictions/{request_id}/result",
        "--header",
        "Authorization: Bearer test-key",
    ]

    def polled() -> dict[str, Any]:
        out = subprocess.run(result, capture_output=True, check=True).stdout
        answer: dict[str, Any] = httpx.Response(200, content=out).json()
        return answer

    # a poll never waits for the render: poll with curl until it ends
    wait_until(lambda: polled()["data"]["status"] == "completed", what="completed")
    assert polled()["data"]["id"] == request_id


def test_contract_documents_are_served(server: LiveServer) -> None:
    text = httpx.get(server.url + "/_mock/documents/openapi.yaml").text
    assert text.startswith("openapi: 3.1.0")
    assert (
        httpx.get(server.url + "/_mock/documents/../pyproject.toml").status_code == 404
    )


def test_server_binds_to_loopback_by_default() -> None:
    from wavespeed_mock.mock_server.settings import Settings

    assert Settings().host == "127.0.0.1"


def test_an_image_that_cannot_be_kept_is_503_and_stores_nothing(
    start_server: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "inputs").write_text("a file where the inputs folder belongs")
    server = start_server(data_dir=data_dir)
    answer = httpx.post(
        server.url + I2V, json=dict(KNIGHT, image=png_data_uri()), headers=AUTH
    )
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == 503 and "image" in answer.json()["message"]
    assert len(server.service.store) == 0
    assert server.features.account.spent("test-key") == 0
