"""Reading an update file as a stream of raw records, whatever its format and encoding.

Formats: CSV, JSON (an array of objects), JSON Lines (``.jsonl``/``.ndjson``), each optionally
gzip-compressed. The format is decided by extension, then by content. Encodings: UTF-8 with
or without BOM, UTF-16 with BOM. Memory stays flat whatever the file's size: bytes are
decompressed and decoded in chunks, records are yielded one at a time, and no line, field or
JSON element may exceed a fixed size.

A file that cannot be read (empty, a spreadsheet, an image, truncated gzip, undecodable
bytes, JSON that is not an array) raises ``InvalidFileError`` with one message saying what
is wrong, where (byte offset or line) and how to fix it. A single bad record in JSON Lines is
not a file error: it comes back as a record with ``problem`` set, and the rest still counts.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple, Protocol

from achieveit_sync.errors import AchieveItSyncError
from achieveit_sync.updates import METRIC_MAX_CHARS

MAX_LINE_BYTES = 1_000_000
"""In CSV and JSON Lines, a longer physical line is refused: it is not a data row, and it
must not fill memory. (A JSON array may be one long line; its elements are bounded.)"""
MAX_JSON_ELEMENT_CHARS = 1_000_000
DEFAULT_MAX_LINES = 2_000_000
DEFAULT_MAX_BYTES = 512 * 1024**2
_CHUNK_BYTES = 256 * 1024
_JSON_WHITESPACE = re.compile(r"[ \t\r\n]*")
_SNIFF_BYTES = 4096

_BINARY_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (
        b"PK\x03\x04",
        "an Excel workbook or another ZIP archive",
        "open it in Excel and use File > Save As > 'CSV UTF-8 (Comma delimited)'",
    ),
    (
        b"\xd0\xcf\x11\xe0",
        "an old-style Excel (.xls) or Office file",
        "open it in Excel and use File > Save As > 'CSV UTF-8 (Comma delimited)'",
    ),
    (b"%PDF", "a PDF document", "export the data as CSV or JSON instead"),
    (b"\x89PNG", "a PNG image", "export the data as CSV or JSON instead"),
    (b"\xff\xd8\xff", "a JPEG image", "export the data as CSV or JSON instead"),
    (b"GIF8", "a GIF image", "export the data as CSV or JSON instead"),
    (b"BZh", "a bzip2 archive", "compress with gzip (.gz) or not at all"),
    (b"\xfd7zXZ", "an xz archive", "compress with gzip (.gz) or not at all"),
    (b"7z\xbc\xaf", "a 7-Zip archive", "compress with gzip (.gz) or not at all"),
)
_GZIP_MAGIC = b"\x1f\x8b"
_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (codecs.BOM_UTF8, "utf-8", "UTF-8 with BOM"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 LE with BOM"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 BE with BOM"),
)


class ByteSource(Protocol):
    """Anything with ``read(size)`` returning bytes: an open file, an S3 object stream."""

    def read(self, size: int = -1, /) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """How much of a file is read before it is refused as too large (settings
    ``INGEST_MAX_LINES`` and ``INGEST_MAX_BYTES``): reading and validating what these allow
    fits one Lambda invocation with a wide margin (RELIABILITY.md has the figures)."""

    max_lines: int = DEFAULT_MAX_LINES
    """Physical lines, blank ones included (a few KB of gzip can hold millions of them)."""
    max_bytes: int = DEFAULT_MAX_BYTES
    """Bytes of text, after decompression (a 'gzip bomb' is refused part-way)."""


class LongJsonNumber:
    """A JSON number too long or too large to be any field's value (a 5,000-digit integer,
    1e99999999999999999999): kept as its text, so that reading it costs nothing and the
    rejected file can write it back."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"LongJsonNumber({len(self.text)} characters)"


def _json_number(text: str) -> Decimal | LongJsonNumber:
    # Decimal, not float: 0.1 stays 0.1 and 1e-999999 is not silently 0.0.
    if len(text) > METRIC_MAX_CHARS:
        return LongJsonNumber(text)
    try:
        return Decimal(text)
    except ArithmeticError:  # an exponent beyond Decimal's range: kept as text, refused later
        return LongJsonNumber(text)


