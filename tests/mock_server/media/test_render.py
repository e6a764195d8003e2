"""render_clip: the synthetic clips, read back with an independent reader."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from wavespeed_mock.mock_server.media import (
    ClipSizeError,
    ImageDecodeError,
    ImageTooLargeError,
    PromptError,
    SeedError,
    render_clip,
)

from .conftest import (
    PLAIN_PROMPT,
    RenderFn,
    count_frames,
    decode_audio,
    make_picture,
    probe,
    psnr,
    read_frames,
)

DURATION = 121 / 24


def test_square_image_gives_704x704_121_frames_at_24_fps(
    wavespeed_square_clip: Path,
) -> None:
    info = probe(wavespeed_square_clip)
    assert (info.width, info.height) == (704, 704)
    assert info.fps == 24
    assert count_frames(wavespeed_square_clip) == 121
    assert info.duration_s == pytest.approx(DURATION, abs=0.05)


def test_codecs_match_ovi_writer(wavespeed_square_clip: Path) -> None:
    info = probe(wavespeed_square_clip)
    assert (info.video_codec, info.pix_fmt) == ("h264", "yuv420p")
    assert (info.audio_codec, info.sample_rate, info.channels) == (
        "aac",
        44100,
        "stereo",
    )


def test_first_frame_is_the_input_image(
    wavespeed_square_clip: Path, wavespeed_square_image: bytes
) -> None:
    expected = ImageOps.fit(
        Image.open(io.BytesIO(wavespeed_square_image)).convert("RGB"),
        (704, 704),
        Image.Resampling.BICUBIC,
    )
    first = read_frames(wavespeed_square_clip, {0})[0]
    assert psnr(first, np.asarray(expected)) > 30


def test_later_frames_move_and_carry_the_badge(wavespeed_square_clip: Path) -> None:
    frames = read_frames(wavespeed_square_clip, {0, 1, 2, 60, 120})
    assert psnr(frames[0], frames[120]) < 25  # the pan moved the picture
    for a, b in ((0, 1), (1, 2)):
        assert np.abs(frames[a].astype(int) - frames[b].astype(int)).max() > 20
    # The badge sits in the bottom-right corner from frame 1 on.
    corner = (slice(-30, None), slice(-90, None))
    assert psnr(frames[0][corner], frames[1][corner]) < psnr(frames[0], frames[1])


def test_audio_spans_the_clip_and_speaks(wavespeed_square_clip: Path) -> None:
    samples = decode_audio(wavespeed_square_clip)
    assert len(samples) / 16_000 == pytest.approx(DURATION, abs=0.1)
    # Speech starts after 0.15 s and runs most of the clip: loud in the middle.
    middle = samples[16_000 : 3 * 16_000]
    assert np.sqrt(np.mean(middle**2)) > 0.03


def test_a_prompt_without_tags_still_has_a_quiet_track(
    wavespeed_render: RenderFn,
) -> None:
    clip = wavespeed_render(prompt=PLAIN_PROMPT, size=(64, 64))
    samples = decode_audio(clip)
    assert len(samples) / 16_000 == pytest.approx(DURATION, abs=0.1)
    rms = np.sqrt(np.mean(samples**2))
    assert 0 < rms < 0.02


@pytest.mark.parametrize(
    ("image_size", "expected"),
    [((1920, 1080), (960, 544)), ((1080, 1920), (544, 960))],
    ids=["16:9", "9:16"],
)
def test_image_aspect_ratio_sets_the_size(
    wavespeed_render: RenderFn, image_size: tuple[int, int], expected: tuple[int, int]
) -> None:
    clip = wavespeed_render(image=make_picture(*image_size, fmt="JPEG"))
    info = probe(clip)
    assert (info.width, info.height) == expected
    assert count_frames(clip) == 121


@pytest.mark.parametrize(
    ("size", "expected"),
    [(None, (960, 540)), ((960, 540), (960, 540)), ((540, 960), (540, 960))],
    ids=["default", "960*540", "540*960"],
)
def test_text_to_video_makes_exactly_the_size(
    wavespeed_render: RenderFn, size: tuple[int, int] | None, expected: tuple[int, int]
) -> None:
    clip = wavespeed_render(size=size)
    info = probe(clip)
    assert (info.width, info.height) == expected
    assert count_frames(clip) == 121
    assert info.duration_s == pytest.approx(DURATION, abs=0.05)


def test_equal_inputs_give_identical_bytes(
    tmp_path: Path, wavespeed_square_clip: Path, wavespeed_square_image: bytes
) -> None:
    from .conftest import SPEECH_PROMPT

    again = tmp_path / "again.mp4"
    render_clip(
        image=wavespeed_square_image,
        prompt=SPEECH_PROMPT,
        seed=42,
        size=None,
        path=again,
    )
    assert again.read_bytes() == wavespeed_square_clip.read_bytes()


def test_a_different_seed_gives_a_visibly_different_clip(
    wavespeed_render: RenderFn,
    wavespeed_square_clip: Path,
    wavespeed_square_image: bytes,
) -> None:
    other = wavespeed_render(image=wavespeed_square_image, seed=43)
    assert other.read_bytes() != wavespeed_square_clip.read_bytes()
    a = read_frames(wavespeed_square_clip, {0, 120})
    b = read_frames(other, {0, 120})
    assert psnr(a[0], b[0]) > 40  # both start on the input image
    assert psnr(a[120], b[120]) < 25  # and pan different ways


def test_text_to_video_scenes_differ_by_seed(wavespeed_render: RenderFn) -> None:
    a = read_frames(wavespeed_render(size=(128, 64), seed=1), {0})[0]
    b = read_frames(wavespeed_render(size=(128, 64), seed=2), {0})[0]
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 10


def test_exif_orientation_is_honoured_in_the_first_frame(tmp_path: Path) -> None:
    stored = Image.new("RGB", (128, 64), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 64, 64))  # red on the left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise: red on top
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", exif=exif, quality=95)
    path = tmp_path / "rotated.mp4"
    info = render_clip(
        image=buffer.getvalue(), prompt="x", seed=1, size=(64, 128), path=path
    )
    assert (info.width, info.height) == (64, 128)
    first = read_frames(path, {0})[0].astype(int)
    assert first[:48, :, 0].mean() > 200  # red top half
    assert first[80:, :, 2].mean() > 200  # blue bottom half


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"image": b"definitely not a picture"},
            ImageDecodeError,
            "not a readable image",
        ),
        (
            {"image": make_picture(300, 300), "max_image_pixels": 10_000},
            ImageTooLargeError,
            "limit is 10,000",
        ),
        ({"prompt": ""}, PromptError, "0 characters"),
        ({"prompt": "x" * 10_001}, PromptError, "10001 characters"),
        ({"size": (961, 540)}, ClipSizeError, "odd"),
        ({"size": (99_999, 540)}, ClipSizeError, "out of range"),
        ({"size": "960*540"}, ClipSizeError, "not a"),
        ({"seed": -1}, SeedError, "resolve -1"),
        ({"seed": 1.5}, SeedError, "not an integer"),
    ],
    ids=[
        "not an image",
        "too many pixels",
        "empty prompt",
        "long prompt",
        "odd size",
        "huge size",
        "size string",
        "seed -1",
        "float seed",
    ],
)
def test_bad_input_is_refused_with_a_clear_error(
    tmp_path: Path, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    arguments: dict[str, object] = {
        "image": None,
        "prompt": "A cat",
        "seed": 1,
        "size": None,
        "path": tmp_path / "out.mp4",
    }
    arguments.update(kwargs)
    with pytest.raises(error, match=message):
        render_clip(**arguments)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
