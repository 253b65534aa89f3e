"""Reading every supported format and encoding, and the per-row rules, on valid input."""

from __future__ import annotations

import gzip
import io
import json
from datetime import date
from decimal import Decimal

import pytest
from achieveit_sync.ingest.reading import FileFormat, open_records
from achieveit_sync.ingest.report import FileStatus
from achieveit_sync.ingest.routing import kind_for_key
from achieveit_sync.ingest.row_files import RowsFileWriter
from achieveit_sync.ingest.validation import RejectedRow, SeenKeys, Validator, ValidRow
from achieveit_sync.spreadsheet import neutralise
from achieveit_sync.updates import MetricUpdate, ProgressUpdate, Status, UpdateKind

ROWS = [
    ("PX-1", "on track", "0.5", "2026-11-01", "fine"),
    ("PX-2", "AT RISK", "", "11/30/2026", 'quoted, "with" comma\nand newline'),
]


def csv_text(header: bool = True, newline: str = "\r\n") -> str:
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    if header:
        writer.writerow(["External ID", "Status", "Metric Value", "As Of Date", "Comment"])
    writer.writerows(ROWS)
    return buffer.getvalue()


def validate(name: str, content: bytes, kind: UpdateKind | None = UpdateKind.PROGRESS):
    stream = open_records(io.BytesIO(content), name)
    validator = Validator(kind)
    return stream, validator, list(validator.validate(stream.records))


EXPECTED = [
    ProgressUpdate("PX-1", Status.ON_TRACK, date(2026, 11, 1), Decimal("0.5"), "fine"),
    ProgressUpdate(
        "PX-2", Status.AT_RISK, date(2026, 11, 30), None, 'quoted, "with" comma\nand newline'
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "encoding", "file_format"),
    [
        ("a.csv", csv_text().encode(), "UTF-8", FileFormat.CSV),
        ("excel.csv", b"\xef\xbb\xbf" + csv_text().encode(), "UTF-8 with BOM", FileFormat.CSV),
        ("utf16.csv", csv_text().encode("utf-16"), "UTF-16 LE with BOM", FileFormat.CSV),
        (
            "utf16be.csv",
            b"\xfe\xff" + csv_text().encode("utf-16-be"),
            "UTF-16 BE with BOM",
            FileFormat.CSV,
        ),
        ("a.csv.gz", gzip.compress(csv_text().encode()), "UTF-8", FileFormat.CSV),
        ("unix.csv", csv_text(newline="\n").encode(), "UTF-8", FileFormat.CSV),
        ("no-extension", csv_text().encode(), "UTF-8", FileFormat.CSV),
    ],
)
def test_csv_in_every_encoding_gives_the_same_updates(
    name: str, content: bytes, encoding: str, file_format: FileFormat
) -> None:
    stream, _, results = validate(name, content)

    assert [r.update for r in results if isinstance(r, ValidRow)] == EXPECTED
    assert (stream.encoding, stream.file_format) == (encoding, file_format)
    assert [r.line for r in results] == [2, 3]


def test_a_headerless_csv_uses_the_documented_order() -> None:
    _, validator, results = validate("a.csv", csv_text(header=False).encode())

    assert [r.update for r in results if isinstance(r, ValidRow)] == EXPECTED
    assert validator.layout is not None
    assert validator.layout.header is None


def test_a_header_in_any_order_and_spelling_is_understood() -> None:
    content = (
        b"as of date , COMMENT,externalID,current metric value,Status,Item Name\n"
        b"2026-11-01,hi,PX-9,7,achieved,Reduce wait times\n"
    )

    _, validator, [result] = validate("a.csv", content)

    assert isinstance(result, ValidRow)
    assert result.update == ProgressUpdate(
        "PX-9", Status.ACHIEVED, date(2026, 11, 1), Decimal(7), "hi"
    )
    assert validator.warnings == []  # "Item Name" is the template's informational column


