"""Where backups are written: an S3 bucket and prefix (the Lambda, ``--out s3://...``) or a
local folder (``--out DIR``). Both take the same relative keys, so the layout is one.

A local folder refuses any key that could leave it (``..``, an empty or absolute segment),
whatever built the key, and any folder under it that is a symbolic link (one planted in
``backups/`` would take the backup elsewhere): output stays inside ``--out DIR``. A file
that is a symbolic link is replaced, never written through.

Documents (``latest.json``, manifests) are read only up to ``MAX_DOCUMENT_BYTES``: a
damaged or planted one cannot fill the memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from achieveit_sync.errors import ConfigurationError
from achieveit_sync.storage import (
    ObjectGoneError,
    ObjectRef,
    ObjectTooLargeError,
    S3Storage,
    default_storage,
    parse_s3_location,
)

_READ_CHUNK = 1024 * 1024
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""The largest ``latest.json`` or manifest read (ours are a few KB; a manifest lists each
export attempt's problems, which are short)."""


@dataclass(frozen=True)
class InspectedFile:
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

    def read_json(self, key: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any | None:
        """The JSON at ``key``, or ``None`` when there is none; ``ObjectTooLargeError`` when
        it is larger than ``max_bytes``."""
        ...

    def inspect_file(self, key: str) -> InspectedFile | None:
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

    def read_json(self, key: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any | None:
        try:
            data = self._storage.get_bytes(self._bucket, self._prefix + key, max_bytes=max_bytes)
        except ObjectGoneError:
            return None
        return json.loads(data)

    def inspect_file(self, key: str) -> InspectedFile | None:
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
        return InspectedFile(sha256, size, head["LastModified"])


class LocalTarget:
    def __init__(self, root: Path) -> None:
        self._root = root

    def describe(self, key: str) -> str:
        return str(self._root / key)

    def write_file(self, key: str, body: IO[bytes], content_type: str) -> None:
        with self._partial(key) as handle:
            shutil.copyfileobj(body, handle)

    def write_json(self, key: str, document: Any) -> None:
        with self._partial(key) as handle:
            handle.write(_json_bytes(document))

    def read_json(self, key: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any | None:
        path = self._inside(key, reading=True)
        if not path.is_file():
            return None
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ObjectTooLargeError(
                f"{path} is more than the {max_bytes:,} bytes such a document may be"
            )
        return json.loads(data)

    def inspect_file(self, key: str) -> InspectedFile | None:
        path = self._inside(key, reading=True)
        if not path.is_file():
            return None
        with path.open("rb") as handle:
            sha256, size = _digest(handle)
        return InspectedFile(sha256, size, datetime.fromtimestamp(path.stat().st_mtime, UTC))

    @contextlib.contextmanager
    def _partial(self, key: str) -> Iterator[IO[bytes]]:
        """A new file ``<key>.partial`` to write, renamed to ``key`` once written whole (a
        link at ``key`` is replaced, not followed); removed if writing fails (a full disk)."""
        path = self._inside(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.unlink(missing_ok=True)  # left by a killed run, or a planted link
        try:
            with partial.open("xb") as handle:
                yield handle
            partial.replace(path)  # never a half-written file under the real name
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def _inside(self, key: str, *, reading: bool = False) -> Path:
        """``key`` under the root folder, or an error if it could lead anywhere else: a
        segment that climbs (``ValueError``), or a folder on the way that is a symbolic link
        (``ConfigurationError``; when ``reading``, the file itself too)."""
        segments = key.split("/")
        if any(s in ("", ".", "..") or "\\" in s or ":" in s or "\0" in s for s in segments):
            raise ValueError(
                f"refusing to write {key!r} under {self._root}: a backup key must stay inside "
                "the output folder"
            )
        path = self._root
        for index, segment in enumerate(segments):
            path = path / segment
            if (reading or index < len(segments) - 1) and path.is_symlink():
                raise ConfigurationError(
                    f"{path} is a symbolic link (to {_link_target(path)}); backups never "
                    "leave the output folder, so nothing is written through it: remove the "
                    "link, or give the folder it points to as --out"
                )
        return path


def _link_target(path: Path) -> str:
    try:
        return str(path.readlink())
    except OSError:
        return "?"


def target_for(destination: str, storage_factory: Any = None) -> BackupTarget:
    """``s3://bucket/prefix`` or a folder path; ``ConfigurationError`` for an empty one (an
    unset variable) or one that looks like S3 but is not ``s3://`` (a typo would otherwise
    be a local folder named ``S3:``)."""
    if not destination.strip():
        raise ConfigurationError(
            "--out is empty (an unset variable?): give a folder, or s3://bucket/prefix"
        )
    if destination.lower().startswith("s3:") and not destination.startswith("s3://"):
        raise ConfigurationError(
            f"--out {destination!r} looks like an S3 location but is not one: write it "
            "s3://bucket/prefix (lower-case s3, two slashes), or ./ before a folder of that name"
        )
    if destination.startswith("s3://"):
        bucket, prefix = parse_s3_location(destination)
        if not bucket:
            raise ConfigurationError(
                f"--out {destination!r} names no bucket: write it s3://bucket/prefix"
            )
        storage = (storage_factory or default_storage)()
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
