"""A compact, exact index of keys seen so far, for duplicate detection in large streams
(rows of an update file, items of a plan export).

Memory holds 8 bytes a key: the top 32 bits of the key's (mixed) hash and the key's
ordinal, packed in one unsigned 64-bit number, in sorted NumPy arrays that a batch of keys
is looked up in with one ``searchsorted`` (C: no Python object per entry); the newest keys
wait in a small dict until they are merged in. Everything else goes to a temporary file:
each key's full 64-bit hash, its first position and, when the caller gives one, its exact
text. A candidate found in memory is confirmed against that file, so the answer is exact:
a key is a duplicate only when its full hash (and its exact text, when given) equals that
of an earlier key.
"""

from __future__ import annotations

import tempfile
from array import array
from collections.abc import Iterator
from itertools import compress, repeat
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
else:
    np = None  # NumPy: imported by the first index (``_load_numpy``), not with the package

_MASK = (1 << 64) - 1
_MIX = 0x9E3779B97F4A7C15
"""Odd, so multiplying by it (mod 2**64) maps keys one to one; it spreads keys that differ
only in their low bits (small integers) over the top bits that memory keeps."""
_MIX_ARRAY: Any = None  # np.uint64(_MIX), once NumPy is loaded
_SEPARATOR = 0x1F
_MARK_SHIFT = 10
"""The segments' keys are marked by the first 22 bits of their tops (a 512 KiB bitmap, a
fifth full at a million keys): a batch searches the segments only for the keys marked."""
_ORDINAL_BITS = 32
_ORDINAL = (1 << _ORDINAL_BITS) - 1
_SHIFT: Any = None  # np.uint64(_ORDINAL_BITS)
_EMPTY: Any = None  # an empty array of np.uint64


def _load_numpy() -> None:
    """Import NumPy (about 70 ms): with the first index a process makes, so that a Lambda
    cold start that reads no file yet, and the command line's other commands, do not pay
    for it."""
    global np, _MIX_ARRAY, _SHIFT, _EMPTY  # noqa: PLW0603 - set once, on first use
    if _EMPTY is not None:
        return
    import numpy  # (deliberately late)

    np = numpy
    _MIX_ARRAY = numpy.uint64(_MIX)
    _SHIFT = numpy.uint64(_ORDINAL_BITS)
    _EMPTY = numpy.empty(0, numpy.uint64)


_COLUMNS = 3
"""Spilled, in blocks of ``_FLUSH_EVERY`` records, column by column: the full key, its
first position, and where its exact text ends (-1: none given)."""
_FLUSH_EVERY = 8192
_FLUSH_TEXT_BYTES = 1 << 20
"""Exact texts are written out once they fill 1 MiB (long keys: 16 KB item ids)."""
_SMALL_BATCH = 8
"""Batches smaller than this are looked up key by key (NumPy's fixed cost per call)."""


class KeyTexts:
    """The exact texts of a batch of keys, end to end in one ``bytes`` (as spilled), with
    where each ends: a batch's texts are encoded, joined and measured in one pass each."""

    __slots__ = ("blob", "ends")

    def __init__(self, blob: bytes, ends: np.ndarray) -> None:
        _load_numpy()
        self.blob = blob
        self.ends = ends

    @classmethod
    def of(cls, texts: list[bytes]) -> KeyTexts:
        _load_numpy()
        return cls(b"".join(texts), np.fromiter(map(len, texts), np.int64, len(texts)).cumsum())

    @classmethod
    def of_pairs(cls, firsts: list[str], seconds: list[str]) -> KeyTexts:
        """``f"{first}\\x1f{second}\\x1f"`` for each pair, UTF-8 (lone surrogates kept)."""
        _load_numpy()
        parts = [""] * (2 * len(firsts) + 1)
        parts[0:-1:2] = firsts
        parts[1::2] = seconds
        joined = "\x1f".join(parts)
        blob = joined.encode("utf-8", "surrogatepass")
        # Each text ends after its second separator (if the texts hold none of their own).
        separators = np.flatnonzero(np.frombuffer(blob, np.uint8) == _SEPARATOR)
        if len(separators) != 2 * len(firsts):
            texts = map("\x1f".join, zip(firsts, seconds, repeat(""), strict=False))
            return cls.of([text.encode("utf-8", "surrogatepass") for text in texts])
        return cls(blob, separators[1::2] + 1)

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, at: int) -> bytes:
        return self.blob[int(self.ends[at - 1]) if at else 0 : int(self.ends[at])]

    def __iter__(self) -> Iterator[bytes]:
        return map(self.__getitem__, range(len(self.ends)))


