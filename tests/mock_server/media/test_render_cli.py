"""The ``render`` subcommand, called directly (the CLI wires it in)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from wavespeed_mock.mock_server.cli.render import add_render_parser, run_render

from .conftest import make_picture, probe


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="wavespeed-mock")
    add_render_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_image_to_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "in.png"
    image.write_bytes(make_picture(96, 64))
    out = tmp_path / "out.mp4"
    args = parse("render", "--image", str(image), "--prompt", "Hi", "-o", str(out))
    assert args.seed == -1  # the API's default: a random seed
    assert run_render(args) == 0
    assert str(out) in capsys.readouterr().out
    info = probe(out)
    assert (info.width, info.height) == (896, 576)  # 3:2 by the area rule


def test_text_to_video_with_a_size_and_random_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t2v.mp4"
    args = parse(
        "render",
        "--prompt",
        "Hi",
        "--size",
        "64*32",
        "--seed",
        "-1",
        "--output",
        str(out),
    )
    assert run_render(args) == 0
    printed = capsys.readouterr().out
    assert "64x32" in printed
    assert "seed -1" not in printed
    assert (probe(out).width, probe(out).height) == (64, 32)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--image", "missing.png"], "No such file"),
        (["--size", "961*540"], "odd"),
        (["--size", "big"], "not WIDTHxHEIGHT"),
        (["--seed", "-5"], "out of range"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "out.mp4"
    args = parse("render", "--prompt", "Hi", "-o", str(out), *extra)
    assert run_render(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("wavespeed-mock render: error:")
    assert message in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_bad_image_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "in.png"
    image.write_text("not an image")
    args = parse(
        "render", "--image", str(image), "--prompt", "Hi", "-o", str(tmp_path / "o.mp4")
    )
    assert run_render(args) == 2
    assert "not a readable image" in capsys.readouterr().err
