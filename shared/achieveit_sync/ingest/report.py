"""What the user gets back for one file: the JSON report and the rejected-rows file.

The report holds counts, every API request made for the file (status code and response
body), timings, warnings and each rejected row (line, field, value, reason, hint; the first
``MAX_REPORTED_REJECTIONS`` in detail, all of them in the rejected file). The rejected file
repeats the rejected rows in the input's own format with an ``Error`` column, ready to fix
and drop again. Both neutralise spreadsheet formulas (a cell starting with ``=``, ``+``,
``-``, ``@``) so that opening them in Excel never runs anything.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from achieveit_sync.ingest.reading import LongJsonNumber
from achieveit_sync.ingest.summary import MAX_GROUPS, RejectionSummary, plural
from achieveit_sync.ingest.validation import (
    FieldProblem,
    RejectedRow,
    ValidRow,
)
from achieveit_sync.spreadsheet import neutralise

REPORT_VERSION = 1
"""Written as ``reportVersion``: a reader meeting a newer one says so instead of guessing."""
MAX_REPORTED_REJECTIONS = 1000
MAX_REPORTED_AMBIGUOUS_ROWS = 1000
MAX_REPORTED_BODY_CHARS = 2000


class StopReason(StrEnum):
    TIME = "time"
    """The invocation ran out of time; a follow-up continues from the checkpoint."""
    API_UNAVAILABLE = "api_unavailable"
    """AchieveIt kept failing (429/5xx/connection) past the retry limit; retry later."""
    API_REFUSED = "api_refused"
    """AchieveIt refused every request (key, access or base URL); fix, then re-process."""
    ERROR = "error"
    """An unexpected error (a bug, AWS failing); the file is tried again."""
    INTERRUPTED = "interrupted"
    """Stopped on request (the command line's Ctrl-C); running it again continues."""


class FileStatus(StrEnum):
    COMPLETED = "completed"
    """Every row was read; every valid row was accepted by the API."""
    COMPLETED_WITH_REJECTIONS = "completed_with_rejections"
    """Some rows were rejected (by validation or by the API); the others went through."""
    COMPLETED_WITH_AMBIGUITY = "completed_with_ambiguity"
    """Some batches got no answer: their rows may or may not have been applied."""
    IN_PROGRESS = "in_progress"
    """The run stopped before the end (time, or the API unavailable) and will resume."""
    FAILED = "failed"
    """The file could not be read, or the API refused every request (key, base URL)."""
    VALIDATED = "validated"
    """Checked offline only (``validate`` or ``publish --dry-run``); nothing was sent."""

    @property
    def finished(self) -> bool:
        """Every row was handled: completed, with or without rejections or ambiguity."""
        return self in (
            FileStatus.COMPLETED,
            FileStatus.COMPLETED_WITH_REJECTIONS,
            FileStatus.COMPLETED_WITH_AMBIGUITY,
        )


@dataclass
class RequestRecord:
    """One HTTP request made for this file."""

    name: str
    part: int
    rows: int
    first_line: int
    last_line: int
    outcome: str  # accepted | refused | ambiguous | failed
    status_code: int | None
    response_body: str
    attempts: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """For checkpoints (round-trips through ``RequestRecord(**document)``)."""
        return asdict(self)

    def as_report(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "part": self.part,
            "rows": self.rows,
            "firstLine": self.first_line,
            "lastLine": self.last_line,
            "outcome": self.outcome,
            "statusCode": self.status_code,
            "responseBody": self.response_body,
            "attempts": self.attempts,
            "seconds": self.seconds,
        }


@dataclass
class Counts:
    rows_read: int = 0
    valid: int = 0
    published: int = 0
    rejected: int = 0
    rejected_by_validation: int = 0
    rejected_by_api: int = 0
    skipped_blank: int = 0
    skipped_untouched: int = 0
    """Upload-template rows with nothing filled in (not data rows)."""
    ambiguous: int = 0
    sent_earlier: int = 0
    """Valid rows not sent because an earlier run sent the same row (the CLI's ledger)."""
    not_sent: int = 0

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Counts:
        """The counts of a stored report (``ValueError`` when one is not a whole number)."""
        values = {name: document.get(key, 0) for name, key in _COUNT_KEYS.items()}
        for key, value in values.items():
            if type(value) is not int or value < 0:
                raise ValueError(f"the count {_COUNT_KEYS[key]} is not a whole number: {value!r}")
        return cls(**values)

    def as_dict(self) -> dict[str, int]:
        return {key: getattr(self, name) for name, key in _COUNT_KEYS.items()}


@dataclass
class FileReport:
    source: dict[str, Any]
    kind: str | None = None
    kind_reason: str | None = None
    """How the kind was chosen: the folder, ``--kind``, or the columns."""
    file_format: str | None = None
    encoding: str | None = None
    dialect: str | None = None
    """CSV: how cells are separated, and how that was found."""
    compressed: bool = False
    header: list[str] | None = None
    status: FileStatus = FileStatus.IN_PROGRESS
    counts: Counts = field(default_factory=Counts)
    file_error: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    """Columns or fields the file holds that were not sent: the file needs a look."""
    requests: list[RequestRecord] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    ambiguous_rows: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    stop_reason: StopReason | None = None
    rows_settled_this_run: int = 0
    """Rows this run got an answer for (accepted, refused or ambiguous): its progress."""
    published_this_run: int = 0
    """Rows AchieveIt accepted in this run (``counts.published`` also holds the rows
    earlier runs of the same file published: the file's total)."""
    rejection_summary: RejectionSummary = field(default_factory=RejectionSummary)

    def count_rejection(self, *, by_api: bool) -> None:
        self.counts.rejected += 1
        if by_api:
            self.counts.rejected_by_api += 1
        else:
            self.counts.rejected_by_validation += 1

    def list_rejection(self, row: RejectedRow) -> None:
        """Name a rejected row in the report (the first ``MAX_REPORTED_REJECTIONS``
        problems; the rejected file holds them all), and count it in the summary."""
        self.rejection_summary.add(row)
        element = {"element": row.record.element} if row.record.element is not None else {}
        for problem in row.problems:
            if len(self.rejections) >= MAX_REPORTED_REJECTIONS:
                return
            self.rejections.append({"line": row.line, **element, **_problem_dict(problem)})

    def list_ambiguous(self, row: ValidRow, request_name: str) -> None:
        if len(self.ambiguous_rows) < MAX_REPORTED_AMBIGUOUS_ROWS:
            element = {"element": row.record.element} if row.record.element is not None else {}
            self.ambiguous_rows.append(
                {
                    "line": row.line,
                    **element,
                    "externalId": row.update.external_id,
                    "request": request_name,
                }
            )

    @property
    def has_problems(self) -> bool:
        return (
            self.status
            in (
                FileStatus.FAILED,
                FileStatus.COMPLETED_WITH_REJECTIONS,
                FileStatus.COMPLETED_WITH_AMBIGUITY,
            )
            or bool(self.counts.rejected)
            or bool(self.ignored)
        )

    def headline(self) -> str:
        """One sentence on what happened to the file, for people."""
        counts = self.counts
        rejected = ""
        if counts.rejected:
            by = [
                f"{counts.rejected_by_validation:,} by validation"
                if counts.rejected_by_validation
                else "",
                f"{counts.rejected_by_api:,} by AchieveIt" if counts.rejected_by_api else "",
            ]
            rejected = (
                f"{plural(counts.rejected, 'row')} rejected ({', '.join(b for b in by if b)})"
            )
        ambiguous = (
            f"{plural(counts.ambiguous, 'row')} may have been applied (no answer: check them "
            "in AchieveIt)"
            if counts.ambiguous
            else ""
        )
        published = f"{plural(counts.published, 'row')} published"
        earlier = (
            f"{plural(counts.sent_earlier, 'row')} already sent by an earlier run (not sent "
            "again; --restart sends them)"
            if counts.sent_earlier
            else ""
        )
        if earlier:  # "0 rows published" says nothing next to it
            published = ", ".join(p for p in (published if counts.published else "", earlier) if p)
        if self.status is FileStatus.FAILED:
            reason = (self.file_error or {}).get("reason", "")
            done = ", ".join(p for p in (published if counts.published else "", rejected) if p)
            return f"failed: {reason}" + (f" ({done} so far)" if done else "")
        if self.status is FileStatus.VALIDATED:
            if not counts.rows_read:
                return "no rows to check: nothing was sent"
            valid = f"{plural(counts.valid, 'row')} valid" if counts.valid else "no valid rows"
            return ", ".join(p for p in (valid, rejected) if p) + "; nothing was sent"
        if self.status is FileStatus.IN_PROGRESS:
            why = (self.file_error or {}).get("reason") or next(iter(self.warnings[-1:]), "")
            return f"not finished: {published} so far, {counts.not_sent:,} not sent yet" + (
                f" ({why})" if why else ""
            )
        if self.status is FileStatus.COMPLETED:
            return f"{published}, none rejected"
        return ", ".join(p for p in (published, ambiguous, rejected) if p)

    def full_headline(self) -> str:
        """The headline, and what the file holds that was not sent."""
        headline = self.headline()
        if self.ignored and self.status is not FileStatus.FAILED:
            headline += f"; ignored, not sent: {', '.join(self.ignored)}"
        return headline

    def summary(self) -> dict[str, Any]:
        """What the report JSON opens with, and the SNS message and the CLI say."""
        return {
            "headline": self.full_headline(),
            "kind": f"{self.kind} updates ({self.kind_reason})" if self.kind_reason else self.kind,
            **self.rejection_summary.as_dict(),
        }

    def summary_lines(self, *, groups: int = MAX_GROUPS) -> list[str]:
        """The summary as text: headline, rejections by reason, hints."""
        lines = [self.full_headline()]
        shown = self.rejection_summary.ordered()
        if shown:
            lines.append("Rejected rows, by reason:")
            lines.extend(f"  {group.line()}" for group in shown[:groups])
            hidden = sum(group.rows for group in shown[groups:])
            hidden += self.rejection_summary.other_rows
            if hidden:
                lines.append(f"  {plural(hidden, 'more row')} for other reasons (see the report)")
        lines.extend(f"Hint: {hint}" for hint in self.rejection_summary.hints())
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "reportVersion": REPORT_VERSION,
            "summary": self.summary(),
            "source": self.source,
            "status": self.status.value,
            "kind": self.kind,
            "kindReason": self.kind_reason,
            "format": self.file_format,
            "encoding": self.encoding,
            "dialect": self.dialect,
            "compressed": self.compressed,
            "header": self.header,
            "counts": self.counts.as_dict(),
            "fileError": self.file_error,
            "warnings": self.warnings,
            "ignored": self.ignored,
            "requests": [r.as_report() for r in self.requests],
            "rejections": self.rejections,
            "rejectionsTruncated": self.counts.rejected > 0
            and len(self.rejections) >= MAX_REPORTED_REJECTIONS,
            "ambiguousRows": self.ambiguous_rows,
            "ambiguousRowsTruncated": len(self.ambiguous_rows) < self.counts.ambiguous,
            "timings": self.timings,
            "outputs": self.outputs,
            "stopReason": self.stop_reason.value if self.stop_reason else None,
            "rowsSettledThisRun": self.rows_settled_this_run,
            "publishedThisRun": self.published_this_run,
        }

    def to_json(self) -> bytes:
        return json_text(self.as_dict(), indent=2).encode("utf-8")