def _json_integer(text: str) -> int | LongJsonNumber:
    # int() refuses more than 4,300 digits with a ValueError the decoder would pass on.
    return int(text) if len(text) <= METRIC_MAX_CHARS else LongJsonNumber(text)


def _json_decoder() -> json.JSONDecoder:
    return json.JSONDecoder(
        parse_float=_json_number, parse_int=_json_integer, object_pairs_hook=_json_object
    )


class JsonObject(dict[str, object]):
    """A JSON object that named a field more than once (``duplicates``, in order): a plain
    dict would silently keep the last value."""

    duplicates: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document = dict(pairs)
    if len(document) == len(pairs):
        return document
    counted = JsonObject(document)
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for name, _ in pairs:
        if name in seen:
            repeated[name] = None
        seen.add(name)
    counted.duplicates = tuple(repeated)
    return counted


class FileFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    JSONL = "jsonl"


_EXTENSIONS = {
    ".csv": FileFormat.CSV,
    ".json": FileFormat.JSON,
    ".jsonl": FileFormat.JSONL,
    ".ndjson": FileFormat.JSONL,
}


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


@dataclass(frozen=True, slots=True)
class CsvDialect:
    delimiter: str
    sep_line: bool = False
    """The file starts with Excel's ``sep=X`` line (written back the same way)."""

    @property
    def described(self) -> str:
        name = {",": "comma", ";": "semicolon", "\t": "tab"}[self.delimiter]
        return f"{name}-separated" + (" (from its 'sep=' line)" if self.sep_line else "")


def open_records(raw: ByteSource, name: str, limits: ReadLimits | None = None) -> RecordStream:
    """Open ``raw`` (the file's bytes) named ``name`` (its key or path) as a record stream.

    Raises ``InvalidFileError`` at once for what the first few KB show, and later, while
    iterating, for what only the rest of the file reveals (bad bytes, truncated gzip, more
    than ``limits`` allow).
    """
    limits = limits or ReadLimits()
    lowered = name.lower()
    named_gzip = lowered.endswith(".gz")
    inner_name = lowered.removesuffix(".gz")
    head = raw.read(_SNIFF_BYTES) or b""
    if not head:
        raise InvalidFileError(
            "the file is empty (0 bytes)", "export the data again; the upload may have failed"
        )
    prepended = _Prepended(head, raw)
    source: ByteSource = prepended
    compressed = head.startswith(_GZIP_MAGIC)
    if named_gzip and not compressed:
        raise InvalidFileError(
            "the file is named .gz but is not gzip-compressed",
            "compress it with gzip, or drop the .gz from its name",
        )
    if compressed:
        inflating = gzip.GzipFile(fileobj=io.BufferedReader(prepended), mode="rb")
        source = _GzipErrors(inflating)
        head = _read_inflated_head(source)
        if not head:
            raise InvalidFileError("the gzip file holds no data", "compress the real export")
        source = _Prepended(head, source)
    _refuse_binary(head)
    encoding, encoding_label, bom_length = _detect_encoding(head)
    text_head = head[bom_length : bom_length + 512].decode(encoding, errors="ignore")
    file_format = _decide_format(inner_name, text_head)
    counting = _CountingReader(
        source,
        max_line_bytes=None if file_format is FileFormat.JSON else MAX_LINE_BYTES,
        max_bytes=limits.max_bytes,
        compressed=compressed,
    )
    if bom_length:
        counting.read(bom_length)
    text = io.TextIOWrapper(
        _BufferedAdapter(counting), encoding=encoding, errors="strict", newline=""
    )
    stream = RecordStream(name, file_format, encoding_label, compressed, iter(()))
    decoded = _DecodingGuard(text, counting, encoding_label)
    if file_format is FileFormat.CSV:
        stream.dialect = _csv_dialect(head[bom_length:].decode(encoding, errors="ignore"))
        stream.records = _csv_records(decoded, stream, limits.max_lines)
    elif file_format is FileFormat.JSON:
        stream.records = _json_array_records(decoded, limits.max_lines)
    else:
        stream.records = _json_lines_records(decoded, stream, limits.max_lines)
    return stream


