"""``wavespeed-mock serve``: run the mock API server in the foreground."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import socket
import sys
from pathlib import Path
from typing import Any

from ..core.engine import available_engines, load_engine_class
from ..settings import Settings, SettingsError
from .memory import FrozenHeap

__all__ = ["RETENTION_DESTS", "add_retention_options", "add_serve_parser", "run_serve"]

log = logging.getLogger("wavespeed_mock.server")

# argparse destinations of engine options: "engine_option:<engine>:<option>".
_OPTION_DEST = "engine_option:"


def _default(name: str) -> Any:
    """The default of a ``Settings`` field, for a flag's help (stated once, there)."""
    return next(f.default for f in dataclasses.fields(Settings) if f.name == name)


def add_serve_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the mock API server",
        description="Run the mock WaveSpeedAI API. Every flag also reads a "
        "WAVESPEED_MOCK_<NAME> environment variable (flags win).",
    )
    serve.add_argument("--host", help=f"address to bind (default {_default('host')})")
    serve.add_argument("--port", type=int, help=f"port (default {_default('port')})")
    serve.add_argument(
        "--data-dir",
        type=Path,
        help="state, clips and uploads (default ./.wavespeed-mock)",
    )
    serve.add_argument(
        "--public-url",
        help="base of the URLs handed out (behind a proxy or in a container)",
    )
    serve.add_argument(
        "--profile", help="timing: instant, fast (default), realistic, polls:N, engine"
    )
    serve.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accept only this key (repeatable); default accepts any non-empty key",
    )
    serve.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="reject unknown body fields and data: URIs",
    )
    serve.add_argument(
        "--engine", help="synthetic (default), ovi, or a registered third-party engine"
    )
    serve.add_argument(
        "--fetch-remote-images",
        action="store_true",
        default=None,
        help="fetch http(s) image URLs (bounded); off by default (placeholder frame)",
    )
    serve.add_argument(
        "--virtual-clock",
        action="store_true",
        default=None,
        help="start with a frozen clock that only POST /_mock/clock moves",
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        default=None,
        help="print one line per request: method, path, status, milliseconds",
    )
    serve.add_argument(
        "--sync-wait",
        type=float,
        dest="sync_wait_s",
        help=f"seconds a sync-mode submit waits before the 5004 answer (default {_default('sync_wait_s'):g})",
    )
    _add_security_options(serve)
    add_retention_options(serve)
    _add_record_replay_options(serve)
    serve.add_argument(
        "--header-timeout",
        type=float,
        dest="header_timeout_s",
        help=f"seconds a client may take to send request headers (default {_default('header_timeout_s'):g}; then 408)",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        dest="body_timeout_s",
        help=f"seconds a client may take to send a whole body (default {_default('body_timeout_s'):g}; then 408)",
    )
    _add_engine_options(serve)


def _add_security_options(serve: argparse.ArgumentParser) -> None:
    """Who may reach the server, and whom it may reach (README "Security")."""
    group = serve.add_argument_group("security")
    group.add_argument(
        "--allowed-host",
        action="append",
        dest="allowed_hosts",
        metavar="HOST",
        help="also answer requests for this Host header (repeatable); loopback "
        "names and addresses and the --public-url host are always served",
    )
    group.add_argument(
        "--control-token",
        metavar="TOKEN",
        help="the control API (/_mock) then needs 'Authorization: Bearer TOKEN'",
    )
    group.add_argument(
        "--fetch-allow",
        action="append",
        dest="fetch_allow",
        metavar="HOST",
        help="let --fetch-remote-images reach this internal host, address or "
        "network (repeatable); loopback, private, link-local, multicast and "
        "reserved addresses are refused otherwise",
    )
    group.add_argument(
        "--webhook-allow",
        action="append",
        dest="webhook_allow",
        metavar="HOST",
        help="deliver webhooks to this host, address or network too, or '*' for "
        "any (repeatable); loopback only by default, other deliveries are logged",
    )


RETENTION_DESTS = (
    "max_predictions",
    "max_age_s",
    "max_upload_age_s",
    "max_cache_bytes",
    "prune_interval_s",
)


def add_retention_options(parser: argparse.ArgumentParser) -> None:
    """The retention flags (``serve`` and ``prune`` share them); 0 keeps all."""
    group = parser.add_argument_group("retention (0 keeps everything by that rule)")
    group.add_argument(
        "--max-predictions",
        type=int,
        help=f"keep at most this many predictions, the newest (default {_default('max_predictions')})",
    )
    group.add_argument(
        "--max-age",
        type=float,
        dest="max_age_s",
        help=f"forget predictions older than this many seconds (default {_default('max_age_s'):g})",
    )
    group.add_argument(
        "--max-upload-age",
        type=float,
        dest="max_upload_age_s",
        help=f"delete uploads older than this many seconds (default {_default('max_upload_age_s'):g})",
    )
    group.add_argument(
        "--max-cache-bytes",
        type=int,
        help=f"bound of the render cache, least recently used first (default {_default('max_cache_bytes')} bytes)",
    )
    group.add_argument(
        "--prune-interval",
        type=float,
        dest="prune_interval_s",
        help=f"seconds between the server's retention passes (default {_default('prune_interval_s'):g})",
    )


