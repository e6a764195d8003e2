"""``serve --tls``: HTTPS as api.wavespeed.ai from a local CA kept in the data folder."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .._support import free_port

pytest.importorskip("trustme", reason="pip install -e '.[test]' installs trustme")


def serve_tls(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with (data / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wavespeed_mock.mock_server.cli.main",
                "serve",
                "--tls",
                "--port",
                str(port),
                "--data-dir",
                str(data),
                "--profile",
                "instant",
            ],
            env=os.environ.copy(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while "NODE_EXTRA_CA_CERTS" not in (data / "server.log").read_text():
        assert process.poll() is None, (data / "server.log").read_text()
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    return process, f"https://127.0.0.1:{port}"


def test_a_client_with_the_real_host_name_and_the_ca_trusted_reaches_the_mock(
    tmp_path: Path,
) -> None:
    process, url = serve_tls(tmp_path)
    try:
        banner = (tmp_path / "server.log").read_text()
        ca = tmp_path / "tls" / "ca.pem"
        assert f"REQUESTS_CA_BUNDLE={ca}" in banner and url in banner
        assert oct((tmp_path / "tls" / "ca.key").stat().st_mode & 0o777) == "0o600"
        trusted = ssl.create_default_context(cafile=str(ca))
        with httpx.Client(verify=trusted) as client:
            # As a client with https://api.wavespeed.ai hard-coded would: that
            # name in SNI and Host (the address is this machine's).
            answer = client.post(
                f"{url}/api/v3/wavespeed-ai/z-image/turbo",
                json={"prompt": "A lighthouse"},
                headers={"Host": "api.wavespeed.ai", "Authorization": "Bearer k"},
                extensions={"sni_hostname": "api.wavespeed.ai"},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["urls"]["get"].startswith("https://")
        # Without the CA trusted, the certificate is refused.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(url + "/_mock/health")
    finally:
        process.terminate()
        process.wait(60)
    first_ca = ca.read_bytes()
    process, _ = serve_tls(tmp_path)  # a restart keeps the CA clients trust
    process.terminate()
    process.wait(60)
    assert ca.read_bytes() == first_ca
