"""What the command line has sent to each AchieveIt server, so that publishing an edited
file, a copy, or next week's file that repeats last week's rows never sends a row twice,
and never holds back a correction.

Checkpoints (``checkpoints.py``) follow one exact content: a file edited by one cell is a
new file to them, and all of its rows would be sent again (AchieveIt may record each
twice). The ledger follows items instead: for each (kind, external ID in any case, as-of
date) it keeps a digest of the content last sent for it (status, metric value, comment). A
row whose content is the one last sent for its item and date is not sent again but counted
as sent earlier; any other content is sent (a correction, or a correction undone: 0.7, then
0.9, then 0.7 again sends all three). ``--restart`` sends every row.

A row goes into the ledger *before* its request leaves, like the checkpoint's "in flight":
a run stopped (Ctrl-C, a crash) with rows in flight has them recorded, so no other file
sends them again without ``--restart``. After the answer, rows AchieveIt refused and rows
that were never sent get their earlier entry back: once the cause is fixed (the item
created, access granted) the same row can be sent.

The ledger is per server (the normalised base URL), not per API key, so a rotated key does
not make earlier rows look unsent. It holds digests only, never the rows or the key: one
file per server, 16 bytes appended per row sent, replayed in order when a run starts (the
last entry for an item and date wins). Runs to one server from one state folder take a
lock, so two overlapping runs cannot both send the same rows.
"""

from __future__ import annotations

import contextlib
import hashlib
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Protocol

from achieveit_sync.errors import ConfigurationError
from achieveit_sync.updates import MetricUpdate, Update

_SEPARATOR = "\x1f"
_blake2b = hashlib.blake2b
_RECORD_BYTES = 16
NOTHING_SENT = 0
"""The content digest of "nothing sent for this item and date" (no real digest is 0)."""


class SentRows(Protocol):
    """The content last sent for each item and date (``publish`` skips a row that repeats
    it), and the place to record what is being sent."""

    def already_sent(self, key: int, content: int) -> bool:
        """``content`` is what was last sent for ``key``: sending it again would repeat it."""
        ...

    def last_sent(self, key: int) -> int:
        """The content digest last recorded for ``key``, or ``NOTHING_SENT``."""
        ...

    def record(self, entries: Iterable[tuple[int, int]]) -> None:
        """Record (key, content) pairs, in order, before returning."""
        ...


def row_digests(update: Update) -> tuple[int, int]:
    """The (key, content) digests of ``update``: the key is what AchieveIt files the update
    under (kind, external ID in any case, as-of date); the content is what it says, written
    any way (``1.50`` for ``1.5``). About 3 us a row, computed once per row and run."""
    if isinstance(update, MetricUpdate):
        key = f"metric{_SEPARATOR}{update.external_id.casefold()}{_SEPARATOR}"
        content = f"{_SEPARATOR}{update.metric_value.normalize()}{_SEPARATOR}{update.comment}"
    else:
        key = f"progress{_SEPARATOR}{update.external_id.casefold()}{_SEPARATOR}"
        metric = "" if update.metric_value is None else str(update.metric_value.normalize())
        content = f"{update.status.value}{_SEPARATOR}{metric}{_SEPARATOR}{update.comment}"
    key += str(update.as_of_date.toordinal())
    return _digest(key), _digest(content) or 1


def _digest(text: str) -> int:
    raw = _blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(raw, "little", signed=True)


