"""Validating raw records into progress or metric updates, row by row.

Every rejection names the line, the field, the value, why, and how to fix it. Valid rows are
never held back by invalid ones. Nothing is silently fixed: a value is either accepted as
written (a status in another case, a date-time whose time is dropped, as documented) or
rejected with a hint.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from achieveit_sync.errors import AchieveItSyncError
from achieveit_sync.ingest.reading import RawRecord
from achieveit_sync.updates import MetricUpdate, ProgressUpdate, Status, Update, UpdateKind

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

DISPLAY_NAMES = {
    EXTERNAL_ID: "External ID",
    STATUS: "Status",
    METRIC_VALUE: "Metric Value",
    AS_OF_DATE: "As Of Date",
    COMMENT: "Comment",
}

PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})")
_ISO_DATE_PREFIX = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:$|[T ])")
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


class KindUnknownError(AchieveItSyncError):
    """The file's kind (progress or metric) cannot be told from its location or columns."""


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    value: str
    reason: str
    hint: str


@dataclass(frozen=True, slots=True)
class ValidRow:
    line: int
    update: Update
    record: RawRecord


@dataclass(frozen=True, slots=True)
class RejectedRow:
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
    ignored_columns: tuple[str, ...] = ()


class SeenKeys:
    """Which (external ID, date) keys a file has used, and on which line first.

    Open addressing over two flat arrays: 12 bytes a slot, where a dict of ints would take
    ~100 bytes an entry; this keeps a 1,000,000-row file's bookkeeping near 24 MB. Keys are
    64-bit hashes; two different keys colliding in a file of a million rows has a chance of
    about 1 in 30 million.
    """

    _EMPTY = 0

    def __init__(self, capacity_bits: int = 12) -> None:
        self._allocate(1 << capacity_bits)

    def _allocate(self, size: int) -> None:
        self._size = size
        self._keys = array("q", bytes(8 * size))
        self._lines = array("i", bytes(4 * size))
        self._count = 0

    def first_line(self, key: int, line: int) -> int | None:
        """``None`` the first time ``key`` is seen (remembering ``line``); else that line."""
        key = key or 1  # 0 marks an empty slot
        mask = self._size - 1
        slot = key & mask
        keys = self._keys
        while True:
            present = keys[slot]
            if present == self._EMPTY:
                keys[slot] = key
                self._lines[slot] = line
                self._count += 1
                if self._count * 2 > self._size:
                    self._grow()
                return None
            if present == key:
                return self._lines[slot]
            slot = (slot + 1) & mask

    def _grow(self) -> None:
        old_keys, old_lines = self._keys, self._lines
        self._allocate(self._size * 2)
        for key, line in zip(old_keys, old_lines, strict=True):
            if key != self._EMPTY:
                self.first_line(key, line)


