"""Where backups are written: an S3 bucket and prefix (the Lambda, ``--out s3://...``) or a
local folder (``--out DIR``). Both take the same relative keys, so the layout is one.

A local folder refuses any key that could leave it (``..``, an empty or absolute segment),
whatever built the key: output stays inside ``--out DIR``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from achieveit_sync.storage import ObjectGoneError, ObjectRef, S3Storage

_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredFile:
    """A stored file as it is now: its SHA-256 and size, read through, and when it was
    written (what a bucket's lifecycle rules count its age from)."""

    sha256: str
    size: int
    created: datetime


class BackupTarget(Protocol):
    def describe(self, key: str) -> str:
        """Where ``key`` lives, for messages and manifests (``s3://...`` or a path)."""
        ...

    def write_file(self, key: str, body: IO[bytes], content_type: str) -> None: ...

    def write_json(self, key: str, document: Any) -> None: ...

    def read_json(self, key: str) -> Any | None:
        """The JSON at ``key``, or ``None`` when there is none."""
        ...

    def inspect_file(self, key: str) -> StoredFile | None:
        """The file at ``key`` read through and hashed, or ``None`` when there is none."""
        ...


class S3Target:
    def __init__(self, storage: S3Storage, bucket: str, prefix: str = "") -> None:
        self._storage = storage
        self._bucket = bucket
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def describe(self, key: str) -> str:
        return f"s3://{self._bucket}/{self._prefix}{key}"

    def write_file(self, key: str, body: IO[bytes], content_type: str) -> None:
        self._storage.put_stream(self._bucket, self._prefix + key, body, content_type)

    def write_json(self, key: str, document: Any) -> None:
        self._storage.put_bytes(
            self._bucket, self._prefix + key, _json_bytes(document), "application/json"
        )

    def read_json(self, key: str) -> Any | None:
        try:
            return json.loads(self._storage.get_bytes(self._bucket, self._prefix + key))
        except ObjectGoneError:
            return None

    def inspect_file(self, key: str) -> StoredFile | None:
        try:
            head = self._storage.head(ObjectRef(self._bucket, self._prefix + key))
        except ObjectGoneError:
            return None
        # Read exactly the version whose date we have, should another be written meanwhile.
        stream = self._storage.open(
            ObjectRef(self._bucket, self._prefix + key, version_id=head.get("VersionId"))
        )
        try:
            sha256, size = _digest(stream)
        finally:
            getattr(stream, "close", lambda: None)()
        return StoredFile(sha256, size, head["LastModified"])


class LocalTarget:
    def __init__(self, root: Path) -> None:
        self._root = root

    def describe(self, key: str) -> str:
        return str(self._root / key)

    def write_file(self, key: str, body: IO[bytes], content_type: str) -> None:
        path = self._path(key)
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as handle:
            shutil.copyfileobj(body, handle)
        partial.replace(path)  # never a half-written file under the real name

    def write_json(self, key: str, document: Any) -> None:
        path = self._path(key)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(_json_bytes(document))
        partial.replace(path)

    def read_json(self, key: str) -> Any | None:
        path = self._inside(key)
        return json.loads(path.read_text("utf-8")) if path.is_file() else None

    def inspect_file(self, key: str) -> StoredFile | None:
        path = self._inside(key)
        if not path.is_file():
            return None
        with path.open("rb") as handle:
            sha256, size = _digest(handle)
        return StoredFile(sha256, size, datetime.fromtimestamp(path.stat().st_mtime, UTC))

    def _path(self, key: str) -> Path:
        path = self._inside(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _inside(self, key: str) -> Path:
        """``key`` under the root folder, or ``ValueError`` if it could lead anywhere else."""
        segments = key.split("/")
        if any(s in ("", ".", "..") or "\\" in s or ":" in s or "\0" in s for s in segments):
            raise ValueError(
                f"refusing to write {key!r} under {self._root}: a backup key must stay inside "
                "the output folder"
            )
        return self._root.joinpath(*segments)


def target_for(destination: str, storage_factory: Any = None) -> BackupTarget:
    """``s3://bucket/prefix`` or a folder path."""
    if destination.startswith("s3://"):
        bucket, _, prefix = destination.removeprefix("s3://").partition("/")
        if storage_factory is None:
            import boto3

            storage = S3Storage(boto3.client("s3"))
        else:
            storage = storage_factory()
        return S3Target(storage, bucket, prefix)
    return LocalTarget(Path(destination))


def _digest(stream: Any) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(_READ_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"
