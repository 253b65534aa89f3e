"""The valid rows of a validation pass, kept on local disk for the publishing pass.

Validation writes each valid row (its line and its update's fields, checked) here; the
publishing pass reads them back in order, so the file is parsed and validated once per
invocation. The spool lives in a temporary file and dies with the process: a continuation
in a new invocation (the Lambda) validates the file again and makes a new one. Rows are
written in chunks of columns (``marshal``: lines, IDs, statuses, metric values as text,
dates as ordinals, comments), a few dozen bytes a row.
"""

from __future__ import annotations

import marshal
import struct
import tempfile
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
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

    def rows_in_order(self) -> Iterator[ValidRow]:
        """The rows as ``ValidRow``s (with ``SPOOLED`` as their record), in file order."""
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
            if len(dates) > 100_000:
                dates.clear()
            for line, external_id, status, metric, ordinal, comment in zip(
                lines, ids, statuses, metrics, ordinals, comments, strict=True
            ):
                value = None if metric is None else Decimal(metric)
                update: Update
                if status < 0:
                    update = new(MetricUpdate, (external_id, value, dates[ordinal], comment))
                else:
                    update = new(
                        ProgressUpdate,
                        (external_id, STATUSES[status], dates[ordinal], value, comment),
                    )
                yield new(ValidRow, (line, update, SPOOLED))

    def _write(self) -> None:
        data = marshal.dumps(tuple(self._pending))
        self._file.write(_LENGTH.pack(len(data)))
        self._file.write(data)
        self._pending = _empty()


def _empty() -> tuple[list[Any], ...]:
    return ([], [], [], [], [], [])
