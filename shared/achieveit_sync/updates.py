"""Progress and metric updates as the AchieveIt API expects them, and their wire formats.

These are the *validated* records: the validator (ingest) builds them, the client serialises
them. JSON uses exactly the API's field names (``externalId``, ``status``, ``metricValue``,
``asOfDate``, ``comment``; ``comment`` is left out when empty). CSV writes a header row with
the documented column names, so column order never matters to the server.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple


class UpdateKind(StrEnum):
    PROGRESS = "progress"
    METRIC = "metric"

    @property
    def api_collection(self) -> str:
        """The path segment under ``/api/`` that receives this kind."""
        return "progressupdates" if self is UpdateKind.PROGRESS else "metricupdates"


class BodyFormat(StrEnum):
    JSON = "json"
    CSV = "csv"

    @property
    def content_type(self) -> str:
        return "application/json" if self is BodyFormat.JSON else "text/csv; charset=utf-8"


class Status(StrEnum):
    """The seven statuses, in the API's canonical spelling."""

    ON_TRACK = "On Track"
    OFF_TRACK = "Off Track"
    AT_RISK = "At Risk"
    ACHIEVED = "Achieved"
    NOT_ACHIEVED = "Not Achieved"
    CANCELED = "Canceled"
    NOT_STARTED = "Not Started"

    @classmethod
    def parse(cls, text: str) -> Status | None:
        """The status ``text`` names, in any case and spacing; ``None`` when it names none."""
        return _STATUS_BY_FOLDED_NAME.get(_fold(text))


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


_STATUS_BY_FOLDED_NAME = {_fold(status.value): status for status in Status}


# Named tuples, not dataclasses: a file can hold a million of them and they must be cheap
# to create; they are just as immutable.
class ProgressUpdate(NamedTuple):
    external_id: str
    status: Status
    as_of_date: date
    metric_value: Decimal | None = None
    comment: str = ""


class MetricUpdate(NamedTuple):
    external_id: str
    metric_value: Decimal
    as_of_date: date
    comment: str = ""


Update = ProgressUpdate | MetricUpdate

PROGRESS_CSV_COLUMNS = ("External ID", "Status", "Metric Value", "As Of Date", "Comment")
UPLOAD_TEMPLATE_COLUMNS = (*PROGRESS_CSV_COLUMNS, "Item Name")
"""The progress-update template a backup writes for each plan: the columns the ingest reads,
and the item's name (ignored when the filled-in template is dropped back)."""
METRIC_CSV_COLUMNS = ("External ID", "Current Metric Value", "As Of Date", "Comment")


# -- metric values: what can be sent exactly -------------------------------------------------

METRIC_MAX_SIGNIFICANT_DIGITS = 15
"""A double holds any decimal of 15 significant digits exactly enough to give it back: more
digits could reach AchieveIt as another number."""
METRIC_MAX_EXPONENT = 14
"""The largest metric is below 10**15 (999,999,999,999,999)."""
METRIC_MIN_EXPONENT = -15
"""The smallest non-zero metric is 10**-15 (0.000000000000001) in size."""
METRIC_MAX_CHARS = 64
"""Longer text is not looked at digit by digit: checking a value costs constant time."""
METRIC_RANGE_HINT = (
    "write a number with at most 15 significant digits, between -999999999999999 and "
    "999999999999999, and 0 or at least 0.000000000000001 in size"
)


def metric_value_problem(value: Decimal) -> str | None:
    """Why ``value`` cannot be sent to AchieveIt exactly (it would arrive as another number,
    or not at all), or ``None`` when it can. Constant time for the values validation lets
    through (at most ``METRIC_MAX_CHARS`` characters of text)."""
    if not value.is_finite():
        return "must be a finite number"
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # noqa: S101 - finite, checked above
    significant = len(digits)
    while significant and digits[significant - 1] == 0:  # trailing zeros carry no precision
        significant -= 1
    if significant == 0:
        return None  # zero, however it is written
    exponent += len(digits) - significant
    magnitude = exponent + significant - 1  # the power of ten of the leading digit
    if significant > METRIC_MAX_SIGNIFICANT_DIGITS:
        return f"has {significant} significant digits (at most {METRIC_MAX_SIGNIFICANT_DIGITS})"
    if magnitude > METRIC_MAX_EXPONENT:
        return "is too large (the largest metric value is 999999999999999)"
    if magnitude < METRIC_MIN_EXPONENT:
        return "is too close to 0 (the smallest non-zero metric value is 0.000000000000001)"
    return None


def kind_of(updates: Sequence[Update]) -> UpdateKind:
    """The one kind all ``updates`` share; mixing kinds in one request is a programming error."""
    kinds = {
        UpdateKind.PROGRESS if isinstance(u, ProgressUpdate) else UpdateKind.METRIC for u in updates
    }
    if len(kinds) != 1:
        raise ValueError(f"a request carries exactly one kind of update, got {sorted(kinds)}")
    return kinds.pop()


def encode_updates(updates: Sequence[Update], body_format: BodyFormat) -> bytes:
    """The request body for ``updates`` in ``body_format`` (UTF-8)."""
    if body_format is BodyFormat.JSON:
        return _JSON_BODY.encode(list(map(_api_json, updates))).encode()
    return _to_csv(updates).encode("utf-8")


_JSON_BODY = json.JSONEncoder(separators=(",", ":"))
"""``json.dumps`` with these separators, made once (dumps builds an encoder per call)."""


def _api_json(update: Update) -> dict[str, Any]:
    """``to_api_json``, for a body: the same document, fewer steps (the status as the str
    it is, which JSON writes as its value)."""
    metric, comment = update.metric_value, update.comment
    if type(update) is ProgressUpdate:
        document: dict[str, Any] = {"externalId": update[0], "status": update[1]}
    else:
        document = {"externalId": update[0]}
    if metric is not None:
        integral = metric.to_integral_value()
        document["metricValue"] = int(integral) if metric == integral else float(metric)
    document["asOfDate"] = update.as_of_date.isoformat()
    if comment:
        document["comment"] = comment
    return document


def to_api_json(update: Update) -> dict[str, Any]:
    document: dict[str, Any] = {"externalId": update.external_id}
    if isinstance(update, ProgressUpdate):
        document["status"] = update.status.value
    if update.metric_value is not None:
        document["metricValue"] = _json_number(update.metric_value)
    document["asOfDate"] = update.as_of_date.isoformat()
    if update.comment:
        document["comment"] = update.comment
    return document


def _json_number(value: Decimal) -> int | float:
    # JSON has one number type; integers stay exact, other values take the nearest double.
    integral = value.to_integral_value()
    return int(integral) if value == integral else float(value)


def _csv_number(value: Decimal) -> str:
    # Fixed-point, as the docs show numbers; a zero however written (0E-37) is just 0.
    return format(value, "f") if value else "0"


def _to_csv(updates: Sequence[Update]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if kind_of(updates) is UpdateKind.PROGRESS:
        writer.writerow(PROGRESS_CSV_COLUMNS)
    else:
        writer.writerow(METRIC_CSV_COLUMNS)
    for update in updates:
        metric = "" if update.metric_value is None else _csv_number(update.metric_value)
        date_text = update.as_of_date.isoformat()
        if isinstance(update, ProgressUpdate):
            writer.writerow(
                (update.external_id, update.status.value, metric, date_text, update.comment)
            )
        else:
            writer.writerow((update.external_id, metric, date_text, update.comment))
    return buffer.getvalue()
