"""``wavespeed-mock render``: one synthetic clip to a file, no server needed."""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from typing import Any

from ...contracts import seed_rule

__all__ = ["add_render_parser", "run_render"]


def add_render_parser(subparsers: Any) -> None:
    """Add the ``render`` subcommand to an argparse ``subparsers`` object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "render",
        help="render one synthetic clip to an MP4 file",
        description=(
            "Render a deterministic synthetic 5 s, 24 fps MP4 with audio, as the "
            "mock server would: from an image (image-to-video) or, without "
            "--image, from the prompt alone (text-to-video)."
        ),
    )
    parser.add_argument(
        "--image",
        type=Path,
        default=None,
        metavar="PATH",
        help="input image (PNG, JPEG, WebP, GIF, BMP or TIFF); leave out for text-to-video",
    )
    parser.add_argument(
        "--prompt",
        required=True,
        help="the prompt; <S>...<E> is speech, <AUDCAP>...<ENDAUDCAP> background",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=seed_rule().random,
        help="the seed (default -1, as the API: a random one, printed; give one to repeat a clip)",
    )
    parser.add_argument(
        "--size",
        default=None,
        metavar="WxH",
        help="output size, e.g. 960*540 or 540x960 (default: from the image, "
        "or 960*540 without one)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="PATH",
        help="where to write the MP4 (its folder must exist)",
    )
    parser.set_defaults(handler=run_render)


def run_render(args: argparse.Namespace) -> int:
    """Render the clip ``args`` describe; 0 on success, 2 with a message otherwise."""
    from ..media import MediaError, parse_size, render_clip

    try:
        rule = seed_rule()
        seed = rule.resolve(int(args.seed), secrets.SystemRandom().randint)
        if not rule.minimum <= seed <= rule.maximum:
            raise ValueError(
                f"--seed {seed} is out of range; expected {rule.random} (random) "
                f"or {rule.minimum} to {rule.maximum}."
            )
        size = parse_size(args.size) if args.size else None
        image = args.image.read_bytes() if args.image is not None else None
        output = Path(args.output)
        if not output.parent.is_dir():
            # A typo in -o must not leave new folders behind.
            raise ValueError(
                f"-o {str(output)!r}: the folder {str(output.parent)!r} does not "
                "exist; create it first or pick another path"
            )
        info = render_clip(
            image=image, prompt=args.prompt, seed=seed, size=size, path=output
        )
    except (MediaError, ValueError, OSError) as exc:
        message = " ".join(str(exc).split())
        print(f"wavespeed-mock render: error: {message}", file=sys.stderr)
        return 2
    print(
        f"Wrote {output} ({info.width}x{info.height}, {info.frames} frames at "
        f"{info.fps} fps, {info.duration_s:.2f} s, seed {seed})"
    )
    return 0
