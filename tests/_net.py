"""Ports for tests that start a server in another process."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port free now; another process may take it before it is bound."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
