"""A stand-in for Ovi's ``OviFusionEngine``: the real call signature and return
layout, no torch, no GPU, no weights.

The engine builds it inside its worker process through the factory hook
(``WAVESPEED_MOCK_OVI_FACTORY=tests/real_engine/fake_ovi.py:FakeOviFusionEngine``),
so it is steered by environment variables (read when it is built) and by tags in
the prompt (read per call):

- ``WAVESPEED_FAKE_OVI_FRAME``: ``HxW`` of the frames (default ``48x64``), or
  ``ovi`` to size them as Ovi does (the 720x720 area, sides multiples of 32).
- ``WAVESPEED_FAKE_OVI_RECORD``: a file that gets one JSON line per call.
- ``WAVESPEED_FAKE_OVI_LOAD``: ``fail`` (the constructor raises), ``killed`` (the
  process is killed while loading, as the host's OOM killer does), ``wait:PATH``
  (loading holds until the file ``PATH`` exists), ``sleep:S`` (loading takes S s).
  Read when the worker starts, so a test changes it for the next (re)load.
- ``WAVESPEED_FAKE_OVI_LOAD_GPU``: the GPU (``CUDA_VISIBLE_DEVICES``) whose
  worker ``WAVESPEED_FAKE_OVI_LOAD`` is for; unset: every worker's.
- prompt tags: ``[fake:sleep=S]``, ``[fake:wait=PATH]`` (holds the "GPU" until
  the file ``PATH`` exists, so a test decides when a render ends), ``[fake:none]`` (logs a traceback and returns
  None, as Ovi does on any error), ``[fake:oom]`` (the same for a CUDA OOM),
  ``[fake:raise]``, ``[fake:die]`` (the process exits), ``[fake:bad-shape]``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import signal
import time
import traceback
from typing import Any

import numpy as np

FRAMES = 121
AUDIO_SAMPLES = 80_384
FRAMES_10S = 241
AUDIO_SAMPLES_10S = 160_768
SAMPLE_RATE = 16_000


class _OutOfMemoryError(RuntimeError):
    """Named like torch's ``torch.OutOfMemoryError``."""