class SeenKeys:
    """Which keys a stream has used, and at which position (line, item number) first.

    ``first_position(key, position, exact)``: ``None`` the first time (remembering
    ``position``), else the position the key was first seen at. ``key`` is a 64-bit hash;
    ``exact`` (optional bytes) is the key itself, compared when hashes match, so that two
    different keys with the same hash are never taken for one. ``first_positions`` does
    the same for a batch of keys, in a few C-level passes when none of them is there yet.

    In memory, sorted arrays of packed keys (top 32 bits of the mixed hash, then the
    ordinal): a batch is merged into the smallest (at most ``_YOUNG_MAX`` keys), that one
    into a middle one, and a middle one that has grown to ``_SEGMENT_KEYS`` is sealed as a
    segment: its tops (4 bytes a key) and its ordinals as offsets from its first (2 bytes
    a key). No merge copies more than one segment (the index never holds twice its keys,
    even for a moment), and a lookup searches one array per segment (about twenty at a
    million keys). Keys added one at a time wait in a small dict.
    """

    _RECENT_MAX = 2048
    """Keys added one at a time wait in a dict (about 110 bytes each) up to this many."""
    _YOUNG_MAX = 8192
    """Keys in the smallest array before it is merged into the middle one."""
    _SEGMENT_KEYS = 49_152
    """Keys in the middle array that seal it as a segment: with the smallest merged in
    last, a segment spans fewer than 65,536 ordinals, which 2 bytes hold."""

    def __init__(self) -> None:
        _load_numpy()
        self._recent: dict[int, int] = {}  # mixed key -> ordinal
        self._young = _EMPTY
        self._mid = _EMPTY
        self._segments: list[_Segment] = []
        self._marks = _EMPTY  # a bit for each top's first 22 bits the segments hold
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

    def first_position(self, key: int, position: int, exact: bytes | None = None) -> int | None:
        """``None`` the first time ``key`` (with ``exact``) is seen, remembering ``position``;
        else the position it was first seen at."""
        mixed = _mixed(key)
        first, clash = self._first(key, mixed, exact)
        if first is not None:
            return first
        if clash:  # the dict holds one ordinal per mixed key: the earlier one moves on
            self._settle_recent()
        self._recent[mixed] = self._count
        self._keys.append(key)
        self._positions.append(position)
        if exact is None:
            self._text_ends.append(-1)
        else:
            self._texts += exact
            self._text_ends.append(self._text_flushed + len(self._texts))
        self._spilled(1)
        if len(self._recent) >= self._RECENT_MAX:
            self._settle_recent()
        return None

    def first_positions(
        self, keys: list[int], positions: list[int], exacts: list[bytes] | KeyTexts
    ) -> list[int | None]:
        """``first_position`` for each key in turn (a batch of rows)."""
        count = len(keys)
        signed = _signed(keys) if count >= _SMALL_BATCH else None
        if signed is None or len(set(keys)) != count:  # a key twice in the batch: in turn
            return [
                self.first_position(key, position, exact)
                for key, position, exact in zip(keys, positions, exacts, strict=True)
            ]
        self._settle_recent()  # (so that the arrays hold every key)
        mixed = signed.view(np.uint64) * _MIX_ARRAY  # wraps around, as _mixed does
        tops = mixed >> _SHIFT
        queries = tops << _SHIFT
        firsts: list[int | None] = [None] * count
        shared = np.zeros(count, np.bool_)  # 32 bits shared, by chance or as a duplicate
        if self._segments:
            short_tops = tops.astype(np.uint32)
            # Only the keys whose top the sealed keys may hold are searched for there.
            marks = short_tops >> _MARK_SHIFT
            maybe = np.flatnonzero((self._marks[marks >> 3] >> (marks & 7)) & 1)
            if len(maybe):
                wanted = short_tops[maybe]
                hits = np.zeros(len(maybe), np.bool_)
                for segment in self._segments:
                    found = segment.tops.take(segment.tops.searchsorted(wanted), mode="clip")
                    hits |= found == wanted
                shared[maybe[hits]] = True
        for packed in self._arrays():
            shared |= (packed.take(packed.searchsorted(queries), mode="clip") >> _SHIFT) == tops
        if shared.any():
            for candidate in np.flatnonzero(shared).tolist():
                firsts[candidate] = self._in_arrays(
                    keys[candidate], int(mixed[candidate]), exacts[candidate]
                )
        texts = exacts if isinstance(exacts, KeyTexts) else KeyTexts.of(exacts)
        if firsts.count(None) != count:
            new = [first is None for first in firsts]
            chosen = np.array(new)
            signed, queries = signed[chosen], queries[chosen]
            positions = list(compress(positions, new))
            texts = KeyTexts.of(list(compress(texts, new)))
        queries |= np.arange(self._count, self._count + len(positions), dtype=np.uint64)
        queries.sort()
        self._keys.frombytes(signed.tobytes())
        self._positions.extend(positions)
        ends = texts.ends + (self._text_flushed + len(self._texts))
        self._text_ends.frombytes(ends.tobytes())
        self._texts += texts.blob
        self._spilled(len(positions))
        self._add_sorted(queries)
        return firsts

    def close(self) -> None:
        """Drop the spill files (also done when the index is garbage-collected)."""
        for handle in (self._records, self._text_file):
            if handle is not None:
                handle.close()
        self._records = self._text_file = None

    def _first(self, key: int, mixed: int, exact: bytes | None) -> tuple[int | None, bool]:
        """The first position of ``key`` (and ``exact``) if seen, and whether the newest
        keys hold another key with the same mixed hash."""
        ordinal = self._recent.get(mixed)
        if ordinal is not None:
            first = self._confirm(ordinal, key, exact)
            if first is not None:
                return first, False
        return self._in_arrays(key, mixed, exact), ordinal is not None

    def _in_arrays(self, key: int, mixed: int, exact: bytes | None) -> int | None:
        top = mixed >> _ORDINAL_BITS
        for segment in self._segments:
            for ordinal in segment.ordinals_of(top):
                first = self._confirm(ordinal, key, exact)
                if first is not None:
                    return first
        query = np.uint64(top << _ORDINAL_BITS)
        for packed in self._arrays():
            at = int(packed.searchsorted(query))
            while at < len(packed) and int(packed[at]) >> _ORDINAL_BITS == top:
                first = self._confirm(int(packed[at]) & _ORDINAL, key, exact)
                if first is not None:
                    return first
                at += 1
        return None

    def _spilled(self, count: int) -> None:
        self._count += count
        if self._count > _ORDINAL:
            raise OverflowError("more than 4,294,967,295 distinct keys")
        if len(self._keys) >= _FLUSH_EVERY or len(self._texts) >= _FLUSH_TEXT_BYTES:
            self._flush()

    def _settle_recent(self) -> None:
        """Move the keys added one at a time into the sorted arrays."""
        recent, size = self._recent, len(self._recent)
        if not size:
            return
        tops = np.fromiter(recent.keys(), np.uint64, size) >> _SHIFT
        packed = (tops << _SHIFT) | np.fromiter(recent.values(), np.uint64, size)
        recent.clear()
        packed.sort()
        self._add_sorted(packed)

    def _arrays(self) -> list[np.ndarray]:
        return [packed for packed in (self._mid, self._young) if len(packed)]

    def _add_sorted(self, packed: np.ndarray) -> None:
        """Merge sorted packed keys into the smallest array, and a full array on."""
        self._young = _merged(self._young, packed)
        if len(self._young) < self._YOUNG_MAX:
            return
        self._mid, self._young = _merged(self._mid, self._young), _EMPTY
        if len(self._mid) >= self._SEGMENT_KEYS:
            segment = _Segment(self._mid)
            self._mid = _EMPTY
            if not self._segments:
                self._marks = np.zeros(1 << (32 - _MARK_SHIFT - 3), np.uint8)
            marks = segment.tops >> _MARK_SHIFT
            np.bitwise_or.at(self._marks, marks >> 3, np.left_shift(1, marks & 7).astype(np.uint8))
            self._segments.append(segment)

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