_COUNT_KEYS = {
    "rows_read": "rowsRead",
    "valid": "valid",
    "published": "published",
    "rejected": "rejected",
    "rejected_by_validation": "rejectedByValidation",
    "rejected_by_api": "rejectedByApi",
    "skipped_blank": "skippedBlank",
    "skipped_untouched": "skippedUntouched",
    "ambiguous": "ambiguous",
    "sent_earlier": "sentEarlier",
    "not_sent": "notSent",
}


@dataclass(frozen=True)
class StoredReport:
    """A report as read back from ``reports/`` (``status``, ``smoke``): what people look
    at, typed, from the document ``FileReport.as_dict`` writes."""

    version: int
    source: str
    status: FileStatus
    counts: Counts
    headline: str
    finished_at: str | None
    file_error: str | None
    stop_reason: str | None

    @classmethod
    def from_dict(cls, document: object) -> StoredReport:
        """``ValueError`` for anything that is not a report this version can read."""
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")  # noqa: TRY004 - one error for any unreadable report
        version = document.get("reportVersion", 1)  # reports before the field were version 1
        if type(version) is not int or version > REPORT_VERSION:
            raise ValueError(
                f"report version {version!r} is newer than this tool reads ({REPORT_VERSION}): "
                "upgrade achieveit-sync"
            )
        try:
            status = FileStatus(document["status"])
        except (KeyError, ValueError):
            raise ValueError(f"no known status: {document.get('status')!r}") from None
        counts = document.get("counts")
        if not isinstance(counts, dict):
            raise ValueError("no counts")  # noqa: TRY004 - one error for any unreadable report
        source = document.get("source") or {}
        summary = document.get("summary") or {}
        timings = document.get("timings") or {}
        file_error = document.get("fileError") or {}
        return cls(
            version=version,
            source=str(source.get("key") or source.get("name") or "")
            if isinstance(source, dict)
            else "",
            status=status,
            counts=Counts.from_dict(counts),
            headline=str(summary.get("headline", "")) if isinstance(summary, dict) else "",
            finished_at=_text_or_none(timings.get("finishedAt"))
            if isinstance(timings, dict)
            else None,
            file_error=_text_or_none(file_error.get("reason"))
            if isinstance(file_error, dict)
            else None,
            stop_reason=_text_or_none(document.get("stopReason")),
        )

    @property
    def finished(self) -> bool:
        return self.status.finished


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _problem_dict(problem: FieldProblem) -> dict[str, str]:
    return {
        "field": problem.field,
        "value": neutralise(problem.value),
        "reason": problem.reason,
        "hint": problem.hint,
    }


