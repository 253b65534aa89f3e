"""What reading a file yields: records, the stream that holds them, and the file-level
error; shared by the CSV and JSON readers and by validation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from achieveit_sync.errors import AchieveItSyncError

MAX_LINE_BYTES = 1_000_000
"""In CSV and JSON Lines, a longer physical line is refused: it is not a data row, and it
must not fill memory. (A JSON array may be one long line; its elements are bounded.)"""
MAX_JSON_ELEMENT_CHARS = 1_000_000
DEFAULT_MAX_LINES = 2_000_000
DEFAULT_MAX_BYTES = 512 * 1024**2


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """How much of a file is read before it is refused as too large (settings
    ``INGEST_MAX_LINES`` and ``INGEST_MAX_BYTES``): reading and validating what these allow
    fits one Lambda invocation with a wide margin (RELIABILITY.md has the figures)."""

    max_lines: int = DEFAULT_MAX_LINES
    """Physical lines, blank ones included (a few KB of gzip can hold millions of them)."""
    max_bytes: int = DEFAULT_MAX_BYTES
    """Bytes of text, after decompression (a 'gzip bomb' is refused part-way)."""


class FileFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    JSONL = "jsonl"


class InvalidFileError(AchieveItSyncError):
    """The whole file cannot be read. ``hint`` says how to fix it."""

    def __init__(
        self, reason: str, hint: str, *, byte_offset: int | None = None, line: int | None = None
    ) -> None:
        self.reason = reason
        self.hint = hint
        self.byte_offset = byte_offset
        self.line = line
        where = []
        if line is not None:
            where.append(f"line {line}")
        if byte_offset is not None:
            where.append(f"byte {byte_offset}")
        located = f" ({', '.join(where)})" if where else ""
        super().__init__(f"{reason}{located}; {hint}")


class RawRecord(NamedTuple):
    """One record as it stands in the file, before validation (a tuple: one per row, so
    it must be cheap to make)."""

    line: int
    """1-based physical line where the record starts."""
    cells: list[str] | None = None
    """CSV: the cells, in file order."""
    fields: dict[str, object] | None = None
    """JSON/JSON Lines: the object's fields."""
    problem: str | None = None
    """Set when the record itself is unreadable (a bad JSON Lines line, a non-object)."""
    original: object = None
    """For a JSON record that is not an object: the value, to echo in the rejected file."""
    element: int | None = None
    """JSON arrays: the element's 1-based position (several may share a line)."""

    @property
    def where(self) -> str:
        """``line 7``, or ``line 1 (element 3)`` for an element of a JSON array."""
        if self.element is None:
            return f"line {self.line}"
        return f"line {self.line} (element {self.element})"


class CsvBatch(NamedTuple):
    """Consecutive CSV rows of one physical line each, none blank (see ``csv_batches``)."""

    first_line: int
    rows: list[list[str]]

    def records(self) -> list[RawRecord]:
        new = tuple.__new__
        return [
            new(RawRecord, (line, cells, None, None, None, None))
            for line, cells in enumerate(self.rows, start=self.first_line)
        ]


@dataclass
class RecordStream:
    """An opened file: what it is, and its records (iterate once)."""

    name: str
    file_format: FileFormat
    encoding: str
    compressed: bool
    records: Iterator[RawRecord]
    blank_lines: int = 0
    """Blank lines (and blank CSV rows) skipped so far; final once ``records`` is exhausted."""
    dialect: CsvDialect | None = None
    """CSV only: the delimiter, and how it was found."""
    batches: Iterator[CsvBatch | RawRecord] | None = None
    """CSV only: the same records, mostly in batches (iterate this or ``records``, once)."""

    def in_batches(self) -> Iterator[CsvBatch | RawRecord]:
        """The records, in ``CsvBatch``es where the format allows."""
        return self.batches if self.batches is not None else self.records


@dataclass(frozen=True, slots=True)
class CsvDialect:
    delimiter: str
    sep_line: bool = False
    """The file starts with Excel's ``sep=X`` line (written back the same way)."""

    @property
    def described(self) -> str:
        name = {",": "comma", ";": "semicolon", "\t": "tab"}[self.delimiter]
        return f"{name}-separated" + (" (from its 'sep=' line)" if self.sep_line else "")


def too_many_lines(max_lines: int) -> InvalidFileError:
    return InvalidFileError(
        f"the file has more than {max_lines:,} lines (blank lines count too)",
        f"split it into files of at most {max_lines:,} lines, or raise INGEST_MAX_LINES",
        line=max_lines + 1,
    )