@dataclass
class Validator:
    """Validates the records of one file in order; keeps the state that spans rows
    (the CSV layout, duplicate detection, warnings)."""

    kind: UpdateKind | None
    """``None``: infer from the header or the first JSON object (a status means progress)."""
    warnings: list[str] = field(default_factory=list)
    layout: Layout | None = None
    _seen: SeenKeys = field(default_factory=SeenKeys)
    _unknown_json_fields: set[str] = field(default_factory=set)

    def validate(self, records: Iterator[RawRecord]) -> Iterator[ValidRow | RejectedRow]:
        for record in records:
            result = self.validate_one(record)
            if result is not None:
                yield result

    def validate_one(self, record: RawRecord) -> ValidRow | RejectedRow | None:
        """The verdict on one record; ``None`` for a CSV header row."""
        if record.problem is not None:
            return RejectedRow(
                record.line,
                (
                    FieldProblem(
                        "(row)",
                        _preview(record.original),
                        record.problem,
                        "each update must be an object with externalId, asOfDate and "
                        "the other documented fields",
                    ),
                ),
                record,
            )
        if record.cells is not None:
            values = self._csv_values(record)
            if values is None:
                return None
        else:
            values = self._json_values(record)
        return self._validate_values(record, values)

    # -- mapping raw records to named values ---------------------------------------------

    def _csv_values(self, record: RawRecord) -> dict[str, object] | None:
        cells = record.cells or []
        if self.layout is None:
            self.layout = self._layout_from_first_row(cells)
            if self.layout.header is not None:
                return None
        columns = self.layout.columns
        values: dict[str, object] = {}
        if len(cells) > len(columns):
            extra = [cell for cell in cells[len(columns) :] if cell.strip()]
            if extra:
                values["(row)"] = (
                    f"the row has {len(cells)} values but the file has {len(columns)} columns"
                )
        for column, cell in zip(columns, cells, strict=False):
            if column is not None:
                values[column] = cell
        return values

    def _layout_from_first_row(self, cells: list[str]) -> Layout:
        folded = [_fold(cell) for cell in cells]
        if EXTERNAL_ID in {_FIELD_BY_FOLDED_NAME.get(name) for name in folded}:
            return self._header_layout(cells, folded)
        if self.kind is None:
            raise KindUnknownError(
                "the file has no header row and is not under incoming/progress/ or "
                "incoming/metrics/, so its kind cannot be told; add a header row "
                "(External ID, Status, ...) or move it under one of those folders"
            )
        return Layout(columns=DEFAULT_COLUMNS[self.kind], header=None)

    def _header_layout(self, cells: list[str], folded: list[str]) -> Layout:
        columns: list[str | None] = []
        ignored: list[str] = []
        seen: set[str] = set()
        for cell, name in zip(cells, folded, strict=True):
            canonical = _FIELD_BY_FOLDED_NAME.get(name)
            if canonical is None or canonical in seen:
                columns.append(None)
                if canonical in seen:
                    self.warnings.append(
                        f"column '{cell}' repeats a column; only the first is used"
                    )
                elif name and name not in INFORMATIONAL_COLUMNS:
                    ignored.append(cell)
                continue
            seen.add(canonical)
            columns.append(canonical)
        if self.kind is None:
            self.kind = UpdateKind.PROGRESS if STATUS in seen else UpdateKind.METRIC
        elif self.kind is UpdateKind.METRIC and STATUS in seen:
            self.warnings.append("the Status column is ignored: this is a metric update file")
        if ignored:
            self.warnings.append(
                "unknown column(s) ignored: " + ", ".join(f"'{c}'" for c in ignored)
            )
        return Layout(columns=tuple(columns), header=tuple(cells), ignored_columns=tuple(ignored))

    def _json_values(self, record: RawRecord) -> dict[str, object]:
        values: dict[str, object] = {}
        for key, value in (record.fields or {}).items():
            name = _fold(key)
            canonical = _FIELD_BY_FOLDED_NAME.get(name)
            if canonical is None:
                if name not in INFORMATIONAL_COLUMNS and key not in self._unknown_json_fields:
                    self._unknown_json_fields.add(key)
                    self.warnings.append(
                        f"unknown field '{key}' ignored (first seen on line {record.line})"
                    )
                continue
            values[canonical] = value
        if self.kind is None:
            self.kind = UpdateKind.PROGRESS if STATUS in values else UpdateKind.METRIC
        return values

    # -- the rules ------------------------------------------------------------------------

    def _validate_values(
        self, record: RawRecord, values: dict[str, object]
    ) -> ValidRow | RejectedRow:
        kind = self.kind or UpdateKind.PROGRESS
        problems: list[FieldProblem] = []
        row_problem = values.get("(row)")
        if isinstance(row_problem, str):
            problems.append(
                FieldProblem(
                    "(row)",
                    "",
                    row_problem,
                    "remove the extra values, or quote a value that contains a comma",
                )
            )
        external_id = _external_id(values.get(EXTERNAL_ID), problems)
        status = _status(values.get(STATUS), problems) if kind is UpdateKind.PROGRESS else None
        metric_value = _metric_value(
            values.get(METRIC_VALUE), problems, required=kind is UpdateKind.METRIC
        )
        as_of_date = _as_of_date(values.get(AS_OF_DATE), problems)
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
        duplicate_line = self._first_line_of(external_id, as_of_date, record.line)
        if duplicate_line is not None:
            return RejectedRow(
                record.line,
                (
                    FieldProblem(
                        EXTERNAL_ID,
                        external_id,
                        f"line {duplicate_line} already updates this item for "
                        f"{as_of_date.isoformat()}",
                        "keep one row per external ID and as-of date; this row was not sent",
                    ),
                ),
                record,
            )
        return ValidRow(record.line, update, record)

    def _first_line_of(self, external_id: str, as_of_date: date, line: int) -> int | None:
        # Python's string hash is randomised per process: detection spans one run, which
        # always reads the file from its first line (a resumed run re-reads it too).
        return self._seen.first_line(hash((external_id.casefold(), as_of_date.toordinal())), line)


