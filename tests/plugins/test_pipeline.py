"""A real app's pipeline through the official Python SDK: an image model makes
the first frame, it is uploaded, Ovi animates it, an upscaler takes the clip."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from wavespeed_mock.plugins._media_probe import probe_clip


def test_first_frame_then_ovi_then_upscaler(
    wavespeed_client: Any, tmp_path: Path
) -> None:
    # 1. The first frame, from the SDKs' own README model.
    frame = wavespeed_client.run(
        "wavespeed-ai/z-image/turbo",
        {"prompt": "A lighthouse at dusk", "size": "768*512", "seed": 7},
    )
    (image_url,) = frame["outputs"]
    image = httpx.get(image_url)
    assert image.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(image.content)).size == (768, 512)

    # 2. Uploaded, as an app does with a file it holds.
    path = tmp_path / "frame.jpg"
    path.write_bytes(image.content)
    uploaded = wavespeed_client.upload(str(path))

    # 3. Ovi animates it: a 5 s clip with sound.
    clip = wavespeed_client.run(
        "character-ai/ovi/image-to-video",
        {
            "image": uploaded,
            "prompt": "The light turns. <S>Ships, beware!<E>",
            "seed": 7,
        },
    )
    (clip_url,) = clip["outputs"]
    info = probe_clip(httpx.get(clip_url).content)
    assert (
        info.has_audio and info.duration_s is not None and 4.9 < info.duration_s < 5.2
    )

    # 4. The upscaler takes the clip to 1080p.
    upscaled = wavespeed_client.run(
        "wavespeed-ai/video-upscaler", {"video": clip_url, "target_resolution": "1080p"}
    )
    (big_url,) = upscaled["outputs"]
    big = probe_clip(httpx.get(big_url).content)
    assert (big.width, big.height) == (1920, 1080)


def test_a_tts_voice_and_an_llm_answer(wavespeed_client: Any) -> None:
    spoken = wavespeed_client.run(
        "elevenlabs/multilingual-v2",
        {"text": "Welcome aboard. The tour starts now.", "voice_id": "Rachel"},
    )
    (url,) = spoken["outputs"]
    sound = httpx.get(url)
    assert sound.headers["content-type"] == "audio/mpeg" and sound.content[:3] in (
        b"ID3",
        b"\xff\xfb",
    )
    answer = wavespeed_client.run(
        "wavespeed-ai/any-llm", {"prompt": "Name a lighthouse"}
    )
    assert answer["outputs"][0].startswith("[synthetic answer")


def test_several_images_in_one_run(wavespeed_client: Any) -> None:
    result = wavespeed_client.run(
        "wavespeed-ai/flux-dev",
        {"prompt": "three foxes", "num_images": 3, "size": "512*512"},
    )
    urls = result["outputs"]
    assert len(urls) == 3
    pictures = [httpx.get(u).content for u in urls]
    assert all(p.startswith(b"\xff\xd8") for p in pictures)  # JPEG
    assert len(set(pictures)) == 3  # each its own image
