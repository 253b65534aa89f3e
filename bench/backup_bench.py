"""Backup benchmark: a 100,000-item plan against a 10,000-item one, in the same run.

    python bench/backup_bench.py [--items 100000] [--small-items 10000]

Figures: requests made for the large plan (goal: exactly ceil(items / 1500)), peak RSS of a
fresh process backing up each plan (goal: large within 20% of small, under 200 MB), and wall
time. The large plan is also backed up without the plan history snapshot, in the same run:
the history write's cost in memory and time is the difference (goal: within 10% of the
peak without it), and the snapshot's size is reported. The sandbox runs in its own process,
so its memory is not counted.
"""

from __future__ import annotations

import argparse
import json
import math
import ssl
import tempfile
import urllib.request
from pathlib import Path

from _common import measure, sandbox_process


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
        plans = (f"LARGE:{args.items}", f"SMALL:{args.small_items}")
        with sandbox_process(work, *plans) as (info, env):
            small = measure("backup", "SMALL", str(work / "out"), env=env)
            large = measure("backup", "LARGE", str(work / "out"), env=env)
            large_requests = requests_for(info, "LARGE")
            without = measure("backup-without-history", "LARGE", str(work / "bare"), env=env)
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
        "large_without_history": without,
        "history_peak_over_without": round(
            float(large["peak_mb"]) / float(without["peak_mb"]),  # type: ignore[arg-type]
            3,
        ),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
