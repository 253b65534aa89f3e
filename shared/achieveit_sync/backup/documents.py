"""The backup's documents, typed: a backup's ``manifest.json``, a plan's ``latest.json``, and
the status of a plan's backup. Writer (``run``) and readers (``diff``, ``status``, ``smoke``,
the unchanged-plan check) share these classes, so a field is named in one place.

Reading is strict where a document decides what is pointed at: ``LatestPointer.from_json``
refuses a pointer naming anything outside its own plan's backups, so an edited or damaged
``latest.json`` is never followed (the plan is then backed up from scratch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from achieveit_sync.errors import AchieveItSyncError

BACKUPS_PREFIX = "backups/"
"""Where backups live, relative to the bucket or ``--out DIR``: ``backups/<plan>/...``."""
MANIFEST_VERSION = 1
"""Bumped when a field changes meaning; readers accept every version up to this one."""
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DocumentError(AchieveItSyncError):
    """A document that is not what its name says (damaged, or not written by us)."""


class PlanStatus(StrEnum):
    COMPLETE = "complete"
    """Exported whole and stored."""
    UNCHANGED = "unchanged"
    """Exported whole; same content as the latest backup, whose data it points at."""
    INCOMPLETE = "incomplete"
    """Stored, but not provably whole: ``latest.json`` not moved."""
    FAILED = "failed"
    """Not backed up (the API refused or failed, an invalid plan id, an error)."""

    @property
    def succeeded(self) -> bool:
        return self in (PlanStatus.COMPLETE, PlanStatus.UNCHANGED)


@dataclass(frozen=True)
class StoredFile:
    key: str
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "sha256": self.sha256, "bytes": self.size}

    @classmethod
    def from_json(cls, document: object) -> StoredFile:
        if not isinstance(document, dict):
            raise DocumentError("a file entry is not an object")
        key, digest, size = document.get("key"), document.get("sha256"), document.get("bytes")
        if not isinstance(key, str) or not key:
            raise DocumentError("a file entry has no key")
        if not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
            raise DocumentError(f"{key}: its sha256 is not a SHA-256")
        if type(size) is not int or size < 0:
            raise DocumentError(f"{key}: its size is not a number of bytes")
        return cls(key, digest, size)


def _files_json(files: dict[str, StoredFile]) -> dict[str, Any]:
    return {name: stored.to_json() for name, stored in files.items()}


def _files_from(document: object) -> dict[str, StoredFile]:
    if not isinstance(document, dict):
        raise DocumentError("'files' is not an object")
    return {str(name): StoredFile.from_json(entry) for name, entry in document.items()}


@dataclass
class BackupManifest:
    """``backups/<plan>/<date>/<time>/manifest.json``: what was exported, when, from where,
    the files with their checksums, and the verdict on completeness."""

    plan_id: str
    manifest_key: str
    started_at: str
    finished_at: str
    time_zone: str
    started_at_local: str
    api_base_url: str
    item_count: int
    total_count: int | None
    pages_fetched: int
    content_sha256: str
    files: dict[str, StoredFile]
    complete: bool
    attempts: list[dict[str, Any]] = field(default_factory=list)
    unchanged: bool = False
    data_from: str | None = None
    """An unchanged backup: the manifest whose backup stored ``files``."""
    previous_backup: str | None = None
    warnings: list[str] = field(default_factory=list)
    manifest_version: int = MANIFEST_VERSION

    @property
    def status(self) -> PlanStatus:
        if not self.complete:
            return PlanStatus.INCOMPLETE
        return PlanStatus.UNCHANGED if self.unchanged else PlanStatus.COMPLETE

    def to_json(self) -> dict[str, Any]:
        return {
            "manifestVersion": self.manifest_version,
            "planId": self.plan_id,
            "manifestKey": self.manifest_key,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "timeZone": self.time_zone,
            "startedAtLocal": self.started_at_local,
            "apiBaseUrl": self.api_base_url,
            "itemCount": self.item_count,
            "totalCount": self.total_count,
            "pagesFetched": self.pages_fetched,
            "contentSha256": self.content_sha256,
            "files": _files_json(self.files),
            "complete": self.complete,
            "completeness": {
                "verdict": "complete" if self.complete else "INCOMPLETE",
                "attempts": self.attempts,
            },
            "unchanged": self.unchanged,
            "dataFrom": self.data_from,
            "previousBackup": self.previous_backup,
            "warnings": self.warnings,
        }

    @classmethod
    def from_json(cls, document: object) -> BackupManifest:
        if not isinstance(document, dict) or "manifestKey" not in document:
            raise DocumentError("not a backup manifest (no manifestKey)")
        version = document.get("manifestVersion", 1)
        if type(version) is not int or version > MANIFEST_VERSION:
            raise DocumentError(
                f"manifest version {version!r}: written by a newer achieveit-sync; upgrade"
            )
        try:
            return cls(
                plan_id=str(document["planId"]),
                manifest_key=str(document["manifestKey"]),
                started_at=str(document.get("startedAt", "")),
                finished_at=str(document.get("finishedAt", "")),
                time_zone=str(document.get("timeZone", "UTC")),
                started_at_local=str(document.get("startedAtLocal", "")),
                api_base_url=str(document.get("apiBaseUrl", "")),
                item_count=int(document.get("itemCount", 0)),
                total_count=document.get("totalCount"),
                pages_fetched=int(document.get("pagesFetched", 0)),
                content_sha256=str(document.get("contentSha256", "")),
                files=_files_from(document.get("files", {})),
                complete=bool(document.get("complete")),
                attempts=list((document.get("completeness") or {}).get("attempts", [])),
                unchanged=bool(document.get("unchanged")),
                data_from=document.get("dataFrom"),
                previous_backup=document.get("previousBackup"),
                warnings=[str(w) for w in document.get("warnings", [])],
                manifest_version=version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DocumentError(f"not a backup manifest ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class ManifestRun:
    """What ``status`` shows of a plan's newest run: when it started, and whether its
    manifest says it is complete. Read leniently (these two fields only), where
    ``BackupManifest.from_json`` refuses a manifest lacking any field it needs: status
    shows what it can of the newest run, whatever else its manifest holds or lacks."""

    started_at: str
    complete: bool

    @classmethod
    def from_json(cls, document: object) -> ManifestRun:
        if not isinstance(document, dict):
            raise DocumentError("not a backup manifest (not a JSON object)")
        return cls(str(document.get("startedAt")), bool(document.get("complete")))


@dataclass(frozen=True)
class LatestPointer:
    """``backups/<plan>/latest.json``: the newest complete backup of a plan, written last."""

    plan_id: str
    manifest: str
    completed_at: str
    item_count: int
    content_sha256: str
    files: dict[str, StoredFile]
    data_from: str
    """The manifest whose backup stored ``files`` (``manifest`` itself unless unchanged)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "planId": self.plan_id,
            "manifest": self.manifest,
            "completedAt": self.completed_at,
            "itemCount": self.item_count,
            "contentSha256": self.content_sha256,
            "files": _files_json(self.files),
            "dataFrom": None if self.data_from == self.manifest else self.data_from,
        }

    @classmethod
    def from_json(cls, document: object, plan_id: str) -> LatestPointer:
        """The pointer, if it points at this plan's own backups only (a pointer edited to
        name other data, another plan's or a path that climbs, is not followed)."""
        if not isinstance(document, dict) or document.get("planId", plan_id) != plan_id:
            raise DocumentError(f"not the latest.json of plan {plan_id}")
        mine = plan_prefix(plan_id)

        def own(value: object, what: str) -> str:
            if not (isinstance(value, str) and value.startswith(mine) and ".." not in value):
                raise DocumentError(f"its {what} is not one of plan {plan_id}'s backups")
            return value

        def a_manifest(value: object, what: str) -> str:
            key = own(value, what)
            if not key.endswith("/manifest.json") or key.count("/") < 3:
                raise DocumentError(f"its {what} ({key[:200]!a}) is not a backup's manifest.json")
            return key

        manifest = a_manifest(document.get("manifest"), "manifest")
        data_from = a_manifest(document.get("dataFrom") or manifest, "dataFrom")
        digest = document.get("contentSha256")
        if not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
            raise DocumentError("its contentSha256 is not a SHA-256")
        files = _files_from(document.get("files"))
        if not files:
            raise DocumentError("it names no files")
        for stored in files.values():
            own(stored.key, "file")
        count = document.get("itemCount", 0)
        return cls(
            plan_id=plan_id,
            manifest=manifest,
            completed_at=str(document.get("completedAt", "")),
            item_count=count if type(count) is int else 0,
            content_sha256=digest,
            files=files,
            data_from=data_from,
        )


def plan_prefix(plan_id: str) -> str:
    """``backups/<plan>/``: everything backed up of one plan."""
    return f"{BACKUPS_PREFIX}{plan_id}/"


def backup_prefix(plan_id: str, started: datetime) -> str:
    """``backups/<plan>/<YYYY>/<MM>/<DD>/<timestamp>/``: one backup's folder (microseconds:
    an on-demand run and the schedule in the same second must not collide)."""
    return f"{plan_prefix(plan_id)}{started:%Y/%m/%d}/{started:%Y%m%dT%H%M%S.%fZ}/"


def latest_key(plan_id: str) -> str:
    return f"{plan_prefix(plan_id)}latest.json"
