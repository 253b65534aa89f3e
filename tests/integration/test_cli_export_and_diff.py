"""`achieveit-sync export` to a folder, then `achieveit-sync diff` between two backups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from achieveit_sandbox import SandboxServer
from achieveit_sync.cli import main


def manifests(root: Path, plan_id: str) -> list[Path]:
    return sorted((root / "backups" / plan_id).glob("*/*/*/*/manifest.json"))


def test_export_writes_the_lambdas_layout_and_exits_2_when_a_plan_is_not_found(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["export", "PX-2027", "NO-SUCH-PLAN", "--out", str(tmp_path)])

    assert code == 2  # AchieveIt answered 404 for one plan: a plan id the user must fix
    out = capsys.readouterr().out
    assert "PX-2027: complete, 12 items" in out
    assert "NO-SUCH-PLAN: failed" in out
    [manifest] = manifests(tmp_path, "PX-2027")
    assert {p.name for p in manifest.parent.iterdir()} == {
        "items.json.gz",
        "items.csv.gz",
        "manifest.json",
    }
    latest = json.loads((tmp_path / "backups" / "PX-2027" / "latest.json").read_text())
    assert tmp_path / latest["manifest"] == manifest
    assert not list(tmp_path.rglob("*.partial"))


def test_diff_names_what_changed_between_two_backups(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "PX-2027", "--out", str(tmp_path)]) == 0
    with configured.organisation() as organisation:
        plan = organisation.plans["PX-2027"]
        plan.items[2].status = "Achieved"
        plan.items[2].assigned_to_full_name = "Chen Wei"
        removed = plan.items[5]
    with configured.organisation() as organisation:
        organisation.remove_item("PX-2027", removed.id)
    assert main(["export", "PX-2027", "--out", str(tmp_path)]) == 0
    first, second = manifests(tmp_path, "PX-2027")
    capsys.readouterr()

    assert main(["diff", str(first), str(second.parent), "--format", "json"]) == 0

    result = json.loads(capsys.readouterr().out)
    assert result["added"] == []
    assert [r["externalId"] for r in result["removed"]] == [removed.external_id]
    [changed] = result["changed"]
    assert changed["changes"]["statusName"][1] == "Achieved"
    assert changed["changes"]["assignedToFullName"][1] == "Chen Wei"


def test_diff_of_a_missing_backup_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["diff", str(tmp_path / "a"), str(tmp_path / "b")]) == 2


def test_export_shows_progress_on_a_terminal(
    configured: SandboxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)

    assert main(["export", "PX-2027", "--out", str(tmp_path)]) == 0

    captured = capsys.readouterr()
    assert "\r\x1b[2K  PX-2027: 12 of 12 items (100%)" in captured.err
    assert captured.err.endswith("\r\x1b[2K")  # the line is cleared, not left behind
    assert "PX-2027: complete, 12 items" in captured.out


def test_an_export_with_a_refused_key_is_exit_2_like_publish(
    configured: SandboxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACHIEVEIT_API_KEY", "not-the-key-0123456789")

    code = main(["export", configured.plan_ids[0], "--out", str(tmp_path / "out")])

    assert code == 2  # a key to fix, as publish says for the same 401
    assert "401" in capsys.readouterr().out


def test_an_export_into_a_file_is_exit_2_without_lambda_words(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "afile"
    a_file.write_text("")

    code = main(["export", configured.plan_ids[0], "--out", str(a_file)])

    captured = capsys.readouterr()
    assert code == 2
    assert "function's log" not in captured.out + captured.err
