"""Cold start: what a fresh Lambda container does before its first event, per handler,
against a bare handler that imports boto3 and requests and builds the same AWS clients, in
the same run.

    python bench/cold_start_bench.py [--runs 15]

Two probes per function, each in fresh interpreters:
* import: importing the handler module (Lambda's init phase). The handlers import nothing
  but the standard library then: everything is built on the first invocation.
* first build: the import plus what the first invocation builds before it reads its event
  (settings, boto3 session and clients, the AchieveIt client, Powertools Logger/Metrics).
  Its peer is a bare handler that imports boto3 and requests and builds the same clients.

Goal: each first build within 1.3x of its bare peer (the X-Ray SDK stays out unless
tracing is switched on).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "ACHIEVEIT_API_KEY_SECRET": "achieveit-sync/api-key",
    "INGEST_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
    "IDEMPOTENCY_TABLE": "idempotency",
    "CHECKPOINT_TABLE": "checkpoints",
    "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t",
    "BACKUP_BUCKET": "backups-bucket",
    "PLAN_IDS": "PX-2027",
    "POWERTOOLS_METRICS_NAMESPACE": "AchieveItSync",
}
CLIENTS = {
    "ingest": ("dynamodb", "secretsmanager", "s3", "sqs", "sns"),
    "export": ("secretsmanager", "s3"),
}
BUILDERS = {
    "ingest": (
        "from achieveit_sync.ingest.lambda_adapter import INGEST_SERVICE_NAME as SERVICE\n"
        "from achieveit_sync.ingest.lambda_adapter import build_ingest_lambda as build\n"
        "from achieveit_sync.settings import IngestSettings as Settings\n"
    ),
    "export": (
        "from achieveit_sync.backup.lambda_adapter import EXPORT_SERVICE_NAME as SERVICE\n"
        "from achieveit_sync.backup.lambda_adapter import build_backup_lambda as build\n"
        "from achieveit_sync.settings import BackupSettings as Settings\n"
    ),
}


def import_handler(function: str) -> str:
    path = ROOT / "functions" / function / "app.py"
    return (
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(path)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
    )


def first_build(function: str) -> str:
    # What functions/<function>/app.py does on its first invocation, before the event.
    return (
        import_handler(function)
        + BUILDERS[function]
        + "from achieveit_sync.observability import lambda_entry_point\n"
        "lambda_entry_point(SERVICE, lambda: build(Settings.from_env()).handle)\n"
    )


def bare_peer(function: str) -> str:
    clients = ", ".join(repr(name) for name in CLIENTS[function])
    return (
        "import boto3, requests\n"
        "session = boto3.session.Session()\n"
        f"clients = [session.client(name) for name in ({clients},)]\n"
        "http = requests.Session()\n"
    )


def timed(body: str) -> str:
    return (
        "import time\nstarted = time.perf_counter()\n"
        + body
        + ("\nprint(time.perf_counter() - started)")
    )


def median_seconds(body: str, runs: int) -> float:
    environment = {**os.environ, **ENVIRONMENT}
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", timed(body)],
                capture_output=True,
                text=True,
                check=True,
                env=environment,
            ).stdout
        )
        for _ in range(runs)
    ]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    results: dict[str, object] = {"runs": args.runs}
    for function in ("ingest", "export"):
        probes = {
            "bare peer": bare_peer(function),
            "import": import_handler(function),
            "first build": first_build(function),
        }
        for body in probes.values():
            median_seconds(body, 2)  # warm the file-system caches alike
        measured = {label: median_seconds(body, args.runs) for label, body in probes.items()}
        peer = measured["bare peer"]
        results[function] = {
            label: {"ms": round(seconds * 1000, 1), "ratio": round(seconds / peer, 2)}
            for label, seconds in measured.items()
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
