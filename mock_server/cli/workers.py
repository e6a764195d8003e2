"""``serve --workers N``: N server processes answering on one port, one state.

The parent binds the port once (``serve``), then starts N workers; each is a
whole mock server (``create_app`` and ``http.live.uvicorn_server``) built from
the same ``Settings`` in its own process. On Linux each worker listens on a
socket of its own on the port (``SO_REUSEPORT``), and the kernel spreads new
connections evenly over them; the parent holds the port bound, not listening.
Elsewhere the workers accept on the parent's listening socket, inherited: on
one socket a worker woken first accepts a whole burst (measured on Linux: 15
of 16 connections opened at once went to one of two workers, 1.04x one
worker's polls/s), hence the ports of their own. What they share is the state in the
PostgreSQL database (``--database``): predictions, charges, the clock, the
webhook log, and the renders' and webhooks' leases, so a task submitted through
one worker is polled, billed and notified through any other, and a worker that
dies leaves its work to the others (``core/leases.py``). The parent only
supervises: a worker that exits while the server runs is replaced; SIGINT or
SIGTERM stops every worker gracefully (their leases ended), then the parent.

Why not uvicorn's own ``--workers`` (``uvicorn.supervisors.Multiprocess``): it
runs a plain ``uvicorn.Server`` from a pickled ``Config`` in each child, while a
worker here is the mock's own server (its protocol with the header timeout, a
stop that ends sync-mode waits, ``FrozenHeap``), built from ``Settings`` in the
child. The approach is uvicorn's: one socket bound by the parent and inherited
through ``multiprocessing``'s spawn context, a replacement for a dead worker.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from ..settings import Settings, SettingsError

__all__ = ["BALANCED_PORTS", "WorkerPool", "check_workers"]

log = logging.getLogger("wavespeed_mock.server")

BALANCED_PORTS = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
"""Whether the kernel balances connections over sockets sharing a port (Linux)."""

PARENT_CHECK_S = 0.5
"""How often a worker checks that its supervisor still lives."""

STOP_GRACE_S = 15.0
"""How long a stopping worker may take (its graceful stop, its leases ended)
before it is killed."""


def check_workers(settings: Settings) -> None:
    """Refuse ``--workers`` above 1 where the processes could not share a state."""
    if settings.workers == 1:
        return
    if not settings.database:
        raise SettingsError(
            f"--workers {settings.workers} needs one state for every process: add "
            "--database postgresql://... (docs/scale-out.md); the embedded SQLite "
            "store belongs to one process"
        )
    if settings.record is not None or settings.replay is not None:
        raise SettingsError(
            "--record and --replay run in one process (the cassette is a file of "
            "its own): drop --workers"
        )


@dataclass
class _Worker:
    process: BaseProcess
    ready: Connection  # the parent's end: the worker sends its Settings once serving
    started: bool = False
    heard: bool = False  # the ready pipe answered (its Settings, or its end)


class WorkerPool:
    """N workers on ``sock``; :meth:`run` blocks until a stop signal.

    ``on_ready`` is called once, with the first worker's settings as it built
    them (the profile resolved), when every worker serves: ``serve`` prints its
    banner then.
    """

    def __init__(
        self,
        settings: Settings,
        sock: socket.socket,
        *,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        self.settings = settings
        self.sock = sock
        self._ssl = (ssl_certfile, ssl_keyfile)
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._stopping = threading.Event()

    def run(self, on_ready: Callable[[Settings], None]) -> int:
        previous = {
            sig: signal.signal(sig, lambda *_: self._stopping.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            return self._supervise(on_ready)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _supervise(self, on_ready: Callable[[Settings], None]) -> int:
        self._workers = [self._start() for _ in range(self.settings.workers)]
        announced = False
        while not self._stopping.is_set():
            waitables: list[Any] = [w.process.sentinel for w in self._workers]
            waitables += [w.ready for w in self._workers if not w.heard]
            multiprocessing.connection.wait(waitables, timeout=0.5)
            for index, worker in enumerate(self._workers):
                if not worker.heard and worker.ready.poll():
                    built = self._receive(worker)
                    if built is not None and not announced and self._all_started():
                        announced = True
                        on_ready(built)
                if worker.process.is_alive() or self._stopping.is_set():
                    continue
                code = worker.process.exitcode
                if not worker.started:
                    # It never served: a start-up error (printed by the worker),
                    # which a replacement would meet again.
                    print(
                        f"wavespeed-mock: a worker exited with code {code} before "
                        "serving; stopping",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
                print(
                    f"wavespeed-mock: worker {worker.process.pid} exited with code "
                    f"{code}; starting another",
                    file=sys.stderr,
                    flush=True,
                )
                worker.ready.close()
                self._workers[index] = self._start()
        return 0

    def _all_started(self) -> bool:
        return all(w.started for w in self._workers)

    def _receive(self, worker: _Worker) -> Settings | None:
        worker.heard = True
        try:
            built: Settings = worker.ready.recv()
        except EOFError:  # the worker ended before serving; its exit tells why
            return None
        worker.started = True
        return built

    def _start(self) -> _Worker:
        ours, theirs = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_serve_worker,
            args=(self.settings, self.sock, *self._ssl, theirs),
            name="wavespeed-mock-worker",
            daemon=False,
        )
        process.start()
        theirs.close()
        return _Worker(process, ours)

    def _stop_all(self) -> None:
        for worker in self._workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
            worker.ready.close()


def _serve_worker(
    settings: Settings,
    sock: socket.socket,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    ready: Connection,
) -> None:
    """One worker: the whole server on the inherited socket (a spawned process)."""
    from ..http.app import create_app
    from ..http.live import uvicorn_server
    from .memory import FrozenHeap
    from .serve import _bind, print_access_log

    if BALANCED_PORTS:  # the parent's socket holds the port; this one listens
        sock = _bind(settings.host, settings.port, reuse_port=True)
    app = create_app(settings)
    built: Settings = app.state.server.settings
    if built.access_log:
        print_access_log()
    FrozenHeap().start()
    server = uvicorn_server(app, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)

    parent = os.getppid()

    def report() -> None:
        while not (server.started or server.should_exit):
            time.sleep(0.02)
        if server.started:
            ready.send(built)
        ready.close()

    def outlive_no_parent() -> None:
        # A supervisor killed with SIGKILL cannot stop its workers: each stops
        # by itself (gracefully: its leases ended) once its parent is gone, so
        # that no orphan keeps answering on the port beside a new server.
        while not server.should_exit:
            if os.getppid() != parent:
                server.should_exit = True
                return
            time.sleep(PARENT_CHECK_S)

    threading.Thread(target=report, name="worker-ready", daemon=True).start()
    threading.Thread(
        target=outlive_no_parent, name="worker-parent", daemon=True
    ).start()
    server.run(sockets=[sock])
