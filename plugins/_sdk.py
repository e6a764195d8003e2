"""A client of the official SDK, wired to the mock."""

from __future__ import annotations

from typing import Any

__all__ = ["make_client"]

FAST_POLL_S = 0.05


def make_client(base_url: str, api_key: str) -> Any:
    """A ``wavespeed.Client`` (a subclass that only changes defaults) for the mock.

    ``run`` and ``run_no_throw`` poll every 0.05 s unless told otherwise, and
    retries wait 0.05 s, so tests do not sit through the SDK's 1 s intervals.
    """
    import wavespeed

    class MockClient(wavespeed.Client):  # type: ignore[misc]
        def run(self, model: str, input: dict[str, Any], **kwargs: Any) -> Any:
            kwargs.setdefault("poll_interval", FAST_POLL_S)
            return super().run(model, input, **kwargs)

        def run_no_throw(self, model: str, input: dict[str, Any], **kwargs: Any) -> Any:
            kwargs.setdefault("poll_interval", FAST_POLL_S)
            return super().run_no_throw(model, input, **kwargs)

    return MockClient(api_key=api_key, base_url=base_url, retry_interval=FAST_POLL_S)
