"""How much time the Ovi engine adds around the model's own ``generate`` call.

Runs the real ``OviEngine`` (spawned worker, pipe, MP4 writer) with the stand-in
from ``tests/real_engine/fake_ovi.py`` at the real output size, 121 frames of
704x704 (a square image on the 720x720_5s variant), so no GPU is needed. The
overhead of one clip is the wall time of ``render`` minus ``timings.inference``
(the measured ``generate`` call): image decoding, queueing, the hand-off between
processes, turning float frames into bytes and writing the MP4.

    python benchmarks/bench_ovi_overhead.py [--clips 5] [--compare-handoffs]

``--compare-handoffs`` also times the two designs not taken: sending the float32
video back through the pipe, and handing uint8 frames over in shared memory.
Target: at most 0.3 s of overhead per clip (issue 15). docs/real-engine.md has the
figures.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "real_engine" / "fake_ovi.py"
TARGET_S = 0.3


def square_png(side: int = 1024) -> bytes:
    """A photo-sized square PNG with some texture, so decoding costs what it would."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side]
    rgb = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.int16)
    rgb += rng.integers(-12, 12, rgb.shape, dtype=np.int16)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def bench_engine(clips: int, workdir: Path, threads: int | None) -> dict[str, float]:
    from wavespeed_mock.mock_server.core.engine import RenderJob
    from wavespeed_mock.real_engine import OviEngine, OviOptions
    from wavespeed_mock.real_engine._request import decode_image

    os.environ["WAVESPEED_FAKE_OVI_FRAME"] = "ovi"  # Ovi's sizing: 704x704 here
    image = square_png()
    began = time.perf_counter()
    engine = OviEngine(
        OviOptions(variant="720x720_5s"),
        factory=f"{FAKE}:FakeOviFusionEngine",
        encode_threads=threads,
    )
    threads = engine.encode_threads
    start_s = time.perf_counter() - began
    overheads, inferences = [], []
    try:
        for index in range(clips + 1):  # the first clip warms the worker up
            job = RenderJob(
                prediction_id=f"bench-{index}",
                model="character-ai/ovi/image-to-video",
                prompt="A woman says <S>hello<E>.",
                seed=index,
                width=None,
                height=None,
                output_path=workdir / f"bench-{index}.mp4",
                image=image,
            )
            began = time.perf_counter()
            result = engine.render(job)
            wall = time.perf_counter() - began
            if index:
                overheads.append(wall - result.inference_ms / 1000)
                inferences.append(result.inference_ms / 1000)
    finally:
        engine.close()
    decode = min(_timed(lambda: decode_image(image)) for _ in range(3))
    return {
        "start_s": start_s,
        "overhead_s": statistics.median(overheads),
        "overhead_max_s": max(overheads),
        "stand_in_generate_s": statistics.median(inferences),
        "decode_s": decode,
        # Both routes, alternated, best of 3 each: the worker's I420 route and
        # the RGB route it replaced, as the baseline of the same run.
        **_both_routes(workdir, threads),
        "threads": threads,
        "mp4_bytes": (workdir / f"bench-{clips}.mp4").stat().st_size,
    }


def _write_full_size(workdir: Path, threads: int, route: str) -> None:
    """Float frames to the MP4 in this process: ``i420`` as the worker does, or
    ``rgb`` (bytes interleaved, ffmpeg converting), the route before it."""
    sys.path.insert(0, str(FAKE.parent))
    import fake_ovi
    from wavespeed_mock.mock_server.media.writer import write_clip
    from wavespeed_mock.real_engine._frames import video_frames, video_i420_frames

    video, audio = _VIDEO.get("v"), _VIDEO.get("a")
    if video is None:
        video, audio = fake_ovi._video(1, 704, 704), fake_ovi._audio(1)
        _VIDEO["v"], _VIDEO["a"] = video, audio
    path = workdir / f"direct-{route}.mp4"
    if route == "i420":
        write_clip(
            video_i420_frames(video),
            audio,
            16_000,
            path,
            threads=threads,
            pixel_format="yuv420p",
        )
    else:
        write_clip(video_frames(video), audio, 16_000, path, threads=threads)


