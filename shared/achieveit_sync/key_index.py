"""A compact, exact index of keys seen so far, for duplicate detection in large streams
(rows of an update file, items of a plan export).

Memory holds about 6 bytes a key: 16 bits of the key's hash and the key's ordinal (3
bytes, 4 past 16 million keys), in buckets of flat ``bytearray``s chosen by other bits of
the hash, searched with ``bytearray.find`` (C: no Python object per entry). Everything
else goes to a temporary file: each key's full 64-bit hash, its first position and, when
the caller gives one, its exact text. A candidate found in memory is confirmed against
that file, so the answer is exact: a key is a duplicate only when its full hash (and its
exact text, when given) equals that of an earlier key.
"""

from __future__ import annotations

import tempfile
from array import array
from typing import IO

_TAG_SHIFT = 48
"""Tags are the top 16 bits of the hash; buckets take the lowest bits (at most 40)."""
_TAG_BYTES = 2
_COLUMNS = 3
"""Spilled, in blocks of ``_FLUSH_EVERY`` records, column by column: the full key, its
first position, and where its exact text ends (-1: none given)."""
_FLUSH_EVERY = 8192


class SeenKeys:
    """Which keys a stream has used, and at which position (line, item number) first.

    ``first_position(key, position, exact)``: ``None`` the first time (remembering
    ``position``), else the position the key was first seen at. ``key`` is a 64-bit hash;
    ``exact`` (optional bytes) is the key itself, compared when hashes match, so that two
    different keys with the same hash are never taken for one.
    """

    _INITIAL_BITS = 12
    _MAX_AVERAGE = 64

    def __init__(self) -> None:
        self._bits = self._INITIAL_BITS
        self._mask = (1 << self._bits) - 1
        self._ordinal_bytes = 3
        self._width = _TAG_BYTES + self._ordinal_bytes
        self._buckets: list[bytearray] = [bytearray() for _ in range(1 << self._bits)]
        self._count = 0
        # The spill: records not yet written, then the file (made on the first flush).
        self._keys = array("q")
        self._positions = array("q")
        self._text_ends = array("q")
        self._texts = bytearray()
        self._flushed = 0
        self._text_flushed = 0
        self._records: IO[bytes] | None = None
        self._text_file: IO[bytes] | None = None

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: int) -> bool:
        needle = ((key >> _TAG_SHIFT) & 0xFFFF).to_bytes(2, "little")
        return self._find_in(self._buckets[key & self._mask], needle, key, None) is not None

    def remember(self, key: int, position: int) -> bool:
        """True (and ``position`` remembered) the first time ``key`` is seen; else False."""
        return self.first_position(key, position) is None

    def first_position(self, key: int, position: int, exact: bytes | None = None) -> int | None:
        """``None`` the first time ``key`` (with ``exact``) is seen, remembering ``position``;
        else the position it was first seen at."""
        needle = ((key >> _TAG_SHIFT) & 0xFFFF).to_bytes(2, "little")
        bucket = self._buckets[key & self._mask]
        if needle in bucket:  # a duplicate, or a key sharing bits of hash: look closer
            first = self._find_in(bucket, needle, key, exact)
            if first is not None:
                return first
        ordinal = self._count
        bucket += needle
        bucket += ordinal.to_bytes(self._ordinal_bytes, "little")
        self._keys.append(key)
        self._positions.append(position)
        if exact is None:
            self._text_ends.append(-1)
        else:
            self._texts += exact
            self._text_ends.append(self._text_flushed + len(self._texts))
        self._count = ordinal + 1
        if len(self._keys) == _FLUSH_EVERY:
            self._flush()
            if self._count > self._MAX_AVERAGE << self._bits or self._count >= 1 << (
                8 * self._ordinal_bytes
            ):
                self._rebuild()
        return None

    def first_line(self, key: int, position: int) -> int | None:
        """The earlier name of ``first_position`` (kept for its callers)."""
        return self.first_position(key, position)

    def close(self) -> None:
        """Drop the spill files (also done when the index is garbage-collected)."""
        for handle in (self._records, self._text_file):
            if handle is not None:
                handle.close()
        self._records = self._text_file = None

    def _find_in(
        self, bucket: bytearray, needle: bytes, key: int, exact: bytes | None
    ) -> int | None:
        width = self._width
        at = bucket.find(needle)
        while at >= 0:
            if at % width == 0:
                ordinal = int.from_bytes(bucket[at + _TAG_BYTES : at + width], "little")
                first = self._confirm(ordinal, key, exact)
                if first is not None:
                    return first
            at = bucket.find(needle, at + 1)
        return None

    def _confirm(self, ordinal: int, key: int, exact: bytes | None) -> int | None:
        """The first position of entry ``ordinal`` if it is ``key`` (and ``exact``)."""
        if self._column(0, ordinal) != key:
            return None
        if exact is not None:
            end = self._column(2, ordinal)
            if end < 0:
                return None
            start = 0
            for earlier in range(ordinal - 1, -1, -1):  # it starts where the last text ended
                start = self._column(2, earlier)
                if start >= 0:
                    break
            if self._text(max(start, 0), end) != exact:
                return None
        return self._column(1, ordinal)

    def _column(self, column: int, ordinal: int) -> int:
        if ordinal >= self._flushed:
            return (self._keys, self._positions, self._text_ends)[column][ordinal - self._flushed]
        assert self._records is not None  # noqa: S101 - flushed records exist
        block, at = divmod(ordinal, _FLUSH_EVERY)
        self._records.seek(((block * _COLUMNS + column) * _FLUSH_EVERY + at) * 8)
        return int.from_bytes(self._records.read(8), "little", signed=True)

    def _text(self, start: int, end: int) -> bytes:
        if start >= self._text_flushed:
            return bytes(self._texts[start - self._text_flushed : end - self._text_flushed])
        assert self._text_file is not None  # noqa: S101 - flushed texts exist
        self._text_file.seek(start)
        text = self._text_file.read(end - start)
        if end > self._text_flushed:  # the rest is still in memory
            text += bytes(self._texts[: end - self._text_flushed])
        return text

    def _flush(self) -> None:
        if self._records is None:
            self._records = tempfile.TemporaryFile(prefix="achieveit-keys-")  # noqa: SIM115
        self._records.seek(0, 2)
        for column in (self._keys, self._positions, self._text_ends):
            self._records.write(column.tobytes())
        self._flushed += len(self._keys)
        if self._texts:
            if self._text_file is None:
                self._text_file = tempfile.TemporaryFile(prefix="achieveit-key-texts-")  # noqa: SIM115
            self._text_file.seek(0, 2)
            self._text_file.write(self._texts)
            self._text_flushed += len(self._texts)
            self._texts = bytearray()
        self._keys = array("q")
        self._positions = array("q")
        self._text_ends = array("q")

    def _rebuild(self) -> None:
        """Four times the buckets (and wider ordinals past 16 million keys), rebuilt from the
        spilled keys, read in order: bucket bits are not kept in memory."""
        if self._count > self._MAX_AVERAGE << self._bits:
            self._bits += 2
            self._mask = (1 << self._bits) - 1
        while self._count >= 1 << (8 * self._ordinal_bytes):
            self._ordinal_bytes += 1
        self._width = _TAG_BYTES + self._ordinal_bytes
        self._buckets = []  # the old index is dropped first: it is not needed to rebuild
        buckets: list[bytearray] = [bytearray() for _ in range(1 << self._bits)]
        mask, ordinal_bytes = self._mask, self._ordinal_bytes
        assert self._records is not None  # noqa: S101 - called after a flush
        ordinal = 0
        for block in range(self._flushed // _FLUSH_EVERY):
            self._records.seek(block * _COLUMNS * _FLUSH_EVERY * 8)
            keys = array("q")
            keys.frombytes(self._records.read(_FLUSH_EVERY * 8))
            for key in keys:
                bucket = buckets[key & mask]
                bucket += ((key >> _TAG_SHIFT) & 0xFFFF).to_bytes(2, "little")
                bucket += ordinal.to_bytes(ordinal_bytes, "little")
                ordinal += 1
        self._buckets = buckets