class _Segment:
    """Sealed keys: their tops, sorted (4 bytes each), and their ordinals as offsets from
    the smallest (2 bytes each while they span fewer than 65,536, as segments do)."""

    __slots__ = ("base", "offsets", "tops")

    def __init__(self, packed: np.ndarray) -> None:
        ordinals = packed & np.uint64(_ORDINAL)
        self.base = int(ordinals.min())
        ordinals -= np.uint64(self.base)
        wide = int(ordinals.max()) >= 1 << 16
        self.offsets = ordinals.astype(np.uint32 if wide else np.uint16)
        self.tops = (packed >> _SHIFT).astype(np.uint32)

    def ordinals_of(self, top: int) -> Iterator[int]:
        """The ordinals of the keys whose top 32 bits are ``top``."""
        tops = self.tops
        at = int(tops.searchsorted(np.uint32(top)))
        while at < len(tops) and int(tops[at]) == top:
            yield self.base + int(self.offsets[at])
            at += 1


def _mixed(key: int) -> int:
    return ((key & _MASK) * _MIX) & _MASK


def _signed(keys: list[int]) -> np.ndarray | None:
    """The keys as signed 64-bit numbers (as spilled); ``None`` if one does not fit."""
    try:
        return np.array(keys, dtype=np.int64)
    except OverflowError:
        return None


def _merged(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Two sorted arrays as one (a stable sort of two runs is one linear merge)."""
    if not len(first):
        return second
    merged = np.concatenate((first, second))
    merged.sort(kind="stable")
    return merged
