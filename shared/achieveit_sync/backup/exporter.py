"""Exporting one plan completely into local temporary files, and telling whether it is whole.

Items stream from the API page by page (``take`` 1500, stable sort by ``sequenceId``) into
two gzip files on disk: ``items.json.gz`` (the items exactly as the API returned them, as a
JSON array) and ``items.csv.gz`` (a flat table of the common fields). Nothing collects the
items in memory; distinct ids are tracked in the same compact index the ingest uses.

A plan that changes while it is paged (items added or removed, ``totalCount`` drifting,
an id on two pages, a page that does not start where the previous one ended) is exported
again, a bounded number of times. Each page repeats the last item of the one before it: if
that item is not where it was, items were added or removed before it while the plan was
paged, and some may have been skipped even though the counts add up (one removed, one
added). An export that never comes out whole is kept, marked incomplete, with every
attempt's findings. Items without an ``id`` count towards nothing.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from achieveit_sync import exact_json
from achieveit_sync.backup.history import Snapshot, history_line
from achieveit_sync.backup.paging import iter_plan_pages
from achieveit_sync.client import MAX_PAGE_SIZE, AchieveItClient
from achieveit_sync.errors import PlanChangedWhilePagedError
from achieveit_sync.key_index import SeenKeys
from achieveit_sync.settings import DEFAULT_BACKUP_MAX_ITEMS
from achieveit_sync.spreadsheet import neutralise
from achieveit_sync.updates import UPLOAD_TEMPLATE_COLUMNS

log = logging.getLogger(__name__)
_IDS_PER_LOOKUP = 512
"""Item ids looked up in the duplicate index at a time."""

DEFAULT_EXPORT_ATTEMPTS = 3
CSV_COLUMNS = (
    "id",
    "externalId",
    "sequenceId",
    "level",
    "name",
    "statusName",
    "currentValue",
    "target",
    "baseline",
    "start",
    "due",
    "assignedToFullName",
    "assignedToEmailAddress",
    "assignedByFullName",
    "lastUpdated",
    "created",
    "description",
)
"""The flat table's columns: the fields spreadsheet users look for first."""
_SPOOL_BYTES = 1024 * 1024
"""Files roll over from memory to disk past this: a plan of any size keeps memory flat."""


@dataclass
class ExportedFile:
    """A finished gzip file on local disk, with its digest."""

    name: str
    content_type: str
    body: IO[bytes]
    size: int
    sha256: str


@dataclass
class AttemptFindings:
    attempt: int
    items: int
    distinct_ids: int
    total_counts: list[int]
    duplicate_ids: int
    pages: int
    complete: bool
    problems: list[str] = field(default_factory=list)
    without_id: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "items": self.items,
            "distinctIds": self.distinct_ids,
            "totalCounts": sorted(set(self.total_counts)),
            "duplicateIds": self.duplicate_ids,
            "itemsWithoutId": self.without_id,
            "pages": self.pages,
            "complete": self.complete,
            "problems": self.problems,
        }


@dataclass
class PlanExport:
    """The result of exporting one plan: files on disk and the verdict."""

    plan_id: str
    files: list[ExportedFile]
    item_count: int
    total_count: int | None
    pages: int
    content_sha256: str
    """SHA-256 of the items' canonical JSON (compression-independent): equal content, equal
    digest, so an unchanged plan is recognised."""
    complete: bool
    attempts: list[AttemptFindings]
    external_ids: int
    template: ExportedFile | None = None
    warnings: list[str] = field(default_factory=list)
    """What was stored differently from how the API sent it (NaN or Infinity as strings)."""
    history: ExportedFile | None = None
    """The plan's history snapshot (``backup.history``), when one was asked for."""

    def close(self) -> None:
        extra = [f for f in (self.template, self.history) if f is not None]
        for exported in [*self.files, *extra]:
            exported.body.close()


def export_plan(
    client: AchieveItClient,
    plan_id: str,
    *,
    max_attempts: int = DEFAULT_EXPORT_ATTEMPTS,
    page_size: int = MAX_PAGE_SIZE,
    on_page: Callable[[int, int, int | None], None] | None = None,
    max_items: int = DEFAULT_BACKUP_MAX_ITEMS,
    deadline: float | None = None,
    snapshot: Snapshot | None = None,
) -> PlanExport:
    """Export ``plan_id`` until one attempt is whole, at most ``max_attempts`` times, and
    never past ``deadline`` (``time.monotonic()``): an incomplete attempt is not repeated
    when its time is up, and a request that would run past it raises ``OutOfTimeError``.
    With ``snapshot``, the items also stream into the plan's history file
    (``PlanExport.history``).

    API errors (403, 404, the API down), a plan of more than ``max_items`` items and running
    out of time propagate: the caller records the plan as failed.
    """
    findings: list[AttemptFindings] = []
    export: PlanExport | None = None
    for attempt in range(1, max_attempts + 1):
        if export is not None:
            if deadline is not None and time.monotonic() >= deadline:
                log.warning("no time left to export the plan again", extra={"plan": plan_id})
                break
            export.close()
        export = _export_once(
            client, plan_id, attempt, page_size, on_page, max_items, deadline, snapshot
        )
        findings.append(export.attempts[0])
        if export.complete:
            break
        log.warning(
            "plan changed while it was exported; exporting it again",
            extra={"plan": plan_id, "attempt": attempt, "problems": export.attempts[0].problems},
        )
    assert export is not None  # noqa: S101 - max_attempts >= 1
    export.attempts = findings
    return export


