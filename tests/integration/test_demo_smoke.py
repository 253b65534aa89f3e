"""`make demo` runs end to end: the smoke test runs the demo itself, in a fresh process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_end_to_end_and_leaves_its_outputs(tmp_path: Path) -> None:
    output = tmp_path / "demo"

    # Exactly the README's command (with the output folder moved out of the checkout).
    result = subprocess.run(
        ["make", "--no-print-directory", "demo", f"OUTPUT={output}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    summary = result.stdout
    assert "3 files ingested, 2 plans backed up" in summary
    assert "kpis-2026-11.csv: completed: 7 published, 0 rejected" in summary
    assert "needs-fixing.csv: completed_with_rejections: 1 published, 3 rejected" in summary
    assert "did you mean 'Achieved'?" in summary
    assert "PX-2027: complete, 12 items" in summary
    assert "AchieveIt (the sandbox) stored 10 updates" in summary
    reports = sorted((output / "s3").glob("*/reports/incoming/*/*.json"))
    assert [p.name for p in reports] == [
        "warehouse-2026-11.json.json",
        "kpis-2026-11.csv.json",
        "needs-fixing.csv.json",
    ]
    rejected = next((output / "s3").glob("*/rejected/incoming/progress/needs-fixing.csv"))
    assert rejected.read_text().splitlines()[0].endswith(",Error")
    assert list((output / "s3").glob("*/backups/*/latest.json"))
    logs = (output / "function-output.jsonl").read_text().splitlines()
    assert any(json.loads(line).get("message") == "file handled" for line in logs)
    assert any("_aws" in json.loads(line) for line in logs)  # EMF metrics
    assert "API-KEY" not in "\n".join(logs) + summary  # the header never reaches a log
