"""The plan history: one snapshot of each plan per complete backup, laid out for Athena and
DuckDB alike (hive partitions, gzip-compressed JSON lines, flat lower-case columns).

Layout (relative to the bucket, or to ``--out DIR``)::

    history/snapshot_date=<YYYY-MM-DD>/plan_id=<planId>/<snapshot timestamp>.jsonl.gz

One JSON object per item per line, with the columns in ``HISTORY_COLUMNS``. The Glue table
is partitioned by ``snapshot_date`` alone (a date projection: every plan is in the table,
whichever plans the stack schedules); ``plan_id`` is a column read from each line there, and
its folder lets DuckDB skip other plans' files (``PATH_PARTITIONS``). The history is by
date, so every complete backup writes a snapshot, also when the plan is unchanged (its data
then reused). It is written after the backup's own files and ``latest.json``, and never for
an incomplete export. ``snapshot_at`` is the backup's start in UTC, written as
``YYYY-MM-DD HH:MM:SS.ffffff`` (the form both Athena's Hive JSON SerDe and DuckDB read as a
timestamp); ``snapshot_date`` is its date, the partition.

The flat columns are views for queries: a value of an unexpected type becomes null in a
numeric column (``current_value``, ``target``, ``baseline``, ``level``) and text in a text
column. ``item`` always holds the item exactly as the API returned it (a JSON string), so
nothing is lost. The Glue table in template.yaml (``HistoryTable``) declares the same columns
and types; a test holds the two together.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

HISTORY_PREFIX = "history/"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

HISTORY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("plan_id", "string"),
    ("snapshot_at", "timestamp"),
    ("snapshot_date", "string"),
    ("item_id", "string"),
    ("sequence_id", "string"),
    ("level", "bigint"),
    ("name", "string"),
    ("status", "string"),
    ("current_value", "double"),
    ("target", "double"),
    ("baseline", "double"),
    ("start", "string"),
    ("due", "string"),
    ("assigned_to", "string"),
    ("assigned_to_email", "string"),
    ("last_updated", "string"),
    ("item", "string"),
)
"""Every column of a history line, with its type (Glue/Hive names)."""
PARTITION_COLUMNS = ("snapshot_date",)
"""The Glue table's partition keys (Athena reads them from the path, the rest from the line)."""
PATH_PARTITIONS = ("snapshot_date", "plan_id")
"""The ``name=value`` folders of a key, in order: DuckDB reads both from the path."""

_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("item_id", ("id",)),
    ("sequence_id", ("sequenceId",)),
    ("level", ("level",)),
    ("name", ("name",)),
    ("status", ("statusName", "status")),
    ("current_value", ("currentValue",)),
    ("target", ("target",)),
    ("baseline", ("baseline",)),
    ("start", ("start",)),
    ("due", ("due",)),
    ("assigned_to", ("assignedToFullName",)),
    ("assigned_to_email", ("assignedToEmailAddress",)),
    ("last_updated", ("lastUpdated",)),
)
"""Each flat column and the API fields it comes from, the first one present wins (the
export sends ``statusName``; ``status`` is its name elsewhere)."""
_TYPES = dict(HISTORY_COLUMNS)


@dataclass(frozen=True)
class Snapshot:
    """Which snapshot a history file holds: the plan and the backup's start."""

    plan_id: str
    taken_at: datetime

    @property
    def snapshot_at(self) -> str:
        return self.taken_at.astimezone(UTC).strftime(TIMESTAMP_FORMAT)

    @property
    def snapshot_date(self) -> str:
        return self.taken_at.astimezone(UTC).strftime("%Y-%m-%d")

    @property
    def key(self) -> str:
        moment = self.taken_at.astimezone(UTC)
        return (
            f"{HISTORY_PREFIX}snapshot_date={self.snapshot_date}/plan_id={self.plan_id}/"
            f"{moment:%Y%m%dT%H%M%S.%fZ}.jsonl.gz"
        )


def history_line(snapshot: Snapshot, item: dict[str, Any], item_json: bytes) -> bytes:
    """One line of the history file (with its newline) for ``item``, whose exact JSON the
    backup already made (``item_json``)."""
    row: dict[str, Any] = {
        "plan_id": snapshot.plan_id,
        "snapshot_at": snapshot.snapshot_at,
        "snapshot_date": snapshot.snapshot_date,
    }
    for column, fields in _FIELDS:
        value = next((item[name] for name in fields if item.get(name) is not None), None)
        row[column] = _CONVERTERS[_TYPES[column]](value)
    row["item"] = item_json.decode()
    try:
        return (json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n").encode()
    except UnicodeEncodeError:  # a lone surrogate: escaped, which reads back the same
        return (json.dumps(row, ensure_ascii=True, allow_nan=False) + "\n").encode()


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | dict):
        from achieveit_sync import exact_json

        return exact_json.dumps(value)[0]  # exact numbers; NaN as the string "NaN"
    return str(value)  # a number (exact_json.JsonNumber keeps its digits), NaN as read


def _double(value: object) -> float | None:
    """A finite number, from a number or a numeric string; otherwise null."""
    if value is None or isinstance(value, bool | list | dict):
        return None
    if isinstance(value, int | float):
        number = float(value) if not isinstance(value, int) or abs(value) < 1e308 else math.inf
    else:
        try:
            number = float(Decimal(str(value).strip()))
        except (InvalidOperation, ValueError, OverflowError):
            return None
    return number if math.isfinite(number) else None


def _bigint(value: object) -> int | None:
    """A whole number within 64 bits, from an integer or integral text; otherwise null."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        number = value
    elif (
        isinstance(value, str)
        and value.strip().lstrip("+-").isascii()
        and value.strip().lstrip("+-").isdigit()
    ):
        number = int(value.strip())
    else:
        return None
    return number if -(2**63) <= number < 2**63 else None


_CONVERTERS: dict[str, Callable[[object], object]] = {
    "string": _text,
    "double": _double,
    "bigint": _bigint,
}
