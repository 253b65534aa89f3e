"""A compact, exact index of keys seen so far, for duplicate detection in large streams
(rows of an update file, items of a plan export).

Memory holds about 6 to 8 bytes a key: 16 bits of the key's hash and the key's ordinal (3
bytes, 4 past 16 million keys), in buckets of flat ``bytearray``s chosen by other bits of
the hash; the tags are searched with ``bytearray.find`` (C: no Python object per entry). Everything
else goes to a temporary file: each key's full 64-bit hash, its first position and, when
the caller gives one, its exact text. A candidate found in memory is confirmed against
that file, so the answer is exact: a key is a duplicate only when its full hash (and its
exact text, when given) equals that of an earlier key.
"""

from __future__ import annotations

import struct
import sys
import tempfile
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from itertools import accumulate, repeat
from operator import getitem, iadd
from typing import IO, cast

_TAG_SHIFT = 48
"""Tags are the top 16 bits of the hash; buckets take the lowest bits (at most 40)."""
_TAG = struct.Struct("<H")
_ORDINAL = struct.Struct("<I")
"""A key's ordinal, cut to 3 bytes below 16 million keys."""
_ALIAS_BITS = 16
_cut = cast("Callable[[bytes, slice], bytes]", getitem)
_COLUMNS = 3
"""Spilled, in blocks of ``_FLUSH_EVERY`` records, column by column: the full key, its
first position, and where its exact text ends (-1: none given)."""
_FLUSH_EVERY = 8192


