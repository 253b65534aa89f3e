"""`achieveit-sync publish` against the sandbox, configured by environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from achieveit_sandbox import SandboxServer
from achieveit_sync.cli import main

from tests.conftest import RECOGNISABLE_KEY


def test_publish_sends_the_valid_rows_and_reports_the_rest(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kpis.csv"
    path.write_text(
        "External ID,Status,As Of Date\nPX-1.3,At Risk,2026-11-01\n"
        "PX-2.3,Achieved,2026-11-01\nPX-2.1,Sideways,2026-11-01\n"
    )

    code = main(["publish", "--batch-size", "1", "--body-format", "csv", str(path)])

    assert code == 1  # one row was rejected
    out = capsys.readouterr().out
    assert "2 rows published, 1 row rejected (1 by validation)" in out
    assert "1 row: status 'Sideways' is not an AchieveIt status" in out
    assert "(line 4)" in out
    assert [u.external_id for u in configured.stored_updates()] == ["PX-1.3", "PX-2.3"]
    assert {r.content_type for r in configured.recorded_requests()} == {"text/csv; charset=utf-8"}
    assert RECOGNISABLE_KEY not in out


def test_a_clean_publish_exits_0(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"externalId": "PX-3.1", "metricValue": 0.5, "asOfDate": "2026-11-01"}\n')

    assert main(["publish", "--kind", "metric", str(path)]) == 0
    assert configured.stored_updates()[0].metric_value == 0.5


# -- what publish keeps on disk: resuming, and asking before an edited file goes again ------


def _rows(*ids: str) -> str:
    return "External ID,Status,Metric Value,As Of Date\n" + "".join(
        f"{external_id},On Track,1,2026-11-01\n" for external_id in ids
    )


def test_an_outage_stops_publish_and_the_same_command_resumes_without_sending_twice(
    configured: SandboxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from achieveit_sandbox.faults import Fault, FaultPlan

    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1", "PX-1.2", "PX-1.3", "PX-2.1"))
    monkeypatch.setenv("ACHIEVEIT_MAX_ATTEMPTS", "2")
    # Requests 3 and 4 (the third part's two attempts) fail: AchieveIt is down.
    configured.set_faults(
        FaultPlan(on_requests={3: Fault.UNAVAILABLE, 4: Fault.UNAVAILABLE}, retry_after="0")
    )

    first = main(["publish", "--batch-size", "1", str(path)])
    first_out = capsys.readouterr().out

    assert first == 3  # AchieveIt failed
    assert "not finished: 2 rows published so far" in first_out
    assert len(configured.stored_updates()) == 2

    configured.set_faults(FaultPlan())
    second = main(["publish", "--batch-size", "1", str(path)])

    assert second == 0
    assert "4 rows published, none rejected" in capsys.readouterr().out
    stored = [update.external_id for update in configured.stored_updates()]
    assert stored == ["PX-1.1", "PX-1.2", "PX-1.3", "PX-2.1"]  # each once

    third = main(["publish", "--batch-size", "1", str(path)])

    assert third == 0
    assert "nothing sent now: an earlier run of this command sent this file" in (
        capsys.readouterr().out
    )
    assert len(configured.stored_updates()) == 4


def test_an_edited_file_is_not_sent_again_unless_asked(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1", "PX-1.2"))
    assert main(["publish", str(path)]) == 0
    capsys.readouterr()

    path.write_text(_rows("PX-1.1", "PX-1.2", "PX-1.3"))  # fixed in place, one row added
    refused = main(["publish", str(path)])

    assert refused == 2
    error = capsys.readouterr().err
    assert "has changed since 2 rows of it were published" in error
    assert "add --restart" in error
    assert len(configured.stored_updates()) == 2  # nothing sent

    assert main(["publish", "--restart", str(path)]) == 0
    assert len(configured.stored_updates()) == 5  # the whole file again, as asked

    copy = tmp_path / "copy-of-kpis.csv"
    copy.write_bytes(path.read_bytes())
    assert main(["publish", str(copy)]) == 0  # the same content: already sent
    assert "nothing sent now" in capsys.readouterr().out
    assert len(configured.stored_updates()) == 5


def test_a_state_folder_that_cannot_be_written_stops_publish_before_sending(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1"))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be")

    code = main(["publish", "--state-dir", str(blocker / "state"), str(path)])

    assert code == 2
    assert "--state-dir" in capsys.readouterr().err
    assert configured.stored_updates() == []
