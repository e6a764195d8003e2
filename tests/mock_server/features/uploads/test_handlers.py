"""The upload handlers on their own: called with a request and a key, no server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from wavespeed_mock.mock_server.errors import ApiError
from wavespeed_mock.mock_server.features.uploads import UploadHandlers

from ..._support import answer_of, asgi_request, make_server


def handlers(tmp_path: Path) -> UploadHandlers:
    server = make_server(tmp_path / "data")
    assert server.features.uploads is not None
    return UploadHandlers(server.features.uploads, server.service)


def test_a_ticket_names_where_to_put_the_file(tmp_path: Path) -> None:
    uploads = handlers(tmp_path)
    body = {"filename": "first frame.png", "size": 1000}
    ticket = answer_of(
        asyncio.run(uploads.create_ticket(asgi_request("POST", "/", body), "k"))
    )
    assert ticket["type"] == "image" and ticket["size"] == 1000
    assert ticket["upload"]["method"] == "PUT"
    assert ticket["upload"]["url"] == ticket["download_url"]
    upload_id = ticket["download_url"].split("/uploads/")[1].split("/")[0]
    assert uploads.uploads.ticket(upload_id) is not None


def test_a_declared_size_over_the_limit_is_413(tmp_path: Path) -> None:
    uploads = handlers(tmp_path)
    body = {"filename": "big.mp4", "size": uploads.limit + 1}
    with pytest.raises(ApiError) as refused:
        asyncio.run(uploads.create_ticket(asgi_request("POST", "/", body), "k"))
    assert refused.value.status == 413 and "a declared size" in str(refused.value)
