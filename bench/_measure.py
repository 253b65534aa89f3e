"""Run one ingest in this process and print its peak memory and time as JSON.

Used by ingest_bench.py in fresh interpreters, so that each figure is one process's own.
    python bench/_measure.py imports
    python bench/_measure.py validate FILE
    python bench/_measure.py reject FILE   (validate, spooling rejected rows as the Lambda does)
    python bench/_measure.py publish FILE   (ACHIEVEIT_* variables point at a sandbox)
    python bench/_measure.py backup PLAN_ID OUT_DIR   (likewise; with the plan history)
    python bench/_measure.py backup-without-history PLAN_ID OUT_DIR   (the baseline)
    python bench/_measure.py peer FILE   (bench/peer_publisher.py, the bare script, likewise)

Each prints its CPU time (user + system, this process) beside its wall time.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def main() -> None:
    mode = sys.argv[1]
    started = time.perf_counter()
    from achieveit_sync.ingest.pipeline import FileSource, IngestOptions, ingest_file

    report = None
    spooled_mb = None
    if mode == "peer":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from peer_publisher import publish

        sent = publish(Path(sys.argv[2]))
        print(
            json.dumps(
                {
                    "mode": mode,
                    "peak_mb": round(_peak_rss_kb() / 1024, 1),
                    "seconds": round(time.perf_counter() - started, 2),
                    "cpu_seconds": _cpu_seconds(),
                    "counts": {"published": sent},
                }
            )
        )
        return
    if mode in ("backup", "backup-without-history"):
        print(
            json.dumps(
                {
                    "mode": mode,
                    **_backup(sys.argv[2], Path(sys.argv[3]), history=mode == "backup"),
                    "peak_mb": round(_peak_rss_kb() / 1024, 1),
                    "seconds": round(time.perf_counter() - started, 2),
                }
            )
        )
        return
    if mode != "imports":
        path = Path(sys.argv[2])
        source = FileSource(name=path.name, display_name=str(path), open=lambda: path.open("rb"))
        client = None
        if mode == "publish":
            from achieveit_sync.api_key import provider_for
            from achieveit_sync.client import AchieveItClient
            from achieveit_sync.settings import ApiKeySettings, ClientSettings

            client = AchieveItClient(
                ClientSettings.from_env(), provider_for(ApiKeySettings.from_env())
            )
        if mode == "reject":
            from achieveit_sync.ingest.outputs import RowsSpool

            with RowsSpool() as spool:
                report = ingest_file(source, client=None, rejected_sink=spool.sink)
                spooled = spool.contents(compressed=True)
                spooled.seek(0, 2)
                spooled_mb = round(spooled.tell() / 1024**2, 1)
        else:
            report = ingest_file(source, client=client, options=IngestOptions(batch_size=500))
    peak_kb = _peak_rss_kb()
    print(
        json.dumps(
            {
                "mode": mode,
                "peak_mb": round(peak_kb / 1024, 1),
                "seconds": round(time.perf_counter() - started, 2),
                "cpu_seconds": _cpu_seconds(),
                "counts": report.counts.as_dict() if report else None,
                "status": report.status.value if report else None,
                "file_error": (report.file_error or {}).get("reason") if report else None,
                "spooled_mb": spooled_mb,
            }
        )
    )


def _backup(plan_id: str, out: Path, *, history: bool) -> dict[str, object]:

    from achieveit_sync.api_key import provider_for
    from achieveit_sync.backup.run import BackupOptions, back_up_plans
    from achieveit_sync.backup.targets import LocalTarget
    from achieveit_sync.client import AchieveItClient
    from achieveit_sync.settings import ApiKeySettings, ClientSettings

    settings = ClientSettings.from_env()
    with AchieveItClient(settings, provider_for(ApiKeySettings.from_env())) as client:
        run = back_up_plans(
            [plan_id],
            client=client,
            target=LocalTarget(out),
            options=BackupOptions(write_history=history),
        )
    [outcome] = run.outcomes
    snapshots = list(out.glob(f"history/*/plan_id={plan_id}/*.jsonl.gz"))
    return {
        "status": outcome.status,
        "items": outcome.items,
        "error": outcome.error,
        "history_mb": round(sum(p.stat().st_size for p in snapshots) / 1024**2, 1),
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 3)


def _peak_rss_kb() -> int:
    """This process image's peak RSS. (ru_maxrss would also count the parent's memory
    before exec, which is inherited across fork on Linux.)"""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    main()
