"""What ``achieveit-sync publish`` keeps on disk about what it sends to one server: each
file's progress (``FileCheckpoints``, to resume where an unfinished run stopped) and what
was last sent for each item and date (``SentLedger``, so that an edited file, a copy or next
week's file never sends a row twice), in one state folder.

The command line decides which folder and file; this module decides what is kept there and
when it is let go.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from achieveit_sync.errors import ConfigurationError
from achieveit_sync.ingest.checkpoints import FileCheckpoints
from achieveit_sync.ingest.report import FileReport
from achieveit_sync.ingest.sent_rows import SentLedger


@dataclass
class PublishState:
    """One file's progress and its server's ledger; the ledger stays locked until the
    ``ExitStack`` given to ``open`` closes (no other run sends to that server meanwhile)."""

    base_url: str
    content_sha256: str
    checkpoints: FileCheckpoints
    sent_rows: SentLedger

    @property
    def file_id(self) -> str:
        """This content, sent to this server: what progress belongs to (whatever the key)."""
        return f"{self.content_sha256}|{self.base_url}"

    @classmethod
    def open(
        cls,
        path: Path,
        base_url: str,
        state_dir: Path,
        held: contextlib.ExitStack,
        *,
        restart: bool = False,
        named: str = "the state folder",
    ) -> PublishState:
        """``restart`` (``--restart``): forget the file's progress, and send every row even
        if sent before. ``named`` is how messages call the folder (the option or variable
        it came from)."""
        usable_state_dir(state_dir, named)
        try:
            sent_rows = held.enter_context(
                SentLedger.open(state_dir / "sent", base_url, send_again=restart)
            )
        except OSError as exc:
            raise ConfigurationError(
                f"the record of rows sent earlier, in {state_dir / 'sent'}, cannot be read "
                f"({exc.strerror or exc}); fix its permissions, or give another folder "
                "(rows sent from the old one would then be sent again)"
            ) from None
        state = cls(
            base_url=base_url,
            content_sha256=content_sha256(path),
            checkpoints=FileCheckpoints(state_dir / "checkpoints"),
            sent_rows=sent_rows,
        )
        if restart:
            state.checkpoints.forget(state.file_id)
        return state

    def conclude(self, report: FileReport) -> None:
        """A finished run's progress is let go: the ledger now holds what was sent. Kept, it
        would answer "done" to a later run of the same bytes even after other files changed
        those items (0.7, then 0.9, then 0.7 again must send the 0.7)."""
        if report.status.finished:
            self.checkpoints.forget(self.file_id)


def usable_state_dir(state_dir: Path, named: str) -> Path:
    """The state folder, created if missing; refused before anything is sent, since a run
    that cannot record progress cannot resume without sending twice."""
    for folder in (state_dir, *state_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigurationError(
                    f"{named} {state_dir}: {folder} is a file, not a folder; give a folder"
                )
            break
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=state_dir, prefix=".probe-").close()
    except OSError as exc:
        raise ConfigurationError(
            f"{named} {state_dir} cannot hold the record of what was sent "
            f"({exc.strerror or exc}); give a writable folder"
        ) from None
    return state_dir


def content_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
