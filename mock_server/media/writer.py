"""Writing frames and audio to an MP4: H.264 yuv420p with AAC 44.1 kHz stereo.

This is the layer the real engine reuses: it knows nothing of prompts or seeds.
Frames go to the bundled ffmpeg as raw RGB (or ready-made I420) on its stdin, one
at a time, so a clip is never held whole in memory; audio (small: 5 s of 16 kHz float32 is 320 kB) goes
through a temporary raw file, which is simpler than a second pipe (that would need
a writer thread, since ffmpeg interleaves its reads and a full pipe would block).
We drive ffmpeg ourselves rather than through imageio-ffmpeg's writer because we
need two inputs and exact flags; that writer would also silently resize to a
multiple of 16 unless ``macro_block_size`` were set (960x540 would become 960x544).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Literal

import numpy as np
import numpy.typing as npt

from ._ffmpeg import ffmpeg_exe
from .errors import ClipArrayError, ClipSizeError, EncoderError, EncoderTimeout

__all__ = [
    "AUDIO_CHANNELS",
    "AUDIO_CODECS",
    "AUDIO_SAMPLE_RATE",
    "ENCODER_SETTINGS",
    "MAX_FRAMES",
    "MAX_SIDE",
    "X264_PRESET",
    "write_audio",
    "write_clip",
]

X264_PRESET = "ultrafast"
"""Measured on a 2-core machine for 704x704x121 frames (see docs/media.md):
ultrafast ~0.3 s, veryfast ~0.7 s, Ovi's own medium over 2 s. A mock's clips need
to decode everywhere and look right, not to be small."""
X264_CRF = 23
AUDIO_SAMPLE_RATE = 44_100
AUDIO_CHANNELS = 2
AUDIO_BITRATE = "128k"
MAX_SIDE = 4096
MAX_FRAMES = 24 * 60
MIN_SIDE = 16
MAX_AUDIO_RATE = 192_000
MIN_AUDIO_RATE = 8_000

# The encoder half of the command: what decides the bytes of the file, and so part
# of every cache key. What makes the output byte-stable on one machine:
#   -threads N            x264 output is stable for a fixed thread count, but
#                         differs between counts (frame threads change decisions);
#                         the caller pins it (Settings.render_threads).
#   -fflags +bitexact     the muxer writes no "Lavf..." encoder tag and no times.
#   -flags:v/a +bitexact  the encoders leave out version strings where they can.
#   -map_metadata -1      no metadata copied from the inputs, so no creation_time
#   -map_chapters -1      (and nothing else that could carry a time or a path).
ENCODER_SETTINGS: tuple[str, ...] = (
    "-c:v", "libx264",
    "-preset", X264_PRESET,
    "-crf", str(X264_CRF),
    "-pix_fmt", "yuv420p",
    # swscale's RGB->YUV default is the BT.601 matrix; say so, so players agree.
    "-colorspace", "smpte170m",
    "-color_range", "tv",
    "-c:a", "aac",
    "-b:a", AUDIO_BITRATE,
    "-ar", str(AUDIO_SAMPLE_RATE),
    "-ac", str(AUDIO_CHANNELS),
    "-fflags", "+bitexact",
    "-flags:v", "+bitexact",
    "-flags:a", "+bitexact",
    "-map_metadata", "-1",
    "-map_chapters", "-1",
    # moov first, so a browser can start playing before the download ends.
    "-movflags", "+faststart",
)  # fmt: skip

DEFAULT_TIMEOUT_S = 120.0
PARTIAL_MARK = "pid"
CLIP_FILE_MODE = 0o644
"""Every clip written is readable by all (rw-r--r--), whatever the temp file had."""
"""Temporary files are named ``.<clip name>.pid<pid>.<random>.part`` (and ``.f32``)."""

Frame = npt.NDArray[np.uint8]
PixelFormat = Literal["rgb24", "yuv420p"]


def write_clip(
    frames: npt.NDArray[np.uint8] | Iterable[npt.NDArray[np.uint8]],
    audio: npt.NDArray[np.floating] | None,
    sample_rate: int,
    path: Path | str,
    *,
    fps: int = 24,
    threads: int = 1,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    pixel_format: PixelFormat = "rgb24",
) -> None:
    """Encode frames and audio to an MP4 at ``path``, atomically.

    Args:
        frames: uint8 RGB, either one ``(F, H, W, 3)`` array or an iterable of
            ``(H, W, 3)`` arrays, consumed one at a time (a generator keeps memory
            flat). Height and width must be even (yuv420p).
        audio: float samples in [-1, 1]: 1-D for mono or ``(N, 2)`` for stereo;
            None for a clip without a sound track.
        sample_rate: of ``audio``, in Hz; the file always holds 44.1 kHz stereo.
        path: where the MP4 goes. It is written to a temporary file in the same
            folder and renamed, so ``path`` is never half-written.
        fps: frames per second.
        threads: x264 threads. Output bytes depend on it: keep it fixed.
        timeout_s: ffmpeg is stopped, and :class:`EncoderTimeout` raised, after this.
        pixel_format: ``"rgb24"`` (the default) for the frames described above, or
            ``"yuv420p"`` for frames already converted (BT.601, TV range) and laid
            out as I420 in a ``(height * 3 // 2, width)`` array: the Y plane, then
            U, then V. ffmpeg then converts nothing, which saves it ~0.2 s of CPU
            per 704x704 clip.

    Raises:
        ClipArrayError: frames or audio of the wrong shape, type or range.
        ClipSizeError: a frame size that is odd, too small or too large.
        EncoderError: ffmpeg failed (the message ends with its log).

    Example:
        >>> frames = np.zeros((24, 64, 64, 3), np.uint8)
        >>> write_clip(frames, np.zeros(16000, np.float32), 16000, "black.mp4")
    """
    path = Path(path)
    if not 1 <= fps <= 240:
        raise ClipArrayError(f"fps={fps!r} is out of range; expected 1 to 240.")
    if not 1 <= threads <= 64:
        raise ClipArrayError(f"threads={threads!r} is out of range; expected 1 to 64.")
    if not MIN_AUDIO_RATE <= sample_rate <= MAX_AUDIO_RATE:
        raise ClipArrayError(
            f"sample_rate={sample_rate!r} Hz is out of range; expected "
            f"{MIN_AUDIO_RATE} to {MAX_AUDIO_RATE}."
        )
    samples = _check_audio(audio) if audio is not None else None
    if pixel_format not in ("rgb24", "yuv420p"):
        raise ClipArrayError(
            f"pixel_format={pixel_format!r}; expected 'rgb24' or 'yuv420p'."
        )
    stream = _frame_stream(frames, pixel_format)
    first = next(stream)
    height, width = _frame_size(first.shape, pixel_format)

    folder = path.parent
    # The writer's pid in the temporary names lets a later start tell the files
    # of a killed process from those of a live one (ClipCache.remove_partials).
    owner = f".{path.name}.{PARTIAL_MARK}{os.getpid()}."
    fd, tmp_name = tempfile.mkstemp(prefix=owner, suffix=".part", dir=folder)
    os.close(fd)
    tmp_video = Path(tmp_name)
    audio_fd, audio_name = tempfile.mkstemp(prefix=owner, suffix=".f32", dir=folder)
    tmp_audio = Path(audio_name)
    try:
        with os.fdopen(audio_fd, "wb") as audio_file:
            if samples is not None:
                audio_file.write(samples.astype("<f4", copy=False).tobytes())
        if samples is not None:
            sound = [
                "-f", "f32le", "-ar", str(sample_rate),
                "-ac", str(1 if samples.ndim == 1 else 2), "-i", str(tmp_audio),
                "-map", "0:v:0", "-map", "1:a:0", *ENCODER_SETTINGS,
            ]  # fmt: skip
        else:
            sound = ["-map", "0:v:0", "-an", *_without_audio(ENCODER_SETTINGS)]
        command = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
            "-f", "rawvideo", "-pix_fmt", pixel_format, "-s", f"{width}x{height}",
            "-framerate", str(fps), "-i", "pipe:0",
            *sound,
            "-threads", str(threads),
            "-f", "mp4", str(tmp_video),
        ]  # fmt: skip
        _run_ffmpeg(command, first, stream, timeout_s)
        # mkstemp makes the file 0600; a clip is meant to be read by others (a
        # web server, a player run by another user), as any file a tool writes.
        os.chmod(tmp_video, CLIP_FILE_MODE)
        os.replace(tmp_video, path)
    finally:
        tmp_audio.unlink(missing_ok=True)
        tmp_video.unlink(missing_ok=True)


_AUDIO_OPTIONS = frozenset({"-c:a", "-b:a", "-ar", "-ac", "-flags:a"})


def _without_audio(settings: tuple[str, ...]) -> list[str]:
    """The encoder settings less the sound track's options (each takes a value)."""
    kept: list[str] = []
    skip = False
    for item in settings:
        if skip:
            skip = False
        elif item in _AUDIO_OPTIONS:
            skip = True
        else:
            kept.append(item)
    return kept


AUDIO_CODECS = {
    "mp3": ("libmp3lame", "-b:a", "128k"),
    "wav": ("pcm_s16le",),
    "flac": ("flac",),
    "ogg": ("libvorbis", "-q:a", "4"),
    "opus": ("libopus", "-b:a", "64k"),
    "aac": ("aac", "-b:a", AUDIO_BITRATE),
}
"""The sound files :func:`write_audio` writes, by format: ffmpeg's encoder and flags."""
_AUDIO_MUXERS = {
    "mp3": "mp3",
    "wav": "wav",
    "flac": "flac",
    "ogg": "ogg",
    "opus": "ogg",
    "aac": "adts",
}


def write_audio(
    audio: npt.NDArray[np.floating],
    sample_rate: int,
    path: Path | str,
    *,
    format: str = "mp3",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Encode float samples to a sound file (``AUDIO_CODECS``) at ``path``, atomically.

    Raises:
        ClipArrayError: bad samples, a rate out of range, or a format not offered.
        EncoderError: ffmpeg failed.
    """
    path = Path(path)
    if format not in AUDIO_CODECS:
        raise ClipArrayError(
            f"format={format!r}; expected one of {', '.join(sorted(AUDIO_CODECS))}."
        )
    if not MIN_AUDIO_RATE <= sample_rate <= MAX_AUDIO_RATE:
        raise ClipArrayError(f"sample_rate={sample_rate!r} Hz is out of range.")
    samples = _check_audio(audio)
    codec, *flags = AUDIO_CODECS[format]
    owner = f".{path.name}.{PARTIAL_MARK}{os.getpid()}."
    fd, tmp_name = tempfile.mkstemp(prefix=owner, suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        command = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
            "-f", "f32le", "-ar", str(sample_rate),
            "-ac", str(1 if samples.ndim == 1 else 2), "-i", "pipe:0",
            "-c:a", codec, *flags, "-ar", str(AUDIO_SAMPLE_RATE),
            "-fflags", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1",
            "-f", _AUDIO_MUXERS[format], str(tmp),
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command,
                input=samples.astype("<f4", copy=False).tobytes(),
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise EncoderTimeout(
                f"ffmpeg ran past its {timeout_s:g} s limit and was stopped."
            ) from None
        if done.returncode != 0:
            tail = done.stderr[-2000:].decode("utf-8", "replace").strip()
            raise EncoderError(
                f"ffmpeg exited with status {done.returncode} while writing the "
                f"sound.\n{tail or '(no log)'}"
            )
        os.chmod(tmp, CLIP_FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _run_ffmpeg(
    command: list[str], first: Frame, rest: Iterator[Frame], timeout_s: float
) -> None:
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log
        )
        # A watchdog rather than a deadline check between writes: a write to a
        # full pipe blocks, and only killing ffmpeg unblocks it.
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            process.kill()

        watchdog = threading.Timer(timeout_s, stop)
        watchdog.daemon = True
        watchdog.start()
        try:
            assert process.stdin is not None
            broken = _feed(process.stdin, first, rest)
            process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            watchdog.cancel()
        if timed_out.is_set():
            raise EncoderTimeout(
                f"ffmpeg ran past its {timeout_s:g} s limit and was stopped."
            )
        if process.returncode != 0 or broken:
            log.seek(0)
            tail = log.read()[-2000:].decode("utf-8", "replace").strip()
            raise EncoderError(
                f"ffmpeg exited with status {process.returncode} while writing the "
                f"clip.\n{tail or '(no log)'}"
            )


def _feed(stdin: IO[bytes], first: Frame, rest: Iterator[Frame]) -> bool:
    """Write every frame; True if ffmpeg closed the pipe early."""
    try:
        stdin.write(first.data)
        for frame in rest:
            stdin.write(frame.data)
    except BrokenPipeError:
        return True
    finally:
        with contextlib.suppress(BrokenPipeError):
            stdin.close()
    return False


def _frame_size(shape: tuple[int, ...], pixel_format: PixelFormat) -> tuple[int, int]:
    """(height, width) of a checked frame of ``shape``."""
    if pixel_format == "yuv420p":
        return shape[0] * 2 // 3, shape[1]
    return shape[0], shape[1]


def _frame_stream(
    frames: npt.NDArray[np.uint8] | Iterable[npt.NDArray[np.uint8]],
    pixel_format: PixelFormat = "rgb24",
) -> Iterator[Frame]:
    """The frames, checked one by one; the first is checked before ffmpeg starts."""
    if isinstance(frames, np.ndarray):
        if pixel_format == "rgb24" and (frames.ndim != 4 or frames.shape[-1] != 3):
            raise ClipArrayError(
                f"frames has shape {frames.shape!r}; "
                "expected (frames, height, width, 3)."
            )
        if pixel_format == "yuv420p" and frames.ndim != 3:
            raise ClipArrayError(
                f"frames has shape {frames.shape!r}; "
                "expected (frames, height * 3 // 2, width) I420."
            )
        source: Iterable[npt.NDArray[np.uint8]] = iter(frames)
    else:
        source = frames
    iterator = iter(source)
    try:
        first = next(iterator)
    except StopIteration:
        raise ClipArrayError(
            "frames is empty; a clip needs at least one frame."
        ) from None
    shape = _check_frame(first, 0, None, pixel_format)

    def generate() -> Iterator[Frame]:
        yield np.ascontiguousarray(first)
        for index, frame in enumerate(iterator, start=1):
            if index >= MAX_FRAMES:
                raise ClipArrayError(
                    f"More than {MAX_FRAMES} frames; that is not a clip."
                )
            _check_frame(frame, index, shape, pixel_format)
            yield np.ascontiguousarray(frame)

    return generate()


def _check_frame(
    frame: object,
    index: int,
    shape: tuple[int, ...] | None,
    pixel_format: PixelFormat = "rgb24",
) -> tuple[int, ...]:
    if not isinstance(frame, np.ndarray):
        raise ClipArrayError(
            f"frame {index} is a {type(frame).__name__}; expected a numpy uint8 array."
        )
    if frame.dtype != np.uint8:
        raise ClipArrayError(
            f"frame {index} has dtype {frame.dtype}; expected uint8 RGB "
            "(convert float video in [-1, 1] with "
            "np.clip((x + 1) * 127.5, 0, 255).astype(np.uint8))."
        )
    if shape is not None:
        if frame.shape != shape:
            raise ClipArrayError(
                f"frame {index} has shape {frame.shape!r}; "
                f"earlier frames had {shape!r}."
            )
        return shape
    if pixel_format == "yuv420p":
        if frame.ndim != 2 or frame.shape[0] % 3:
            raise ClipArrayError(
                f"frame {index} has shape {frame.shape!r}; expected "
                "(height * 3 // 2, width) I420."
            )
    elif frame.ndim != 3 or frame.shape[2] != 3:
        raise ClipArrayError(
            f"frame {index} has shape {frame.shape!r}; expected (height, width, 3) RGB."
        )
    height, width = _frame_size(frame.shape, pixel_format)
    check_clip_size(width, height)
    return tuple(frame.shape)


def check_clip_size(width: int, height: int) -> None:
    """Raise :class:`ClipSizeError` unless ``width`` x ``height`` can be encoded."""
    for name, side in (("width", width), ("height", height)):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise ClipSizeError(
                f"{name} {side} is out of range; "
                f"expected {MIN_SIDE} to {MAX_SIDE} pixels."
            )
        if side % 2:
            raise ClipSizeError(
                f"{name} {side} is odd; H.264 in yuv420p needs even sides "
                f"(try {side - 1} or {side + 1})."
            )


def _check_audio(audio: object) -> npt.NDArray[np.float32]:
    if not isinstance(audio, np.ndarray):
        raise ClipArrayError(
            f"audio is a {type(audio).__name__}; expected a numpy float array."
        )
    if not np.issubdtype(audio.dtype, np.floating):
        raise ClipArrayError(
            f"audio has dtype {audio.dtype}; expected float32 samples in [-1, 1] "
            "(divide int16 samples by 32768)."
        )
    if audio.ndim not in (1, 2) or (audio.ndim == 2 and audio.shape[1] != 2):
        raise ClipArrayError(
            f"audio has shape {audio.shape!r}; expected (samples,) mono or "
            "(samples, 2) stereo."
        )
    if audio.shape[0] == 0:
        raise ClipArrayError("audio is empty; a clip needs at least one sample.")
    samples = np.ascontiguousarray(audio, dtype=np.float32)
    if not np.isfinite(samples).all():
        raise ClipArrayError("audio holds NaN or infinite samples.")
    peak = float(np.abs(samples).max())
    if peak > 1.0 + 1e-4:
        raise ClipArrayError(f"audio peaks at {peak:.4g}; expected samples in [-1, 1].")
    return samples
