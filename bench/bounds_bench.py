"""The ingest's bounds, measured: hostile files at and past each limit, in fresh processes.

    python bench/bounds_bench.py [--rows 1000000]

For each file: the verdict, wall time, peak RSS and (for rejected rows) what the spool in
/tmp holds. Baselines from the same run: the time of a bare ``csv.reader`` pass over the
1,000,000-row file, and the peak RSS of a process that only imports the package; the
Lambda's 512 MB is the budget every peak is held against.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from _common import measure

LAMBDA_MB = 512
HEADER = "External ID,Status,Metric Value,As Of Date,Comment\n"


def _rows(count: int, *, status: str = "On Track", metric: str = "42") -> str:
    return "".join(
        f"ID-{n:07d},{status},{metric},2026-{1 + n % 12:02d}-{1 + n % 28:02d},x\n"
        for n in range(count)
    )


def build(work: Path, rows: int) -> dict[str, Path]:
    files = {
        "1M valid rows (the row limit)": ("rows.csv", HEADER + _rows(rows)),
        "1M rows + 1 (past the row limit)": ("rows-over.csv", HEADER + _rows(rows + 1)),
        "1M rejected rows (all spooled to /tmp)": (
            "rejected.csv",
            HEADER + _rows(rows, status="Sideways"),
        ),
        "1M metric values 1e99999999": (
            "huge-metrics.csv",
            HEADER + _rows(rows, metric="1e99999999"),
        ),
    }
    paths = {}
    for label, (name, text) in files.items():
        path = work / name
        path.write_text(text, encoding="utf-8")
        paths[label] = path
    bomb = work / "blank-lines.csv.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as handle:  # 512 MiB of line breaks
        for _ in range(512):
            handle.write(b"\n" * 1024**2)
    paths[f"gzip of 512 MiB of blank lines ({bomb.stat().st_size // 1024} KB)"] = bomb
    spaces = work / "white-space.json.gz"
    with gzip.open(spaces, "wb", compresslevel=9) as handle:  # '[' and 600 MiB of spaces
        handle.write(b"[")
        for _ in range(600):
            handle.write(b" " * 1024**2)
    paths[f"JSON array of 600 MiB of white space ({spaces.stat().st_size // 1024} KB gzip)"] = (
        spaces
    )
    long_rows = work / "long-rows.csv.gz"
    comment = "c" * 900
    with gzip.open(long_rows, "wt", compresslevel=6, encoding="utf-8") as handle:
        handle.write(HEADER)
        for n in range(600_000):  # ~560 MiB of text
            handle.write(f"ID-{n:07d},On Track,1,2026-11-01,{comment}{n}\n")
    paths["600,000 rows of 930 bytes (past the 512 MiB byte limit)"] = long_rows
    return paths


def csv_reader_seconds(path: Path) -> float:
    started = time.perf_counter()
    with path.open(newline="", encoding="utf-8") as handle:
        for _ in csv.reader(handle):
            pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = build(work, args.rows)
        baseline_seconds = csv_reader_seconds(files["1M valid rows (the row limit)"])
        bare_mb = float(measure("imports")["peak_mb"])  # type: ignore[arg-type]
        print(f"baseline: csv.reader over 1M rows {baseline_seconds:.2f} s; imports {bare_mb} MB")
        print("| Input | Verdict | Time | x csv.reader | Peak RSS | Share of 512 MB | /tmp spool |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for label, path in files.items():
            mode = "reject" if "rejected" in label else "validate"
            result = measure(mode, str(path))
            verdict = result["file_error"] or (
                f"{result['status']}: {result['counts']['valid']:,} valid, "  # type: ignore[index]
                f"{result['counts']['rejected']:,} rejected"  # type: ignore[index]
            )
            peak = float(result["peak_mb"])  # type: ignore[arg-type]
            seconds = float(result["seconds"])  # type: ignore[arg-type]
            spooled = result.get("spooled_mb")
            print(
                f"| {label} | {verdict} | {seconds:.1f} s | {seconds / baseline_seconds:.1f} | "
                f"{peak:.0f} MB | {peak / LAMBDA_MB:.0%} | "
                f"{'' if spooled is None else f'{spooled} MB'} |",
                flush=True,
            )
        print(json.dumps({"baseline_seconds": baseline_seconds, "imports_mb": bare_mb}))


if __name__ == "__main__":
    main()
