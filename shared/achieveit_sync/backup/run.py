"""Backing up plans: export each, store it with a manifest, move ``latest.json`` last.

Layout (relative to the bucket, or to ``--out DIR``)::

    backups/<planId>/<YYYY>/<MM>/<DD>/<timestamp>/items.json.gz   the items as returned
    backups/<planId>/<YYYY>/<MM>/<DD>/<timestamp>/items.csv.gz    a flat table
    backups/<planId>/<YYYY>/<MM>/<DD>/<timestamp>/manifest.json   what, when, checksums, verdict
    backups/<planId>/latest.json                                  the newest complete backup
    templates/<planId>/progress-updates.csv                       an upload template
    history/snapshot_date=<date>/plan_id=<planId>/<timestamp>.jsonl.gz   the plan history

Write order makes a crash harmless: data files, then the manifest, then ``latest.json``, so
``latest.json`` never points at a partial backup. The history snapshot (``backup.history``)
comes last, for complete backups only (unchanged ones too: the history is by date); one that
cannot be written is a warning, as the template is.

``latest.json`` only moves forward: a run that finds it naming a backup started after its
own (two runs of a plan overlapped, and the later one finished first) leaves it there.

An unchanged plan (same content digest as the latest backup) gets a manifest pointing at the
previous data instead of a second copy, but only when the previous backup's manifest (and,
for an unchanged one, the manifest that stored the data) is there and agrees with
``latest.json`` on the content digest and the files, and only data that is still there,
still matches the SHA-256 its manifest records, and is at most ``reuse_window()`` old (30
days, or half the bucket's expiration when that is shorter); otherwise the data is stored
anew. So the data
``latest.json`` names always has most of its lifetime left before the bucket's lifecycle rule
expires it (see ``reuse_window`` and template.yaml, BackupBucket).

Each plan is independent: an invalid plan id, a failed export, an unreadable ``latest.json``
or any unexpected error is that plan's outcome alone; the run reports every failure at the
end. With a deadline (a Lambda's time left), each plan gets a share of the time and every
plan a result.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from achieveit_sync.backup.documents import (
    BackupManifest,
    DocumentError,
    LatestPointer,
    PlanStatus,
    StoredFile,
    backup_prefix,
    latest_key,
)
from achieveit_sync.backup.exporter import (
    DEFAULT_EXPORT_ATTEMPTS,
    ExportedFile,
    PlanExport,
    export_plan,
)
from achieveit_sync.backup.history import Snapshot
from achieveit_sync.backup.targets import BackupTarget
from achieveit_sync.client import AchieveItClient
from achieveit_sync.errors import (
    AchieveItSyncError,
    ApiError,
    ConfigurationError,
    OutOfTimeError,
    PaginationError,
    PermanentApiError,
    PlanTooLargeError,
)
from achieveit_sync.formatting import describe_error, iso_utc
from achieveit_sync.plan_ids import InvalidPlanIdError, describe_plan_id, is_plan_id
from achieveit_sync.settings import (
    DEFAULT_BACKUP_MAX_ITEMS,
    DEFAULT_EXPIRATION_DAYS,
    BackupSettings,
    ExportLimits,
)

log = logging.getLogger(__name__)

MAX_REUSE_DAYS = 30


def reuse_window(expiration_days: int) -> timedelta:
    """How old stored data may be and still be named by a new backup instead of stored again.

    The bucket's lifecycle rule expires every object ``expiration_days`` after it was
    written, and a pointer manifest (and ``latest.json``) is always younger than the data it
    names, so data may only be reused while it is young: at most 30 days, and at most half
    of ``expiration_days``. The data ``latest.json`` names then has at least
    ``expiration_days - 30`` days (and at least half its lifetime) left when it is written.
    """
    return timedelta(days=max(0, min(MAX_REUSE_DAYS, expiration_days // 2)))


class BackupRunError(AchieveItSyncError):
    """Some plans failed or came out incomplete (after every plan was tried)."""

    def __init__(self, run: BackupRun) -> None:
        self.run = run
        problems = [f"{o.plan_id}: {o.status} ({o.error})" for o in run.outcomes if not o.succeeded]
        super().__init__(
            f"{len(problems)} of {len(run.outcomes)} plans not backed up: " + "; ".join(problems)
        )


class FailureCause(StrEnum):
    """Why a plan failed, by who can fix it."""

    USAGE = "usage"
    """Something the user must fix: the plan id, the key or the plan's access (401, 403,
    404), a plan larger than ``BACKUP_MAX_ITEMS``, an output folder that cannot be used."""
    SERVICE = "service"
    """AchieveIt, AWS or the system failed (an outage, an S3 error, a full disk), or the
    invocation ran out of time: trying again later may work."""


@dataclass
class PlanOutcome:
    plan_id: str
    status: PlanStatus
    items: int = 0
    manifest: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    """What went wrong but was repaired (an unreadable ``latest.json``, previous data missing
    or damaged, a template that could not be written): the backup itself is what its status
    says."""
    cause: FailureCause | None = None
    """Why a failed plan failed."""

    @property
    def succeeded(self) -> bool:
        return self.status.succeeded

    def as_dict(self) -> dict[str, Any]:
        return {
            "planId": self.plan_id,
            "status": self.status.value,
            "items": self.items,
            "manifest": self.manifest,
            "error": self.error,
            "cause": self.cause.value if self.cause is not None else None,
            "warnings": self.warnings,
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


LAMBDA_RETRY_HINT = "the function's log has the details; invoke it again with this plan to retry"
PLAN_RESERVE_SECONDS = 60.0
"""What a plan leaves, of the time left, for each plan after it (at most an equal share): a
slow plan first cannot take the whole invocation."""
_MIN_SECONDS_TO_TRY = 1.0


@dataclass(frozen=True)
class BackupOptions:
    """How a run backs up its plans, the same for each plan: from ``BackupSettings`` (the
    Lambda) or ``ExportLimits`` (the CLI).

    ``retry_hint`` ends the message of an unexpected error. ``write_history=False`` leaves
    out the plan history snapshot (a benchmark's baseline).
    """

    time_zone: str = "UTC"
    max_attempts: int = DEFAULT_EXPORT_ATTEMPTS
    expiration_days: int = DEFAULT_EXPIRATION_DAYS
    max_items: int = DEFAULT_BACKUP_MAX_ITEMS
    write_history: bool = True
    retry_hint: str = LAMBDA_RETRY_HINT

    @classmethod
    def from_settings(cls, settings: BackupSettings) -> BackupOptions:
        """The export Lambda's options."""
        return cls(
            time_zone=settings.time_zone,
            expiration_days=settings.expiration_days,
            max_items=settings.limits.max_items,
        )

    @classmethod
    def from_limits(cls, limits: ExportLimits, *, retry_hint: str) -> BackupOptions:
        """The command line's options (``achieveit-sync export``)."""
        return cls(max_items=limits.max_items, retry_hint=retry_hint)


def back_up_plans(
    plan_ids: Iterable[object],
    *,
    client: AchieveItClient,
    target: BackupTarget,
    options: BackupOptions = BackupOptions(),
    deadline: float | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_plan: Callable[[PlanOutcome], None] | None = None,
    on_page: Callable[[str, int, int, int | None], None] | None = None,
) -> BackupRun:
    """Back up every plan; never stop early. Check ``run.failed`` (or let the caller raise
    ``BackupRunError``) afterwards.

    ``plan_ids`` may hold anything an event can: each entry that is not a valid plan id (see
    ``achieveit_sync.plan_ids``) fails alone, with the reason, before it is used anywhere.

    ``deadline`` (``time.monotonic()``): when the whole run must be over (a Lambda's time
    left, less a margin). Each plan may run until the time left minus what every plan after
    it keeps (``PLAN_RESERVE_SECONDS`` each, or an equal share when less is left), so every
    plan gets a result: a plan reached when no time is left fails as "not tried: out of
    time".
    """
    requested = list(_requested_plans(plan_ids))
    outcomes = []
    for index, plan in enumerate(requested):
        plan_deadline = _plan_deadline(deadline, len(requested) - index)
        if plan_deadline is not None and plan_deadline - time.monotonic() < _MIN_SECONDS_TO_TRY:
            outcome = PlanOutcome(
                describe_plan_id(plan),
                PlanStatus.FAILED,
                error="not tried: out of time (the plans before it used this invocation's "
                "time); invoke the function again with this plan",
                cause=FailureCause.SERVICE,
            )
            log.error("plan not tried: out of time", extra={"plan": outcome.plan_id})
        else:
            outcome = _back_up_one(
                plan,
                client=client,
                target=target,
                options=options,
                deadline=plan_deadline,
                clock=clock,
                on_page=on_page,
            )
        outcomes.append(outcome)
        if on_plan is not None:
            on_plan(outcome)
    return BackupRun(outcomes)


def _plan_deadline(deadline: float | None, plans_left: int) -> float | None:
    """When the next plan must be done: the run's deadline less what each plan after it
    keeps."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    reserve = max(0.0, min(PLAN_RESERVE_SECONDS, left / plans_left))
    return deadline - reserve * (plans_left - 1)


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


def _back_up_one(
    requested: object,
    *,
    client: AchieveItClient,
    target: BackupTarget,
    options: BackupOptions,
    deadline: float | None,
    clock: Callable[[], datetime],
    on_page: Callable[[str, int, int, int | None], None] | None,
) -> PlanOutcome:
    """One plan's backup, whatever happens: every failure becomes that plan's outcome."""
    if not is_plan_id(requested):
        refused = InvalidPlanIdError(requested)
        log.error("plan id refused", extra={"plan": refused.plan_id, "error": str(refused)})
        return PlanOutcome(
            refused.plan_id, PlanStatus.FAILED, error=str(refused), cause=FailureCause.USAGE
        )
    assert isinstance(requested, str)  # noqa: S101 - is_plan_id checked it
    plan_id = requested
    try:
        return back_up_plan(
            plan_id,
            client=client,
            target=target,
            options=options,
            deadline=deadline,
            clock=clock,
            on_page=on_page,
        )
    except (ApiError, PaginationError, OutOfTimeError, ConfigurationError) as exc:
        # An expected outcome (403, 404, the API down, out of time, an output folder that
        # cannot be used): the message says it all.
        log.error("plan backup failed", extra={"plan": plan_id, "error": str(exc)})  # noqa: TRY400
        return PlanOutcome(plan_id, PlanStatus.FAILED, error=str(exc), cause=_cause_of(exc))
    except OSError as exc:
        # The local disk (a full disk, a file too large, a folder that cannot be written).
        log.error("plan backup failed", extra={"plan": plan_id, "error": str(exc)})  # noqa: TRY400
        where = f" {exc.filename}" if exc.filename else ""
        return PlanOutcome(
            plan_id,
            PlanStatus.FAILED,
            error=f"could not write{where}: {exc.strerror or exc}; latest.json still names "
            "the previous backup",
            cause=_cause_of(exc),
        )
    except Exception as exc:
        # Anything else (an S3 error, a bug) is still this plan's problem alone: the other
        # plans go on, and the run fails at the end naming this one.
        log.exception("plan backup failed unexpectedly", extra={"plan": plan_id})
        return PlanOutcome(
            plan_id,
            PlanStatus.FAILED,
            error=f"unexpected error ({describe_error(exc)}); {options.retry_hint}",
            cause=FailureCause.SERVICE,
        )


_USAGE_STATUSES = frozenset({400, 401, 403, 404})
_USAGE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.ELOOP})


def _cause_of(exc: BaseException) -> FailureCause:
    if isinstance(exc, ConfigurationError | PlanTooLargeError):
        return FailureCause.USAGE
    if isinstance(exc, PermanentApiError) and exc.status in _USAGE_STATUSES:
        return FailureCause.USAGE
    if isinstance(exc, OSError) and exc.errno in _USAGE_ERRNOS:
        return FailureCause.USAGE
    return FailureCause.SERVICE


def back_up_plan(
    plan_id: str,
    *,
    client: AchieveItClient,
    target: BackupTarget,
    options: BackupOptions = BackupOptions(),
    deadline: float | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_page: Callable[[str, int, int, int | None], None] | None = None,
) -> PlanOutcome:
    """Export one plan and store it; ``on_page(plan_id, pages, items, total)`` follows
    progress (``total``: the plan's ``totalCount``, when the API gives one). ``deadline``
    bounds the export (see ``export_plan``)."""
    started = clock()

    def progress(pages: int, items: int, total: int | None) -> None:
        if on_page is not None:
            on_page(plan_id, pages, items, total)

    export = export_plan(
        client,
        plan_id,
        max_attempts=options.max_attempts,
        on_page=progress,
        max_items=options.max_items,
        deadline=deadline,
        snapshot=Snapshot(plan_id, started) if options.write_history else None,
    )
    try:
        return _store(
            export,
            target,
            started,
            clock(),
            client.base_url,
            options.time_zone,
            reuse_window(options.expiration_days),
        )
    finally:
        export.close()


def _store(
    export: PlanExport,
    target: BackupTarget,
    started: datetime,
    finished: datetime,
    api_base_url: str,
    time_zone: str,
    reuse_limit: timedelta,
) -> PlanOutcome:
    plan_id = export.plan_id
    prefix = backup_prefix(plan_id, started)
    manifest_key = prefix + "manifest.json"
    warnings: list[str] = list(export.warnings)
    latest = _read_latest(target, plan_id, warnings)
    verified = _verified(latest, target, warnings) if latest is not None else None
    reused = _reusable_files(export, verified, target, finished, reuse_limit, warnings)
    if reused is not None and latest is not None:
        files, data_from = reused, latest.data_from
    else:
        files = {}
        for exported in export.files:
            target.write_file(prefix + exported.name, exported.body, exported.content_type)
            files[exported.name] = StoredFile(
                prefix + exported.name, exported.sha256, exported.size
            )
        data_from = None
    manifest = BackupManifest(
        plan_id=plan_id,
        manifest_key=manifest_key,
        started_at=iso_utc(started),
        finished_at=iso_utc(finished),
        time_zone=time_zone,
        started_at_local=started.astimezone(ZoneInfo(time_zone)).isoformat(),
        api_base_url=api_base_url,
        item_count=export.item_count,
        total_count=export.total_count,
        pages_fetched=export.pages,
        content_sha256=export.content_sha256,
        files=files,
        complete=export.complete,
        attempts=[a.as_dict() for a in export.attempts],
        unchanged=reused is not None,
        data_from=data_from,
        previous_backup=latest.manifest if latest is not None else None,
        warnings=warnings,
    )
    target.write_json(manifest_key, manifest.to_json())
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
            PlanStatus.INCOMPLETE,
            export.item_count,
            target.describe(manifest_key),
            "; ".join(problems),
            warnings,
        )
    pointer = LatestPointer(
        plan_id=plan_id,
        manifest=manifest_key,
        completed_at=iso_utc(finished),
        item_count=export.item_count,
        content_sha256=export.content_sha256,
        files=files,
        data_from=data_from or manifest_key,
    )
    newer = _newer_backup(target, plan_id, manifest_key)
    if newer is not None:
        warning = (
            f"a backup started later ({target.describe(newer)}) finished first; latest.json "
            "stays on it and this backup, complete, is kept beside it"
        )
        log.warning("latest.json not moved back", extra={"plan": plan_id, "problem": warning})
        warnings.append(warning)
    else:
        target.write_json(latest_key(plan_id), pointer.to_json())
        if export.template is not None:
            _write_template(export, target, warnings)
    if export.history is not None:
        _write_history(export, started, target, warnings)
    log.info(
        "plan backed up",
        extra={
            "plan": plan_id,
            "status": manifest.status.value,
            "items": export.item_count,
            "manifest": target.describe(manifest_key),
        },
    )
    return PlanOutcome(
        plan_id,
        manifest.status,
        export.item_count,
        target.describe(manifest_key),
        warnings=warnings,
    )


def _read_latest(target: BackupTarget, plan_id: str, warnings: list[str]) -> LatestPointer | None:
    """The plan's ``latest.json``, or ``None`` when there is none or it cannot be used; a
    pointer that cannot be read or understood is reported (the plan is then backed up from
    scratch, and the new ``latest.json`` replaces it)."""
    key = latest_key(plan_id)
    try:
        document = target.read_json(key)
    except Exception as exc:  # noqa: BLE001 - whatever broke it, the remedy is a fresh backup
        problem = f"could not be read ({describe_error(exc)})"
    else:
        if document is None:
            return None
        try:
            return LatestPointer.from_json(document, plan_id)
        except DocumentError as exc:
            problem = f"is not a backup pointer ({exc}: damaged, or not written by achieveit-sync)"
    warning = f"{target.describe(key)} {problem}; backed up from scratch and replaced"
    log.error(
        "latest.json unusable; backing the plan up from scratch",
        extra={"plan": plan_id, "problem": warning},
    )
    warnings.append(warning)
    return None


def _verified(
    latest: LatestPointer, target: BackupTarget, warnings: list[str]
) -> LatestPointer | None:
    """``latest`` if the manifests it names are there and agree with it (content digest,
    files); else ``None``, with a warning: its data is then not reused."""
    for key in dict.fromkeys((latest.manifest, latest.data_from)):
        where = target.describe(key)
        problem: str | None
        try:
            document = target.read_json(key)
        except Exception as exc:  # noqa: BLE001 - whatever broke it, its data is not reused
            problem = f"could not be read ({describe_error(exc)})"
        else:
            problem = _disagreement(document, key, latest)
        if problem is None:
            continue
        warning = (
            f"the previous backup's manifest {where} {problem}; none of its data is reused "
            "(this backup stores the plan in full)"
        )
        log.error("previous backup damaged", extra={"plan": latest.plan_id, "problem": warning})
        warnings.append(warning)
        return None
    return latest


def _disagreement(  # noqa: PLR0911 - one return per disagreement
    document: object, key: str, latest: LatestPointer
) -> str | None:
    """How the manifest at ``key`` disagrees with ``latest``, or ``None``."""
    if document is None:
        return "is missing"
    try:
        manifest = BackupManifest.from_json(document)
    except DocumentError as exc:
        return f"is not a backup manifest ({exc})"
    if (manifest.manifest_key, manifest.plan_id) != (key, latest.plan_id):
        return "is not this backup's manifest (its manifestKey or planId differs)"
    if not manifest.complete:
        return "records an incomplete backup"
    if manifest.content_sha256 != latest.content_sha256:
        return "records another content digest than latest.json"
    if manifest.files != latest.files:
        return "records other files than latest.json names"
    return None


def _newer_backup(target: BackupTarget, plan_id: str, manifest_key: str) -> str | None:
    """The manifest ``latest.json`` names now, if it is of a backup started after the one at
    ``manifest_key`` (keys sort by start time)."""
    try:
        current = LatestPointer.from_json(target.read_json(latest_key(plan_id)), plan_id)
    except Exception:  # noqa: BLE001 - none, or unusable (reported already): replaced
        return None
    return current.manifest if current.manifest > manifest_key else None


def _write_template(export: PlanExport, target: BackupTarget, warnings: list[str]) -> None:
    """The upload template; a failure to write it is a warning: the backup is complete."""
    assert export.template is not None  # noqa: S101 - the caller checked
    _write_or_warn(
        target,
        f"templates/{export.plan_id}/progress-updates.csv",
        export.template,
        export.plan_id,
        what="the progress-update template",
        then="the backup is complete, but the template is the previous one (check that the "
        "role may write templates/, then back the plan up again)",
        warnings=warnings,
    )


def _write_history(
    export: PlanExport, started: datetime, target: BackupTarget, warnings: list[str]
) -> None:
    """The plan's history snapshot, after everything else; a failure to write it is a
    warning: the backup is complete, only that day's history lacks it."""
    assert export.history is not None  # noqa: S101 - the caller checked
    _write_or_warn(
        target,
        Snapshot(export.plan_id, started).key,
        export.history,
        export.plan_id,
        what="the plan history snapshot",
        then="the backup is complete, but this snapshot is missing from the history (check "
        "that the role may write history/)",
        warnings=warnings,
    )


def _write_or_warn(
    target: BackupTarget,
    key: str,
    file: ExportedFile,
    plan_id: str,
    *,
    what: str,
    then: str,
    warnings: list[str],
) -> None:
    """Write a file that comes after the backup itself; failing, a warning, not a failure."""
    try:
        target.write_file(key, file.body, file.content_type)
    except Exception as exc:  # noqa: BLE001 - the backup is stored; only this file is not
        warning = (
            f"{what} {target.describe(key)} could not be written ({describe_error(exc)}); {then}"
        )
        log.warning(f"{what} not written", extra={"plan": plan_id, "problem": warning})
        warnings.append(warning)


def _reusable_files(
    export: PlanExport,
    latest: LatestPointer | None,
    target: BackupTarget,
    now: datetime,
    reuse_limit: timedelta,
    warnings: list[str],
) -> dict[str, StoredFile] | None:
    """The previous backup's files when this export can point at them instead of storing a
    copy: same content, and every file still there, intact and young enough. ``None`` means
    store the data anew (problems found on the way are added to ``warnings``)."""
    if not export.complete or latest is None or latest.content_sha256 != export.content_sha256:
        return None
    if set(latest.files) != {exported.name for exported in export.files}:
        return None  # written by a version that stored other files
    for name, described in latest.files.items():
        where = target.describe(described.key)
        try:
            stored = target.inspect_file(described.key)
        except Exception as exc:  # noqa: BLE001 - unverifiable data is never pointed at
            problem = f"could not be read ({describe_error(exc)})"
        else:
            if stored is None:
                problem = "is missing"
            elif (stored.sha256, stored.size) != (described.sha256, described.size):
                problem = "does not match the SHA-256 and size its manifest records"
            else:
                if now - stored.created > reuse_limit:
                    log.info(
                        "plan unchanged, but its stored data is old: storing it anew",
                        extra={
                            "plan": export.plan_id,
                            "file": where,
                            "written": iso_utc(stored.created),
                        },
                    )
                    return None
                continue
        warning = (
            f"the previous backup's {name} ({where}) {problem}; the unchanged plan was stored anew"
        )
        log.error(
            "previous backup data unusable", extra={"plan": export.plan_id, "problem": warning}
        )
        warnings.append(warning)
        return None
    return latest.files
