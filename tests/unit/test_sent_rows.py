"""The command line's ledger of rows sent to a server: what counts as the same row, and
that it survives a new process, a crash mid-append and ``--restart``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from achieveit_sync.ingest.sent_rows import SentLedger, row_digest
from achieveit_sync.updates import MetricUpdate, ProgressUpdate, Status

SERVER = "https://api.achieveit.com"
NOV_1 = date(2026, 11, 1)


def _digest(update: ProgressUpdate | MetricUpdate) -> int:
    return row_digest(update)


def test_the_same_row_written_another_way_is_the_same_row() -> None:
    written = ProgressUpdate("PX-1.1", Status.ON_TRACK, NOV_1, Decimal("1.50"), "ok")
    again = ProgressUpdate("px-1.1", Status.ON_TRACK, NOV_1, Decimal("1.5"), "ok")

    assert row_digest(written) == row_digest(again)


def test_any_field_that_changes_makes_another_row() -> None:
    base = ProgressUpdate("PX-1.1", Status.ON_TRACK, NOV_1, Decimal(1), "ok")
    changed = [
        base._replace(status=Status.AT_RISK),
        base._replace(as_of_date=date(2026, 11, 2)),
        base._replace(metric_value=Decimal(2)),
        base._replace(metric_value=None),
        base._replace(comment="ok!"),
        base._replace(external_id="PX-1.2"),
    ]
    digests = {row_digest(update) for update in changed}

    assert row_digest(base) not in digests
    assert len(digests) == len(changed)
    # A metric update never matches a progress update with the same values.
    assert row_digest(MetricUpdate("PX-1.1", Decimal(1), NOV_1, "ok")) != row_digest(base)


def test_rows_added_are_found_by_the_next_process_and_a_torn_append_is_ignored(
    tmp_path: Path,
) -> None:
    first, second = (
        _digest(MetricUpdate("M-1", Decimal(5), NOV_1)),
        _digest(MetricUpdate("M-2", Decimal(6), NOV_1)),
    )
    ledger = SentLedger(tmp_path, SERVER)
    ledger.add([first, first])
    with ledger.path.open("ab") as torn:  # a crash mid-append: half a digest
        torn.write(b"\x01\x02\x03")

    reopened = SentLedger(tmp_path, SERVER)

    assert first in reopened
    assert second not in reopened
    assert len(reopened) == 1
    assert SentLedger(tmp_path, "https://gov-api.achieveit.com").__contains__(first) is False


def test_send_again_finds_nothing_but_still_remembers(tmp_path: Path) -> None:
    row = _digest(MetricUpdate("M-1", Decimal(5), NOV_1))
    SentLedger(tmp_path, SERVER).add([row])

    restarting = SentLedger(tmp_path, SERVER, send_again=True)
    assert row not in restarting
    other = _digest(MetricUpdate("M-3", Decimal(5), NOV_1))
    restarting.add([other])

    assert other in SentLedger(tmp_path, SERVER)


def test_the_ledger_holds_digests_only(tmp_path: Path) -> None:
    ledger = SentLedger(tmp_path, SERVER)
    ledger.add([_digest(ProgressUpdate("SECRET-ID-42", Status.ON_TRACK, NOV_1, None, "hush"))])

    stored = ledger.path.read_bytes()
    assert len(stored) == 8
    assert b"SECRET" not in stored
    assert b"hush" not in stored
