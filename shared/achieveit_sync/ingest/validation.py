"""Validating raw records into progress or metric updates, row by row.

Every rejection names the line, the field, the value, why, and how to fix it. Valid rows are
never held back by invalid ones. Nothing is silently fixed: a value is either accepted as
written (a status in another case, a date-time whose time is dropped, as documented) or
rejected with a hint.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from itertools import islice
from operator import itemgetter
from typing import NamedTuple

from achieveit_sync.errors import AchieveItSyncError
from achieveit_sync.ingest.reading import CsvBatch, LongJsonNumber, RawRecord
from achieveit_sync.key_index import KeyTexts, SeenKeys
from achieveit_sync.spreadsheet import PLAIN_NUMBER, unneutralise
from achieveit_sync.updates import (
    METRIC_CSV_COLUMNS,
    METRIC_MAX_CHARS,
    METRIC_RANGE_HINT,
    PROGRESS_CSV_COLUMNS,
    MetricUpdate,
    ProgressUpdate,
    Status,
    Update,
    UpdateKind,
    metric_value_problem,
)

# Canonical field names, used in reports and as the rejected file's JSON keys.
EXTERNAL_ID = "externalId"
STATUS = "status"
METRIC_VALUE = "metricValue"
AS_OF_DATE = "asOfDate"
COMMENT = "comment"

_FIELD_BY_FOLDED_NAME = {
    "externalid": EXTERNAL_ID,
    "status": STATUS,
    "metricvalue": METRIC_VALUE,
    "currentmetricvalue": METRIC_VALUE,
    "asofdate": AS_OF_DATE,
    "comment": COMMENT,
}
INFORMATIONAL_COLUMNS = frozenset({"itemname", "name", "sequenceid", "plan", "error"})
"""Columns the ingest ignores without a warning: the upload template's item name, and the
``Error`` column of a rejected-rows file dropped again after fixing."""

DEFAULT_COLUMNS = {
    UpdateKind.PROGRESS: (EXTERNAL_ID, STATUS, METRIC_VALUE, AS_OF_DATE, COMMENT),
    UpdateKind.METRIC: (EXTERNAL_ID, METRIC_VALUE, AS_OF_DATE, COMMENT),
}
"""The documented column order of a CSV without a header row."""

DAY_FIRST_REASON = "looks day-first (DD/MM/YYYY)"

DISPLAY_NAMES = {
    EXTERNAL_ID: "External ID",
    STATUS: "Status",
    METRIC_VALUE: "Metric Value",
    AS_OF_DATE: "As Of Date",
    COMMENT: "Comment",
}

_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", re.ASCII)
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+", re.ASCII)
_EUROPEAN_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+),\d+", re.ASCII)
"""1,5 or 1.200,50: a decimal comma, with dots between thousands or none."""
_DOT_GROUPED = re.compile(r"[+-]?[1-9]\d{0,2}(?:\.\d{3})+", re.ASCII)
"""1.200 or 12.000.000: in a file with decimal commas, a dot may separate thousands."""
DECIMAL_COMMA_REASON = "uses a decimal comma"
_DECIMAL_COMMA_REASONS = frozenset({DECIMAL_COMMA_REASON})
_SPACED_THOUSANDS = re.compile("[+-]?\\d{1,3}(?:[ \u00a0\u202f]\\d{3})+(?:[.,]\\d+)?", re.ASCII)
_TYPOGRAPHIC_MINUS = ("\u2212", "\u2013", "\u2012", "\ufe63", "\uff0d")
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})", re.ASCII)
_ISO_DATE_PREFIX = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:$|[T ])", re.ASCII)
_US_DATE_TIME = re.compile(
    r"(\d{1,2}/\d{1,2}/\d{4}) +(\d{1,2}):(\d{2})(?::(\d{2}))?(?: *([AaPp][Mm]))?", re.ASCII
)
"""A US date with a time, as Excel writes a date column formatted m/d/yyyy h:mm."""
_DASHED_OR_DOTTED_DATE = re.compile(r"(\d{1,2})([-.])(\d{1,2})\2(\d{4})", re.ASCII)
_STATUS_HINTS = {
    "cancelled": "AchieveIt spells it 'Canceled' (one l)",
    "complete": "did you mean 'Achieved'?",
    "completed": "did you mean 'Achieved'?",
    "done": "did you mean 'Achieved'?",
    "ontrack": "write it with a space: 'On Track'",
    "offtrack": "write it with a space: 'Off Track'",
    "atrisk": "write it with a space: 'At Risk'",
    "notstarted": "write it with a space: 'Not Started'",
    "in progress": "use 'On Track', 'At Risk' or 'Off Track'",
}
_ALL_STATUSES = ", ".join(status.value for status in Status)
_STATUS_BY_SPELLING = {
    spelling: status
    for status in Status
    for spelling in (status.value, status.value.lower(), status.value.upper())
}
_CONTROL_CHARACTER = re.compile(
    "[\x00-\x1f\x7f-\x9f"  # control characters
    "\u2028\u2029"  # line and paragraph separators
    # every format character (Unicode category Cf): soft hyphen, zero-width ones,
    # bidirectional marks, embeddings and isolates, a stray byte-order mark, tags...
    "\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f]"
)
"""Control characters, line and paragraph separators, and invisible formatting characters
(zero-width, soft hyphen, bidirectional marks and overrides, a stray byte-order mark): an
external ID holding one looks right and matches nothing. None of them is printable
(``str.isprintable``), which the column checks rely on (a test holds it to that)."""
_SURROGATE = re.compile("[\ud800-\udfff]")
_SEPARATOR_IN_ID = re.compile("[,;\t|]")
"""In an otherwise empty row's ID, a sign that the row was written with another separator:
such a row is judged (and rejected), never skipped as an untouched template row."""
_ERROR_COLUMN = "error"
"""A lone UTF-16 surrogate: JSON can spell one (``"\\ud800"``), but it is not a character
and cannot be stored or sent as UTF-8."""
_MAX_NAMED_COLUMNS = 20
"""Warnings name at most this many unknown or repeated columns (a hostile header may hold
100,000 of them)."""
_FAST_METRIC_DIGITS = 15
CHUNK_RECORDS = 512
_FEW_KEYS = 8
_FAST_INTEGER_LIMIT = 10**15
"""JSON integers below this (in size) are metric values as they are (15 digits at most)."""
"""Records judged together by ``Validator.validate`` (their duplicates in one lookup)."""


class FileLayoutError(AchieveItSyncError):
    """A file-level problem with the file's shape: its kind (progress or metric) cannot be
    told from its location or columns, its first line is neither a header nor data, or
    its header lacks a column every row needs."""


EARLIEST_YEAR = 1900
LATEST_YEAR = 2199
"""As-of dates outside these years are typing slips (0026, 9999), not plan dates."""


@dataclass
class UsDates:
    """The slash dates (a/b/yyyy) a pass has seen: whether the file writes them day-first."""

    day_first: int = 0
    """Dates that can only be day-first (31/10/2026)."""
    first_day_first: str | None = None
    """Where the first one is, as evidence: ``line 4: 31/10/2026``."""
    ambiguous: int = 0
    """Dates that read either way (05/11/2026)."""


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    value: str
    reason: str
    hint: str


class ValidRow(NamedTuple):
    line: int
    update: Update
    record: RawRecord
    body: bytes | None = None
    """The update as it goes into a JSON request body, when the spool made it already."""


class RejectedRow(NamedTuple):
    line: int
    problems: tuple[FieldProblem, ...]
    record: RawRecord

    @property
    def summary(self) -> str:
        """One line per row, for the rejected file's Error column."""
        return "; ".join(f"{p.field}: {p.reason} ({p.hint})" for p in self.problems)


