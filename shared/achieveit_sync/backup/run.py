"""Backing up plans: export each, store it with a manifest, move ``latest.json`` last.

Layout (relative to the bucket, or to ``--out DIR``)::

    backups/<planId>/<YYYY>/<MM>/<DD>/<timestamp>/items.json.gz   the items as returned
    backups/<planId>/<YYYY>/<MM>/<DD>/<timestamp>/items.csv.gz    a flat table
    backups/<planId>/<YYYY>/<MM>/<DD>/<timestamp>/manifest.json   what, when, checksums, verdict
    backups/<planId>/latest.json                                  the newest complete backup
    templates/<planId>/progress-updates.csv                       an upload template

Write order makes a crash harmless: data files, then the manifest, then ``latest.json``, so
``latest.json`` never points at a partial backup. An unchanged plan (same content digest as
the latest backup) gets a manifest pointing at the previous data instead of a second copy.
Each plan is independent: one plan's failure never stops the others; the run reports every
failure at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from achieveit_sync.backup.exporter import DEFAULT_EXPORT_ATTEMPTS, PlanExport, export_plan
from achieveit_sync.backup.targets import BackupTarget
from achieveit_sync.client import AchieveItClient
from achieveit_sync.errors import AchieveItSyncError, ApiError, PaginationError
from achieveit_sync.plan_ids import InvalidPlanIdError, is_plan_id

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1


class BackupRunError(AchieveItSyncError):
    """Some plans failed or came out incomplete (after every plan was tried)."""

    def __init__(self, run: BackupRun) -> None:
        self.run = run
        problems = [f"{o.plan_id}: {o.status} ({o.error})" for o in run.outcomes if not o.succeeded]
        super().__init__(
            f"{len(problems)} of {len(run.outcomes)} plans not backed up: " + "; ".join(problems)
        )


@dataclass
class PlanOutcome:
    plan_id: str
    status: str
    """``complete``, ``unchanged`` (a pointer to the previous data), ``incomplete``, ``failed``."""
    items: int = 0
    manifest: str | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status in ("complete", "unchanged")

    def as_dict(self) -> dict[str, Any]:
        return {
            "planId": self.plan_id,
            "status": self.status,
            "items": self.items,
            "manifest": self.manifest,
            "error": self.error,
        }


@dataclass
class BackupRun:
    outcomes: list[PlanOutcome]

    @property
    def failed(self) -> list[PlanOutcome]:
        return [o for o in self.outcomes if not o.succeeded]

    def as_dict(self) -> dict[str, Any]:
        return {
            "plans": [o.as_dict() for o in self.outcomes],
            "failed": [o.plan_id for o in self.failed],
        }


def back_up_plans(
    plan_ids: Iterable[object],
    *,
    client: AchieveItClient,
    target: BackupTarget,
    api_base_url: str,
    time_zone: str = "UTC",
    max_attempts: int = DEFAULT_EXPORT_ATTEMPTS,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_plan: Callable[[PlanOutcome], None] | None = None,
    on_page: Callable[[str, int, int], None] | None = None,
) -> BackupRun:
    """Back up every plan; never stop early. Check ``run.failed`` (or let the caller raise
    ``BackupRunError``) afterwards.

    ``plan_ids`` may hold anything an event can: each entry that is not a valid plan id (see
    ``achieveit_sync.plan_ids``) fails alone, with the reason, before it is used anywhere.
    """
    outcomes = []
    for requested in _requested_plans(plan_ids):
        if not is_plan_id(requested):
            refused = InvalidPlanIdError(requested)
            log.error("plan id refused", extra={"plan": refused.plan_id, "error": str(refused)})
            outcomes.append(PlanOutcome(refused.plan_id, "failed", error=str(refused)))
            if on_plan is not None:
                on_plan(outcomes[-1])
            continue
        assert isinstance(requested, str)  # noqa: S101 - is_plan_id checked it
        plan_id = requested
        try:
            outcome = back_up_plan(
                plan_id,
                client=client,
                target=target,
                api_base_url=api_base_url,
                time_zone=time_zone,
                max_attempts=max_attempts,
                clock=clock,
                on_page=on_page,
            )
        except (ApiError, PaginationError) as exc:
            # An expected outcome (403, 404, API down): the message says it all.
            log.error("plan backup failed", extra={"plan": plan_id, "error": str(exc)})  # noqa: TRY400
            outcome = PlanOutcome(plan_id, "failed", error=str(exc))
        outcomes.append(outcome)
        if on_plan is not None:
            on_plan(outcome)
    return BackupRun(outcomes)


def _requested_plans(plan_ids: Iterable[object]) -> Iterator[object]:
    """Each requested plan once, in order; text stripped of surrounding white space."""
    seen: set[str] = set()
    for value in plan_ids:
        if not isinstance(value, str):
            yield value
            continue
        plan_id = value.strip()
        if plan_id not in seen:
            seen.add(plan_id)
            yield plan_id


def back_up_plan(
    plan_id: str,
    *,
    client: AchieveItClient,
    target: BackupTarget,
    api_base_url: str,
    time_zone: str = "UTC",
    max_attempts: int = DEFAULT_EXPORT_ATTEMPTS,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_page: Callable[[str, int, int], None] | None = None,
) -> PlanOutcome:
    """Export one plan and store it; ``on_page(plan_id, pages, items)`` follows progress."""
    started = clock()

    def progress(pages: int, items: int) -> None:
        if on_page is not None:
            on_page(plan_id, pages, items)

    export = export_plan(client, plan_id, max_attempts=max_attempts, on_page=progress)
    try:
        return _store(export, target, started, clock(), api_base_url, time_zone)
    finally:
        export.close()


def latest_key(plan_id: str) -> str:
    return f"backups/{plan_id}/latest.json"


def _store(
    export: PlanExport,
    target: BackupTarget,
    started: datetime,
    finished: datetime,
    api_base_url: str,
    time_zone: str,
) -> PlanOutcome:
    plan_id = export.plan_id
    # Microseconds: an on-demand run and the schedule in the same second must not collide.
    prefix = f"backups/{plan_id}/{started:%Y/%m/%d}/{started:%Y%m%dT%H%M%S.%fZ}/"
    manifest_key = prefix + "manifest.json"
    latest = target.read_json(latest_key(plan_id))
    previous_manifest = latest.get("manifest") if isinstance(latest, dict) else None
    unchanged = (
        export.complete
        and isinstance(latest, dict)
        and latest.get("contentSha256") == export.content_sha256
        and isinstance(latest.get("files"), dict)
    )
    if unchanged:
        assert isinstance(latest, dict)  # noqa: S101 - narrowed above
        files = latest["files"]
        data_from = latest.get("dataFrom") or previous_manifest
    else:
        files = {}
        for exported in export.files:
            target.write_file(prefix + exported.name, exported.body, exported.content_type)
            files[exported.name] = {
                "key": prefix + exported.name,
                "sha256": exported.sha256,
                "bytes": exported.size,
            }
        data_from = None
    manifest = {
        "manifestVersion": MANIFEST_VERSION,
        "planId": plan_id,
        "manifestKey": manifest_key,
        "startedAt": _iso(started),
        "finishedAt": _iso(finished),
        "timeZone": time_zone,
        "startedAtLocal": started.astimezone(ZoneInfo(time_zone)).isoformat(),
        "apiBaseUrl": api_base_url,
        "itemCount": export.item_count,
        "totalCount": export.total_count,
        "pagesFetched": export.pages,
        "contentSha256": export.content_sha256,
        "files": files,
        "complete": export.complete,
        "completeness": {
            "verdict": "complete" if export.complete else "INCOMPLETE",
            "attempts": [a.as_dict() for a in export.attempts],
        },
        "unchanged": bool(unchanged),
        "dataFrom": data_from,
        "previousBackup": previous_manifest,
    }
    target.write_json(manifest_key, manifest)
    if not export.complete:
        problems = export.attempts[-1].problems
        log.error(
            "plan backup INCOMPLETE: stored, but latest.json not moved",
            extra={
                "plan": plan_id,
                "manifest": target.describe(manifest_key),
                "problems": problems,
            },
        )
        return PlanOutcome(
            plan_id,
            "incomplete",
            export.item_count,
            target.describe(manifest_key),
            "; ".join(problems),
        )
    target.write_json(
        latest_key(plan_id),
        {
            "planId": plan_id,
            "manifest": manifest_key,
            "completedAt": _iso(finished),
            "itemCount": export.item_count,
            "contentSha256": export.content_sha256,
            "files": files,
            "dataFrom": data_from,
        },
    )
    if export.template is not None:
        target.write_file(
            f"templates/{plan_id}/progress-updates.csv",
            export.template.body,
            export.template.content_type,
        )
    status = "unchanged" if unchanged else "complete"
    log.info(
        "plan backed up",
        extra={
            "plan": plan_id,
            "status": status,
            "items": export.item_count,
            "manifest": target.describe(manifest_key),
        },
    )
    return PlanOutcome(plan_id, status, export.item_count, target.describe(manifest_key))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
