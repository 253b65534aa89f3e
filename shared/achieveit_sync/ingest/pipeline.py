"""One file, from bytes to report: validate everything, then publish the valid rows.

Two passes over the file, on purpose. The first validates every row and finds file-level
faults (a truncated gzip, a bad byte near the end) before anything is sent, so a broken
upload is never half-published; it also writes the rejected rows. The second re-reads the
file and publishes the valid rows in parts, skipping what earlier runs already settled
(see ``checkpoints``). Both passes stream: memory does not grow with the file.

The CLI (``validate``, ``publish``) and the ingest Lambda both call ``ingest_file``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import IO, Any

from achieveit_sync.client import AchieveItClient
from achieveit_sync.ingest.checkpoints import CheckpointStore, InMemoryCheckpoints, PartRecord
from achieveit_sync.ingest.publishing import PartPublisher, StopPublishingError
from achieveit_sync.ingest.reading import ByteSource, InvalidFileError, open_records
from achieveit_sync.ingest.report import (
    FileReport,
    FileStatus,
    RejectedRowsWriter,
    RequestRecord,
    StopReason,
)
from achieveit_sync.ingest.validation import (
    FieldProblem,
    KindUnknownError,
    RejectedRow,
    Validator,
    ValidRow,
)
from achieveit_sync.updates import BodyFormat, UpdateKind

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class FileSource:
    """Where the bytes come from, and what the file is said to be."""

    name: str
    """The key or path; its extension decides the format first."""
    display_name: str
    """``s3://bucket/key`` or the path, for messages."""
    open: Callable[[], ByteSource]
    """Opens the file from its start (called once per pass)."""
    kind: UpdateKind | None = None
    """From the drop folder; ``None`` to infer from the columns."""
    file_id: str = ""
    """Identifies this exact content for checkpoints (bucket, key and version or ETag)."""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestOptions:
    batch_size: int = DEFAULT_BATCH_SIZE
    body_format: BodyFormat = BodyFormat.JSON


def ingest_file(
    source: FileSource,
    *,
    client: AchieveItClient | None,
    rejected_sink: IO[bytes] | None = None,
    ambiguous_sink: IO[bytes] | None = None,
    checkpoints: CheckpointStore | None = None,
    options: IngestOptions | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[FileReport], None] | None = None,
) -> FileReport:
    """Validate ``source`` and, with a ``client``, publish its valid rows.

    Rejected rows go to ``rejected_sink`` and rows that may have been applied (sent, no
    answer) to ``ambiguous_sink``, each in the file's own format with an ``Error`` column.
    Without a client nothing is sent (``validate``, ``publish --dry-run``). ``should_stop``
    is asked before each part: when it says yes (the Lambda is running out of time) the run
    stops cleanly with status ``in_progress`` and a later run resumes from the checkpoints.
    """
    options = options or IngestOptions()
    if options.batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.monotonic()
    report = FileReport(
        source={"name": source.display_name, **source.details},
        kind=source.kind.value if source.kind else None,
    )
    report.timings["startedAt"] = _now()
    writer: RejectedRowsWriter | None = None
    try:
        writer = _validate_pass(source, report, rejected_sink)
    except (InvalidFileError, KindUnknownError) as exc:
        _fail_file(report, exc)
        _finish(report, writer, started)
        return report
    report.timings["validateSeconds"] = round(time.monotonic() - started, 3)

    if client is None:
        report.status = FileStatus.VALIDATED
        report.counts.not_sent = report.counts.valid
        _finish(report, writer, started)
        return report

    publishing_started = time.monotonic()
    try:
        _publish(
            source,
            report,
            writer,
            ambiguous_sink,
            client,
            checkpoints or InMemoryCheckpoints(),
            options,
            should_stop,
            on_progress,
        )
    except (InvalidFileError, KindUnknownError) as exc:  # the file changed between passes
        _fail_file(report, exc)
    report.timings["publishSeconds"] = round(time.monotonic() - publishing_started, 3)
    _finish(report, writer, started)
    return report