# Numbers read from JSON (Decimal, LongJsonNumber) are written back as the same number
# tokens: json.dumps cannot emit a raw token, so they pass through as marked strings whose
# quotes and mark are then removed. The mark is random per process: data cannot forge it.
_NUMBER_MARK = f"json-number-{secrets.token_hex(8)}:"
_MARKED_NUMBER = re.compile('"' + re.escape(_NUMBER_MARK) + '([^"]*)"')


def json_text(document: object, *, indent: int | None = None) -> str:
    """``document`` as JSON text that always encodes as UTF-8: numbers read from a file come
    back as written, and text holding a lone surrogate (``"\\ud800"`` in the input) is
    written with ``\\u`` escapes instead of failing."""
    try:
        text = json.dumps(document, indent=indent, ensure_ascii=False, default=_json_default)
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(document, indent=indent, ensure_ascii=True, default=_json_default)
    if _NUMBER_MARK in text:
        text = _MARKED_NUMBER.sub(r"\1", text)
    return text


def _json_default(value: object) -> object:
    if isinstance(value, Decimal) and value.is_finite():
        return _NUMBER_MARK + str(value)  # str() of a finite Decimal is JSON number syntax
    if isinstance(value, LongJsonNumber):
        return _NUMBER_MARK + value.text
    return str(value)