def test_unknown_columns_and_fields_do_not_reject_rows_but_are_named_as_ignored() -> None:
    _, csv_validator, csv_results = validate(
        "a.csv", b"External ID,Status,As Of Date,Owner\nPX-1,On Track,2026-11-01,me\n"
    )
    _, json_validator, json_results = validate(
        "a.json",
        b'[{"externalID": "PX-1", "status": "On Track", "asOfDate": "2026-11-01", "owner": "me"}]',
    )

    assert all(isinstance(r, ValidRow) for r in csv_results + json_results)
    assert csv_validator.warnings == [
        "unknown column(s) ignored: 'Owner'; rename a column to its documented name to send "
        "it, or delete it"
    ]
    assert json_validator.warnings == ["unknown field 'owner' ignored (first seen on line 1)"]
    assert csv_validator.ignored == ["'Owner'"]
    assert json_validator.ignored == ["'owner'"]


def test_blank_lines_are_skipped_and_counted() -> None:
    content = (
        b"External ID,Status,As Of Date\n\nPX-1,On Track,2026-11-01\n , ,\n\n"
        b"PX-2,On Track,2026-11-01\n"
    )

    stream, _, results = validate("a.csv", content)

    assert [r.line for r in results] == [3, 6]
    assert stream.blank_lines == 3


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"External ID,Status,As Of Date\nPX-1,On Track,2026-11-01\n", UpdateKind.PROGRESS),
        (b"External ID,Metric Value,As Of Date\nPX-1,3,2026-11-01\n", UpdateKind.METRIC),
        (
            b'[{"externalId": "PX-1", "metricValue": 3, "asOfDate": "2026-11-01"}]',
            UpdateKind.METRIC,
        ),
    ],
)
def test_the_kind_is_inferred_from_the_columns(content: bytes, kind: UpdateKind) -> None:
    name = "a.json" if content.startswith(b"[") else "a.csv"

    _, validator, [result] = validate(name, content, kind=None)

    assert validator.kind is kind
    assert isinstance(result, ValidRow)


def test_json_and_json_lines_keep_their_line_numbers() -> None:
    array = (
        b'[\n  {"externalId": "A", "metricValue": 1, "asOfDate": "2026-11-01"},\n\n'
        b'  {"externalId": "B",\n   "metricValue": 2.5e1, "asOfDate": "2026-11-02"}\n]'
    )
    lines = (
        b'{"externalId": "A", "metricValue": 1, "asOfDate": "2026-11-01"}\n\n'
        b'{"externalId": "B", "metricValue": "25", "asOfDate": "2026-11-02T08:00:00Z"}\n'
    )

    for name, content in (("a.json", array), ("a.ndjson", lines)):
        _, _, results = validate(name, content, kind=UpdateKind.METRIC)
        assert [r.line for r in results] == ([2, 4] if name == "a.json" else [1, 3])
        assert [r.update for r in results if isinstance(r, ValidRow)] == [
            MetricUpdate("A", Decimal(1), date(2026, 11, 1)),
            MetricUpdate(
                "B", Decimal("25.0") if name == "a.json" else Decimal(25), date(2026, 11, 2)
            ),
        ]


def test_a_json_array_split_across_read_chunks_parses_completely() -> None:
    element = {
        "externalId": "X",
        "status": "On Track",
        "asOfDate": "2026-11-01",
        "comment": "y" * 3000,
    }
    documents = [dict(element, externalId=f"X-{n}") for n in range(300)]  # ~1 MB

    _, _, results = validate("big.json", json.dumps(documents).encode())

    assert len(results) == 300
    assert all(isinstance(r, ValidRow) for r in results)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", Decimal(42)),
        ("-3.5", Decimal("-3.5")),
        (".5", Decimal("0.5")),
        ("1e3", Decimal("1e3")),
        ("+7", Decimal(7)),
        (" 12 ", Decimal(12)),
    ],
)
def test_plain_numbers_are_accepted_exactly(text: str, expected: Decimal) -> None:
    content = f"External ID,Status,Metric Value,As Of Date\nA,On Track,{text},2026-11-01\n"

    _, _, [result] = validate("a.csv", content.encode())

    assert isinstance(result, ValidRow)
    assert result.update.metric_value == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01", date(2026, 11, 1)),
        ("2026-11-01T23:30:00-05:00", date(2026, 11, 1)),
        ("2026-11-01 08:00", date(2026, 11, 1)),
        ("1/5/2026", date(2026, 1, 5)),
        ("02/29/2028", date(2028, 2, 29)),
    ],
)
def test_dates_iso_or_us_are_sent_as_iso(text: str, expected: date) -> None:
    content = f"External ID,Status,As Of Date\nA,On Track,{text}\n"

    _, _, [result] = validate("a.csv", content.encode())

    assert isinstance(result, ValidRow)
    assert result.update.as_of_date == expected


