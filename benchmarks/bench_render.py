"""Benchmark the synthetic renderer: cold and cached render time, memory, overhead.

Run from the repository root with the project's virtual environment:

    python benchmarks/bench_render.py            # the figures in docs/media.md
    python benchmarks/bench_render.py --presets  # also time other x264 presets

It renders a 704x704 clip with audio (a square input image and a prompt with
speech and a caption) and prints:

* the median cold render time (decode, frames, audio, encode, mux);
* the median cached time (``ClipCache.get_or_render`` on a hit);
* the peak memory of one render in a fresh process, plus that of its ffmpeg child
  (the sum of the two peaks: an upper bound of the whole render's peak);
* the ratio of the cold time to a baseline measured in the same run: the bundled
  ffmpeg encoding the same frames and audio, read from files, with the same flags.

Targets (issue 3): ratio <= 1.3, cold <= 1.0 s, cached <= 10 ms, peak <= 300 MB.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from wavespeed_mock.mock_server.media import (
    ENCODER_SETTINGS,
    X264_PRESET,
    ClipCache,
    ffmpeg_exe,
    ffmpeg_version,
    parse_prompt_tags,
    render_clip,
)
from wavespeed_mock.mock_server.media.audio import SAMPLE_RATE, synthesize_audio
from wavespeed_mock.mock_server.media.frames import (
    choose_motion,
    iter_frames,
    pad_canvas,
)
from wavespeed_mock.mock_server.media.image import decode_image, fit_image
from wavespeed_mock.mock_server.media.render import CLIP_FPS, CLIP_FRAMES

PROMPT = (
    "A woman smiles at the camera and says <S>Good morning, and welcome to the "
    "show. Today we talk about the sea.<E> <AUDCAP>Waves, gulls, a light "
    "breeze.<ENDAUDCAP>"
)
SEED = 42


def make_image() -> bytes:
    """A 1024x1024 PNG with gradients, shapes and some grain, like a photo."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:1024, 0:1024].astype(np.float32)
    base = np.stack(
        [128 + 90 * np.sin(x / 150), 128 + 90 * np.cos(y / 110), (x + y) / 8], axis=-1
    )
    base += rng.normal(0, 6, base.shape)
    image = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for i in range(12):
        x0, y0 = 70 * i, 900 - 60 * i
        draw.ellipse((x0, y0 - 120, x0 + 180, y0 + 60), fill=(20 * i, 240 - 15 * i, 90))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def baseline_inputs(image: bytes, folder: Path) -> tuple[Path, Path, int, int]:
    """The very frames (I420) and audio the renderer pipes to ffmpeg, as raw files."""
    picture = decode_image(image, max_pixels=40_000_000)
    first = fit_image(picture, (704, 704))
    root = np.random.SeedSequence([SEED, zlib.crc32(PROMPT.encode("utf-8"))])
    motion_seq, _ = root.spawn(2)
    motion = choose_motion(np.random.default_rng(motion_seq), 704, 704)
    canvas = pad_canvas(first, motion.margin)
    video = folder / "frames.yuv"
    with video.open("wb") as out:
        for frame in iter_frames(canvas, 704, 704, motion, CLIP_FRAMES):
            out.write(frame.tobytes())
    audio = synthesize_audio(
        parse_prompt_tags(PROMPT), seed=SEED, duration_s=CLIP_FRAMES / CLIP_FPS
    )
    sound = folder / "audio.f32"
    sound.write_bytes(audio.astype("<f4").tobytes())
    return video, sound, 704, 704


def baseline_command(
    video: Path,
    sound: Path,
    size: tuple[int, int],
    out: Path,
    settings: tuple[str, ...],
) -> list[str]:
    return [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-s",
        f"{size[0]}x{size[1]}",
        "-framerate",
        str(CLIP_FPS),
        "-i",
        str(video),
        "-f",
        "f32le",
        "-ar",
        str(SAMPLE_RATE),
        "-ac",
        "1",
        "-i",
        str(sound),
        "-map",
        "0:v:0",
        "-map",
        "1:a:0",
        *settings,
        "-threads",
        "1",
        "-f",
        "mp4",
        str(out),
    ]


CPU: dict[str, list[float]] = {"cold": [], "baseline": []}


