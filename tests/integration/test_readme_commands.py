"""The README's hands-on commands work as written (CI runs them on a fresh clone)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_block_after(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(marker)
    match = re.search(r"```sh\n(.*?)```", text[start:], re.DOTALL)
    assert match is not None, f"no sh block after {marker!r}"
    return match.group(1)


def test_the_try_it_against_the_sandbox_commands_work(tmp_path: Path) -> None:
    script = readme_block_after("Try it against the sandbox")
    assert script.startswith("make install\n")
    # The checkout under test is already installed; paths under /tmp go to a private folder.
    script = script.replace("make install\n", "").replace("/tmp/", f"{tmp_path}/")

    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env={**os.environ, "ACHIEVEIT_SYNC_STATE_DIR": str(tmp_path / "state")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "kpis.csv: 1 row published, none rejected" in result.stdout
    assert re.search(r"plans: .*PX-2027", result.stdout)
    assert "PX-2027: complete, 12 items" in result.stdout
    assert (tmp_path / "plan-backups" / "backups" / "PX-2027" / "latest.json").is_file()
