"""Write tiny random checkpoints for Ovi's ``720x720_5s`` variant, for the CPU.

Run with an Ovi checkout as the working directory (Ovi reads its DiT configs
relative to it)::

    cd ~/Ovi && python /path/to/tests/real_engine/cpu_ovi/make_checkpoints.py CKPTS

Every file has Ovi's real name and is built from Ovi's own classes, so its keys
and layer layout are what Ovi loads with ``strict=True``: the fusion DiT and the
umt5 encoder at the shrunk sizes of ``shims.py``; the Wan2.2 video VAE, the MMAudio
VAE and the BigVGAN vocoder at their real sizes (2.8 GB, 0.7 GB, 0.4 GB here as
float32). The umt5 tokenizer is a SentencePiece model trained here on a few
sentences (the real one is 4 MB and on the Hugging Face hub). Weights are random
(seeded), so the clip is noise; what is under test is the path, not the picture.
Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())  # the Ovi checkout
sys.path.insert(0, str(Path(__file__).parent))

from shims import TINY_T5, import_ovi_for_cpu

WAN = "Wan2.2-TI2V-5B"
TOKENIZER = f"{WAN}/google/umt5-xxl"
FILES = (
    "Ovi/model.safetensors",
    f"{WAN}/models_t5_umt5-xxl-enc-bf16.pth",
    f"{WAN}/Wan2.2_VAE.pth",
    "MMAudio/ext_weights/v1-16.pth",
    "MMAudio/ext_weights/best_netG.pt",
    f"{TOKENIZER}/spiece.model",
    f"{TOKENIZER}/tokenizer_config.json",
)

VOCABULARY = 64
"""SentencePiece refuses more pieces than the corpus yields (77 here)."""
CORPUS = (
    "a the smiling sun rises over green meadow camera slowly pushes in good "
    "morning world birdsong and soft breeze cat says hello woman smiles drummer "
    "plays on rooftop at dusk drums city noise jitter bad hands blur distortion "
    "robotic muffled echo distorted audio clear female voice quiet room"
)
"""What the tokenizer is trained on: the words of the check's and tests' prompts."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ckpt_dir", type=Path)
    args = parser.parse_args()
    root: Path = args.ckpt_dir
    if all((root / name).exists() for name in FILES):
        print(f"{root}: all {len(FILES)} files are there already")
        return
    import_ovi_for_cpu()
    torch = importlib.import_module("torch")
    torch.manual_seed(0)
    for name, write in (
        ("tokenizer", write_tokenizer),
        ("umt5 encoder", write_t5),
        ("fusion DiT", write_fusion),
        ("Wan2.2 VAE", write_wan_vae),
        ("MMAudio VAE and vocoder", write_mmaudio),
    ):
        began = time.perf_counter()
        write(root)
        print(f"{name}: {time.perf_counter() - began:.1f} s", flush=True)


def write_tokenizer(root: Path) -> None:
    sentencepiece = importlib.import_module("sentencepiece")
    folder = root / TOKENIZER
    folder.mkdir(parents=True, exist_ok=True)
    words = CORPUS.split()
    sentences = [" ".join(words[i:] + words[:i]) for i in range(len(words))]
    # T5's ids: pad 0, end 1, unknown 2, no begin token.
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences * 20),
        model_prefix=str(folder / "spiece"),
        vocab_size=VOCABULARY,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2,
    )
    (folder / "spiece.vocab").unlink(missing_ok=True)
    assert TINY_T5["vocab_size"] > VOCABULARY + 1
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "T5Tokenizer",
                "model_max_length": 512,
                "extra_ids": 0,
                "pad_token": "<pad>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
            }
        )
    )


def write_t5(root: Path) -> None:
    torch = importlib.import_module("torch")
    t5 = importlib.import_module("ovi.modules.t5")
    model = t5.umt5_xxl(
        encoder_only=True, return_tokenizer=False, dtype=torch.bfloat16, device="cpu"
    )
    _save(torch, model.state_dict(), root / FILES[1])


def write_fusion(root: Path) -> None:
    torch = importlib.import_module("torch")
    safetensors = importlib.import_module("safetensors.torch")
    loading = importlib.import_module("ovi.utils.model_loading_utils")
    model, _, _ = loading.init_fusion_score_model_ovi(rank="cpu", meta_init=False)
    state = {
        k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()
    }
    path = root / FILES[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    safetensors.save_file(state, str(path))


def write_wan_vae(root: Path) -> None:
    torch = importlib.import_module("torch")
    vae = importlib.import_module("ovi.modules.vae2_2")
    # Wan2_2_VAE's defaults, built without loading anything.
    model = vae.WanVAE_(
        dim=160,
        z_dim=48,
        dim_mult=[1, 2, 4, 4],
        num_res_blocks=2,
        attn_scales=[],
        temperal_downsample=[False, True, True],
        dropout=0.0,
    )
    _save(torch, model.state_dict(), root / FILES[2])


def write_mmaudio(root: Path) -> None:
    torch = importlib.import_module("torch")
    omegaconf = importlib.import_module("omegaconf")
    autoencoder = importlib.import_module("ovi.modules.mmaudio.ext.autoencoder.vae")
    _save(torch, autoencoder.get_my_vae("16k").state_dict(), root / FILES[3])
    bigvgan = importlib.import_module("ovi.modules.mmaudio.ext.bigvgan.bigvgan")
    models = importlib.import_module("ovi.modules.mmaudio.ext.bigvgan.models")
    config = omegaconf.OmegaConf.load(bigvgan._bigvgan_vocoder_path)
    vocoder = models.BigVGANVocoder(config)
    _save(torch, {"generator": vocoder.state_dict()}, root / FILES[4])


def _save(torch: object, state: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    torch.save(state, partial)  # type: ignore[attr-defined]
    partial.replace(path)


if __name__ == "__main__":
    main()
