"""The image loader with an object store (``--outputs``), no server."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
from wavespeed_mock.mock_server.core.engine import INTERNAL_ERROR, RenderFailed
from wavespeed_mock.mock_server.core.images import ImageLoader
from wavespeed_mock.mock_server.core.objects import ObjectStoreError


class DownStore:
    """A bucket that cannot answer."""

    shared = True

    def put(self, key: str, path: Path) -> None:
        raise ObjectStoreError(f"cannot keep {key}: unreachable")

    def get(self, key: str, path: Path) -> bool:
        raise ObjectStoreError(f"cannot read {key}: unreachable")

    def copy(self, source: str, key: str) -> bool:
        raise ObjectStoreError("unreachable")

    def delete(self, keys: Iterable[str]) -> None:
        raise ObjectStoreError("unreachable")

    def clear(self) -> None:
        raise ObjectStoreError("unreachable")

    def presigned(self, key: str, expires_s: float) -> str | None:
        raise ObjectStoreError("unreachable")


def test_a_bucket_that_cannot_answer_is_the_server_s_error_not_the_image_s(
    tmp_path: Path,
) -> None:
    """An image kept on another machine, with the bucket down: the render
    fails with the server's code (5000), not 1402, which tells the client its
    image is unusable."""
    images = ImageLoader(
        data_dir=tmp_path, base_url="http://127.0.0.1:8000", fetcher=None,
        max_pixels=10**7, objects=DownStore(),
    )  # fmt: skip
    with pytest.raises(RenderFailed) as failed:
        images.load("data:image/png;base64,AAAA", "d" * 64)
    assert failed.value.code == INTERNAL_ERROR
    assert "object store" in str(failed.value)
