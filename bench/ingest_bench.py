"""Ingest benchmarks: validation throughput, peak memory by file size, rows/s into the sandbox.

    python bench/ingest_bench.py [--rows 1000000] [--small-rows 10000] [--skip-publish]

Every figure is compared with a baseline measured in the same run:
* throughput: validate-only (``achieveit-sync validate``'s code path) against a plain
  ``csv.reader`` pass over the same file, best of three each; goal >= 0.3 of its speed;
* memory: the peak RSS of a fresh process ingesting the small and the large file, and of
  one that only imports the package; goal: large within 20% of small, under 200 MB;
* end to end: rows per second published into a sandbox running in its own process.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

from _common import measure, sandbox_process

STATUSES = ("On Track", "Off Track", "At Risk", "Achieved", "Not Started")


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["External ID", "Status", "Metric Value", "As Of Date", "Comment"])
        for n in range(1, rows + 1):
            writer.writerow(
                [
                    f"BENCH-{n:06d}",
                    STATUSES[n % 5],
                    f"{(n * 7919) % 100000 / 100}",
                    f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}",
                    "Quarterly figure" if n % 3 else "",
                ]
            )


def best_of(runs: int, action: object) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def throughput(path: Path) -> dict[str, float]:
    from achieveit_sync.ingest.pipeline import FileSource, ingest_file

    def plain_csv() -> None:
        with path.open(newline="", encoding="utf-8") as handle:
            for _ in csv.reader(handle):
                pass

    def validate() -> None:
        source = FileSource(name=path.name, display_name=str(path), open=lambda: path.open("rb"))
        report = ingest_file(source, client=None)
        assert report.counts.rejected == 0, report.counts

    baseline = best_of(3, plain_csv)
    ours = best_of(3, validate)
    return {
        "csv_reader_seconds": round(baseline, 3),
        "validate_seconds": round(ours, 3),
        "ratio": round(baseline / ours, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=10_000)
    parser.add_argument("--skip-publish", action="store_true")
    args = parser.parse_args()
    results: dict[str, object] = {
        "rows": args.rows,
        "small_rows": args.small_rows,
        "python": sys.version.split()[0],
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small, large = work / "small.csv", work / "large.csv"
        write_csv(small, args.small_rows)
        write_csv(large, args.rows)
        results["large_file_mb"] = round(large.stat().st_size / 1024**2, 1)

        results["throughput"] = throughput(large)
        print("throughput:", results["throughput"], flush=True)

        bare = measure("imports")
        validate_small = measure("validate", str(small))
        validate_large = measure("validate", str(large))
        results["memory_validate"] = {
            "imports_only_mb": bare["peak_mb"],
            "small_mb": validate_small["peak_mb"],
            "large_mb": validate_large["peak_mb"],
            "large_over_small": round(
                float(validate_large["peak_mb"])  # type: ignore[arg-type]
                / float(validate_small["peak_mb"]),
                3,
            ),  # type: ignore[arg-type]
        }
        print("memory (validate):", results["memory_validate"], flush=True)

        if not args.skip_publish:
            with sandbox_process(work, f"BENCH:{args.rows}") as (_, env):
                publish_small = measure("publish", str(small), env=env)
                publish_large = measure("publish", str(large), env=env)
            counts = publish_large["counts"]
            assert isinstance(counts, dict)
            results["memory_publish"] = {
                "small_mb": publish_small["peak_mb"],
                "large_mb": publish_large["peak_mb"],
                "large_over_small": round(
                    float(publish_large["peak_mb"])  # type: ignore[arg-type]
                    / float(publish_small["peak_mb"]),
                    3,
                ),  # type: ignore[arg-type]
            }
            results["end_to_end"] = {
                "rows_published": counts["published"],
                "seconds": publish_large["seconds"],
                "rows_per_second": round(counts["published"] / float(publish_large["seconds"]), 0),  # type: ignore[arg-type]
                "status": publish_large["status"],
            }
            print("memory (publish):", results["memory_publish"], flush=True)
            print("end to end:", results["end_to_end"], flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
