"""`achieveit-sync export PLAN --out DIR`, run as a user runs it: whatever the plan id, the
output stays inside DIR (issue 10, point 9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from achieveit_sandbox import SandboxServer

from tests.integration.conftest import SandboxFactory, plan_organisation


@pytest.fixture
def hostile_sandbox(start_sandbox: SandboxFactory) -> SandboxServer:
    """A server that really has plans under hostile ids, as a compromised or buggy one could."""
    return start_sandbox(plan_organisation(("../../escaped", 3), ("PX-1", 2)))


def export(sandbox: SandboxServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ACHIEVEIT_BASE_URL": sandbox.base_url,
        "ACHIEVEIT_API_KEY": sandbox.api_key,
        "ACHIEVEIT_CA_BUNDLE": str(sandbox.ca_file),
    }
    return subprocess.run(
        [sys.executable, "-m", "achieveit_sync.cli", "export", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_a_plan_id_that_climbs_out_of_the_folder_is_refused_before_anything_is_written(
    hostile_sandbox: SandboxServer, tmp_path: Path
) -> None:
    out = tmp_path / "a" / "out"
    before = files_under(tmp_path)

    finished = export(hostile_sandbox, "PX-1", "../../escaped", "--out", str(out))

    assert finished.returncode == 2
    assert "plan id '../../escaped' is not valid: use 1 to 128 letters" in finished.stderr
    assert "copy the id from the plan's options menu in AchieveIt" in finished.stderr
    assert files_under(tmp_path) == before  # nothing written, inside or out
    assert hostile_sandbox.recorded_requests() == []  # nor anything asked of AchieveIt


@pytest.mark.parametrize(
    "plan_id",
    ["..", "/etc/cron.d/x", "a/../../b", "C:\\temp\\x", "PX 1", " ", "-rf", "plan\u2024id"],
)
def test_other_ids_that_are_not_plan_ids_are_refused(
    hostile_sandbox: SandboxServer, tmp_path: Path, plan_id: str
) -> None:
    finished = export(hostile_sandbox, "--out", str(tmp_path / "out"), "--", plan_id)

    assert finished.returncode == 2, finished.stderr
    assert "is not valid" in finished.stderr or "is empty" in finished.stderr
    assert not (tmp_path / "out").exists()


def test_a_valid_plan_id_still_exports_inside_the_folder(
    hostile_sandbox: SandboxServer, tmp_path: Path
) -> None:
    before = files_under(tmp_path)

    finished = export(hostile_sandbox, "PX-1", "--out", str(tmp_path / "out"))

    assert finished.returncode == 0, finished.stderr
    assert "PX-1: complete, 2 items" in finished.stdout
    written = files_under(tmp_path) - before
    # two data files, the manifest, latest.json, the template, the history snapshot
    assert len(written) == 6
    assert all((tmp_path / "out") in path.parents for path in written)