def test_one_row_can_carry_several_problems_and_all_are_reported() -> None:
    _, _, [result] = validate(
        "a.csv", b"External ID,Status,Metric Value,As Of Date\n,Finished,20%,31/12/2026\n"
    )

    assert isinstance(result, RejectedRow)
    assert [p.field for p in result.problems] == ["externalId", "status", "metricValue", "asOfDate"]


def test_seen_keys_are_exact_within_and_across_buckets() -> None:
    seen = SeenKeys()
    # Many keys per bucket (same low 16 bits), negative keys, and plain spread keys.
    keys = [n << 16 for n in range(1, 300)] + [-(n << 16) for n in range(1, 300)]
    keys += list(range(1, 3000))

    firsts = [seen.first_position(key, line) for line, key in enumerate(keys, start=1)]
    again = [seen.first_position(key, 10**9) for key in keys]

    assert firsts == [None] * len(keys)
    assert again == list(range(1, len(keys) + 1))


def test_routing_by_drop_folder() -> None:
    assert kind_for_key("incoming/progress/q4/kpis.csv") is UpdateKind.PROGRESS
    assert kind_for_key("incoming/metrics/m.json") is UpdateKind.METRIC
    assert kind_for_key("incoming/other/x.csv") is None


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("+1+1", "'+1+1"),
        ("-3.5", "-3.5"),
        ("plain", "plain"),
        ("-", "'-"),
    ],
)
def test_formulas_are_neutralised_but_numbers_kept(text: str, shown: str) -> None:
    assert neutralise(text) == shown


def test_the_rejected_file_keeps_the_input_format_and_adds_an_error_column() -> None:
    content = b"External ID,Status,As Of Date\nA,On Track,2026-11-01\n=HYPERLINK(1),Bad,x\n"
    _, validator, results = validate("a.csv", content)
    sink = io.BytesIO()
    writer = RowsFileWriter(sink, FileFormat.CSV)
    writer.set_layout(validator.layout)

    for result in results:
        if isinstance(result, RejectedRow):
            writer.write(result, f"line {result.line}: {result.summary}")
    writer.close()

    lines = sink.getvalue().decode().splitlines()
    assert lines[0] == "External ID,Status,As Of Date,Error"
    assert lines[1].startswith("'=HYPERLINK(1),Bad,x,\"line 3: status")
    assert len(lines) == 2


def rejected_json_file(content: bytes) -> bytes:
    """The rejected-rows file ``validate`` writes for a JSON file whose rows all fail."""
    _, _, results = validate("a.json", content)
    sink = io.BytesIO()
    writer = RowsFileWriter(sink, FileFormat.JSON)
    for result in results:
        assert isinstance(result, RejectedRow)
        writer.write(result, result.summary)
    writer.close()
    return sink.getvalue()


def test_the_rejected_json_file_is_a_valid_array_with_an_error_field() -> None:
    content = b'[{"externalId": "A", "status": "Nope", "asOfDate": "2026-11-01"}, 7]'
    documents = json.loads(rejected_json_file(content))
    assert documents[0]["externalId"] == "A"
    assert "not an AchieveIt status" in documents[0]["error"]
    assert documents[1]["value"] == 7


def test_an_object_naming_a_field_twice_is_written_back_as_written() -> None:
    """Found by outside eyes: the rejected file kept only the last of a repeated field,
    so the file dropped back was valid and sent a value the tool had called unclear."""
    content = (
        b'[{"externalId": "A", "externalId": "B", "status": "On Track", '
        b'"asOfDate": "2026-11-01", "metricValue": 12.50, "error": "old"}]'
    )
    written = rejected_json_file(content)
    text = written.decode()
    assert '"externalId": "A", "externalId": "B"' in text
    assert '"metricValue": 12.50' in text
    assert text.count('"error"') == 1
    _, _, again = validate("a.json", written)
    assert [type(result) for result in again] == [RejectedRow]


