"""Hostile files through the real ingest (moto + the sandbox over HTTPS).

Each test states the README promise it checks. A failing test is a finding (see the
docstring); a passing one is an attack that held up."""

from __future__ import annotations

import codecs
import gzip
import json

import pytest
from achieveit_sandbox import SandboxServer

from tests.integration.ingest_stack import IngestStack, unique_key

pytestmark = pytest.mark.usefixtures("aws")

HEADER = "External ID,Status,Metric Value,As Of Date,Comment\n"


def stored(sandbox: SandboxServer) -> list[tuple[str, str, str, str | None]]:
    return [
        (u.external_id, u.as_of_date.isoformat(), u.status, u.comment)
        for u in sandbox.stored_updates()
    ]


# --------------------------------------------------------------------------- findings ---


def test_an_unclosed_quote_does_not_swallow_the_rows_after_it(sandbox: SandboxServer) -> None:
    """FINDING (data loss). README: 'nothing is silently dropped or silently changed';
    every row is published or rejected with its line. A comment that opens a quote and
    never closes it (a producer that does not escape `"`) turns every following line into
    part of that comment while the rest of the file is under csv's 128 KiB field limit: the
    file is `completed` with 1 row read, the 50 rows after it are never mentioned, and
    AchieveIt stores a comment holding 50 raw CSV lines."""
    stack = IngestStack(sandbox)
    key = unique_key("progress", "csv")
    following = "".join(f"PX-2.3,At Risk,,2026-10-{d:02d},row {d}\n" for d in range(1, 29))
    following += "".join(f"PX-1.1,On Track,{d},2026-10-{d:02d},m {d}\n" for d in range(1, 23))
    stack.drop(
        key,
        (HEADER + 'PX-1.3,On Track,,2026-11-01,"5 inch screen, see notes\n' + following).encode(),
    )

    stack.deliver()

    # Held now: the whole file fails, naming the line of the quote (where rows end cannot
    # be known), and AchieveIt receives nothing, least of all raw CSV lines as a comment.
    report = stack.report(key)
    assert report["status"] == "failed"
    assert "quotation mark opened on line 2 is never closed" in report["fileError"]["reason"]
    assert stored(sandbox) == []


def test_stray_quotes_inside_a_cell_are_not_silently_removed(sandbox: SandboxServer) -> None:
    """FINDING (silently changed, low). `"Q3"-final` in an unquoted-start cell is read as
    `Q3-final`: the quotes vanish, the row is published, no warning."""
    stack = IngestStack(sandbox)
    key = unique_key("progress", "csv")
    stack.drop(key, (HEADER + 'PX-1.3,On Track,,2026-11-01,"Q3"-final\n').encode())

    stack.deliver()

    report = stack.report(key)
    comments = [c for *_, c in stored(sandbox)]
    print(report["status"], report["warnings"], comments)
    assert comments in ([], ['"Q3"-final']) or report["warnings"] or report["rejections"]


@pytest.mark.parametrize(
    "obj",
    [
        '{"externalId": "PX-1.3", "externalId": "PX-2.3", "status": "On Track", '
        '"asOfDate": "2026-11-01"}',
        '{"externalId": "PX-1.3", "externalID": "PX-2.3", "status": "On Track", '
        '"asOfDate": "2026-11-01"}',
        '{"externalId": "PX-1.3", "status": "Achieved", "status": "Off Track", '
        '"asOfDate": "2026-11-01"}',
    ],
    ids=["same-key-twice", "externalId-and-externalID", "status-twice"],
)
def test_a_json_object_naming_a_field_twice_is_not_silently_resolved(
    sandbox: SandboxServer, obj: str
) -> None:
    """FINDING (silently changed). JSON with the same field twice (or externalId and
    externalID both) is accepted without a warning: the last value wins, so the update goes
    to PX-2.3 (or says Off Track) although the row also names PX-1.3 (or Achieved)."""
    stack = IngestStack(sandbox)
    key = unique_key("progress", "json")
    stack.drop(key, f"[\n{obj}\n]\n".encode())

    stack.deliver()

    report = stack.report(key)
    print(report["status"], report["counts"], report["warnings"], stored(sandbox))
    assert report["rejections"] or report["warnings"], "a conflicting row went out silently"


