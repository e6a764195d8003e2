"""Waiting until a server's renders have settled (a poll itself never waits)."""

from __future__ import annotations

import time

from ..mock_server.core.service import MockService

__all__ = ["wait_for_renders"]


def wait_for_renders(service: MockService, timeout: float) -> None:
    """Return once every render queued so far has finished or failed.

    Raises:
        TimeoutError: a render is still running after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not service.renders_settled():
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"renders still running after {timeout:g} s; "
                "pass a longer timeout to wait_for_renders()"
            )
        time.sleep(0.01)
