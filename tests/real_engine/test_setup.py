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
from wavespeed_mock.real_engine._setup import CHECKOUT_FILES

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
        for name in required_checkpoints("720x720_5s", fp8=fp8):
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
    assert "pip install 'wavespeed-mock[ovi]'" in text
    assert "flash-attn" in text
    assert "git clone https://github.com/character-ai/Ovi" in text
    assert "Ovi/model.safetensors" in text
    assert "download_weights.py" in text
    assert "no CUDA device" not in text  # not probed without torch


def test_missing_checkpoints_are_listed_one_by_one(tmp_path: Path):
    checkout = make_checkout(tmp_path, checkpoints=False)
    (found,) = problems(checkout=checkout)
    assert found.startswith("checkpoint files missing (6):")
    for name in required_checkpoints("720x720_5s"):
        assert str(checkout / "ckpts" / name) in found
    assert f"--output-dir {checkout / 'ckpts'} --models 720x720_5s" in found


def test_fp8_needs_its_own_file_and_the_720_variant(tmp_path: Path):
    checkout = make_checkout(tmp_path)
    (found,) = problems(checkout=checkout, fp8=True)
    assert "model_fp8_e4m3fn.safetensors" in found
    assert "wget -O" in found
    (found,) = problems(checkout=checkout, fp8=True, variant="960x960_5s")
    assert "only for the 720x720_5s variant" in found


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
    assert "pip install 'wavespeed-mock[ovi]'" in message
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
