"""One file, from bytes to report: validate everything, then publish the valid rows.

Validation reads the whole file first and finds file-level faults (a truncated gzip, a bad
byte near the end) before anything is sent, so a broken upload is never half-published. It
writes the valid rows, normalised, to a spool on local disk (``spool``); publishing reads
them from there in parts, skipping what earlier runs already settled (see
``checkpoints``): the file is parsed and validated once per invocation. A file with
rejected or ambiguous rows is read once more to list them. Every pass streams: memory does
not grow with the file (the duplicate index keeps a few bytes a row, see ``key_index``).

The CLI (``validate``, ``publish``) and the ingest Lambda both call ``ingest_file``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from achieveit_sync.client import AchieveItClient
from achieveit_sync.ingest.checkpoints import CheckpointStore, InMemoryCheckpoints, PartRecord
from achieveit_sync.ingest.publishing import PartPublisher, StopPublishingError
from achieveit_sync.ingest.reading import (
    CsvBatch,
    FileFormat,
    InvalidFileError,
    RawRecord,
    ReadLimits,
    RecordStream,
    open_records,
)
from achieveit_sync.ingest.report import (
    FileReport,
    FileStatus,
    RequestRecord,
    StopReason,
)
from achieveit_sync.ingest.row_files import RowsFileWriter
from achieveit_sync.ingest.spool import ValidSpool
from achieveit_sync.ingest.validation import (
    CHUNK_RECORDS,
    FieldProblem,
    FileLayoutError,
    Layout,
    RejectedRow,
    Validator,
    ValidColumns,
    ValidRow,
)
from achieveit_sync.updates import BodyFormat, UpdateKind, encode_updates

if TYPE_CHECKING:
    from achieveit_sync.ingest.sent_rows import SentRows
    from achieveit_sync.storage import ByteSource

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
DEFAULT_MAX_ROWS = 1_000_000
_ROWS_BETWEEN_TIME_CHECKS = 4096
_MAX_REQUEST_STEM_CHARS = 60
_API_ROW_NUMBER = re.compile(r"\brow \d+", re.IGNORECASE)


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
    kind_reason: str | None = None
    """Why ``kind``, in words ("dropped under incoming/progress/", "--kind metric")."""
    file_id: str = ""
    """Identifies this exact content for checkpoints (bucket, key and version or ETag)."""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestOptions:
    batch_size: int = DEFAULT_BATCH_SIZE
    body_format: BodyFormat = BodyFormat.JSON
    max_rows: int = DEFAULT_MAX_ROWS
    """Data rows (not blank lines) a file may hold (``INGEST_MAX_ROWS``)."""
    limits: ReadLimits = field(default_factory=ReadLimits)


def ingest_file(
    source: FileSource,
    *,
    client: AchieveItClient | None,
    rejected_sink: IO[bytes] | None = None,
    ambiguous_sink: IO[bytes] | None = None,
    checkpoints: CheckpointStore | None = None,
    sent_rows: SentRows | None = None,
    options: IngestOptions | None = None,
    should_stop: Callable[[], bool | StopReason] = lambda: False,
    on_progress: Callable[[FileReport], None] | None = None,
) -> FileReport:
    """Validate ``source`` and, with a ``client``, publish its valid rows.

    Rejected rows go to ``rejected_sink`` and rows that may have been applied (sent, no
    answer) to ``ambiguous_sink``, each in the file's own format with an ``Error`` column.
    Without a client nothing is sent (``validate``, ``publish --dry-run``). ``should_stop``
    is asked before each part and while validating: when it says yes (the Lambda is running
    out of time), or names a stop reason (``interrupted``: the CLI's Ctrl-C), the run stops
    cleanly with status ``in_progress`` and a later run resumes from the checkpoints.
    ``sent_rows`` (the CLI's ledger): rows that repeat what was last sent for their item and
    date are not sent but counted as sent earlier; rows sent now are recorded in it.

    Whatever happens, a report comes back: an unexpected error (a bug, AWS failing) ends
    the run with status ``failed``, stop reason ``error`` and the error's type and a safe
    message, so that the caller can store the report before retrying.
    """
    options = options or IngestOptions()
    if options.batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.monotonic()
    run = PublishingRun(
        source=source,
        report=FileReport(
            source={"name": source.display_name, **source.details},
            kind=source.kind.value if source.kind else None,
        ),
        client=client,
        checkpoints=checkpoints or InMemoryCheckpoints(),
        sent_rows=sent_rows,
        options=options,
        should_stop=should_stop,
        on_progress=on_progress,
    )
    report = run.report
    report.timings["startedAt"] = _now()
    try:
        _validate_and_publish(run)
        if report.counts.rejected or report.counts.ambiguous:
            _list_rejected_and_ambiguous(run, rejected_sink, ambiguous_sink)
    except Exception as exc:  # noqa: BLE001 - every file that was read gets a report
        _fail_unexpectedly(report, exc, client.scrub if client is not None else str)
    finally:
        if run.spool is not None:
            run.spool.close()
    report.timings["finishedAt"] = _now()
    report.timings["seconds"] = round(time.monotonic() - started, 3)
    return report


@dataclass
class PublishingRun:
    """One file being handled: what every pass needs, in one place."""

    source: FileSource
    report: FileReport
    client: AchieveItClient | None
    checkpoints: CheckpointStore
    sent_rows: SentRows | None
    options: IngestOptions
    should_stop: Callable[[], bool | StopReason]
    on_progress: Callable[[FileReport], None] | None
    day_first_evidence: str | None = None
    """Found by the first pass: a date that can only be day-first (``line 4: 31/10/2026``),
    beside dates that read either way (05/11/2026); those are then refused, not read
    month-first."""
    parts: dict[int, PartRecord] = field(default_factory=dict)
    """What is known of each part, for listing rows by fate after publishing."""
    spool: ValidSpool | None = None
    """The valid rows of the last validation pass (with a client: there is something to
    publish; or when planning), which publishing reads instead of the file."""
    planning: bool = False
    """``publish --dry-run``: spool the valid rows (to plan their requests) with no client."""

    decimal_comma_evidence: str | None = None
    """Found by the first pass: a decimal comma (``line 4: 0,25``); ``1.200`` is then
    refused as reading either way rather than read as 1.2."""

    def validator(self, stream: RecordStream) -> Validator:
        """A validator as every pass must use it: the same rules give the same rows."""
        european = self.decimal_comma_evidence
        if european is None and stream.dialect is not None and stream.dialect.delimiter == ";":
            european = (
                "the file is semicolon-separated, as Excel writes CSV where a comma is the "
                "decimal separator"
            )
        return Validator(
            self.source.kind,
            kind_reason=self.source.kind_reason,
            day_first_evidence=self.day_first_evidence,
            decimal_comma_evidence=european,
        )

    def open(self) -> RecordStream:
        return open_records(self.source.open(), self.source.name, self.options.limits)


def _validate_and_publish(run: PublishingRun) -> None:
    """Validate, then publish (with a client)."""
    report = run.report
    started = time.monotonic()
    try:
        if _validate_pass(run) and run.report.stop_reason is None:
            _validate_pass(run)  # again, with what the first pass learnt about its dates or numbers
    except (InvalidFileError, FileLayoutError) as exc:
        _fail_file(report, exc)
        return
    report.timings["validateSeconds"] = round(time.monotonic() - started, 3)
    if report.stop_reason is not None:
        return
    if run.client is None:
        report.status = FileStatus.VALIDATED
        report.counts.not_sent = report.counts.valid
        return
    publishing_started = time.monotonic()
    try:
        _publish(run, run.client)
    except (InvalidFileError, FileLayoutError) as exc:  # the file changed between passes
        _fail_file(report, exc)
    report.timings["publishSeconds"] = round(time.monotonic() - publishing_started, 3)


def _validate_pass(run: PublishingRun) -> bool:
    """A validation pass: every verdict, counted, and the valid rows spooled for publishing.
    (A function of its own so that its duplicate index is freed before publishing.)

    Stops early, with stop reason ``time``, when ``should_stop`` says so: nothing has been
    sent then, and the next run validates again from the start. Finding dates that can
    only be day-first beside ambiguous ones (or decimal commas) sets the run's evidence and
    returns True: the caller validates again with it, and only that pass's spool is kept."""
    report, options = run.report, run.options
    stream = run.open()
    report.file_format = stream.file_format.value
    report.encoding = stream.encoding
    report.compressed = stream.compressed
    if stream.dialect is not None:
        report.dialect = stream.dialect.described
    validator = run.validator(stream)
    if run.spool is not None:
        run.spool.close()
    run.spool = spool = ValidSpool() if run.client is not None or run.planning else None
    counts = report.counts
    counts.rows_read = counts.valid = 0
    counts.rejected = counts.rejected_by_validation = 0
    for valid, rejected_lines in _verdicts(validator, stream):
        before = counts.rows_read
        after = before + len(valid.lines) + len(rejected_lines)
        boundary = (before // _ROWS_BETWEEN_TIME_CHECKS + 1) * _ROWS_BETWEEN_TIME_CHECKS
        if boundary <= after:  # checks every 4096 rows, on the row that makes them
            line = _line_of_verdict(valid, rejected_lines, boundary - before)
            if boundary > options.max_rows:
                raise _too_many_rows(options.max_rows, line)
            stop = run.should_stop()
            if stop:
                counts.rows_read = boundary
                counts.valid += sum(1 for valid_line in valid.lines if valid_line <= line)
                for rejected_line in rejected_lines:
                    if rejected_line <= line:
                        report.count_rejection(by_api=False)
                _stop_validating(report, line, _stop_reason(stop))
                return False
        counts.rows_read = after
        counts.valid += len(valid.lines)
        for _ in rejected_lines:
            report.count_rejection(by_api=False)
        if spool is not None and valid.lines:
            spool.add(valid)
    if counts.rows_read > options.max_rows:
        raise _too_many_rows(options.max_rows, None)
    _refuse_nothing_at_all(counts.rows_read, validator, stream)
    if spool is not None:
        spool.finish()
    return _findings(run, validator, stream)


def _refuse_nothing_at_all(rows: int, validator: Validator, stream: RecordStream) -> None:
    """A file of nothing but blank lines, a byte-order mark or a sep= line fails as an empty
    one does (a header alone is fine: "no rows"; so is a JSON ``[]``, which says so)."""
    if not rows and validator.layout is None and stream.file_format is not FileFormat.JSON:
        raise InvalidFileError(
            "the file holds nothing to read (only blank lines, a byte-order mark or a sep= line)",
            "export the data again; the upload may have failed",
        )


def _findings(run: PublishingRun, validator: Validator, stream: RecordStream) -> bool:
    """What a whole pass found, into the report; True when it found evidence (day-first
    dates, decimal commas) that the rules must take into account in another pass."""
    report, counts = run.report, run.report.counts
    counts.skipped_blank = stream.blank_lines
    counts.skipped_untouched = validator.untouched_rows
    report.warnings = list(validator.warnings)
    report.ignored = list(validator.ignored)
    report.kind = validator.kind.value if validator.kind else report.kind
    report.kind_reason = validator.kind_reason
    if validator.layout is not None and validator.layout.header is not None:
        report.header = list(validator.layout.header)
    again = False
    if validator.dates.ambiguous and run.day_first_evidence is None:
        run.day_first_evidence = validator.dates.first_day_first
        again = run.day_first_evidence is not None
    if validator.first_decimal_comma is not None and validator.decimal_comma_evidence is None:
        run.decimal_comma_evidence = (
            f"this file writes decimal commas ({validator.first_decimal_comma})"
        )
        again = True
    return again


def _stop_reason(stop: bool | StopReason) -> StopReason:
    return stop if isinstance(stop, StopReason) else StopReason.TIME


_WHY_STOPPED = {
    StopReason.TIME: "to finish within the time limit",
    StopReason.INTERRUPTED: "as asked (Ctrl-C or a termination signal)",
}


def _verdicts(
    validator: Validator, stream: RecordStream
) -> Iterator[tuple[ValidColumns, list[int]]]:
    """The verdicts of a pass, a batch at a time: the valid rows and the lines of rejected
    rows. CSV batches are checked a column at a time; other records (JSON, and CSV rows
    the careful reader took one by one) in chunks of up to 512 records, judged together.
    Records read before a reading error are judged, and counted, before it is raised."""
    items: Iterator[CsvBatch | RawRecord] = (
        iter(stream.batches) if stream.batches is not None else iter(stream.records)
    )
    chunk: list[RawRecord] = []
    while True:
        try:
            item = next(items, None)
        except Exception:  # the file cannot be read on
            if chunk:
                yield validator.validate_chunk(chunk)
            raise
        if isinstance(item, RawRecord):
            chunk.append(item)
            if len(chunk) < CHUNK_RECORDS:
                continue
        if chunk:
            yield validator.validate_chunk(chunk)
            chunk = []
        if item is None:
            return
        if isinstance(item, CsvBatch):
            yield validator.validate_batch(item)


def _line_of_verdict(valid: ValidColumns, rejected_lines: list[int], nth: int) -> int:
    """The line of the ``nth`` (1-based) verdict of a batch, in file order."""
    lines: list[int] = sorted([*valid.lines, *rejected_lines])
    return lines[nth - 1]


def _stop_validating(report: FileReport, line: int, reason: StopReason) -> None:
    report.status = FileStatus.IN_PROGRESS
    report.stop_reason = reason
    report.counts.not_sent = report.counts.valid
    report.warnings.append(
        f"stopped while validating (at line {line}) {_WHY_STOPPED[reason]}; nothing "
        "was sent in this run, and the next run validates the file again from the start"
    )


def _too_many_rows(max_rows: int, line: int | None) -> InvalidFileError:
    return InvalidFileError(
        f"the file has more than {max_rows:,} rows",
        f"split it into files of at most {max_rows:,} rows, or raise INGEST_MAX_ROWS",
        line=line,
    )


def _publish(run: PublishingRun, client: AchieveItClient) -> None:
    report = run.report
    known_parts = run.checkpoints.load(run.source.file_id)
    _keep_the_earlier_batch_size(run, known_parts)
    publisher = PartPublisher(
        client=client,
        checkpoints=run.checkpoints,
        file_id=run.source.file_id,
        name_stem=request_stem(run.source.name),
        body_format=run.options.body_format,
    )
    # The valid rows as validation left them, in the same parts as any earlier run cut.
    assert run.spool is not None  # noqa: S101 - validation spools when there is a client
    try:
        stop_status = _publish_parts(run, run.spool, known_parts, publisher)
    finally:
        report.rows_settled_this_run = publisher.settled_rows
        report.published_this_run = publisher.accepted_rows
    report.counts.not_sent = (
        report.counts.valid
        - report.counts.published
        - report.counts.rejected_by_api
        - report.counts.ambiguous
        - report.counts.sent_earlier
    )
    if stop_status is not None:
        report.status = stop_status
    elif report.counts.ambiguous:
        report.status = FileStatus.COMPLETED_WITH_AMBIGUITY
    elif report.counts.rejected:
        report.status = FileStatus.COMPLETED_WITH_REJECTIONS
    else:
        report.status = FileStatus.COMPLETED


def _keep_the_earlier_batch_size(run: PublishingRun, known_parts: dict[int, PartRecord]) -> None:
    """Parts are cut by the batch size: a run resuming a file must cut them as the earlier
    run did, or rows are skipped or sent twice."""
    recorded = {record.batch_size for record in known_parts.values() if record.batch_size}
    if not recorded and len(known_parts) > 1 and 1 in known_parts:
        recorded = {known_parts[1].rows}  # written before the batch size was recorded
    if len(recorded) == 1:
        earlier = recorded.pop()
        if earlier != run.options.batch_size:
            run.report.warnings.append(
                f"continued with the batch size of the earlier run of this file ({earlier}, "
                f"not {run.options.batch_size}): its parts are cut that way, so no row is "
                "sent twice or left out"
            )
            run.options = replace(run.options, batch_size=earlier)


def _publish_parts(
    run: PublishingRun,
    spool: ValidSpool,
    known_parts: dict[int, PartRecord],
    publisher: PartPublisher,
) -> FileStatus | None:
    """Every part in order: skip what is settled, send the rest, fold the outcomes into
    the report; the status to stop with, or ``None`` when every part was handled."""
    report, options = run.report, run.options
    stop_status: FileStatus | None = None
    parts = spool.parts(options.batch_size, json_bodies=options.body_format is BodyFormat.JSON)
    for part_number, rows in enumerate(parts, start=1):
        record = known_parts.pop(part_number, None) or PartRecord(
            part_number, rows=len(rows), batch_size=options.batch_size
        )
        run.parts[part_number] = record
        try:
            _settle_interrupted(record, run.checkpoints, run.source.file_id)
            if stop_status is None and not record.complete:
                settled = record.settled_lines()
                pending = [row for row in rows if row.line not in settled]
                ledger = _LedgerEntries.of(run.sent_rows, record, pending)
                pending = ledger.to_send if ledger is not None else pending
                stop = run.should_stop() if pending else False
                if stop:
                    stop_status = FileStatus.IN_PROGRESS
                    report.stop_reason = _stop_reason(stop)
                    report.warnings.append(
                        f"stopped before part {part_number} {_WHY_STOPPED[report.stop_reason]}; "
                        "the next run continues from there"
                    )
                elif pending or (ledger is not None and ledger.sent_earlier):
                    if ledger is not None:
                        ledger.before_sending()
                    try:
                        publisher.publish(record, pending)
                    except StopPublishingError as exc:
                        stop_status = (
                            FileStatus.IN_PROGRESS if exc.retry_later else FileStatus.FAILED
                        )
                        report.stop_reason = (
                            StopReason.API_UNAVAILABLE
                            if exc.retry_later
                            else StopReason.API_REFUSED
                        )
                        report.file_error = {"reason": str(exc), "hint": exc.hint}
                    finally:
                        if ledger is not None:
                            ledger.after_sending(record)
        finally:
            # Also when something unexpected stops the run (a full disk, a bug): rows
            # AchieveIt answered in this part are counted in the report, not left "not sent".
            _fold_part(report, record)
        if run.on_progress is not None:
            run.on_progress(report)
    return stop_status


@dataclass
class _LedgerEntries:
    """One part's rows against the CLI's ledger: which repeat what was last sent for their
    item and date (settled as sent earlier), and the entries to record around sending the
    rest."""

    ledger: SentRows
    to_send: list[ValidRow]
    sent_earlier: list[int]
    digests: dict[int, tuple[int, int]]
    """Line -> (key, content) of each row to send."""
    before: dict[int, int] = field(default_factory=dict)
    """Line -> what the ledger held for the row's key before it was sent."""

    @classmethod
    def of(
        cls, ledger: SentRows | None, record: PartRecord, pending: list[ValidRow]
    ) -> _LedgerEntries | None:
        if ledger is None:
            return None
        from achieveit_sync.ingest.sent_rows import row_digests

        entries = cls(ledger, [], [], {})
        for row in pending:
            key, content = row_digests(row.update)
            if ledger.already_sent(key, content):
                entries.sent_earlier.append(row.line)
            else:
                entries.to_send.append(row)
                entries.digests[row.line] = (key, content)
        record.sent_earlier_lines.extend(entries.sent_earlier)
        return entries

    def before_sending(self) -> None:
        """Recorded as sent before any request leaves (as the checkpoint's "in flight"):
        a run stopped mid-request leaves them recorded, never free to be sent again."""
        self.before = {line: self.ledger.last_sent(key) for line, (key, _) in self.digests.items()}
        self.ledger.record(self.digests.values())

    def after_sending(self, record: PartRecord) -> None:
        """Rows AchieveIt refused, and rows never sent (a stop before their request), get
        their earlier entry back; accepted, ambiguous and in-flight rows stay recorded."""
        if record.complete:
            unsent = set(record.refused)
        else:
            sent = {*record.accepted_lines, *record.ambiguous, *record.in_flight}
            unsent = {line for line in self.digests if line not in sent}
        self.ledger.record(
            (self.digests[line][0], self.before[line])
            for line in sorted(unsent & set(self.digests))
        )


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


def _fold_part(report: FileReport, record: PartRecord) -> None:
    """Count what is settled of one part; the rows are listed by ``_list_rows_by_fate``."""
    report.counts.published += record.accepted
    report.requests.extend(_request_records(record))
    for _ in record.refused:
        report.count_rejection(by_api=True)
    report.counts.ambiguous += len(record.ambiguous)
    report.counts.sent_earlier += len(record.sent_earlier_lines)


def _list_rejected_and_ambiguous(
    run: PublishingRun, rejected_sink: IO[bytes] | None, ambiguous_sink: IO[bytes] | None
) -> None:
    """One more read of the file, for files with rejected or ambiguous rows only: each such
    row, in line order, into the report's lists and the rejected and ambiguous files. The
    files start with the input's own header (or the documented one), so that a fixed file
    dropped back reads the same; AchieveIt's refusals take their place among the lines."""
    stream = run.open()
    validator = run.validator(stream)
    lists = _RowLists(run.report, stream, rejected_sink, ambiguous_sink)
    valid_rows = 0
    spooled = run.spool.rows_in_order() if run.spool is not None else None
    try:
        for result in validator.validate(stream.records):
            lists.layout = validator.layout
            if isinstance(result, RejectedRow):
                lists.rejected(result)
                continue
            valid_rows += 1
            if spooled is not None:
                _same_as_validated(result, next(spooled, None))
            # Parts are cut from the valid rows in order, as the publishing pass cut them.
            record = run.parts.get((valid_rows - 1) // run.options.batch_size + 1)
            if record is None:
                continue
            message = record.refused.get(result.line)
            if message is not None:
                lists.rejected(refused_by_api(result, message))
            elif result.line in record.ambiguous:
                lists.ambiguous(result, record.ambiguous[result.line])
    except FileChangedError as exc:
        _fail_file(run.report, exc, not_sent=False)
    except (InvalidFileError, FileLayoutError):
        pass  # the file fails there, as the first pass said: the rows before it are listed
    finally:
        lists.close()
    if spooled is not None and next(spooled, None) is not None:
        _fail_file(run.report, FileChangedError(valid_rows + 1), not_sent=False)


class FileChangedError(InvalidFileError):
    """The file read to list its rejected rows is not the file that was validated (the CLI
    reads a path, which may be written to meanwhile)."""

    def __init__(self, valid_row: int, line: int | None = None) -> None:
        super().__init__(
            f"the file changed while it was being handled (its valid row {valid_row:,} is "
            "not the row that was validated and published)",
            "send the file again once it is complete: rows already sent are not sent again",
            line=line,
        )


def _same_as_validated(row: ValidRow, spooled: ValidRow | None) -> None:
    if spooled is None or spooled.line != row.line or spooled.update != row.update:
        raise FileChangedError(row.line, row.line)


class _RowLists:
    """Rejected and ambiguous rows, named in the report and written to their files."""

    def __init__(
        self,
        report: FileReport,
        stream: RecordStream,
        rejected_sink: IO[bytes] | None,
        ambiguous_sink: IO[bytes] | None,
    ) -> None:
        self._report = report
        self._writers = {
            name: RowsFileWriter(sink, stream.file_format, stream.dialect, stream.encoding)
            for name, sink in (("rejected", rejected_sink), ("ambiguous", ambiguous_sink))
            if sink is not None
        }
        self.layout: Layout | None = None

    def rejected(self, row: RejectedRow) -> None:
        self._report.list_rejection(row)
        self._write("rejected", row, f"{row.record.where}: {row.summary}")

    def ambiguous(self, row: ValidRow, request: str) -> None:
        self._report.list_ambiguous(row, request)
        self._write(
            "ambiguous",
            row,
            f"{row.record.where}: sent in {request} without an answer: it may have been applied; "
            "check AchieveIt before sending it again",
        )

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()

    def _write(self, name: str, row: RejectedRow | ValidRow, error: str) -> None:
        writer = self._writers.get(name)
        if writer is not None:
            writer.set_layout(self.layout)
            writer.write(row, error)


def refused_by_api(row: ValidRow, message: str) -> RejectedRow:
    """A valid row AchieveIt refused, as a rejection with AchieveIt's own words."""
    if _API_ROW_NUMBER.search(message):
        # A split request numbers its own rows: say whose "row" that is.
        message = f"{message} (AchieveIt's row numbers count rows of its request, not lines)"
    return RejectedRow(
        row.line,
        (
            FieldProblem(
                "(row)",
                row.update.external_id,
                f"refused by AchieveIt: {message}",
                "check the external ID, the item's metric and the service account's access "
                "to the item",
            ),
        ),
        row.record,
    )


def _request_records(record: PartRecord) -> list[RequestRecord]:
    return [RequestRecord(**document) for document in record.requests]


def request_stem(name: str) -> str:
    """The file name as it starts each request's name (``<stem>.part-0001.json``), kept
    short: it travels in the URL and in every checkpoint."""
    stem = PurePosixPath(name).name
    if len(stem) <= _MAX_REQUEST_STEM_CHARS:
        return stem
    digest = hashlib.sha256(stem.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{stem[: _MAX_REQUEST_STEM_CHARS - 11]}~{digest}"


def _fail_unexpectedly(report: FileReport, exc: Exception, scrub: Callable[[str], str]) -> None:
    """An error nobody planned for: the report says what it was, never what it carried."""
    message = scrub(f"{type(exc).__name__}: {exc}")
    # Scrubbed, like everything else: the error's text may quote what it was working on.
    log.error(
        "unexpected error while handling the file",
        extra={
            "file": report.source.get("name"),
            "error": message[:1000],
            "traceback": scrub("".join(traceback.format_exception(exc)))[-8000:],
        },
    )
    report.status = FileStatus.FAILED
    report.stop_reason = StopReason.ERROR
    report.file_error = {
        "reason": f"an unexpected error stopped the run ({message[:300]})",
        "hint": "send the file again once the cause is fixed: rows already settled are "
        "not sent again",
        "errorType": type(exc).__name__,
        "message": message[:300],
    }
    report.counts.not_sent = max(
        0,
        report.counts.valid
        - report.counts.published
        - report.counts.rejected_by_api
        - report.counts.ambiguous
        - report.counts.sent_earlier,
    )


def _fail_file(report: FileReport, exc: Exception, *, not_sent: bool = True) -> None:
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
    if not_sent:
        report.counts.not_sent = report.counts.valid


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class PlannedRequest:
    rows: int
    body_bytes: int


def plan_requests(
    source: FileSource, options: IngestOptions, sent_rows: SentRows | None = None
) -> tuple[list[PlannedRequest], int]:
    """The requests ``publish`` would make for ``source`` (rows and body size each), and
    how many valid rows it would not send because ``sent_rows`` says they were sent
    earlier, without sending anything: what ``publish --dry-run`` shows. Validates as a
    publishing run does (both passes, so a day-first or decimal-comma file plans the same
    rows) and plans from the valid rows it spooled, as publishing does; expects a file
    that validated."""
    from achieveit_sync.ingest.sent_rows import row_digests

    run = PublishingRun(
        source=source,
        report=FileReport(source={"name": source.display_name}),
        client=None,
        checkpoints=InMemoryCheckpoints(),
        sent_rows=None,
        options=options,
        should_stop=lambda: False,
        on_progress=None,
        planning=True,
    )
    if _validate_pass(run):
        _validate_pass(run)
    assert run.spool is not None  # noqa: S101 - a planning run spools
    planned: list[PlannedRequest] = []
    sent_earlier = 0
    for part in run.spool.parts(options.batch_size):  # as publishing cuts them
        rows = part
        if sent_rows is not None:  # the part as publish would send it
            rows = [r for r in part if not sent_rows.already_sent(*row_digests(r.update))]
            sent_earlier += len(part) - len(rows)
        if rows:
            body = encode_updates([row.update for row in rows], options.body_format)
            planned.append(PlannedRequest(len(rows), len(body)))
    run.spool.close()
    return planned, sent_earlier