_VIDEO: dict[str, np.ndarray] = {}


def _both_routes(workdir: Path, threads: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"i420": [], "rgb": []}
    for _ in range(3):
        for route, spent in times.items():
            spent.append(_timed(lambda r=route: _write_full_size(workdir, threads, r)))
    return {"write_s": min(times["i420"]), "write_rgb_s": min(times["rgb"])}


def _timed(action: object) -> float:
    began = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - began


# --- the designs not taken -------------------------------------------------


def _send_floats(conn: Connection) -> None:
    sys.path.insert(0, str(FAKE.parent))
    import fake_ovi

    video = fake_ovi._video(1, 704, 704)
    conn.recv()
    conn.send(time.perf_counter())
    conn.send(video)


def _to_shared_uint8(conn: Connection) -> None:
    sys.path.insert(0, str(FAKE.parent))
    import fake_ovi
    from wavespeed_mock.real_engine._frames import video_frames

    video = fake_ovi._video(1, 704, 704)
    _, frames, height, width = video.shape
    conn.recv()
    began = time.perf_counter()
    block = SharedMemory(create=True, size=frames * height * width * 3)
    out = np.ndarray((frames, height, width, 3), np.uint8, buffer=block.buf)
    for index, frame in enumerate(video_frames(video)):
        out[index] = frame
    conn.send((began, block.name, out.shape))
    conn.recv()  # the parent has attached
    del out
    block.close()


def compare_handoffs() -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    results = {}
    parent, child = context.Pipe()
    process = context.Process(target=_send_floats, args=(child,))
    process.start()
    parent.send("go")
    sent = parent.recv()
    video = parent.recv()
    results["pipe_float32_s"] = time.perf_counter() - sent
    assert video.shape == (3, 121, 704, 704)
    del video
    process.join()

    parent, child = context.Pipe()
    process = context.Process(target=_to_shared_uint8, args=(child,))
    process.start()
    parent.send("go")
    began, name, shape = parent.recv()
    block = SharedMemory(name=name)
    frames = np.ndarray(shape, np.uint8, buffer=block.buf)
    checksum = int(frames[:, ::64, ::64].sum())  # touch it, as the writer would
    results["shm_convert_and_attach_s"] = time.perf_counter() - began
    del frames
    block.close()
    block.unlink()
    parent.send("done")
    process.join()
    assert checksum >= 0
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=5)
    parser.add_argument("--compare-handoffs", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=None, help="x264 threads (default: the engine's)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ovi-") as folder:
        figures = bench_engine(args.clips, Path(folder), args.threads)
    print(f"clips: {args.clips} x 121 frames 704x704 + 5.02 s audio (stand-in)")
    print(f"engine start (spawn + stand-in load): {figures['start_s']:.2f} s")
    print(
        f"stand-in generate (excluded):        {figures['stand_in_generate_s']:.2f} s"
    )
    print(f"image decode, 1024x1024 PNG:         {figures['decode_s']:.3f} s")
    print(
        f"frames to I420 + MP4 write:          {figures['write_s']:.2f} s "
        f"({figures['threads']:.0f} x264 threads)"
    )
    print(
        f"  baseline, frames to RGB + MP4:     {figures['write_rgb_s']:.2f} s "
        f"(I420 / RGB: {figures['write_s'] / figures['write_rgb_s']:.2f}x)"
    )
    print(f"MP4 size:                            {figures['mp4_bytes'] / 1e6:.1f} MB")
    print(
        f"OVERHEAD per clip (median of {args.clips}): {figures['overhead_s']:.2f} s "
        f"(max {figures['overhead_max_s']:.2f} s; target <= {TARGET_S:.1f} s)"
    )
    if args.compare_handoffs:
        handoffs = compare_handoffs()
        print(
            "hand-off not taken, float32 video through the pipe: "
            f"{handoffs['pipe_float32_s']:.2f} s (before any MP4 writing)"
        )
        print(
            "hand-off not taken, uint8 frames in shared memory (convert + attach): "
            f"{handoffs['shm_convert_and_attach_s']:.2f} s (before any MP4 writing)"
        )
    return 0 if figures["overhead_s"] <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