def _too_many_lines(max_lines: int) -> InvalidFileError:
    return InvalidFileError(
        f"the file has more than {max_lines:,} lines (blank lines count too)",
        f"split it into files of at most {max_lines:,} lines, or raise INGEST_MAX_LINES",
        line=max_lines + 1,
    )


# -- format and encoding --------------------------------------------------------------------


def _refuse_binary(head: bytes) -> None:
    for signature, what, hint in _BINARY_SIGNATURES:
        if head.startswith(signature):
            raise InvalidFileError(f"this is {what}, not CSV or JSON", hint, byte_offset=0)
    if head.startswith(_GZIP_MAGIC):
        raise InvalidFileError("the file is gzip-compressed twice", "compress it only once")


def _detect_encoding(head: bytes) -> tuple[str, str, int]:
    # UTF-32 LE's byte-order mark begins with UTF-16 LE's: look for it first.
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise InvalidFileError(
            "the file is UTF-32, which is not supported",
            "save it as 'CSV UTF-8' (or UTF-16 with a byte-order mark)",
            byte_offset=0,
        )
    for bom, encoding, label in _BOMS:
        if head.startswith(bom):
            return encoding, label, len(bom)
    if b"\x00" in head:
        nul = head.index(b"\x00")
        raise InvalidFileError(
            "the file contains NUL bytes: it is binary, or UTF-16 without a byte-order mark",
            "save it as 'CSV UTF-8' (or UTF-16 with BOM)",
            byte_offset=nul,
        )
    return "utf-8", "UTF-8", 0


def _decide_format(name: str, text_head: str) -> FileFormat:
    start = text_head.lstrip()[:1]
    for extension, file_format in _EXTENSIONS.items():
        if name.endswith(extension):
            if file_format is FileFormat.CSV and start in ("[", "{"):
                raise InvalidFileError(
                    "the file is named .csv but holds JSON",
                    "rename it .json (an array of objects) or .jsonl (one object per line)",
                    line=1,
                )
            if file_format is FileFormat.JSON and start == "{":
                raise InvalidFileError(
                    "a .json file must hold an array of update objects ([{...}, {...}]), "
                    "but this one starts with a single object",
                    "wrap the objects in [ ] separated by commas, or name the file .jsonl "
                    "if it has one object per line",
                    line=1,
                )
            if file_format is FileFormat.JSON and start != "[":
                raise InvalidFileError(
                    "a .json file must hold an array of update objects ([{...}, {...}])",
                    "export the updates as a JSON array, or name the file .csv if it is CSV",
                    line=1,
                )
            return file_format
    if start == "[":
        return FileFormat.JSON
    if start == "{":
        return FileFormat.JSONL
    return FileFormat.CSV


# -- CSV --------------------------------------------------------------------------------------


def _csv_dialect(text_head: str) -> CsvDialect:
    """The delimiter: Excel's ``sep=X`` first line, else whichever of comma, semicolon and tab
    splits the first line into the most cells (comma on a tie). Bounded to those three, so a
    comment full of colons can never be taken for the delimiter."""
    first_line = text_head.splitlines()[0] if text_head.strip() else ""
    if first_line.lower().startswith("sep=") and len(first_line.rstrip("\r\n")) == 5:
        delimiter = first_line[4]
        if delimiter in _DELIMITERS:
            return CsvDialect(delimiter, sep_line=True)
    try:
        sniffed = csv.Sniffer().sniff(text_head[:_SNIFF_BYTES], delimiters="".join(_DELIMITERS))
        candidates = [sniffed.delimiter, *_DELIMITERS]
    except csv.Error:
        candidates = list(_DELIMITERS)

    def cells(delimiter: str) -> int:
        return len(next(csv.reader([first_line], delimiter=delimiter), []))

    best = max(_DELIMITERS, key=lambda d: (cells(d), d == candidates[0], d == ","))
    return CsvDialect(best if cells(best) > 1 else ",")


_DELIMITERS = (",", ";", "\t")


