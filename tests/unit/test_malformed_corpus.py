"""A corpus of malformed inputs, each with the message a user must see.

File-level faults fail the whole file with one message; row-level faults reject that row
(naming line and field) while the valid rows of the same file still count.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass

import pytest
from achieveit_sync.ingest.reading import InvalidFileError, open_records
from achieveit_sync.ingest.validation import FileLayoutError, RejectedRow, Validator, ValidRow
from achieveit_sync.updates import UpdateKind

HEADER = "External ID,Status,Metric Value,As Of Date,Comment\n"
GOOD = "A-1,On Track,1,2026-11-01,fine\n"


@dataclass(frozen=True)
class FileCase:
    name: str
    content: bytes
    message: str


@dataclass(frozen=True)
class RowCase:
    name: str
    content: bytes
    line: int
    field: str
    message: str
    kind: UpdateKind | None = UpdateKind.PROGRESS


def gz(text: str) -> bytes:
    return gzip.compress(text.encode())


FILE_CASES = [
    FileCase("empty.csv", b"", "the file is empty (0 bytes)"),
    FileCase(
        "workbook.csv", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40, "this is an Excel workbook"
    ),
    FileCase(
        "old-excel.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 40, "old-style Excel"
    ),
    FileCase("report.csv", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
    FileCase("chart.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"),
    FileCase("photo.json", b"\xff\xd8\xff\xe0\x00\x10JFIF", "a JPEG image"),
    FileCase("truncated.csv.gz", gz(HEADER + GOOD * 200)[:-12], "the gzip data is truncated"),
    FileCase("not-gzip.csv.gz", (HEADER + GOOD).encode(), "named .gz but is not gzip"),
    FileCase("double.csv.gz", gzip.compress(gz(HEADER + GOOD)), "gzip-compressed twice"),
    FileCase("empty-inside.csv.gz", gzip.compress(b""), "the gzip file holds no data"),
    FileCase(
        "latin1.csv",
        (HEADER + "A-1,On Track,1,2026-11-01,caf\xe9\n").encode("latin-1"),
        "the byte 0xe9 cannot be decoded as UTF-8",
    ),
    FileCase("utf16-no-bom.csv", (HEADER + GOOD).encode("utf-16-le"), "NUL bytes"),
    FileCase(
        "object.json", b'{"externalId": "A-1", "status": "On Track"}', "starts with a single object"
    ),
    FileCase("scalar.json", b'"just a string"', "must hold an array of update objects"),
    FileCase(
        "truncated.json",
        b'[{"externalId": "A-1", "status": "On Track", "asOfDate": "2026-11-01"},',
        "the JSON ends before its closing ']'",
    ),
    FileCase("unclosed.json", b'[{"externalId": "A-1"}', "ends before its closing ']'"),
    FileCase(
        "missing-comma.json",
        b'[{"externalId": "A-1"} {"externalId": "A-2"}]',
        "expected ',' or ']'",
    ),
    FileCase("two-arrays.json", b"[]\n[]", "more data after the JSON array"),
    FileCase("trailing-comma.json", b'[{"externalId": "A-1"},]', "the JSON is invalid"),
    FileCase("deep.json", b"[" * 50_000, "nested too deeply"),
    FileCase("json-named-csv.csv", b'[{"externalId": "A-1"}]', "named .csv but holds JSON"),
    FileCase("long-line.csv", b"A" * 1_100_000, "a line is longer than 1,000,000 bytes"),
    FileCase(
        "unclosed-quote.csv",
        (HEADER + 'A-1,On Track,1,2026-11-01,"never closed\n' + "x" * 200_000).encode(),
        "a quotation mark opened on line 2 is never closed",
    ),
    FileCase("no-header-unknown-kind.csv", GOOD.encode(), "the kind of update cannot be told"),
]

ROW_CASES = [
    RowCase(
        "status-typo",
        (HEADER + "A-2,Done,,2026-11-01,\n").encode(),
        2,
        "status",
        "did you mean 'Achieved'?",
    ),
    RowCase(
        "status-british",
        (HEADER + "A-2,Cancelled,,2026-11-01,\n").encode(),
        2,
        "status",
        "spells it 'Canceled'",
    ),
    RowCase("status-missing", (HEADER + "A-2,,,2026-11-01,\n").encode(), 2, "status", "is missing"),
    RowCase(
        "percent",
        (HEADER + "A-2,On Track,20%,2026-11-01,\n").encode(),
        2,
        "metricValue",
        "write 0.2 for 20%",
    ),
    RowCase(
        "currency",
        (HEADER + 'A-2,On Track,"$1,200",2026-11-01,\n').encode(),
        2,
        "metricValue",
        "write the bare number: 1200",
    ),
    RowCase(
        "thousands",
        (HEADER + 'A-2,On Track,"1,200",2026-11-01,\n').encode(),
        2,
        "metricValue",
        "has thousands separators",
    ),
    RowCase(
        "decimal-comma",
        (HEADER + 'A-2,On Track,"1,5",2026-11-01,\n').encode(),
        2,
        "metricValue",
        "write 1.5",
    ),
    RowCase(
        "nan", (HEADER + "A-2,On Track,NaN,2026-11-01,\n").encode(), 2, "metricValue", "finite"
    ),
    RowCase(
        "infinity",
        (HEADER + "A-2,On Track,-inf,2026-11-01,\n").encode(),
        2,
        "metricValue",
        "finite",
    ),
    RowCase(
        "units",
        (HEADER + "A-2,On Track,12 kg,2026-11-01,\n").encode(),
        2,
        "metricValue",
        "is not a number",
    ),
    RowCase(
        "impossible-date",
        (HEADER + "A-2,On Track,,2026-02-30,\n").encode(),
        2,
        "asOfDate",
        "is not a real date",
    ),
    RowCase(
        "impossible-us-date",
        (HEADER + "A-2,On Track,,13/01/2026,\n").encode(),
        2,
        "asOfDate",
        "US dates put the month first",
    ),
    RowCase(
        "two-digit-year",
        (HEADER + "A-2,On Track,,11/30/26,\n").encode(),
        2,
        "asOfDate",
        "write the year in full",
    ),
    RowCase(
        "excel-serial",
        (HEADER + "A-2,On Track,,45991,\n").encode(),
        2,
        "asOfDate",
        "Excel date serial",
    ),
    RowCase(
        "bad-date-time",
        (HEADER + "A-2,On Track,,2026-11-01T25:99,\n").encode(),
        2,
        "asOfDate",
        "not a valid ISO-8601 date-time",
    ),
    RowCase("missing-date", (HEADER + "A-2,On Track,,,\n").encode(), 2, "asOfDate", "is missing"),
    RowCase(
        "missing-id", (HEADER + ",On Track,,2026-11-01,\n").encode(), 2, "externalId", "is missing"
    ),
    RowCase(
        "too-many-values",
        (HEADER + "A-2,On Track,,2026-11-01,a,b\n").encode(),
        2,
        "(row)",
        "has 6 values but the file has 5 columns",
    ),
    RowCase(
        "duplicate",
        (HEADER + GOOD + "A-1,At Risk,2,11/01/2026,again\n").encode(),
        3,
        "externalId",
        "line 2 already updates this item for 2026-11-01",
    ),
    RowCase(
        "metric-missing-value",
        b"External ID,Current Metric Value,As Of Date\nM-1,,2026-11-01\n",
        2,
        "metricValue",
        "a metric update needs a number",
        UpdateKind.METRIC,
    ),
    RowCase(
        "json-number-id",
        b'[{"externalId": 1.5, "status": "On Track", "asOfDate": "2026-11-01"}]',
        1,
        "externalId",
        "must be text",
    ),
    RowCase(
        "json-bool-metric",
        b'[{"externalId": "A", "status": "On Track", "metricValue": true, '
        b'"asOfDate": "2026-11-01"}]',
        1,
        "metricValue",
        "must be a number",
    ),
    RowCase(
        "json-date-number",
        b'[{"externalId": "A", "status": "On Track", "asOfDate": 20261101}]',
        1,
        "asOfDate",
        "must be a date as text",
    ),
    RowCase(
        "json-element-not-object",
        b"[5]",
        1,
        "(row)",
        "each array element must be one JSON object, found a number",
    ),
    RowCase("jsonl-bad-line", b'{"externalId": "A"\n', 1, "(row)", "not valid JSON"),
    RowCase("jsonl-array-line", b"[1, 2]\n", 1, "(row)", "found an array"),
]


def read_all(name: str, content: bytes, kind: UpdateKind | None) -> list[ValidRow | RejectedRow]:
    stream = open_records(io.BytesIO(content), name)
    return list(Validator(kind).validate(stream.records))


def test_the_corpus_is_at_least_thirty_inputs() -> None:
    assert len(FILE_CASES) + len(ROW_CASES) >= 30


@pytest.mark.parametrize("case", FILE_CASES, ids=lambda c: c.name)
def test_a_malformed_file_fails_with_one_clear_message(case: FileCase) -> None:
    with pytest.raises((InvalidFileError, FileLayoutError)) as error:
        read_all(case.name, case.content, None)

    assert case.message in str(error.value)
    if isinstance(error.value, InvalidFileError):
        assert error.value.hint  # says how to fix it


@pytest.mark.parametrize("case", ROW_CASES, ids=lambda c: c.name)
def test_a_malformed_row_is_rejected_naming_line_and_field_and_the_rest_still_count(
    case: RowCase,
) -> None:
    suffix = (
        ".jsonl"
        if case.name.startswith("jsonl")
        else (".json" if case.name.startswith("json") else ".csv")
    )
    good_row = b""
    if suffix == ".csv" and case.kind is UpdateKind.PROGRESS:
        good_row = b"Z-9,On Track,3,2026-11-05,still fine\n"

    results = read_all(case.name + suffix, case.content + good_row, case.kind)

    rejected = [r for r in results if isinstance(r, RejectedRow)]
    assert len(rejected) == 1
    [problem] = [p for p in rejected[0].problems if p.field == case.field]
    assert rejected[0].line == case.line
    assert case.message in f"{problem.reason} {problem.hint}"
    if good_row:
        assert isinstance(results[-1], ValidRow)
