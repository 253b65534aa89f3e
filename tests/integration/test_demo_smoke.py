"""`make demo` runs end to end: the smoke test runs the demo itself, in a fresh process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_end_to_end_and_leaves_its_outputs(tmp_path: Path) -> None:
    output = tmp_path / "demo"

    # What `make demo` runs (see the next test), with this interpreter: no install, and the
    # output folder out of the checkout.
    result = subprocess.run(
        [sys.executable, "-m", "achieveit_sandbox.demo", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    summary = result.stdout
    assert "3 files ingested, 2 plans backed up" in summary
    assert "kpis-2026-11.csv: 7 rows published, none rejected" in summary
    assert "needs-fixing.csv: 1 row published, 3 rows rejected (2 by validation, 1 by" in summary
    # every rejection, grouped by reason (four reasons over three rows), none hidden
    assert len(re.findall(r"^    1 row: ", summary, re.MULTILINE)) == 4
    assert "did you mean 'Achieved'?" in summary
    assert "unknown external ID 'NOT-A-REAL-ID'" in summary
    # the notification a subscriber receives
    assert "Notification: AchieveIt ingest: 3 rows rejected in needs-fixing.csv" in summary
    assert "PX-2027: complete, 12 items" in summary
    assert "AchieveIt (the sandbox) stored 10 updates" in summary
    # two backups with a status change between; the named query finds it in the history
    assert re.search(r"and again after a change in AchieveIt: .*: complete", summary)
    changed = re.search(r"between the two backups: \S+ (\S+) '", summary)
    assert changed is not None
    answer = summary[summary.index("status-changes-last-7-days") :]
    assert re.search(rf"\s{re.escape(changed.group(1))}\s.*On Track\s+Off Track", answer)
    assert "(1 row)" in answer
    assert list((output / "s3").glob("*/history/snapshot_date=*/plan_id=*/*.jsonl.gz"))
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
    ca_folder = re.search(r"CA: (\S+)/ca\.pem", summary)
    assert ca_folder is None or not Path(ca_folder.group(1)).exists()


def test_make_demo_runs_the_demo_module_after_installing() -> None:
    """The README's `make demo` is the module the test above runs (the recipe, as make would
    run it; `make -n` prints it without installing anything)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "demo", "OUTPUT=/tmp/x", "KEEP=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.endswith("-m achieveit_sandbox.demo --keep --output /tmp/x")


def test_a_kept_demo_takes_files_anywhere_in_the_inbox_and_ends_cleanly_on_ctrl_c(
    tmp_path: Path,
) -> None:
    output = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "achieveit_sandbox.demo", "--keep", "--output", str(output)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # Ctrl-C reaches the whole group, as from a terminal
    )
    assert demo.stdout is not None
    seen: list[str] = []

    def read_until(text: str) -> None:
        for line in demo.stdout:  # type: ignore[union-attr]
            seen.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} never came:\n{''.join(seen)}")

    try:
        read_until("Ctrl-C to stop")
        ca_file = re.search(r"CA: (\S+\.pem)", "".join(seen[-3:]) + demo.stdout.readline())
        (output / "inbox" / "root.csv").write_text(
            "External ID,Status,As Of Date\nPX-1.3,At Risk,2026-12-01\n"
        )
        read_until("root.csv: 1 row published, none rejected")
        (output / "inbox" / "progress" / "broken.json").write_text("[{")
        read_until("broken.json: failed: the JSON")
        read_until("what to do:")  # the failed file's reason and fix
        os.killpg(demo.pid, signal.SIGINT)
        rest = demo.stdout.read()
        assert demo.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    text = "".join(seen) + rest
    assert "dropped under incoming/ itself: its columns say which kind" in text
    assert "Bye." in rest
    assert "Traceback" not in text
    assert ca_file is not None
    assert not Path(ca_file.group(1)).parent.exists()  # its temporary CA folder is gone
