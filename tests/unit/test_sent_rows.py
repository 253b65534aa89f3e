"""The command line's ledger of what was last sent for each item and date: what counts as
the same item and the same content, and that it survives a new process, a crash
mid-append, ``--restart`` and a second run wanting the same server."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from achieveit_sync.errors import ConfigurationError
from achieveit_sync.ingest.sent_rows import NOTHING_SENT, SentLedger, row_digests
from achieveit_sync.updates import MetricUpdate, ProgressUpdate, Status

SERVER = "https://api.achieveit.com"
NOV_1 = date(2026, 11, 1)
BASE = ProgressUpdate("PX-1.1", Status.ON_TRACK, NOV_1, Decimal(1), "ok")


def test_the_same_row_written_another_way_has_the_same_key_and_content() -> None:
    written = ProgressUpdate("PX-1.1", Status.ON_TRACK, NOV_1, Decimal("1.50"), "ok")
    again = ProgressUpdate("px-1.1", Status.ON_TRACK, NOV_1, Decimal("1.5"), "ok")

    assert row_digests(written) == row_digests(again)


def test_the_key_is_the_item_and_date_and_the_content_is_what_the_row_says() -> None:
    key, content = row_digests(BASE)
    same_item = [
        BASE._replace(status=Status.AT_RISK),
        BASE._replace(metric_value=Decimal(2)),
        BASE._replace(metric_value=None),
        BASE._replace(comment="ok!"),
    ]
    other_item = [BASE._replace(as_of_date=date(2026, 11, 2)), BASE._replace(external_id="PX-2")]

    assert {row_digests(u)[0] for u in same_item} == {key}
    assert len({row_digests(u)[1] for u in same_item} | {content}) == len(same_item) + 1
    assert key not in {row_digests(u)[0] for u in other_item}
    # A metric update is filed apart from a progress update of the same item and date.
    assert row_digests(MetricUpdate("PX-1.1", Decimal(1), NOV_1, "ok"))[0] != key


def test_the_last_content_recorded_wins_and_a_new_process_finds_it(tmp_path: Path) -> None:
    key, sent = row_digests(BASE)
    _, typo = row_digests(BASE._replace(metric_value=Decimal(9)))
    with SentLedger.open(tmp_path, SERVER) as ledger:
        ledger.record([(key, sent), (key, typo)])
    with SentLedger.open(tmp_path, SERVER) as ledger:
        assert ledger.already_sent(key, typo)
        assert not ledger.already_sent(key, sent)  # undoing the typo is a change to send
        ledger.record([(key, NOTHING_SENT)])  # refused: as if never sent
    with SentLedger.open(tmp_path, SERVER) as ledger:
        assert ledger.last_sent(key) == NOTHING_SENT
    assert SentLedger.peek(tmp_path, "https://gov-api.achieveit.com").last_sent(key) == 0


def test_a_torn_append_is_ignored(tmp_path: Path) -> None:
    key, content = row_digests(BASE)
    with SentLedger.open(tmp_path, SERVER) as ledger:
        ledger.record([(key, content)])
        with ledger.path.open("ab") as torn:  # a crash mid-append: half an entry
            torn.write(b"\x01\x02\x03")

    assert SentLedger.peek(tmp_path, SERVER).already_sent(key, content)


def test_send_again_finds_nothing_sent_but_still_records(tmp_path: Path) -> None:
    key, content = row_digests(BASE)
    with SentLedger.open(tmp_path, SERVER) as ledger:
        ledger.record([(key, content)])
    with SentLedger.open(tmp_path, SERVER, send_again=True) as restarting:
        assert not restarting.already_sent(key, content)
        other_key, other = row_digests(BASE._replace(external_id="PX-9"))
        restarting.record([(other_key, other)])

    assert SentLedger.peek(tmp_path, SERVER).already_sent(other_key, other)


def test_a_second_run_to_the_same_server_is_refused_while_the_first_holds_the_lock(
    tmp_path: Path,
) -> None:
    with (
        SentLedger.open(tmp_path, SERVER),
        pytest.raises(ConfigurationError, match="another publish to https://api"),
    ):
        with SentLedger.open(tmp_path, SERVER):
            pass
    with SentLedger.open(tmp_path, "https://gov-api.achieveit.com"):  # another server: fine
        pass


def test_many_items_are_kept_compactly_and_exactly(tmp_path: Path) -> None:
    entries = [(key, key ^ 0x5A5A) for key in range(1, 300_001)]  # grows the buckets twice
    with SentLedger.open(tmp_path, SERVER) as ledger:
        ledger.record(entries)
    reloaded = SentLedger.peek(tmp_path, SERVER)

    assert len(reloaded) == 300_000
    assert all(reloaded.already_sent(key, value) for key, value in entries[::997])
    assert reloaded.path.stat().st_size == 16 * 300_000


def test_the_ledger_holds_digests_only(tmp_path: Path) -> None:
    secret = ProgressUpdate("SECRET-ID-42", Status.ON_TRACK, NOV_1, None, "hush")
    with SentLedger.open(tmp_path, SERVER) as ledger:
        ledger.record([row_digests(secret)])

    stored = ledger.path.read_bytes()
    assert len(stored) == 16
    assert b"SECRET" not in stored
    assert b"hush" not in stored