def _export_once(
    client: AchieveItClient,
    plan_id: str,
    attempt: int,
    page_size: int,
    on_page: Callable[[int, int, int | None], None] | None,
    max_items: int,
    deadline: float | None,
    snapshot: Snapshot | None,
) -> PlanExport:
    sinks = _ExportSinks(snapshot)
    shifted: list[str] = []
    try:
        pages = 0
        total_counts: list[int] = []
        # Each page repeats the last item of the one before, which must still be there:
        # otherwise items were added or removed before it and some may have been skipped,
        # although the counts could still add up (one removed, one added).
        pager = iter_plan_pages(
            client, plan_id, take=page_size, overlap=1, max_items=max_items, deadline=deadline
        )
        try:
            for page in pager:
                pages += 1
                if page.total_count is not None:
                    total_counts.append(page.total_count)
                sinks.add_items(page.items)
                del page  # a page can be tens of MB: never hold it while the next is fetched
                if on_page is not None:
                    on_page(pages, sinks.items, total_counts[-1] if total_counts else None)
        except PlanChangedWhilePagedError as exc:
            shifted.append(str(exc).removeprefix(f"export of plan '{plan_id}': "))
    except BaseException:
        sinks.discard()
        raise
    return sinks.finish(plan_id, attempt, pages, total_counts, shifted)


class _ExportSinks:
    """The files one export attempt writes, and the counts its verdict rests on."""

    def __init__(self, snapshot: Snapshot | None = None) -> None:
        self.json_file = _FileSink("items.json.gz", "application/json")
        self.snapshot = snapshot
        self.history_file = (
            _FileSink("history.jsonl.gz", "application/x-ndjson") if snapshot is not None else None
        )
        # The flat table and the template are views for people: a lone surrogate (which no
        # UTF-8 file can hold) becomes '?' there; items.json.gz keeps it escaped, exactly.
        self.csv_file = _FileSink("items.csv.gz", "text/csv; charset=utf-8", errors="replace")
        self.template_file = _FileSink(
            "progress-updates.csv", "text/csv; charset=utf-8", compress=False, errors="replace"
        )
        self.content_digest = hashlib.sha256()
        self.csv_writer = csv.writer(self.csv_file.text, lineterminator="\r\n")
        self.csv_writer.writerow(CSV_COLUMNS)
        self.template_writer = csv.writer(self.template_file.text, lineterminator="\r\n")
        self.template_writer.writerow(UPLOAD_TEMPLATE_COLUMNS)
        self.seen = SeenKeys()
        self.items = self.distinct = self.duplicates = self.external_ids = 0
        self.without_id = self.non_finite = self.first_non_finite = 0
        self.json_file.text.write("[")

    def add_items(self, items: list[dict[str, Any]]) -> None:
        ids: list[str] = []
        positions: list[int] = []
        for item in items:
            data, non_finite = _item_json(item)
            if non_finite:
                self.non_finite += non_finite
                self.first_non_finite = self.first_non_finite or self.items + 1
            self.json_file.text.write("\n" if self.items == 0 else ",\n")
            self.json_file.write_bytes(data)
            self.content_digest.update(data)
            self.content_digest.update(b"\n")
            if self.history_file is not None and self.snapshot is not None:
                self.history_file.write_bytes(history_line(self.snapshot, item, data))
            self.csv_writer.writerow([_csv_cell(item.get(column)) for column in CSV_COLUMNS])
            external_id = item.get("externalId")
            if isinstance(external_id, str) and external_id:
                self.external_ids += 1
                self.template_writer.writerow(
                    (
                        neutralise(external_id),
                        "",
                        "",
                        "",
                        "",
                        neutralise(str(item.get("name") or "")),
                    )
                )
            self.items += 1
            item_id = item.get("id")
            if item_id is None or item_id == "" or isinstance(item_id, bool | dict | list):
                # No id, no proof: such an item cannot count towards totalCount (it could be
                # another item repeated without its id).
                self.without_id += 1
            else:
                ids.append(str(item_id))
                positions.append(self.items)
        # The page's ids looked up a few hundred at a time (exact: the text is compared
        # when hashes match; a few hundred, so that long ids are copied a little at a time).
        for start in range(0, len(ids), _IDS_PER_LOOKUP):
            some = ids[start : start + _IDS_PER_LOOKUP]
            exacts = [item_id.encode("utf-8", "surrogatepass") for item_id in some]
            firsts = self.seen.first_positions(
                list(map(hash, some)), positions[start : start + _IDS_PER_LOOKUP], exacts
            )
            new = firsts.count(None)
            self.distinct += new
            self.duplicates += len(firsts) - new

    def discard(self) -> None:
        for sink in (self.json_file, self.csv_file, self.template_file, self.history_file):
            if sink is not None:
                sink.discard()

    def finish(
        self,
        plan_id: str,
        attempt: int,
        pages: int,
        total_counts: list[int],
        problems_found: list[str],
    ) -> PlanExport:
        self.json_file.text.write("\n]\n")
        problems = problems_found + _completeness_problems(
            self.distinct, self.duplicates, total_counts
        )
        if self.without_id:
            problems.append(
                f"{self.without_id} item(s) have no id, so they cannot be told apart from a "
                "repeated item"
            )
        warnings = []
        if self.non_finite:
            warnings.append(
                f"{self.non_finite} number(s) came as NaN or Infinity, which JSON cannot hold "
                f"(first in item {self.first_non_finite}); items.json.gz stores them as the "
                'strings "NaN", "Infinity" and "-Infinity"'
            )
        findings = AttemptFindings(
            attempt=attempt,
            items=self.items,
            distinct_ids=self.distinct,
            total_counts=total_counts,
            duplicate_ids=self.duplicates,
            without_id=self.without_id,
            pages=pages,
            complete=not problems,
            problems=problems,
        )
        return PlanExport(
            plan_id=plan_id,
            files=[self.json_file.finish(), self.csv_file.finish()],
            item_count=self.items,
            total_count=total_counts[-1] if total_counts else None,
            pages=pages,
            content_sha256=self.content_digest.hexdigest(),
            complete=not problems,
            attempts=[findings],
            external_ids=self.external_ids,
            template=self.template_file.finish() if self.external_ids else None,
            warnings=warnings,
            history=self.history_file.finish() if self.history_file is not None else None,
        )


