"""The engine's options: flags, variables, and what the server hands the engine."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from wavespeed_mock.mock_server.cli import build_parser
from wavespeed_mock.mock_server.core.engine import (
    EngineError,
    engine_option_values,
)
from wavespeed_mock.mock_server.settings import Settings
from wavespeed_mock.real_engine import FACTORY_ENV, OviEngine, OviOptions

from .conftest import FAKE_FACTORY


def test_serve_help_lists_the_ovi_flags(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["serve", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--ovi-checkout",
        "--ovi-checkpoints",
        "--ovi-variant",
        "--ovi-device",
        "--ovi-cpu-offload",
        "--ovi-fp8",
    ):
        assert flag in out, flag
    assert "path of a character-ai/Ovi checkout" in out


def test_a_variable_sets_an_option():
    values = engine_option_values(
        OviEngine, {}, environ={"WAVESPEED_MOCK_OVI_DEVICE": "1"}
    )
    assert values["device"] == 1
    assert OviOptions.from_mapping(values) == OviOptions(device=1)


def test_variables_of_every_type():
    values = engine_option_values(
        OviEngine,
        {},
        environ={
            "WAVESPEED_MOCK_OVI_CHECKOUT": "/opt/Ovi",
            "WAVESPEED_MOCK_OVI_VARIANT": "960x960_5s",
            "WAVESPEED_MOCK_OVI_CPU_OFFLOAD": "yes",
        },
    )
    assert OviOptions.from_mapping(values) == OviOptions(
        checkout=Path("/opt/Ovi"), variant="960x960_5s", cpu_offload=True
    )


def test_the_options_default_as_the_dataclass_does():
    defaults = {option.name: option.default for option in OviEngine.options}
    assert OviOptions.from_mapping(defaults) == OviOptions()
    assert OviOptions() == OviOptions(
        checkout=None,
        checkpoints=None,
        variant="720x720_5s",
        device=0,
        cpu_offload=False,
        fp8=False,
    )


def test_paths_may_be_strings_and_checkpoints_default_to_the_checkout():
    options = OviOptions.from_mapping({"checkout": "/opt/Ovi", "checkpoints": None})
    assert options.checkout == Path("/opt/Ovi")
    assert options.checkpoint_dir == Path("/opt/Ovi/ckpts")
    assert OviOptions(checkpoints=Path("/w")).checkpoint_dir == Path("/w")
    assert OviOptions().checkpoint_dir is None


def test_an_unknown_option_suggests_the_closest():
    with pytest.raises(
        EngineError, match="no option 'chekout'; did you mean 'checkout'"
    ):
        OviOptions.from_mapping({"chekout": "/opt/Ovi"})


def test_from_settings_builds_the_engine_with_its_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(FACTORY_ENV, FAKE_FACTORY)
    monkeypatch.delenv("WAVESPEED_FAKE_OVI_RECORD", raising=False)
    checkout = tmp_path / "Ovi"
    checkout.mkdir()
    values = engine_option_values(
        OviEngine, {"checkout": checkout, "variant": "960x960_5s"}, environ={}
    )
    engine = OviEngine.from_settings(Settings(render_threads=16), values)
    with engine:
        assert engine.ovi_options.checkout == checkout.resolve()
        assert engine.ovi_options.checkpoint_dir == checkout.resolve() / "ckpts"
        assert engine.variant.name == "960x960_5s"
        assert engine.encode_threads == 16  # never fewer than the server's


def test_the_python_example_in_the_docs_runs():
    doc = Path(__file__).parents[2] / "docs" / "real-engine.md"
    (block,) = re.findall(r"```python\n(.*?)```", doc.read_text("utf-8"), re.S)
    namespace: dict[str, Any] = {}
    exec(block, namespace)
    settings = namespace["settings"]
    values = engine_option_values(OviEngine, settings.engine_options, environ={})
    assert OviOptions.from_mapping(values) == OviOptions(
        checkout=Path("~/Ovi").expanduser(), fp8=True
    )
