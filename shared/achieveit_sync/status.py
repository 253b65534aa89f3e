"""What happened lately: the last files handled (from their reports) and each plan's backups
(from ``latest.json`` and the newest manifest), read from the drop and backups buckets or
from local folders of the same layout (``achieveit-sync export --out DIR``, the demo's
``.demo/s3/<bucket>``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from achieveit_sync.backup.documents import BACKUPS_PREFIX, LatestPointer, ManifestRun, latest_key
from achieveit_sync.backup.targets import MAX_DOCUMENT_BYTES
from achieveit_sync.errors import AchieveItSyncError, ConfigurationError
from achieveit_sync.formatting import describe_error, iso_utc
from achieveit_sync.ingest.outputs import REPORTS_PREFIX
from achieveit_sync.ingest.report import StoredReport
from achieveit_sync.storage import (
    ObjectTooLargeError,
    S3Storage,
    default_storage,
    parse_s3_location,
)


class Place(Protocol):
    """A bucket (and prefix) or a local folder, read by relative keys."""

    def describe(self, key: str) -> str: ...

    def keys(self, prefix: str) -> Iterator[tuple[str, datetime]]: ...

    def read_json(self, key: str) -> Any:
        """The JSON at ``key`` (at most ``MAX_DOCUMENT_BYTES``)."""
        ...

    def exists(self, key: str) -> bool: ...


@dataclass(frozen=True)
class S3Place:
    storage: S3Storage
    bucket: str
    prefix: str = ""

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def keys(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        for key, modified in self.storage.list_keys(self.bucket, self.prefix + prefix):
            yield key.removeprefix(self.prefix), modified

    def read_json(self, key: str) -> Any:
        return json.loads(
            self.storage.get_bytes(self.bucket, self.prefix + key, max_bytes=MAX_DOCUMENT_BYTES)
        )

    def exists(self, key: str) -> bool:
        return self.storage.exists(self.bucket, self.prefix + key)


@dataclass(frozen=True)
class LocalPlace:
    root: Path

    def describe(self, key: str) -> str:
        return str(self.root / key)

    def keys(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        base = self.root / prefix
        if not base.is_dir():
            return
        for path in base.rglob("*"):
            if path.is_file() and not path.name.endswith(".partial"):
                modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                yield path.relative_to(self.root).as_posix(), modified

    def read_json(self, key: str) -> Any:
        with (self.root / key).open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
        if len(data) > MAX_DOCUMENT_BYTES:
            raise ObjectTooLargeError(f"larger than {MAX_DOCUMENT_BYTES:,} bytes")
        return json.loads(data)

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()


def place_for(location: str, storage_factory: Any = None) -> Place:
    """``s3://bucket[/prefix]`` or a folder path (``ConfigurationError`` when that is not
    a folder: a typo must not look like a place with nothing in it)."""
    if location.startswith("s3://"):
        bucket, prefix = parse_s3_location(location)
        storage = (storage_factory or default_storage)()
        return S3Place(storage, bucket, prefix)
    if not Path(location).is_dir():
        what = "does not exist" if not Path(location).exists() else "is not a folder"
        raise ConfigurationError(
            f"{location!r} {what}: give the folder an export wrote (its --out), the drop "
            "folder, or a bucket as s3://bucket"
        )
    return LocalPlace(Path(location))


@dataclass(frozen=True)
class FileLine:
    file: str
    status: str
    published: int
    rejected: int
    ambiguous: int
    not_sent: int
    when: str
    report: str
    headline: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "status": self.status,
            "published": self.published,
            "rejected": self.rejected,
            "ambiguous": self.ambiguous,
            "notSent": self.not_sent,
            "when": self.when,
            "report": self.report,
            "headline": self.headline,
        }


@dataclass(frozen=True)
class PlanLine:
    plan_id: str
    last_complete: str | None
    age_hours: float | None
    items: int | None
    newest_run: str | None
    newest_complete: bool | None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "planId": self.plan_id,
            "lastComplete": self.last_complete,
            "ageHours": self.age_hours,
            "items": self.items,
            "newestRun": self.newest_run,
            "newestRunComplete": self.newest_complete,
            "problem": self.problem,
        }


def recent_files(place: Place, last: int) -> list[FileLine]:
    """The ``last`` files whose reports were written most recently, newest first."""
    reports = sorted(
        (item for item in place.keys(REPORTS_PREFIX) if item[0].endswith(".json")),
        key=lambda item: item[1],
        reverse=True,
    )[:last]
    lines = []
    for key, modified in reports:
        try:
            report = StoredReport.from_dict(place.read_json(key))
            lines.append(
                FileLine(
                    file=report.source or key,
                    status=str(report.status),
                    published=report.counts.published,
                    rejected=report.counts.rejected,
                    ambiguous=report.counts.ambiguous,
                    not_sent=report.counts.not_sent,
                    when=report.finished_at or iso_utc(modified),
                    report=place.describe(key),
                    headline=report.headline,
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            lines.append(
                FileLine(
                    key, "unreadable", 0, 0, 0, 0, iso_utc(modified), place.describe(key), str(exc)
                )
            )
    return lines


def plan_backups(place: Place, now: datetime) -> list[PlanLine]:
    """One line per plan found under ``backups/``: its newest complete backup (from
    ``latest.json``) and whether the newest run was complete."""
    manifests: dict[str, str] = {}
    latest: set[str] = set()
    for key, _ in place.keys(BACKUPS_PREFIX):
        parts = key.split("/")
        if len(parts) < 3:
            continue
        plan_id = parts[1]
        if key.endswith("/latest.json"):
            latest.add(plan_id)
        elif key.endswith("/manifest.json"):
            manifests[plan_id] = max(manifests.get(plan_id, ""), key)  # keys sort by time
    lines = []
    for plan_id in sorted(latest | set(manifests)):
        lines.append(_plan_line(place, plan_id, plan_id in latest, manifests.get(plan_id), now))
    return lines


def _plan_line(
    place: Place, plan_id: str, has_latest: bool, manifest_key: str | None, now: datetime
) -> PlanLine:
    last_complete = items = age = None
    problem = None
    if has_latest:
        try:
            pointer = LatestPointer.from_json(place.read_json(latest_key(plan_id)), plan_id)
            when = datetime.fromisoformat(pointer.completed_at.replace("Z", "+00:00"))
            missing = [
                key
                for key in (pointer.manifest, *(f.key for f in pointer.files.values()))
                if not place.exists(key)
            ]
        except _UNREADABLE as exc:
            problem = f"latest.json unreadable ({describe_error(exc, limit=200, with_type=False)})"
        else:
            last_complete, items = pointer.completed_at, pointer.item_count
            age = round((now - when).total_seconds() / 3600, 1)
            if missing:
                problem = f"latest.json names missing data: {', '.join(missing)}"
    newest_run = newest_complete = None
    if manifest_key is not None:
        try:
            run = ManifestRun.from_json(place.read_json(manifest_key))
            newest_run, newest_complete = run.started_at, run.complete
        except _UNREADABLE as exc:
            problem = (
                problem
                or f"newest manifest unreadable ({describe_error(exc, limit=200, with_type=False)})"
            )
    return PlanLine(plan_id, last_complete, age, items, newest_run, newest_complete, problem)


_UNREADABLE = (
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    RecursionError,
    OSError,
    AchieveItSyncError,
)
"""What a damaged document (or the reading of one) can raise: that plan's problem alone."""
