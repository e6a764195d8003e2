"""Benchmark the synthetic outputs of catalogue models against their encoders.

Run from the repository root with the project's virtual environment:

    python benchmarks/bench_outputs.py [--repeat 7]

For each kind it times a cold synthetic output (``ClipCache.get_or_render`` into
an empty cache: the pixels or samples, the encode, the atomic write) and a
baseline measured in the same run on the same data:

* image: a 1024x1024 image in PNG, JPEG and WebP; baseline Pillow encoding the
  very same pixels with the same settings (``Image.save`` to memory);
* sound: 10 s of speech-like MP3; baseline the bundled ffmpeg encoding the same
  samples from a file with the same flags;
* video: a 5 s 1280x720 clip without sound (another model's video), for the
  record (the clip ratio against ffmpeg is bench_render.py's).

It prints medians and the ratio cold / baseline. Target (issue 21): a cold
1024x1024 image within 1.2x of Pillow encoding the same pixels.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from PIL import Image
from wavespeed_mock.mock_server.media import ffmpeg_exe
from wavespeed_mock.mock_server.media.audio import SAMPLE_RATE, synthesize_audio
from wavespeed_mock.mock_server.media.cache import ClipCache, Variant
from wavespeed_mock.mock_server.media.outputs import IMAGE_FORMATS, image_pixels
from wavespeed_mock.mock_server.media.prompt_tags import PromptTags
from wavespeed_mock.mock_server.media.writer import AUDIO_CODECS, AUDIO_SAMPLE_RATE

PROMPT = "A lighthouse at dusk, waves below, gulls circling"


def _median_s(run, repeat: int) -> float:
    times = []
    for i in range(repeat):
        started = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_image(fmt: str, repeat: int, root: Path) -> tuple[float, float]:
    cache = ClipCache(root / f"cache-{fmt}")

    def cold(i: int) -> None:
        cache.get_or_render(
            image=None,
            prompt=PROMPT,
            seed=1000 + i,
            size=(1024, 1024),
            variant=Variant(kind="image", format=fmt),
        )

    # The baseline encodes pixels made beforehand: the same pixels, encoder
    # only, so the ratio counts what the mock adds (drawing, badge, file).
    made = [
        image_pixels(prompt=PROMPT, seed=1000 + i, size=(1024, 1024))
        for i in range(repeat)
    ]
    name, options = IMAGE_FORMATS[fmt]

    def pillow(i: int) -> None:
        Image.fromarray(made[i]).save(io.BytesIO(), format=name, **options)

    return _median_s(cold, repeat), _median_s(pillow, repeat)


def bench_sound(repeat: int, root: Path) -> tuple[float, float]:
    cache = ClipCache(root / "cache-mp3")
    variant = Variant(kind="audio", format="mp3", duration_s=10.0, speech=True)

    def cold(i: int) -> None:
        cache.get_or_render(
            image=None, prompt=PROMPT, seed=2000 + i, size=None, variant=variant
        )

    tags = PromptTags(speech=(PROMPT,), captions=(), visual="")
    raws = []
    for i in range(repeat):
        raw = root / f"samples-{i}.f32"
        samples = synthesize_audio(tags, seed=2000 + i, duration_s=10.0)
        raw.write_bytes(samples.astype("<f4").tobytes())
        raws.append(raw)

    def ffmpeg(i: int) -> None:
        raw = raws[i]
        codec, *flags = AUDIO_CODECS["mp3"]
        command = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
            "-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", str(raw),
            "-c:a", codec, *flags, "-ar", str(AUDIO_SAMPLE_RATE),
            "-f", "mp3", str(root / "out.mp3"),
        ]  # fmt: skip
        subprocess.run(command, check=True)

    return _median_s(cold, repeat), _median_s(ffmpeg, repeat)


def bench_video(repeat: int, root: Path) -> float:
    cache = ClipCache(root / "cache-mp4")
    variant = Variant(kind="video", frames=120, fps=24, audio=False)

    def cold(i: int) -> None:
        cache.get_or_render(
            image=None, prompt=PROMPT, seed=3000 + i, size=(1280, 720), variant=variant
        )

    return _median_s(cold, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        print(f"{'output':34} {'cold (ms)':>10} {'baseline (ms)':>14} {'ratio':>6}")
        for fmt in ("png", "jpeg", "webp"):
            cold, base = bench_image(fmt, args.repeat, root)
            print(
                f"{'image 1024x1024 ' + fmt:34} {cold * 1000:10.1f} "
                f"{base * 1000:14.1f} {cold / base:6.2f}   (baseline: Pillow encoding the same pixels)"
            )
        cold, base = bench_sound(args.repeat, root)
        print(
            f"{'sound 10 s mp3 (speech)':34} {cold * 1000:10.1f} {base * 1000:14.1f} "
            f"{cold / base:6.2f}   (baseline: ffmpeg encoding the same samples)"
        )
        video = bench_video(max(3, args.repeat // 2), root)
        print(f"{'video 1280x720 5 s, no sound':34} {video * 1000:10.1f}")


if __name__ == "__main__":
    main()
