"""The contract holds against what the real API and its SDKs say, verbatim.

Every body here is quoted from ../shared/reference/wavespeed-api.md, which cites
its source; none was written to fit the schemas.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from wavespeed_mock.contracts import iter_errors, validate

# §1.4 [OBS] AIPROXY: a captured submit answer.
CAPTURED_SUBMIT = {
    "code": 200,
    "message": "success",
    "data": {
        "id": "6488c2754f6f4dfea924382fa14d11bd",
        "model": "alibaba/wan-2.5/text-to-image",
        "outputs": [],
        "urls": {
            "get": "https://api.wavespeed.ai/api/v3/predictions/6488c2754f6f4dfea924382fa14d11bd/result"
        },
        "has_nsfw_contents": [],
        "status": "created",
        "created_at": "2025-09-29T23:09:43.027Z",
        "error": "",
        "executionTime": 0,
        "timings": {"inference": 0},
    },
}

# §2.2 [DOC] D-HIST: a history item with a 9-digit created_at.
HISTORY_ITEM = {
    "id": "e6832d4abffb4d79bfbca19783fca133",
    "model": "wavespeed-ai/flux-dev",
    "outputs": ["https://d2p7pge43lyniu.cloudfront.net/output/x.jpeg"],
    "urls": {
        "get": "https://api.wavespeed.ai/api/v3/predictions/e6832d4abffb4d79bfbca19783fca133/result"
    },
    "has_nsfw_contents": [False],
    "status": "completed",
    "created_at": "2025-05-19T06:09:15.948268264Z",
    "error": "",
    "executionTime": 25729,
    "timings": {"inference": 25729},
}

# §3.2 [DOC] D-WHV: the signed webhook body, exact bytes.
SIGNED_WEBHOOK_BODY = (
    '{"id":"45b392b22c3b449fa935bd4dc","model":"wavespeed-ai/flux-dev","outputs":'
    '["https://d2p7pge43lyniu.cloudfront.net/output/18058184-5df8-4d05-9e1b-7ad84c8b963e'
    '-u1_9bfd4537-e541-4ad0-a0f6-4812b11a37f1.jpeg"],"urls":{"get":"https://api.wavespeed.ai'
    '/api/v3/predictions/45b392b22c3b449fa935bd4dc2219dfe/result"},"has_nsfw_contents":[false],'
    '"status":"completed","created_at":"2025-09-25T09:12:48.239112031Z","error":"",'
    '"executionTime":6710,"timings":{"inference":6710}}'
)

# §2.6 [SDK] PY-REPO tests: the sync-mode timeout answer (no message, no model).
SYNC_TIMEOUT = {
    "code": 200,
    "data": {
        "id": "req-timeout",
        "status": "processing",
        "code": 5004,
        "error": "Sync mode timed out after 90 seconds. The prediction is still processing asynchronously.",
        "urls": {
            "get": "https://api.wavespeed.ai/api/v3/predictions/req-timeout/result"
        },
        "outputs": [],
    },
}

# §2.4 [DOC] D-ERR: the failed object.
FAILED_TASK = {
    "id": "abc123",
    "model": "model-name",
    "status": "failed",
    "code": 1402,
    "error": "Failed to download image from the provided URL.",
    "outputs": [],
}

# §2.5 [DOC] D-GETRESULT: the full failed-result envelope.
FAILED_ENVELOPE = {
    "code": 200,
    "message": "success",
    "data": {
        "id": "pred_abc123",
        "status": "failed",
        "error": "Error message here",
        "created_at": "2024-01-01T12:00:00.000Z",
    },
}

# §3.3 [SDK] PY-REPO: the upload ticket fixture of the official tests.
UPLOAD_TICKET = {
    "code": 200,
    "message": "success",
    "data": {
        "type": "image",
        "download_url": "https://example.com/uploaded.png",
        "filename": "test.png",
        "size": 1024,
        "upload": {
            "method": "PUT",
            "url": "https://storage.example.com/upload",
            "headers": {"Content-Type": "image/png"},
        },
    },
}

# §6 [SDK] AISDK/OAS-V2 shape: the 401 body.
UNAUTHORIZED = {"code": 401, "message": "Unauthorized: invalid authentication"}

VERBATIM: list[tuple[str, str, Any]] = [
    ("captured submit answer", "prediction-envelope", CAPTURED_SUBMIT),
    ("history item, 9-digit created_at", "prediction", HISTORY_ITEM),
    ("signed webhook body", "prediction", json.loads(SIGNED_WEBHOOK_BODY)),
    ("sync-timeout body (code 5004)", "prediction-envelope", SYNC_TIMEOUT),
    ("failed task (D-ERR)", "prediction", FAILED_TASK),
    ("failed envelope (D-GETRESULT)", "prediction-envelope", FAILED_ENVELOPE),
    ("upload ticket (SDK tests)", "upload-ticket.response", UPLOAD_TICKET),
    ("401 body", "error", UNAUTHORIZED),
]


@pytest.mark.parametrize(
    ("schema", "body"),
    [(s, b) for _, s, b in VERBATIM],
    ids=[name for name, _, _ in VERBATIM],
)
def test_verbatim_body_validates(schema: str, body: Any) -> None:
    assert [str(e) for e in iter_errors(schema, body)] == []


@pytest.mark.parametrize(
    "created_at",
    [
        "2025-08-19T11:34:26Z",
        "2025-10-31T23:02:36.92Z",
        "2025-09-29T23:09:43.027Z",
        "2025-05-19T06:09:15.948268264Z",
        "2025-05-19T06:09:15+02:00",
    ],
)
def test_created_at_accepts_any_rfc3339_precision(created_at: str) -> None:
    validate("prediction", {"id": "x", "status": "created", "created_at": created_at})


@pytest.mark.parametrize(
    "created_at", ["2025-13-01T00:00:00Z", "yesterday", "2025-01-01 00:00:00"]
)
def test_created_at_rejects_non_rfc3339(created_at: str) -> None:
    assert list(
        iter_errors(
            "prediction", {"id": "x", "status": "created", "created_at": created_at}
        )
    )


@pytest.mark.parametrize(
    "status",
    ["created", "processing", "completed", "failed", "cancelled", "timeout", "deleted"],
)
def test_all_seven_server_statuses_are_admitted(status: str) -> None:
    validate("prediction", {"id": "x", "status": status})


def test_unknown_status_is_rejected() -> None:
    errors = list(iter_errors("prediction", {"id": "x", "status": "pending"}))
    assert errors and errors[0].path == "$.status"


def test_task_code_is_open_to_new_values() -> None:
    validate("prediction", {"id": "x", "status": "failed", "code": 1406})


def test_response_schemas_are_open_to_new_fields() -> None:
    body = dict(CAPTURED_SUBMIT, extra_top=1)
    body["data"] = dict(CAPTURED_SUBMIT["data"], brand_new_field={"a": 1})
    validate("prediction-envelope", body)
