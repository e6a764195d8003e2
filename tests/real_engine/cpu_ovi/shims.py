"""What Ovi needs to run on a CPU, and the shrunk sizes of its two big networks.

Test code only: the package never imports this. The worker builds the model with
:func:`build_cpu_ovi_engine` (named by ``WAVESPEED_MOCK_OVI_FACTORY``), which
applies the shims below and then builds Ovi's real ``OviFusionEngine`` from the
checkout, with the configuration the engine sends, and returns it: its real
``generate`` runs every call.

The shims, each for something Ovi does only on CUDA:

- ``torch.cuda`` calls that need a driver (``current_device`` as a default
  argument at import time, ``synchronize``, ``ipc_collect``, memory figures)
  become no-ops;
- ``torch.amp.autocast('cuda', ...)`` is turned off and the VAEs and the vocoder,
  which Ovi casts to bf16, run in float32 (a CPU without bf16 units emulates
  bf16 convolutions: the vocoder alone took over 20 minutes a clip);
- Ovi's ``flash_attention`` (flash-attn asserts CUDA) is routed to torch's
  ``scaled_dot_product_attention``, with the same padding semantics.

The shrinking: the fusion DiT (two 30-layer, 3072-wide Wan towers, 11.7 B
parameters) and the umt5-xxl encoder (5.7 B) are built with :data:`TINY_DIT` and
:data:`TINY_T5` (same classes and layer layout, fewer and narrower layers), and the
video area is 64x64 instead of 720x720 (the 121 frames and 5 s of audio stay).
The VAEs and the vocoder keep their real sizes. ``make_checkpoints.py`` writes
random weights for exactly these shapes, in Ovi's file names.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

TINY_DIT = {
    "dim": 128,
    "ffn_dim": 256,
    "num_heads": 4,
    # The paired video and audio towers need the same depth; Ovi's SLG skips
    # layer 11, so keep at least 12.
    "num_layers": 12,
    "text_dim": 64,
}
"""Replaces these keys of Ovi's ``video.json`` and ``audio.json``."""

TINY_T5 = {
    "dim": 64,
    "dim_attn": 64,
    "dim_ffn": 128,
    "num_heads": 2,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "vocab_size": 512,
}
"""Replaces these keys of Ovi's ``umt5_xxl`` configuration; ``dim`` is the DiT's
``text_dim``, and the tokenizer ``make_checkpoints.py`` trains has fewer ids
than ``vocab_size``."""

TINY_AREA = 64 * 64
"""The video area Ovi scales frames to (720x720 or 960x960 on the GPU)."""

_applied = False


def apply_cpu_shims() -> None:
    """Patch torch and Ovi's modules for the CPU; call before importing Ovi."""
    global _applied
    if _applied:
        return
    torch = importlib.import_module("torch")
    torch.cuda.current_device = lambda: "cpu"
    torch.cuda.synchronize = lambda *a, **k: None
    torch.cuda.ipc_collect = lambda *a, **k: None
    torch.cuda.empty_cache = lambda *a, **k: None
    torch.cuda.memory_allocated = lambda *a, **k: 0
    torch.cuda.memory_reserved = lambda *a, **k: 0

    real_autocast = torch.amp.autocast

    class CpuAutocast(real_autocast):  # type: ignore[misc, valid-type]
        def __init__(self, device_type: str, *args: Any, **kwargs: Any) -> None:
            if device_type == "cuda":
                # Off: a CPU without bf16 units emulates bf16 convolutions, and
                # the vocoder alone then takes tens of minutes a clip; float32
                # runs the same operations on the same weights.
                device_type = "cpu"
                kwargs["enabled"] = False
            super().__init__(device_type, *args, **kwargs)

    torch.amp.autocast = CpuAutocast
    torch.autocast = CpuAutocast
    _applied = True