def _add_record_replay_options(serve: argparse.ArgumentParser) -> None:
    """Record and replay (docs/record-replay.md)."""
    group = serve.add_argument_group("record and replay (docs/record-replay.md)")
    group.add_argument(
        "--record",
        type=Path,
        metavar="CASSETTE",
        help="proxy /api/v3 to --upstream and record into this cassette folder",
    )
    group.add_argument(
        "--upstream",
        metavar="URL",
        help="the API to record, e.g. https://api.wavespeed.ai",
    )
    group.add_argument(
        "--record-max-submits",
        type=int,
        metavar="N",
        help="spend cap: refuse (403) submits after N have been forwarded",
    )
    group.add_argument(
        "--record-max-output-bytes",
        type=int,
        metavar="BYTES",
        help=f"largest output file a recording stores (default {_default('record_max_output_bytes')} bytes)",
    )
    group.add_argument(
        "--replay",
        type=Path,
        metavar="CASSETTE",
        help="answer recorded tasks from this cassette folder",
    )
    group.add_argument(
        "--replay-speed",
        type=float,
        metavar="X",
        help=f"play recorded status sequences X times faster (default {_default('replay_speed'):g})",
    )
    group.add_argument(
        "--replay-by",
        choices=("time", "polls"),
        help="walk a recorded sequence by time (default) or by poll count",
    )
    group.add_argument(
        "--replay-miss",
        choices=("synthetic", "error"),
        help="a submit that matches no recording: synthetic engine (default) or "
        "a 404 naming the closest recorded request",
    )
    group.add_argument(
        "--replay-ignore",
        action="append",
        metavar="FIELD",
        help="leave this top-level body field out of matching (repeatable), e.g. seed",
    )


def _add_engine_options(serve: argparse.ArgumentParser) -> None:
    """Each registered engine's own options, as ``--<engine>-<option>`` flags."""
    for name in sorted(available_engines()):
        try:
            engine_class = load_engine_class(name)
        except Exception as exc:  # a broken third-party engine must not break serve
            log.warning(
                "engine %r cannot be loaded (%s); its options are left out", name, exc
            )
            continue
        if not engine_class.options:
            continue
        group = serve.add_argument_group(f"{name} engine")
        for option in engine_class.options:
            flag = f"--{name}-{option.name}".replace("_", "-")
            dest = f"{_OPTION_DEST}{name}:{option.name}"
            if option.type is bool:
                group.add_argument(
                    flag, dest=dest, action="store_true", default=None, help=option.help
                )
            else:
                group.add_argument(
                    flag,
                    dest=dest,
                    type=option.type,
                    metavar=option.name.upper(),
                    help=option.help,
                )


def run_serve(args: argparse.Namespace) -> int:
    from ..http.app import create_app
    from ..http.live import uvicorn_server

    keys = {
        name: getattr(args, name)
        for name in (
            "host",
            "port",
            "data_dir",
            "public_url",
            "profile",
            "strict",
            "engine",
            "fetch_remote_images",
            "virtual_clock",
            "sync_wait_s",
            *RETENTION_DESTS,
            "record",
            "upstream",
            "record_max_submits",
            "record_max_output_bytes",
            "replay",
            "replay_speed",
            "replay_by",
            "replay_miss",
            "access_log",
            "control_token",
            "header_timeout_s",
            "body_timeout_s",
        )
    }
    for repeated in (
        "api_keys",
        "allowed_hosts",
        "fetch_allow",
        "webhook_allow",
        "replay_ignore",
    ):
        if getattr(args, repeated):
            keys[repeated] = tuple(getattr(args, repeated))
    settings = Settings.from_env(**keys)
    options: dict[str, object] = {}
    for dest, value in vars(args).items():
        if not dest.startswith(_OPTION_DEST) or value is None:
            continue
        engine, _, option = dest[len(_OPTION_DEST) :].partition(":")
        if engine != settings.engine:
            flag = f"--{engine}-{option}".replace("_", "-")
            raise SettingsError(
                f"{flag} is an option of the {engine!r} engine, but the server runs "
                f"{settings.engine!r}; add --engine {engine}"
            )
        options[option] = value
    # Bound before anything else, so that the banner names the real port (with
    # --port 0) and is printed only once the address is ours.
    sock = _bind(settings.host, settings.port)
    settings = settings.replace(port=sock.getsockname()[1], engine_options=options)
    app = create_app(settings)
    settings = app.state.server.settings  # as built: the profile resolved
    if settings.access_log:
        _print_access_log()
    FrozenHeap().start()  # only this process: never a test process that embeds the server
    print(
        f"wavespeed-mock serving the WaveSpeedAI API at {settings.base_url} "
        f"(engine {settings.engine}, profile {settings.profile}, data in {settings.data_dir})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn_server(app).run(sockets=[sock])
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a clear error if the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only
    # when the socket says TCP. Without it a response's body waits for the
    # client's delayed ACK of its headers: 44 ms a request instead of 0.3 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening now: a client that connects before the app has started
        # waits in the backlog instead of being refused.
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise SettingsError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another "
            "--port (0 picks a free one) or stop what holds it"
        ) from None
    return sock


def _print_access_log() -> None:
    """Access lines on standard error, whatever ``-v`` says about other logs."""
    from ..http.access_log import ACCESS_LOGGER

    access = logging.getLogger(ACCESS_LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