def cpu_seconds() -> float:
    """CPU time so far of this process and its finished children (ffmpeg)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: object, cpu: str | None = None) -> float:
    """Wall time of ``fn()``; its CPU time (ours + ffmpeg's) goes to ``CPU[cpu]``."""
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    if cpu:
        CPU[cpu].append(cpu_seconds() - cpu_before)
    return elapsed


def one_render_in_child(image_path: Path, out: Path) -> dict[str, float]:
    """Render once in a fresh interpreter; its peak RSS and its ffmpeg's, in MB."""
    code = (
        "import json, resource, sys\n"
        "from pathlib import Path\n"
        "from wavespeed_mock.mock_server.media import render_clip\n"
        "render_clip(image=Path(sys.argv[1]).read_bytes(), prompt=sys.argv[3], "
        "seed=42, size=None, path=Path(sys.argv[2]))\n"
        "me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps({'python_mb': me, 'ffmpeg_mb': kids}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(image_path), str(out), PROMPT],
        capture_output=True,
        check=True,
        text=True,
        timeout=120,
    )
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="cold renders (default 7)")
    parser.add_argument(
        "--presets", action="store_true", help="also time other presets"
    )
    args = parser.parse_args()

    image = make_image()
    print(f"ffmpeg: {ffmpeg_version()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    print(f"x264 preset: {X264_PRESET}, threads 1; clip 704x704, {CLIP_FRAMES} frames")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        video, sound, width, height = baseline_inputs(image, folder)
        # Warm the page cache, ffmpeg's version lookup and the imports.
        render_clip(
            image=image, prompt=PROMPT, seed=SEED, size=None, path=folder / "w.mp4"
        )
        command = baseline_command(
            video, sound, (width, height), folder / "b.mp4", ENCODER_SETTINGS
        )
        subprocess.run(command, check=True)

        cold: list[float] = []
        base: list[float] = []
        for i in range(args.runs):  # interleaved, so drift hits both alike
            base.append(timed(lambda: subprocess.run(command, check=True), "baseline"))
            target = folder / f"cold{i}.mp4"
            cold.append(
                timed(
                    lambda t=target: render_clip(
                        image=image, prompt=PROMPT, seed=SEED, size=None, path=t
                    ),
                    "cold",
                )
            )

        cache = ClipCache(folder / "cache")
        cache.get_or_render(image=image, prompt=PROMPT, seed=SEED, size=None)
        cached = [
            timed(
                lambda: cache.get_or_render(
                    image=image, prompt=PROMPT, seed=SEED, size=None
                )
            )
            for _ in range(50)
        ]

        image_path = folder / "in.png"
        image_path.write_bytes(image)
        memory = one_render_in_child(image_path, folder / "m.mp4")

        cold_s = statistics.median(cold)
        base_s = statistics.median(base)
        peak = memory["python_mb"] + memory["ffmpeg_mb"]
        print(
            f"cold render, median of {args.runs}:    {cold_s:.3f} s"
            f"  (min {min(cold):.3f}, max {max(cold):.3f})"
        )
        print(
            f"baseline ffmpeg alone, median:  {base_s:.3f} s"
            f"  (min {min(base):.3f}, max {max(base):.3f})"
        )
        print(f"ratio cold / baseline:          {cold_s / base_s:.2f}")
        cpu_cold = statistics.median(CPU["cold"])
        cpu_base = statistics.median(CPU["baseline"])
        print(
            f"CPU time (ours + ffmpeg), median: cold {cpu_cold:.3f} s, "
            f"baseline {cpu_base:.3f} s, ratio {cpu_cold / cpu_base:.2f}"
        )
        print(
            f"cached, median of 50:           {statistics.median(cached) * 1000:.2f} ms"
        )
        print(
            f"peak memory:                    {peak:.0f} MB (python "
            f"{memory['python_mb']:.0f} MB + ffmpeg {memory['ffmpeg_mb']:.0f} MB)"
        )
        print(
            "clip size:                      "
            f"{(folder / 'cold0.mp4').stat().st_size:,} B"
        )
        if args.presets:
            for preset in ("ultrafast", "superfast", "veryfast", "medium"):
                settings = list(ENCODER_SETTINGS)
                settings[settings.index("-preset") + 1] = preset
                out = folder / f"{preset}.mp4"
                cmd = baseline_command(
                    video, sound, (width, height), out, tuple(settings)
                )
                times = [
                    timed(lambda c=cmd: subprocess.run(c, check=True)) for _ in range(3)
                ]
                print(
                    f"  preset {preset:9} baseline median "
                    f"{statistics.median(times):.3f} s, {out.stat().st_size:,} B"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
