"""What the command line has sent to each AchieveIt server, row by row, so that publishing
an edited file, a copy, or next week's file that repeats last week's rows never sends a
row twice.

Checkpoints (``checkpoints.py``) follow one exact content: a file edited by one cell is a
new file to them, and all of its rows would be sent again (AchieveIt may record each
twice). The ledger follows rows instead: every row AchieveIt accepted, or may have applied
(sent, no answer), is remembered by a 64-bit digest of what it says (kind, external ID,
date, status, metric value, comment). A later ``publish`` to the same server skips rows
already in the ledger and counts them as sent earlier; ``--restart`` sends them anyway.
Rows AchieveIt refused are not remembered: once the cause is fixed (the item created,
access granted) the same row can be sent again.

The ledger is keyed by the server's normalised base URL, not by the API key, so a rotated
key does not make earlier rows look unsent. It holds digests only, never the rows or the
key. One file per server, appended to (8 bytes a row) after every part, so a crash loses
at most the part in flight, whose rows the checkpoints report as "may have been applied".
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from achieveit_sync.key_index import SeenKeys
from achieveit_sync.updates import MetricUpdate, Update

_SEPARATOR = "\x1f"
_blake2b = hashlib.blake2b
_DIGEST_BYTES = 8


class SentRows(Protocol):
    """Rows sent by earlier runs, by ``row_digest`` (``publish`` skips them), and the place
    to add new ones."""

    def __contains__(self, digest: int) -> bool: ...

    def add(self, digests: Iterable[int]) -> None:
        """Remember ``digests`` as sent before returning."""
        ...


def row_digest(update: Update) -> int:
    """A signed 64-bit digest of what ``update`` says: the same row written another way
    (ID case, ``1.50`` for ``1.5``) gets the same digest. (About 3 us a row: it is computed
    once per row and run.)"""
    if isinstance(update, MetricUpdate):
        text = (
            f"metric{_SEPARATOR}{update.external_id.casefold()}{_SEPARATOR}"
            f"{update.as_of_date.toordinal()}{_SEPARATOR}{_SEPARATOR}"
            f"{update.metric_value.normalize()}{_SEPARATOR}{update.comment}"
        )
    else:
        metric = "" if update.metric_value is None else str(update.metric_value.normalize())
        text = (
            f"progress{_SEPARATOR}{update.external_id.casefold()}{_SEPARATOR}"
            f"{update.as_of_date.toordinal()}{_SEPARATOR}{update.status.value}{_SEPARATOR}"
            f"{metric}{_SEPARATOR}{update.comment}"
        )
    digest = _blake2b(text.encode("utf-8", "surrogatepass"), digest_size=_DIGEST_BYTES).digest()
    return int.from_bytes(digest, "little", signed=True)


class SentLedger:
    """The rows sent to one server, in ``<folder>/<digest of the base URL>``."""

    def __init__(self, folder: Path, base_url: str, *, send_again: bool = False) -> None:
        """``send_again`` (``--restart``): no row counts as sent earlier, but rows sent now
        are still remembered."""
        name = hashlib.sha256(base_url.encode("utf-8")).hexdigest()[:32]
        self.path = folder / name
        self._send_again = send_again
        self._seen = SeenKeys()
        self._load()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, digest: int) -> bool:
        return not self._send_again and digest in self._seen

    def add(self, digests: Iterable[int]) -> None:
        """Appended and flushed to the operating system (not fsync'd, like the checkpoints:
        a power cut may lose the last parts' digests, never corrupt the rest)."""
        new = array("q", (digest for digest in digests if self._seen.remember(digest, 0)))
        if not new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as ledger:
            ledger.write(new.tobytes())

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        # A crash mid-append can leave a partial digest at the end: it is ignored.
        whole = len(data) - len(data) % _DIGEST_BYTES
        digests = array("q")
        digests.frombytes(data[:whole])
        for digest in digests:
            self._seen.remember(digest, 0)
