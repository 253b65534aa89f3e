"""Ingest benchmarks: validation throughput, peak memory by file size, client CPU per
published row against a bare publisher script, and Lambda estimates.

    python bench/ingest_bench.py [--rows 1000000] [--small-rows 10000]
                                 [--publish-rows 200000] [--skip-publish]

Every figure is compared with a baseline measured in the same run:
* throughput: validate-only (``achieveit-sync validate``'s code path) against a plain
  ``csv.reader`` pass over the same file, best of three each; goal >= 0.40 of its speed;
  the same rows as a JSON array, against the CSV (goal: within 1.5x);
* memory: the peak RSS of a fresh process validating the small and the large file, and of
  one that only imports the package; goal: large within 20% of small, under 200 MB;
* publishing: the client's marginal CPU per row (CPU of a fresh process publishing
  ``--publish-rows`` rows minus one publishing 1,000, per extra row) into a sandbox in its
  own process, against ``peer_publisher.py`` (csv.DictReader, dicts, json.dumps, a POST per
  500 rows) on the same files and sandbox; goal <= 1.5x; JSON input against CSV (<= 1.5x);
* Lambda: time and cost of 100k and 1M rows at 512 MB and 1,769 MB (see ``lambda_table``).
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


def write_json(path: Path, rows: int) -> None:
    """The rows of ``write_csv`` as a JSON array, one object a line (as exporters write it)."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write("[\n")
        for n in range(1, rows + 1):
            document: dict[str, object] = {
                "externalId": f"BENCH-{n:06d}",
                "status": STATUSES[n % 5],
                "metricValue": (n * 7919) % 100000 / 100,
                "asOfDate": f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}",
            }
            if n % 3:
                document["comment"] = "Quarterly figure"
            handle.write(json.dumps(document) + (",\n" if n < rows else "\n"))
        handle.write("]\n")


def best_of(runs: int, action: object) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def validate_seconds(path: Path) -> float:
    from achieveit_sync.ingest.pipeline import FileSource, ingest_file

    def validate() -> None:
        source = FileSource(name=path.name, display_name=str(path), open=lambda: path.open("rb"))
        report = ingest_file(source, client=None)
        assert report.counts.rejected == 0, report.counts

    return best_of(3, validate)


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


def marginal(big: dict[str, object], small: dict[str, object], rows: int, small_rows: int) -> float:
    """CPU seconds per row beyond the fixed cost (imports, TLS set-up)."""
    extra = float(big["cpu_seconds"]) - float(small["cpu_seconds"])  # type: ignore[arg-type]
    return extra / (rows - small_rows)


LAMBDA_GB_SECOND_USD = 0.0000133334
"""arm64, us-east-1, first pricing tier (2026 list price)."""
LAMBDA_REQUEST_USD = 0.20 / 1_000_000
FULL_VCPU_MB = 1769
CHECKPOINT_WRITES_SECONDS = 0.016
"""Two DynamoDB writes per request (in flight, settled), ~8 ms each: an assumption."""


def lambda_table(cpu_per_row: float) -> list[dict[str, object]]:
    """Estimated time and cost of a file on the ingest Lambda: CPU time (measured here, per
    row, scaled by the function's share of a vCPU: memory / 1,769 MB) plus, for each request
    (sent one after another), the API's latency and the checkpoint writes. A run past 900 s
    continues in further invocations (each validates again: counted)."""
    table = []
    for rows in (100_000, 1_000_000):
        for memory_mb in (512, 1769):
            share = min(1.0, memory_mb / FULL_VCPU_MB)
            for batch_size in (500, 2000):
                for latency in (0.1, 0.3):
                    requests = -(-rows // batch_size)
                    cpu = rows * cpu_per_row / share
                    waiting = requests * (latency + CHECKPOINT_WRITES_SECONDS)
                    seconds = cpu + waiting
                    invocations = max(1, -(-seconds // 840))
                    seconds += (invocations - 1) * rows * cpu_per_row * 0.6 / share
                    cost = seconds * memory_mb / 1024 * LAMBDA_GB_SECOND_USD
                    table.append(
                        {
                            "rows": rows,
                            "memory_mb": memory_mb,
                            "batch_size": batch_size,
                            "api_latency_s": latency,
                            "requests": requests,
                            "cpu_seconds": round(cpu, 1),
                            "seconds": round(seconds, 1),
                            "invocations": int(invocations),
                            "usd": round(cost + invocations * LAMBDA_REQUEST_USD, 5),
                        }
                    )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=10_000)
    parser.add_argument("--publish-rows", type=int, default=200_000)
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

        medium, medium_json = work / "medium.csv", work / "medium.json"
        write_csv(medium, args.publish_rows)
        write_json(medium_json, args.publish_rows)
        csv_seconds, json_seconds = validate_seconds(medium), validate_seconds(medium_json)
        results["json_vs_csv_validate"] = {
            "rows": args.publish_rows,
            "csv_seconds": round(csv_seconds, 3),
            "json_seconds": round(json_seconds, 3),
            "json_over_csv": round(json_seconds / csv_seconds, 2),
        }
        print("JSON vs CSV (validate):", results["json_vs_csv_validate"], flush=True)

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
            tiny, tiny_json = work / "tiny.csv", work / "tiny.json"
            write_csv(tiny, 1000)
            write_json(tiny_json, 1000)
            with sandbox_process(work, f"BENCH:{args.rows}") as (_, env):
                figures = {
                    name: (measure(mode, str(big), env=env), measure(mode, str(few), env=env))
                    for name, mode, big, few in (
                        ("peer", "peer", medium, tiny),
                        ("csv", "publish", medium, tiny),
                        ("json", "publish", medium_json, tiny_json),
                    )
                }
                publish_small = measure("publish", str(small), env=env)
                publish_large = measure("publish", str(large), env=env)
            per_row = {
                name: marginal(big, few, args.publish_rows, 1000)
                for name, (big, few) in figures.items()
            }
            results["publish_cpu"] = {
                "rows": args.publish_rows,
                **{f"{name}_cpu_seconds": big["cpu_seconds"] for name, (big, _) in figures.items()},
                **{f"{name}_us_per_row": round(value * 1e6, 2) for name, value in per_row.items()},
                "csv_over_peer": round(per_row["csv"] / per_row["peer"], 2),
                "json_over_csv": round(per_row["json"] / per_row["csv"], 2),
            }
            print("publish CPU:", results["publish_cpu"], flush=True)
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
                "cpu_seconds": publish_large["cpu_seconds"],
                "rows_per_second": round(counts["published"] / float(publish_large["seconds"]), 0),  # type: ignore[arg-type]
                "status": publish_large["status"],
            }
            print("memory (publish):", results["memory_publish"], flush=True)
            print("end to end:", results["end_to_end"], flush=True)
            results["lambda"] = lambda_table(per_row["csv"])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