# -- field rules --------------------------------------------------------------------------------


def _external_id(raw: object, problems: list[FieldProblem]) -> str | None:
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
    if any(ord(char) < 32 for char in text):
        problems.append(
            FieldProblem(
                EXTERNAL_ID,
                _preview(text),
                "contains a line break or control character",
                "remove it; external IDs are single-line text",
            )
        )
        return None
    return text


def _status(raw: object, problems: list[FieldProblem]) -> Status | None:
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
    raw: object, problems: list[FieldProblem], *, required: bool
) -> Decimal | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            problems.append(
                FieldProblem(
                    METRIC_VALUE, "", "is missing", "a metric update needs a number, e.g. 42 or 0.2"
                )
            )
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        problems.append(
            FieldProblem(
                METRIC_VALUE,
                _preview(raw),
                "must be a number",
                "write a plain number, e.g. 42 or 0.2",
            )
        )
        return None
    if isinstance(raw, float):
        if not math.isfinite(raw):
            problems.append(
                FieldProblem(
                    METRIC_VALUE,
                    str(raw),
                    "must be a finite number",
                    "write a plain number, e.g. 42 or 0.2",
                )
            )
            return None
        return Decimal(repr(raw))
    if isinstance(raw, int):
        return Decimal(raw)
    text = raw.strip()
    if PLAIN_NUMBER.fullmatch(text):
        try:
            return Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            pass
    problems.append(FieldProblem(METRIC_VALUE, _preview(text), *_number_problem(text)))
    return None


def _number_problem(text: str) -> tuple[str, str]:
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
    if _THOUSANDS.fullmatch(text):
        return "has thousands separators", f"write {text.replace(',', '')}"
    if _DECIMAL_COMMA.fullmatch(text):
        return "uses a decimal comma", f"use a decimal point: write {text.replace(',', '.')}"
    return "is not a number", "write a plain number such as 42, -3.5 or 0.2 (no units)"


def _percent_example(number: str) -> str:
    try:
        return f"write {Decimal(number) / 100} for {number}%"
    except InvalidOperation:
        return "write 0.2 for 20%"


def _as_of_date(raw: object, problems: list[FieldProblem]) -> date | None:
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


def _parse_date(text: str) -> date | tuple[str, str]:
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
    us = _US_DATE.fullmatch(text)
    if us:
        month_text, day_text, year_text = us.groups()
        if len(year_text) == 2:
            return (
                "has a two-digit year",
                f"write the year in full: {month_text}/{day_text}/20{year_text}",
            )
        return _checked_date(int(year_text), int(month_text), int(day_text))
    if text.isdigit() and 20000 < int(text) < 80000:
        return (
            "looks like an Excel date serial number",
            "format the column as a date (yyyy-mm-dd) before saving",
        )
    return (
        "is not a date AchieveIt accepts",
        "write an ISO date (2026-11-30) or a US date (11/30/2026)",
    )


def _checked_date(year: int, month: int, day: int) -> date | tuple[str, str]:
    try:
        return date(year, month, day)
    except ValueError:
        return (
            f"is not a real date (month {month}, day {day})",
            "check the date; US dates are month/day/year",
        )


def _comment(raw: object, problems: list[FieldProblem]) -> str:
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


def _fold(name: str) -> str:
    return "".join(name.split()).casefold().lstrip("\ufeff")


def _preview(value: object, limit: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def display_columns(kind: UpdateKind) -> Sequence[str]:
    """The documented CSV column names for ``kind``."""
    names = [DISPLAY_NAMES[name] for name in DEFAULT_COLUMNS[kind]]
    if kind is UpdateKind.METRIC:
        names[1] = "Current Metric Value"
    return names
