"""Where output, upload and input files live past this machine: an object store.

The data folder is always where a server writes and reads its files (ffmpeg
writes there; downloads, with their ranges, are served from there). By
default that is all (:class:`LocalFiles`): one machine, or replicas on a shared
mount. With ``--outputs s3://bucket/prefix`` (:class:`S3Objects`, through
boto3) every file a server finishes (a task's outputs, an upload, a kept
``data:`` image) is also put in the bucket, under its path in the data folder,
before the state that names it is stored; a server that lacks such a file (a
replica on another machine) gets it from the bucket before it would make it
again; retention and resets delete it there too. So replicas with data folders
of their own answer as one mock.

Keys are the files' paths relative to the data folder (``outputs/<name>``,
``uploads/<id>/<filename>``, ``inputs/<digest>.img``) under the URL's prefix,
and the render cache's clips (``cache/<key>.<suffix>``, media/cache.py: made
once for every machine; a task's output is copied from there in the bucket).
Every call blocks: callers run them off the event loop.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from ...contracts.errors import WavespeedMockError
from ..settings import SettingsError

__all__ = ["LocalFiles", "ObjectStore", "ObjectStoreError", "S3Objects", "open_objects"]

MAX_OBJECT_BYTES = 2 * 1024**3
"""The largest object a server gets back from the bucket (a bound, not a tuning)."""


class ObjectStoreError(WavespeedMockError, OSError):
    """The object store could not keep or give back a file."""


class ObjectStore(Protocol):
    shared: bool
    """Whether files put here reach other machines (False: the data folder only)."""

    def put(self, key: str, path: Path) -> None:
        """Keep the finished file ``path`` under ``key``."""
        ...

    def get(self, key: str, path: Path) -> bool:
        """Bring ``key`` to ``path`` (atomically) if it is kept; whether it was."""
        ...

    def copy(self, source: str, key: str) -> bool:
        """Keep the object ``source`` under ``key`` too, in the store itself (no
        bytes through this process); whether ``source`` was there."""
        ...

    def delete(self, keys: Iterable[str]) -> None: ...

    def clear(self) -> None:
        """Delete every object this server keeps (a reset), the render cache
        (``cache/``, content-keyed: never stale) excepted."""
        ...

    def presigned(self, key: str, expires_s: float) -> str | None:
        """A URL that downloads ``key`` without credentials for ``expires_s``
        (None: this store hands out none)."""
        ...


class LocalFiles:
    """The data folder only: nothing to put, get or delete elsewhere."""

    shared = False

    def put(self, key: str, path: Path) -> None:
        return None

    def get(self, key: str, path: Path) -> bool:
        return False

    def copy(self, source: str, key: str) -> bool:
        return False

    def delete(self, keys: Iterable[str]) -> None:
        return None

    def clear(self) -> None:
        return None

    def presigned(self, key: str, expires_s: float) -> str | None:
        return None


class S3Objects:
    """An S3-compatible bucket (AWS S3, MinIO, moto), through boto3.

    Credentials and the region come from boto3's own chain (``AWS_*``
    variables, ``~/.aws``); ``endpoint`` names a store other than AWS's.
    """

    shared = True

    def __init__(self, url: str, *, endpoint: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise SettingsError(
                f"--outputs takes s3://bucket/prefix, not {url!r} (docs/scale-out.md)"
            )
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise SettingsError(
                "--outputs s3://... needs boto3: pip install 'wavespeed-mock[s3]'"
            ) from None
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/") + "/" if parts.path.strip("/") else ""
        self._errors = (BotoCoreError, ClientError)
        session = boto3.session.Session()  # boto3's chain: variables, ~/.aws
        self._client: Any = session.client(
            "s3",
            endpoint_url=endpoint,
            region_name=session.region_name or "us-east-1",
            config=Config(
                connect_timeout=10, read_timeout=60, retries={"max_attempts": 3}
            ),
        )
        self.url = f"s3://{self.bucket}/{self.prefix}"

    def put(self, key: str, path: Path) -> None:
        try:
            self._client.upload_file(str(path), self.bucket, self.prefix + key)
        except (*self._errors, OSError) as exc:
            raise ObjectStoreError(f"cannot keep {key} in {self.url}: {exc}") from exc

    def get(self, key: str, path: Path) -> bool:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except self._errors as exc:
            if _not_found(exc):
                return False
            raise ObjectStoreError(f"cannot read {key} in {self.url}: {exc}") from exc
        if int(head.get("ContentLength", 0)) > MAX_OBJECT_BYTES:
            raise ObjectStoreError(
                f"{key} in {self.url} is larger than {MAX_OBJECT_BYTES} bytes"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".part"
        )
        os.close(handle)
        try:
            self._client.download_file(self.bucket, self.prefix + key, temp)
            os.replace(temp, path)
        except (*self._errors, OSError) as exc:
            raise ObjectStoreError(f"cannot read {key} in {self.url}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        return True

    def copy(self, source: str, key: str) -> bool:
        try:
            self._client.copy_object(
                Bucket=self.bucket,
                Key=self.prefix + key,
                CopySource={"Bucket": self.bucket, "Key": self.prefix + source},
            )
        except self._errors as exc:
            if _not_found(exc):
                return False
            raise ObjectStoreError(
                f"cannot copy {source} in {self.url}: {exc}"
            ) from exc
        return True

    def delete(self, keys: Iterable[str]) -> None:
        batch = [{"Key": self.prefix + key} for key in keys]
        try:
            for start in range(0, len(batch), 1000):  # S3's bound per request
                self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": batch[start : start + 1000], "Quiet": True},
                )
        except self._errors as exc:
            raise ObjectStoreError(f"cannot delete in {self.url}: {exc}") from exc

    def presigned(self, key: str, expires_s: float) -> str | None:
        """Signed here, with the credentials boto3 found: no request is made."""
        try:
            url: str = self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self.prefix + key},
                ExpiresIn=int(expires_s),
            )
        except self._errors as exc:  # no credentials to sign with, say
            raise ObjectStoreError(f"cannot sign a URL for {key}: {exc}") from exc
        return url

    def clear(self) -> None:
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            keys = [
                item["Key"][len(self.prefix) :]
                for page in pages
                for item in page.get("Contents", ())
                if not item["Key"].startswith(self.prefix + "cache/")
            ]
        except self._errors as exc:
            raise ObjectStoreError(f"cannot list {self.url}: {exc}") from exc
        self.delete(keys)


def _not_found(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


def open_objects(
    url: str | None,
    *,
    endpoint: str | None = None,
    presign_s: float = 0.0,
    lazy_renders: bool = False,
) -> ObjectStore:
    """The object store ``--outputs`` names (None: the data folder only)."""
    if presign_s and not url:
        raise SettingsError(
            "--presign hands out URLs of the bucket: add --outputs s3://..."
        )
    if presign_s and lazy_renders:
        raise SettingsError(
            "--presign needs every file in the bucket when its task completes; "
            "--lazy-renders makes clips on their first download: drop one"
        )
    if not url:
        return LocalFiles()
    return S3Objects(url, endpoint=endpoint)
