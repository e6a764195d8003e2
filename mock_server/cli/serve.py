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
from ..settings import ENV_PREFIX, Settings, SettingsError, flag_of, setting_fields
from .memory import FrozenHeap
from .workers import BALANCED_PORTS, check_workers

__all__ = [
    "RETENTION_DESTS",
    "add_engine_options",
    "add_serve_parser",
    "add_setting_flags",
    "engine_options",
    "run_serve",
    "settings_from_args",
]

log = logging.getLogger("wavespeed_mock.server")

# argparse destinations of engine options: "engine_option:<engine>:<option>".
_OPTION_DEST = "engine_option:"


_GROUPS = {
    "server": None,
    "limits": "limits",
    "security": "security (README: Security)",
    "retention": "retention (0 keeps everything by that rule; docs/retention.md)",
    "record": "record and replay (docs/record-replay.md)",
}
RETENTION_DESTS = tuple(
    f.name for f in setting_fields() if f.metadata["group"] == "retention"
)


def _shown(f: dataclasses.Field[Any]) -> str:
    """A field's default as a flag's help shows it."""
    if f.metadata.get("shown_default"):
        return str(f.metadata["shown_default"])
    factory: Any = f.default_factory  # MISSING where the field has a plain default
    default: Any = f.default if factory is dataclasses.MISSING else factory()
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, float):
        return f"{default:g}"
    return "none" if default in (None, ()) else str(default)


def add_setting_flags(
    parser: argparse.ArgumentParser, names: tuple[str, ...] | None = None
) -> None:
    """A flag for each :class:`Settings` field (or those in ``names``), made from
    the field: its type, its help and its default are stated there once."""
    groups: dict[str, argparse._ActionsContainer] = {}
    for f in setting_fields():
        if names is not None and f.name not in names:
            continue
        meta = f.metadata
        title = _GROUPS[meta["group"]]
        if title is None:
            target: argparse._ActionsContainer = parser
        else:
            target = groups.get(title) or groups.setdefault(
                title, parser.add_argument_group(title)
            )
        kind = str(f.type)
        variable = ENV_PREFIX + f.name.upper()
        help = f"{meta['help']} (default {_shown(f)}; {variable})"
        options: dict[str, Any] = {"dest": f.name, "help": help}
        if kind.startswith("bool"):
            options.update(action="store_true", default=None)
        elif kind.startswith("tuple"):
            options.update(action="append", metavar=meta["metavar"] or "VALUE")
        else:
            options["type"] = _TYPES.get(kind.split(" ")[0], str)
            if meta["choices"]:
                options["choices"] = meta["choices"]
            if meta["metavar"]:
                options["metavar"] = meta["metavar"]
        target.add_argument(flag_of(f), **options)


_TYPES: dict[str, Any] = {"int": int, "float": float, "Path": Path, "str": str}


