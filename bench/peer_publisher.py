"""The peer for the client's CPU per published row: a bare, typical publisher script.

    python bench/peer_publisher.py FILE.csv   (ACHIEVEIT_* variables point at a sandbox)

csv.DictReader -> one dict per row -> json.dumps -> one POST per 500 rows, over one
requests.Session: what a person writes in an afternoon, with no validation, no duplicate
check, no checkpoints and no report. ``ingest_bench.py`` runs it beside ``publish`` on the
same file, against the same sandbox, and compares their CPU time.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import requests

BATCH = 500


def publish(path: Path) -> int:
    base = os.environ["ACHIEVEIT_BASE_URL"].rstrip("/")
    session = requests.Session()
    # Per request: a session's own verify loses to REQUESTS_CA_BUNDLE in the environment.
    verify = os.environ.get("ACHIEVEIT_CA_BUNDLE") or True
    session.headers["Authorization"] = f"API-KEY {os.environ['ACHIEVEIT_API_KEY']}"
    session.headers["Content-Type"] = "application/json"
    sent = part = 0
    batch: list[dict[str, object]] = []

    def post() -> None:
        nonlocal part
        part += 1
        response = session.post(
            f"{base}/api/progressupdates/{path.name}.part-{part:04d}.json",
            data=json.dumps(batch),
            timeout=60,
            verify=verify,
        )
        response.raise_for_status()

    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            document: dict[str, object] = {
                "externalId": row["External ID"],
                "status": row["Status"],
                "asOfDate": row["As Of Date"],
            }
            if row["Metric Value"]:
                document["metricValue"] = float(row["Metric Value"])
            if row["Comment"]:
                document["comment"] = row["Comment"]
            batch.append(document)
            if len(batch) == BATCH:
                post()
                sent += len(batch)
                batch = []
    if batch:
        post()
        sent += len(batch)
    return sent


if __name__ == "__main__":
    print(publish(Path(sys.argv[1])))
