"""The valid rows of a validation pass, kept on local disk for the publishing pass.

Validation writes each valid row (its line and its update's fields, checked) here; the
publishing pass reads them back in order, so the file is parsed and validated once per
invocation. The spool lives in a temporary file and dies with the process: a continuation
in a new invocation (the Lambda) validates the file again and makes a new one. Rows are
written in chunks of columns (``marshal``: lines, IDs, statuses, metric values as text,
dates as ordinals, comments), a few dozen bytes a row.
"""

from __future__ import annotations

import json
import marshal
import struct
import tempfile
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from functools import partial
from itertools import chain, repeat
from typing import IO, Any

from achieveit_sync.ingest.records import RawRecord
from achieveit_sync.ingest.validation import STATUSES, ValidColumns, ValidRow
from achieveit_sync.updates import MetricUpdate, ProgressUpdate, Update

_CHUNK_ROWS = 4096
_LENGTH = struct.Struct("<I")
SPOOLED = RawRecord(0)
"""The record of every row read back from the spool: the spool keeps lines and updates,
not the raw cells (rows to list in the rejected file are read again from the file)."""


class ValidSpool:
    """Valid rows, written in order, then read back in order (any number of times)."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="achieveit-valid-rows-")  # noqa: SIM115
        self._pending = _empty()
        self.rows = 0

    def __enter__(self) -> ValidSpool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def add(self, rows: ValidColumns) -> None:
        """Append ``rows``, in file order."""
        pending = self._pending
        for column, more in zip(pending, rows, strict=True):
            column.extend(more)
        self.rows += len(rows.lines)
        if len(pending[0]) >= _CHUNK_ROWS:
            self._write()

    def finish(self) -> None:
        """Everything added is written (call before reading)."""
        if self._pending[0]:
            self._write()
        self._file.flush()

    def rows_in_order(self, *, json_bodies: bool = False) -> Iterator[ValidRow]:
        """The rows as ``ValidRow``s (with ``SPOOLED`` as their record), in file order; with
        ``json_bodies``, each carries its update as a JSON request body writes it (made a
        column at a time: the same bytes as ``encode_updates``)."""
        return chain.from_iterable(self._chunks(json_bodies=json_bodies))

    def parts(self, batch_size: int, *, json_bodies: bool = False) -> Iterator[list[ValidRow]]:
        """The rows in parts of ``batch_size`` (the last one shorter), in file order: cut
        by count, as every run of the file cuts them."""
        part: list[ValidRow] = []
        for rows in self._chunks(json_bodies=json_bodies):
            start = 0
            while start < len(rows):
                end = start + batch_size - len(part)
                part += rows[start:end]
                start = end
                if len(part) == batch_size:
                    yield part
                    part = []
        if part:
            yield part

    def _chunks(self, *, json_bodies: bool) -> Iterator[list[ValidRow]]:
        self.finish()
        handle = self._file
        handle.seek(0)
        new = tuple.__new__
        dates: dict[int, date] = {}
        while True:
            header = handle.read(_LENGTH.size)
            if not header:
                return
            (size,) = _LENGTH.unpack(header)
            lines, ids, statuses, metrics, ordinals, comments = marshal.loads(  # noqa: S302 - our own temporary file
                handle.read(size)
            )
            for ordinal in set(ordinals).difference(dates):
                dates[ordinal] = date.fromordinal(ordinal)
            days = list(map(dates.__getitem__, ordinals))
            if len(dates) > 100_000:
                dates.clear()
            values = [None if text is None else Decimal(text) for text in metrics]
            updates: Iterator[Update]
            if min(statuses) >= 0:  # progress updates (a file holds one kind)
                statuses_of = map(STATUSES.__getitem__, statuses)
                updates = map(
                    partial(new, ProgressUpdate),
                    zip(ids, statuses_of, days, values, comments, strict=True),
                )
            elif max(statuses) < 0:
                metric_fields = zip(ids, values, days, comments, strict=True)
                updates = map(partial(new, MetricUpdate), metric_fields)
            else:
                updates = map(_update, ids, statuses, days, values, comments)
            bodies: Iterator[bytes | None] | list[bytes] = (
                _json_bodies(ids, statuses, metrics, days, comments)
                if json_bodies
                else repeat(None)
            )
            fields = zip(lines, updates, repeat(SPOOLED), bodies, strict=False)
            yield list(map(partial(new, ValidRow), fields))

    def _write(self) -> None:
        data = marshal.dumps(tuple(self._pending))
        self._file.write(_LENGTH.pack(len(data)))
        self._file.write(data)
        self._pending = _empty()


def _empty() -> tuple[list[Any], ...]:
    return ([], [], [], [], [], [])


def _update(
    external_id: str, status: int, day: date, value: Decimal | None, comment: str
) -> Update:
    if status < 0:
        assert value is not None  # noqa: S101 - a metric update has its value
        return MetricUpdate(external_id, value, day, comment)
    return ProgressUpdate(external_id, STATUSES[status], day, value, comment)


_STATUS_JSON = [f',"status":{json.dumps(status.value)}' for status in STATUSES]
_escape = json.encoder.encode_basestring_ascii  # what json.dumps writes for a str (C)


def _json_bodies(
    ids: list[str],
    statuses: list[int],
    metrics: list[str | None],
    dates: list[date],
    comments: list[str],
) -> list[bytes]:
    """Each row's JSON object, as ``updates.encode_updates`` writes it (``to_api_json``:
    externalId, status, metricValue, asOfDate, comment when not empty), built a column at
    a time."""
    status_parts = [_STATUS_JSON[code] if code >= 0 else "" for code in statuses]
    # As encode_updates writes a Decimal: an int when integral, else the nearest double.
    # (float of the text is float of the Decimal, both correctly rounded; and a value of at
    # most 15 significant digits, as validation allows, is integral exactly when its double
    # is: the double's error is below any fraction such a value can have.)
    floats = [None if text is None else float(text) for text in metrics]
    metric_parts = [
        "" if value is None else f',"metricValue":{int(value) if value.is_integer() else value!r}'
        for value in floats
    ]
    comment_parts = [f',"comment":{_escape(text)}' if text else "" for text in comments]
    return [
        f'{{"externalId":{external_id}{status}{metric},"asOfDate":"{day}"{comment}}}'.encode()
        for external_id, status, metric, day, comment in zip(
            map(_escape, ids),
            status_parts,
            metric_parts,
            map(date.isoformat, dates),
            comment_parts,
            strict=True,
        )
    ]
