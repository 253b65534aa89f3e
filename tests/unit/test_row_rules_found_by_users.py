"""Row rules that outside users found missing: each test is a file they dropped, and what
a careful reader of the file would expect to happen to each of its rows."""

from __future__ import annotations

import io

import pytest
from achieveit_sync.ingest.pipeline import FileSource, ingest_file
from achieveit_sync.ingest.reading import open_records
from achieveit_sync.ingest.report import FileReport, FileStatus
from achieveit_sync.ingest.summary import RejectionSummary
from achieveit_sync.ingest.validation import RejectedRow, Validator, ValidRow
from achieveit_sync.updates import UpdateKind


def validated(name: str, text: str, kind: UpdateKind | None = None) -> FileReport:
    """The verdict the ingest gives ``text`` without a client (every pass, no sending)."""
    content = text.encode()
    source = FileSource(
        name=name,
        display_name=name,
        open=lambda: io.BytesIO(content),
        kind=kind,
        file_id=name,
    )
    return ingest_file(source, client=None)


def rejected(report: FileReport) -> dict[int, list[tuple[str, str]]]:
    """The report's rejections: each line's (field, reason) pairs."""
    lines: dict[int, list[tuple[str, str]]] = {}
    for rejection in report.as_dict()["rejections"]:
        lines.setdefault(rejection["line"], []).append((rejection["field"], rejection["reason"]))
    return lines


# -- dates --------------------------------------------------------------------------------


def test_dates_that_read_either_way_are_refused_in_a_day_first_file() -> None:
    report = validated(
        "uk.csv",
        "External ID,Status,As Of Date\n"
        "A-1,On Track,05/11/2026\n"  # 5 November here, but 11 May read month-first
        "A-2,On Track,31/10/2026\n"  # can only be day-first
        "A-3,On Track,11/11/2026\n"  # the same either way: safe
        "A-4,On Track,2026-11-05\n",
    )

    assert report.status is FileStatus.VALIDATED
    assert report.counts.valid == 2
    problems = rejected(report)
    assert sorted(problems) == [2, 3]
    [(field, reason)] = problems[2]
    assert field == "asOfDate"
    assert "reads either way" in reason
    assert "line 3: 31/10/2026" in reason
    hint = report.as_dict()["rejections"][0]["hint"]
    assert "2026-05-11 if the month comes first, 2026-11-05 if the day does" in hint


def test_dates_that_read_either_way_are_month_first_in_a_us_file() -> None:
    report = validated(
        "us.csv",
        "External ID,Status,As Of Date\nA-1,On Track,05/11/2026\nA-2,On Track,12/31/2026\n",
    )

    assert report.counts.valid == 2
    assert report.counts.rejected == 0


@pytest.mark.parametrize("written", ["0026-11-30", "9999-12-31", "11/30/0026", "1899-12-31"])
def test_a_year_no_plan_has_is_refused_not_sent(written: str) -> None:
    report = validated("years.csv", f"External ID,Status,As Of Date\nA-1,On Track,{written}\n")

    [(field, reason)] = rejected(report)[2]
    assert field == "asOfDate"
    assert "outside 1900 to 2199" in reason


def test_excel_us_date_times_keep_their_date_and_a_time_that_is_no_time_is_refused() -> None:
    content = (
        "External ID,Status,As Of Date\n"
        "A-1,On Track,11/30/2026 0:00\n"  # a date column formatted m/d/yyyy h:mm
        "A-2,On Track,12/1/2026 5:15 PM\n"
        "A-3,On Track,12/2/2026 25:00\n"
    )
    results = list(
        Validator(UpdateKind.PROGRESS).validate(
            open_records(io.BytesIO(content.encode()), "excel.csv").records
        )
    )

    dates = [r.update.as_of_date.isoformat() for r in results if isinstance(r, ValidRow)]
    assert dates == ["2026-11-30", "2026-12-01"]
    [refused] = [r for r in results if isinstance(r, RejectedRow)]
    assert refused.line == 4
    assert refused.problems[0].reason == "has a time that is not a time of day"
    assert "write the date alone: 12/2/2026" in refused.problems[0].hint


