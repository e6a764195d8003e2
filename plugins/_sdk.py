"""The official SDK, wired to the mock: a client, and the module-level functions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["make_client", "sdk_pointed_at"]

FAST_POLL_S = 0.05


def make_client(base_url: str, api_key: str, *, cap_polls: bool = False) -> Any:
    """A ``wavespeed.Client`` (a subclass that only changes defaults) for the mock.

    ``run`` and ``run_no_throw`` poll every 0.05 s unless told otherwise (with
    ``cap_polls``, at most every 0.05 s, whatever they are told: the module-level
    functions always pass the SDK's 1 s), and retries wait 0.05 s, so tests do not
    sit through the SDK's 1 s intervals.
    """
    import wavespeed

    def poll_interval(kwargs: dict[str, Any]) -> None:
        if cap_polls:
            kwargs["poll_interval"] = min(
                kwargs.get("poll_interval", FAST_POLL_S), FAST_POLL_S
            )
        else:
            kwargs.setdefault("poll_interval", FAST_POLL_S)

    class MockClient(wavespeed.Client):  # type: ignore[misc]
        def run(self, model: str, input: dict[str, Any], **kwargs: Any) -> Any:
            poll_interval(kwargs)
            return super().run(model, input, **kwargs)

        def run_no_throw(self, model: str, input: dict[str, Any], **kwargs: Any) -> Any:
            poll_interval(kwargs)
            return super().run_no_throw(model, input, **kwargs)

    return MockClient(api_key=api_key, base_url=base_url, retry_interval=FAST_POLL_S)


@contextlib.contextmanager
def sdk_pointed_at(base_url: str, api_key: str) -> Iterator[Any]:
    """Point the SDK's module-level functions and new clients at a server, then undo.

    Inside the block ``wavespeed.run(...)``, ``run_no_throw``, ``get_result`` and
    ``upload`` use a client of ``base_url`` with ``api_key``, and a
    ``wavespeed.Client()`` made without arguments reads them from
    ``wavespeed.config.api``. Afterwards the configuration and the SDK's cached
    default client (``wavespeed.api._default_client``) are what they were, so
    nothing leaks into the next test or towards another server.

    Yields:
        The ``wavespeed`` module.
    """
    import wavespeed
    import wavespeed.api as sdk_api

    # The SDK's own patch() restores the values in place; monkeypatching
    # wavespeed.config.api would replace its proxy and break it once undone.
    changes = {
        "api.base_url": base_url,
        "api.api_key": api_key,
        "api.retry_interval": FAST_POLL_S,
    }
    saved_client = sdk_api._default_client
    with wavespeed.config.patch(changes):
        # The module-level functions use a client cached on first use; without
        # swapping it, a test on a second server would reach the first.
        sdk_api._default_client = make_client(base_url, api_key, cap_polls=True)
        try:
            yield wavespeed
        finally:
            sdk_api._default_client = saved_client