def test_file_status_values_are_stable() -> None:
    # Reports are read by people and scripts: these words are part of the contract.
    assert [s.value for s in FileStatus] == [
        "completed",
        "completed_with_rejections",
        "completed_with_ambiguity",
        "in_progress",
        "failed",
        "validated",
    ]


FAST_PATH_CASES = [
    "External ID,Status,Metric Value,As Of Date,Comment\n"
    "A,On Track,1.5,2026-11-01,x\nA,on track,2,2026-11-01,dup\nB,At Risk,,2026-11-02,\n"
    "C,Done,3,2026-11-03,\nD,On Track,1_000,2026-11-04,\nE,On Track,NaN,2026-11-04,\n"
    "F,On Track,١٢,2026-11-04,\nG,On Track,5,2026-02-30,\nH,On Track,5,11/30/2026,\n"
    "a,On Track,7,2026-11-01,case-folded duplicate of A\n\x07X,On Track,1,2026-11-01,\n"
    "I,On Track,1,2026-11-01,too,many\nJ,ON TRACK,-0.5e3,2026-11-01, spaced \n",
    "External ID,Current Metric Value,As Of Date\nM,3,2026-11-01\nN,,2026-11-01\n"
    "O,inf,2026-11-01\nM,4,2026-11-01\n",
]


@pytest.mark.parametrize("content", FAST_PATH_CASES)
def test_the_fast_path_and_the_full_path_give_the_same_verdicts(
    content: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, fast = validate("a.csv", content.encode(), kind=None)
    monkeypatch.setattr(Validator, "_fast_layout", lambda self: None)
    _, _, full = validate("a.csv", content.encode(), kind=None)

    assert fast == full
    assert any(isinstance(r, ValidRow) for r in fast)
    assert any(isinstance(r, RejectedRow) for r in fast)


def test_seen_keys_stay_exact_across_growth() -> None:
    seen = SeenKeys()
    keys = [(n * 2654435761) % (1 << 62) - (1 << 61) for n in range(200_000)]

    assert all(
        seen.first_position(key, position) is None for position, key in enumerate(keys, start=1)
    )
    assert len(seen) == 200_000
    assert [seen.first_position(k, 0) for k in keys[::9973]] == list(range(1, 200_001, 9973))


@pytest.mark.parametrize(
    "text",
    ["\u00b2", "\u0661\u0662", "12\u00b2", "\u0662\u0660\u0662\u0666-11-01", "1\u00b2/1/2026"],
)
def test_digits_of_other_scripts_are_rejected_not_misread(text: str) -> None:
    content = f"External ID,Status,Metric Value,As Of Date\nA,On Track,{text},{text}\n"

    _, _, [result] = validate("a.csv", content.encode())

    assert isinstance(result, RejectedRow)
    assert {p.field for p in result.problems} == {"metricValue", "asOfDate"}


def test_a_report_reads_back_as_it_was_written() -> None:
    from achieveit_sync.ingest.report import REPORT_VERSION, FileReport, StoredReport

    report = FileReport(source={"name": "kpis.csv", "key": "incoming/progress/kpis.csv"})
    report.status = FileStatus.COMPLETED_WITH_REJECTIONS
    report.counts.published, report.counts.rejected = 7, 2
    report.timings["finishedAt"] = "2026-11-28T10:00:00Z"

    stored = StoredReport.from_dict(json.loads(report.to_json()))

    assert stored.version == REPORT_VERSION
    assert stored.source == "incoming/progress/kpis.csv"
    assert stored.status is FileStatus.COMPLETED_WITH_REJECTIONS
    assert (stored.counts.published, stored.counts.rejected) == (7, 2)
    assert stored.finished_at == "2026-11-28T10:00:00Z"
    assert stored.finished


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ([], "not a JSON object"),
        ({"status": "completed", "counts": {}, "reportVersion": 99}, "newer than this tool"),
        ({"status": "exploded", "counts": {}}, "no known status"),
        ({"status": "completed", "counts": {"published": -1}}, "not a whole number"),
        ({"status": "completed"}, "no counts"),
    ],
)
def test_a_document_that_is_not_a_readable_report_is_named_so(document: object, says: str) -> None:
    from achieveit_sync.ingest.report import StoredReport

    with pytest.raises(ValueError, match=says):
        StoredReport.from_dict(document)