def test_day_first_dates_with_dashes_or_dots_say_which_date_to_write() -> None:
    report = validated(
        "europe.csv",
        "External ID,Status,As Of Date\n"
        "A-1,On Track,30-11-2026\n"
        "A-2,On Track,30.11.2026\n"
        "A-3,On Track,05.11.2026\n",  # reads either way
    )

    hints = [(r["line"], r["hint"]) for r in report.as_dict()["rejections"]]
    assert hints[0] == (2, "write 2026-11-30 (ISO) or 11/30/2026 (US)")
    assert hints[1] == (3, "write 2026-11-30 (ISO) or 11/30/2026 (US)")
    assert hints[2] == (
        4,
        "write the ISO date: 2026-11-05 if the day comes first, 2026-05-11 if the month does",
    )


# -- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "huge.csv",
            "External ID,Metric Value,As Of Date\nA-1,1E+999999999999999999999999,2026-11-30\n"
            "A-2,7,2026-11-30\n",
        ),
        (
            "huge.json",
            '[{"externalId": "A-1", "metricValue": 1E+999999999999999999999999, '
            '"asOfDate": "2026-11-30"},\n{"externalId": "A-2", "metricValue": 7, '
            '"asOfDate": "2026-11-30"}]',
        ),
    ],
)
def test_an_exponent_beyond_any_number_rejects_its_row_not_the_file(name: str, text: str) -> None:
    report = validated(name, text, UpdateKind.METRIC)

    assert report.status is FileStatus.VALIDATED
    assert report.counts.valid == 1
    [[(field, reason)]] = rejected(report).values()
    assert (field, reason) == ("metricValue", "is out of range")


# -- columns and kinds --------------------------------------------------------------------


def test_a_header_without_an_as_of_date_column_fails_the_file_once() -> None:
    report = validated("no-date.csv", "External ID,Status\nA-1,On Track\nA-2,At Risk\n")

    assert report.status is FileStatus.FAILED
    assert report.file_error is not None
    assert "no 'As Of Date' column" in report.file_error["reason"]
    assert report.counts.rejected == 0  # one cause, said once, not once per row


def test_a_metric_header_without_a_value_column_fails_the_file() -> None:
    report = validated(
        "no-value.csv", "External ID,As Of Date\nA-1,2026-11-30\n", UpdateKind.METRIC
    )

    assert report.status is FileStatus.FAILED
    assert report.file_error is not None
    assert "'Metric Value'" in report.file_error["reason"]


def test_a_json_object_with_a_status_in_a_file_read_as_metrics_is_rejected() -> None:
    report = validated(
        "mixed.json",
        '[{"externalId": "A-1", "metricValue": 3, "asOfDate": "2026-11-30"},\n'
        '{"externalId": "A-2", "status": "Off Track", "metricValue": 4, '
        '"asOfDate": "2026-11-30"}]',
    )

    assert report.kind == "metric"
    assert report.counts.valid == 1
    [(field, reason)] = rejected(report)[2]
    assert field == "(row)"
    assert "first object (line 1) has none" in reason


def test_a_status_in_a_file_said_to_be_metrics_is_ignored_with_one_warning() -> None:
    report = validated(
        "said.json",
        '[{"externalId": "A-1", "status": "On Track", "metricValue": 3, '
        '"asOfDate": "2026-11-30"},\n{"externalId": "A-2", "status": "Off Track", '
        '"metricValue": 4, "asOfDate": "2026-11-30"}]',
        UpdateKind.METRIC,
    )

    assert report.counts.valid == 2
    assert [w for w in report.warnings if "status fields are ignored" in w] == [
        "status fields are ignored (first on line 1): this is a metric update file"
    ]


# -- untouched template rows ------------------------------------------------------------


def test_a_template_row_with_values_only_in_unknown_columns_is_not_skipped() -> None:
    """Only a row holding nothing but its ID and name is an untouched template row; a row
    with values somewhere else was meant to say something, and is rejected so it is seen."""
    report = validated(
        "template.csv",
        "External ID,Status,Metric Value,As Of Date,Comment,Item Name,Owner\n"
        "A-1,,,,,Grow membership,\n"
        "A-2,,,,,Retain members,Sam\n",
    )

    assert report.counts.skipped_untouched == 1
    assert sorted(rejected(report)) == [3]


