"""Cold start: importing each Lambda handler module in fresh interpreters, against importing
boto3 and requests alone, in the same run.

    python bench/cold_start_bench.py [--runs 15]

Goal: each handler within 1.3x of the bare imports (the X-Ray SDK stays out unless tracing
is switched on; the runtime's clients are built on the first invocation, not at import).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBES = {
    "bare: import boto3, requests": "import boto3, requests",
    "functions/ingest/app.py": None,
    "functions/export/app.py": None,
}


def probe_code(label: str) -> str:
    body = PROBES[label] or (
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(ROOT / label)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)"
    )
    return (
        "import time\nstarted = time.perf_counter()\n"
        + body
        + "\nprint(time.perf_counter() - started)"
    )


def median_seconds(label: str, runs: int) -> float:
    code = probe_code(label)
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    # Interleave nothing across labels: each label's runs are back to back, first the
    # baseline, so that file-system caches are warm for every probe alike.
    for label in PROBES:
        median_seconds(label, 2)  # warm the caches
    baseline = median_seconds("bare: import boto3, requests", args.runs)
    results = {"runs": args.runs, "baseline_ms": round(baseline * 1000, 1)}
    for label in list(PROBES)[1:]:
        seconds = median_seconds(label, args.runs)
        results[label] = {"ms": round(seconds * 1000, 1), "ratio": round(seconds / baseline, 2)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
