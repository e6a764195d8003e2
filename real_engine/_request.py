"""From a :class:`RenderJob` to the arguments of Ovi's ``generate`` call."""

from __future__ import annotations

import io
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..contracts import UnusableImageError, image_formats, probe_image, seed_rule
from ..mock_server.core.engine import RenderFailed, RenderJob
from ..mock_server.settings import DEFAULT_MAX_IMAGE_PIXELS
from ._variants import OviVariant

__all__ = ["GenerationParams", "OviCall", "build_call", "image_array", "resolve_seed"]


@dataclass(frozen=True)
class GenerationParams:
    """The sampling settings passed to every ``generate`` call.

    The defaults are the values of Ovi's inference YAML and README, the settings the
    hosted service most likely runs. Every one is passed explicitly: the defaults
    of Ovi's ``generate`` function differ (guidance 5.0/4.0, SLG layer 9, empty
    negative prompts).

    Example:
        >>> GenerationParams(sample_steps=30).sample_steps
        30
    """

    solver_name: str = "unipc"
    sample_steps: int = 50
    shift: float = 5.0
    video_guidance_scale: float = 4.0
    audio_guidance_scale: float = 3.0
    slg_layer: int = 11
    video_negative_prompt: str = "jitter, bad hands, blur, distortion"
    audio_negative_prompt: str = "robotic, muffled, echo, distorted"

    def as_kwargs(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OviCall:
    """One generation, as sent to the worker process (small and picklable)."""

    prediction_id: str
    text_prompt: str
    image: np.ndarray | None
    """RGB uint8 (H, W, 3); the worker hands Ovi a ``PIL.Image`` made from it."""
    video_frame_height_width: tuple[int, int] | None
    seed: int
    params: GenerationParams
    output_path: str
    fps: int = 24
    threads: int = 1

    def generate_kwargs(self, image: object) -> dict[str, Any]:
        """Every keyword of Ovi's ``generate``, ``image`` in place of the array."""
        size = self.video_frame_height_width
        return {
            "text_prompt": self.text_prompt,
            "image_path": image,
            "video_frame_height_width": None if size is None else list(size),
            "seed": self.seed,
            **self.params.as_kwargs(),
        }


def resolve_seed(seed: int) -> int:
    """``seed``, or a fresh random one for the API's random seed (``-1``).

    Torch would turn -1 into 2**64 - 1, a fixed seed, so -1 never reaches Ovi.
    """
    rule = seed_rule()
    if seed != rule.random and not rule.minimum <= seed <= rule.maximum:
        raise RenderFailed(
            f"seed {seed!r} is out of range; expected {rule.random} or "
            f"{rule.minimum}..{rule.maximum}",
            code=1401,
        )
    return rule.resolve(seed, lambda low, high: low + secrets.randbelow(high - low + 1))


def image_array(
    data: bytes, *, source: str = "", max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
) -> np.ndarray:
    """Encoded image bytes as an RGB uint8 array (H, W, 3), EXIF rotation applied.

    The contract's image rule (formats, ``max_pixels``) is checked from the header
    first, so a decompression bomb is refused before a pixel is decoded.
    """
    where = f" from {source!r}" if source else ""
    try:
        probe_image(data, max_pixels=max_pixels)
        with Image.open(io.BytesIO(data), formats=sorted(image_formats())) as opened:
            rgb = ImageOps.exif_transpose(opened).convert("RGB")
    except UnusableImageError as exc:
        raise RenderFailed(
            f"the image{where} cannot be used: {exc}", code=1402
        ) from None
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        ValueError,
    ) as exc:
        raise RenderFailed(
            f"the image{where} could not be decoded ({exc}); "
            f"expected one of {', '.join(sorted(image_formats()))}",
            code=1402,
        ) from None
    return np.asarray(rgb, dtype=np.uint8)


def build_call(
    job: RenderJob,
    *,
    params: GenerationParams,
    variant: OviVariant,
    threads: int = 1,
) -> OviCall:
    """The generation for ``job``: image-to-video when the model says so, else text.

    Raises:
        RenderFailed: for a model this engine does not serve or a bad image (1402).
    """
    kind = job.model.rsplit("/", 1)[-1]
    image: np.ndarray | None = None
    size: tuple[int, int] | None = None
    if kind == "image-to-video":
        if job.image is None:
            raise RenderFailed(
                "image-to-video needs an image, and the job has none", code=1400
            )
        if job.image_source == "placeholder":
            # The server did not fetch the URL (fetching is off by default): Ovi
            # would animate the mock's stand-in frame and the task would
            # "complete" with a clip of the wrong picture.
            raise RenderFailed(
                "Failed to download image from the provided URL: the server does "
                "not fetch image URLs, so the real engine has no picture to "
                "animate. Start it with --fetch-remote-images "
                "(WAVESPEED_MOCK_FETCH_REMOTE_IMAGES=1), or upload the image "
                "(POST /api/v3/media/upload/binary) and send its URL",
                code=1402,
            )
        image = image_array(
            job.image, source=job.image_source, max_pixels=job.max_image_pixels
        )
    elif kind == "text-to-video":
        # Ovi rescales [H, W] to the variant's area, keeping the aspect ratio.
        size = (job.height or variant.side, job.width or variant.side)
    else:
        raise RenderFailed(
            "the Ovi engine renders image-to-video and text-to-video, "
            f"not {job.model!r}",
            code=1401,
        )
    return OviCall(
        prediction_id=job.prediction_id,
        text_prompt=job.prompt,
        image=image,
        video_frame_height_width=size,
        seed=resolve_seed(job.seed),
        params=params,
        # Absolute, resolved here in the server's working directory: the worker
        # runs in the Ovi checkout, where a relative data folder means another
        # folder, one the server does not serve.
        output_path=str(Path(job.output_path).absolute()),
        threads=threads,
    )