def test_a_column_without_a_header_name_is_not_silently_ignored(sandbox: SandboxServer) -> None:
    """FINDING (silently dropped, low). A header `External ID,Status,As Of Date,` (the
    comment column's name lost) makes every comment vanish without a warning; a misnamed
    column (`Comments`) does get 'unknown column(s) ignored'."""
    stack = IngestStack(sandbox)
    key = unique_key("progress", "csv")
    stack.drop(
        key,
        b"External ID,Status,As Of Date,\nPX-1.3,On Track,2026-11-01,door-to-doctor improving\n",
    )

    stack.deliver()

    report = stack.report(key)
    print(report["status"], report["warnings"], stored(sandbox))
    assert report["warnings"], "the values of an unnamed column were dropped without a word"


def test_a_utf32_file_fails_as_one_file_error(sandbox: SandboxServer) -> None:
    """FINDING (confusing). README: a file that cannot be read fails with ONE message saying
    how to fix it. A UTF-32 LE file (BOM FF FE 00 00) is taken for UTF-16 LE and every row,
    the header included, is rejected field by field with NUL-laden values."""
    stack = IngestStack(sandbox)
    key = unique_key("progress", "csv")
    text = HEADER + "PX-1.3,On Track,,2026-11-01,a\n"
    stack.drop(key, codecs.BOM_UTF32_LE + text.encode("utf-32-le"))

    stack.deliver()

    report = stack.report(key)
    print(report["status"], report.get("encoding"), report["counts"], report["rejections"][:2])
    assert report["status"] == "failed"
    assert report["fileError"] is not None


def test_rejections_in_a_one_line_json_array_say_which_element(sandbox: SandboxServer) -> None:
    """FINDING (confusing, low). README: every rejection names the line. `json.dumps` writes
    an array on one line, so every rejection says 'line 1' and nothing tells the rows apart
    (no element index), in the report or the rejected file."""
    stack = IngestStack(sandbox)
    key = unique_key("progress", "json")
    rows = [
        {"externalId": "PX-1.3", "status": "On Track", "asOfDate": "2026-11-01"},
        {"externalId": "PX-2.3", "status": "Done", "asOfDate": "2026-11-01"},
        {"externalId": "PX-1.3", "status": "Sideways", "asOfDate": "2026-11-02"},
    ]
    stack.drop(key, json.dumps(rows).encode())

    stack.deliver()

    report = stack.report(key)
    locations = [(r["line"], r.get("index", r.get("element"))) for r in report["rejections"]]
    print(locations)
    assert len(set(locations)) == len(locations), "two rejected rows share one location"


@pytest.mark.parametrize(
    "header",
    [
        "External_ID,Status,As Of Date",
        "Extrnal ID,Status,As Of Date",
        "sep=,\nExternal ID,Status,As Of Date",
        "External ID;Status;As Of Date",
    ],
    ids=["underscore", "typo", "excel-sep-line", "semicolons"],
)
def test_a_near_miss_header_is_named_not_read_as_data(sandbox: SandboxServer, header: str) -> None:
    """FINDING (confusing). A header the reader does not recognise (External_ID, a typo,
    Excel's `sep=,` line, a semicolon-separated export) makes the file 'headerless': the
    header line is rejected as data ("'Status' is not an AchieveIt status") and every
    3-column data row is read positionally, so a perfectly good date is rejected as
    "metricValue '2026-11-01' is not a number" plus "asOfDate is missing". Nothing says the
    header was not recognised (outside incoming/progress|metrics the message is 'the file
    has no header row', which is also untrue)."""
    stack = IngestStack(sandbox)
    key = unique_key("progress", "csv")
    sep = ";" if ";" in header else ","
    stack.drop(
        key, (header + "\n" + sep.join(["PX-1.3", "On Track", "2026-11-01"]) + "\n").encode()
    )

    stack.deliver()

    # Held now: the spellings, Excel's sep= line and semicolons are read as the header they
    # are; a misspelt 'External ID' fails the file saying so, instead of reading it as data.
    report = stack.report(key)
    if "Extrnal" in header:
        assert "looks like a header" in report["fileError"]["reason"]
        assert stored(sandbox) == []
    else:
        assert report["status"] == "completed", report["rejections"]
        assert [(s[0], s[2]) for s in stored(sandbox)] == [("PX-1.3", "On Track")]