class FakeOviFusionEngine:
    def __init__(self, config: Any, device: int = 0, target_dtype: Any = None) -> None:
        record = os.environ.get("WAVESPEED_FAKE_OVI_RECORD")
        if record:  # one line per load begun, beside the calls
            gpu = os.environ.get("CUDA_VISIBLE_DEVICES")
            with open(os.path.join(os.path.dirname(record), "loads.jsonl"), "a") as f:
                line = {"pid": os.getpid(), "gpu": gpu, "at": time.time()}
                f.write(json.dumps(line) + "\n")
        load = os.environ.get("WAVESPEED_FAKE_OVI_LOAD", "")
        only = os.environ.get("WAVESPEED_FAKE_OVI_LOAD_GPU")
        if only is not None and only != os.environ.get("CUDA_VISIBLE_DEVICES"):
            load = ""  # the behaviour is for another GPU's worker
        if load == "fail":
            raise RuntimeError("fake Ovi: the checkpoint could not be loaded")
        if load == "killed":
            os.kill(os.getpid(), signal.SIGKILL)
        if load.startswith("wait:"):
            _wait_for_file(load[len("wait:") :])
        if load.startswith("sleep:"):
            time.sleep(float(load[len("sleep:") :]))
        self.config = dict(config)
        self.device = device
        if record:  # and one per load finished, so tests can order loads
            with open(os.path.join(os.path.dirname(record), "loaded.jsonl"), "a") as f:
                f.write(json.dumps({"pid": os.getpid(), "at": time.time()}) + "\n")
        self.frame = os.environ.get("WAVESPEED_FAKE_OVI_FRAME", "48x64")
        self.record = os.environ.get("WAVESPEED_FAKE_OVI_RECORD")
        name = str(self.config.get("model_name"))
        self.area = 720 * 720 if "720" in name else 960**2
        # Ovi's 10 s variant: 61 video latents (241 frames), 314 audio latents.
        self.frames, self.samples = (
            (FRAMES_10S, AUDIO_SAMPLES_10S)
            if "10s" in name
            else (FRAMES, AUDIO_SAMPLES)
        )

    # The signature and defaults of Ovi's OviFusionEngine.generate, on purpose.
    def generate(
        self,
        text_prompt,
        image_path=None,
        video_frame_height_width=None,
        seed=100,
        solver_name="unipc",
        sample_steps=50,
        shift=5.0,
        video_guidance_scale=5.0,
        audio_guidance_scale=4.0,
        slg_layer=9,
        video_negative_prompt="",
        audio_negative_prompt="",
    ):
        kwargs = dict(locals())
        del kwargs["self"]
        self._record(kwargs)
        tags = dict(re.findall(r"\[fake:([a-z-]+)(?:=([^\]]*))?\]", text_prompt))
        if "sleep" in tags:
            time.sleep(float(tags["sleep"]))
        if "wait" in tags:
            _wait_for_file(tags["wait"])
        if "die" in tags:
            os._exit(3)
        if "raise" in tags:
            raise ValueError("fake Ovi: something broke")
        if "none" in tags or "oom" in tags or "cuda-error" in tags:
            # What Ovi does: log the traceback, return None.
            try:
                if "oom" in tags:
                    raise _OutOfMemoryError(
                        "CUDA out of memory. Tried to allocate 2.00 GiB (fake)"
                    )
                if "cuda-error" in tags:
                    raise RuntimeError(
                        "CUDA error: an illegal memory access was encountered (fake)"
                    )
                raise RuntimeError("fake Ovi: sampling failed")
            except Exception:
                logging.error(traceback.format_exc())
            return None
        height, width = self._size(image_path, video_frame_height_width)
        if "bad-shape" in tags:
            return np.zeros((FRAMES, height, width, 3), np.float32), np.zeros(4), None
        video = _video(seed, height, width, self.frames)
        return video, _audio(seed, self.samples), None

    def _size(self, image: Any, size: list[int] | None) -> tuple[int, int]:
        if self.frame != "ovi":
            h, w = self.frame.split("x")
            return int(h), int(w)
        if image is not None:
            w, h = image.size
        else:
            assert size is not None, "text-to-video needs video_frame_height_width"
            h, w = size
        scale = math.sqrt(self.area / (h * w))
        return max(32, round(h * scale / 32) * 32), max(32, round(w * scale / 32) * 32)

    def _record(self, kwargs: dict[str, Any]) -> None:
        if not self.record:
            return
        image = kwargs["image_path"]
        if image is not None and not isinstance(image, str):
            kwargs["image_path"] = {
                "type": f"{type(image).__module__}.{type(image).__name__}",
                "mode": image.mode,
                "size": list(image.size),
                "pixel": list(image.getpixel((0, 0))),
            }
        entry = {
            "pid": os.getpid(),
            "cwd": os.getcwd(),
            "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "kwargs": kwargs,
        }
        with open(self.record, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


def _wait_for_file(path: str, timeout_s: float = 120.0) -> None:
    # Bounded, so a test that never opens the gate fails instead of hanging.
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"fake Ovi: {path!r} did not appear in {timeout_s} s")
        time.sleep(0.01)


def _video(seed: int, height: int, width: int, frames: int = FRAMES) -> np.ndarray:
    """A float32 (3, F, H, W) clip in [-1, 1]: textured ramps drifting with time."""
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    texture = 0.15 * np.sin(40 * x + 7 * y + seed % 7) * np.cos(33 * y - 5 * x)
    base = (0.6 * x + 0.4 * y + texture).astype(np.float32)
    video = np.empty((3, frames, height, width), np.float32)
    for c in range(3):
        for f in range(frames):
            phase = (seed % 100) / 100 + f / frames + c / 3
            np.subtract(
                np.abs(((base + phase) % 2.0) - 1.0) * 2.0, 1.0, out=video[c, f]
            )
    return video


def _audio(seed: int, samples: int = AUDIO_SAMPLES) -> np.ndarray:
    t = np.arange(samples, dtype=np.float32) / SAMPLE_RATE
    return (0.5 * np.sin(2 * np.pi * (440 + seed % 200) * t)).astype(np.float32)