def _validate_pass(
    source: FileSource, report: FileReport, rejected_sink: IO[bytes] | None
) -> RejectedRowsWriter | None:
    """The first pass: every verdict, counted and reported; the rejected rows written.
    (A function of its own so that its duplicate index is freed before the second pass.)"""
    stream = open_records(source.open(), source.name)
    report.file_format = stream.file_format.value
    report.encoding = stream.encoding
    report.compressed = stream.compressed
    writer = None
    if rejected_sink is not None:
        writer = RejectedRowsWriter(rejected_sink, stream.file_format)
    validator = Validator(source.kind)
    counts = report.counts
    try:
        for result in validator.validate(stream.records):
            counts.rows_read += 1
            if isinstance(result, ValidRow):
                counts.valid += 1
            else:
                report.reject(result)
                if writer is not None:
                    writer.set_layout(validator.layout)
                    writer.write(result, f"line {result.line}: {result.summary}")
    except BaseException:
        if writer is not None:
            writer.close()  # hand the sink back intact (the caller still owns it)
        raise
    counts.skipped_blank = stream.blank_lines
    report.warnings.extend(validator.warnings)
    report.kind = validator.kind.value if validator.kind else report.kind
    if validator.layout is not None and validator.layout.header is not None:
        report.header = list(validator.layout.header)
    return writer


def _publish(
    source: FileSource,
    report: FileReport,
    writer: RejectedRowsWriter | None,
    ambiguous_sink: IO[bytes] | None,
    client: AchieveItClient,
    checkpoints: CheckpointStore,
    options: IngestOptions,
    should_stop: Callable[[], bool],
    on_progress: Callable[[FileReport], None] | None,
) -> None:
    known_parts = checkpoints.load(source.file_id)
    publisher = PartPublisher(
        client=client,
        checkpoints=checkpoints,
        file_id=source.file_id,
        name_stem=PurePosixPath(source.name).name,
        body_format=options.body_format,
    )
    # The second pass: the same bytes validate to the same rows, in the same parts.
    stream = open_records(source.open(), source.name)
    validator = Validator(source.kind)
    ambiguous = None
    if ambiguous_sink is not None:
        ambiguous = RejectedRowsWriter(ambiguous_sink, stream.file_format)
    try:
        stop_status = _publish_parts(
            source,
            report,
            writer,
            ambiguous,
            stream.records,
            validator,
            known_parts,
            publisher,
            checkpoints,
            options,
            should_stop,
            on_progress,
        )
    finally:
        if ambiguous is not None:
            ambiguous.close()
    report.counts.not_sent = (
        report.counts.valid
        - report.counts.published
        - report.counts.rejected_by_api
        - report.counts.ambiguous
    )
    if stop_status is not None:
        report.status = stop_status
    elif report.counts.ambiguous:
        report.status = FileStatus.COMPLETED_WITH_AMBIGUITY
    elif report.counts.rejected:
        report.status = FileStatus.COMPLETED_WITH_REJECTIONS
    else:
        report.status = FileStatus.COMPLETED


