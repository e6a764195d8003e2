"""Prediction answers as the client gets them from a recording or a replay.

Outputs point at the mock (``/outputs/recorded/<sha256>.<ext>``), so a client
downloads recorded files through it; ``urls.get`` and ``id`` name the task the
client knows.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from .cassette import OutputFile

__all__ = ["RECORDED_OUTPUTS_PATH", "output_url", "rewrite_prediction"]

RECORDED_OUTPUTS_PATH = "/outputs/recorded"


def output_url(base_url: str, name: str) -> str:
    return f"{base_url}{RECORDED_OUTPUTS_PATH}/{name}"


def rewrite_prediction(
    body: Any,
    *,
    base_url: str,
    files: Sequence[OutputFile] = (),
    task_id: str | None = None,
) -> Any:
    """A copy of a prediction envelope with ids, ``urls.get`` and outputs rewritten.

    An output that was stored points at the mock; one that was not keeps its URL.
    Anything that is not an envelope comes back unchanged.
    """
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        return body
    body = copy.deepcopy(body)
    data = body["data"]
    if task_id is not None:
        data["id"] = task_id
    task = data.get("id")
    urls = data.get("urls")
    if isinstance(urls, dict) and isinstance(task, str) and "get" in urls:
        urls["get"] = f"{base_url}/api/v3/predictions/{task}/result"
    outputs = data.get("outputs")
    if isinstance(outputs, list) and files:
        data["outputs"] = [
            _client_url(base_url, files, i, url) for i, url in enumerate(outputs)
        ]
    return body


def _client_url(base_url: str, files: Sequence[OutputFile], i: int, url: Any) -> Any:
    name = files[i].name if i < len(files) else None
    return output_url(base_url, name) if name is not None else url
