"""The bytes under the text: a sniffed head put back in front, gzip faults and size limits
turned into file errors that name the byte offset, and decoding errors that name the line."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from achieveit_sync.ingest.records import InvalidFileError

if TYPE_CHECKING:
    from achieveit_sync.storage import ByteSource

_CHUNK_BYTES = 256 * 1024
SNIFF_BYTES = 4096


class DecodingGuard:
    """Text from the decoder, with decoding and size failures turned into file errors that
    name the byte offset."""

    def __init__(self, text: io.TextIOWrapper, counting: CountingReader, label: str) -> None:
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


class Prepended(io.RawIOBase):
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


class GzipErrors(io.RawIOBase):
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


class CountingReader(io.RawIOBase):
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


TEXT_CHUNK_BYTES = 64 * 1024
"""What the decoder asks for at a time (TextIOWrapper's default, 8 KiB, means eight times
the calls through the counting and checking layers below it)."""


class BufferedAdapter(io.BufferedReader):
    """TextIOWrapper needs a buffered reader with ``read1``."""

    def __init__(self, raw: io.RawIOBase) -> None:
        super().__init__(raw, buffer_size=_CHUNK_BYTES)


def _size(count: int) -> str:
    return f"{count / 1024**2:,.0f} MiB" if count >= 1024**2 else f"{count:,} bytes"


def read_inflated_head(source: ByteSource) -> bytes:
    head = bytearray()
    while len(head) < SNIFF_BYTES:
        data = source.read(SNIFF_BYTES - len(head))
        if not data:
            break
        head.extend(data)
    return bytes(head)
