"""CSV records: the separator (Excel's ``sep=`` line, or sniffed among comma, semicolon and
tab), strict quoting, and rows that cannot be parsed kept as they were."""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Generator, Iterator
from itertools import islice
from operator import methodcaller

from achieveit_sync.ingest.byte_streams import SNIFF_BYTES, DecodingGuard
from achieveit_sync.ingest.records import (
    MAX_LINE_BYTES,
    CsvBatch,
    CsvDialect,
    InvalidFileError,
    RawRecord,
    RecordStream,
    too_many_lines,
)

_DELIMITERS = (",", ";", "\t")


def csv_dialect(text_head: str) -> CsvDialect:
    """The delimiter: Excel's ``sep=X`` first line, else whichever of comma, semicolon and tab
    splits the first line into the most cells (comma on a tie). Bounded to those three, so a
    comment full of colons can never be taken for the delimiter."""
    first_line = text_head.splitlines()[0] if text_head.strip() else ""
    if first_line.lower().startswith("sep=") and len(first_line.rstrip("\r\n")) == 5:
        delimiter = first_line[4]
        if delimiter in _DELIMITERS:
            return CsvDialect(delimiter, sep_line=True)
    try:
        sniffed = csv.Sniffer().sniff(text_head[:SNIFF_BYTES], delimiters="".join(_DELIMITERS))
        candidates = [sniffed.delimiter, *_DELIMITERS]
    except csv.Error:
        candidates = list(_DELIMITERS)

    def cells(delimiter: str) -> int:
        return len(next(csv.reader([first_line], delimiter=delimiter), []))

    best = max(_DELIMITERS, key=lambda d: (cells(d), d == candidates[0], d == ","))
    return CsvDialect(best if cells(best) > 1 else ",")


def allow_cells_as_long_as_lines() -> None:
    """Raise ``csv``'s cell limit (128 KiB by default, for the whole process) to the longest
    line a file may hold: a long unquoted cell is a value to judge, not a broken file. A
    quoted cell that runs over many lines still meets the limit (an unclosed quotation
    mark), and fails the file with that hint."""
    if csv.field_size_limit() < MAX_LINE_BYTES:
        csv.field_size_limit(MAX_LINE_BYTES)


def csv_records(text: DecodingGuard, stream: RecordStream, max_lines: int) -> Iterator[RawRecord]:
    allow_cells_as_long_as_lines()
    dialect = stream.dialect or CsvDialect(",")
    lines = iter(text.wrapper)
    skipped = 0  # physical lines read before the reader's first (Excel's sep= line)
    if dialect.sep_line:
        next(lines, None)
        skipped = 1
    yield from _records(lines, skipped, text, stream, dialect, max_lines)


BATCH_ROWS = 512
"""Rows per ``CsvBatch``: large enough that per-batch work vanishes per row, small enough
that a batch's lines, kept for a careful re-read, stay a few dozen KB."""


def csv_batches(
    text: DecodingGuard, stream: RecordStream, max_lines: int
) -> Iterator[CsvBatch | RawRecord]:
    """The same records as ``csv_records``, mostly as ``CsvBatch``es: runs of rows of one
    physical line each, none blank. Lines are read ``BATCH_ROWS`` at a time; a run without
    quotation marks is split at its line breaks and delimiters (what ``csv.reader`` does
    with such lines, in a few C passes); others go through ``csv.reader``. A run that is
    anything else (a cell over several lines, a blank row, a row that cannot be parsed, a
    decoding error, the line limit) is read again carefully, record by record, exactly as
    ``csv_records`` reads it."""
    allow_cells_as_long_as_lines()
    dialect = stream.dialect or CsvDialect(",")
    lines = iter(text.wrapper)
    previous_line = 0  # physical lines turned into records so far (and Excel's sep= line)
    if dialect.sep_line:
        next(lines, None)
        previous_line = 1
    carried: list[str] = []  # lines read, not yet made records (after a row in error)
    while True:
        group, carried = carried, []
        failure: Exception | None = None
        try:
            group.extend(islice(lines, BATCH_ROWS - len(group)))
        except UnicodeDecodeError as exc:
            failure = exc
        if failure is None and not group:
            return
        rows = _plain_rows(group, dialect.delimiter) if failure is None else None
        if rows is not None and previous_line + len(rows) <= max_lines:
            yield CsvBatch(previous_line + 1, rows)
            previous_line += len(rows)
            continue
        if failure is None and _all_blank(group, dialect.delimiter):
            if previous_line + len(group) > max_lines:
                raise too_many_lines(max_lines)
            stream.blank_lines += len(group)
            previous_line += len(group)
            continue
        if failure is None:  # quoted cells, blank rows...: csv.reader's way, row by row
            previous_line, carried = yield from _runs(
                group, lines, previous_line, text, stream, dialect, max_lines
            )
            continue
        # The careful way, over the lines read before a decoding error (raised again
        # there, after the rows before it, as csv_records does).
        assert isinstance(failure, UnicodeDecodeError)  # noqa: S101 - the only one caught
        yield from _records(
            _then_raise(group, failure), previous_line, text, stream, dialect, max_lines
        )
        previous_line += len(group)


