"""Start-up checks: everything the real Ovi model needs, found without importing it.

All problems are collected and raised together in one :class:`OviSetupError`, each
with what to do about it, so a user fixes the set-up in one pass.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ._variants import FP8_CHECKPOINT, VARIANTS, unknown_variant_message
from .errors import OviSetupError

__all__ = [
    "CHECKOUT_FILES",
    "SHARED_CHECKPOINTS",
    "CudaProbe",
    "check_ovi_setup",
    "probe_cuda",
    "required_checkpoints",
]

INSTALL_HINT = "pip install '.[ovi]' (from a wavespeed-mock checkout)"

EXTRA_MODULES = (
    "torch",
    "torchvision",
    "omegaconf",
    "diffusers",
    "transformers",
    "safetensors",
)
"""Import names from the ``[ovi]`` extra that Ovi imports first."""
OVI_REQUIREMENT_MODULES = (
    "cv2",
    "einops",
    "librosa",
    "moviepy",
    "pydub",
    "optimum.quanto",
    "open_clip",
    "pandas",
)
"""Imported by ``ovi.ovi_fusion_engine`` and its imports at import time, whatever
the options: optimum-quanto at the top of the engine module, open_clip by MMAudio's
feature utilities, pydub by Ovi's processing utilities (missing from its
requirements.txt)."""
PIP_NAMES = {
    "cv2": "opencv-python",
    "optimum.quanto": "optimum-quanto",
    "open_clip": "open-clip-torch",
}
"""The package to install where it differs from the import name."""

CHECKOUT_FILES = (
    "ovi/ovi_fusion_engine.py",
    "ovi/configs/inference/inference_fusion.yaml",
    "ovi/configs/model/dit/video.json",
    "ovi/configs/model/dit/audio.json",
)
"""Read relative to the checkout: the worker runs with it as working directory."""

TOKENIZER_DIR = "Wan2.2-TI2V-5B/google/umt5-xxl"
"""The umt5 tokenizer, read by ``AutoTokenizer.from_pretrained`` from this folder."""
TOKENIZER_FILES = ("tokenizer_config.json",)
TOKENIZER_VOCABULARY = ("tokenizer.json", "spiece.model")
"""The tokenizer needs its config and at least one of these vocabularies."""

SHARED_CHECKPOINTS = (
    "Wan2.2-TI2V-5B/models_t5_umt5-xxl-enc-bf16.pth",
    *(f"{TOKENIZER_DIR}/{name}" for name in TOKENIZER_FILES),
    "Wan2.2-TI2V-5B/Wan2.2_VAE.pth",
    "MMAudio/ext_weights/v1-16.pth",
    "MMAudio/ext_weights/best_netG.pt",
)

FLASH_ATTN_WHEEL = (
    "https://github.com/Dao-AILab/flash-attention/releases/download/v2.7.4.post1/"
    "flash_attn-2.7.4.post1+cu12torch2.6cxx11abiFALSE-cp{py}-cp{py}-linux_x86_64.whl"
)
"""The prebuilt wheel flash-attn's own setup.py looks for (``py``: 310, 311, 312)."""
FLASH_ATTN_HINT = (
    "two commands, torch first so that flash-attn finds it: "
    "pip install 'torch==2.6.0' wheel; then "
    "pip install 'flash-attn==2.7.4.post1' --no-build-isolation "
    "(its setup.py imports wheel, and on a host without a CUDA toolkit it stops at "
    "'CUDA_HOME environment variable is not set': then install the prebuilt wheel "
    "itself, pip install " + FLASH_ATTN_WHEEL.format(py="311") + ", with your "
    "Python's cp310/cp311/cp312 in its name)"
)

FP8_URL = (
    "https://huggingface.co/rkfg/Ovi-fp8_quantized/resolve/main/"
    "model_fp8_e4m3fn.safetensors"
)

CudaProbe = Callable[[], "tuple[int, str]"]
"""Returns (number of CUDA devices, a note when there are none)."""


def required_checkpoints(variant: str, *, fp8: bool = False) -> list[str]:
    """The files under the checkpoint folder that ``variant`` loads (beside one of
    the tokenizer's vocabularies, ``TOKENIZER_VOCABULARY``)."""
    fusion = FP8_CHECKPOINT if fp8 else VARIANTS[variant].checkpoint
    return [*SHARED_CHECKPOINTS, fusion]