class SentLedger:
    """The ledger of one server in ``<folder>/<digest of the base URL>``, locked for the
    life of the object (``open``), or read only (``peek``, for a dry run)."""

    def __init__(self, path: Path, *, send_again: bool = False) -> None:
        self.path = path
        self._send_again = send_again
        self._latest = _LatestByKey()
        self._lock: IO[bytes] | None = None

    @staticmethod
    def path_for(folder: Path, base_url: str) -> Path:
        return folder / hashlib.sha256(base_url.encode("utf-8")).hexdigest()[:32]

    @classmethod
    def peek(cls, folder: Path, base_url: str) -> SentLedger:
        """The ledger as it is now, without the lock: for saying what a run would send."""
        ledger = cls(cls.path_for(folder, base_url))
        ledger._load()
        return ledger

    @classmethod
    @contextlib.contextmanager
    def open(cls, folder: Path, base_url: str, *, send_again: bool = False) -> Iterator[SentLedger]:
        """The ledger, locked against other runs to the same server from this folder
        (``ConfigurationError`` when one is running), loaded after the lock is taken."""
        ledger = cls(cls.path_for(folder, base_url), send_again=send_again)
        folder.mkdir(parents=True, exist_ok=True)
        with ledger.path.with_suffix(".lock").open("a+b") as lock:
            _lock_or_refuse(lock, base_url)
            ledger._load()
            yield ledger

    def __len__(self) -> int:
        return len(self._latest)

    def already_sent(self, key: int, content: int) -> bool:
        return not self._send_again and self._latest.get(key) == content

    def last_sent(self, key: int) -> int:
        return self._latest.get(key)

    def record(self, entries: Iterable[tuple[int, int]]) -> None:
        """Appended and flushed to the operating system (not fsync'd, like the checkpoints:
        a power cut may lose the last entries, never corrupt the others)."""
        flat = array("q")
        for key, content in entries:
            self._latest.set(key, content)
            flat.append(key)
            flat.append(content)
        if flat:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as ledger:
                ledger.write(flat.tobytes())

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        # A crash mid-append can leave a partial entry at the end: it is ignored.
        flat = array("q")
        flat.frombytes(data[: len(data) - len(data) % _RECORD_BYTES])
        latest = self._latest
        for index in range(0, len(flat), 2):
            latest.set(flat[index], flat[index + 1])


def _lock_or_refuse(lock: IO[bytes], base_url: str) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; overlapping runs are the user's care
        return
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigurationError(
            f"another publish to {base_url} is running with this state folder: two runs at "
            "once could send the same rows twice; wait for it to finish, then run this again"
        ) from None


class _LatestByKey:
    """A map from 64-bit keys to 64-bit values in flat arrays (16 bytes an entry where a
    dict costs ~100), bucketed by the key's low bits; lookups scan a bucket in C."""

    _INITIAL_BITS = 10
    _MAX_AVERAGE = 32

    def __init__(self) -> None:
        self._bits = self._INITIAL_BITS
        self._mask = (1 << self._bits) - 1
        self._keys: dict[int, array[int]] = {}
        self._values: dict[int, array[int]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def get(self, key: int) -> int:
        bucket = key & self._mask
        keys = self._keys.get(bucket)
        if keys is None:
            return NOTHING_SENT
        try:
            return self._values[bucket][keys.index(key)]
        except ValueError:
            return NOTHING_SENT

    def set(self, key: int, value: int) -> None:
        bucket = key & self._mask
        keys = self._keys.get(bucket)
        if keys is None:
            self._keys[bucket] = array("q", (key,))
            self._values[bucket] = array("q", (value,))
        else:
            try:
                index = keys.index(key)
            except ValueError:
                keys.append(key)
                self._values[bucket].append(value)
            else:
                self._values[bucket][index] = value
                return
        self._count += 1
        if self._count > self._MAX_AVERAGE << self._bits:
            self._grow()

    def _grow(self) -> None:
        self._bits += 2
        self._mask = (1 << self._bits) - 1
        old_keys, old_values = self._keys, self._values
        self._keys, self._values = {}, {}
        for bucket, keys in old_keys.items():
            for key, value in zip(keys, old_values[bucket], strict=True):
                target = key & self._mask
                if target in self._keys:
                    self._keys[target].append(key)
                    self._values[target].append(value)
                else:
                    self._keys[target] = array("q", (key,))
                    self._values[target] = array("q", (value,))
