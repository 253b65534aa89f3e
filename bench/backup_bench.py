"""Backup benchmark: a 100,000-item plan against a 10,000-item one, in the same run.

    python bench/backup_bench.py [--items 100000] [--small-items 10000]

Figures: requests made for the large plan (goal: exactly ceil(items / 1500)), peak RSS of a
fresh process backing up each plan (goal: large within 20% of small, under 200 MB), and wall
time. The sandbox runs in its own process, so its memory is not counted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import ssl
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(plan_id: str, out: Path, env: dict[str, str]) -> dict[str, object]:
    output = subprocess.run(
        [sys.executable, str(HERE / "_measure.py"), "backup", plan_id, str(out)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=3600,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def requests_for(info: dict[str, str], plan_id: str) -> int:
    context = ssl.create_default_context(cafile=info["ca_file"])
    with urllib.request.urlopen(  # noqa: S310 - https to our own sandbox
        f"{info['base_url']}/_sandbox/requests",
        context=context,
        timeout=60,
    ) as answer:
        recorded = json.loads(answer.read())
    return sum(1 for r in recorded if r["path"] == f"/exports/plans/{plan_id}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--small-items", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sandbox = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "achieveit_sync.cli",
                "sandbox",
                "--ca-file",
                str(work / "ca.pem"),
                "--generate-plan",
                f"LARGE:{args.items}",
                "--generate-plan",
                f"SMALL:{args.small_items}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert sandbox.stdout is not None
            info = json.loads(sandbox.stdout.readline())
            env = {
                **os.environ,
                "ACHIEVEIT_BASE_URL": info["base_url"],
                "ACHIEVEIT_API_KEY": info["api_key"],
                "ACHIEVEIT_CA_BUNDLE": info["ca_file"],
            }
            small = measure("SMALL", work / "out", env)
            large = measure("LARGE", work / "out", env)
            large_requests = requests_for(info, "LARGE")
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=60)
    results = {
        "items": args.items,
        "requests": large_requests,
        "requests_goal": math.ceil(args.items / 1500),
        "small": small,
        "large": large,
        "peak_large_over_small": round(
            float(large["peak_mb"])  # type: ignore[arg-type]
            / float(small["peak_mb"]),
            3,
        ),  # type: ignore[arg-type]
        "items_per_second": round(args.items / float(large["seconds"]), 0),  # type: ignore[arg-type]
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
