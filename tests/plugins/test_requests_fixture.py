"""``wavespeed_requests``: code built on plain ``requests`` with the hard-coded
``https://api.wavespeed.ai`` reaches the mock in process, unchanged."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

API = "https://api.wavespeed.ai/api/v3"


def hard_coded_app(prompt: str) -> bytes:
    """A client written the way WaveSpeed's dify plugin is: requests, the real
    URL, submit, poll until done, fetch the output."""
    headers = {"Authorization": "Bearer app-key", "Content-Type": "application/json"}
    submitted = requests.post(
        f"{API}/wavespeed-ai/z-image/turbo",
        json={"prompt": prompt, "size": "512*512"},
        headers=headers,
        timeout=30,
    )
    submitted.raise_for_status()
    url = submitted.json()["data"]["urls"]["get"]
    for _ in range(400):
        data = requests.get(url, headers=headers, timeout=30).json()["data"]
        if data["status"] in ("completed", "failed"):
            break
        time.sleep(0.01)
    assert data["status"] == "completed", data
    return requests.get(data["outputs"][0], timeout=30).content


def test_a_requests_app_with_the_real_url_completes_a_task(
    wavespeed_requests: Any,
) -> None:
    image = hard_coded_app("A lighthouse")
    assert image[:2] == b"\xff\xd8"  # a JPEG, made by the mock
    sent = wavespeed_requests.submissions("wavespeed-ai/z-image/turbo")
    assert [s.body["prompt"] for s in sent] == ["A lighthouse"]


def test_other_hosts_are_left_alone(wavespeed_requests: Any) -> None:
    # Nothing listens on port 9: a real connection attempt, not an answer of ours.
    with pytest.raises(requests.ConnectionError, match=r"(?i)refused") as caught:
        requests.get("http://127.0.0.1:9/", timeout=2)
    assert "responses" not in str(caught.value).lower()
    assert len(wavespeed_requests.calls) == 0


def test_a_comfyui_style_client_v3_submit_v2_poll_and_upload_a_large_seed(
    wavespeed_requests: Any, tmp_path: Any
) -> None:
    """The calls WaveSpeed's ComfyUI nodes make (wavespeed-comfyui
    py/wavespeed_api/client.py): upload to v2, submit to v3 with
    ``seed % 9999999999``, poll v2 until done."""
    import io

    from PIL import Image

    headers = {"Authorization": "Bearer comfy-key"}
    picture = io.BytesIO()
    Image.new("RGB", (320, 180), (200, 120, 40)).save(picture, format="PNG")
    uploaded = requests.post(
        "https://api.wavespeed.ai/api/v2/media/upload/binary",
        files={"file": ("frame.png", picture.getvalue(), "image/png")},
        headers=headers,
        timeout=30,
    )
    assert uploaded.status_code == 200, uploaded.text
    image_url = uploaded.json()["data"]["download_url"]
    seed = 2**45 % 9999999999  # past the documented maximum, as ComfyUI sends
    submitted = requests.post(
        f"{API}/character-ai/ovi/image-to-video",
        json={"image": image_url, "prompt": "The sun sets.", "seed": seed},
        headers=headers,
        timeout=30,
    )
    assert submitted.status_code == 200, submitted.text
    pid = submitted.json()["data"]["id"]
    poll = f"https://api.wavespeed.ai/api/v2/predictions/{pid}/result"
    wavespeed_requests.wait_for_renders()
    data = requests.get(poll, headers=headers, timeout=30).json()["data"]
    assert data["status"] == "completed", data
    assert data["urls"]["get"] == poll  # in the version the client polled
    assert data["input"]["seed"] == seed  # echoed as sent
    (task,) = wavespeed_requests.service.predictions()
    assert task.seed == seed % 2**31  # reduced modulo 2^31 [inferred]
    assert requests.get(data["outputs"][0], timeout=30).content[4:8] == b"ftyp"


def test_a_trailing_slash_gets_the_answer_without_it(wavespeed_requests: Any) -> None:
    headers = {"Authorization": "Bearer slash-key"}
    submitted = requests.post(
        f"{API}/wavespeed-ai/z-image/turbo/",
        json={"prompt": "x"},
        headers=headers,
        timeout=30,
    )
    assert submitted.status_code == 200, submitted.text
    pid = submitted.json()["data"]["id"]
    polled = requests.get(
        f"{API}/predictions/{pid}/result/", headers=headers, timeout=30
    )
    assert polled.status_code == 200 and polled.json()["data"]["id"] == pid