@dataclass
class Layout:
    """How a CSV's columns map to fields (``None`` for a column that is ignored)."""

    columns: tuple[str | None, ...]
    header: tuple[str, ...] | None


_JsonLayout = tuple[str, str | None, str | None, str, str | None]
"""The keys of a JSON object that hold its ID, status, metric value, date and comment."""


@dataclass
class Validator:
    """Validates the records of one file in order; keeps the state that spans rows
    (the CSV layout, duplicate detection, warnings)."""

    kind: UpdateKind | None
    """``None``: infer from the header or the first JSON object (a status means progress)."""
    kind_reason: str | None = None
    """How the kind was chosen (given by the caller, or said when inferred)."""
    day_first_evidence: str | None = None
    """Set (by the caller, from an earlier pass) when the file holds dates that can only be
    day-first: its dates that read either way are then refused, not read month-first."""
    dates: UsDates = field(default_factory=UsDates)
    decimal_comma_evidence: str | None = None
    """Set when the file writes numbers the European way (semicolon-separated, or decimal
    commas seen by an earlier pass): ``1.200`` is then refused as reading either way (1.2,
    or 1200 with a dot between thousands), and ``1,5`` is hinted as 1.5."""
    first_decimal_comma: str | None = None
    """Where this pass first saw a decimal comma (``line 4: 0,25``), as evidence."""
    _kind_inferred_at: int | None = None
    """The line of the JSON object the kind was inferred from."""
    _skippable_columns: frozenset[int] = frozenset()
    """The external ID and informational columns: a row with values only there is an
    upload-template row left untouched."""
    warnings: list[str] = field(default_factory=list)
    layout: Layout | None = None
    _seen: SeenKeys = field(default_factory=SeenKeys)
    _column_index: dict[str, int] = field(default_factory=dict)
    _fast_columns: tuple[int, int, int, int, int, int] | None = None
    _date_memo: dict[str, tuple[str, int]] = field(default_factory=dict)
    _status_memo: dict[str, int] = field(default_factory=dict)
    _unknown_json_fields: set[str] = field(default_factory=set)
    untouched_rows: int = 0
    """Rows of an upload template left as they were: an external ID (and the item's name),
    nothing to update. Skipped, and counted, rather than rejected one by one."""
    _unnamed: tuple[int, ...] = ()
    ignored: list[str] = field(default_factory=list)
    """What the file holds that is not sent (unknown, repeated or unnamed columns, fields,
    statuses in a metric file): said in the report, and a reason to look (exit 1, a
    notification), since the writer meant it to say something."""
    _warned: set[str] = field(default_factory=set)
    """Header positions without a name: values under them are ignored, never silently."""
    _deferred: list[Update] | None = None
    _fast: Callable[[list[str], int], Update | None] | None = None
    _json_layouts: dict[tuple[str, ...], _JsonLayout | None] = field(default_factory=dict)
    _json_dates: dict[str, date] = field(default_factory=dict)
    """While ``validate_chunk`` runs: the valid rows' updates, looked up as duplicates
    together at the end of the chunk."""

    def validate(self, records: Iterable[RawRecord]) -> Iterator[ValidRow | RejectedRow]:
        """The verdict on each record, in order (none for a header or an untouched template
        row). Records are judged ``CHUNK_RECORDS`` at a time, their duplicates looked up
        together; records read before a reading error are judged before it is raised."""
        records = iter(records)
        while True:
            chunk: list[RawRecord] = []
            try:
                chunk.extend(islice(records, CHUNK_RECORDS))
            except Exception:
                yield from self._chunk_results(chunk)
                raise
            if not chunk:
                return
            yield from self._chunk_results(chunk)

    def validate_chunk(self, records: Iterable[RawRecord]) -> tuple[ValidColumns, list[int]]:
        """The verdicts on a chunk of records: the valid rows as columns, and the lines
        rejected (the same verdicts as ``validate``)."""
        results = self._chunk_results(list(records))
        valid_rows = [(row.line, row.update) for row in results if isinstance(row, ValidRow)]
        rejected = [row.line for row in results if isinstance(row, RejectedRow)]
        return ValidColumns.of(valid_rows), rejected

    def _chunk_results(  # noqa: PLR0912 - a branch per kind of record
        self, chunk: list[RawRecord]
    ) -> list[ValidRow | RejectedRow]:
        """The verdicts on ``chunk``: each valid row's duplicate check is put off to the
        end of the chunk, where the chunk's keys are looked up in one pass."""
        validate_one = self.validate_one
        fast = self._fast
        if fast is None and self._fast_columns is not None:
            fast = self._fast = self._fast_path(self._fast_columns)
        new = tuple.__new__
        deferred: list[Update] = []
        results: list[ValidRow | RejectedRow] = []
        self._deferred = deferred
        try:
            for record in chunk:
                update: Update | None = None
                if record.problem is None:  # (the reader saw nothing odd)
                    if record.cells is not None:
                        if fast is not None:
                            update = fast(record.cells, record[0])
                    elif self.kind is not None:
                        update = self._json_fast(record.fields)  # type: ignore[arg-type]
                        if update is not None:
                            deferred.append(update)
                if update is not None:
                    results.append(new(ValidRow, (record[0], update, record, None)))
                    continue
                result = validate_one(record)
                if fast is None and self._fast_columns is not None:  # (after the header)
                    fast = self._fast = self._fast_path(self._fast_columns)
                if result is not None:
                    results.append(result)
        finally:
            self._deferred = None
        if deferred:
            valid_at = [at for at, row in enumerate(results) if isinstance(row, ValidRow)]
            firsts = self._first_lines(deferred, [results[at].line for at in valid_at])
            for at, first in zip(valid_at, firsts, strict=True):
                valid = results[at]
                if first is not None and isinstance(valid, ValidRow):
                    results[at] = _duplicate_row(valid.record, valid.update, first)
        return results

    def validate_batch(self, batch: CsvBatch) -> tuple[ValidColumns, list[int]]:
        """The valid rows of ``batch`` (as columns, in order) and the lines it rejects: the
        same verdicts as ``validate``, without a ``ValidRow`` or an update for each valid
        row. Rows the fast checks do not pass take the detailed path, which explains any
        problem."""
        if self._fast_columns is not None:
            fast = self._fast_columns_of(batch)
            if fast is not None:
                return fast
        valid: list[tuple[int, Update]] = []
        rejected: list[int] = []
        for result in self.validate(iter(batch.records())):
            if isinstance(result, ValidRow):
                valid.append((result.line, result.update))
            else:
                rejected.append(result.line)
        return ValidColumns.of(valid), rejected

    def _fast_columns_of(  # noqa: PLR0911, PLR0912, PLR0915 - a check per column
        self, batch: CsvBatch
    ) -> tuple[ValidColumns, list[int]] | None:
        """The fast checks, a column of the batch at a time, by the rules of ``_fast_path``
        (``iso_date``, the statuses, plain metric values): C-level passes over columns
        instead of Python steps per row. ``None`` when some row needs a closer look (the
        rows are then taken one by one); rows seen before (in the duplicate index) take
        the detailed path, which names the first line."""
        assert self._fast_columns is not None  # noqa: S101 - checked by the caller
        id_at, status_at, metric_at, date_at, comment_at, width = self._fast_columns
        rows = batch.rows
        count = len(rows)
        try:  # the batch a column at a time (and every row as wide as the header)
            columns = list(zip(*rows, strict=True))
        except ValueError:
            return None
        if len(columns) != width:
            return None
        ids = list(map(str.strip, columns[id_at]))
        joined = " ".join(ids)
        if (
            not all(ids)
            or "'" in joined
            # (the characters it looks for are none of them printable)
            or (not joined.isprintable() and _CONTROL_CHARACTER.search(joined))
        ):
            return None
        memo = self._date_memo
        date_texts = columns[date_at]
        unseen = set(date_texts).difference(memo)
        if unseen:
            if len(memo) + len(unseen) > _MEMO_ENTRIES:  # start again (with this batch's)
                memo.clear()
                unseen = set(date_texts)
            for text in unseen:
                parsed = iso_date(text.strip())
                if parsed is None:  # not the common date: one by one
                    return None
                memo[text] = (parsed.isoformat(), parsed.toordinal())
        known = list(map(memo.__getitem__, date_texts))
        metrics: list[str | None]
        if metric_at >= 0:
            texts = list(columns[metric_at])
            plain = _plain_numbers(texts)
            if not plain:  # maybe spaces around them: the stripped values
                texts = list(map(str.strip, texts))
                plain = _plain_numbers(texts)
            if (
                not plain
                or self.decimal_comma_evidence is not None
                or max(map(len, texts)) > _FAST_METRIC_DIGITS
                or (status_at < 0 and not all(texts))
            ):
                return None  # exponents, NaN, _, long or European numbers: one by one
            metrics = [text or None for text in texts]
        elif status_at < 0:
            return None
        else:
            metrics = [None] * count
        if comment_at >= 0:
            comments = list(map(str.strip, columns[comment_at]))
            if "\n'" in "\n" + "\n".join(comments):
                return None  # maybe our own neutralising mark: the detailed path
        else:
            comments = [""] * count
        if status_at >= 0:
            codes = self._status_memo
            status_texts = columns[status_at]
            unseen = set(status_texts).difference(codes)
            if unseen:
                if len(codes) + len(unseen) > _MEMO_ENTRIES:  # start again
                    codes.clear()
                    unseen = set(status_texts)
                for text in unseen:
                    status = _STATUS_BY_SPELLING.get(text.strip())
                    if status is None:  # not a status as spelled: one by one
                        return None
                    codes[text] = STATUS_CODES[status]
            statuses = list(map(codes.__getitem__, status_texts))
        else:
            statuses = [-1] * count
        lines = range(batch.first_line, batch.first_line + count)
        keys, key_texts = duplicate_keys(ids, list(map(itemgetter(0), known)))
        firsts = self._seen.first_positions(keys, list(lines), key_texts)
        ordinals = list(map(itemgetter(1), known))
        if firsts.count(None) == count:
            return ValidColumns(lines, ids, statuses, metrics, ordinals, comments), []
        keep = [at for at, first in enumerate(firsts) if first is None]
        rejected = []
        for at, first in enumerate(firsts):
            if first is not None:  # seen before: the detailed path names the first line
                record = tuple.__new__(RawRecord, (lines[at], rows[at], None, None, None, None))
                if self.validate_one(record) is not None:
                    rejected.append(lines[at])
        return (
            ValidColumns(
                [lines[at] for at in keep],
                [ids[at] for at in keep],
                [statuses[at] for at in keep],
                [metrics[at] for at in keep],
                [ordinals[at] for at in keep],
                [comments[at] for at in keep],
            ),
            rejected,
        )

    def _first_lines(self, updates: list[Update], lines: list[int]) -> list[int | None]:
        """For each update (on its line): the line that first updated its item for its
        date, or ``None`` (and the row is remembered)."""
        if len(updates) < _FEW_KEYS:  # (a batch's fixed costs are not worth it)
            firsts: list[int | None] = []
            for update, line in zip(updates, lines, strict=True):
                key, exact = duplicate_key(update.external_id, update.as_of_date)
                firsts.append(self._seen.first_position(key, line, exact))
            return firsts
        keys, texts = duplicate_keys(
            [update.external_id for update in updates],
            [update.as_of_date.isoformat() for update in updates],
        )
        return self._seen.first_positions(keys, lines, texts)

    def _json_fast(  # noqa: PLR0911, PLR0912 - a check per field
        self, fields: dict[str, object]
    ) -> Update | None:
        """The common JSON object (only the documented fields, each of the usual type and
        form), checked by the rules the detailed path starts with (``iso_date``, the
        status spellings, ``metric_value_problem``); ``None`` for anything else, which
        the detailed path reads or explains (a property test holds them to that). Its
        duplicate check is left to the caller's chunk."""
        keys = tuple(fields)
        try:
            layout = self._json_layouts[keys]
        except KeyError:
            layout = self._json_layout(keys)
        if layout is None:
            return None
        id_key, status_key, metric_key, date_key, comment_key = layout
        raw = fields[id_key]
        if type(raw) is not str:
            return None
        external_id = raw.strip()
        if (
            not external_id
            or external_id[0] == "'"
            # (control characters and surrogates are none of them printable)
            or (
                not external_id.isprintable()
                and (_CONTROL_CHARACTER.search(external_id) or _SURROGATE.search(external_id))
            )
        ):
            return None
        raw = fields[date_key]
        if type(raw) is not str:
            return None
        as_of_date = self._json_dates.get(raw)
        if as_of_date is None:
            as_of_date = iso_date(raw.strip())
            if as_of_date is None:
                return None
            if len(self._json_dates) > _MEMO_ENTRIES:
                self._json_dates.clear()
            self._json_dates[raw] = as_of_date
        metric_value: Decimal | None = None
        if metric_key is not None:
            raw = fields[metric_key]
            if type(raw) is int and -_FAST_INTEGER_LIMIT < raw < _FAST_INTEGER_LIMIT:
                metric_value = Decimal(raw)
            elif type(raw) is Decimal and (
                _plain_and_short(raw) or metric_value_problem(raw) is None
            ):
                metric_value = raw
            elif raw is not None:
                return None
        comment = ""
        if comment_key is not None:
            raw = fields[comment_key]
            if type(raw) is str:
                if not raw.isprintable() and _SURROGATE.search(raw):
                    return None
                comment = raw.strip()
            elif raw is not None:
                return None
        new = tuple.__new__
        if status_key is not None:
            raw = fields[status_key]
            status = _STATUS_BY_SPELLING.get(raw) if type(raw) is str else None
            if status is None:
                return None
            return new(ProgressUpdate, (external_id, status, as_of_date, metric_value, comment))
        if metric_value is None:
            return None
        return new(MetricUpdate, (external_id, metric_value, as_of_date, comment))

    def _json_layout(self, keys: tuple[str, ...]) -> _JsonLayout | None:
        """Which key holds which field, for objects with these keys, when the fast path
        can read them: each documented field named once, the fields a row of this kind
        needs all there, and no field the detailed path would warn about first."""
        found: dict[str, str] = {}
        for key in keys:
            name = _fold(key)
            canonical = _FIELD_BY_FOLDED_NAME.get(name)
            if canonical is None:
                if name in INFORMATIONAL_COLUMNS or key in self._unknown_json_fields:
                    continue  # ignored without a word, or already named as ignored
                return None  # (not remembered: the detailed path names it first)
            if canonical in found:
                return self._remember_json_layout(keys, None)
            found[canonical] = key
        progress = self.kind is UpdateKind.PROGRESS
        if EXTERNAL_ID not in found or AS_OF_DATE not in found or (STATUS in found) != progress:
            return self._remember_json_layout(keys, None)
        layout = (
            found[EXTERNAL_ID],
            found.get(STATUS),
            found.get(METRIC_VALUE),
            found[AS_OF_DATE],
            found.get(COMMENT),
        )
        return self._remember_json_layout(keys, layout)

    def _remember_json_layout(
        self,
        keys: tuple[str, ...],
        layout: _JsonLayout | None,
    ) -> _JsonLayout | None:
        if len(self._json_layouts) > _MEMO_ENTRIES:
            self._json_layouts.clear()
        self._json_layouts[keys] = layout
        return layout

    def _fast_path(
        self, columns: tuple[int, int, int, int, int, int]
    ) -> Callable[[list[str], int], Update | None]:
        """The common case, for files of a million rows: a clean CSV row becomes an update
        in one function with everything it needs bound locally, and the rules it shares
        with the detailed path (``iso_date``, ``plain_metric``, the statuses) memoised.
        Anything unusual returns ``None`` and takes the detailed path, which gives the
        same verdict and explains any problem (a property test holds them to that)."""
        id_at, status_at, metric_at, date_at, comment_at, width = columns
        first_position = self._seen.first_position
        european = self.decimal_comma_evidence
        control_character = _CONTROL_CHARACTER.search
        dates: dict[str, tuple[date, str] | None] = {}
        statuses: dict[str, Status | None] = {}
        status_by_spelling = _STATUS_BY_SPELLING.get
        progress = status_at >= 0
        # tuple.__new__ skips NamedTuple's Python-level __new__: a third of the time per row.
        new = tuple.__new__

        def fast(cells: list[str], line: int) -> Update | None:  # noqa: PLR0911, PLR0912
            if len(cells) != width:
                return None
            external_id = cells[id_at].strip()
            if not external_id or external_id[0] == "'" or control_character(external_id):
                # (a leading ' may be our own neutralising mark: the detailed path)
                return None
            date_text = cells[date_at]
            known = dates.get(date_text, _UNSEEN)
            if known is _UNSEEN:
                if len(dates) > _MEMO_ENTRIES:
                    dates.clear()
                as_of = iso_date(date_text.strip())
                known = dates[date_text] = None if as_of is None else (as_of, as_of.isoformat())
            if known is None:
                return None
            as_of_date, iso = known
            metric_value = None
            if metric_at >= 0:
                metric_text = cells[metric_at]
                if metric_text and not metric_text.isspace():
                    metric_value = plain_metric(metric_text.strip(), european)
                    if metric_value is None:
                        return None
            comment = cells[comment_at].strip() if comment_at >= 0 else ""
            if comment[:1] == "'":
                return None
            update: Update
            if progress:
                status_text = cells[status_at]
                status = statuses.get(status_text)
                if status is None:
                    if len(statuses) > _MEMO_ENTRIES:
                        statuses.clear()
                    status = statuses[status_text] = status_by_spelling(status_text.strip())
                    if status is None:
                        return None
                update = new(
                    ProgressUpdate, (external_id, status, as_of_date, metric_value, comment)
                )
            elif metric_value is not None:
                update = new(MetricUpdate, (external_id, metric_value, as_of_date, comment))
            else:
                return None
            deferred = self._deferred
            if deferred is not None:  # looked up with the rest of the chunk
                deferred.append(update)
                return update
            folded = external_id.casefold()
            exact = f"{folded}\x1f{iso}\x1f".encode("utf-8", "surrogatepass")
            if first_position(hash((folded, iso)), line, exact) is not None:
                return None  # seen before: the detailed path names the first line
            return update

        return fast

    def validate_one(self, record: RawRecord) -> ValidRow | RejectedRow | None:
        """The verdict on one record; ``None`` for a CSV header row and an untouched
        template row."""
        if record.problem is not None:
            if record.cells is not None:
                hint = "fix the row's quotation marks"
            elif record.fields is not None:
                hint = "name each field once"
            else:
                hint = (
                    "each update must be an object with externalId, asOfDate and the other "
                    "documented fields"
                )
            # A JSON object with a repeated field is shown as nothing: as parsed, it holds
            # only the last value, which would misquote the file.
            shown = record.original if record.original is not None else ""
            return RejectedRow(
                record.line,
                (FieldProblem("(row)", _preview(shown), record.problem, hint),),
                record,
            )
        cells = record.cells
        if cells is not None:
            if self.layout is None:
                self.layout = self._layout_from_first_row(cells)
                self._column_index = {
                    name: position
                    for position, name in enumerate(self.layout.columns)
                    if name is not None
                }
                self._fast_columns = self._fast_layout()
                if self.layout.header is not None:
                    return None
            return self._validate_cells(record, cells)
        return self._validate_values(record, self._json_values(record))

    def _fast_layout(self) -> tuple[int, int, int, int, int, int] | None:
        """Column positions for the fast path, when the layout allows one."""
        index = self._column_index
        kind = self.kind or UpdateKind.PROGRESS
        if self.layout is None or EXTERNAL_ID not in index or AS_OF_DATE not in index:
            return None
        if self._unnamed:  # their values must be looked at: the full path warns about them
            return None
        if kind is UpdateKind.PROGRESS and STATUS not in index:
            return None
        return (
            index[EXTERNAL_ID],
            index[STATUS] if kind is UpdateKind.PROGRESS else -1,
            index.get(METRIC_VALUE, -1),
            index[AS_OF_DATE],
            index.get(COMMENT, -1),
            len(self.layout.columns),
        )

    def _validate_cells(self, record: RawRecord, cells: list[str]) -> ValidRow | RejectedRow | None:
        """A CSV row's cells, looked up by column position; ``None`` for an upload-template
        row left as it was (an external ID, nothing to update: skipped and counted)."""
        width = len(cells)
        index = self._column_index

        def cell(name: str) -> str | None:
            position = index.get(name)
            return cells[position] if position is not None and position < width else None

        values: dict[str, object] = {
            EXTERNAL_ID: _unneutralised(cell(EXTERNAL_ID)),
            STATUS: cell(STATUS),
            METRIC_VALUE: cell(METRIC_VALUE),
            AS_OF_DATE: cell(AS_OF_DATE),
            COMMENT: _unneutralised(cell(COMMENT)),
        }
        if (
            self.layout is not None
            and self.layout.header is not None
            # as wide as the header, and an ID without a separator in it: a row cut short
            # or written with another separator (all in its first cell) is judged
            and width >= len(self.layout.columns)
            and not _SEPARATOR_IN_ID.search(cell(EXTERNAL_ID) or "")
            and not any(
                cell.strip()
                for position, cell in enumerate(cells)
                if position not in self._skippable_columns
            )
        ):
            self.untouched_rows += 1
            return None
        columns = len(self._column_index) if self.layout is None else len(self.layout.columns)
        if width > columns and "".join(cells[columns:]).strip():
            values["(row)"] = (
                f"the row has {width} values but the file has {columns} columns",
                "remove the extra values, or quote a value that contains the separator",
            )
        unnamed = [i for i in self._unnamed if i < width and cells[i].strip()]
        if unnamed and "unnamed" not in self._warned:
            self._warned.add("unnamed")
            self.warnings.append(
                f"column {unnamed[0] + 1} has no name in the header but holds values (first "
                f"on line {record.line}); they are ignored: name the column, or delete it"
            )
            self.ignored.append(f"column {unnamed[0] + 1} (no name)")
        return self._validate_values(record, values)

    # -- mapping raw records to named values ---------------------------------------------

    def _layout_from_first_row(self, cells: list[str]) -> Layout:
        folded = [_fold(cell) for cell in cells]
        if EXTERNAL_ID in {_FIELD_BY_FOLDED_NAME.get(name) for name in folded}:
            return self._header_layout(cells, folded)
        near_miss = _near_miss_header(cells, folded)
        if near_miss is not None:
            raise FileLayoutError(near_miss)
        if self.kind is None:
            raise FileLayoutError(
                "the first line is not a header (no 'External ID' column), and without one "
                "the kind of update cannot be told; add a header row (External ID, Status, "
                "As Of Date, ...), or say the kind: drop the file under incoming/progress/ or "
                "incoming/metrics/ (on the command line: --kind progress or --kind metric)"
            )
        return Layout(columns=DEFAULT_COLUMNS[self.kind], header=None)

    def _header_layout(self, cells: list[str], folded: list[str]) -> Layout:
        columns: list[str | None] = []
        ignored: list[str] = []
        repeated: list[str] = []
        seen: set[str] = set()
        skippable: set[int] = set()
        self._unnamed = tuple(i for i, cell in enumerate(cells) if not cell.strip())
        for position, (cell, name) in enumerate(zip(cells, folded, strict=True)):
            canonical = _FIELD_BY_FOLDED_NAME.get(name)
            if (canonical == EXTERNAL_ID and canonical not in seen) or (
                name in INFORMATIONAL_COLUMNS and name != _ERROR_COLUMN
            ):  # (a row with an error of its own is a rejected row dropped back, not blank)
                skippable.add(position)
            if canonical is None or canonical in seen:
                columns.append(None)
                if canonical in seen:
                    repeated.append(cell)
                elif name and name not in INFORMATIONAL_COLUMNS:
                    ignored.append(cell)
                continue
            seen.add(canonical)
            columns.append(canonical)
        if self.kind is None:
            self.kind = UpdateKind.PROGRESS if STATUS in seen else UpdateKind.METRIC
            self.kind_reason = (
                "the header has a Status column"
                if STATUS in seen
                else "the header has no Status column"
            )
        elif self.kind is UpdateKind.METRIC and STATUS in seen:
            self.warnings.append("the Status column is ignored: this is a metric update file")
            self.ignored.append("Status (a metric update file)")
        if repeated:
            self.warnings.append(
                f"{_named(repeated)} repeat{'s' if len(repeated) == 1 else ''} a column; "
                "only the first of each is used"
            )
            self.ignored.extend(f"'{_preview(name, 40)}' (repeated)" for name in repeated[:5])
        if ignored:
            self.warnings.append(
                f"unknown column(s) ignored: {_named_with_guesses(ignored)}; rename a column "
                "to its documented name to send it, or delete it"
            )
            self.ignored.extend(f"'{_preview(name, 40)}'" for name in ignored[:5])
        _require_columns(self.kind, seen, self.kind_reason)
        self._skippable_columns = frozenset(skippable)
        return Layout(columns=tuple(columns), header=tuple(cells))

    def _json_values(self, record: RawRecord) -> dict[str, object]:
        values: dict[str, object] = {}
        for key, value in (record.fields or {}).items():
            name = _fold(key)
            canonical = _FIELD_BY_FOLDED_NAME.get(name)
            if canonical is None:
                if (
                    name not in INFORMATIONAL_COLUMNS
                    and key not in self._unknown_json_fields
                    and len(self._unknown_json_fields) <= _MAX_NAMED_COLUMNS
                ):
                    self._unknown_json_fields.add(key)
                    if len(self.ignored) < _MAX_NAMED_COLUMNS:
                        self.ignored.append(f"'{_preview(key, 40)}'")
                    self.warnings.append(
                        f"unknown field {_named_with_guesses([key])} ignored (first seen on line "
                        f"{record.line})"
                        if len(self._unknown_json_fields) <= _MAX_NAMED_COLUMNS
                        else f"more unknown fields ignored (from line {record.line}); only "
                        f"the first {_MAX_NAMED_COLUMNS} are named"
                    )
                continue
            if canonical in values:
                values["(row)"] = (
                    f"names {DISPLAY_NAMES[canonical]} twice (as '{_preview(key, 40)}' and "
                    "another spelling); which value is meant is unclear",
                    "name each field once",
                )
            values[canonical] = value
        if self.kind is None:
            self.kind = UpdateKind.PROGRESS if STATUS in values else UpdateKind.METRIC
            self._kind_inferred_at = record.line
            self.kind_reason = f"the first object (line {record.line}) " + (
                "has a status" if STATUS in values else "has no status"
            )
        elif self.kind is UpdateKind.METRIC and _given(values.get(STATUS)):
            self._status_in_metric_file(record, values)
        return values

    def _status_in_metric_file(self, record: RawRecord, values: dict[str, object]) -> None:
        """A JSON object with a status in a metric file: an error when the kind was only
        inferred (the objects disagree on what the file is), a warning when it was given."""
        if self._kind_inferred_at is not None:
            values["(row)"] = (
                f"has a status, but the file's first object (line {self._kind_inferred_at}) "
                "has none, so the file is read as metric updates",
                "give every object a status (progress updates) or none (metric updates); "
                "or say the kind: drop the file under incoming/progress/ (on the command "
                "line: --kind progress)",
            )
        elif "status-ignored" not in self._warned:
            self._warned.add("status-ignored")
            self.ignored.append("status (a metric update file)")
            self.warnings.append(
                f"status fields are ignored (first on line {record.line}): this is a metric "
                "update file"
            )

    # -- the rules ------------------------------------------------------------------------

    def _validate_values(
        self, record: RawRecord, values: dict[str, object]
    ) -> ValidRow | RejectedRow:
        kind = self.kind or UpdateKind.PROGRESS
        problems: list[FieldProblem] = []
        row_problem = values.get("(row)")
        if isinstance(row_problem, tuple):
            problems.append(FieldProblem("(row)", "", *row_problem))
        external_id = _external_id(values.get(EXTERNAL_ID), problems)
        status = _status(values.get(STATUS), problems) if kind is UpdateKind.PROGRESS else None
        metric_value = _metric_value(
            values.get(METRIC_VALUE),
            problems,
            required=kind is UpdateKind.METRIC,
            european=self.decimal_comma_evidence,
        )
        if (
            self.first_decimal_comma is None
            and problems
            and problems[-1].field == METRIC_VALUE
            and problems[-1].reason in _DECIMAL_COMMA_REASONS
        ):
            self.first_decimal_comma = f"line {record.line}: {problems[-1].value}"
        raw_date = values.get(AS_OF_DATE)
        as_of_date = _as_of_date(raw_date, problems)
        if type(raw_date) is str and "/" in raw_date:
            slash_date = _without_time(raw_date.strip())
            as_of_date = self._slash_date(slash_date, as_of_date, record.line, problems)
        comment = _comment(values.get(COMMENT), problems)
        if problems or external_id is None or as_of_date is None:
            return RejectedRow(record.line, tuple(problems), record)
        if kind is UpdateKind.PROGRESS:
            if status is None:
                return RejectedRow(record.line, tuple(problems), record)
            update: Update = ProgressUpdate(external_id, status, as_of_date, metric_value, comment)
        else:
            if metric_value is None:
                return RejectedRow(record.line, tuple(problems), record)
            update = MetricUpdate(external_id, metric_value, as_of_date, comment)
        if self._deferred is not None:  # looked up with the rest of the chunk
            self._deferred.append(update)
            return ValidRow(record.line, update, record)
        duplicate_line = self._first_line_of(external_id, as_of_date, record.line)
        if duplicate_line is not None:
            return _duplicate_row(record, update, duplicate_line)
        return ValidRow(record.line, update, record)

    def _slash_date(
        self, text: str, as_of_date: date | None, line: int, problems: list[FieldProblem]
    ) -> date | None:
        """Notes how a slash date reads; refuses one that reads either way in a file whose
        other dates are day-first (05/11/2026 beside 31/10/2026 is 5 November, not May 11)."""
        match = _US_DATE.fullmatch(text)
        if match is None or len(match[3]) != 4:
            return as_of_date
        first, second, year = int(match[1]), int(match[2]), int(match[3])
        dates = self.dates
        if first > 12 and 1 <= second <= 12:
            dates.day_first += 1
            if dates.first_day_first is None:
                dates.first_day_first = f"line {line}: {text}"
        elif as_of_date is not None and first != second and first <= 12 and second <= 12:
            dates.ambiguous += 1
            if self.day_first_evidence is not None:
                problems.append(
                    FieldProblem(
                        AS_OF_DATE,
                        text,
                        "reads either way (month/day or day/month), and this file also "
                        f"holds day-first dates ({self.day_first_evidence})",
                        f"write the ISO date: {year}-{first:02d}-{second:02d} if the month "
                        f"comes first, {year}-{second:02d}-{first:02d} if the day does",
                    )
                )
                return None
        return as_of_date

    def _first_line_of(self, external_id: str, as_of_date: date, line: int) -> int | None:
        key, exact = duplicate_key(external_id, as_of_date)
        return self._seen.first_position(key, line, exact)


