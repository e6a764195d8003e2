"""The ``wavespeed-mock`` command: serve, control and check, as a person runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from wavespeed_mock.mock_server.cli.main import main

from ..._net import free_port
from .._support import serve_in_subprocess


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``wavespeed-mock serve`` in a subprocess, configured by flags and variables."""
    data = tmp_path_factory.mktemp("served")
    process, url = serve_in_subprocess(data)
    yield url
    process.terminate()
    process.wait(60)
    assert (data / "state.sqlite3").exists()


def test_serve_reads_flags_and_variables(served: str) -> None:
    state = httpx.get(served + "/_mock/state").json()["data"]
    assert state["profile"] == "instant"  # from WAVESPEED_MOCK_PROFILE
    refused = httpx.post(
        served + "/api/v3/character-ai/ovi/text-to-video",
        json={"prompt": "p"},
        headers={"Authorization": "Bearer other"},
    )
    assert refused.status_code == 401  # from --api-key


def test_control_commands(served: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["control", "--url", served, "profile", "polls:2"]) == 0
    assert json.loads(capsys.readouterr().out)["profile"] == "polls:2"
    assert main(["control", "--url", served, "scenario", '{"fail_code": 1402}']) == 0
    said = capsys.readouterr().out
    assert json.loads(said) == {"scenario": {"scope": "global", "fail_code": 1402}}
    assert len(said.splitlines()) == 1  # what was set, not every default
    assert main(["control", "--url", served, "clear-scenarios"]) == 0
    assert json.loads(capsys.readouterr().out)["scenarios"]["global"] is None
    assert main(["control", "--url", served, "profile", "nonsense"]) == 1
    capsys.readouterr()
    assert main(["control", "--url", served, "profile", "instant"]) == 0
    assert main(["control", "--url", "http://127.0.0.1:9", "state"]) == 2


def test_check_passes_against_the_mock(
    served: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "check",
            "--base-url",
            served,
            "--api-key",
            "cli-key",
            "--poll-interval",
            "0.2",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "violation" not in out.lower() or "0 violation" in out.lower()


def test_unknown_engine_fails_at_start_up_listing_the_known_ones(
    tmp_path: Path,
) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "wavespeed_mock.mock_server.cli.main",
            "serve",
            "--engine",
            "synthetc",
            "--data-dir",
            str(tmp_path),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "Unknown engine 'synthetc'" in out.stderr and "synthetic" in out.stderr


def test_bad_environment_variable_is_a_clear_error(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "wavespeed_mock.mock_server.cli.main",
            "serve",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "WAVESPEED_MOCK_PORT": "eighty"},
    )
    assert out.returncode == 2 and "WAVESPEED_MOCK_PORT='eighty'" in out.stderr


def test_check_passes_for_catalogue_models_of_each_kind(
    served: str, capsys: pytest.CaptureFixture[str]
) -> None:
    models = [
        "wavespeed-ai/z-image/turbo",
        "google/nano-banana-2/edit",
        "elevenlabs/multilingual-v2",
        "wavespeed-ai/any-llm",
    ]
    code = main(
        [
            "check",
            "--base-url",
            served,
            "--api-key",
            "cli-key",
            "--poll-interval",
            "0.2",
        ]
        + [arg for model in models for arg in ("--model", model)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    for model, kind in zip(models, ["image", "image", "audio", "text"], strict=True):
        assert f"{model}/output" in out and (f"{kind} output" in out), out


def test_catalogue_list_show_and_pull(
    served: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["catalogue", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) >= 40 and listed[0].startswith("character-ai/ovi/image-to-video")
    assert main(["catalogue", "show", "wavespeed-ai/z-image/turbo"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["x-mock"]["sources"] and "request_schema" in json.dumps(shown)
    assert main(["catalogue", "show", "wavespeed-ai/z-image/turb"]) == 2
    assert "wavespeed-ai/z-image/turbo" in capsys.readouterr().err
    # pull, with the mock itself as the upstream; the file serves as it is
    saved = tmp_path / "live.json"
    assert (
        main(
            [
                "catalogue",
                "pull",
                "--api-key",
                "cli-key",
                "--base-url",
                served,
                "-o",
                str(saved),
            ]
        )
        == 0
    )
    assert "Saved" in capsys.readouterr().out
    document = json.loads(saved.read_text())
    assert document["code"] == 200 and len(document["data"]) >= 40
    assert main(["catalogue", "list", "--catalogue", str(saved)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(listed)
