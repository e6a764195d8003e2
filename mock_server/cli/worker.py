"""``wavespeed-mock worker``: the renders and webhooks of the servers on one database.

A worker answers no HTTP. It builds the same core as ``serve`` from the same
settings (the engine and its options, the data folder, the object store of
``--outputs``) and takes the work that API servers started with
``serve --no-render`` store free: when told of freed work (``NOTIFY``), and
every ``WORK_POLL_S`` in any case, it takes, under a lease
(``core/leases.py``), the tasks whose lease has ended (handed off at submit,
or left by a process that died), renders them, stores their outcome and sends
their webhooks, renewing its leases as it goes. Any number of workers on any
number of machines take each task once (``FOR UPDATE SKIP LOCKED``); a worker
killed mid-job leaves the job to another when its lease ends (``--lease``).

    wavespeed-mock serve --database URL --no-render                # the API
    wavespeed-mock worker --database URL --engine ovi --outputs s3://b/p  # GPU hosts
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import TYPE_CHECKING

from ..settings import Settings, SettingsError

if TYPE_CHECKING:
    from ..core.service import MockService

__all__ = ["WORK_POLL_S", "add_worker_parser", "run_worker"]

WORK_POLL_S = 0.25
"""How often a worker looks for work (and renews its leases)."""


def add_worker_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    from .serve import add_engine_options, add_setting_flags

    worker = subparsers.add_parser(
        "worker",
        help="render and notify for the servers on a database (serve --no-render)",
        description="Take the renders and webhooks of the tasks stored in the "
        "database by `serve --no-render` servers (or left by a process that "
        "died). Takes serve's flags; the HTTP ones are not used.",
    )
    add_setting_flags(worker)
    add_engine_options(worker)


def run_worker(args: argparse.Namespace) -> int:
    from .serve import engine_options, settings_from_args

    settings = Settings.from_env(**settings_from_args(args))
    settings = settings.replace(engine_options=engine_options(args, settings))
    if not settings.database:
        raise SettingsError(
            "a worker takes its work from the shared state: add --database "
            "postgresql://... (docs/scale-out.md)"
        )
    if settings.no_render:
        raise SettingsError("a worker renders: drop --no-render")
    from ..assembly import build_server

    server = build_server(settings)
    return asyncio.run(_work(server.service))


async def _work(service: MockService) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, service.begin_shutdown)
    assert service.leases is not None  # a shared store: checked above
    service.leases.role = "worker"
    service.leases.every_s = WORK_POLL_S
    # As many tasks as the engine renders at once (one per GPU for Ovi with
    # --ovi-devices): the rest stay free for other workers.
    service.leases.slots = int(service.engine.max_concurrency)
    service.start(loop)
    settings = service.settings
    print(
        f"wavespeed-mock worker taking work from the database (engine "
        f"{service.engine.name}, profile {settings.profile}, data in "
        f"{settings.data_dir}"
        + (f", files in {settings.outputs}" if settings.outputs else "")
        + ")",
        file=sys.stderr,
        flush=True,
    )
    try:
        await service.until_shutdown()
    finally:
        await service.aclose()  # its leases ended: other workers take its work
    return 0
