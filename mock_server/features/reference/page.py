"""The reference page: contracts/openapi.yaml as one HTML page, rendered on the server.

No script and no asset from elsewhere: the page works offline and under a
Content-Security-Policy that allows only its own inline stylesheet (by hash).
A Swagger UI bundle (swagger-ui-bundle on PyPI, swagger-ui-dist on npm) was
weighed: it needs script, and its "try it out" would have a web page drive the
server, which the mock refuses; what a reader needs here (routes, parameters,
bodies, statuses, the provenance of each fact) fits in plain HTML.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from functools import cache
from html import escape
from typing import Any

from ....contracts import Catalogue, ModelSpec, load_openapi
from ....contracts._resources import inlined_schema

__all__ = ["CONTENT_SECURITY_POLICY", "render_models", "render_reference"]

_METHODS = ("get", "post", "put", "patch", "delete")

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem 2rem;color:#1b1f24}
h1{font-size:1.6rem}h2{margin-top:2.5rem;border-bottom:1px solid #d0d7de}
section.op{border:1px solid #d0d7de;border-radius:6px;margin:1rem 0;padding:.5rem 1rem}
.method{display:inline-block;min-width:4.5rem;font-weight:700;font-family:monospace}
.get{color:#0969da}.post{color:#1a7f37}.put,.patch{color:#9a6700}.delete{color:#cf222e}
code,.path{font-family:ui-monospace,monospace}.path{font-weight:600}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d0d7de;padding:.2rem .5rem;text-align:left;vertical-align:top}
p.desc{white-space:pre-wrap}nav ul{columns:2;column-gap:2rem;padding-left:1.2rem}
nav li{break-inside:avoid;overflow-wrap:anywhere}p,h3,code{overflow-wrap:anywhere}
.scroll{overflow-x:auto}pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f8fa;padding:.5rem}
@media (max-width:700px){body{padding:.5rem 1rem}nav ul{columns:1}td,th{font-size:13px}}
"""

_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""Nothing loads but the page's own stylesheet; the page cannot be framed."""


_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+|/[^)\s]*)\)")


def _md(text: str) -> str:
    """Escaped text with the Markdown the contract's descriptions use: `code`
    and [links](https://...). Nothing else is interpreted."""
    html = escape(text.strip())
    html = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", html)
    return _LINK.sub(lambda m: f'<a href="{m.group(2)}">{m.group(1)}</a>', html)


def _status_key(status: str) -> tuple[int, str]:
    """200 before 400 before 4XX before default."""
    text = str(status)
    if text.isdigit():
        return int(text), ""
    if text[:1].isdigit():
        return int(text[0]) * 100 + 99, text
    return 1000, text


def _resolve(doc: dict[str, Any], node: Any) -> Any:
    """Follow a local ``#/components/...`` reference (external files stay links)."""
    ref = node.get("$ref") if isinstance(node, dict) else None
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target[part]
        return target
    return node


def _schema_link(schema: Any) -> str:
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    if isinstance(ref, str) and not ref.startswith("#"):
        href = escape(ref.split("#", 1)[0])
        return f'<a href="/{href}"><code>{escape(ref)}</code></a>'
    kind = schema.get("type", "") if isinstance(schema, dict) else ""
    return f"<code>{escape(str(kind))}</code>"