def test_a_whole_row_in_its_first_cell_is_rejected_not_skipped_as_a_template_row() -> None:
    """Found by outside eyes: a row written with another separator (or quoted whole by a
    spreadsheet) lands in the first cell; it is not an untouched template row (those are
    as wide as the header) and is rejected with its line, never dropped."""
    report = validated(
        "mixed.csv",
        "External ID,Status,Metric Value,As Of Date,Comment\n"
        "A-1,On Track,5,2026-03-01,ok\n"
        "A-2;On Track;5;2026-03-01;semicolons\n"
        '"A-3,On Track,5,2026-03-01,quoted whole"\n'
        "A-4\tOn Track\t5\t2026-03-01\ttabs\n"
        "A-5\n"
        "A-6,,,,\n",
    )

    assert report.counts.valid == 1
    assert report.counts.skipped_untouched == 1  # the template row, untouched
    assert sorted(rejected(report)) == [3, 4, 5, 6]


# -- what the summary keeps apart ---------------------------------------------------------


def test_rejections_with_different_fixes_are_grouped_apart() -> None:
    content = (
        "External ID,Status,As Of Date\n"
        "A-1,Cancelled,2026-11-30\nA-2,Done,2026-11-30\nA-3,Done,2026-11-29\n"
    )
    validator = Validator(UpdateKind.PROGRESS)
    summary = RejectionSummary()
    for result in validator.validate(open_records(io.BytesIO(content.encode()), "s.csv").records):
        assert isinstance(result, RejectedRow)
        summary.add(result)

    groups = {(group.hint.split(";")[0], group.rows) for group in summary.ordered()}
    assert groups == {
        ("AchieveIt spells it 'Canceled' (one l)", 1),
        ("did you mean 'Achieved'?", 2),
    }


def test_a_json_object_naming_a_field_twice_is_not_misquoted() -> None:
    content = b'[{"externalId": "A-1", "externalId": "B-2", "asOfDate": "2026-11-30"}]'
    [result] = Validator(UpdateKind.METRIC).validate(
        open_records(io.BytesIO(content), "twice.json").records
    )

    assert isinstance(result, RejectedRow)
    [problem] = result.problems
    assert problem.value == ""  # not the parsed object, which holds only B-2
    assert "'externalId' more than once" in problem.reason


def test_valid_rows_still_go_through_beside_every_new_rule() -> None:
    report = validated(
        "mixed.csv",
        "External ID,Metric Value,As Of Date\nA-1,1e999999999999999999999,2026-11-30\n"
        "A-2,2.5,0026-11-30\nA-3,2.5,2026-11-30\n",
        UpdateKind.METRIC,
    )
    assert report.counts.valid == 1
    assert report.counts.rejected == 2


# -- European numbers ---------------------------------------------------------------------


def test_a_dot_between_thousands_in_a_semicolon_file_is_refused_not_read_as_a_decimal() -> None:
    """European Excel writes 1.200 for twelve hundred: read as 1.2, a value 1,000 times too
    small would reach AchieveIt without a word."""
    report = validated(
        "european.csv",
        "External ID;Status;Metric Value;As Of Date\n"
        "A-1;On Track;1.200;2026-11-30\n"
        "A-2;On Track;1,5;2026-11-30\n"
        "A-3;On Track;1.234.567;2026-11-30\n"
        "A-4;On Track;0.25;2026-11-30\n"  # one reading only: kept
        "A-5;On Track;1.5;2026-11-30\n",  # one reading only: kept
    )

    assert report.counts.valid == 2
    rejections = {r["line"]: r for r in report.as_dict()["rejections"]}
    assert sorted(rejections) == [2, 3, 4]
    assert rejections[2]["reason"].startswith("reads either way (1.2 with a decimal point")
    assert rejections[2]["hint"] == (
        "write 1200 if the dot separates thousands, 1.2 if it is a decimal point"
    )
    assert rejections[3]["hint"] == "use a decimal point: write 1.5"
    assert rejections[4]["hint"] == "write 1234567"


