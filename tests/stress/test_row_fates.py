"""Every data row of any file ends in exactly one fate, and the report says which.

Generated files mix valid rows, rows AchieveIt refuses, rows validation rejects, hostile
values and, sometimes, hostile bytes; they go through the real ingest (moto + the sandbox)
while the sandbox injects faults (429, 503, connections reset before and after processing).
Afterwards each data line is exactly one of:

* published: stored by AchieveIt exactly once;
* rejected with a reason (by validation or by AchieveIt): listed, never stored;
* ambiguous: listed with the request that carried it, and the sandbox did receive that
  request (a row is "may have been applied" only if its bytes may have arrived); stored
  at most once;
* not sent: never stored, and the report says why (a file error or a stop reason).

The counts add up, and a report exists for every file.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from achieveit_sandbox import Fault, FaultPlan, SandboxServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import RECOGNISABLE_KEY
from tests.integration.conftest import SandboxFactory
from tests.integration.ingest_stack import IngestStack

NO_METRIC = ["PX-1", "PX-1.3", "PX-2", "PX-2.3", "PX-3"]
WITH_METRIC = ["PX-1.1", "PX-1.2", "PX-2.1", "PX-2.2", "PX-3.1"]
KINDS = ["valid"] * 3 + ["valid_metric"] * 2 + ["unknown_id", "missing_metric", "invalid"]
EXAMPLES = 250 if os.environ.get("STRESS_SCALE") == "soak" else 25
INVALID_CELLS = [
    {"status": "Sideways"},
    {"asOfDate": "31/31/2026"},
    {"metricValue": "20%"},
    {"metricValue": "1e5000"},
    {"metricValue": "0.12345678901234567"},
    {"comment": "\ud800"},
]
_examples = itertools.count()


@dataclass
class Row:
    kind: str
    fields: dict[str, Any]
    line: int = 0


@dataclass
class GeneratedFile:
    extension: str
    rows: list[Row]
    blank_after: set[int] = field(default_factory=set)
    hostile_tail: bool = False


@st.composite
def generated_files(draw: st.DrawFn) -> GeneratedFile:
    extension = draw(st.sampled_from(["csv", "csv.gz", "json", "jsonl"]))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=40))
    rows = []
    for kind in kinds:
        fields: dict[str, Any] = {"status": draw(st.sampled_from(["On Track", "at risk"]))}
        if kind in ("valid", "invalid"):
            fields["externalId"] = draw(st.sampled_from(NO_METRIC))
        elif kind == "unknown_id":
            fields["externalId"] = f"ZZ-{draw(st.integers(1, 999))}"
        else:
            fields["externalId"] = draw(st.sampled_from(WITH_METRIC))
        if kind == "valid_metric":
            fields["metricValue"] = str(draw(st.decimals(-1e6, 1e6, places=3)))
        if draw(st.booleans()):
            fields["comment"] = draw(st.sampled_from(["=1+1", "-fine", "@ops", "ok, done"]))
        if kind == "invalid":
            fields.update(draw(st.sampled_from(INVALID_CELLS)))
            if "\ud800" in str(fields.get("comment")) and not extension.startswith("json"):
                fields["comment"] = "CSV cannot carry a lone surrogate"
                fields["status"] = "Done"
        rows.append(Row(kind, fields))
    blanks = draw(st.sets(st.integers(0, len(rows) - 1), max_size=3))
    hostile_tail = draw(st.integers(0, 9)) == 7  # 0 is what hypothesis tries first
    return GeneratedFile(extension, rows, blanks if extension == "csv" else set(), hostile_tail)


def encode(generated: GeneratedFile, first_date: date) -> bytes:
    """The file's bytes; sets each row's line number and unique as-of date."""
    for index, row in enumerate(generated.rows):
        row.fields["asOfDate"] = (
            row.fields.get("asOfDate") or (first_date + timedelta(days=index)).isoformat()
        )
    if generated.extension.startswith("csv"):
        lines = ["External ID,Status,Metric Value,As Of Date,Comment"]
        for index, row in enumerate(generated.rows):
            cells = [str(row.fields.get(n, "")) for n in ("externalId", "status", "metricValue")]
            cells += [row.fields["asOfDate"], str(row.fields.get("comment", ""))]
            lines.append(",".join(f'"{c}"' if "," in c else c for c in cells))
            row.line = len(lines)
            if index in generated.blank_after:
                lines.append("")
        body = ("\r\n".join(lines) + "\r\n").encode()
    elif generated.extension == "json":
        for index, row in enumerate(generated.rows):
            row.line = index + 2
        body = ("[\n" + ",\n".join(_json(r.fields) for r in generated.rows) + "\n]\n").encode()
    else:
        for index, row in enumerate(generated.rows):
            row.line = index + 1
        body = "\n".join(_json(r.fields) for r in generated.rows).encode()
    if generated.hostile_tail:
        body += b"\xff\xfe broken"
    return gzip.compress(body) if generated.extension.endswith(".gz") else body


def _json(fields: dict[str, Any]) -> str:
    return json.dumps(fields)  # escapes a lone surrogate as \ud800


@pytest.fixture
def fates_stack(start_sandbox: SandboxFactory, aws: None) -> IngestStack:
    return IngestStack(start_sandbox(), batch_size=7)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    generated=generated_files(),
    seed=st.integers(0, 2**16),
    outage=st.sampled_from([1.0, 5.0, 8.0]),  # x8: retries run out, messages reach the DLQ
)
def test_every_row_ends_in_exactly_one_fate(
    fates_stack: IngestStack, generated: GeneratedFile, seed: int, outage: float
) -> None:
    stack, sandbox = fates_stack, fates_stack.sandbox
    number = next(_examples)
    first_date = date(2000, 1, 1) + timedelta(days=100 * number)
    key = f"incoming/progress/fates-{number}.{generated.extension}"
    sandbox.set_faults(
        FaultPlan(
            rates={
                Fault.THROTTLE: 0.05,
                Fault.UNAVAILABLE: 0.1 * outage,
                Fault.RESET_BEFORE: 0.05,
                Fault.RESET_AFTER: 0.05,
            },
            seed=seed,
            retry_after="0",
        )
    )
    stack.drop(key, encode(generated, first_date))

    stack.deliver(rounds=40, must_drain=False)

    report = stack.report(key)  # every file gets a report
    counts = report["counts"]
    assert counts["rowsRead"] == counts["valid"] + counts["rejectedByValidation"]
    assert counts["valid"] == (
        counts["published"] + counts["rejectedByApi"] + counts["ambiguous"] + counts["notSent"]
    )
    assert counts["rejected"] == counts["rejectedByValidation"] + counts["rejectedByApi"]

    rejected = {r["line"] for r in report["rejections"]}
    ambiguous = {r["line"]: r["request"] for r in report["ambiguousRows"]}
    assert len(rejected) == counts["rejected"]
    assert len(ambiguous) == counts["ambiguous"]
    assert not rejected & set(ambiguous)

    received = {request.path.rsplit("/", 1)[-1] for request in sandbox.recorded_requests()}
    for line, request in ambiguous.items():
        assert request in received, f"line {line} called ambiguous, but {request} never arrived"

    stored = _stored_by_key(sandbox, first_date)
    file_failed = report["fileError"] is not None or report["stopReason"] is not None
    if counts["notSent"]:
        assert file_failed, "rows not sent without a reason"
    by_line = {row.line: row for row in generated.rows}
    for row in generated.rows:
        times_stored = stored.get((row.fields["externalId"], row.fields["asOfDate"]), 0)
        assert times_stored <= 1, f"line {row.line} stored {times_stored} times"
        if row.line in rejected:
            assert times_stored == 0, f"line {row.line} rejected, yet stored"
            assert row.kind not in ("valid", "valid_metric"), f"line {row.line} rejected"
        elif row.line in ambiguous:
            assert row.kind != "invalid"
        elif row.kind in ("valid", "valid_metric") and not file_failed:
            assert times_stored == 1, f"line {row.line} neither stored nor explained"
        elif not file_failed:
            pytest.fail(f"line {row.line} ({row.kind}) has no fate: {report['status']}")
    published_lines = [
        line
        for line, row in by_line.items()
        if line not in ambiguous
        and stored.get((row.fields["externalId"], row.fields["asOfDate"]), 0) == 1
    ]
    assert len(published_lines) == counts["published"]
    assert RECOGNISABLE_KEY not in json.dumps(report)
    if report["outputs"].get("rejected"):
        text = stack.text(report["outputs"]["rejected"].split("/", 3)[3])
        named = re.findall(r"line (\d+)(?: \(element \d+\))?: ", text)
        assert sorted(int(n) for n in named) == sorted(rejected)


def _stored_by_key(sandbox: SandboxServer, first_date: date) -> dict[tuple[str, str], int]:
    last_date = first_date + timedelta(days=99)
    stored: dict[tuple[str, str], int] = {}
    for update in sandbox.stored_updates():
        if first_date <= update.as_of_date <= last_date:
            key = (update.external_id, update.as_of_date.isoformat())
            stored[key] = stored.get(key, 0) + 1
    return stored