def _operation(doc: dict[str, Any], path: str, method: str, op: dict[str, Any]) -> str:
    anchor = escape(op.get("operationId") or f"{method}-{path}")
    parts = [
        f'<section class="op" id="{anchor}">',
        f'<h3><span class="method {method}">{method.upper()}</span> '
        f'<span class="path">{escape(path)}</span></h3>',
    ]
    if op.get("summary"):
        parts.append(f"<p><strong>{_md(op['summary'])}</strong></p>")
    if op.get("description"):
        parts.append(f'<p class="desc">{_md(op["description"])}</p>')
    params = [_resolve(doc, p) for p in op.get("parameters", [])]
    if params:
        rows = "".join(
            f"<tr><td><code>{escape(str(p.get('name')))}</code></td>"
            f"<td>{escape(str(p.get('in')))}</td>"
            f"<td>{'yes' if p.get('required') else 'no'}</td>"
            f"<td>{_schema_link(p.get('schema', {}))}</td>"
            f"<td>{_md(str(p.get('description', '')))}</td></tr>"
            for p in params
        )
        parts.append(
            '<div class="scroll"><table><tr><th>parameter</th><th>in</th>'
            "<th>required</th><th>schema</th><th>description</th></tr>"
            f"{rows}</table></div>"
        )
    body = _resolve(doc, op.get("requestBody"))
    if isinstance(body, dict):
        for media, spec in body.get("content", {}).items():
            parts.append(
                f"<p>Request body (<code>{escape(media)}</code>): "
                f"{_schema_link(spec.get('schema', {}))}</p>"
            )
            parts.append(_body_fields(spec.get("schema", {}), media, method, path))
    statuses = []
    responses = op.get("responses", {})
    for status in sorted(responses, key=_status_key):
        response = responses[status]
        response = _resolve(doc, response)
        media = response.get("content", {})
        schemas = ", ".join(
            f"<code>{escape(m)}</code> {_schema_link(s.get('schema', {}))}"
            for m, s in media.items()
        )
        statuses.append(
            f"<tr><td>{escape(str(status))}</td>"
            f"<td>{_md(str(response.get('description', '')))}</td>"
            f"<td>{schemas}</td></tr>"
        )
    if statuses:
        parts.append(
            '<div class="scroll"><table><tr><th>status</th><th>description</th>'
            "<th>body</th></tr>" + "".join(statuses) + "</table></div>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def _body_fields(schema: Any, media: str, method: str, path: str) -> str:
    """A JSON body's fields inline (name, type, required, description), an
    example body of its required fields, and a curl line."""
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    if media != "application/json" or not isinstance(ref, str) or ref.startswith("#"):
        return ""
    name = ref.split("#", 1)[0].rsplit("/", 1)[-1]
    try:
        body_schema = inlined_schema(name)
    except (OSError, ValueError, KeyError):
        return ""
    props: dict[str, Any] = dict(body_schema.get("properties", {}))
    if not props:
        return ""
    required = set(body_schema.get("required", []))
    rows = "".join(
        f"<tr><td><code>{escape(field)}</code>{' *' if field in required else ''}</td>"
        f"<td>{escape(_type_of(spec))}</td>"
        f"<td>{_md(str(spec.get('description', '')) if isinstance(spec, dict) else '')}</td></tr>"
        for field, spec in props.items()
    )
    example = {f: _example(props[f]) for f in props if f in required}
    curl = (
        f"curl -X {method.upper()} http://127.0.0.1:8000{path} "
        "-H 'Authorization: Bearer any-key' -H 'Content-Type: application/json' "
        f"-d '{json_text(example)}'"
    )
    return (
        '<div class="scroll"><table><tr><th>field</th><th>type</th>'
        f"<th>description</th></tr>{rows}</table></div>"
        f"<p>Example (the required fields):</p><pre>{escape(curl)}</pre>"
    )


def _type_of(spec: Any) -> str:
    if not isinstance(spec, dict):
        return ""
    if "type" in spec:
        kind = spec["type"]
        return " or ".join(kind) if isinstance(kind, list) else str(kind)
    branches = spec.get("anyOf") or spec.get("oneOf") or []
    return " or ".join(sorted({_type_of(b) for b in branches if _type_of(b)}))


@cache
def render_reference(document: str = "openapi.yaml") -> str:
    """The HTML reference of a contract document (cached: the contract is data)."""
    doc = load_openapi(document)
    info = doc.get("info", {})
    groups: dict[str, list[str]] = {}
    toc: dict[str, list[str]] = {}
    for path, item in doc.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            tag = (op.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append(_operation(doc, path, method, op))
            anchor = escape(op.get("operationId") or f"{method}-{path}")
            toc.setdefault(tag, []).append(
                f'<li><a href="#{anchor}">{method.upper()} {escape(path)}</a></li>'
            )
    nav = "".join(
        f"<li>{escape(tag)}<ul>{''.join(items)}</ul></li>" for tag, items in toc.items()
    )
    sections = "".join(
        f'<h2 id="tag-{escape(tag)}">{escape(tag)}</h2>' + "".join(ops)
        for tag, ops in groups.items()
    )
    title = escape(str(info.get("title", "API reference")))
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{title}</h1>"
        f'<p class="desc">{_md(str(info.get("description", "")))}</p>'
        '<p>The documents: <a href="/openapi.yaml">openapi.yaml</a>, '
        '<a href="/openapi.json">openapi.json</a> (body schemas under '
        "<code>/schemas/</code>); the control API: "
        '<a href="/_mock/documents/mock-control.yaml">mock-control.yaml</a>; '
        'every model: <a href="#models">Models</a>; try it: '
        '<a href="/">the playground</a>.</p>'
        f"<nav><ul>{nav}</ul></nav>{sections}</body></html>\n"
    )


def render_models(catalogue: Catalogue) -> str:
    """The models section: every model the server serves, its output, price and
    parameters (from its catalogue entry), and a curl line."""
    rows = "".join(
        f'<li><a href="#model-{escape(m.id)}">{escape(m.id)}</a></li>'
        for m in catalogue
    )
    return (
        f'<h2 id="models">Models ({len(catalogue)})</h2>'
        "<p>Each model is <code>POST /api/v3/&lt;model id&gt;</code> (above: the "
        "submit operations), from its catalogue entry; try one in the "
        '<a href="/">playground</a>. Facts marked inferred in an entry: '
        "<code>wavespeed-mock catalogue show ID</code>.</p>"
        f"<nav><ul>{rows}</ul></nav>" + "".join(_model(m) for m in catalogue)
    )


def _model(spec: ModelSpec) -> str:
    plan = spec.outputs_for({})
    size = f" {plan.width}x{plan.height}" if plan.width and plan.height else ""
    length = f", {plan.duration_s:g} s" if plan.duration_s else ""
    sound = ", with sound" if plan.audio else ""
    schema = spec.request_schema
    props: dict[str, Any] = dict(schema.get("properties", {}))
    required = set(schema.get("required", []))
    order = [n for n in schema.get("x-order-properties", props) if n in props]
    rows = []
    for name in order:
        prop = props[name]
        if not isinstance(prop, dict):
            continue
        bounds = []
        if "enum" in prop:
            bounds.append(", ".join(str(v) for v in prop["enum"]))
        if "minimum" in prop or "maximum" in prop:
            bounds.append(f"{prop.get('minimum', '…')} to {prop.get('maximum', '…')}")
        rows.append(
            f"<tr><td><code>{escape(name)}</code>{' *' if name in required else ''}</td>"
            f"<td>{escape(str(prop.get('type', '')))}</td>"
            f"<td>{escape(json_text(prop['default'])) if 'default' in prop else ''}</td>"
            f"<td>{escape('; '.join(bounds))}</td>"
            f"<td>{escape(str(prop.get('description', '')))}</td></tr>"
        )
    example = {n: _example(props[n]) for n in order if n in required}
    curl = (
        f"curl -X POST http://127.0.0.1:8000/api/v3/{spec.id} "
        "-H 'Authorization: Bearer any-key' -H 'Content-Type: application/json' "
        f"-d '{json_text(example)}'"
    )
    return (
        f'<section class="op" id="model-{escape(spec.id)}">'
        f'<p><span class="method post">POST</span> <span class="path">/api/v3/'
        f"{escape(spec.id)}</span></p>"
        f"<p>{escape(spec.name)}: {escape(spec.description)} "
        f"<em>{escape(spec.type)}</em>; returns {plan.kind} ({escape(plan.format)}"
        f"{size}{length}{sound}); ${spec.price_for():g} a run with defaults.</p>"
        '<div class="scroll"><table><tr><th>field</th><th>type</th><th>default</th>'
        f"<th>values</th><th>description</th></tr>{''.join(rows)}</table></div>"
        f"<pre>{escape(curl)}</pre></section>"
    )


def _example(prop: Any) -> Any:
    if not isinstance(prop, dict):
        return ""
    if "default" in prop:
        return prop["default"]
    if prop.get("enum"):
        return prop["enum"][0]
    if prop.get("x-ui-component") in ("uploader", "uploaders"):
        url = "https://example.com/input"
        return [url] if prop.get("type") == "array" else url
    if prop.get("anyOf"):
        return _example(prop["anyOf"][0])
    if prop.get("format") == "uri" or "http" in str(prop.get("pattern", "")):
        return "https://example.com/input.png"
    return {"integer": 1, "number": 1, "boolean": False, "array": [], "object": {}}.get(
        str(prop.get("type")), "A lighthouse at dusk"
    )


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