def _csv_records(text: _DecodingGuard, stream: RecordStream, max_lines: int) -> Iterator[RawRecord]:
    dialect = stream.dialect or CsvDialect(",")
    tap = _LineTap(text.wrapper)
    # strict: a stray quotation mark is an error for its row, and a quotation mark never
    # closed is an error for the file, instead of rows silently merged into one cell.
    reader = csv.reader(tap, delimiter=dialect.delimiter, strict=True)
    new_record = tuple.__new__  # a RawRecord without NamedTuple's Python-level __new__
    skipped = 0  # physical lines read before the reader's first (Excel's sep= line)
    if dialect.sep_line:
        next(tap, None)
        skipped = 1
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
                raise _too_many_lines(max_lines) from None
            yield _unparsable_row(exc, start_line, previous_line, tap, dialect)
            continue
        except UnicodeDecodeError as exc:
            raise text.decoding_error(exc) from None
        start_line = previous_line + 1
        previous_line = reader.line_num + skipped
        if previous_line > max_lines:
            raise _too_many_lines(max_lines)
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
            f"the CSV cannot be parsed: {exc}",
            "check for a quotation mark that is opened but never closed",
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


# -- JSON -------------------------------------------------------------------------------------


def _json_array_records(text: _DecodingGuard, max_lines: int) -> Iterator[RawRecord]:
    """Elements of a top-level JSON array, parsed one at a time, so a huge array never sits
    in memory and every element keeps the line it starts on."""
    scanner = _JsonArrayScanner(text.chunks(), max_lines)
    if scanner.peek() != "[":
        raise InvalidFileError(
            "a JSON file must be an array of update objects",
            "wrap the objects in [ ] separated by commas",
            line=scanner.line,
        )
    scanner.advance()
    elements = 0
    expect_element = False  # after '[' an immediate ']' is fine; after ',' it is not
    while True:
        char = scanner.peek()
        if char is None:
            raise InvalidFileError(
                "the JSON ends before its closing ']'",
                "the file looks truncated; export it again",
                line=scanner.line,
            )
        if char == "]" and not expect_element:
            scanner.advance()
            if scanner.peek() is not None:
                raise InvalidFileError(
                    "there is more data after the JSON array's closing ']'",
                    "keep one array per file",
                    line=scanner.line,
                )
            return
        value, line = scanner.element()
        elements += 1
        yield _json_record(line, value, "each array element")._replace(element=elements)
        separator = scanner.peek()
        if separator == ",":
            scanner.advance()
            expect_element = True
        elif separator == "]":
            expect_element = False
        elif separator is not None:
            raise InvalidFileError(
                f"expected ',' or ']' after an array element, found '{separator}'",
                "check the JSON syntax (a missing comma?)",
                line=scanner.line,
            )


class _JsonArrayScanner:
    """A window over streamed JSON text: skip white space, peek a character, decode one
    element with ``raw_decode`` (retrying with more text while the element is incomplete)."""

    def __init__(self, chunks: Iterator[str], max_lines: int) -> None:
        self._chunks = chunks
        self._max_lines = max_lines
        self._decoder = _json_decoder()
        self._buffer = ""
        self._position = 0
        self._at_end = False
        self.line = 1

    def peek(self) -> str | None:
        """The next character that is not white space, or ``None`` at the end of the file."""
        while True:
            buffer = self._buffer
            start = self._position
            # A regex, not a loop per character: megabytes of white space are a hostile
            # file's cheapest trick.
            end = _JSON_WHITESPACE.match(buffer, start).end()  # type: ignore[union-attr]
            self.line += buffer.count("\n", start, end)
            if self.line > self._max_lines:
                raise _too_many_lines(self._max_lines)
            self._position = end
            if end < len(buffer):
                return buffer[end]
            if not self._refill():
                return None

    def advance(self) -> None:
        self._position += 1

    def element(self) -> tuple[object, int]:
        start_line = self.line
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._position)
            except json.JSONDecodeError as exc:
                pending = len(self._buffer) - self._position
                if pending < MAX_JSON_ELEMENT_CHARS and self._refill():
                    continue  # probably cut at the chunk boundary: try with more text
                error_line = start_line + self._buffer.count("\n", self._position, exc.pos)
                if pending >= MAX_JSON_ELEMENT_CHARS:
                    raise InvalidFileError(
                        f"a JSON element is invalid or longer than "
                        f"{MAX_JSON_ELEMENT_CHARS:,} characters ({exc.msg})",
                        "each update should be a small object; check the JSON syntax",
                        line=error_line,
                    ) from None
                raise InvalidFileError(
                    f"the JSON is invalid: {exc.msg}",
                    "check the JSON syntax near that line (an editor or "
                    "'python -m json.tool FILE' shows the spot)",
                    line=error_line,
                ) from None
            except RecursionError:
                raise InvalidFileError(
                    "the JSON is nested too deeply",
                    "each update must be a flat object",
                    line=start_line,
                ) from None
            except ValueError as exc:  # a hook's refusal; JSONDecodeError is handled above
                raise InvalidFileError(
                    f"the JSON holds a value that cannot be read ({_brief(exc)})",
                    "each update should be a small object of text and numbers",
                    line=start_line,
                ) from None
            self.line += self._buffer.count("\n", self._position, end)
            self._position = end
            return value, start_line

    def _refill(self) -> bool:
        if self._at_end:
            return False
        chunk = next(self._chunks, None)
        if chunk is None:
            self._at_end = True
            return False
        self._buffer = self._buffer[self._position :] + chunk
        self._position = 0
        return True


