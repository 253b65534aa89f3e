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
