"""JSON records: the elements of a top-level array, parsed one at a time from streamed text,
and JSON Lines. Numbers are read as ``Decimal`` (never float), repeated field names are
noticed, and one bad line of JSON Lines is that line's problem, not the file's."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal

from achieveit_sync.ingest.byte_streams import DecodingGuard
from achieveit_sync.ingest.records import (
    MAX_JSON_ELEMENT_CHARS,
    InvalidFileError,
    RawRecord,
    RecordStream,
    too_many_lines,
)
from achieveit_sync.updates import METRIC_MAX_CHARS

_JSON_WHITESPACE = re.compile(r"[ \t\r\n]*")
_WHITESPACE_CHARACTERS = " \t\r\n"


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


def json_decoder() -> json.JSONDecoder:
    return json.JSONDecoder(
        parse_float=_json_number, parse_int=_json_integer, object_pairs_hook=_json_object
    )


class JsonObject(dict[str, object]):
    """A JSON object that named a field more than once (``duplicates``, in order): a plain
    dict would silently keep the last value."""

    duplicates: tuple[str, ...] = ()
    pairs: tuple[tuple[str, object], ...] = ()
    """Every field as the file wrote it, repeats included (for the rejected-rows file)."""


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
    counted.pairs = tuple(pairs)
    return counted


def json_array_records(text: DecodingGuard, max_lines: int) -> Iterator[RawRecord]:
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
        yield _json_record(line, value, "each array element", elements)
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
        self._decoder = json_decoder()
        self._buffer = ""
        self._position = 0
        self._at_end = False
        self.line = 1

    def peek(self) -> str | None:
        """The next character that is not white space, or ``None`` at the end of the file."""
        buffer, start = self._buffer, self._position
        if start < len(buffer) and buffer[start] not in _WHITESPACE_CHARACTERS:
            return buffer[start]  # (mostly the comma right after an element)
        while True:
            buffer = self._buffer
            start = self._position
            # A regex, not a loop per character: megabytes of white space are a hostile
            # file's cheapest trick.
            end = _JSON_WHITESPACE.match(buffer, start).end()  # type: ignore[union-attr]
            self.line += buffer.count("\n", start, end)
            if self.line > self._max_lines:
                raise too_many_lines(self._max_lines)
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


def json_lines_records(
    text: DecodingGuard, stream: RecordStream, max_lines: int
) -> Iterator[RawRecord]:
    decoder = json_decoder()
    for number, line in enumerate(text.lines(), start=1):
        if number > max_lines:
            raise too_many_lines(max_lines)
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


def _json_record(line: int, value: object, unit: str, element: int | None = None) -> RawRecord:
    """A record for a JSON object; a problem record for anything else."""
    if type(value) is dict:  # the common case, without NamedTuple's Python-level __new__
        return tuple.__new__(RawRecord, (line, None, value, None, None, element))
    if isinstance(value, JsonObject):
        names = ", ".join(f"'{name}'" for name in value.duplicates[:5])
        return RawRecord(
            line=line,
            fields=value,
            problem=f"the object names {names} more than once; which value is meant is "
            "unclear, so the row was not sent",
            element=element,
        )
    if isinstance(value, dict):
        return RawRecord(line=line, fields=value, element=element)
    return RawRecord(
        line=line,
        problem=f"{unit} must be one JSON object, found {_json_type(value)}",
        original=value,
        element=element,
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