def _json_lines_records(
    text: _DecodingGuard, stream: RecordStream, max_lines: int
) -> Iterator[RawRecord]:
    decoder = _json_decoder()
    for number, line in enumerate(text.lines(), start=1):
        if number > max_lines:
            raise _too_many_lines(max_lines)
        stripped = line.strip()
        if not stripped:
            stream.blank_lines += 1
            continue
        try:
            value = decoder.decode(stripped)
        except (ValueError, RecursionError) as exc:
            yield RawRecord(
                line=number,
                problem=f"this line is not valid JSON: {_brief(exc)}",
                original=stripped[:200],
            )
            continue
        yield _json_record(number, value, "each line")


def _json_record(line: int, value: object, unit: str) -> RawRecord:
    """A record for a JSON object; a problem record for anything else."""
    if isinstance(value, JsonObject):
        names = ", ".join(f"'{name}'" for name in value.duplicates[:5])
        return RawRecord(
            line=line,
            fields=value,
            problem=f"the object names {names} more than once; which value is meant is "
            "unclear, so the row was not sent",
        )
    if isinstance(value, dict):
        return RawRecord(line=line, fields=value)
    return RawRecord(
        line=line,
        problem=f"{unit} must be one JSON object, found {_json_type(value)}",
        original=value,
    )


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return "a number"


def _brief(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(":", 1)[0]


# -- byte plumbing ----------------------------------------------------------------------------


class _DecodingGuard:
    """Text from the decoder, with decoding and size failures turned into file errors that
    name the byte offset."""

    def __init__(self, text: io.TextIOWrapper, counting: _CountingReader, label: str) -> None:
        self._text = text
        self._counting = counting
        self._label = label

    @property
    def wrapper(self) -> io.TextIOWrapper:
        """The text stream itself (C-speed line iteration; the byte reader under it refuses
        over-long lines). Decoding errors surface as ``UnicodeDecodeError``: pass them to
        ``decoding_error``."""
        return self._text

    def lines(self) -> Iterator[str]:
        try:
            yield from self._text
        except UnicodeDecodeError as exc:
            raise self.decoding_error(exc) from None

    def chunks(self) -> Iterator[str]:
        while True:
            chunk = self._guarded(self._text.read, 64 * 1024)
            if not chunk:
                return
            yield chunk

    def _guarded(self, read: object, size: int) -> str:
        try:
            return read(size)  # type: ignore[operator, no-any-return]
        except UnicodeDecodeError as exc:
            raise self.decoding_error(exc) from None

    def decoding_error(self, exc: UnicodeDecodeError) -> InvalidFileError:
        offset = self._counting.offset - len(exc.object) + exc.start
        line = self._counting.line_breaks - bytes(exc.object[exc.start :]).count(b"\n") + 1
        return InvalidFileError(
            f"the byte 0x{exc.object[exc.start : exc.start + 1].hex()} cannot be decoded "
            f"as {self._label}",
            "save the file as 'CSV UTF-8' (Excel: File > Save As > CSV UTF-8), or as "
            "UTF-16 with a byte-order mark; a file saved as plain 'CSV' on Windows is "
            "Windows-1252",
            byte_offset=offset,
            line=line,
        )


class _Prepended(io.RawIOBase):
    """``head`` (already read) followed by the rest of ``rest``."""

    def __init__(self, head: bytes, rest: ByteSource) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(buffer)) or b""
        buffer[: len(data)] = data
        return len(data)


