"""The bad-input corpus: what a careless client or an attacker sends, and what it gets.

Every row is one request. Each must be answered with the 4xx it names, in the
API's envelope (``{code, message}``, checked against the contract by the server's
response check), with a message that names the problem; nothing may be stored or
charged, and the server must be healthy afterwards. A 500 anywhere is a bug.

Rows are grouped by where the bad input sits: JSON bodies (every JSON route gets
the same malformed shapes), submit fields, headers, paths, query strings, uploads
and the control API. Host/Origin rules, the control token, webhook policy and the
upload image rules are tested by their own features' tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from wavespeed_mock.mock_server.http.live import LiveServer

from .._support import I2V, T2V, checked_live_server

KEY = "corpus-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
UPLOAD_ID = "0" * 32


@dataclass(frozen=True)
class Bad:
    """One bad request and the answer it must get."""

    name: str
    method: str
    path: str
    status: int
    says: tuple[str, ...]
    """Text the message must contain (the field, the problem)."""
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: bool = True

    def __str__(self) -> str:
        return self.name


def json_body(value: object) -> bytes:
    return json.dumps(value).encode()


PROMPT = b'"prompt": "waves"'

# -- every JSON route gets the same malformed bodies ------------------------------------

JSON_ROUTES = {
    "i2v": ("POST", I2V),
    "t2v": ("POST", T2V),
    "history": ("POST", "/api/v3/predictions"),
    "delete": ("POST", "/api/v3/predictions/delete"),
    "price": ("POST", "/api/v3/model/price"),
    "billings": ("POST", "/api/v3/billings/search"),
    "ticket": ("POST", "/api/v3/media/uploads"),
    "profile": ("POST", "/_mock/profile"),
    "clock": ("POST", "/_mock/clock"),
    "scenarios": ("POST", "/_mock/scenarios"),
}

MALFORMED: list[tuple[str, bytes, tuple[str, ...]]] = [
    ("not-json", b"{prompt: waves}", ("not valid JSON",)),
    ("truncated", b'{"prompt": "wav', ("not valid JSON",)),
    ("trailing-garbage", b'{"prompt": "waves"} x', ("not valid JSON",)),
    ("invalid-utf8", b'{"prompt": "\xff\xfe"}', ("not valid JSON",)),
    (
        "raw-surrogate-utf8",
        b'{"prompt": "\xed\xa0\x80"}',
        ("$.prompt", "lone surrogate"),
    ),
    ("nested-1000-arrays", b"[" * 1000 + b"]" * 1000, ("nest deeper than 32",)),
    (
        "nested-40-objects",
        b'{"a":' * 40 + b"1" + b"}" * 40,
        ("nest deeper than 32",),
    ),
    ("integer-5000-digits", b'{"seed": ' + b"9" * 5000 + b"}", ("5,000 characters",)),
    ("float-out-of-range", b'{"seed": 1e999}', ("1e999 is out of range",)),
    ("nan", b'{"seed": NaN}', ("NaN is not valid JSON",)),
    ("infinity", b'{"seed": -Infinity}', ("-Infinity is not valid JSON",)),
    ("lone-surrogate-in-key", b'{"\\udc00": 1}', ("a key holds a lone surrogate",)),
    (
        "nul-in-nested-value",
        b'{"x": [1, {"y": "a\\u0000"}]}',
        ("$.x[1].y", "NUL"),
    ),
]

JSON_SHAPES = [
    Bad(f"{route}/{shape}", method, path, 400, says, body=body)
    for route, (method, path) in JSON_ROUTES.items()
    for shape, body, says in MALFORMED
]

# -- submit bodies ------------------------------------------------------------------------

SUBMIT = [
    Bad("submit/empty-body", "POST", T2V, 400, ("the body is empty",), body=b""),
    Bad(
        "submit/whitespace-body", "POST", T2V, 400, ("the body is empty",), body=b" \n"
    ),
    Bad("submit/array-body", "POST", T2V, 400, ("$",), body=b"[]"),
    Bad("submit/string-body", "POST", T2V, 400, ("$",), body=b'"waves"'),
    Bad(
        "submit/lone-surrogate-prompt",
        "POST",
        T2V,
        400,
        ("$.prompt", "lone surrogate", "\\ud800"),
        body=b'{"prompt": "a\\ud800b"}',
    ),
    Bad(
        "submit/nul-prompt",
        "POST",
        T2V,
        400,
        ("$.prompt", "NUL"),
        body=b'{"prompt": "a\\u0000b"}',
    ),
    Bad(
        "submit/lone-surrogate-image",
        "POST",
        I2V,
        400,
        ("$.image", "lone surrogate"),
        body=b'{"image": "https://example.com/\\udbff.png", ' + PROMPT + b"}",
    ),
    Bad(
        "submit/lone-surrogate-unknown-field",
        "POST",
        T2V,
        400,
        ("$.note", "lone surrogate"),
        body=b'{"note": "\\ud83d", ' + PROMPT + b"}",
    ),
    Bad("submit/missing-prompt", "POST", T2V, 400, ("prompt",), body=b"{}"),
    Bad("submit/prompt-number", "POST", T2V, 400, ("$.prompt",), body=b'{"prompt": 7}'),
    Bad(
        "submit/seed-string",
        "POST",
        T2V,
        400,
        ("$.seed",),
        body=b'{"seed": "1", ' + PROMPT + b"}",
    ),
    Bad(
        "submit/seed-fraction",
        "POST",
        T2V,
        400,
        ("$.seed",),
        body=b'{"seed": 1.5, ' + PROMPT + b"}",
    ),
    Bad(
        "submit/seed-below-minus-one",
        "POST",
        T2V,
        400,
        ("$.seed",),
        body=b'{"seed": -2, ' + PROMPT + b"}",
    ),
    Bad(
        "submit/seed-99-digits",
        "POST",
        T2V,
        400,
        ("$.seed",),
        body=b'{"seed": ' + b"9" * 99 + b", " + PROMPT + b"}",
    ),
    Bad(
        "submit/size-unknown",
        "POST",
        T2V,
        400,
        ("$.size",),
        body=b'{"size": "1*1", ' + PROMPT + b"}",
    ),
    Bad(
        "submit/i2v-missing-image",
        "POST",
        I2V,
        400,
        ("image",),
        body=b"{" + PROMPT + b"}",
    ),
    Bad(
        "submit/sync-mode-not-boolean",
        "POST",
        T2V,
        400,
        ("$.enable_sync_mode",),
        body=b'{"enable_sync_mode": "yes", ' + PROMPT + b"}",
    ),
]

# -- headers ------------------------------------------------------------------------------

HEADERS = [
    Bad("headers/no-authorization", "POST", T2V, 401, ("API key",), auth=False),
    Bad(
        "headers/basic-auth",
        "POST",
        T2V,
        401,
        ("API key",),
        headers={"Authorization": "Basic dXNlcjpwYXNz"},
        auth=False,
    ),
    Bad(
        "headers/bare-bearer",
        "GET",
        "/api/v3/balance",
        401,
        ("API key",),
        headers={"Authorization": "Bearer"},
        auth=False,
    ),
    Bad(
        "headers/unknown-key",
        "GET",
        "/api/v3/balance",
        401,
        ("API key",),
        headers={"Authorization": "Bearer not-the-key"},
        auth=False,
    ),
    Bad(
        "headers/declared-length-over-limit",
        "POST",
        "/_mock/profile",
        413,
        ("over the 65,536-byte limit",),
        body=b" " * 70_000,
    ),
    Bad(
        "headers/submit-over-limit",
        "POST",
        "/api/v3/model/price",
        413,
        ("over the 65,536-byte limit",),
        body=b'{"model_id": "' + b"x" * 70_000 + b'"}',
    ),
    Bad(
        "headers/range-past-end",
        "GET",
        "/outputs/{output}",
        416,
        ("cannot be satisfied",),
        headers={"Range": "bytes=99999999-"},
    ),
    Bad(
        "headers/upload-range-past-end",
        "GET",
        "/outputs/{output}",
        416,
        ("cannot be satisfied",),
        headers={"Range": "bytes=99999999-99999999"},
    ),
]

# -- paths --------------------------------------------------------------------------------

PATHS = [
    Bad(
        "paths/output-nul",
        "GET",
        "/outputs/a%00b.mp4",
        404,
        ("not found", "a\\x00b.mp4"),
    ),
    Bad("paths/output-hidden-part", "GET", "/outputs/.x.mp4.part", 404, ("not found",)),
    Bad(
        "paths/output-traversal",
        "GET",
        "/outputs/..%2f..%2fstate.sqlite3",
        404,
        ("not found",),
    ),
    Bad("paths/output-too-long", "GET", "/outputs/" + "a" * 300, 404, ("not found",)),
    Bad(
        "paths/output-unknown",
        "GET",
        "/outputs/" + "f" * 32 + ".mp4",
        404,
        ("not found",),
    ),
    Bad(
        "paths/upload-nul",
        "GET",
        f"/uploads/{UPLOAD_ID}/a%00b.png",
        404,
        ("not found",),
    ),
    Bad(
        "paths/upload-bad-id",
        "GET",
        "/uploads/..%2f..%2f/state.sqlite3",
        404,
        ("not found",),
    ),
    Bad(
        "paths/upload-put-nul",
        "PUT",
        f"/uploads/{UPLOAD_ID}/a%00b.png",
        404,
        ("No upload ticket",),
        body=b"x",
    ),
    Bad(
        "paths/result-nul-id",
        "GET",
        "/api/v3/predictions/a%00b/result",
        404,
        ("'a\\x00b' not found", "1 to 128"),
    ),
    Bad(
        "paths/result-id-too-long",
        "GET",
        "/api/v3/predictions/" + "a" * 129 + "/result",
        404,
        ("1 to 128",),
    ),
    Bad(
        "paths/result-id-dots",
        "GET",
        "/api/v3/predictions/..%2e/result",
        404,
        ("not found",),
    ),
    Bad(
        "paths/result-unknown-id",
        "GET",
        "/api/v3/predictions/" + "0" * 32,
        404,
        ("not found",),
    ),
    Bad(
        "paths/get-on-delete",
        "GET",
        "/api/v3/predictions/delete",
        405,
        ("GET is not allowed", "POST"),
    ),
    Bad("paths/put-on-submit", "PUT", T2V, 405, ("PUT is not allowed",), body=b"{}"),
    Bad("paths/options-on-submit", "OPTIONS", T2V, 405, ("OPTIONS is not allowed",)),
    Bad(
        "paths/model-typo",
        "POST",
        "/api/v3/character-ai/ovi/text-to-vide",
        404,
        ("not found", "Did you mean 'character-ai/ovi/text-to-video'"),
        body=b"{" + PROMPT + b"}",
    ),
    Bad(
        "paths/model-nul",
        "POST",
        "/api/v3/character-ai/ovi%00",
        404,
        ("not found",),
        body=b"{" + PROMPT + b"}",
    ),
    Bad("paths/unknown-route", "GET", "/api/v4/anything", 404, ("Not found",)),
    Bad(
        "paths/document-traversal",
        "GET",
        "/_mock/documents/..%2fmodels.json",
        404,
        ("Not found",),
    ),
    Bad(
        "paths/document-nul",
        "GET",
        "/_mock/documents/openapi.yaml%00",
        404,
        ("No document",),
    ),
]

# -- query strings ------------------------------------------------------------------------


def webhook(value: str, says: tuple[str, ...], name: str) -> Bad:
    return Bad(
        f"query/webhook-{name}",
        "POST",
        f"{T2V}?{httpx.QueryParams({'webhook': value})}",
        400,
        ("webhook", *says),
        body=b"{" + PROMPT + b"}",
    )


QUERIES = [
    webhook("http://[::1", ("not a valid URL",), "broken-ipv6"),
    webhook("http://[zz]/", ("not a valid URL",), "bad-ipv6-literal"),
    webhook("http://localhost:99999/", ("not a valid URL",), "port-out-of-range"),
    webhook("http://localhost:port/", ("not a valid URL",), "port-not-a-number"),
    webhook("", ("not an absolute http(s) URL",), "empty"),
    webhook("/relative/hook", ("not an absolute http(s) URL",), "relative"),
    webhook("ftp://localhost/hook", ("not an absolute http(s) URL",), "ftp"),
    webhook("javascript:alert(1)", ("not an absolute http(s) URL",), "javascript"),
    webhook("http://local\x00host/", ("not a valid URL",), "nul"),
    webhook("http://local host/", ("not a valid URL",), "space"),
    webhook("http://localhost/" + "a" * 9000, ("longer than 8,192",), "too-long"),
]

# -- uploads ------------------------------------------------------------------------------

BOUNDARY = "corpusboundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def part(name: str, content: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (
        f'; filename="{filename}"' if filename else ""
    )
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        + content
        + b"\r\n"
    )


UPLOADS = [
    Bad(
        "uploads/binary-no-file-field",
        "POST",
        "/api/v3/media/upload/binary",
        400,
        ("$.file", "fields received: 'other'"),
        body=part("other", b"x") + f"--{BOUNDARY}--\r\n".encode(),
        headers=MULTIPART,
    ),
    Bad(
        "uploads/binary-file-as-text-field",
        "POST",
        "/api/v3/media/upload/binary",
        400,
        ("$.file",),
        body=part("file", b"not a file") + f"--{BOUNDARY}--\r\n".encode(),
        headers=MULTIPART,
    ),
    Bad(
        "uploads/binary-not-multipart",
        "POST",
        "/api/v3/media/upload/binary",
        400,
        ("$.file",),
        body=b'{"file": "x"}',
        headers={"Content-Type": "application/json"},
    ),
    Bad(
        "uploads/upload-no-file-field",
        "POST",
        "/api/v3/upload",
        400,
        ("$.file", "fields received: 'other'"),
        body=part("other", b"x") + f"--{BOUNDARY}--\r\n".encode(),
        headers=MULTIPART,
    ),
    Bad(
        "uploads/upload-a-program",
        "POST",
        "/api/v3/upload",
        400,
        ("Invalid file or format not supported", "'run.exe'"),
        body=part("file", b"MZ\x90\x00", filename="run.exe")
        + f"--{BOUNDARY}--\r\n".encode(),
        headers=MULTIPART,
    ),
    Bad(
        "uploads/ticket-size-not-integer",
        "POST",
        "/api/v3/media/uploads",
        400,
        ("$.size",),
        body=json_body({"filename": "a.png", "size": "big"}),
    ),
    Bad(
        "uploads/ticket-missing-filename",
        "POST",
        "/api/v3/media/uploads",
        400,
        ("filename",),
        body=json_body({"size": 10}),
    ),
    Bad(
        "uploads/ticket-nul-filename",
        "POST",
        "/api/v3/media/uploads",
        400,
        ("$.filename", "NUL"),
        body=b'{"filename": "a\\u0000.png", "size": 10}',
    ),
    Bad(
        "uploads/ticket-surrogate-content-type",
        "POST",
        "/api/v3/media/uploads",
        400,
        ("$.content_type", "lone surrogate"),
        body=b'{"filename": "a.png", "size": 10, "content_type": "image/\\ud800"}',
    ),
    Bad(
        "uploads/put-without-ticket",
        "PUT",
        f"/uploads/{UPLOAD_ID}/a.png",
        404,
        ("No upload ticket", "POST /api/v3/media/uploads"),
        body=b"x",
    ),
]

# -- the account --------------------------------------------------------------------------

ACCOUNT = [
    Bad(
        "account/billings-ids-not-a-list",
        "POST",
        "/api/v3/billings/search",
        400,
        ("$.prediction_uuids",),
        body=json_body({"prediction_uuids": "abc"}),
    ),
    Bad(
        "account/billings-start-not-a-time",
        "POST",
        "/api/v3/billings/search",
        400,
        ("$.start_time",),
        body=json_body({"start_time": "yesterday"}),
    ),
    Bad(
        "account/billings-unknown-sort",
        "POST",
        "/api/v3/billings/search",
        400,
        ("$.sort",),
        body=json_body({"sort": "price DESC"}),
    ),
]

# -- the control API ----------------------------------------------------------------------

CONTROL = [
    Bad(
        "control/clock-advance-1e17",
        "POST",
        "/_mock/clock",
        400,
        ("$.advance", "out of the clock's range", "3000-01-01"),
        body=json_body({"virtual": True, "advance": 1e17}),
    ),
    Bad(
        "control/clock-set-1e300",
        "POST",
        "/_mock/clock",
        400,
        ("$.set", "out of the clock's range"),
        body=json_body({"virtual": True, "set": 1e300}),
    ),
    Bad(
        "control/clock-set-far-past",
        "POST",
        "/_mock/clock",
        400,
        ("$.set", "out of the clock's range"),
        body=json_body({"virtual": True, "set": -1e20}),
    ),
    Bad(
        "control/clock-advance-negative",
        "POST",
        "/_mock/clock",
        400,
        ("$.advance", "never goes backwards"),
        body=json_body({"virtual": True, "advance": -1}),
    ),
    Bad(
        "control/clock-advance-string",
        "POST",
        "/_mock/clock",
        400,
        ("$.advance", "a number of seconds"),
        body=json_body({"virtual": True, "advance": "10"}),
    ),
    Bad(
        "control/clock-advance-boolean",
        "POST",
        "/_mock/clock",
        400,
        ("$.advance", "a number of seconds"),
        body=json_body({"virtual": True, "advance": True}),
    ),
    Bad(
        "control/clock-virtual-string",
        "POST",
        "/_mock/clock",
        400,
        ("$.virtual", "true or false"),
        body=json_body({"virtual": "yes"}),
    ),
    Bad(
        "control/clock-advance-real-clock",
        "POST",
        "/_mock/clock",
        409,
        ("The clock is real",),
        body=json_body({"advance": 5}),
    ),
    Bad(
        "control/clock-array",
        "POST",
        "/_mock/clock",
        400,
        ("expected a JSON object",),
        body=b"[]",
    ),
    Bad(
        "control/clock-empty",
        "POST",
        "/_mock/clock",
        400,
        ("the body is empty",),
        body=b"",
    ),
    Bad(
        "control/profile-missing",
        "POST",
        "/_mock/profile",
        400,
        ("$.profile",),
        body=json_body({}),
    ),
    Bad(
        "control/profile-number",
        "POST",
        "/_mock/profile",
        400,
        ("$.profile",),
        body=json_body({"profile": 3}),
    ),
    Bad(
        "control/profile-unknown",
        "POST",
        "/_mock/profile",
        400,
        ("$.profile", "instant"),
        body=json_body({"profile": "instnat"}),
    ),
    Bad(
        "control/profile-polls-zero",
        "POST",
        "/_mock/profile",
        400,
        ("$.profile", "polls:N"),
        body=json_body({"profile": "polls:0"}),
    ),
    Bad(
        "control/profile-polls-huge",
        "POST",
        "/_mock/profile",
        400,
        ("$.profile", "polls:N"),
        body=json_body({"profile": "polls:99999999999999999999"}),
    ),
    Bad(
        "control/profile-nul",
        "POST",
        "/_mock/profile",
        400,
        ("$.profile", "NUL"),
        body=b'{"profile": "instant\\u0000"}',
    ),
    Bad(
        "control/scenario-array",
        "POST",
        "/_mock/scenarios",
        400,
        ("expected a JSON object",),
        body=b"[]",
    ),
    Bad(
        "control/scenario-name-surrogate",
        "POST",
        "/_mock/scenarios",
        400,
        ("$.name", "lone surrogate"),
        body=b'{"name": "\\udfff"}',
    ),
    Bad(
        "control/scenario-latency-huge",
        "POST",
        "/_mock/scenarios",
        400,
        ("$.latency.ms", "maximum of 600000"),
        body=json_body({"name": "slow", "latency": {"kind": "fixed", "ms": 1e300}}),
    ),
    Bad(
        "control/scenario-latency-text",
        "POST",
        "/_mock/scenarios",
        400,
        ("$.latency.median_ms",),
        body=json_body(
            {"name": "slow", "latency": {"kind": "lognormal", "median_ms": "x"}}
        ),
    ),
    Bad(
        "control/scenario-lognormal-median-zero",
        "POST",
        "/_mock/scenarios",
        400,
        ("$.latency.median_ms",),
        body=json_body(
            {"name": "slow", "latency": {"kind": "lognormal", "median_ms": 0}}
        ),
    ),
    Bad(
        "control/scenario-queue-huge",
        "POST",
        "/_mock/scenarios",
        400,
        ("$.queue_s", "maximum of 3600"),
        body=json_body({"name": "slow", "queue_s": 1e9}),
    ),
    Bad(
        "control/reset-get", "GET", "/_mock/reset", 405, ("GET is not allowed", "POST")
    ),
    Bad(
        "control/health-post",
        "POST",
        "/_mock/health",
        405,
        ("POST is not allowed", "GET"),
    ),
    Bad("control/unknown-route", "GET", "/_mock/nothing-here", 404, ("Not found",)),
]

CORPUS = JSON_SHAPES + SUBMIT + HEADERS + PATHS + QUERIES + UPLOADS + ACCOUNT + CONTROL


def test_corpus_is_large_and_names_are_unique() -> None:
    names = [case.name for case in CORPUS]
    assert len(names) == len(set(names))
    assert len(CORPUS) >= 100


# -- the server they are sent to -----------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with checked_live_server(
        tmp_path_factory.mktemp("corpus"), api_keys=(KEY,)
    ) as server:
        yield server


@pytest.fixture(scope="module")
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def output_name(client: httpx.Client) -> str:
    """The file name of one finished clip, for the Range rows."""
    answer = client.post(
        T2V, json={"prompt": "a clip for the Range rows"}, headers=AUTH
    )
    assert answer.status_code == 200, answer.text
    outputs: list[str] = []
    for _ in range(500):
        data = client.get(answer.json()["data"]["urls"]["get"], headers=AUTH).json()
        outputs = data["data"]["outputs"]
        if data["data"]["status"] == "completed":
            break
    assert outputs, "the clip for the Range rows never completed"
    return outputs[0].rsplit("/", 1)[1]


@pytest.mark.parametrize("case", CORPUS, ids=str)
def test_bad_input(case: Bad, client: httpx.Client, output_name: str) -> None:
    stored = client.get("/_mock/state").json()["data"]["predictions"]
    headers = {**(AUTH if case.auth else {}), **case.headers}
    if (
        case.path.startswith("/_mock/")
        and case.method in ("POST", "PUT", "PATCH")
        and not any(k.lower() == "content-type" for k in case.headers)
    ):
        # Control requests must say JSON (else 415, tested in test_security);
        # the corpus is about what their bodies hold.
        headers["Content-Type"] = "application/json"
    path = case.path.replace("{output}", output_name)
    answer = client.request(case.method, path, content=case.body, headers=headers)

    assert answer.status_code == case.status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["code"] == case.status
    for text in case.says:
        assert text.lower() in body["message"].lower(), (text, body["message"])

    # nothing stored (nor charged: a charge belongs to a stored prediction), and
    # the server is healthy afterwards
    state = client.get("/_mock/state").json()["data"]
    assert state["predictions"] == stored
    assert client.get("/_mock/health").json()["data"] == {"ok": True}
    if state["clock"]["virtual"]:
        client.post("/_mock/clock", json={"virtual": False})
