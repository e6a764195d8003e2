"""The API reference at /docs and the raw documents at /openapi.yaml, /openapi.json."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html import escape
from html.parser import HTMLParser
from importlib import resources

import httpx
import pytest
import yaml
from wavespeed_mock.contracts import load_openapi

from ...conftest import StartServer

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def contract_text(name: str) -> str:
    return resources.files("wavespeed_mock.contracts").joinpath(name).read_text("utf-8")


class Page(HTMLParser):
    """What a browser would load from the page: scripts, assets, styles, links."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


@pytest.fixture
def base(start_server: StartServer) -> str:
    return start_server().url


def test_docs_is_the_contract_rendered_offline(base: str) -> None:
    answer = httpx.get(base + "/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = Page()
    page.feed(answer.text)
    assert not [t for t, _ in page.tags if t in ("script", "iframe", "object")]
    loaded = [
        value
        for tag, attrs in page.tags
        for name, value in attrs.items()
        if name == "src" or (tag == "link" and name == "href")
    ]
    assert loaded == []  # nothing fetched: no CDN, no asset at all
    links = [a.get("href") or "" for t, a in page.tags if t == "a"]
    assert not [h for h in links if re.match(r"https?://", h)]
    # Every operation of the contract is on the page, with its path.
    for path, item in load_openapi("openapi.yaml")["paths"].items():
        for _method, operation in item.items():
            if isinstance(operation, dict) and "operationId" in operation:
                assert f'id="{operation["operationId"]}"' in answer.text, path
                assert escape(path) in answer.text


def test_docs_csp_allows_only_its_own_stylesheet(base: str) -> None:
    answer = httpx.get(base + "/docs")
    policy = answer.headers["content-security-policy"]
    directives = dict(
        ([*d.split(" ", 1), ""])[:2] for d in (p.strip() for p in policy.split(";"))
    )
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "script-src" not in directives  # falls back to 'none'
    page = Page()
    page.feed(answer.text)
    (style,) = page.styles
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert directives["style-src"] == f"'sha256-{digest}'"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_openapi_yaml_is_the_shipped_file_typed_for_tools_and_browsers(
    base: str,
) -> None:
    for path in ("/openapi.yaml", "/_mock/documents/openapi.yaml"):
        tool = httpx.get(base + path)
        assert tool.status_code == 200
        assert tool.headers["content-type"] == "application/yaml"
        assert tool.text == contract_text("openapi.yaml")
        browser = httpx.get(base + path, headers={"accept": BROWSER_ACCEPT})
        # A browser shows text/plain in the tab; application/yaml is downloaded.
        assert browser.headers["content-type"] == "text/plain; charset=utf-8"
        assert browser.headers["x-content-type-options"] == "nosniff"
        assert browser.headers["vary"] == "accept"
        assert browser.text == tool.text


def test_openapi_json_is_the_same_document(base: str) -> None:
    answer = httpx.get(base + "/openapi.json")
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == yaml.safe_load(contract_text("openapi.yaml"))


def test_every_schema_the_documents_reference_is_served_beside_them(
    base: str,
) -> None:
    refs = set(re.findall(r'"(schemas/[^"#]+)', json.dumps(load_openapi())))
    assert refs
    for ref in sorted(refs):
        answer = httpx.get(f"{base}/{ref}")  # relative to /openapi.json
        assert answer.status_code == 200, ref
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == json.loads(contract_text(ref))


def test_an_unknown_schema_is_a_404_with_a_suggestion(base: str) -> None:
    answer = httpx.get(base + "/schemas/eror.json")
    assert answer.status_code == 404
    assert "error.json" in answer.json()["message"]
    traversal = httpx.get(base + "/schemas/..%2Fopenapi.yaml")
    assert traversal.status_code == 404


def test_docs_lists_every_model_with_its_fields_and_links_the_playground(
    base: str,
) -> None:
    from wavespeed_mock.contracts import builtin_catalogue

    html = httpx.get(f"{base}/docs").text
    catalogue = builtin_catalogue()
    assert f"Models ({len(catalogue)})" in html and 'href="/"' in html
    for spec in catalogue:
        assert f'id="model-{escape(spec.id)}"' in html, spec.id
        for name in spec.request_schema.get("properties", {}):
            assert f"<code>{escape(name)}</code>" in html, (spec.id, name)
    # a curl line with the required fields, per model
    assert (
        escape("curl -X POST http://127.0.0.1:8000/api/v3/wavespeed-ai/z-image/turbo")
        in html
    )
