"""``render_clip``: a synthetic Ovi-like clip from an image, a prompt and a seed."""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .audio import SAMPLE_RATE, synthesize_audio
from .errors import ClipSizeError, SeedError
from .frames import Motion, choose_motion, draw_scene, iter_frames, pad_canvas
from .image import decode_image, fit_image
from .prompt_tags import check_prompt, parse_prompt_tags
from .sizes import DEFAULT_TEXT_TO_VIDEO_SIZE, output_size_for_image
from .writer import MAX_FRAMES, check_clip_size, write_clip

__all__ = ["CLIP_FPS", "CLIP_FRAMES", "ClipInfo", "render_clip"]

CLIP_FRAMES = 121
"""Ovi's 5 s clip: 31 video latents, 1 + 4 x 30 frames."""
CLIP_FPS = 24
RENDERER_VERSION = "2"
"""Bumped whenever the frames or audio change for the same inputs (a cache key)."""


@dataclass(frozen=True)
class ClipInfo:
    """What :func:`render_clip` made."""

    width: int
    height: int
    frames: int
    fps: int
    duration_s: float


def render_clip(
    *,
    image: bytes | None,
    prompt: str,
    seed: int,
    size: tuple[int, int] | None,
    path: Path,
    max_image_pixels: int = 40_000_000,
    threads: int = 1,
    frames: int = CLIP_FRAMES,
    fps: int = CLIP_FPS,
    audio: bool = True,
) -> ClipInfo:
    """Render an MP4 (Ovi's by default: 121 frames at 24 fps, with audio) to ``path``.

    The first frame is ``image`` scaled and centre-cropped to the output size; the
    later frames pan slowly (the direction from ``seed``) and carry a small
    "SYNTHETIC <seed>" badge, so clips of different seeds differ on sight. The audio follows the prompt's ``<S>...<E>`` speech and
    ``<AUDCAP>...<ENDAUDCAP>`` captions. Equal inputs give byte-identical files on
    one machine with the same library versions.

    Args:
        image: image bytes (the contract's formats), or None for text-to-video.
        prompt: the prompt, within the contract's bounds (1 to 10,000 characters).
        seed: the resolved seed, 0 or more (the server resolves -1 first).
        size: (width, height); None takes the size from the image by Ovi's rule
            (:func:`output_size_for_image`), or 960x540 without an image.
        path: where the MP4 goes (written atomically).
        max_image_pixels: images with more pixels are refused.
        threads: x264 threads; the bytes depend on it, so keep it fixed.
        frames, fps: the clip's length and rate (other models' videos).
        audio: whether the clip has a sound track.

    Raises:
        ImageDecodeError: ``image`` is not an image of the contract's formats.
        ImageTooLargeError: ``image`` has more than ``max_image_pixels`` pixels.
        PromptError: ``prompt`` is out of bounds.
        SeedError: ``seed`` is negative or not an integer.
        ClipSizeError: ``size`` is odd, too small or too large.
        EncoderError: ffmpeg failed or timed out.

    Example:
        >>> info = render_clip(image=Path("cat.png").read_bytes(), prompt="A cat",
        ...                    seed=42, size=None, path=Path("cat.mp4"))
        >>> info.width, info.height, info.frames
        (704, 704, 121)
    """
    check_prompt(prompt)
    seed = check_seed(seed)
    if size is not None:
        size = check_size(size)
    if not 1 <= frames <= MAX_FRAMES:
        raise ClipSizeError(f"frames={frames!r}; expected 1 to {MAX_FRAMES}.")
    duration_s = frames / fps
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The sound needs nothing from the picture: make it while the image decodes
        # (Pillow and numpy release the GIL), before ffmpeg takes a core.
        sound = (
            pool.submit(
                synthesize_audio,
                parse_prompt_tags(prompt),
                seed=seed,
                duration_s=duration_s,
            )
            if audio
            else None
        )
        canvas, motion, width, height = _picture(
            image, prompt, seed, size, max_image_pixels
        )
        samples = sound.result() if sound is not None else None
    write_clip(
        iter_frames(canvas, width, height, motion, frames, label=str(seed)),
        samples,
        SAMPLE_RATE,
        path,
        fps=fps,
        threads=threads,
        pixel_format="yuv420p",
    )
    return ClipInfo(
        width=width,
        height=height,
        frames=frames,
        fps=fps,
        duration_s=duration_s,
    )


def _picture(
    image: bytes | None,
    prompt: str,
    seed: int,
    size: tuple[int, int] | None,
    max_image_pixels: int,
) -> tuple[npt.NDArray[np.uint8], Motion, int, int]:
    """The canvas to pan over (the fitted image at its centre), the pan, the size."""
    picture = None
    if image is not None:
        picture = decode_image(image, max_pixels=max_image_pixels)
    if size is not None:
        width, height = size
    elif picture is not None:
        width, height = output_size_for_image(*picture.size)
    else:
        width, height = DEFAULT_TEXT_TO_VIDEO_SIZE
    # Separate streams for motion and scene, so a change to one leaves the other.
    root = np.random.SeedSequence([seed, zlib.crc32(_utf8(prompt))])
    motion_seq, scene_seq = root.spawn(2)
    motion = choose_motion(np.random.default_rng(motion_seq), width, height)
    if picture is not None:
        first = fit_image(picture, (width, height))
        return pad_canvas(first, motion.margin), motion, width, height
    canvas = draw_scene(
        np.random.default_rng(scene_seq),
        width + 2 * motion.margin,
        height + 2 * motion.margin,
    )
    return canvas, motion, width, height


def _utf8(text: str) -> bytes:
    # A JSON string may hold a lone surrogate ("\ud800"); hash it, don't fail on it.
    return text.encode("utf-8", "surrogatepass")


def check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise SeedError(f"seed={seed!r} is not an integer.")
    # Any non-negative integer seeds numpy's SeedSequence; the API's own bound
    # is the contract's (seed_rule), checked where requests come in.
    if seed < 0:
        raise SeedError(
            f"seed={seed!r} is negative; expected an integer >= 0 "
            "(resolve -1 to a random seed before rendering)."
        )
    return int(seed)


def check_size(size: object) -> tuple[int, int]:
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in size)
    ):
        raise ClipSizeError(f"size={size!r} is not a (width, height) pair of integers.")
    width, height = size
    check_clip_size(width, height)
    return width, height