def test_a_decimal_comma_anywhere_makes_dot_grouped_values_of_the_file_ambiguous() -> None:
    report = validated(
        "mixed.csv",
        "External ID,Status,Metric Value,As Of Date\n"
        "A-1,On Track,2.500,2026-11-30\n"  # before the evidence: caught by the second look
        'A-2,On Track,"0,5",2026-11-30\n',
    )

    reasons = {r["line"]: r["reason"] for r in report.as_dict()["rejections"]}
    assert "this file writes decimal commas (line 3: 0,5)" in reasons[2]
    assert report.counts.valid == 0


def test_a_dot_grouped_value_in_a_plain_comma_file_is_a_decimal() -> None:
    report = validated(
        "us.csv", "External ID,Status,Metric Value,As Of Date\nA-1,On Track,2.500,2026-11-30\n"
    )

    assert report.counts.valid == 1


# -- columns the tool does not know -------------------------------------------------------


def test_columns_the_tool_does_not_know_are_a_problem_to_look_at_not_a_clean_run() -> None:
    """'Actual' and 'Notes' were meant as the value and the comment: dropping them while
    saying 'completed' would lose the data without a word."""
    report = validated(
        "unknown.csv",
        "External ID,Status,Actual,As Of Date,Notes,Item Name\n"
        "A-1,On Track,42,2026-11-30,fine,Grow membership\n",
    )

    assert report.counts.valid == 1
    assert report.ignored == ["'Actual'", "'Notes'"]  # Item Name is the template's own
    assert report.has_problems
    assert report.summary()["headline"].endswith("ignored, not sent: 'Actual', 'Notes'")
    assert any(
        "'Actual' (did you mean 'Metric Value'?), 'Notes' (did you mean 'Comment'?)" in warning
        for warning in report.warnings
    )


def test_a_file_of_documented_columns_only_has_nothing_ignored() -> None:
    report = validated(
        "clean.csv", "External ID,Status,As Of Date,Item Name\nA-1,On Track,2026-11-30,x\n"
    )

    assert report.ignored == []
    assert not report.has_problems


def test_an_invisible_character_in_an_id_is_named_so_it_can_be_found() -> None:
    report = validated("ids.csv", "External ID,Status,As Of Date\nPX-\u200b1,On Track,2026-11-30\n")

    [(field, reason)] = rejected(report)[2]
    assert field == "externalId"
    assert reason == "contains an invisible character (U+200B, zero width space)"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bom.csv", b"\xef\xbb\xbf"),
        ("utf16-bom.csv", b"\xff\xfe"),
        ("blank.csv", b"\n\r\n\n"),
        ("sep.csv", b"sep=;\r\n"),
        ("blank.jsonl", b"\n\n"),
    ],
)
def test_a_file_of_nothing_fails_as_an_empty_one_does(name: str, content: bytes) -> None:
    """Found by outside eyes: only a byte-order mark, blank lines or Excel's sep= line is
    an empty file (the upload most likely failed), not "no rows to check"."""
    source = FileSource(
        name=name,
        display_name=name,
        open=lambda: io.BytesIO(content),
        file_id=name,
        kind=UpdateKind.PROGRESS,
    )
    report = ingest_file(source, client=None)

    assert report.status is FileStatus.FAILED
    assert "holds nothing to read" in str(report.file_error)


@pytest.mark.parametrize(
    ("name", "text"), [("header.csv", "External ID,Status,As Of Date\n"), ("empty.json", "[]")]
)
def test_a_header_alone_or_an_empty_array_is_no_rows(name: str, text: str) -> None:
    report = validated(name, text, UpdateKind.PROGRESS)

    assert report.status is FileStatus.VALIDATED
    assert report.counts.rows_read == 0