class SeenKeys:
    """Which keys a stream has used, and at which position (line, item number) first.

    ``first_position(key, position, exact)``: ``None`` the first time (remembering
    ``position``), else the position the key was first seen at. ``key`` is a 64-bit hash;
    ``exact`` (optional bytes) is the key itself, compared when hashes match, so that two
    different keys with the same hash are never taken for one. ``first_positions`` does
    the same for a batch of keys, in C-level passes when none of them is there yet.
    """

    _INITIAL_BITS = 12
    _MAX_AVERAGE = 64

    def __init__(self) -> None:
        self._bits = self._INITIAL_BITS
        self._mask = (1 << self._bits) - 1
        self._ordinal_bytes = 3
        # Bucket by bucket: the tags (2 bytes a key, searched) and the ordinals.
        self._tags: list[bytearray] = []
        self._ordinals: list[bytearray] = []
        self._alias = array("H")
        self._new_buckets()
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
        return self._find(key, _TAG.pack((key >> _TAG_SHIFT) & 0xFFFF), None) is not None

    def remember(self, key: int, position: int) -> bool:
        """True (and ``position`` remembered) the first time ``key`` is seen; else False."""
        return self.first_position(key, position) is None

    def first_line(self, key: int, position: int) -> int | None:
        """The earlier name of ``first_position`` (kept for its callers)."""
        return self.first_position(key, position)

    def first_position(self, key: int, position: int, exact: bytes | None = None) -> int | None:
        """``None`` the first time ``key`` (with ``exact``) is seen, remembering ``position``;
        else the position it was first seen at."""
        needle = _TAG.pack((key >> _TAG_SHIFT) & 0xFFFF)
        bucket = key & self._mask
        # (find, not in: ``in`` first tries the needle as an int, at the cost of an error)
        if self._tags[bucket].find(needle) >= 0:  # a duplicate, or 16 bits shared: look closer
            first = self._find(key, needle, exact)
            if first is not None:
                return first
        self._tags[bucket] += needle
        self._ordinals[bucket] += self._count.to_bytes(self._ordinal_bytes, "little")
        self._keys.append(key)
        self._positions.append(position)
        if exact is None:
            self._text_ends.append(-1)
        else:
            self._texts += exact
            self._text_ends.append(self._text_flushed + len(self._texts))
        self._count += 1
        if len(self._keys) >= _FLUSH_EVERY:
            self._flush()
            self._check_size()
        return None

    def first_positions(
        self, keys: list[int], positions: list[int], exacts: list[bytes]
    ) -> list[int | None]:
        """``first_position`` for each key in turn (a batch of rows)."""
        if (
            self._bits <= _ALIAS_BITS
            and len(set(keys)) == len(keys)
            and self._add_new(keys, exacts)
        ):
            self._keys.extend(keys)
            self._positions.extend(positions)
            base = self._text_flushed + len(self._texts)
            self._text_ends.extend([base + end for end in accumulate(map(len, exacts))])
            self._texts += b"".join(exacts)
            self._count += len(keys)
            if len(self._keys) >= _FLUSH_EVERY:
                self._flush()
                self._check_size()
            return [None] * len(keys)
        return [
            self.first_position(key, position, exact)
            for key, position, exact in zip(keys, positions, exacts, strict=True)
        ]

    def close(self) -> None:
        """Drop the spill files (also done when the index is garbage-collected)."""
        for handle in (self._records, self._text_file):
            if handle is not None:
                handle.close()
        self._records = self._text_file = None

    def _add_new(self, keys: list[int] | array[int], exacts: list[bytes] | None) -> bool:
        """Add ``keys`` (distinct, the next ordinals) to their buckets if none of them is
        there yet, each step a C-level pass over the batch; False (nothing added) when one
        is. ``exacts`` None: known to be new (a rebuild)."""
        quarters = array("H")
        quarters.frombytes(array("q", keys).tobytes())  # each key's four 16-bit quarters
        if sys.byteorder != "little":
            quarters.byteswap()
        needles = list(map(_TAG.pack, quarters[3::4]))
        buckets = list(map(self._alias.__getitem__, quarters[0::4]))
        tags = list(map(self._tags.__getitem__, buckets))
        if exacts is not None:
            found = list(map(bytearray.find, tags, needles))
            if max(found) >= 0:  # mostly 16 bits shared by chance: look closer
                for at, where in enumerate(found):
                    if where >= 0 and self._find(keys[at], needles[at], exacts[at]) is not None:
                        return False
        deque(map(iadd, tags, needles), maxlen=0)
        ordinals: Iterator[bytes] = map(_ORDINAL.pack, range(self._count, self._count + len(keys)))
        if self._ordinal_bytes != _ORDINAL.size:
            ordinals = map(_cut, ordinals, repeat(slice(0, self._ordinal_bytes)))
        deque(map(iadd, map(self._ordinals.__getitem__, buckets), ordinals), maxlen=0)
        return True

    def _find(self, key: int, needle: bytes, exact: bytes | None) -> int | None:
        bucket = key & self._mask
        tags, width = self._tags[bucket], self._ordinal_bytes
        at = tags.find(needle)
        while at >= 0:
            if not at & 1:
                start = (at >> 1) * width
                ordinal = int.from_bytes(self._ordinals[bucket][start : start + width], "little")
                first = self._confirm(ordinal, key, exact)
                if first is not None:
                    return first
            at = tags.find(needle, at + 1)
        return None

    def _check_size(self) -> None:
        if self._count > self._MAX_AVERAGE << self._bits or self._count >= 1 << (
            8 * self._ordinal_bytes
        ):
            self._rebuild()

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
        """Write every whole block of spilled records, and all spilled texts."""
        if self._records is None:
            self._records = tempfile.TemporaryFile(prefix="achieveit-keys-")  # noqa: SIM115
        self._records.seek(0, 2)
        while len(self._keys) >= _FLUSH_EVERY:
            for column in (self._keys, self._positions, self._text_ends):
                self._records.write(column[:_FLUSH_EVERY].tobytes())
                del column[:_FLUSH_EVERY]
            self._flushed += _FLUSH_EVERY
        if self._texts:
            if self._text_file is None:
                self._text_file = tempfile.TemporaryFile(prefix="achieveit-key-texts-")  # noqa: SIM115
            self._text_file.seek(0, 2)
            self._text_file.write(self._texts)
            self._text_flushed += len(self._texts)
            self._texts = bytearray()

    def _rebuild(self) -> None:
        """Twice the buckets (and wider ordinals past 16 million keys), rebuilt from the
        spilled keys, read in order: bucket bits are not kept in memory. (Twice, not more:
        buckets of 32 to 64 keys keep their own cost under 4 bytes a key.)"""
        while self._count > self._MAX_AVERAGE << self._bits:
            self._bits += 1
            self._mask = (1 << self._bits) - 1
        while self._count >= 1 << (8 * self._ordinal_bytes):
            self._ordinal_bytes += 1
        count, self._count = self._count, 0
        self._new_buckets()
        for block in range(self._flushed // _FLUSH_EVERY):
            assert self._records is not None  # noqa: S101 - blocks were written
            self._records.seek(block * _COLUMNS * _FLUSH_EVERY * 8)
            keys = array("q")
            keys.frombytes(self._records.read(_FLUSH_EVERY * 8))
            self._add_again(keys)
        self._add_again(self._keys)  # the records not yet written
        assert self._count == count  # noqa: S101 - every key is back

    def _add_again(self, keys: array[int]) -> None:
        if self._bits <= _ALIAS_BITS:
            self._add_new(keys, None)
            self._count += len(keys)
            return
        mask, width = self._mask, self._ordinal_bytes
        for key in keys:
            self._tags[key & mask] += _TAG.pack((key >> _TAG_SHIFT) & 0xFFFF)
            self._ordinals[key & mask] += self._count.to_bytes(width, "little")
            self._count += 1

    def _new_buckets(self) -> None:
        """Empty buckets, and each bucket's number by the low 16 bits of a key (for
        batches, while buckets take at most 16 bits): a lookup in C, not a mask in Python."""
        self._tags = [bytearray() for _ in range(1 << self._bits)]
        self._ordinals = [bytearray() for _ in range(1 << self._bits)]
        self._alias = array("H")
        if self._bits <= _ALIAS_BITS:
            mask = self._mask
            self._alias = array("H", [low & mask for low in range(1 << _ALIAS_BITS)])