def settings_from_args(
    args: argparse.Namespace, names: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The flags given, by field name (repeated flags as tuples); None where unset."""
    values: dict[str, Any] = {}
    for f in setting_fields():
        if names is not None and f.name not in names:
            continue
        value = getattr(args, f.name, None)
        values[f.name] = tuple(value) if isinstance(value, list) else value
    return values


def add_serve_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the mock API server",
        description="Run the mock WaveSpeedAI API. Every flag also reads the "
        "WAVESPEED_MOCK_<NAME> environment variable its help names (flags win).",
    )
    add_setting_flags(serve)
    add_engine_options(serve)


def add_engine_options(serve: argparse.ArgumentParser) -> None:
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

    keys = settings_from_args(args)
    settings = Settings.from_env(**keys)
    if settings.proxy_port is not None:
        # Clients keep https://api.wavespeed.ai: the tunnel needs the mock on
        # HTTPS, and every URL it hands out must lead back through the proxy.
        settings = settings.replace(
            tls=True, public_url=settings.public_url or "https://api.wavespeed.ai"
        )
    options = engine_options(args, settings)
    check_workers(settings)
    # Bound before anything else, so that the banner names the real port (with
    # --port 0) and is printed only once the address is ours.
    spread = settings.workers > 1 and BALANCED_PORTS
    sock = _bind(settings.host, settings.port, reuse_port=spread, listen=not spread)
    settings = settings.replace(port=sock.getsockname()[1], engine_options=options)
    app = None
    if settings.workers == 1:
        app = create_app(settings)
        settings = app.state.server.settings  # as built: the profile resolved
        if settings.access_log:
            print_access_log()
    tls = None
    if settings.tls:
        from .tls import prepare_tls, trust_lines

        tls = prepare_tls(settings)
    ssl = {
        "ssl_certfile": str(tls.cert) if tls else None,
        "ssl_keyfile": str(tls.key) if tls else None,
    }
    proxy = None
    if settings.proxy_port is not None:
        from .proxy import ConnectProxy

        target = (
            "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host,
            settings.port,
        )
        proxy = ConnectProxy(_bind(settings.host, settings.proxy_port), target).start()

    def announce(settings: Settings) -> None:
        lines = banner(settings) + (trust_lines(tls) if tls is not None else [])
        if proxy is not None:
            host = (
                settings.host if settings.host not in ("0.0.0.0", "") else "127.0.0.1"
            )
            lines.append(
                f"  proxy: HTTPS_PROXY=http://{host}:{proxy.sock.getsockname()[1]} "
                f"(CONNECT api.wavespeed.ai:443 only)"
            )
        print("\n".join(lines), file=sys.stderr, flush=True)

    try:
        if app is None:
            from .workers import WorkerPool

            return WorkerPool(settings, sock, **ssl).run(announce)
        FrozenHeap().start()  # only this process: never a test process that embeds the server
        announce(settings)
        uvicorn_server(app, **ssl).run(sockets=[sock])
    finally:
        if proxy is not None:
            proxy.stop()
    return 0


def engine_options(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    """The ``--<engine>-<option>`` flags given, for the engine ``settings`` names."""
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
    return options


def banner(settings: Settings) -> list[str]:
    """What ``serve`` says once it listens: where, and what it runs."""
    base = settings.base_url
    lines = [
        f"wavespeed-mock serving the WaveSpeedAI API at {base} "
        f"(engine {settings.engine}, profile {settings.profile}, data in {settings.data_dir})",
        f"  playground {base}/   API reference {base}/docs   control API {base}/_mock",
    ]
    if settings.no_render:
        lines.append(
            "  renders nothing here (--no-render): `wavespeed-mock worker` processes "
            "on the database take the renders and webhooks"
        )
    if settings.workers > 1:
        lines.append(
            f"  {settings.workers} worker processes on this port, one state in the "
            "database (docs/scale-out.md)"
        )
    if settings.record is not None:
        cap = (
            f"at most {settings.record_max_submits} submits (--record-max-submits)"
            if settings.record_max_submits is not None
            else "no spend cap: every submit is billed upstream (--record-max-submits N)"
        )
        lines.append(f"  recording {settings.upstream} into {settings.record}; {cap}")
    if settings.replay is not None:
        lines.append(
            f"  replaying {settings.replay} at {settings.replay_speed:g}x by "
            f"{settings.replay_by}; a submit that matches nothing: {settings.replay_miss}"
        )
    return lines


def _bind(
    host: str, port: int, *, reuse_port: bool = False, listen: bool = True
) -> socket.socket:
    """A listening socket on ``host:port``; a clear error if the address is taken.

    ``reuse_port``: ``SO_REUSEPORT``, so that each ``--workers`` process listens
    on a socket of its own on the port and the kernel spreads new connections
    evenly over them; the parent then holds the port bound, not listening
    (``listen=False``), so that no connection waits on a socket nobody accepts.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only
    # when the socket says TCP. Without it a response's body waits for the
    # client's delayed ACK of its headers: 44 ms a request instead of 0.3 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        if listen:
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


def print_access_log() -> None:
    """Access lines on standard error, whatever ``-v`` says about other logs."""
    from ..http.access_log import ACCESS_LOGGER

    access = logging.getLogger(ACCESS_LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
