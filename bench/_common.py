"""Shared by the benchmarks: fresh-process measurements and a sandbox in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(*args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """Run ``_measure.py ARGS`` in a fresh interpreter; its last output line is JSON."""
    output = subprocess.run(
        [sys.executable, str(HERE / "_measure.py"), *args],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=3600,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


@contextmanager
def sandbox_process(workdir: Path, *plans: str) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """An AchieveIt sandbox in its own process (so its memory is not counted) with the
    generated ``PLAN_ID:ITEMS`` plans; yields its connection info and an environment that
    points the client at it."""
    arguments = [
        sys.executable,
        "-m",
        "achieveit_sync.cli",
        "sandbox",
        "--ca-file",
        str(workdir / "ca.pem"),
    ]
    for plan in plans:
        arguments += ["--generate-plan", plan]
    process = subprocess.Popen(
        arguments, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        env = {
            **os.environ,
            "ACHIEVEIT_BASE_URL": info["base_url"],
            "ACHIEVEIT_API_KEY": info["api_key"],
            "ACHIEVEIT_CA_BUNDLE": info["ca_file"],
        }
        yield info, env
    finally:
        process.terminate()
        process.wait(timeout=60)
