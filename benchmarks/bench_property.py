"""Property tests that never look at the media: examples per second, with
clips made at submit (the default) and only on download (``lazy_renders``).

A Hypothesis test draws request bodies from the contract
(``request_bodies("character-ai/ovi/text-to-video")``) and runs each through
the official SDK's ``run`` against a live server with the synthetic engine, as
a newcomer's first property test does; every body is new, so every example
would render a clip. Both modes run in the same process, one after the other.

    python benchmarks/bench_property.py [--examples 40]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import wavespeed
from hypothesis import HealthCheck, given, settings
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings
from wavespeed_mock.plugins import request_bodies

T2V = "character-ai/ovi/text-to-video"


def examples_per_second(lazy: bool, examples: int) -> float:
    data = Path(tempfile.mkdtemp(prefix="bench-property-"))
    config = Settings(data_dir=data, port=0, profile="instant", lazy_renders=lazy)
    with LiveServer(config) as server:
        client = wavespeed.Client(api_key="any", base_url=server.url)

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(body=request_bodies(T2V))
        def property_test(body: dict[str, object]) -> None:
            body.pop("enable_sync_mode", None)
            output = client.run(T2V, body, poll_interval=0.02)
            assert output["outputs"]

        started = time.perf_counter()
        property_test()
        return examples / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=40)
    args = parser.parse_args()
    eager = examples_per_second(False, args.examples)
    lazy = examples_per_second(True, args.examples)
    print(
        f"{args.examples} examples of a request_bodies property test through the SDK's run:"
    )
    print(f"  clips made at submit     {eager:7.1f} examples/s")
    print(f"  lazy_renders (on demand) {lazy:7.1f} examples/s  ({lazy / eager:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
