"""`achieveit-sync validate`: offline, exit codes 0/1/2, text or JSON report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from achieveit_sync.cli import main

GOOD = b"External ID,Status,As Of Date\nPX-1,On Track,2026-11-01\n"
BAD = b"External ID,Status,Metric Value,As Of Date\nPX-1,On Track,20%,2026-11-01\n"


def write(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def test_a_valid_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", write(tmp_path, "good.csv", GOOD)]) == 0
    out = capsys.readouterr().out
    assert "good.csv: 1 row valid; nothing was sent" in out
    assert "read: 1 row (CSV, UTF-8, comma-separated); progress updates" in out


def test_an_invalid_row_exits_1_naming_line_field_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", write(tmp_path, "bad.csv", BAD)]) == 1
    out = capsys.readouterr().out
    assert "1 row rejected (1 by validation)" in out
    assert "1 row: metricValue '20%' is a percentage - write percentages as decimals" in out
    assert "(line 2)" in out


def test_an_invalid_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", write(tmp_path, "empty.csv", b"")]) == 1
    assert "empty.csv: failed: the file is empty (0 bytes)" in capsys.readouterr().out


def test_the_json_report_is_machine_readable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["validate", "--format", "json", "--kind", "progress", write(tmp_path, "bad.csv", BAD)])

    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "validated"
    assert report["rejections"][0]["line"] == 2
    assert report["rejections"][0]["field"] == "metricValue"


def test_rejected_rows_can_be_written_for_fixing(tmp_path: Path) -> None:
    out = tmp_path / "rejected.csv"

    main(["validate", "--rejected-out", str(out), write(tmp_path, "bad.csv", BAD)])

    assert out.read_text().splitlines()[1].startswith("PX-1,On Track,20%,2026-11-01,")


@pytest.mark.parametrize(
    "argv",
    [
        ["validate"],
        ["validate", "/no/such/file.csv"],
        ["validate", "x.csv", "--kind", "nope"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own usage errors
        code = int(exit_.code or 0)
    assert code == 2


def test_publish_without_a_key_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("ACHIEVEIT_API_KEY", "ACHIEVEIT_API_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)

    assert main(["publish", write(tmp_path, "good.csv", GOOD)]) == 2
    assert "ACHIEVEIT_API_KEY" in capsys.readouterr().err


def test_publish_dry_run_sends_nothing_and_needs_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ACHIEVEIT_API_KEY", raising=False)

    assert main(["publish", "--dry-run", write(tmp_path, "good.csv", GOOD)]) == 0
    out = capsys.readouterr().out
    assert "would send 1 row in 1 request of up to 500 rows" in out
    assert "/api/progressupdates/good.csv.part-0001.json" in out
    assert "dry run: nothing was sent" in out