def check_ovi_setup(
    *,
    checkout: Path | None,
    checkpoints: Path | None,
    variant: str = "720x720_5s",
    device: int = 0,
    devices: Sequence[int] | None = None,
    fp8: bool = False,
    qint8: bool = False,
    find_module: Callable[[str], bool] | None = None,
    cuda_probe: CudaProbe | None = None,
) -> None:
    """Raise :class:`OviSetupError` listing everything missing to run Ovi.

    Checks the Python packages, the CUDA devices (in a subprocess, so this
    process never imports torch), the Ovi checkout and the checkpoint files,
    the tokenizer's included. ``checkpoints`` defaults to ``<checkout>/ckpts``,
    Ovi's own default; ``devices`` (one worker each) to ``(device,)``.

    Example:
        >>> check_ovi_setup(checkout=Path("~/Ovi").expanduser(), checkpoints=None)
        ... # doctest: +SKIP
    """
    find = find_module or _module_exists
    problems: list[str] = []

    missing = [name for name in EXTRA_MODULES if not find(name)]
    if missing:
        problems.append(
            f"Python packages not installed: {', '.join(missing)}. "
            f"Install them with: {INSTALL_HINT}"
        )
    missing = [name for name in OVI_REQUIREMENT_MODULES if not find(name)]
    if missing:
        requirements = (
            f"{checkout}/requirements.txt" if checkout else "requirements.txt"
        )
        packages = " ".join(PIP_NAMES.get(name, name) for name in missing)
        problems.append(
            f"Python packages Ovi imports are not installed: {', '.join(missing)}. "
            f"Install them with: pip install -r {requirements} pydub (or just: "
            f"pip install {packages})"
        )
    if not (find("flash_attn") or find("flash_attn_interface")):
        problems.append(
            "flash-attn is not installed (Ovi's attention needs it on CUDA). Install "
            f"it with: {FLASH_ATTN_HINT}"
        )
    wanted = list(devices) if devices else [device]
    if find("torch"):
        count, note = (cuda_probe or probe_cuda)()
        if count == 0:
            problems.append(f"no CUDA device is available ({note}); Ovi needs a GPU")
        else:
            absent_gpus = [d for d in wanted if not 0 <= d < count]
            if absent_gpus:
                problems.append(
                    f"GPU {', '.join(map(str, absent_gpus))} was asked for "
                    "(--ovi-device / --ovi-devices) "
                    f"but there are {count} CUDA device(s): 0..{count - 1}"
                )
    if fp8 and qint8:
        problems.append(
            "--ovi-fp8 and --ovi-qint8 are two ways to shrink the same weights; "
            "choose one (each with --ovi-cpu-offload reaches ~24 GB)"
        )

    if checkout is None:
        problems.append(
            "no Ovi checkout given: git clone https://github.com/character-ai/Ovi "
            "and pass --ovi-checkout PATH (or WAVESPEED_MOCK_OVI_CHECKOUT)"
        )
    elif not checkout.is_dir():
        problems.append(
            f"the Ovi checkout {str(checkout)!r} does not exist: git clone "
            "https://github.com/character-ai/Ovi there, or fix --ovi-checkout"
        )
    else:
        absent = [f for f in CHECKOUT_FILES if not (checkout / f).exists()]
        if absent:
            problems.append(
                f"{str(checkout)!r} is not an Ovi checkout; it lacks "
                f"{', '.join(absent)}"
            )

    if variant not in VARIANTS:
        problems.append(unknown_variant_message(variant))
    elif fp8 and variant != "720x720_5s":
        problems.append(
            f"fp8 weights exist only for the 720x720_5s variant, not {variant!r}: "
            "drop --ovi-fp8 or use --ovi-variant 720x720_5s"
        )
    else:
        folder = checkpoints or (checkout / "ckpts" if checkout else None)
        if folder is not None:
            absent = [
                f
                for f in required_checkpoints(variant, fp8=fp8)
                if not (folder / f).exists()
            ]
            tokenizer = folder / TOKENIZER_DIR
            if not any((tokenizer / name).exists() for name in TOKENIZER_VOCABULARY):
                absent += [f"{TOKENIZER_DIR}/{TOKENIZER_VOCABULARY[0]}"]
            if absent:
                problems.append(_checkpoint_problem(folder, absent, variant))

    if problems:
        raise OviSetupError(problems)


def _checkpoint_problem(folder: Path, absent: list[str], variant: str) -> str:
    listing = "".join(f"\n      {folder / f}" for f in absent)
    hints = []
    if any(f != FP8_CHECKPOINT for f in absent):
        hints.append(
            f"python3 download_weights.py --output-dir {folder} --models {variant} "
            "(run in the Ovi checkout)"
        )
    if FP8_CHECKPOINT in absent:
        hints.append(f"wget -O {folder / FP8_CHECKPOINT} {FP8_URL}")
    return (
        f"checkpoint files missing ({len(absent)}):{listing}\n"
        f"    get them with: {' and '.join(hints)}"
    )


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


_PROBE = (
    "import json, torch\n"
    "n = torch.cuda.device_count() if torch.cuda.is_available() else 0\n"
    "print(json.dumps([n, 'CUDA ' + str(torch.version.cuda)]))\n"
)


def probe_cuda() -> tuple[int, str]:
    """Count CUDA devices with torch, in a child process."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 0, f"probing torch failed: {exc}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return 0, f"importing torch failed: {last}"
    try:
        count, note = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return 0, f"unexpected output from torch: {done.stdout[-200:]!r}"
    if count == 0:
        note = f"torch.cuda.is_available() is False; torch built with {note}"
    return int(count), str(note)
