"""What changed between two backups: items added, removed, and changed in the fields people
track (status, current value, dates, assignee, name).

A backup is compared only as it was written: its items.json.gz must lie inside the backup
folder (the manifest names it by a key under ``backups/``), match the SHA-256 and size its
manifest records, and be a JSON list of items (objects). It is read item by item, with
bounds on an item's size, on white space and on nesting, so that a damaged or planted file
fails with its reason instead of filling the memory.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from achieveit_sync import exact_json
from achieveit_sync.backup.documents import (
    BackupManifest,
    DocumentError,
    LatestPointer,
    StoredFile,
)
from achieveit_sync.backup.targets import MAX_DOCUMENT_BYTES
from achieveit_sync.errors import AchieveItSyncError

TRACKED_FIELDS = ("name", "statusName", "currentValue", "start", "due", "assignedToFullName")
MAX_ITEM_CHARS = 64 * 1024 * 1024
"""The largest item read (an export page, hence any item, is at most 32 MB)."""
MAX_WHITE_SPACE = 64 * 1024
"""The most white space read in a row (achieveit-sync writes a line break between items)."""
_CHUNK = 1024 * 1024


class BackupNotFoundError(AchieveItSyncError):
    """A location that names no backup (no manifest there, not a manifest)."""


class DamagedBackupError(AchieveItSyncError):
    """A backup whose data is not what its manifest records, or not a list of items."""


@dataclass
class BackupDiff:
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed}

    def as_text(self) -> str:
        lines = [
            f"{len(self.added)} added, {len(self.removed)} removed, {len(self.changed)} changed"
        ]
        lines += [f"+ {_label(item)}" for item in self.added]
        lines += [f"- {_label(item)}" for item in self.removed]
        for change in self.changed:
            details = ", ".join(
                f"{name}: {old!r} -> {new!r}" for name, (old, new) in change["changes"].items()
            )
            lines.append(f"~ {_label(change)}: {details}")
        return "\n".join(lines) + "\n"


def diff_backups(before: str, after: str) -> BackupDiff:
    """Compare two backups, each named by its manifest or its folder (local paths)."""
    old = dict(_items_by_id(before))
    result = BackupDiff()
    seen: set[str] = set()
    for item_id, item in _items_by_id(after):
        seen.add(item_id)
        previous = old.get(item_id)
        if previous is None:
            result.added.append(_summary(item))
            continue
        changes = {
            name: [previous.get(name), item.get(name)]
            for name in TRACKED_FIELDS
            if previous.get(name) != item.get(name)
        }
        if changes:
            result.changed.append({**_summary(item), "changes": changes})
    result.removed = [_summary(item) for item_id, item in old.items() if item_id not in seen]
    return result


def _items_by_id(location: str) -> Iterator[tuple[str, dict[str, Any]]]:
    manifest_path, manifest = _manifest(Path(location))
    root = Path(str(manifest_path).removesuffix(manifest.manifest_key))
    described = manifest.files["items.json.gz"]
    segments = described.key.split("/")
    if segments[0] != "backups" or any(s in ("", ".", "..") or "\\" in s for s in segments):
        raise DamagedBackupError(
            f"{manifest_path} names items.json.gz at {described.key[:200]!a}, outside the "
            "backup folder; a manifest written by achieveit-sync never does: it was altered"
        )
    items_file = root.joinpath(*segments)
    if not items_file.is_file():
        raise BackupNotFoundError(f"the manifest names {items_file}, which does not exist")
    _check_digest(items_file, described)
    limit = manifest.item_count
    try:
        with gzip.open(items_file, "rt", encoding="utf-8") as handle:
            for count, item in enumerate(_ItemReader(handle, items_file).items(), 1):
                if count > limit:
                    raise DamagedBackupError(
                        f"{items_file} holds more items than the {limit:,} its manifest records"
                    )
                yield str(item.get("id")), item
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise DamagedBackupError(f"{items_file} cannot be read ({exc})") from None


def _check_digest(path: Path, described: StoredFile) -> None:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    if (digest.hexdigest(), size) != (described.sha256, described.size):
        raise DamagedBackupError(
            f"{path} does not match the SHA-256 and size its manifest records: it was altered "
            "or damaged after the backup was written, so it is not compared; restore it from "
            "the bucket, or compare another backup"
        )


class _ItemReader:
    """A JSON list of objects read one object at a time (numbers kept exactly)."""

    def __init__(self, handle: IO[str], path: Path) -> None:
        self._handle = handle
        self._path = path
        self._buffer = ""
        self._eof = False

    def items(self) -> Iterator[dict[str, Any]]:
        self._skip_space()
        if not self._take("["):
            raise self._not_items("it does not start with '['")
        self._skip_space()
        if self._take("]"):
            return self._end()
        number = 0
        while True:
            number += 1
            yield self._object(number)
            self._skip_space()
            if self._take("]"):
                return self._end()
            if not self._take(","):
                raise self._not_items(f"no ',' or ']' after item {number}")
            self._skip_space()

    def _end(self) -> None:
        self._skip_space()
        if self._buffer:
            raise self._not_items("there is more after the list")

    def _object(self, number: int) -> dict[str, Any]:
        if not self._buffer.startswith("{"):
            raise self._not_items(f"element {number} is not an item (a JSON object)")
        while True:
            try:
                value, end = exact_json.DECODER.raw_decode(self._buffer)
            except RecursionError:
                raise self._not_items(f"item {number} is nested too deeply") from None
            except json.JSONDecodeError as exc:
                if self._eof:
                    raise self._not_items(f"item {number} is not JSON ({exc.msg})") from None
                if len(self._buffer) > MAX_ITEM_CHARS:
                    raise self._not_items(
                        f"item {number} is larger than {MAX_ITEM_CHARS:,} characters"
                    ) from None
                self._more(max(_CHUNK, len(self._buffer)))  # doubling: read once, not n²
                continue
            self._buffer = self._buffer[end:]
            return dict(value)

    def _skip_space(self) -> None:
        skipped = 0
        while True:
            rest = self._buffer.lstrip(" \t\r\n")
            skipped += len(self._buffer) - len(rest)
            self._buffer = rest
            if skipped > MAX_WHITE_SPACE:
                raise self._not_items(
                    f"more than {MAX_WHITE_SPACE:,} characters of white space in a row "
                    "(achieveit-sync never writes that; a decompression bomb?)"
                )
            if rest or not self._more(_CHUNK):
                return

    def _take(self, char: str) -> bool:
        if not self._buffer and not self._eof:
            self._more(_CHUNK)
        if self._buffer.startswith(char):
            self._buffer = self._buffer[1:]
            return True
        return False

    def _more(self, size: int) -> bool:
        chunk = self._handle.read(size)
        if not chunk:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    def _not_items(self, why: str) -> DamagedBackupError:
        return DamagedBackupError(
            f"{self._path} is not a list of items as achieveit-sync writes it: {why}"
        )


def _manifest(path: Path) -> tuple[Path, BackupManifest]:
    """The manifest a location names: a backup folder, its manifest.json, or a plan's
    latest.json (which names the newest complete backup's manifest)."""
    if path.is_dir():
        path = path / "manifest.json"
    document = _json(path)
    if "manifestKey" in document:
        return path, _typed_manifest(path, document)
    if isinstance(document.get("manifest"), str) and path.name == "latest.json":
        # latest.json sits at backups/<plan>/latest.json; keys start at the layout's root.
        try:
            pointer = LatestPointer.from_json(document, path.parent.name)
        except DocumentError as exc:
            raise DamagedBackupError(f"{path} is not followed: {exc}") from None
        manifest_path = path.parent.parent.parent / pointer.manifest
        return manifest_path, _typed_manifest(manifest_path, _json(manifest_path))
    raise BackupNotFoundError(
        f"{path} is neither a backup's manifest.json nor a plan's latest.json"
    )


def _typed_manifest(path: Path, document: dict[str, Any]) -> BackupManifest:
    """``document`` read as a manifest that names its items.json.gz."""
    files = document.get("files")
    if not isinstance(files, dict) or "items.json.gz" not in files:
        raise BackupNotFoundError(f"{path} names no items.json.gz")
    try:
        return BackupManifest.from_json(document)
    except DocumentError as exc:
        raise DamagedBackupError(f"{path}: {exc}") from None


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BackupNotFoundError(f"no backup manifest at {path}")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise BackupNotFoundError(f"{path} cannot be read ({exc})") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise BackupNotFoundError(
            f"{path} is not a backup manifest (larger than {MAX_DOCUMENT_BYTES:,} bytes)"
        )
    try:
        document = json.loads(data)
    except RecursionError:
        raise BackupNotFoundError(f"{path} is not a backup manifest (nested too deeply)") from None
    except ValueError as exc:
        raise BackupNotFoundError(f"{path} cannot be read as JSON ({exc})") from None
    if not isinstance(document, dict):
        raise BackupNotFoundError(f"{path} is not a backup manifest (not a JSON object)")
    return document


def _summary(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item.get("id"),
        "externalId": item.get("externalId"),
        "sequenceId": item.get("sequenceId"),
        "name": item.get("name"),
    }


def _label(item: dict[str, Any]) -> str:
    return f"{item.get('sequenceId') or '?'} {item.get('name') or ''} ({item.get('id')})"
