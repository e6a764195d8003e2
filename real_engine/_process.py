"""The parent's handle on one worker process: start it, hand it calls, restart it."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from ._request import OviCall
from ._worker import Done, Failed, LoadFailed, Ready, Started, WorkerConfig, worker_main
from .errors import OviWorkerError

__all__ = ["NotTaken", "WorkerProcess"]

log = logging.getLogger("wavespeed_mock.real_engine")


@dataclass(frozen=True)
class NotTaken:
    """The worker was gone before it took a call: the call never reached the GPU,
    so it may be handed to a new worker."""

    failure: Failed
    """What to report if it is not handed over again."""


class WorkerProcess:
    """One spawned worker holding one model on one GPU; one call at a time."""

    def __init__(
        self,
        config: WorkerConfig,
        *,
        load_timeout_s: float = 1800.0,
        render_timeout_s: float = 3600.0,
    ) -> None:
        self.config = config
        self.load_timeout_s = load_timeout_s
        self.render_timeout_s = render_timeout_s
        self.load_s = 0.0
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        # Guards _process against close(): a worker spawned after close() began
        # would otherwise load a model nobody stops.
        self._state_lock = threading.Lock()
        self._closed = False

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Spawn the worker and wait until its model is loaded.

        Every wait is bounded by ``load_timeout_s``; :meth:`close` from another
        thread ends it at once.

        Raises:
            OviWorkerError: the worker could not load the model, died or timed
                out, or the handle was closed.
        """
        # spawn, not fork: forking a server that runs threads can deadlock, and
        # CUDA cannot be initialised again in a forked child.
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=True)
        process = context.Process(
            target=worker_main,
            args=(child, self.config),
            name=f"wavespeed-ovi-worker-{self.config.gpu}",
            daemon=True,
        )
        with self._state_lock:
            if self._closed:
                parent.close()
                child.close()
                raise OviWorkerError("The Ovi worker was not started: it is closed")
            process.start()
            self._process, self._conn = process, parent
        child.close()  # so that a dead worker reads as EOF here
        deadline = time.monotonic() + self.load_timeout_s
        message = self._receive(deadline)
        if isinstance(message, Ready):
            self.load_s = message.load_s
            log.info("Ovi worker %s ready after %.1f s", message.pid, message.load_s)
            return
        # Read before stop(): a closed process object no longer has an exit code.
        exit_code = _exit_code(process)
        self.stop()
        if isinstance(message, LoadFailed):
            raise OviWorkerError(f"The Ovi worker could not start: {message.message}")
        if message is None:
            raise OviWorkerError(
                "The Ovi worker did not load the model within "
                f"{self.load_timeout_s:.0f} s"
            )
        raise OviWorkerError(
            f"The Ovi worker exited (exit code {exit_code}{_signal_note(exit_code)}) "
            "while loading the model; its output is in the server log. A killed "
            "worker is often the host out of memory: loading reads the checkpoints "
            "into RAM first (tens of GB)"
        )

    def restart(self) -> None:
        self.stop()
        self.start()

    def run(
        self, call: OviCall, on_start: Callable[[], None] | None = None
    ) -> Done | Failed | NotTaken:
        """Render ``call`` in the worker.

        A worker that dies while rendering gives a 5000 failure; one found dead
        before it said it started on the call gives :class:`NotTaken`.
        """
        if self._conn is None or not self.alive:
            return NotTaken(self._died(call, "before the render began"))
        try:
            with self._send_lock:
                self._conn.send(call)
        except (OSError, ValueError):
            return NotTaken(self._died(call, "before the render began"))
        started = False
        deadline = time.monotonic() + self.render_timeout_s
        while True:
            message = self._receive(deadline)
            if message is None:
                self.kill()
                return Failed(
                    call.prediction_id,
                    f"the Ovi worker did not finish the clip within "
                    f"{self.render_timeout_s:.0f} s; it was stopped and is restarted "
                    "for the next prediction",
                    5004,
                )
            if isinstance(message, Started):
                started = True
                if on_start is not None:
                    try:
                        on_start()
                    except Exception:
                        log.exception(
                            "on_start callback of %s failed", call.prediction_id
                        )
                continue
            if isinstance(message, (Done, Failed)):
                return message
            if not started:
                return NotTaken(self._died(call, "before the render began"))
            return self._died(call, "while rendering")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the worker to exit; terminate it if it does not."""
        process, conn = self._process, self._conn
        if process is None:
            return
        if conn is not None and process.is_alive():
            try:
                with self._send_lock:
                    conn.send(None)
            except (OSError, ValueError):
                pass
        process.join(timeout_s)
        if process.is_alive():
            process.terminate()
            process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)
        if conn is not None:
            conn.close()
        with self._state_lock:
            if self._process is process:
                self._process, self._conn = None, None
        if not process.is_alive():  # close() raises on a process that survived kill()
            process.close()

    def kill(self) -> None:
        """Kill the worker outright (it is restarted for the next call)."""
        with self._state_lock:
            process = self._process
            if process is not None and process.is_alive():
                process.kill()
        if process is not None:
            # Reaped here, so that ``alive`` is False once this returns.
            with contextlib.suppress(ValueError, AssertionError):
                process.join(5)

    def close(self) -> None:
        """Kill the worker, and refuse to start another (the engine is closing)."""
        with self._state_lock:
            self._closed = True
        self.kill()

    def _receive(self, deadline: float | None) -> object | None:
        """The next message; ``EOFError``-like ends and timeouts give ``None``."""
        assert self._conn is not None
        assert self._process is not None
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready = wait([self._conn, self._process.sentinel], timeout)
        if not ready:
            return None
        if self._conn in ready or self._conn.poll():
            try:
                message: object = self._conn.recv()
                return message
            except (EOFError, OSError):
                return _Gone
        return _Gone

    def _died(self, call: OviCall, when: str) -> Failed:
        code = None if self._process is None else _exit_code(self._process)
        return Failed(
            call.prediction_id,
            f"the Ovi worker process died {when} (exit code {code}"
            f"{_signal_note(code)}); its output is in the server log. The worker is "
            "restarted for the next prediction",
            5000,
        )


def _exit_code(process: BaseProcess) -> int | None:
    """The exit code of a process that ended or is ending (None if it lives on)."""
    try:
        if process.exitcode is None:
            process.join(1)
        return process.exitcode
    except ValueError:  # the process object was closed already
        return None


def _signal_note(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f", killed by {signal.Signals(-code).name}"
        except ValueError:
            return ""
    return ""


class _GoneType:
    """The worker went away (EOF on the pipe or its process ended)."""


_Gone = _GoneType()