class _GzipErrors(io.RawIOBase):
    """Decompressed bytes; gzip faults become file errors naming the offset."""

    def __init__(self, inner: gzip.GzipFile) -> None:
        self._inner = inner
        self._total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buffer))
        except EOFError:
            raise InvalidFileError(
                "the gzip data is truncated (it ends before the end-of-stream marker)",
                "the upload was cut short; compress and upload the file again",
                byte_offset=self._total or None,
            ) from None
        except (gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise InvalidFileError(
                f"the gzip data is corrupt ({exc})",
                "compress and upload the file again",
                byte_offset=self._total,
            ) from None
        self._total += len(data)
        buffer[: len(data)] = data
        return len(data)


class _CountingReader(io.RawIOBase):
    """Counts the bytes handed to the text decoder (to name the offset of a bad byte),
    refuses more than ``max_bytes`` of them, and refuses a line longer than
    ``max_line_bytes`` before it reaches the decoder: checked per chunk with C-speed
    searches, so it costs nothing per line."""

    def __init__(
        self,
        inner: ByteSource,
        *,
        max_line_bytes: int | None,
        max_bytes: int,
        compressed: bool,
    ) -> None:
        self._inner = inner
        self._max_line_bytes = max_line_bytes
        self._max_bytes = max_bytes
        self._compressed = compressed
        self._since_line_break = 0
        self.offset = 0
        self.line_breaks = 0
        """Line feeds handed on so far (to name the line of a bad byte)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer)) or b""
        if self._max_line_bytes is not None and data:
            last_break = max(data.rfind(b"\n"), data.rfind(b"\r"))
            if last_break < 0:
                self._since_line_break += len(data)
            else:
                # The line that ends in this chunk began in earlier ones; lines wholly inside
                # the chunk are shorter than the chunk, itself under the limit.
                first_break = min(i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0)
                if self._since_line_break + first_break > self._max_line_bytes:
                    self._since_line_break += first_break
                else:
                    self._since_line_break = len(data) - last_break - 1
            if self._since_line_break > self._max_line_bytes:
                raise InvalidFileError(
                    f"a line is longer than {self._max_line_bytes:,} bytes",
                    "this is not a data row: check the export (binary data? no line breaks?)",
                    byte_offset=self.offset,
                )
        buffer[: len(data)] = data
        self.offset += len(data)
        self.line_breaks += data.count(b"\n")
        if self.offset > self._max_bytes:
            raise InvalidFileError(
                f"the file {'inflates to' if self._compressed else 'holds'} more than "
                f"{_size(self._max_bytes)} of text",
                f"split it into smaller files, or raise INGEST_MAX_BYTES ({self._max_bytes:,})",
                byte_offset=self._max_bytes,
            )
        return len(data)


class _BufferedAdapter(io.BufferedReader):
    """TextIOWrapper needs a buffered reader with ``read1``."""

    def __init__(self, raw: io.RawIOBase) -> None:
        super().__init__(raw, buffer_size=_CHUNK_BYTES)


def _size(count: int) -> str:
    return f"{count / 1024**2:,.0f} MiB" if count >= 1024**2 else f"{count:,} bytes"


def _read_inflated_head(source: ByteSource) -> bytes:
    head = bytearray()
    while len(head) < _SNIFF_BYTES:
        data = source.read(_SNIFF_BYTES - len(head))
        if not data:
            break
        head.extend(data)
    return bytes(head)