@pytest.mark.parametrize("invisible", ["\u00ad", "\u180e", "\u061c", "\u200b", "\u2060"])
def test_invisible_characters_in_an_id_are_rejected(invisible: str) -> None:
    """Found by outside eyes: a soft hyphen (and U+180E) passed, and did not match the
    same ID without it."""
    report = validated(
        "ids.csv",
        f"External ID,Status,As Of Date\nK-1{invisible},On Track,2026-01-01\n",
        UpdateKind.PROGRESS,
    )

    assert sorted(rejected(report)) == [2]


def test_every_invisible_character_looked_for_is_unprintable() -> None:
    """The column checks look for them only in IDs that are not all printable."""
    import unicodedata

    from achieveit_sync.ingest.validation import _CONTROL_CHARACTER

    found = [chr(c) for c in range(0x110000) if _CONTROL_CHARACTER.match(chr(c))]
    assert not any(character.isprintable() for character in found)
    formats = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
    assert set(formats) <= set(found)


def test_a_long_cell_is_a_value_to_judge_not_a_broken_file() -> None:
    """Found by outside eyes: one 140,000-character comment (no quotation mark anywhere)
    failed the whole file with csv's 'field larger than field limit' and a hint about
    quotation marks. Cells as long as a line may be are read; the row is judged."""
    rows = "".join(f"K-{n},On Track,2026-01-01,ok\n" for n in range(1, 700))
    long_row = f"K-700,On Track,2026-01-01,{'x' * 140_000}\n"
    report = validated(
        "long.csv",
        "External ID,Status,As Of Date,Comment\n" + rows + long_row,
        UpdateKind.PROGRESS,
    )

    assert report.status is FileStatus.VALIDATED
    assert report.counts.valid == 700


def test_a_runaway_quoted_cell_fails_naming_its_line() -> None:
    runaway = 'K-2,On Track,2026-01-01,"never closed\n' + "K-3,On Track,2026-01-01,x\n" * 45_000
    report = validated(
        "runaway.csv",
        "External ID,Status,As Of Date,Comment\nK-1,On Track,2026-01-01,ok\n"
        + runaway
        + "\n"
        + "K-4,On Track,2026-01-01,y\n" * 10,
        UpdateKind.PROGRESS,
    )

    assert report.status is FileStatus.FAILED
    assert "a cell starting on line 3 is longer than 1,000,000 characters" in str(report.file_error)


def test_padded_rows_in_another_separator_and_rejected_rows_dropped_back_are_judged() -> None:
    """Found by outside eyes (round 2): a row written with another separator and then padded
    to the header's width by a spreadsheet, and a rejected row dropped back unfixed (its
    Error cell filled), were skipped as untouched template rows."""
    report = validated(
        "padded.csv",
        "External ID,Status,Metric Value,As Of Date,Comment,Item Name\n"
        "A-1;On Track;5;2026-03-01;x,,,,,\n"
        '"A-2,On Track,5,2026-03-01,x",,,,,\n'
        "A-3\tOn Track\t5\t2026-03-01\tx,,,,,\n"
        "A-4,,,,,Grow membership\n",
        UpdateKind.PROGRESS,
    )
    assert sorted(rejected(report)) == [2, 3, 4]
    assert report.counts.skipped_untouched == 1

    dropped_back = validated(
        "rejected.csv",
        "External ID,Status,Metric Value,As Of Date,Comment,Item Name,Error\n"
        "A-5,,,,,,line 2: status: is missing\n"
        "A-6,,,,,Retain members,\n",
        UpdateKind.PROGRESS,
    )
    assert sorted(rejected(dropped_back)) == [2]
    assert dropped_back.counts.skipped_untouched == 1


@pytest.mark.parametrize("invisible", ["\u2066", "\u2069", "\U000e0001", "\u206a", "\ufff9"])
def test_every_format_character_in_an_id_is_rejected(invisible: str) -> None:
    """Found by outside eyes (round 2): bidirectional isolates, tags and other format
    characters (Unicode category Cf) passed."""
    report = validated(
        "ids.jsonl",
        '{"externalId": "K-1' + invisible + '", "status": "On Track", "asOfDate": "2026-01-01"}\n',
        UpdateKind.PROGRESS,
    )

    assert sorted(rejected(report)) == [1]
