"""Synthetic outputs of every kind but video: images, sounds and texts.

Each is deterministic per seed and inputs and visibly (or audibly) derived from
the prompt: an image is the prompt's scene (or the input image, fitted) with the
"SYNTHETIC" badge; a sound is the prompt's speech and captions (a text-to-speech
text is all speech); a text is made of the prompt's words. Videos are
:func:`~.render.render_clip`'s.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from ._badge import draw_badge
from .audio import SAMPLE_RATE, synthesize_audio
from .errors import ClipArrayError
from .frames import draw_scene
from .image import decode_image, fit_image
from .prompt_tags import PromptTags, parse_prompt_tags
from .writer import CLIP_FILE_MODE, write_audio

__all__ = [
    "IMAGE_FORMATS",
    "render_image",
    "render_sound",
    "render_text",
    "write_atomically",
]

IMAGE_FORMATS = {
    "png": ("PNG", {"compress_level": 1}),
    "jpeg": ("JPEG", {"quality": 90}),
    "webp": ("WEBP", {"quality": 80, "method": 0}),
    "gif": ("GIF", {}),
    "bmp": ("BMP", {}),
    "tiff": ("TIFF", {}),
}
"""Image formats and Pillow's encoder settings (PNG at level 1: a mock's images
need to decode everywhere, not to be small; measured in benchmarks/bench_outputs.py)."""


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def image_pixels(
    *,
    prompt: str,
    seed: int,
    size: tuple[int, int] | None,
    image: bytes | None = None,
    max_image_pixels: int = 40_000_000,
    scale: float | None = None,
) -> np.ndarray:
    """The RGB pixels of a synthetic image: the input image fitted to ``size``
    (or scaled by ``scale``), else the prompt's scene; with the badge."""
    picture = (
        decode_image(image, max_pixels=max_image_pixels) if image is not None else None
    )
    if size is None:
        if picture is None:
            size = (1024, 1024)
        else:
            factor = scale or 1.0
            w, h = picture.size
            size = (
                max(16, min(4096, round(w * factor))),
                max(16, min(4096, round(h * factor))),
            )
    width, height = size
    if picture is not None:
        pixels = fit_image(picture, (width, height)).copy()
    else:
        rng = np.random.default_rng([seed, zlib.crc32(_utf8(prompt))])
        pixels = draw_scene(rng, width, height).copy()
    draw_badge(pixels, seed % 997, label=str(seed))
    made: np.ndarray = pixels
    return made


def render_image(
    *,
    prompt: str,
    seed: int,
    size: tuple[int, int] | None,
    format: str,
    path: Path,
    image: bytes | None = None,
    max_image_pixels: int = 40_000_000,
    scale: float | None = None,
) -> None:
    """Write a synthetic image in ``format`` (``IMAGE_FORMATS``) to ``path``, atomically.

    Raises:
        ClipArrayError: a format not offered.
        ImageDecodeError, ImageTooLargeError: an unusable input image.
    """
    if format not in IMAGE_FORMATS:
        raise ClipArrayError(
            f"image format {format!r}; expected one of {', '.join(IMAGE_FORMATS)}."
        )
    pixels = image_pixels(
        prompt=prompt,
        seed=seed,
        size=size,
        image=image,
        max_image_pixels=max_image_pixels,
        scale=scale,
    )
    name, options = IMAGE_FORMATS[format]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=name, **options)
    write_atomically(path, buffer.getvalue())


def render_sound(
    *, prompt: str, seed: int, duration_s: float, format: str, path: Path, speech: bool
) -> None:
    """Write a synthetic sound of ``duration_s`` in ``format`` (``AUDIO_CODECS``).

    ``speech``: the whole prompt is spoken (text-to-speech); else its ``<S>``
    spans are, over a bed from its captions (or from the prompt itself).
    """
    tags = parse_prompt_tags(prompt)
    if speech:
        tags = PromptTags(speech=(prompt[:2000],), captions=(), visual="")
    elif not tags.speech and not tags.captions:
        tags = PromptTags(speech=(), captions=(prompt[:500],), visual=prompt)
    samples = synthesize_audio(tags, seed=seed, duration_s=duration_s)
    write_audio(samples, SAMPLE_RATE, path, format=format)


def render_text(*, prompt: str, seed: int, path: Path | None = None) -> str:
    """A short synthetic answer made of the prompt's words (an LLM's stand-in)."""
    words = [w for w in prompt.split() if w.isalnum()] or ["nothing"]
    rng = np.random.default_rng([seed, zlib.crc32(_utf8(prompt))])
    picked = [
        words[int(i)] for i in rng.integers(0, len(words), size=min(40, 4 + len(words)))
    ]
    digest = hashlib.sha256(_utf8(f"{seed}:{prompt}")).hexdigest()[:8]
    text = f"[synthetic answer {digest}] " + " ".join(picked) + "."
    if path is not None:
        write_atomically(path, text.encode("utf-8"))
    return text


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in its folder."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.pid{os.getpid()}.", suffix=".part", dir=path.parent
    )
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, CLIP_FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
