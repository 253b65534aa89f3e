"""How the sandbox reads a progress or metric update submission, by the documented rules.

Written independently of ``achieveit_sync``'s own validator on purpose: the sandbox plays
the server, and a shared parser would make the tests agree with themselves.

Documented rules enforced here: JSON is an array of objects with exactly the API's field
names; CSV has an optional header (any column order with one, the default order without),
and no empty rows; statuses are case-insensitive; dates are ISO-8601, time ignored.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import date, datetime

from achieveit_sandbox.model import STATUSES

PROGRESS = "progress"
METRIC = "metric"

_JSON_FIELDS = {
    PROGRESS: {"externalId", "status", "metricValue", "asOfDate", "comment"},
    METRIC: {"externalId", "metricValue", "asOfDate", "comment"},
}
_DEFAULT_CSV_ORDER = {
    PROGRESS: ("externalId", "status", "metricValue", "asOfDate", "comment"),
    METRIC: ("externalId", "metricValue", "asOfDate", "comment"),
}
_CSV_HEADER_NAMES = {
    "externalid": "externalId",
    "status": "status",
    "metricvalue": "metricValue",
    "currentmetricvalue": "metricValue",
    "asofdate": "asOfDate",
    "comment": "comment",
}
_STATUS_BY_FOLDED = {status.casefold(): status for status in STATUSES}


class SubmissionError(Exception):
    """The whole submission is refused (400). ``row`` is 1-based, when one is to blame."""

    def __init__(self, message: str, row: int | None = None) -> None:
        self.row = row
        super().__init__(message if row is None else f"Row {row}: {message}")


@dataclass(frozen=True)
class SubmittedRow:
    row: int
    external_id: str
    status: str | None
    metric_value: float | None
    as_of_date: date
    comment: str | None


def parse_submission(kind: str, body: bytes, content_type: str, name: str) -> list[SubmittedRow]:
    """Every row of the submission, or ``SubmissionError`` for the first problem found."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"The body is not UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise SubmissionError("The submission is empty")
    if _is_json(content_type, name, text):
        records = _json_records(kind, text)
    else:
        records = _csv_records(kind, text)
    return [_check_row(kind, number, record) for number, record in records]


def _is_json(content_type: str, name: str, text: str) -> bool:
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    if "json" in media:
        return True
    if "csv" in media:
        return False
    lowered = name.lower()
    if lowered.endswith(".json"):
        return True
    if lowered.endswith(".csv"):
        return False
    return text.lstrip().startswith("[")


def _json_records(kind: str, text: str) -> list[tuple[int, dict[str, object]]]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SubmissionError(
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    if not isinstance(document, list):
        raise SubmissionError("A JSON submission must be an array of update objects")
    records: list[tuple[int, dict[str, object]]] = []
    for number, record in enumerate(document, start=1):
        if not isinstance(record, dict):
            raise SubmissionError("each update must be a JSON object", number)
        unknown = sorted(set(record) - _JSON_FIELDS[kind])
        if unknown:
            raise SubmissionError(f"unknown field '{unknown[0]}'", number)
        records.append((number, record))
    return records


def _csv_records(kind: str, text: str) -> list[tuple[int, dict[str, object]]]:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise SubmissionError("The submission is empty")
    header = _header_fields(rows[0])
    columns = header or _DEFAULT_CSV_ORDER[kind]
    if header:
        missing = [f for f in ("externalId", "asOfDate") if f not in header]
        if kind == PROGRESS and "status" not in header:
            missing.insert(1, "status")
        if missing:
            raise SubmissionError(f"The header row lacks the column(s) {', '.join(missing)}")
    data_rows = rows[1:] if header else rows
    first_row_number = 2 if header else 1
    records: list[tuple[int, dict[str, object]]] = []
    for number, cells in enumerate(data_rows, start=first_row_number):
        if not any(cell.strip() for cell in cells):
            raise SubmissionError("empty rows are not allowed", number)
        if len(cells) > len(columns):
            raise SubmissionError(
                f"{len(cells)} columns where at most {len(columns)} are expected", number
            )
        record: dict[str, object] = {}
        for column, cell in zip(columns, cells, strict=False):
            if cell.strip():
                record[column] = cell.strip()
        records.append((number, record))
    if not records:
        raise SubmissionError("The submission has no rows")
    return records


def _header_fields(cells: list[str]) -> tuple[str, ...] | None:
    folded = ["".join(cell.split()).casefold().lstrip("\ufeff") for cell in cells]
    if not folded or any(name not in _CSV_HEADER_NAMES for name in folded):
        return None
    fields = tuple(_CSV_HEADER_NAMES[name] for name in folded)
    if len(set(fields)) != len(fields):
        raise SubmissionError("The header row names a column twice")
    return fields


def _check_row(kind: str, number: int, record: dict[str, object]) -> SubmittedRow:
    external_id = record.get("externalId")
    if not isinstance(external_id, str) or not external_id.strip():
        raise SubmissionError("externalId is required", number)
    status: str | None = None
    if kind == PROGRESS:
        raw_status = record.get("status")
        if not isinstance(raw_status, str) or not raw_status.strip():
            raise SubmissionError("status is required", number)
        status = _STATUS_BY_FOLDED.get(raw_status.strip().casefold())
        if status is None:
            raise SubmissionError(f"'{raw_status}' is not a valid status", number)
    metric_value = _metric_value(record.get("metricValue"), number)
    if kind == METRIC and metric_value is None:
        raise SubmissionError("metricValue is required", number)
    as_of_date = _as_of_date(record.get("asOfDate"), number)
    comment = record.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise SubmissionError("comment must be text", number)
    return SubmittedRow(number, external_id.strip(), status, metric_value, as_of_date, comment)


def _metric_value(raw: object, number: int) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise SubmissionError("metricValue must be a number", number)
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            raise SubmissionError(f"'{raw}' is not a number", number) from None
    else:
        raise SubmissionError("metricValue must be a number", number)
    if not math.isfinite(value):
        raise SubmissionError("metricValue must be a finite number", number)
    return value


def _as_of_date(raw: object, number: int) -> date:
    if not isinstance(raw, str) or not raw.strip():
        raise SubmissionError("asOfDate is required", number)
    text = raw.strip()
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        pass
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SubmissionError(f"'{raw}' is not an ISO-8601 date", number) from None