# --------------------------------------------------------------------- held up ---------


def test_hostile_numbers_are_rejected_or_arrive_unchanged(sandbox: SandboxServer) -> None:
    """HELD. Underscores, non-ASCII digits, NaN/Infinity, hex, unicode minus, 16 digits,
    1e15, spaces as thousands separators are rejected with a reason; +5, .5, 5., -0, 1E+2
    and 0.0000000000000000000000001e30 arrive as their value."""
    stack = IngestStack(sandbox)
    key = unique_key("metrics", "csv")
    bad = [
        "1_000",
        "٤٢",
        "４２",
        "NaN",
        "Infinity",
        "0x1A",
        "−5",
        "sNaN",
        "1e15",
        "999999999999999.4",
        "5 000",
        "5\u00a0000",
        "(5)",
        "1.2.3",
        "5e",
        "𝟓",
    ]
    good = {
        "+5": 5.0,
        ".5": 0.5,
        "5.": 5.0,
        "-0": 0.0,
        "1E+2": 100.0,
        "0.0000000000000000000000001e30": 100000.0,
    }
    lines = [f"PX-3.1,{v},2026-01-{i + 1:02d}" for i, v in enumerate(bad)]
    lines += [f"PX-3.2,{v},2026-02-{i + 1:02d}" for i, v in enumerate(good)]
    body = "External ID,Current Metric Value,As Of Date\n" + "\n".join(
        f'{ln.split(",")[0]},"{ln.split(",")[1]}",{ln.split(",")[2]}' for ln in lines
    )
    stack.drop(key, body.encode())

    stack.deliver()

    report = stack.report(key)
    assert report["counts"]["rejected"] == len(bad)
    assert sorted(u.metric_value for u in sandbox.stored_updates()) == sorted(good.values())


def test_gzip_variants_are_read_whole_or_refused(sandbox: SandboxServer) -> None:
    """HELD. A multi-member gzip (`cat a.gz b.gz`) is read whole; gzip-in-gzip and trailing
    garbage fail the file with one message."""
    stack = IngestStack(sandbox)
    rows = HEADER + "PX-1.3,On Track,,2026-11-01,a\n"
    multi = unique_key("progress", "csv.gz")
    twice = unique_key("progress", "csv.gz")
    trailing = unique_key("progress", "csv.gz")
    stack.drop(
        multi, gzip.compress(rows.encode()) + gzip.compress(b"PX-2.3,At Risk,,2026-11-01,b\n")
    )
    stack.drop(twice, gzip.compress(gzip.compress(rows.encode())))
    stack.drop(trailing, gzip.compress(rows.encode()) + b"junk")

    stack.deliver()

    assert stack.report(multi)["counts"]["published"] == 2
    assert "twice" in stack.report(twice)["fileError"]["reason"]
    assert stack.report(trailing)["status"] == "failed"


def test_a_flood_of_distinct_unknown_json_fields_stays_bounded(sandbox: SandboxServer) -> None:
    """HELD. 20,000 rows each with its own unknown field: the warnings are capped."""
    stack = IngestStack(sandbox)
    key = unique_key("progress", "jsonl")
    lines = [
        json.dumps(
            {
                "externalId": "PX-1.3",
                "status": "On Track",
                "asOfDate": f"20{10 + n // 366 % 80:02d}-01-01",
                f"f{n}": 1,
            }
        )
        for n in range(20_000)
    ]
    stack.drop(key, "\n".join(lines).encode())

    stack.deliver()

    report = stack.report(key)
    assert len(report["warnings"]) < 50
    assert len(stack.text(f"reports/{key}.json")) < 2_000_000
