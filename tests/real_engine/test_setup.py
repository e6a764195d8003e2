"""Start-up: one clear message listing everything missing; load failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from wavespeed_mock.mock_server.core.engine import EngineError
from wavespeed_mock.real_engine import (
    FACTORY_ENV,
    OviEngine,
    OviOptions,
    OviSetupError,
    OviWorkerError,
    check_ovi_setup,
    required_checkpoints,
)
from wavespeed_mock.real_engine._setup import CHECKOUT_FILES, TOKENIZER_DIR

from .conftest import FAKE_FACTORY


def everything_installed(name: str) -> bool:
    return True


def one_gpu() -> tuple[int, str]:
    return 1, "CUDA 12.4"


def make_checkout(root: Path, *, checkpoints: bool = True, fp8: bool = False) -> Path:
    for name in CHECKOUT_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    if checkpoints:
        for name in [
            *required_checkpoints("720x720_5s", fp8=fp8),
            f"{TOKENIZER_DIR}/spiece.model",
        ]:
            (root / "ckpts" / name).parent.mkdir(parents=True, exist_ok=True)
            (root / "ckpts" / name).write_text("")
    return root


def problems(**kwargs: object) -> list[str]:
    kwargs.setdefault("find_module", everything_installed)
    kwargs.setdefault("cuda_probe", one_gpu)
    kwargs.setdefault("checkpoints", None)
    try:
        check_ovi_setup(**kwargs)  # type: ignore[arg-type]
    except OviSetupError as exc:
        found = exc
    else:
        return []
    assert str(found).count("\n  - ") == len(found.problems)
    return found.problems


def test_a_complete_setup_passes(tmp_path: Path):
    assert problems(checkout=make_checkout(tmp_path)) == []


def test_everything_missing_is_listed_at_once(tmp_path: Path):
    found = problems(
        checkout=None,
        checkpoints=tmp_path / "ckpts",
        find_module=lambda name: False,
    )
    text = "\n".join(found)
    assert "torch" in text
    assert "pip install '.[ovi]'" in text
    assert "flash-attn" in text
    # Ovi imports these whatever the options; the message names each to install.
    for package in ("optimum-quanto", "open-clip-torch", "pydub", "torchvision"):
        assert package in text, package
    assert "flash-attn==2.7.4.post1" in text
    assert "torch==2.6.0" in text
    # torch first, in its own command: flash-attn built beside an older torch
    # (one pip command for both) compiled against the wrong one.
    assert "pip install 'torch==2.6.0' wheel; then pip install 'flash-attn" in text
    # a host without a CUDA toolkit: the prebuilt wheel itself
    assert "releases/download/v2.7.4.post1/flash_attn-2.7.4.post1+cu12torch2.6" in text
    assert "git clone https://github.com/character-ai/Ovi" in text
    assert "Ovi/model.safetensors" in text
    assert "download_weights.py" in text
    assert "no CUDA device" not in text  # not probed without torch


def test_missing_checkpoints_are_listed_one_by_one(tmp_path: Path):
    checkout = make_checkout(tmp_path, checkpoints=False)
    (found,) = problems(checkout=checkout)
    assert found.startswith("checkpoint files missing (7):")
    for name in required_checkpoints("720x720_5s"):
        assert str(checkout / "ckpts" / name) in found
    # The umt5 tokenizer: its config and a vocabulary.
    assert f"{TOKENIZER_DIR}/tokenizer_config.json" in found
    assert f"{TOKENIZER_DIR}/tokenizer.json" in found
    assert f"--output-dir {checkout / 'ckpts'} --models 720x720_5s" in found


def test_fp8_needs_its_own_file_and_the_720_variant(tmp_path: Path):
    checkout = make_checkout(tmp_path)
    (found,) = problems(checkout=checkout, fp8=True)
    assert "model_fp8_e4m3fn.safetensors" in found
    assert "wget -O" in found
    (found,) = problems(checkout=checkout, fp8=True, variant="960x960_5s")
    assert "only for the 720x720_5s variant" in found


@pytest.mark.parametrize("vocabulary", ["spiece.model", "tokenizer.json"])
def test_either_tokenizer_vocabulary_will_do(tmp_path: Path, vocabulary: str):
    checkout = make_checkout(tmp_path)
    folder = checkout / "ckpts" / TOKENIZER_DIR
    (folder / "spiece.model").unlink()
    (folder / vocabulary).write_text("")
    assert problems(checkout=checkout) == []
    (folder / vocabulary).unlink()
    (found,) = problems(checkout=checkout)
    assert "checkpoint files missing (1)" in found
    assert "tokenizer.json" in found


def test_one_missing_module_is_named_with_its_package(tmp_path: Path):
    checkout = make_checkout(tmp_path)
    for module, package in [
        ("optimum.quanto", "optimum-quanto"),
        ("open_clip", "open-clip-torch"),
        ("pydub", "pydub"),
    ]:
        (found,) = problems(checkout=checkout, find_module=lambda n, m=module: n != m)
        assert f"not installed: {module}." in found
        assert f"pip install {package})" in found


def test_every_device_is_checked(tmp_path: Path):
    checkout = make_checkout(tmp_path)
    two = lambda: (2, "CUDA 12.4")  # noqa: E731
    assert problems(checkout=checkout, devices=[0, 1], cuda_probe=two) == []
    (found,) = problems(checkout=checkout, devices=[0, 2, 3], cuda_probe=two)
    assert "GPU 2, 3 was asked for" in found
    assert "2 CUDA device(s): 0..1" in found


def test_fp8_and_qint8_exclude_each_other(tmp_path: Path):
    # qint8 quantizes the bf16 checkpoint as it loads: no file of its own.
    assert problems(checkout=make_checkout(tmp_path / "bf16"), qint8=True) == []
    checkout = make_checkout(tmp_path / "fp8", fp8=True)
    (found,) = problems(checkout=checkout, qint8=True, fp8=True)
    assert "choose one" in found


def test_a_bad_device_list_fails_the_start():
    with pytest.raises(OviSetupError, match="names a device twice"):
        OviEngine(OviOptions(devices="0,0"), factory=FAKE_FACTORY)
    with pytest.raises(OviSetupError, match="not a comma-separated list"):
        OviEngine(OviOptions(devices="0,gpu1"), factory=FAKE_FACTORY)


def test_no_cuda_device_and_a_wrong_device_index(tmp_path: Path):
    checkout = make_checkout(tmp_path)
    (found,) = problems(checkout=checkout, cuda_probe=lambda: (0, "driver missing"))
    assert found == "no CUDA device is available (driver missing); Ovi needs a GPU"
    (found,) = problems(checkout=checkout, device=2)
    assert "GPU 2 was asked for" in found
    assert "1 CUDA device(s): 0..0" in found


def test_a_folder_that_is_not_a_checkout(tmp_path: Path):
    (found, _) = problems(checkout=tmp_path)
    assert "is not an Ovi checkout" in found
    assert "ovi/ovi_fusion_engine.py" in found
    (found, *_) = problems(checkout=tmp_path / "nope")
    assert "does not exist" in found


def test_an_unknown_variant_suggests_the_closest(tmp_path: Path):
    (found,) = problems(checkout=make_checkout(tmp_path), variant="720x720-5s")
    assert "unknown Ovi variant '720x720-5s'. Did you mean '720x720_5s'?" in found


def test_the_real_engine_fails_at_start_on_this_machine(
    monkeypatch: pytest.MonkeyPatch,
):
    # No torch, no checkout here: the default factory checks before spawning.
    monkeypatch.delenv(FACTORY_ENV, raising=False)
    try:
        import torch  # noqa: F401

        pytest.skip("torch is installed here; the message would differ")
    except ImportError:
        pass
    with pytest.raises(OviSetupError) as failed:
        OviEngine()
    message = str(failed.value)
    assert message.startswith("The Ovi engine cannot start;")
    assert "pip install '.[ovi]'" in message
    assert "no Ovi checkout given" in message
    assert isinstance(failed.value, EngineError)
    assert isinstance(failed.value, LookupError)


def test_a_model_that_fails_to_load_fails_the_start(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WAVESPEED_FAKE_OVI_LOAD", "fail")
    with pytest.raises(OviWorkerError, match="checkpoint could not be loaded"):
        OviEngine(factory=FAKE_FACTORY)


def test_a_factory_named_in_the_environment_is_used(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(FACTORY_ENV, "no_such_module_here:Engine")
    with pytest.raises(OviWorkerError, match="No module named 'no_such_module_here'"):
        OviEngine()


def test_a_stand_in_still_needs_a_known_variant():
    with pytest.raises(OviSetupError, match="unknown Ovi variant"):
        OviEngine(OviOptions(variant="4k"), factory=FAKE_FACTORY)