def _publish_parts(
    source: FileSource,
    report: FileReport,
    writer: RejectedRowsWriter | None,
    ambiguous: RejectedRowsWriter | None,
    records: Iterator[Any],
    validator: Validator,
    known_parts: dict[int, PartRecord],
    publisher: PartPublisher,
    checkpoints: CheckpointStore,
    options: IngestOptions,
    should_stop: Callable[[], bool],
    on_progress: Callable[[FileReport], None] | None,
) -> FileStatus | None:
    """Every part in order: skip what is settled, send the rest, fold the outcomes into
    the report; the status to stop with, or ``None`` when every part was handled."""
    stop_status: FileStatus | None = None
    for part_number, rows in enumerate(_parts(validator, records, options.batch_size), start=1):
        record = known_parts.get(part_number) or PartRecord(part_number, rows=len(rows))
        _settle_interrupted(record, checkpoints, source.file_id)
        if stop_status is None and not record.complete:
            settled = record.settled_lines()
            pending = [row for row in rows if row.line not in settled]
            if pending and should_stop():
                stop_status = FileStatus.IN_PROGRESS
                report.stop_reason = StopReason.TIME
                report.warnings.append(
                    f"stopped before part {part_number} to finish within the time limit; "
                    "the next run continues from there"
                )
            elif pending:
                try:
                    publisher.publish(record, pending)
                except StopPublishingError as exc:
                    stop_status = FileStatus.IN_PROGRESS if exc.retry_later else FileStatus.FAILED
                    report.stop_reason = (
                        StopReason.API_UNAVAILABLE if exc.retry_later else StopReason.API_REFUSED
                    )
                    report.file_error = {
                        "reason": str(exc),
                        "hint": "the run resumes from where it stopped"
                        if exc.retry_later
                        else "fix the cause (API key, access, base URL), then re-process "
                        "the file: rows already accepted are not sent again",
                    }
        if ambiguous is not None:
            ambiguous.set_layout(validator.layout)
        _fold_part(report, writer, ambiguous, record, rows)
        if on_progress is not None:
            on_progress(report)
    return stop_status


def _parts(
    validator: Validator, records: Iterator[Any], batch_size: int
) -> Iterator[list[ValidRow]]:
    part: list[ValidRow] = []
    for result in validator.validate(records):
        if isinstance(result, ValidRow):
            part.append(result)
            if len(part) == batch_size:
                yield part
                part = []
    if part:
        yield part


def _settle_interrupted(record: PartRecord, checkpoints: CheckpointStore, file_id: str) -> None:
    """Rows a crashed run was sending when it died: AchieveIt may have applied them."""
    if not record.in_flight:
        return
    request = record.in_flight_request or "an interrupted request"
    for line in record.in_flight:
        record.ambiguous[line] = f"{request} (interrupted: no answer was recorded)"
    record.in_flight = []
    record.in_flight_request = ""
    checkpoints.save(file_id, record)


def _fold_part(
    report: FileReport,
    writer: RejectedRowsWriter | None,
    ambiguous: RejectedRowsWriter | None,
    record: PartRecord,
    rows: list[ValidRow],
) -> None:
    report.counts.published += record.accepted
    report.requests.extend(_request_records(record))
    if not record.refused and not record.ambiguous:
        return
    ambiguous_rows = []
    for row in rows:
        message = record.refused.get(row.line)
        if message is not None:
            rejected = RejectedRow(
                row.line,
                (
                    FieldProblem(
                        "(row)",
                        row.update.external_id,
                        f"refused by AchieveIt: {message}",
                        "check the external ID, the item's metric and the service "
                        "account's access to the item",
                    ),
                ),
                row.record,
            )
            report.reject(rejected, by_api=True)
            if writer is not None:
                writer.write(row, f"line {row.line}: refused by AchieveIt: {message}")
        elif row.line in record.ambiguous:
            ambiguous_rows.append(row)
    for row in ambiguous_rows:
        request = record.ambiguous[row.line]
        report.mark_ambiguous([row], request)
        if ambiguous is not None:
            ambiguous.write(
                row,
                f"line {row.line}: sent in {request} without an answer: it "
                "may have been applied; check AchieveIt before sending it again",
            )


def _request_records(record: PartRecord) -> list[RequestRecord]:
    return [RequestRecord(**document) for document in record.requests]


def _fail_file(report: FileReport, exc: Exception) -> None:
    report.status = FileStatus.FAILED
    if isinstance(exc, InvalidFileError):
        report.file_error = {
            "reason": exc.reason,
            "hint": exc.hint,
            "line": exc.line,
            "byteOffset": exc.byte_offset,
            "message": str(exc),
        }
    else:
        report.file_error = {"reason": str(exc), "hint": "", "message": str(exc)}
    report.counts.not_sent = report.counts.valid


def _finish(report: FileReport, writer: RejectedRowsWriter | None, started: float) -> None:
    if writer is not None:
        writer.close()
    report.timings["finishedAt"] = _now()
    report.timings["seconds"] = round(time.monotonic() - started, 3)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
