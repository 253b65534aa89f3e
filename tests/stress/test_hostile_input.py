"""Hostile input: whatever bytes arrive, the reader and validator answer with a file error
or row verdicts, never an unhandled exception, in bounded memory; reports and rejected files
neutralise spreadsheet formulas."""

from __future__ import annotations

import gzip
import io
import json
import tempfile
import tracemalloc

import pytest
from achieveit_sync.ingest.pipeline import FileSource, ingest_file
from achieveit_sync.ingest.reading import InvalidFileError, ReadLimits, open_records
from achieveit_sync.ingest.report import FileStatus
from achieveit_sync.ingest.validation import FileLayoutError, RejectedRow, Validator, ValidRow
from achieveit_sync.updates import UpdateKind
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NAMES = ["f.csv", "f.json", "f.jsonl", "f.csv.gz", "f.txt", "f"]
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def verdicts(
    content: bytes,
    name: str,
    kind: UpdateKind | None = UpdateKind.PROGRESS,
    limits: ReadLimits | None = None,
) -> list:
    """Every verdict, or the file error: the only two acceptable outcomes."""
    try:
        stream = open_records(io.BytesIO(content), name, limits)
        return list(Validator(kind).validate(stream.records))
    except (InvalidFileError, FileLayoutError) as exc:
        return [exc]


@SETTINGS
@given(content=st.binary(max_size=4096), name=st.sampled_from(NAMES))
def test_random_bytes_never_crash(content: bytes, name: str) -> None:
    for result in verdicts(content, name):
        assert isinstance(result, ValidRow | RejectedRow | InvalidFileError | FileLayoutError)
        if isinstance(result, InvalidFileError):
            assert result.reason
            assert result.hint


cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@SETTINGS
@given(rows=st.lists(st.lists(cells, max_size=8), max_size=30), header=st.booleans())
def test_random_csv_structures_give_a_verdict_per_row(rows: list[list[str]], header: bool) -> None:
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(["External ID", "Status", "Metric Value", "As Of Date", "Comment"])
    writer.writerows(rows)

    results = verdicts(buffer.getvalue().encode(), "f.csv")

    if len(results) == 1 and isinstance(results[0], InvalidFileError | FileLayoutError):
        return
    # One verdict per row at most (blank and untouched rows get none), in line order.
    lines = [result.line for result in results]
    assert lines == sorted(set(lines))
    assert len(results) <= len(rows)
    for result in results:
        if isinstance(result, RejectedRow):
            assert all(p.reason and p.hint for p in result.problems)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | cells,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(cells, children, max_size=4),
    max_leaves=20,
)


@SETTINGS
@given(document=json_values, lines=st.booleans())
def test_random_json_structures_give_a_verdict_or_a_file_error(
    document: object, lines: bool
) -> None:
    elements = document if isinstance(document, list) else [document]
    if lines:
        content = "\n".join(json.dumps(d) for d in elements).encode()
        results = verdicts(content, "f.jsonl")
    else:
        results = verdicts(json.dumps(document).encode(), "f.json")

    if len(results) == 1 and isinstance(results[0], InvalidFileError | FileLayoutError):
        assert results[0].args[0]  # a file error says what is wrong
        return
    # Otherwise every element is one verdict: a valid row or a rejection with its reason.
    assert len(results) == len(elements)
    for result in results:
        assert isinstance(result, ValidRow | RejectedRow)


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "deep.json", "nested too deeply"),
        (b'[{"externalId": "' + b"x" * 3_000_000 + b'"}]', "huge.json", "longer than"),
        (b"External ID,Status,As Of Date\n" + b"a" * 2_000_000 + b"\n", "huge.csv", "longer than"),
        (b"," * 1_000_001 + b"\n", "columns.csv", "longer than"),
    ],
)
def test_oversized_structures_fail_as_files(content: bytes, name: str, message: str) -> None:
    [error] = verdicts(content, name)

    assert isinstance(error, InvalidFileError)
    assert message in str(error)


def test_a_gzip_bomb_is_refused_part_way() -> None:
    row = b"A-1,On Track,1,2026-11-01,x\n"
    bomb = gzip.compress(b"External ID,Status,Metric Value,As Of Date,Comment\n" + row * 400_000)

    [error] = verdicts(bomb, "bomb.csv.gz", limits=ReadLimits(max_bytes=5 * 1024 * 1024))

    assert isinstance(error, InvalidFileError)
    assert "inflates to more than" in str(error)


def test_many_columns_under_the_line_limit_stay_bounded() -> None:
    header = ",".join(f"col{n}" for n in range(60_000)) + ",External ID,Status,As Of Date\n"
    body = (header + "," * 60_000 + "A,On Track,2026-11-01\n").encode()

    tracemalloc.start()
    results = verdicts(body, "wide.csv")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert isinstance(results[0], ValidRow)
    assert peak < 64 * 1024 * 1024


def test_control_characters_are_rejected_with_a_reason() -> None:
    [result] = verdicts(b"External ID,Status,As Of Date\nA\x07B,On Track,2026-11-01\n", "f.csv")

    assert isinstance(result, RejectedRow)
    assert "control character" in result.problems[0].reason


def test_formula_injection_is_neutralised_in_report_and_rejected_file(tmp_path: object) -> None:
    content = (
        b"External ID,Status,As Of Date,Comment\n=cmd|' /C calc'!A0,Nope,2026-11-01,@SUM(1+1)\n"
    )
    sink = io.BytesIO()
    source = FileSource(name="evil.csv", display_name="evil.csv", open=lambda: io.BytesIO(content))

    report = ingest_file(source, client=None, rejected_sink=sink)

    assert report.status is FileStatus.VALIDATED
    values = [r["value"] for r in report.rejections]
    assert all(not v.startswith(("=", "@", "+")) for v in values)
    rejected = sink.getvalue().decode()
    assert "'=cmd|' /C calc'!A0" in rejected
    assert ",'@SUM(1+1)," in rejected


def test_memory_stays_bounded_on_a_large_hostile_file() -> None:
    rows = b"".join(
        b'=HYPERLINK("x"),Sideways,abc,31/31/31,' + b"y" * 200 + b"\n" for _ in range(50_000)
    )
    content = b"External ID,Status,Metric Value,As Of Date,Comment\n" + rows

    source = FileSource(name="f.csv", display_name="f.csv", open=lambda: io.BytesIO(content))
    with tempfile.TemporaryFile() as rejected:  # the Lambda spools rejected rows to disk
        tracemalloc.start()
        report = ingest_file(source, client=None, rejected_sink=rejected)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    assert report.counts.rejected == 50_000
    # The input itself is 12 MB (held by the test); everything else stays well under it.
    assert peak < 12 * 1024 * 1024
