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

This module decides what the file is (compression, encoding, format) and hands its text to
``csv_records`` or ``json_records``; ``byte_streams`` holds the byte plumbing under the
text, ``records`` what every reader yields.
"""

from __future__ import annotations

import codecs
import gzip
import io
from typing import TYPE_CHECKING

from achieveit_sync.ingest.byte_streams import (
    SNIFF_BYTES,
    TEXT_CHUNK_BYTES,
    BufferedAdapter,
    CountingReader,
    DecodingGuard,
    GzipErrors,
    Prepended,
    read_inflated_head,
)
from achieveit_sync.ingest.csv_records import csv_batches, csv_dialect, csv_records
from achieveit_sync.ingest.json_records import (
    JsonObject,
    LongJsonNumber,
    json_array_records,
    json_lines_records,
)
from achieveit_sync.ingest.records import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_LINES,
    MAX_LINE_BYTES,
    CsvBatch,
    CsvDialect,
    FileFormat,
    InvalidFileError,
    RawRecord,
    ReadLimits,
    RecordStream,
)

if TYPE_CHECKING:
    from achieveit_sync.storage import ByteSource

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_LINES",
    "CsvBatch",
    "CsvDialect",
    "FileFormat",
    "InvalidFileError",
    "JsonObject",
    "LongJsonNumber",
    "RawRecord",
    "ReadLimits",
    "RecordStream",
    "open_records",
]

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
_EXTENSIONS = {
    ".csv": FileFormat.CSV,
    ".json": FileFormat.JSON,
    ".jsonl": FileFormat.JSONL,
    ".ndjson": FileFormat.JSONL,
}


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
    head = raw.read(SNIFF_BYTES) or b""
    if not head:
        raise InvalidFileError(
            "the file is empty (0 bytes)", "export the data again; the upload may have failed"
        )
    prepended = Prepended(head, raw)
    source: ByteSource = prepended
    compressed = head.startswith(_GZIP_MAGIC)
    if named_gzip and not compressed:
        raise InvalidFileError(
            "the file is named .gz but is not gzip-compressed",
            "compress it with gzip, or drop the .gz from its name",
        )
    if compressed:
        inflating = gzip.GzipFile(fileobj=io.BufferedReader(prepended), mode="rb")
        source = GzipErrors(inflating)
        head = read_inflated_head(source)
        if not head:
            raise InvalidFileError("the gzip file holds no data", "compress the real export")
        source = Prepended(head, source)
    _refuse_binary(head)
    encoding, encoding_label, bom_length = _detect_encoding(head)
    text_head = head[bom_length : bom_length + 512].decode(encoding, errors="ignore")
    file_format = _decide_format(inner_name, text_head)
    counting = CountingReader(
        source,
        max_line_bytes=None if file_format is FileFormat.JSON else MAX_LINE_BYTES,
        max_bytes=limits.max_bytes,
        compressed=compressed,
    )
    if bom_length:
        counting.read(bom_length)
    text = io.TextIOWrapper(
        BufferedAdapter(counting), encoding=encoding, errors="strict", newline=""
    )
    text._CHUNK_SIZE = TEXT_CHUNK_BYTES  # type: ignore[attr-defined]  # fewer, larger reads
    stream = RecordStream(name, file_format, encoding_label, compressed, iter(()))
    decoded = DecodingGuard(text, counting, encoding_label)
    if file_format is FileFormat.CSV:
        stream.dialect = csv_dialect(head[bom_length:].decode(encoding, errors="ignore"))
        stream.records = csv_records(decoded, stream, limits.max_lines)
        stream.batches = csv_batches(decoded, stream, limits.max_lines)
    elif file_format is FileFormat.JSON:
        stream.records = json_array_records(decoded, limits.max_lines)
    else:
        stream.records = json_lines_records(decoded, stream, limits.max_lines)
    return stream


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
