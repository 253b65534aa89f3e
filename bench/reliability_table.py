"""Print the stress suites' figures (.stress/figures.jsonl) as RELIABILITY.md's table rows.

python bench/reliability_table.py [.stress/figures.jsonl]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HEADER = (
    "| Suite | Files | Deliveries | Valid rows | Faults / kills | Stored | Lost | "
    "Duplicates stored | Ambiguous (of which applied) | Max concurrent requests | "
    "Secret hits | Time |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def row(figures: dict[str, object]) -> str:
    events = []
    if figures["faults_injected"]:
        events.append(
            f"{figures['faults_injected']} faults, {figures['retries']} failed attempts retried"
        )
    if figures["kills"]:
        events.append(
            f"{figures['kills']} kills, {figures['redriven_from_dead_letters']} "
            "redriven from the DLQ"
        )
    return (
        f"| {figures['suite']} | {figures['files']} | {figures['deliveries']} | "
        f"{figures['valid_rows']:,} | {'; '.join(events) or '0'} | {figures['rows_stored']:,} | "
        f"{figures['rows_lost']} | {figures['duplicates_stored']} | "
        f"{figures['rows_reported_ambiguous']:,} ({figures['ambiguous_applied']:,}) | "
        f"{figures['max_concurrent_requests']} | {figures['secret_hits']} | "
        f"{figures['seconds']} s |"
    )


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ".stress/figures.jsonl")
    print(HEADER)
    for line in path.read_text().splitlines():
        print(row(json.loads(line)))


if __name__ == "__main__":
    main()
