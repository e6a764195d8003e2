"""The Containerfile: built, run, used through the official SDK, stopped.

Opt-in, because it needs a container engine and a base image, which CI does not
have: set ``WAVESPEED_MOCK_CONTAINER`` to ``podman`` or ``docker``. Optional:
``WAVESPEED_MOCK_CONTAINER_BASE`` (the ``BASE`` build argument, for a machine
that cannot pull ``python:3.11-slim``), and extra flags for the engine's
``build`` and ``run`` in ``WAVESPEED_MOCK_CONTAINER_BUILD_FLAGS`` and
``WAVESPEED_MOCK_CONTAINER_RUN_FLAGS`` (split like a shell line). docs/container.md
gives the command this was run with.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ._net import free_port

ROOT = Path(__file__).resolve().parents[1]
ENGINE = os.environ.get("WAVESPEED_MOCK_CONTAINER", "")
T2V = "character-ai/ovi/text-to-video"
START_WAIT_S = 120.0

pytestmark = pytest.mark.skipif(
    ENGINE not in ("podman", "docker"),
    reason="opt-in: set WAVESPEED_MOCK_CONTAINER=podman or docker (docs/container.md)",
)


def _engine(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENGINE, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _flags(name: str) -> list[str]:
    return shlex.split(os.environ.get(name, ""))


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    tag = f"localhost/wavespeed-mock-test:{uuid.uuid4().hex[:8]}"
    base = os.environ.get("WAVESPEED_MOCK_CONTAINER_BASE")
    # -f: docker looks for a Dockerfile unless told; podman finds either.
    args = ["build", *_flags("WAVESPEED_MOCK_CONTAINER_BUILD_FLAGS"), "-t", tag]
    args += ["-f", str(ROOT / "Containerfile")]
    if base:
        args += ["--build-arg", f"BASE={base}"]
    built = _engine(*args, str(ROOT), timeout=900)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    yield tag
    _engine("rmi", "-f", tag)


@pytest.fixture
def running(image: str) -> Iterator[tuple[str, str]]:
    """A container of ``image`` on a free loopback port: (name, base URL)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    name = f"wavespeed-mock-test-{uuid.uuid4().hex[:8]}"
    started = _engine(
        "run",
        "-d",
        "--name",
        name,
        *_flags("WAVESPEED_MOCK_CONTAINER_RUN_FLAGS"),
        "-p",
        f"127.0.0.1:{port}:8000",
        # What a CI services block sets: the address clients use, and the
        # service's name among the answered Host names.
        "-e",
        f"WAVESPEED_MOCK_PUBLIC_URL={url}",
        "-e",
        "WAVESPEED_MOCK_ALLOWED_HOSTS=wavespeed",
        image,
    )
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + START_WAIT_S
        while True:
            try:
                if httpx.get(f"{url}/_mock/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, _engine("logs", name).stderr
            time.sleep(0.2)
        yield name, url
    finally:
        _engine("rm", "-f", name)


def test_the_container_serves_the_api_to_the_official_sdk(
    running: tuple[str, str],
) -> None:
    import wavespeed

    name, url = running
    client = wavespeed.Client(api_key="ci-key", base_url=url, retry_interval=0.05)
    output = client.run(T2V, {"prompt": "Waves at dawn. <S>Hello!<E>", "seed": 7})
    (clip_url,) = output["outputs"]
    assert clip_url.startswith(f"{url}/outputs/")
    clip = httpx.get(clip_url, timeout=30)
    assert clip.status_code == 200
    assert clip.content[4:8] == b"ftyp"

    # The Host rule holds inside the container: the service name is answered,
    # a rebinding page's name is not.
    assert httpx.get(f"{url}/_mock/health", headers={"Host": "wavespeed"}).is_success
    refused = httpx.get(f"{url}/_mock/health", headers={"Host": "attacker.example"})
    assert refused.status_code == 403

    # SIGTERM (what `stop` and a CI runner send) ends it cleanly.
    stopped = _engine("stop", "-t", "30", name, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    state = _engine("inspect", name, "--format", "{{.State.ExitCode}}")
    assert state.stdout.strip() == "0", _engine("logs", name).stderr
