"""The recording proxy: forward a request upstream, record it, answer the client.

HTTP-free: the routes hand it a :class:`ProxiedRequest` and send back the
:class:`ProxiedAnswer`. Outputs of a finished task are downloaded (bounded) and
stored in the cassette, and the client's answer points at the mock's copy.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from ....contracts import ModelSpec, load_openapi
from ...core.keys import bearer_key
from ...errors import ApiError
from .answers import rewrite_prediction
from .cassette import Exchange, OutputFile
from .images import data_uri_bytes
from .recorder import CassetteRecorder
from .redact import strip_query
from .upstream import DownloadError, Upstream, UpstreamError

__all__ = ["POLL_PATH", "ProxiedAnswer", "ProxiedRequest", "RecordingProxy"]

POLL_PATH = re.compile(r"^/api/v3/predictions/([^/]+)(?:/result)?$")


@dataclass(frozen=True)
class ProxiedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes = b""

    @property
    def api_key(self) -> str:
        return bearer_key(self.headers.get("authorization", ""))


@dataclass(frozen=True)
class ProxiedAnswer:
    status: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)


class RecordingProxy:
    """Forwards API requests to ``upstream`` and records them with ``recorder``."""

    def __init__(
        self,
        upstream: Upstream,
        recorder: CassetteRecorder,
        models: Callable[[str], ModelSpec | None],
    ) -> None:
        self.upstream = upstream
        self.recorder = recorder
        self.models = models
        """The model a submit path names (the server's catalogue)."""
        self.api_posts = frozenset(
            path
            for path, operations in load_openapi()["paths"].items()
            if "post" in operations and "{" not in path and models(path) is None
        )
        """The API's own POST routes (uploads, billing search, prices, deletes):
        every other POST is a submit to some model, the contract's or not, and
        counts against the spend cap."""
        self._outputs: dict[str, OutputFile] = {}

    async def handle(self, request: ProxiedRequest, *, base_url: str) -> ProxiedAnswer:
        """Forward, record, and answer one request.

        Raises:
            ApiError: 403 past the spend cap (nothing forwarded), 502 when the
                upstream cannot be reached.
        """
        if request.api_key:
            self.recorder.redactor.learn(request.api_key)
        # Every submit is billed upstream, to any model: each one counts.
        submit = (
            request.method == "POST"
            and request.path.startswith("/api/v3/")
            and request.path not in self.api_posts
        )
        model = self.models(request.path) if submit else None
        model_id = model.id if model is not None else request.path[len("/api/v3/") :]
        if submit:
            self.recorder.admit_submit()
        try:
            answer = await self.upstream.forward(
                request.method,
                request.path,
                request.query,
                request.headers,
                request.body,
            )
        except UpstreamError as exc:
            raise ApiError(
                502, f"Bad gateway: the recording's upstream did not answer ({exc})"
            ) from None
        body = _json_of(answer.content, answer.headers)
        exchange = Exchange(
            method=request.method,
            path=request.path,
            status=answer.status,
            body=body,
            request_body=_json_of(request.body, request.headers),
            query=_query(request.query),
        )
        poll = POLL_PATH.match(request.path) if request.method == "GET" else None
        is_prediction = submit or poll is not None
        if is_prediction and answer.status == 200:
            exchange.files = await self._keep_outputs(exchange.data.get("outputs"))
        if submit:
            image = exchange.request_body if answer.status == 200 else None
            self.recorder.record_submit(
                model_id, exchange, image_sha256=await self._image_digest(image)
            )
        elif poll is not None and self.recorder.knows(poll.group(1)):
            self.recorder.record_poll(poll.group(1), exchange)
        else:
            self.recorder.record_exchange(exchange)
        if not is_prediction or body is None:
            return ProxiedAnswer(answer.status, answer.content, answer.headers)
        client_body = rewrite_prediction(body, base_url=base_url, files=exchange.files)
        return ProxiedAnswer(
            answer.status,
            json.dumps(client_body, separators=(",", ":")).encode(),
            {**answer.headers, "content-type": "application/json"},
        )

    async def _image_digest(self, body: Any) -> str | None:
        """The SHA-256 of a submit's image (fetched like an output), or None."""
        image = body.get("image") if isinstance(body, dict) else None
        if not isinstance(image, str):
            return None
        if image[:5].lower() == "data:":
            data = data_uri_bytes(image)
            return hashlib.sha256(data).hexdigest() if data is not None else None
        try:
            return (await self.upstream.download(image)).sha256
        except DownloadError:
            return None

    async def _keep_outputs(self, outputs: Any) -> list[OutputFile]:
        if not isinstance(outputs, list):
            return []
        files: list[OutputFile] = []
        for url in outputs:
            if not isinstance(url, str):
                files.append(OutputFile(url=repr(url), error="not a URL"))
                continue
            key = strip_query(url)
            kept = self._outputs.get(key)
            if kept is None:
                try:
                    kept = await self.recorder.keep_output(
                        url, await self.upstream.download(url)
                    )
                except DownloadError as exc:
                    kept = OutputFile(
                        url=self.recorder.redactor.scrub(key),
                        error=self.recorder.redactor.scrub(str(exc)),
                    )
                self._outputs[key] = kept
            files.append(kept)
        return files

    async def aclose(self) -> None:
        await self.upstream.aclose()


def _json_of(content: bytes, headers: Mapping[str, str]) -> Any:
    if not content or "json" not in headers.get("content-type", ""):
        return None
    try:
        return json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _query(query: str) -> dict[str, str]:
    # A webhook URL may carry its own credentials: only its address is kept.
    return {
        k: strip_query(v) if k == "webhook" else v
        for k, v in parse_qsl(query, keep_blank_values=True)
    }
