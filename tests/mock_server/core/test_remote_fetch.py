"""Remote image fetch: internal addresses refused at every hop, one deadline and one
byte bound for the whole fetch, and errors that do not tell open ports from closed.

Every server here listens on 127.0.0.1; names are resolved by a stand-in, so the
suite touches no other network.
"""

from __future__ import annotations

import http.server
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from wavespeed_mock.mock_server.core.network import internal_kind
from wavespeed_mock.mock_server.core.remote_fetch import (
    FetchFailed,
    FetchRefused,
    RemoteFetcher,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


class Site:
    """A loopback HTTP server whose answers a test writes as a handler function."""

    def __init__(self, answer: Callable[[http.server.BaseHTTPRequestHandler], None]):
        self.requests: list[dict[str, str]] = []
        self.closed = threading.Event()
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append({k.lower(): v for k, v in self.headers.items()})
                try:
                    answer(self)
                except OSError:
                    site.closed.set()  # the client hung up

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send(status: int, body: bytes = b"", **headers: str) -> Callable[[Any], None]:
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for name, value in headers.items():
            h.send_header(name.replace("_", "-"), value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return answer


@pytest.fixture
def sites() -> Iterator[Callable[[Callable[[Any], None]], Site]]:
    made: list[Site] = []

    def make(answer: Callable[[Any], None]) -> Site:
        made.append(Site(answer))
        return made[-1]

    yield make
    for site in made:
        site.close()


def resolver(table: dict[str, str]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [table[host]]

    return resolve


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("172.16.0.1", "private"),
        ("fc00::1", "private"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-public"),
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_internal_addresses_are_named(address: str, kind: str | None) -> None:
    assert internal_kind(ipaddress.ip_address(address)) == kind


def test_loopback_is_refused_without_a_connection(sites: Any) -> None:
    site = sites(send(200, PNG))
    with pytest.raises(FetchRefused, match="loopback"):
        RemoteFetcher().fetch(site.url + "/cat.png")
    assert site.requests == []


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", "link-local"),
        ("10.0.0.7", "private"),
        ("224.0.0.9", "multicast"),
    ],
)
def test_a_name_resolving_inside_is_refused(address: str, kind: str) -> None:
    fetcher = RemoteFetcher(resolver=resolver({"images.test": address}))
    with pytest.raises(FetchRefused, match=kind):
        fetcher.fetch("http://images.test/cat.png")


def test_an_allowed_host_is_fetched_at_the_checked_address(sites: Any) -> None:
    site = sites(send(200, PNG))
    fetcher = RemoteFetcher(
        allow=("images.test",), resolver=resolver({"images.test": "127.0.0.1"})
    )
    assert fetcher.fetch(f"http://images.test:{site.port}/cat.png") == PNG
    assert site.requests[0]["host"] == f"images.test:{site.port}"
    # By address or network too.
    assert RemoteFetcher(allow=("127.0.0.0/8",)).fetch(site.url + "/c.png") == PNG


def test_every_redirect_is_checked_again(sites: Any) -> None:
    secret = sites(send(200, PNG))
    hop = sites(send(302, Location=f"{secret.url}/secret.png"))
    fetcher = RemoteFetcher(
        allow=("images.test",), resolver=resolver({"images.test": "127.0.0.1"})
    )
    with pytest.raises(FetchRefused, match=r"127\.0\.0\.1"):
        fetcher.fetch(f"http://images.test:{hop.port}/cat.png")
    assert len(hop.requests) == 1 and secret.requests == []
    # A redirect to a name that resolves inside is refused the same way.
    inside = sites(send(307, Location="http://metadata.test/latest"))
    fetcher = RemoteFetcher(
        allow=("images.test",),
        resolver=resolver(
            {"images.test": "127.0.0.1", "metadata.test": "169.254.169.254"}
        ),
    )
    with pytest.raises(FetchRefused, match="link-local"):
        fetcher.fetch(f"http://images.test:{inside.port}/cat.png")


def test_allowed_redirects_are_followed_and_bounded(sites: Any) -> None:
    final = sites(send(200, PNG))
    hop = sites(send(301, Location=f"{final.url}/cat.png"))
    fetcher = RemoteFetcher(allow=("127.0.0.1",))
    assert fetcher.fetch(hop.url + "/start") == PNG
    loop = sites(send(302, Location="/again"))
    with pytest.raises(FetchFailed, match="redirects"):
        fetcher.fetch(loop.url + "/again")


def test_one_deadline_covers_a_slow_drip(sites: Any) -> None:
    """A byte every 50 ms: each read is quick, the whole is not. A per-read
    timeout would wait out all 200 bytes; the fetch's one deadline cuts it."""

    def drip(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "200")
        h.end_headers()
        for _ in range(200):
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(0.05)

    site = sites(drip)
    fetcher = RemoteFetcher(allow=("127.0.0.1",), deadline_s=0.5)
    with pytest.raises(FetchFailed, match=r"whole download took longer than 0\.5 s"):
        fetcher.fetch(site.url + "/slow.png")


@pytest.mark.parametrize("declared", [True, False])
def test_one_byte_bound_covers_the_whole_body(sites: Any, declared: bool) -> None:
    body = b"x" * 5000

    def big(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        if declared:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        for start in range(0, len(body), 500):
            h.wfile.write(body[start : start + 500])
        h.close_connection = True

    site = sites(big)
    fetcher = RemoteFetcher(allow=("127.0.0.1",), max_bytes=1000)
    with pytest.raises(FetchFailed, match="1000 bytes"):
        fetcher.fetch(site.url + "/big.png")
    assert RemoteFetcher(allow=("127.0.0.1",), max_bytes=5000).fetch(site.url) == body


def test_only_http_urls_are_fetched() -> None:
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://x/"):
        with pytest.raises(FetchRefused, match="not an http"):
            RemoteFetcher().fetch(url)


# -- through the server -----------------------------------------------------------------


def _task_error(server: Any, image: str) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": "Bearer test-key"}
    answer = httpx.post(
        server.url + "/api/v3/character-ai/ovi/image-to-video",
        json={"prompt": "p", "image": image},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    pid = answer.json()["data"]["id"]
    import time

    # A poll never waits for a render: poll until the task ends (a generous bound).
    deadline = time.monotonic() + 120
    while True:
        result = httpx.get(
            f"{server.url}/api/v3/predictions/{pid}/result", headers=headers
        ).json()["data"]
        if result["status"] in ("completed", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert result["status"] == "failed", result
    return {"code": result["code"], "error": result["error"]}


def test_a_task_cannot_reach_loopback_by_default(start_server: Any, sites: Any) -> None:
    site = sites(send(200, PNG))
    server = start_server(fetch_remote_images=True)
    failure = _task_error(server, site.url + "/internal.png")
    assert failure["code"] == 1402 and "refused" in failure["error"]
    assert "--fetch-allow" in failure["error"]
    assert site.requests == []


def test_task_errors_do_not_tell_open_ports_from_closed(
    start_server: Any, sites: Any
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    missing = sites(send(404, b"no"))
    not_an_image = sites(send(200, b"<html>admin panel</html>"))
    server = start_server(fetch_remote_images=True, fetch_allow=("127.0.0.1",))
    failures = [
        _task_error(server, url)
        for url in (
            f"http://127.0.0.1:{closed_port}/x.png",
            missing.url + "/x.png",
            not_an_image.url + "/x.png",
        )
    ]
    assert failures[0] == failures[1] == failures[2]
    assert failures[0]["code"] == 1402 and "admin" not in failures[0]["error"]
