"""A compact index of keys seen so far, for exact duplicate detection in large streams
(rows of an update file, items of a plan export)."""

from __future__ import annotations

from array import array


class SeenKeys:
    """Which keys a stream has used, and at which position (line, item number) first.

    Keys are 64-bit hashes kept in 65,536 buckets of flat arrays (hash and line, 12 bytes a
    key), where a dict of ints would cost ~100 bytes a key: a 1,000,000-row file needs about
    20 MB. Membership tests and appends run in C. Two different keys colliding in a file of a
    million rows has a chance of about 1 in 30 million.
    """

    _BUCKET_MASK = 0xFFFF

    def __init__(self) -> None:
        # Public so that the validator's fast path can work on them inline (same logic).
        self.hashes: dict[int, array[int]] = {}
        self.lines: dict[int, array[int]] = {}

    def first_line(self, key: int, line: int) -> int | None:
        """``None`` the first time ``key`` is seen (remembering ``line``); else that line."""
        bucket = key & self._BUCKET_MASK
        hashes = self.hashes.get(bucket)
        if hashes is None:
            self.hashes[bucket] = array("q", (key,))
            self.lines[bucket] = array("i", (line,))
            return None
        if key in hashes:
            return self.lines[bucket][hashes.index(key)]
        hashes.append(key)
        self.lines[bucket].append(line)
        return None
