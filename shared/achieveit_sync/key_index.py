"""A compact index of keys seen so far, for exact duplicate detection in large streams
(rows of an update file, items of a plan export)."""

from __future__ import annotations

from array import array


class SeenKeys:
    """Which keys a stream has used, and at which position (line, item number) first.

    Keys are 64-bit hashes kept in buckets of flat arrays (hash and position, 12 bytes a
    key) where a dict of ints would cost ~100 bytes a key. Membership tests and appends run
    in C. The bucket count grows fourfold whenever buckets average more than 32 keys, so
    scans stay short while per-bucket overhead stays a few bytes a key. Two different keys
    colliding among a million has a chance of about 1 in 30 million.
    """

    _INITIAL_BITS = 12
    _MAX_AVERAGE = 32

    def __init__(self) -> None:
        self._bits = self._INITIAL_BITS
        self._mask = (1 << self._bits) - 1
        self._hashes: dict[int, array[int]] = {}
        self._positions: dict[int, array[int]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: int) -> bool:
        hashes = self._hashes.get(key & self._mask)
        return hashes is not None and key in hashes

    def remember(self, key: int, position: int) -> bool:
        """True (and ``position`` remembered) the first time ``key`` is seen; else False."""
        bucket = key & self._mask
        hashes = self._hashes.get(bucket)
        if hashes is None:
            self._hashes[bucket] = array("q", (key,))
            self._positions[bucket] = array("i", (position,))
        elif key in hashes:
            return False
        else:
            hashes.append(key)
            self._positions[bucket].append(position)
        self._count += 1
        if self._count > self._MAX_AVERAGE << self._bits:
            self._grow()
        return True

    def first_line(self, key: int, position: int) -> int | None:
        """``None`` the first time ``key`` is seen (remembering ``position``); else the
        position it was first seen at."""
        if self.remember(key, position):
            return None
        bucket = key & self._mask
        return self._positions[bucket][self._hashes[bucket].index(key)]

    def _grow(self) -> None:
        self._bits += 2
        self._mask = (1 << self._bits) - 1
        old_hashes, old_positions = self._hashes, self._positions
        self._hashes, self._positions = {}, {}
        for bucket, hashes in old_hashes.items():
            for key, position in zip(hashes, old_positions[bucket], strict=True):
                new_bucket = key & self._mask
                target = self._hashes.get(new_bucket)
                if target is None:
                    self._hashes[new_bucket] = array("q", (key,))
                    self._positions[new_bucket] = array("i", (position,))
                else:
                    target.append(key)
                    self._positions[new_bucket].append(position)