def _runs(
    group: list[str],
    lines: Iterator[str],
    previous_line: int,
    text: DecodingGuard,
    stream: RecordStream,
    dialect: CsvDialect,
    max_lines: int,
) -> Generator[CsvBatch | RawRecord, None, tuple[int, list[str]]]:
    """The records that start in ``group`` (read on into ``lines`` if one runs on), by
    ``csv.reader``: runs of plain rows (one line each, not blank) as ``CsvBatch``es, and
    each other record (a cell over several lines, a blank row, a row that cannot be
    parsed, past the line limit) read again from its own lines by the careful reader.
    Returns the last line read and the lines of ``group`` not reached (after a record
    that ran past it, none)."""
    feed = _Feed(group, lines)
    reader = csv.reader(feed, delimiter=dialect.delimiter, strict=True)
    run: list[list[str]] = []
    run_start = previous_line
    while feed.first_left:
        taken_before = len(feed.taken)
        failure: Exception | None = None
        try:
            cells = next(reader)
        except StopIteration:
            break
        except (csv.Error, UnicodeDecodeError) as exc:
            cells, failure = [], exc
        record_lines = feed.taken[taken_before:]
        end_line = previous_line + len(record_lines)
        if failure is None and len(record_lines) == 1 and end_line <= max_lines:
            if "".join(cells).strip():
                if not run:
                    run_start = previous_line
                run.append(cells)
            else:  # a blank row: counted, and it ends the run (a batch's lines follow on)
                if run:
                    yield CsvBatch(run_start + 1, run)
                    run = []
                stream.blank_lines += 1
            previous_line = end_line
            continue
        if run:
            yield CsvBatch(run_start + 1, run)
            run = []
        again: Iterator[str] = iter(record_lines)
        if isinstance(failure, UnicodeDecodeError):
            again = _then_raise(record_lines, failure)
        yield from _records(again, previous_line, text, stream, dialect, max_lines)
        previous_line = end_line
    if run:
        yield CsvBatch(run_start + 1, run)
    return previous_line, feed.left


def _all_blank(lines: list[str], delimiter: str) -> bool:
    """Whether every line is blank (only white space and delimiters; no quotation mark)."""
    joined = "".join(lines)
    return '"' not in joined and not joined.strip(WHITESPACE + delimiter)


def _plain_rows(lines: list[str], delimiter: str) -> list[list[str]] | None:
    """The rows of ``lines`` if none holds a quotation mark, a lone carriage return, a blank
    row or a cell over ``csv.reader``'s size limit: each line split at the delimiter,
    as ``csv.reader`` would (line breaks: LF or CRLF)."""
    joined = "".join(lines)
    if '"' in joined:
        return None
    breaks = "\n"
    if "\r" in joined:  # Excel's CRLF throughout? (else CR, or mixed breaks)
        # Each line ends in one break (the last maybe in none), and holds no other CR or
        # LF: as many CRs and as many LFs as breaks means every break is a CRLF.
        ended = len(lines) - (lines[-1][-1:] not in ("\r", "\n"))
        if joined.count("\r") != ended or joined.count("\n") != ended:
            return None
        breaks = "\r\n"
    texts = joined.split(breaks)
    if texts[-1] == "":  # the last line's break
        texts.pop()
    if len(texts) != len(lines):
        return None
    limit = csv.field_size_limit()
    if len(joined) > limit and max(map(len, texts)) > limit:
        return None
    if not all(map(methodcaller("strip", WHITESPACE + delimiter), texts)):
        return None  # a blank row (only white space and delimiters): the careful way
    return list(map(methodcaller("split", delimiter), texts))


WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""Every character ``str.strip()`` removes (a test holds it to that): a row is blank when
it holds nothing else between its delimiters."""


class _Feed:
    """Lines for ``csv.reader``: ``first``, then more from ``rest`` if a record runs on;
    which it took, and which of ``first`` it left."""

    __slots__ = ("_first", "_rest", "taken")

    def __init__(self, first: list[str], rest: Iterator[str]) -> None:
        self._first = deque(first)
        self._rest = rest
        self.taken: list[str] = []

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        line = self._first.popleft() if self._first else next(self._rest)
        self.taken.append(line)
        return line

    @property
    def first_left(self) -> bool:
        return bool(self._first)

    @property
    def left(self) -> list[str]:
        return list(self._first)


def _then_raise(lines: list[str], failure: Exception) -> Iterator[str]:
    yield from lines
    raise failure


def _records(
    lines: Iterator[str],
    skipped: int,
    text: DecodingGuard,
    stream: RecordStream,
    dialect: CsvDialect,
    max_lines: int,
) -> Iterator[RawRecord]:
    """Records from ``lines``, the first of which is physical line ``skipped + 1``."""
    tap = _LineTap(lines)
    # strict: a stray quotation mark is an error for its row, and a quotation mark never
    # closed is an error for the file, instead of rows silently merged into one cell.
    reader = csv.reader(tap, delimiter=dialect.delimiter, strict=True)
    new_record = tuple.__new__  # a RawRecord without NamedTuple's Python-level __new__
    previous_line = skipped
    while True:
        tap.taken.clear()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            start_line, previous_line = previous_line + 1, reader.line_num + skipped
            if previous_line > max_lines:
                raise too_many_lines(max_lines) from None
            yield _unparsable_row(exc, start_line, previous_line, tap, dialect)
            continue
        except UnicodeDecodeError as exc:
            raise text.decoding_error(exc) from None
        start_line = previous_line + 1
        previous_line = reader.line_num + skipped
        if previous_line > max_lines:
            raise too_many_lines(max_lines)
        if not any(cells) or not "".join(cells).strip():
            stream.blank_lines += 1
            continue
        if previous_line > start_line:  # a quoted cell held line breaks: is it rows?
            swallowed = _swallowed_rows(cells, dialect.delimiter)
            if swallowed:
                yield RawRecord(line=start_line, cells=cells, problem=swallowed)
                continue
        yield new_record(RawRecord, (start_line, cells, None, None, None, None))


class _LineTap:
    """The physical lines ``csv.reader`` took for the record being read: the text of a row
    it cannot parse goes into the rejected file as it was."""

    __slots__ = ("_lines", "taken")

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = iter(lines)
        self.taken: list[str] = []

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.taken.append(line)
        return line


def _unparsable_row(
    exc: csv.Error, start_line: int, end_line: int, tap: _LineTap, dialect: CsvDialect
) -> RawRecord:
    raw = "".join(tap.taken)
    if "end of data" in str(exc):
        raise InvalidFileError(
            f"a quotation mark opened on line {start_line} is never closed",
            "close the quoted cell, or remove the stray quotation mark; the rows after it "
            "would otherwise be read as part of that cell",
            line=start_line,
        ) from None
    if "field limit" in str(exc):
        raise InvalidFileError(
            f"a cell starting on line {start_line} is longer than "
            f"{csv.field_size_limit():,} characters",
            "a quotation mark opened before it and never closed makes the rest of the file "
            "one cell: close it; or shorten the cell",
            line=start_line,
        ) from None
    # The row as a lenient reader sees it, so that the rejected file still shows it.
    try:
        cells = next(csv.reader([raw], delimiter=dialect.delimiter), [])
    except csv.Error:
        cells = []
    where = f"line {start_line}" + (f" to {end_line}" if end_line > start_line else "")
    return RawRecord(
        line=start_line,
        cells=cells or [raw.rstrip("\r\n")],
        problem=f"a quotation mark in the middle of a cell ({where}); a cell that holds "
        "quotation marks must be quoted as a whole, with each inner one doubled "
        '(e.g. """Q3"" final")',
    )


def _swallowed_rows(cells: list[str], delimiter: str) -> str | None:
    """Why a record spanning several lines looks like rows swallowed by an unclosed quote
    (a line inside one of its cells splits into as many cells as the record has), or None
    for an honest multi-line cell such as a long comment."""
    for cell in cells:
        if "\n" not in cell and "\r" not in cell:
            continue
        for inner in cell.splitlines()[1:]:
            if len(next(csv.reader([inner], delimiter=delimiter), [])) >= len(cells):
                return (
                    "a quoted cell runs over several lines that look like rows of their own: "
                    "a quotation mark seems never closed, so the rows after it were read as "
                    "part of this one"
                )
    return None
