"""The product's core loop, as the runbook tells a user to run it: take the rejected-rows
file, fix the values it names, drop it back under incoming/: exactly the fixed rows are
published. For every origin of rejection and every format."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from achieveit_sandbox import SandboxServer

from tests.integration.ingest_stack import IngestStack

pytestmark = pytest.mark.usefixtures("aws")

# (external ID, status, date): line 2 is fine, the others fail for the origin's reasons.
ROWS = {
    "validation": [
        ("PX-1", "On Track"),
        ("PX-1.3", "Sideways"),
        ("PX-2", "On Track"),
        ("PX-2.3", "Sideways"),
    ],
    "api": [
        ("PX-1", "On Track"),
        ("PX-9.8", "At Risk"),
        ("PX-2", "On Track"),
        ("PX-9.9", "At Risk"),
    ],
    "mixed": [
        ("PX-1", "On Track"),
        ("PX-9.9", "At Risk"),
        ("PX-2", "On Track"),
        ("PX-2.3", "Sideways"),
        ("PX-3", "Sideways"),
        ("PX-9.8", "On Track"),
    ],
}
FIXES = {"Sideways": "On Track", "PX-9.9": "PX-1.3", "PX-9.8": "PX-3"}


def encode(rows: list[tuple[str, str]], extension: str) -> bytes:
    dated = [(row[0], row[1], f"2026-11-{n + 1:02d}") for n, row in enumerate(rows)]
    if extension.startswith("json"):
        objects = [json.dumps({"externalId": i, "status": s, "asOfDate": d}) for i, s, d in dated]
        text = "[\n" + ",\n".join(objects) + "\n]\n" if extension == "json" else "\n".join(objects)
    else:
        header = "" if extension == "headerless.csv" else "External ID,Status,As Of Date\n"
        text = header + "".join(
            f"{i},{s},{d},\n" if header else f"{i},{s},,{d},\n" for i, s, d in dated
        )
    body = text.encode()
    return gzip.compress(body) if extension.endswith(".gz") else body


def fixed(text: str) -> str:
    for wrong, right in FIXES.items():
        text = text.replace(wrong, right)
    return text


@pytest.mark.parametrize("origin", sorted(ROWS))
@pytest.mark.parametrize("extension", ["csv", "headerless.csv", "csv.gz", "json", "jsonl"])
def test_a_fixed_rejected_file_publishes_exactly_the_fixed_rows(
    sandbox: SandboxServer, origin: str, extension: str
) -> None:
    # Given a file whose bad rows were rejected (by validation, by AchieveIt, or both)
    stack = IngestStack(sandbox)
    key = f"incoming/progress/{origin}.{extension}"
    stack.drop(key, encode(ROWS[origin], extension))
    stack.deliver()
    first = stack.report(key)
    bad = [n + 2 for n, row in enumerate(ROWS[origin]) if set(row) & set(FIXES)]
    if extension.startswith("json") or extension == "headerless.csv":
        bad = [line - (1 if extension != "json" else 0) for line in bad]
    rejected_key = f"rejected/{key}"
    rejected = stack.text(rejected_key)

    # Then the rejected file holds exactly those rows, in line order, under the header
    assert [int(n) for n in re.findall(r"line (\d+)(?: \(element \d+\))?: ", rejected)] == bad
    assert first["counts"]["rejected"] == len(bad)
    headers = {
        "headerless.csv": "External ID,Status,Metric Value,As Of Date,Comment,Error",
        "csv": "External ID,Status,As Of Date,Error",
        "csv.gz": "External ID,Status,As Of Date,Error",
    }
    if extension in headers:
        assert rejected.splitlines()[0] == headers[extension]

    # When the values it names are fixed and it is dropped back under incoming/
    back_key = key.replace(f"{origin}.", f"{origin}-fixed.")
    body = fixed(rejected).encode()
    stack.drop(back_key, gzip.compress(body) if extension.endswith(".gz") else body)
    before = len(sandbox.stored_updates())
    stack.deliver()

    # Then exactly the fixed rows are published, and nothing else is said about them
    report = stack.report(back_key)
    assert report["status"] == "completed", report["rejections"]
    assert report["counts"]["published"] == len(bad)
    assert report["warnings"] == []
    assert len(sandbox.stored_updates()) - before == len(bad)


def test_a_rejected_file_dropped_back_unfixed_keeps_one_error_column(
    sandbox: SandboxServer,
) -> None:
    stack = IngestStack(sandbox)
    stack.drop("incoming/progress/again.csv", encode(ROWS["mixed"], "csv"))
    stack.deliver()
    once = stack.text("rejected/incoming/progress/again.csv")

    stack.drop("incoming/progress/again-2.csv", once.encode())
    stack.deliver()
    twice = stack.text("rejected/incoming/progress/again-2.csv")

    assert twice.splitlines()[0] == once.splitlines()[0] == "External ID,Status,As Of Date,Error"
    assert len(twice.splitlines()) == len(once.splitlines())
    assert stack.report("incoming/progress/again-2.csv")["warnings"] == []


@pytest.mark.parametrize(
    ("encoding", "mark"),
    [("utf-8-sig", b"\xef\xbb\xbf"), ("utf-16", b"\xff\xfe")],
    ids=["excel-utf8", "excel-unicode-text"],
)
def test_a_rejected_csv_keeps_the_encoding_excel_saved_it_in(
    sandbox: SandboxServer, encoding: str, mark: bytes
) -> None:
    """Excel opens a UTF-8 file without a byte-order mark as Windows-1252: 'Café' would come
    back as 'CafÃ©', and a fixed file saved from that would send the wrong comment."""
    stack = IngestStack(sandbox)
    text = "External ID,Status,As Of Date,Comment\nPX-1.3,Sideways,2026-11-01,Café crème\n"
    stack.drop("incoming/progress/excel.csv", text.encode(encoding))
    stack.deliver()

    rejected = stack.raw("rejected/incoming/progress/excel.csv")

    assert rejected.startswith(mark)
    assert "Café crème" in rejected.decode(encoding)

    stack.drop(
        "incoming/progress/excel-fixed.csv", fixed(rejected.decode(encoding)).encode(encoding)
    )
    stack.deliver()
    report = stack.report("incoming/progress/excel-fixed.csv")
    assert report["counts"]["published"] == 1
    assert sandbox.stored_updates()[-1].comment == "Café crème"