def _invisible(text: str) -> str:
    """Which invisible character an ID holds, named so that it can be found and removed."""
    found = _CONTROL_CHARACTER.search(text)
    character = found.group() if found else ""
    name = unicodedata.name(character, "a control character").lower()
    kind = "a line break" if character in "\r\n\u2028\u2029" else "an invisible character"
    return f"{kind} (U+{ord(character):04X}, {name})" if character else kind


def _given(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _require_columns(kind: UpdateKind | None, named: set[str], kind_reason: str | None) -> None:
    """A header without a column every row needs would reject every row for one cause."""
    needed = [AS_OF_DATE]
    if kind is UpdateKind.PROGRESS:
        needed.insert(0, STATUS)
    elif kind is UpdateKind.METRIC:
        needed.insert(0, METRIC_VALUE)
    missing = [DISPLAY_NAMES[name] for name in needed if name not in named]
    if missing:
        kind_text = "progress" if kind is UpdateKind.PROGRESS else "metric"
        documented = METRIC_CSV_COLUMNS if kind is UpdateKind.METRIC else PROGRESS_CSV_COLUMNS
        why = f" ({kind_reason})" if kind_reason else ""
        raise FileLayoutError(
            f"the header has no {' or '.join(repr(name) for name in missing)} column, which "
            f"every {kind_text} update needs{why}; add the column (the documented columns "
            f"are: {', '.join(documented)}), then send the file again"
        )


def _duplicate_row(record: RawRecord, update: Update, first_line: int) -> RejectedRow:
    return RejectedRow(
        record.line,
        (
            FieldProblem(
                EXTERNAL_ID,
                update.external_id,
                f"line {first_line} already updates this item for {update.as_of_date.isoformat()}",
                "keep one row per external ID and as-of date; this row was not sent",
            ),
        ),
        record,
    )


def duplicate_key(external_id: str, as_of_date: date) -> tuple[int, bytes]:
    """What makes two rows duplicates (the external ID in any case, and the date): a hash
    and the exact text. Python's hashes are randomised per process: detection spans one
    run, which always reads the file from its first line (a resumed run re-reads it too).
    Rows whose hashes collide are told apart by their exact text (see ``SeenKeys``)."""
    folded, iso = external_id.casefold(), as_of_date.isoformat()
    return hash((folded, iso)), f"{folded}\x1f{iso}\x1f".encode("utf-8", "surrogatepass")


def duplicate_keys(external_ids: list[str], isos: list[str]) -> tuple[list[int], KeyTexts]:
    """``duplicate_key`` of a batch (IDs, and dates as ISO text)."""
    folded = list(map(str.casefold, external_ids))
    return list(map(hash, zip(folded, isos, strict=True))), KeyTexts.of_pairs(folded, isos)


STATUS_CODES = {status: code for code, status in enumerate(Status)}
"""Statuses as small numbers, in ``ValidColumns`` (-1: a metric update)."""
STATUSES = tuple(Status)


class ValidColumns(NamedTuple):
    """Valid rows of a batch as columns, ready for the spool (see ``spool``)."""

    lines: list[int] | range
    external_ids: list[str]
    statuses: list[int]
    """``STATUS_CODES``; -1 for a metric update."""
    metrics: list[str | None]
    """As written, or ``str`` of the value: ``Decimal(text)`` is the value exactly."""
    ordinals: list[int]
    """The as-of dates, ``date.toordinal``."""
    comments: list[str]

    @classmethod
    def of(cls, rows: list[tuple[int, Update]]) -> ValidColumns:
        updates = [update for _, update in rows]
        return cls(
            [line for line, _ in rows],
            [update.external_id for update in updates],
            [
                STATUS_CODES[update.status] if type(update) is ProgressUpdate else -1
                for update in updates
            ],
            [None if u.metric_value is None else str(u.metric_value) for u in updates],
            [update.as_of_date.toordinal() for update in updates],
            [update.comment for update in updates],
        )


_UNSEEN = ("", 0)
_NUMBER_CHARACTERS = b"0123456789.+-"


def _plain_and_short(value: Decimal) -> bool:
    """Whether ``value`` is written without exponent in at most 15 digits: then it is a
    sendable metric value (``metric_value_problem`` finds nothing: at most 15 significant
    digits, below 1e15, and 0 or at least 1e-14), known without taking it apart."""
    text = str(value)
    return (
        text[-1] in "0123456789"  # (not NaN or Infinity)
        and "E" not in text
        and len(text) - ("." in text) - (text[0] == "-") <= _FAST_METRIC_DIGITS
    )


def _plain_numbers(texts: list[str]) -> bool:
    """Whether each text is empty or a plain number without exponent (what ``plain_metric``
    takes; ``PLAIN_NUMBER`` without its exponent): only ASCII digits, dots and signs (one
    pass over all of them), in the form ``float`` reads (which, from those characters
    alone, is exactly ``[+-]?(digits[.digits]|.digits)``)."""
    joined = "".join(texts)
    if not joined.isascii() or joined.encode("ascii").translate(None, _NUMBER_CHARACTERS):
        return False
    try:
        deque(map(float, filter(None, texts)), maxlen=0)
    except ValueError:
        return False
    return True


_MEMO_ENTRIES = 4096
"""Distinct date and status texts the fast path remembers (then it starts again)."""


def iso_date(text: str) -> date | None:
    """The common date: YYYY-MM-DD, within the plan years; ``None`` for anything else,
    which ``_parse_date`` reads or explains. (fromisoformat alone would also take 20261130
    or 2026-W48-1, which AchieveIt does not document.)"""
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        try:
            parsed = date.fromisoformat(text)
        except ValueError:
            return None
        if EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
            return parsed
    return None


def plain_metric(text: str, european: str | None) -> Decimal | None:
    """The common metric value: a plain ASCII number of at most 15 digits, finite and
    sendable; ``None`` for anything else, which ``_metric_value`` reads or explains.
    (Decimal also takes "1_000", "NaN" and non-ASCII digits; those are explained there, as
    are exponents and long numbers, whose range it checks exactly.)"""
    if (
        not text
        or not text.isascii()
        or "_" in text
        or "e" in text
        or "E" in text
        or len(text) - text.count(".") - (text[0] in "+-") > _FAST_METRIC_DIGITS
        or (european is not None and _DOT_GROUPED.fullmatch(text))
    ):
        return None
    try:
        value = Decimal(text)
    except ArithmeticError:
        return None
    if not value.is_finite():
        return None
    return value


# -- field rules --------------------------------------------------------------------------------


def _external_id(raw: object, problems: list[FieldProblem]) -> str | None:
    if type(raw) is str:  # the common case first: a non-empty single-line string
        text = raw.strip()
        if text and not _CONTROL_CHARACTER.search(text) and not _SURROGATE.search(text):
            return text
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        problems.append(
            FieldProblem(
                EXTERNAL_ID,
                "",
                "is missing",
                "copy the item's external ID from AchieveIt's 'Export "
                "External IDs' (or from templates/<planId>/)",
            )
        )
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        problems.append(
            FieldProblem(
                EXTERNAL_ID,
                _preview(raw),
                "must be text",
                'write the external ID as a string, e.g. "ABC-123"',
            )
        )
        return None
    text = str(raw).strip()
    if _CONTROL_CHARACTER.search(text):
        problems.append(
            FieldProblem(
                EXTERNAL_ID,
                _preview(text),
                f"contains {_invisible(text)}",
                "remove it; external IDs are single-line text of visible characters",
            )
        )
        return None
    if _SURROGATE.search(text):
        problems.append(_surrogate_problem(EXTERNAL_ID, text))
        return None
    return text


def _surrogate_problem(field: str, text: str) -> FieldProblem:
    return FieldProblem(
        field,
        _preview(text),
        "contains an invalid character (a lone UTF-16 surrogate such as \\ud800)",
        "the JSON holds a broken \\u escape; write the text as it should read",
    )


def _status(raw: object, problems: list[FieldProblem]) -> Status | None:
    known = _STATUS_BY_SPELLING.get(raw) if type(raw) is str else None
    if known is not None:
        return known
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        problems.append(
            FieldProblem(
                STATUS, "", "is missing", f"a progress update needs one of: {_ALL_STATUSES}"
            )
        )
        return None
    if not isinstance(raw, str):
        problems.append(
            FieldProblem(STATUS, _preview(raw), "must be text", f"use one of: {_ALL_STATUSES}")
        )
        return None
    status = Status.parse(raw)
    if status is None:
        folded = " ".join(raw.split()).casefold()
        hint = _STATUS_HINTS.get(folded) or _STATUS_HINTS.get(folded.replace(" ", ""))
        problems.append(
            FieldProblem(
                STATUS,
                _preview(raw),
                "is not an AchieveIt status",
                f"{hint}; the statuses are: {_ALL_STATUSES}"
                if hint
                else f"use one of: {_ALL_STATUSES} (any case)",
            )
        )
    return status


def _metric_value(  # noqa: PLR0911 - one early return per kind of value
    raw: object, problems: list[FieldProblem], *, required: bool, european: str | None = None
) -> Decimal | None:
    """A number exactly as written (JSON numbers arrive as ``Decimal``), and only one that
    reaches AchieveIt as the same number: see ``updates.metric_value_problem``. In a file
    that writes numbers the European way (``european`` says why), a dot between groups of
    three digits may be a thousands separator: such a value is refused, not guessed."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            problems.append(
                FieldProblem(
                    METRIC_VALUE, "", "is missing", "a metric update needs a number, e.g. 42 or 0.2"
                )
            )
        return None
    if isinstance(raw, LongJsonNumber):
        problems.append(
            FieldProblem(
                METRIC_VALUE,
                _preview(raw),
                f"is {len(raw.text)} characters long, too long for a metric value"
                if len(raw.text) > METRIC_MAX_CHARS
                else "is out of range",
                METRIC_RANGE_HINT,
            )
        )
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        problems.append(
            FieldProblem(
                METRIC_VALUE,
                _preview(raw),
                "must be a number",
                "write a plain number, e.g. 42 or 0.2",
            )
        )
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if len(text) > METRIC_MAX_CHARS:
            problems.append(
                FieldProblem(
                    METRIC_VALUE,
                    _preview(text),
                    f"is {len(text)} characters long, too long for a metric value",
                    METRIC_RANGE_HINT,
                )
            )
            return None
        if not PLAIN_NUMBER.fullmatch(text):
            problems.append(
                FieldProblem(
                    METRIC_VALUE, _preview(text), *_number_problem(text, european=european)
                )
            )
            return None
        if european is not None and _DOT_GROUPED.fullmatch(text):
            grouped = text.replace(".", "")
            problems.append(
                FieldProblem(
                    METRIC_VALUE,
                    _preview(text),
                    f"reads either way ({_plain(Decimal(text))} with a decimal point, or "
                    f"{grouped} with a dot between thousands), and {european}",
                    f"write {grouped} if the dot separates thousands, {_plain(Decimal(text))} "
                    "if it is a decimal point",
                )
            )
            return None
        try:
            value = Decimal(text)
        except ArithmeticError:  # an exponent beyond what Decimal can hold: 1e99999999999999999999
            problems.append(
                FieldProblem(METRIC_VALUE, _preview(text), "is out of range", METRIC_RANGE_HINT)
            )
            return None
    elif isinstance(raw, float):  # only NaN and Infinity: finite JSON numbers are Decimals
        value = Decimal(repr(raw)) if math.isfinite(raw) else Decimal("NaN")
    else:
        value = Decimal(raw)
    problem = metric_value_problem(value)
    if problem is not None:
        hint = (
            "write a plain number, e.g. 42 or 0.2"
            if problem == "must be a finite number"
            else METRIC_RANGE_HINT
        )
        problems.append(FieldProblem(METRIC_VALUE, _preview(raw), problem, hint))
        return None
    return value


def _number_problem(  # noqa: PLR0911 - one return per hint
    text: str, *, european: str | None = None
) -> tuple[str, str]:
    folded = text.casefold()
    if folded in (
        "nan",
        "+nan",
        "-nan",
        "inf",
        "+inf",
        "-inf",
        "infinity",
        "-infinity",
        "+infinity",
    ):
        return "must be a finite number", "write a plain number, e.g. 42 or 0.2"
    if text.endswith("%"):
        number = text[:-1].strip()
        example = _percent_example(number)
        return "is a percentage", f"write percentages as decimals: {example}"
    if text[:1] in "$€£¥" or text[-1:] in "$€£¥":
        bare = text.strip("$€£¥ ")
        return "has a currency sign", f"write the bare number: {bare.replace(',', '')}"
    if european is not None and _EUROPEAN_NUMBER.fullmatch(text):
        # 1,200 and 1.200,50 in a file that writes decimal commas: the comma is the point.
        bare = _plain(Decimal(text.replace(".", "").replace(",", ".")))
        return DECIMAL_COMMA_REASON, f"use a decimal point: write {bare}"
    if _THOUSANDS.fullmatch(text):
        return "has thousands separators", f"write {text.replace(',', '')}"
    if _DOT_GROUPED.fullmatch(text):  # 1.234.567: more than one dot, so never a decimal
        return "has dots between thousands", f"write {text.replace('.', '')}"
    if _EUROPEAN_NUMBER.fullmatch(text) and "." in text:
        bare = _plain(Decimal(text.replace(".", "").replace(",", ".")))
        return DECIMAL_COMMA_REASON, f"use a decimal point and no separators: write {bare}"
    if _SPACED_THOUSANDS.fullmatch(text):
        bare = "".join(text.split()).replace("\u00a0", "").replace("\u202f", "").replace(",", ".")
        return "has spaces as thousands separators", f"write {bare}"
    if text[:1] in _TYPOGRAPHIC_MINUS and PLAIN_NUMBER.fullmatch(text[1:]):
        return "uses a typographic minus sign", f"write -{text[1:]} (with the ASCII hyphen-minus)"
    if _DECIMAL_COMMA.fullmatch(text):
        return DECIMAL_COMMA_REASON, f"use a decimal point: write {text.replace(',', '.')}"
    return "is not a number", "write a plain number such as 42, -3.5 or 0.2 (no units)"


def _plain(value: Decimal) -> str:
    """``value`` as a person writes it: no exponent, no trailing zeros (1.200 -> 1.2)."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def _percent_example(number: str) -> str:
    try:
        return f"write {Decimal(number) / 100} for {number}%"
    except ArithmeticError:  # not a number, or beyond Decimal's exponent range
        return "write 0.2 for 20%"


def _as_of_date(raw: object, problems: list[FieldProblem]) -> date | None:
    if type(raw) is str:
        common = iso_date(raw.strip())  # the common case, as the fast path reads it
        if common is not None:
            return common
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        problems.append(
            FieldProblem(
                AS_OF_DATE, "", "is missing", "write the date the update is for, e.g. 2026-11-30"
            )
        )
        return None
    if not isinstance(raw, str):
        problems.append(
            FieldProblem(
                AS_OF_DATE,
                _preview(raw),
                "must be a date as text",
                "write an ISO date such as 2026-11-30 (or 11/30/2026); "
                "a bare number may be an Excel date serial: format the "
                "column as a date",
            )
        )
        return None
    text = raw.strip()
    parsed = _parse_date(text)
    if isinstance(parsed, date):
        return parsed
    problems.append(FieldProblem(AS_OF_DATE, _preview(text), parsed[0], parsed[1]))
    return None


def _parse_date(text: str) -> date | tuple[str, str]:  # noqa: PLR0911 - one per form
    iso = _ISO_DATE_PREFIX.match(text)
    if iso:
        year, month, day = (int(part) for part in iso.groups())
        if len(text) > 10:
            try:
                datetime.fromisoformat(text)
            except ValueError:
                return (
                    "is not a valid ISO-8601 date-time",
                    "write 2026-11-30 or 2026-11-30T17:00:00Z (only the date is used)",
                )
        return _checked_date(year, month, day)
    with_time = _US_DATE_TIME.fullmatch(text)
    if with_time:
        if not _valid_time(with_time):
            return (
                "has a time that is not a time of day",
                f"write the date alone: {with_time[1]} (only the date is used)",
            )
        text = with_time[1]  # only the date is used, as with an ISO date-time
    us = _US_DATE.fullmatch(text)
    if us:
        month_text, day_text, year_text = us.groups()
        if len(year_text) == 2:
            return (
                "has a two-digit year",
                f"write the year in full: {month_text}/{day_text}/20{year_text}",
            )
        month, day, year = int(month_text), int(day_text), int(year_text)
        if month > 12 and 1 <= day <= 12 and isinstance(_checked_date(year, day, month), date):
            return (
                DAY_FIRST_REASON,
                f"US dates put the month first: write {year}-{day:02d}-{month:02d} "
                f"(ISO) or {day:02d}/{month:02d}/{year}",
            )
        return _checked_date(year, month, day)
    dashed = _DASHED_OR_DOTTED_DATE.fullmatch(text)
    if dashed:
        return _dashed_date_hint(int(dashed[1]), dashed[2], int(dashed[3]), int(dashed[4]))
    if text.isascii() and text.isdigit() and 20000 < int(text) < 80000:
        return (
            "looks like an Excel date serial number",
            "format the column as a date (yyyy-mm-dd) before saving",
        )
    return (
        "is not a date AchieveIt accepts",
        "write an ISO date (2026-11-30) or a US date (11/30/2026)",
    )


def _without_time(text: str) -> str:
    """The date of a US date-time whose time is a time of day; any other text as it is."""
    with_time = _US_DATE_TIME.fullmatch(text)
    return with_time[1] if with_time and _valid_time(with_time) else text


def _valid_time(match: re.Match[str]) -> bool:
    hour, minute, second = int(match[2]), int(match[3]), int(match[4] or 0)
    hours = range(1, 13) if match[5] else range(24)
    return hour in hours and minute < 60 and second < 60


def _dashed_date_hint(first: int, separator: str, second: int, year: int) -> tuple[str, str]:
    """30-11-2026 or 30.11.2026: the day-first forms of Europe, which AchieveIt does not
    take; the hint writes the date as it is meant, or both ways when it reads either way."""
    day_first = _checked_date(year, second, first)
    month_first = _checked_date(year, first, second)
    written = f"has '{separator}' between its parts, which AchieveIt does not accept"
    if isinstance(day_first, date) and isinstance(month_first, date) and first != second:
        return (
            f"{written}, and reads either way (day-month or month-day)",
            f"write the ISO date: {day_first.isoformat()} if the day comes first, "
            f"{month_first.isoformat()} if the month does",
        )
    if isinstance(day_first, date):
        meant = day_first
    elif isinstance(month_first, date):
        meant = month_first
    else:
        return day_first  # not a date either way: said as the day-first reading
    return (
        written,
        f"write {meant.isoformat()} (ISO) or {meant.month}/{meant.day}/{meant.year} (US)",
    )


def _checked_date(year: int, month: int, day: int) -> date | tuple[str, str]:
    try:
        checked = date(year, month, day)
    except ValueError:
        return (
            f"is not a real date (month {month}, day {day})",
            "check the date; US dates are month/day/year",
        )
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        return (
            f"has the year {year:04d}, outside {EARLIEST_YEAR} to {LATEST_YEAR}",
            "check the year; write the date in full, e.g. 2026-11-30",
        )
    return checked


def _comment(raw: object, problems: list[FieldProblem]) -> str:
    if type(raw) is str:
        if _SURROGATE.search(raw):
            problems.append(_surrogate_problem(COMMENT, raw))
            return ""
        return raw.strip()
    if raw is None:
        return ""
    if not isinstance(raw, str):
        problems.append(
            FieldProblem(
                COMMENT,
                _preview(raw),
                "must be text",
                'write the comment as a string, e.g. "On plan"',
            )
        )
        return ""
    return raw.strip()


@lru_cache(maxsize=4096)
def _fold(name: str) -> str:
    """A column or field name as compared: letters and digits only, any case
    (``External_ID``, ``as-of date`` and ``ExternalID`` all match)."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def _near_miss_header(cells: list[str], folded: list[str]) -> str | None:
    """Why a first row looks like a header with a misspelt 'External ID' column (and is
    therefore not data), or None."""
    import difflib

    for cell, name in zip(cells, folded, strict=True):
        if name and difflib.get_close_matches(name, ["externalid"], n=1, cutoff=0.75):
            known = ", ".join(DISPLAY_NAMES.values())
            return (
                f"line 1 looks like a header, but its column '{_preview(cell, 40)}' is not "
                f"'External ID'; name the columns as documented ({known}), then send the "
                "file again"
            )
    return None


def _unneutralised(cell: str | None) -> str | None:
    """A text cell with our own formula-neutralising ``'`` removed (a rejected file dropped
    back unchanged carries the IDs and comments of the original)."""
    if cell is None or cell.lstrip()[:1] != "'":
        return cell
    return unneutralise(cell.strip())


_LIKELY_MEANT = {
    METRIC_VALUE: ("actual", "value", "current", "currentvalue", "result", "kpi", "metric"),
    COMMENT: ("note", "notes", "comments", "remark", "remarks", "commentary"),
    AS_OF_DATE: ("date", "asof", "asat", "period", "reportingdate", "updatedate"),
    EXTERNAL_ID: ("id", "extid", "externalids", "itemid", "key", "externalref"),
    STATUS: ("state", "rag", "ragstatus", "progress", "health"),
}
_MEANT_BY_FOLDED = {
    folded: name for name, spellings in _LIKELY_MEANT.items() for folded in spellings
}


def _named_with_guesses(names: list[str]) -> str:
    """Names, each with the documented column it probably means: 'Actual' (did you mean
    'Metric Value'?)."""
    shown = []
    for name in names[:_MAX_NAMED_COLUMNS]:
        meant = _MEANT_BY_FOLDED.get(_fold(name))
        guess = f" (did you mean '{DISPLAY_NAMES[meant]}'?)" if meant else ""
        shown.append(f"'{_preview(name, 40)}'{guess}")
    more = len(names) - _MAX_NAMED_COLUMNS
    return ", ".join(shown) + (f" and {more:,} more" if more > 0 else "")


def _named(names: list[str]) -> str:
    shown = ", ".join(f"'{_preview(name, 40)}'" for name in names[:_MAX_NAMED_COLUMNS])
    more = len(names) - _MAX_NAMED_COLUMNS
    return shown + (f" and {more:,} more" if more > 0 else "")


def _preview(value: object, limit: int = 80) -> str:
    """``value`` as a short, printable, UTF-8-safe text for reports and messages."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, Decimal):
        text = str(value)
    elif isinstance(value, LongJsonNumber):
        text = value.text
    else:  # a JSON value: shown as JSON (true, null, {"v": 1})
        text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if _SURROGATE.search(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
