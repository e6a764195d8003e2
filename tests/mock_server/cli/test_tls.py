"""``serve --tls``: HTTPS as api.wavespeed.ai from a local CA kept in the data folder."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .._support import free_port

pytest.importorskip("trustme", reason="pip install -e '.[test]' installs trustme")


def serve_tls(data: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
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
                *extra,
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


APP = """
import os, sys, time, requests
API = "https://api.wavespeed.ai/api/v3"
headers = {"Authorization": "Bearer app-key"}
answer = requests.post(f"{API}/wavespeed-ai/z-image/turbo", json={"prompt": "A lighthouse"},
                       headers=headers, timeout=30)
answer.raise_for_status()
url = answer.json()["data"]["urls"]["get"]
for _ in range(600):
    data = requests.get(url, headers=headers, timeout=30).json()["data"]
    if data["status"] in ("completed", "failed"):
        break
    time.sleep(0.05)
image = requests.get(data["outputs"][0], timeout=30).content
print(data["status"], data["outputs"][0], image[:2].hex())
"""


def test_a_requests_app_with_the_real_url_goes_through_the_proxy_unchanged(
    tmp_path: Path,
) -> None:
    proxy_port = free_port()
    process, _ = serve_tls(tmp_path, "--proxy-port", str(proxy_port))
    try:
        ca = tmp_path / "tls" / "ca.pem"
        banner = (tmp_path / "server.log").read_text()
        assert f"HTTPS_PROXY=http://127.0.0.1:{proxy_port}" in banner
        # Only environment variables: the app keeps https://api.wavespeed.ai.
        env = {
            **os.environ,
            "HTTPS_PROXY": f"http://127.0.0.1:{proxy_port}",
            "REQUESTS_CA_BUNDLE": str(ca),
            "NO_PROXY": "",
        }
        done = subprocess.run(
            [sys.executable, "-c", APP],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        status, output, magic = done.stdout.split()
        assert status == "completed" and magic == "ffd8"  # a JPEG
        assert output.startswith("https://api.wavespeed.ai/outputs/")
        # Never an open proxy: another host, or a plain request, is refused.
        with socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as conn:
            conn.sendall(
                b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
            )
            assert conn.recv(100).startswith(b"HTTP/1.1 403")
        with socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as conn:
            conn.sendall(
                b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"
            )
            assert conn.recv(100).startswith(b"HTTP/1.1 405")
    finally:
        process.terminate()
        process.wait(60)