def _item_json(item: dict[str, Any]) -> tuple[bytes, int]:
    """The item as compact, strict JSON in UTF-8, and how many of its numbers were NaN or
    Infinity (not JSON: written as the strings "NaN", "Infinity", "-Infinity"). Numbers keep
    the exact value the API sent (``exact_json``). Characters stay as they are, except that a
    lone surrogate (JSON may escape one; UTF-8 cannot hold it) makes the item's text escape
    its non-ASCII characters, which reads back as the very same item."""
    text, non_finite = exact_json.dumps(item)
    try:
        return text.encode(), non_finite
    except UnicodeEncodeError:
        return exact_json.dumps(item, ensure_ascii=True)[0].encode(), non_finite


def _completeness_problems(distinct: int, duplicates: int, total_counts: list[int]) -> list[str]:
    problems = []
    if not total_counts:
        problems.append("the API gave no totalCount, so completeness cannot be proven")
    else:
        if len(set(total_counts)) > 1:
            problems.append(
                "totalCount changed while paging "
                f"({' -> '.join(map(str, dict.fromkeys(total_counts)))})"
            )
        if distinct != total_counts[-1]:
            problems.append(f"{distinct} distinct item ids, but totalCount says {total_counts[-1]}")
    if duplicates:
        problems.append(f"{duplicates} item ids came on more than one page")
    return problems


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):  # a number kept exactly, NaN: written as read
            text = exact_json.dumps(value)[0]
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return neutralise(text)


class _FileSink:
    """Text written to a file on disk (spooled in memory while small), gzip-compressed
    unless ``compress=False``, hashed as it goes. ``mtime=0`` makes equal content give
    byte-equal gzip files."""

    def __init__(
        self, name: str, content_type: str, *, compress: bool = True, errors: str = "strict"
    ) -> None:
        self._name = name
        self._content_type = content_type
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115
        self._hashing = _HashingWriter(self._file)
        self._gzip = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._hashing, mtime=0)
            if compress
            else None
        )
        binary: IO[bytes] = self._gzip if self._gzip is not None else self._hashing  # type: ignore[assignment]
        self._binary = binary
        # write_through: text goes straight to the binary layer, so that text and
        # write_bytes() may be mixed in order.
        self.text = io.TextIOWrapper(
            binary, encoding="utf-8", errors=errors, newline="", write_through=True
        )

    def write_bytes(self, data: bytes) -> None:
        self._binary.write(data)

    def discard(self) -> None:
        """Close everything of an attempt that failed, so that nothing is left for garbage
        collection to flush into a closed file at exit."""
        for close in (
            self.text.detach,
            *([self._gzip.close] if self._gzip else []),
            self._file.close,
        ):
            with contextlib.suppress(Exception):
                close()

    def finish(self) -> ExportedFile:
        self.text.flush()
        self.text.detach()
        if self._gzip is not None:
            self._gzip.close()
        self._file.seek(0)
        return ExportedFile(
            self._name,
            self._content_type,
            self._file,
            self._hashing.size,
            self._hashing.digest.hexdigest(),
        )


class _HashingWriter(io.RawIOBase):
    def __init__(self, sink: IO[bytes]) -> None:
        self._sink = sink
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._sink.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)