def sdpa_attention(
    q: Any,
    k: Any,
    v: Any,
    q_lens: Any = None,
    k_lens: Any = None,
    dropout_p: float = 0.0,
    softmax_scale: float | None = None,
    q_scale: float | None = None,
    causal: bool = False,
    window_size: tuple[int, int] = (-1, -1),
    deterministic: bool = False,
    dtype: Any = None,
    version: Any = None,
) -> Any:
    """Ovi's ``flash_attention`` ([B, L, N, C] in and out) on torch's SDPA.

    Keys past ``k_lens`` are masked; query rows past ``q_lens`` come out zero,
    as the varlen kernel leaves them.
    """
    torch = sys.modules["torch"]
    functional = importlib.import_module("torch.nn.functional")
    out_dtype = q.dtype
    if q_scale is not None:
        q = q * q_scale
    lq, lk = q.size(1), k.size(1)
    mask = None
    if k_lens is not None:
        positions = torch.arange(lk, device=k.device)[None, :]
        mask = (positions < k_lens.to(k.device)[:, None])[:, None, None, :]
    if k.size(2) != q.size(2):  # grouped heads
        repeat = q.size(2) // k.size(2)
        k = k.repeat_interleave(repeat, dim=2)
        v = v.repeat_interleave(repeat, dim=2)
    out = functional.scaled_dot_product_attention(
        q.transpose(1, 2),
        k.transpose(1, 2).to(q.dtype),
        v.transpose(1, 2).to(q.dtype),
        attn_mask=mask,
        is_causal=causal and mask is None,
        scale=softmax_scale,
    ).transpose(1, 2)
    if q_lens is not None:
        positions = torch.arange(lq, device=q.device)[None, :]
        keep = positions < q_lens.to(q.device)[:, None]
        out = out * keep[:, :, None, None].to(out.dtype)
    return out.to(out_dtype).contiguous()


def import_ovi_for_cpu() -> Any:
    """Ovi's ``ovi.ovi_fusion_engine``, imported with the shims and the shrinking.

    The checkout must be the working directory and on ``sys.path`` (the worker
    sees to both).
    """
    apply_cpu_shims()
    attention = importlib.import_module("ovi.modules.attention")
    attention.flash_attention = sdpa_attention
    for name in ("ovi.modules.model", "ovi.modules.fusion"):
        module = importlib.import_module(name)
        if hasattr(module, "flash_attention"):
            module.flash_attention = sdpa_attention
    t5 = importlib.import_module("ovi.modules.t5")
    real_umt5 = t5.umt5_xxl

    def tiny_umt5(**kwargs: Any) -> Any:
        return real_umt5(**{**kwargs, **TINY_T5})

    t5.umt5_xxl = tiny_umt5
    loading = importlib.import_module("ovi.utils.model_loading_utils")
    real_fusion = loading.FusionModel

    def tiny_fusion(video_config: Any = None, audio_config: Any = None) -> Any:
        # In place: Ovi reads the latent channels from the same dicts afterwards.
        for config in (video_config, audio_config):
            if config is not None:
                config.update(TINY_DIT)
        return real_fusion(video_config, audio_config)

    loading.FusionModel = tiny_fusion
    return importlib.import_module("ovi.ovi_fusion_engine")


def build_cpu_ovi_engine(*, config: dict[str, Any], device: int = 0) -> Any:
    """The worker's factory: Ovi's real ``OviFusionEngine`` on the CPU."""
    fusion = import_ovi_for_cpu()
    torch = sys.modules["torch"]
    omegaconf = importlib.import_module("omegaconf")
    engine = fusion.OviFusionEngine(
        config=omegaconf.OmegaConf.create(config),
        device="cpu",
        target_dtype=torch.bfloat16,
    )
    engine.target_area = TINY_AREA
    # Ovi casts both VAEs (and the vocoder) to bf16; a CPU without bf16 units
    # emulates those convolutions, tens of minutes a clip. Float32 weights and
    # inputs run the same code.
    engine.vae_model_video.model = engine.vae_model_video.model.float()
    engine.vae_model_audio = engine.vae_model_audio.float()
    for vae in (engine.vae_model_video, engine.vae_model_audio):
        for name in ("wrapped_encode", "wrapped_decode"):
            real = getattr(vae, name)
            setattr(vae, name, lambda x, _real=real: _real(x.float()))
    return engine
