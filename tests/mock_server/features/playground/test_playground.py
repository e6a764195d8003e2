"""The playground's server side: the page and its assets, their security
headers, and the webhook inbox's verdicts. The page itself is driven in a real
browser in ``test_playground_browser.py``."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from wavespeed_mock.mock_server.features.playground.page import (
    ASSET_TYPES,
    asset_bytes,
    page_headers,
)
from wavespeed_mock.mock_server.features.webhooks import sign_webhook

from ..._support import AUTH, PROMPT, T2V, wait_until
from ...conftest import StartServer

ROOT = Path(__file__).resolve().parents[4]


@pytest.mark.parametrize("path", ["/", "/playground"])
def test_the_page_is_served_at_the_root_and_at_playground(
    start_server: StartServer, path: str
) -> None:
    server = start_server()
    answer = httpx.get(server.url + path)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/playground/playground.js">' in answer.text
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["x-frame-options"] == "DENY"


def test_the_page_has_no_inline_script_nor_style() -> None:
    html = asset_bytes("index.html").decode()
    # Every <script> has a src and no body; no on*= handlers; no style attributes.
    for match in re.finditer(r"<script\b([^>]*)>(.*?)</script>", html, re.S):
        assert "src=" in match.group(1) and match.group(2).strip() == ""
    assert not re.search(r"\son[a-z]+\s*=", html)
    assert not re.search(r"\sstyle\s*=", html)
    assert "http://" not in html and "https://" not in html  # nothing from a CDN


def test_only_the_pages_assets_are_served_from_the_package(
    start_server: StartServer,
) -> None:
    server = start_server()
    for name in ("playground.js", "playground.css"):
        answer = httpx.get(f"{server.url}/playground/{name}")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == ASSET_TYPES[name]
        assert answer.content == asset_bytes(name)
        assert answer.headers["x-content-type-options"] == "nosniff"
    for name in ("index.html", "page.py", "..%2fpage.py", "missing.js"):
        refused = httpx.get(f"{server.url}/playground/{name}")
        assert refused.status_code == 404
        assert refused.json()["code"] == 404


def test_the_policy_allows_the_servers_own_url_for_clips() -> None:
    policy = page_headers("http://localhost:8123")["Content-Security-Policy"]
    assert "media-src 'self' http://localhost:8123 blob:" in policy


def test_the_assets_ship_in_the_wheel() -> None:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    tool = config["tool"]["setuptools"]
    package = "wavespeed_mock.mock_server.features.playground.static"
    assert package in tool["packages"]
    assert tool["package-data"][package] == ["*"]
    shipped = {
        p.name for p in (ROOT / "mock_server/features/playground/static").iterdir()
    }
    assert shipped == set(ASSET_TYPES)


def test_the_inbox_checks_each_deliverys_signature(start_server: StartServer) -> None:
    server = start_server()
    inbox_url = f"{server.url}/playground/inbox"
    submitted = httpx.post(
        f"{server.url}{T2V}", params={"webhook": inbox_url}, json=PROMPT, headers=AUTH
    ).json()["data"]
    httpx.get(submitted["urls"]["get"], headers=AUTH)  # instant: completes it

    def entries() -> list[dict[str, object]]:
        answer = httpx.get(f"{server.url}/_mock/playground/inbox")
        assert answer.status_code == 200
        items: list[dict[str, object]] = answer.json()["data"]["items"]
        return items

    wait_until(lambda: len(entries()) == 1, what="the delivery reached the inbox")
    (entry,) = entries()
    assert entry["prediction_id"] == submitted["id"]
    assert entry["status"] == "completed"
    assert entry["verdict"] == "valid"

    # A forged delivery (signed with another secret) is received and called so.
    body = b'{"id":"%s","status":"completed"}' % submitted["id"].encode()
    forged = sign_webhook(
        body, "whsec_bm90LXRoZS1zZWNyZXQ=", webhook_id=submitted["id"], timestamp=0
    )
    assert httpx.post(inbox_url, content=body, headers=forged).status_code == 204
    assert entries()[-1]["verdict"].startswith("invalid: webhook-signature")
    unsigned = httpx.post(
        inbox_url, content=b"{}", headers={"content-type": "application/json"}
    )
    assert unsigned.status_code == 204
    assert entries()[-1]["verdict"] == (
        "unknown prediction: no stored prediction has this webhook-id"
    )
    httpx.post(f"{server.url}/_mock/reset", json={})
    assert entries() == []


def test_the_inbox_bounds_what_it_reads_and_takes_nothing_from_web_pages(
    start_server: StartServer,
) -> None:
    server = start_server()
    inbox_url = f"{server.url}/playground/inbox"
    json_type = {"content-type": "application/json"}
    answer = httpx.post(inbox_url, content=b"x" * (1024 * 1024 + 1), headers=json_type)
    assert answer.status_code == 413
    # A cross-site page's form or fetch: it carries an Origin (or Sec-Fetch-Site),
    # and without a preflight it cannot send JSON.
    for headers in (
        {**json_type, "origin": "https://evil.example"},
        {**json_type, "sec-fetch-site": "cross-site"},
    ):
        assert httpx.post(inbox_url, content=b"{}", headers=headers).status_code == 403
    plain = httpx.post(inbox_url, content=b"{}", headers={"content-type": "text/plain"})
    assert plain.status_code == 415
    assert (
        httpx.get(f"{server.url}/_mock/playground/inbox").json()["data"]["items"] == []
    )
