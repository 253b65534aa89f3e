"""Export-page memory: the largest page the client accepts, against an ordinary page, in the
same run.

    python bench/backup_page_bench.py [--page-mb MB] [--only CASE ...]

Each case is one plan backed up by a fresh process (``_measure.py backup``: export, gzip,
checksums, manifest, to a local folder); its figure is that process's peak RSS. The export
endpoint is ``backup_page_server.py`` in its own process, streaming its pages, so that its
memory is not counted. Cases:

* ``ordinary``: 1,500 items of ~1 KB, one page of ~1.5 MB (the baseline);
* ``largest``: 1,500 items in one page just under ``--page-mb`` (default: the client's cap);
* ``largest-utf8-astral``: the same page sent as raw UTF-8 with one emoji in it, which makes
  the decoded text take four bytes a character;
* ``empty-objects``: a page of that size made of ``{}`` (the JSON that grows most when parsed);
* ``large-items``: 300 items of 1 MB each, so that a page of 1,500 would be 300 MB: the
  client has to ask for fewer items a page, and the backup must still be complete.

Goal: every case complete (or refused with a reason) and its peak within a 512 MB function
with at least 40% to spare (under 300 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import HERE, measure
from backup_page_server import item

FUNCTION_MB = 512
ITEMS_PER_PAGE = 1500


def plan_shapes(page_bytes: int) -> dict[str, dict[str, object]]:
    """Each case's plan, sized so that a page of 1,500 items is just under ``page_bytes``."""
    bare = len(json.dumps(item({"description_bytes": 0}, 0, first_on_page=False))) + 2
    per_item = page_bytes // ITEMS_PER_PAGE - bare - 1
    return {
        "ordinary": {"items": ITEMS_PER_PAGE, "description_bytes": 600},
        "largest": {"items": ITEMS_PER_PAGE, "description_bytes": per_item},
        "largest-utf8-astral": {
            "items": ITEMS_PER_PAGE,
            "description_bytes": per_item,
            "raw_utf8": True,
            "astral": True,
        },
        "empty-objects": {
            "items": ITEMS_PER_PAGE,
            "description_bytes": 0,
            "empty_objects": per_item // 4,  # "{}, " a member
        },
        "large-items": {"items": 300, "description_bytes": 1024 * 1024},
    }


@contextmanager
def page_server(workdir: Path, plans: dict[str, dict[str, object]]) -> Iterator[dict[str, str]]:
    process = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "backup_page_server.py"),
            "--ca-file",
            str(workdir / "ca.pem"),
            "--plans",
            json.dumps(plans),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(timeout=60)


def requests_made(info: dict[str, str]) -> dict[str, int]:
    context = ssl.create_default_context(cafile=info["ca_file"])
    with urllib.request.urlopen(  # noqa: S310 - https to our own stand-in
        f"{info['base_url']}/_requests", context=context, timeout=60
    ) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def main() -> None:
    from achieveit_sync.client import MAX_EXPORT_PAGE_BYTES

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--page-mb",
        type=float,
        default=MAX_EXPORT_PAGE_BYTES / 2**20,
        help="page size to aim just under (default: the client's cap)",
    )
    parser.add_argument("--only", nargs="*", help="run only these cases (the baseline always)")
    args = parser.parse_args()
    page_bytes = int(args.page_mb * 2**20) - 256 * 1024
    shapes = plan_shapes(page_bytes)
    if args.only:
        shapes = {k: v for k, v in shapes.items() if k == "ordinary" or k in args.only}
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with page_server(work, shapes) as info:
            env = {
                **os.environ,
                "ACHIEVEIT_BASE_URL": info["base_url"],
                "ACHIEVEIT_API_KEY": info["api_key"],
                "ACHIEVEIT_CA_BUNDLE": info["ca_file"],
            }
            for case in shapes:
                results[case] = measure("backup", case, str(work / "out" / case), env=env)
            requests = requests_made(info)
    baseline = float(results["ordinary"]["peak_mb"])  # type: ignore[arg-type]
    report = {
        "page_cap_mb": round(MAX_EXPORT_PAGE_BYTES / 2**20, 1),
        "page_aimed_at_mb": round(page_bytes / 2**20, 2),
        "cases": {
            case: {
                **figures,
                "requests": requests.get(case, 0),
                "peak_over_ordinary": round(float(figures["peak_mb"]) / baseline, 2),  # type: ignore[arg-type]
                "share_of_512_mb": round(float(figures["peak_mb"]) / FUNCTION_MB, 2),  # type: ignore[arg-type]
            }
            for case, figures in results.items()
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
