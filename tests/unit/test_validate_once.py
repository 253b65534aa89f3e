"""Validate once, publish from what was validated: the spool of valid rows, the batched CSV
reader and validator, and the compact exact duplicate index (issue 14)."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest
from achieveit_sync import key_index
from achieveit_sync.client import AchieveItClient, SubmitResult
from achieveit_sync.ingest import validation
from achieveit_sync.ingest.checkpoints import InMemoryCheckpoints
from achieveit_sync.ingest.csv_records import BATCH_ROWS
from achieveit_sync.ingest.pipeline import (
    FileSource,
    IngestOptions,
    ingest_file,
)
from achieveit_sync.ingest.reading import CsvBatch, open_records
from achieveit_sync.ingest.report import FileStatus
from achieveit_sync.ingest.spool import ValidSpool
from achieveit_sync.ingest.validation import (
    CHUNK_RECORDS,
    RejectedRow,
    Validator,
    ValidColumns,
    ValidRow,
)
from achieveit_sync.key_index import SeenKeys
from achieveit_sync.updates import MetricUpdate, ProgressUpdate, Status, UpdateKind
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HEADER = ["External ID", "Status", "Metric Value", "As Of Date", "Comment"]


def csv_bytes(rows: list[list[str]], header: list[str] | None = HEADER) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def clean_rows(count: int) -> list[list[str]]:
    statuses = ("On Track", "Off Track", "At Risk", "Achieved", "Not Started")
    return [
        [
            f"ID-{n}",
            statuses[n % 5],
            f"{n % 997}.{n % 10}",
            (date(2026, 1, 1) + timedelta(days=n % 300)).isoformat(),
            "note" if n % 2 else "",
        ]
        for n in range(1, count + 1)
    ]


class FakeClient:
    """Accepts every request and remembers what it carried (no sockets)."""

    def __init__(self, *, fail_after: int | None = None) -> None:
        self.bodies: list[list[dict[str, object]]] = []
        self.names: list[str] = []
        self._fail_after = fail_after

    prepare_submission = AchieveItClient.prepare_submission
    prepare_json_submission = AchieveItClient.prepare_json_submission

    def send_submission(self, submission):
        self.bodies.append(json.loads(submission.body))
        self.names.append(submission.name)
        return SubmitResult(submission.name, submission.rows, 200, "{}", 0.0, 1)

    def scrub(self, text: str) -> str:
        return text


def source_of(contents: Callable[[], bytes], name: str = "updates.csv") -> FileSource:
    return FileSource(
        name=name,
        display_name=name,
        open=lambda: io.BytesIO(contents()),
        kind=UpdateKind.PROGRESS,
        file_id=f"test/{name}",
    )


def sent_ids(client: FakeClient) -> list[str]:
    return [str(update["externalId"]) for body in client.bodies for update in body]


# -- the spool ----------------------------------------------------------------------------------


def test_the_spool_gives_back_exactly_what_was_validated() -> None:
    rows = [
        (3, ProgressUpdate("A", Status.ON_TRACK, date(2026, 1, 2), Decimal("1.50"), "x")),
        (4, ProgressUpdate("b", Status.CANCELED, date(1900, 1, 1), None, "")),
        (9, MetricUpdate("C", Decimal("-0.000000000000001"), date(2199, 12, 31), 'é, "q"')),
        (10, MetricUpdate("D", Decimal("-0"), date(2026, 5, 5), "")),
    ]
    with ValidSpool() as spool:
        spool.add(ValidColumns.of(rows[:2]))
        spool.add(ValidColumns.of(rows[2:]))
        again = [(row.line, row.update) for row in spool.rows_in_order()]
    assert again == rows
    assert [str(update.metric_value) for _, update in again[2:]] == ["-1E-15", "-0"]


_UPDATES = st.builds(
    ProgressUpdate,
    st.text(min_size=1, max_size=12),
    st.sampled_from(list(Status)),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31)),
    st.one_of(
        st.none(),
        st.decimals(
            allow_nan=False, allow_infinity=False, places=4, min_value=-(10**10), max_value=10**10
        ),
        st.sampled_from([Decimal("1.50"), Decimal("-0"), Decimal("1E+3"), Decimal("0.1")]),
    ),
    st.text(max_size=12),
) | st.builds(
    MetricUpdate,
    st.text(min_size=1, max_size=12),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=2, min_value=-(10**12), max_value=10**12
    ),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31)),
    st.text(max_size=12),
)


@settings(max_examples=80, deadline=None)
@given(updates=st.lists(_UPDATES, min_size=1, max_size=30))
def test_bodies_from_the_spool_are_the_bytes_encode_updates_writes(updates: list) -> None:
    from achieveit_sync.updates import BodyFormat, encode_updates

    kind = type(updates[0])
    updates = [update for update in updates if type(update) is kind]
    with ValidSpool() as spool:
        spool.add(ValidColumns.of(list(enumerate(updates, start=2))))
        rows = list(spool.rows_in_order(json_bodies=True))
    assert [row.update for row in rows] == updates
    body = b"[" + b",".join(row.body for row in rows) + b"]"
    assert body == encode_updates(updates, BodyFormat.JSON)


@pytest.mark.parametrize("batch_size", [1, 3, 4095, 4096, 4097, 10_000])
def test_the_spool_cuts_parts_by_count(batch_size: int) -> None:
    rows = [
        (line, ProgressUpdate(f"I-{line}", Status.ON_TRACK, date(2026, 1, 1)))
        for line in range(2, 9002)
    ]
    with ValidSpool() as spool:
        for start in range(0, len(rows), 700):
            spool.add(ValidColumns.of(rows[start : start + 700]))
        parts = [[row.line for row in part] for part in spool.parts(batch_size)]
    lines = [line for line, _ in rows]
    assert parts == [lines[at : at + batch_size] for at in range(0, len(lines), batch_size)]


def test_publishing_reads_the_spool_not_the_file() -> None:
    opened = []
    content = csv_bytes(clean_rows(1200))

    def contents() -> bytes:
        opened.append(1)
        return content

    client = FakeClient()
    report = ingest_file(
        source_of(contents),
        client=client,
        options=IngestOptions(batch_size=500),  # type: ignore[arg-type]
    )
    assert report.status is FileStatus.COMPLETED
    assert len(opened) == 1  # validated once, published from the spool
    assert sent_ids(client) == [f"ID-{n}" for n in range(1, 1201)]
    assert [len(body) for body in client.bodies] == [500, 500, 200]


def test_a_continuation_after_a_lost_spool_validates_again_and_sends_only_the_rest() -> None:
    content = csv_bytes(clean_rows(1300))
    checkpoints = InMemoryCheckpoints()
    first = FakeClient()
    asked = iter([False, False, True])  # stop before the third part: the "Lambda" times out
    report = ingest_file(
        source_of(lambda: content),
        client=first,  # type: ignore[arg-type]
        checkpoints=checkpoints,
        options=IngestOptions(batch_size=500),
        should_stop=lambda: next(asked, True),
    )
    assert report.status is FileStatus.IN_PROGRESS
    assert len(first.bodies) == 2
    # A new invocation: its own spool (the first is gone with its process), same parts.
    second = FakeClient()
    report = ingest_file(
        source_of(lambda: content),
        client=second,  # type: ignore[arg-type]
        checkpoints=checkpoints,
        options=IngestOptions(batch_size=200),  # the earlier batch size wins
    )
    assert report.status is FileStatus.COMPLETED
    assert sent_ids(first) + sent_ids(second) == [f"ID-{n}" for n in range(1, 1301)]
    assert second.names == ["updates.csv.part-0003.json"]
    assert report.counts.published == 1300


@pytest.mark.parametrize("batch_size", [1, 7, 500, 511, 512, 513, 5000])
def test_parts_are_cut_from_the_spool_as_from_the_file(batch_size: int) -> None:
    rows = clean_rows(1500)
    rows[10][3] = "not a date"  # rejected rows leave gaps in the lines
    rows[700][1] = "Done"
    rows[900] = list(rows[899])  # a duplicate
    content = csv_bytes(rows)
    client = FakeClient()
    ingest_file(
        source_of(lambda: content),
        client=client,  # type: ignore[arg-type]
        options=IngestOptions(batch_size=batch_size),
    )
    stream = open_records(io.BytesIO(content), "updates.csv")
    valid = [
        row
        for row in Validator(UpdateKind.PROGRESS).validate(stream.records)
        if isinstance(row, ValidRow)
    ]
    expected = [
        [row.update.external_id for row in valid[start : start + batch_size]]
        for start in range(0, len(valid), batch_size)
    ]
    assert [[u["externalId"] for u in body] for body in client.bodies] == expected


def test_a_file_changed_between_validation_and_listing_fails_cleanly() -> None:
    rows = clean_rows(50)
    rows[5][3] = "31/31/2026"  # a rejected row: the file is read again to list it
    versions = [csv_bytes(rows)]
    changed = [list(row) for row in rows]
    changed[20][2] = "999"
    versions.append(csv_bytes(changed))
    opened = iter(versions)
    rejected = io.BytesIO()
    report = ingest_file(
        source_of(lambda: next(opened, versions[-1])),
        client=FakeClient(),  # type: ignore[arg-type]
        rejected_sink=rejected,
    )
    assert report.status is FileStatus.FAILED
    assert report.file_error is not None
    assert "the file changed while it was being handled" in report.file_error["reason"]
    assert report.counts.published == 49  # what was validated was sent, and said so


def test_the_spool_comes_from_the_pass_with_the_final_rules() -> None:
    rows = [
        ["D-1", "On Track", "", "05/11/2026", ""],  # reads either way...
        ["D-2", "On Track", "", "31/10/2026", ""],  # ...beside a date only day-first
        ["D-3", "On Track", "", "2026-11-05", ""],
    ]
    client = FakeClient()
    report = ingest_file(source_of(lambda: csv_bytes(rows)), client=client)  # type: ignore[arg-type]
    assert sent_ids(client) == ["D-3"]
    assert report.counts.valid == 1
    assert report.counts.rejected == 2


# -- the batched reader and validator -----------------------------------------------------------


def expanded(items) -> list:
    out = []
    for item in items:
        if isinstance(item, CsvBatch):
            out.extend(item.records())
        else:
            out.append(item)
    return out


@pytest.mark.parametrize(
    "text",
    [
        "sep=;\r\nExternal ID;Status;As Of Date\r\n" + "A;On Track;2026-01-01\r\n" * 600,
        "External ID,Status,As Of Date\n" + "A,On Track,2026-01-01\n" * 700 + '"B\nC",x,y\n',
        "External ID,Status,As Of Date\n" + "A,x,y\n" * 300 + "\n,,\n  , ,\n" + "A,x,y\n" * 300,
        "External ID,Status,As Of Date\n" + "A,x,y\n" * 520 + 'A,x "q" y,z\n' + "A,x,y\n" * 10,
        "External ID,Status,As Of Date\n" + "A,x,y\r" * 1030,
        'External ID,Status,As Of Date\nA,"multi\nline, cell",y\n' + "A,x,y\n" * 1100,
    ],
)
def test_batches_hold_the_same_records_as_the_careful_reader(text: str) -> None:
    careful = open_records(io.BytesIO(text.encode()), "a.csv")
    batched = open_records(io.BytesIO(text.encode()), "a.csv")
    assert batched.batches is not None
    assert expanded(batched.batches) == list(careful.records)
    assert batched.blank_lines == careful.blank_lines


def test_batches_fail_where_the_careful_reader_fails() -> None:
    text = "External ID,Status,As Of Date\n" + "A,x,y\n" * 600 + 'A,"never closed,y\n' + "A\n" * 5
    for stream in (open_records(io.BytesIO(text.encode()), "a.csv") for _ in range(2)):
        with pytest.raises(Exception, match="never closed") as caught:
            list(stream.batches if stream.batches is not None else ())
        assert "line 602" in str(caught.value)


def read_all(
    content: bytes, *, batched: bool, max_lines: int | None = None
) -> tuple[list, str | None]:
    """The records read (in batches, or by the careful reader), and the error that ended
    the reading (if any)."""
    from achieveit_sync.ingest.records import ReadLimits

    out: list = []
    limits = ReadLimits() if max_lines is None else ReadLimits(max_lines=max_lines)
    try:
        stream = open_records(io.BytesIO(content), "a.csv", limits)
        assert stream.batches is not None
        for item in stream.batches if batched else stream.records:
            out.extend(item.records() if isinstance(item, CsvBatch) else [item])
    except Exception as exc:  # noqa: BLE001 - compared, not hidden
        return out, f"{type(exc).__name__}: {exc}"
    return out, f"{stream.blank_lines} blank"


_LINE_PIECES = st.sampled_from(
    ["A", "b c", ",", ";", '"', '""', "\r", "\n", "\r\n", " ", "\t", "\x00", "\u2028", "\x85", "é"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.lists(_LINE_PIECES, max_size=8).map("".join), min_size=1, max_size=30),
    repeat=st.integers(1, 60),
    sep_line=st.booleans(),
    ending=st.sampled_from(["\n", "\r\n", "\r", ""]),
)
def test_batches_read_any_text_as_the_careful_reader_does(
    lines: list[str], repeat: int, sep_line: bool, ending: str
) -> None:
    """Quotation marks, CR, CRLF, mixed breaks, blank lines, NUL and Unicode line separators,
    in runs that cross batches: the batches hold exactly the careful reader's records (and
    blank-line count), or both fail with the same error."""
    body = ending.join((lines * repeat)[: BATCH_ROWS * 2 + 40])
    text = ("sep=,\r\n" if sep_line else "") + "External ID,Status,As Of Date\n" + body
    assert read_all(text.encode(), batched=True) == read_all(text.encode(), batched=False)


@pytest.mark.parametrize("max_lines", [3, 600, 1100, 1600])
@pytest.mark.parametrize(
    "body",
    [
        "\n" * 3000,  # a file of blank lines (a cheap bomb)
        "A,x,y\n" * 700 + " , ,\n" * 700 + "A,x,y\n" * 700,
        'A,"multi\nline",y\n' * 800,
    ],
)
def test_the_line_limit_stops_batches_where_it_stops_the_careful_reader(
    body: str, max_lines: int
) -> None:
    text = ("External ID,Status,As Of Date\n" + body).encode()
    assert read_all(text, batched=True, max_lines=max_lines) == read_all(
        text, batched=False, max_lines=max_lines
    )


def test_white_space_is_what_str_strip_removes() -> None:
    from achieveit_sync.ingest.csv_records import WHITESPACE

    every = "".join(c for c in map(chr, range(0x110000)) if not c.strip())
    assert set(WHITESPACE) == set(every)


def sort_verdicts(results, valid: list, rejected: list) -> None:
    """Valid rows as (line, update) into ``valid``, rejected ones as (line, summary) into
    ``rejected``, as they come (records read before an error are kept)."""
    for result in results:
        if isinstance(result, RejectedRow):
            rejected.append((result.line, result.summary))
        else:
            valid.append((result.line, result.update))


def verdicts(content: bytes, *, batched: bool, fast: bool = True):
    """Valid rows (line, update) and rejected rows (line, summary): by the batched pass, or
    by the per-record path (with or without its fast function)."""
    stream = open_records(io.BytesIO(content), "p.csv")
    validator = Validator(None)
    if not fast:
        validator._fast_layout = lambda: None  # type: ignore[method-assign]
    valid, rejected = [], []
    if batched:
        assert stream.batches is not None
        for item in stream.batches:
            if isinstance(item, CsvBatch):
                columns, lines = validator.validate_batch(item)
                with ValidSpool() as spool:
                    spool.add(columns)
                    valid += [(row.line, row.update) for row in spool.rows_in_order()]
                rejected += [(line, None) for line in lines]
            else:
                for result in validator.validate(iter((item,))):
                    if isinstance(result, ValidRow):
                        valid.append((result.line, result.update))
                    else:
                        rejected.append((result.line, None))
    else:
        sort_verdicts(validator.validate(stream.records), valid, rejected)
    return valid, sorted(rejected)


_IDS = st.sampled_from(["A-1", "a-1", "B-2", " C-3 ", "'=D", "", "E\u200b", "F'G", "H-" + "9" * 5])
_STATUSES = st.sampled_from(
    ["On Track", "on track", "ON TRACK", " At Risk ", "Done", "", "Canceled", "Not Started"]
)
_METRICS = st.one_of(
    st.sampled_from(
        ["", " ", "1", "1.", ".5", "+2", "-0", "1e3", "NaN", "1,5", "1.200", "+", "--1"]
    ),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.integers(-(10**16), 10**16).map(str),
    st.text(alphabet="0123456789.+-e_ ", max_size=18),
)
_DATES = st.one_of(
    st.dates(min_value=date(1890, 1, 1), max_value=date(2210, 1, 1)).map(date.isoformat),
    st.sampled_from(["2026-02-30", "11/30/2026", "31/10/2026", "2026-1-5", " 2026-11-30 ", ""]),
)
_COMMENTS = st.sampled_from(["", "ok", " padded ", "'=cmd", "x, y", 'say "hi"'])
_ROW = st.tuples(_IDS, _STATUSES, _METRICS, _DATES, _COMMENTS).map(list)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_ROW, min_size=1, max_size=40), repeat=st.integers(1, 30))
def test_fast_and_detailed_paths_agree(rows: list[list[str]], repeat: int) -> None:
    """The same verdict, and the same message, whichever path a row takes: the per-record
    fast path, the column batches, or the detailed path alone. (Rows are repeated past a
    batch so that batches of every kind, and duplicates across them, occur.)"""
    many = (rows * repeat)[: BATCH_ROWS + 100]
    content = csv_bytes(many)
    detailed = verdicts(content, batched=False, fast=False)
    per_record = verdicts(content, batched=False)
    assert per_record == detailed
    valid, rejected = verdicts(content, batched=True)
    assert valid == detailed[0]
    assert [line for line, _ in rejected] == [line for line, _ in detailed[1]]


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(_ROW, min_size=1, max_size=10))
def test_clean_rows_take_the_fast_path_and_agree(rows: list[list[str]]) -> None:
    clean = clean_rows(BATCH_ROWS * 2)
    content = csv_bytes(clean[:BATCH_ROWS] + rows + clean[BATCH_ROWS:])
    detailed = verdicts(content, batched=False, fast=False)
    valid, rejected = verdicts(content, batched=True)
    assert valid == detailed[0]
    assert [line for line, _ in rejected] == [line for line, _ in detailed[1]]


# -- the duplicate index ------------------------------------------------------------------------


def test_rows_whose_keys_collide_are_told_apart_and_duplicates_name_the_first_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(validation, "hash", lambda _: 12345, raising=False)  # every key collides
    rows = clean_rows(BATCH_ROWS + 50)
    rows.append(list(rows[3]))  # line 5's row again, in another batch
    rows.append(["id-7", "On Track", "", rows[6][3], ""])  # line 8's, in another case
    content = csv_bytes(rows)
    for batched in (True, False):
        valid, rejected = verdicts(content, batched=batched)
        assert len(valid) == BATCH_ROWS + 50
        assert [line for line, _ in rejected] == [BATCH_ROWS + 52, BATCH_ROWS + 53]
    _, detailed = verdicts(content, batched=False, fast=False)
    assert "line 5 already updates this item" in str(detailed[0][1])
    assert "line 8 already updates this item" in str(detailed[1][1])


class SmallSeenKeys(SeenKeys):
    _RECENT_MAX = 3  # merges into the arrays all the time
    _YOUNG_MAX = 5
    _SEGMENT_KEYS = 12


@pytest.mark.parametrize("index", [SeenKeys, SmallSeenKeys])
def test_the_index_is_exact_through_spills_and_regrowth(
    index: type[SeenKeys], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(key_index, "_FLUSH_EVERY", 64)
    rng = random.Random(14)
    seen, model = index(), {}
    position = 0
    for _ in range(300):
        count = rng.choice([1, 2, 50, 300])
        keys = [
            rng.choice([rng.getrandbits(64) - (1 << 63), rng.randrange(40), 5 << 48, -1])
            for _ in range(count)
        ]
        exacts = [b"%d" % (key % 31) + (b"!" if rng.random() < 0.2 else b"") for key in keys]
        positions = list(range(position + 1, position + count + 1))
        position += count
        if count == 1:
            got = [seen.first_position(keys[0], positions[0], exacts[0])]
        else:
            got = seen.first_positions(keys, positions, exacts)
        triples = zip(keys, exacts, positions, strict=True)
        want = [model.setdefault((k, e), p) for k, e, p in triples]
        assert got == [None if w == p else w for w, p in zip(want, positions, strict=True)]
    assert len(seen) == len(model)
    assert seen._flushed > 0  # most of it was read back from the spill file
    seen.close()


def test_keys_without_exact_text_are_told_apart_by_their_hash() -> None:
    """The export's ids and the single-key path: no exact text, the full hash decides."""
    seen = SeenKeys()
    assert seen.first_position(7, 1) is None
    assert seen.first_position(7, 2) == 1
    assert seen.first_position(8, 4) is None
    assert seen.first_position(8, 5) == 4
    assert len(seen) == 2


def test_the_index_costs_a_few_bytes_a_key() -> None:
    import tracemalloc

    keys = [hash(f"ID-{n}\x1f2026-01-01") for n in range(300_000)]
    exacts = [b"x"] * BATCH_ROWS
    tracemalloc.start()
    seen = SeenKeys()
    for start in range(0, len(keys), BATCH_ROWS):
        batch = keys[start : start + BATCH_ROWS]
        seen.first_positions(batch, list(range(start, start + len(batch))), exacts[: len(batch)])
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert current / len(keys) < 10


def test_more_distinct_dates_and_statuses_than_the_memos_hold() -> None:
    """Past 4,096 distinct dates the memo starts again: every row is still judged, by
    the column checks, as the detailed path judges it."""
    rows = clean_rows(6000)
    for n, row in enumerate(rows):
        row[3] = (date(2012, 1, 1) + timedelta(days=n)).isoformat()
        row[1] = ("on track", "ON TRACK", " At Risk ", "Achieved")[n % 4]
    rows[5000][1] = "Done"  # one status that is none: that batch one by one
    content = csv_bytes(rows)
    detailed = verdicts(content, batched=False, fast=False)
    valid, rejected = verdicts(content, batched=True)
    assert len(valid) == 5999
    assert valid == detailed[0]
    assert [line for line, _ in rejected] == [line for line, _ in detailed[1]] == [5002]


# -- JSON objects: the fast path and the detailed path -----------------------------------

_ID_VALUES = ['"A-1"', '"a-1"', '" B-2 "', '""', '"\\u200bC"', '"\'=D"', '"\\ud800"', "7"]
_STATUS_VALUES = ['"On Track"', '"on track"', '" At Risk "', '"Done"', "null", '""', "3"]
_METRIC_VALUES = [
    "7",
    "-0",
    "12.50",
    "0.000000000000001",
    "0.00000000000001",
    "1e5",
    "1E+2",
    "999999999999999",
    "1000000000000000",
    "-999999999999999",
    "0.1234567890123456",
    "123456789012345.0",
    "true",
    "null",
    '"12.5"',
    "5.0",
    "1" + "0" * 20,
    "[]",
]
_DATE_VALUES = [
    '"2026-11-30"',
    '"2026-02-30"',
    '"11/30/2026"',
    '" 2026-01-05 "',
    "null",
    "20261130",
]
_COMMENT_VALUES = ['"ok"', '" padded "', "null", '""', '"\'=cmd"', '"\\ud800"', "5", '"tab\\there"']


@st.composite
def _json_object(draw: st.DrawFn) -> str:
    """An update object, mostly well formed: each field from a few good and bad values,
    spelt one of several ways, sometimes missing, repeated or joined by other fields."""
    fields = {
        "externalId": st.sampled_from(["externalId", "ExternalID", "external_id"]),
        "status": st.sampled_from(["status", "Status"]),
        "metricValue": st.sampled_from(["metricValue", "metric value"]),
        "asOfDate": st.sampled_from(["asOfDate", "as_of_date"]),
        "comment": st.just("comment"),
    }
    values = {
        "externalId": _ID_VALUES,
        "status": _STATUS_VALUES,
        "metricValue": _METRIC_VALUES,
        "asOfDate": _DATE_VALUES,
        "comment": _COMMENT_VALUES,
    }
    pairs = []
    for name, spellings in fields.items():
        if draw(st.integers(0, 9)) == 0:
            continue  # missing
        # Mostly the first (good) value, so that whole objects that pass are common.
        good = draw(st.integers(0, 9)) < 7 and name != "metricValue"
        value = values[name][0] if good else draw(st.sampled_from(values[name]))
        pairs.append((draw(spellings), value))
    extra = draw(st.sampled_from([None, None, None, "name", "owner", "externalId", "status"]))
    if extra is not None:
        pairs.append((extra, draw(st.sampled_from(_ID_VALUES))))
    return "{" + ", ".join(f'"{key}": {value}' for key, value in pairs) + "}"


_COMMON_OBJECTS = [
    f'{{"externalId": "ID-{n % 50}", "status": "On Track", "metricValue": {n}.5, '
    f'"asOfDate": "2026-01-{1 + n % 28:02d}", "comment": "c"}}'
    for n in range(40)
]


def json_verdicts(content: bytes, *, fast: bool, kind: UpdateKind | None = None):
    """Valid rows, rejected rows (with their messages), and what the validator said about
    the file, with or without the JSON fast path."""
    stream = open_records(io.BytesIO(content), "p.json")
    validator = Validator(kind)
    if not fast:
        validator._json_fast = lambda fields: None  # type: ignore[method-assign]
    valid, rejected = [], []
    try:
        sort_verdicts(validator.validate(stream.records), valid, rejected)
    except Exception as exc:  # noqa: BLE001 - compared, not hidden
        rejected.append((0, str(exc)))
    said = (validator.kind, validator.kind_reason, validator.warnings, validator.ignored)
    return valid, rejected, said


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    objects=st.lists(
        st.one_of(_json_object(), st.sampled_from(_COMMON_OBJECTS)), min_size=1, max_size=40
    ),
    repeat=st.integers(1, 30),
    kind=st.sampled_from([None, UpdateKind.PROGRESS, UpdateKind.METRIC]),
)
def test_json_fast_and_detailed_paths_agree(
    objects: list[str], repeat: int, kind: UpdateKind | None
) -> None:
    """Whatever the fields (spellings, repeats, unknown ones), values and types: the same
    verdicts, messages, kind and warnings with the JSON fast path as without it (objects
    repeated past a chunk, so that duplicates across chunks occur)."""
    many = (objects * repeat)[: CHUNK_RECORDS + 60]
    content = ("[\n" + ",\n".join(many) + "\n]").encode()
    assert json_verdicts(content, fast=True, kind=kind) == json_verdicts(
        content, fast=False, kind=kind
    )


@given(text=st.from_regex(r"-?[0-9]{1,18}(\.[0-9]{0,18})?", fullmatch=True))
def test_a_short_plain_decimal_is_always_sendable(text: str) -> None:
    from achieveit_sync.ingest.validation import _plain_and_short
    from achieveit_sync.updates import metric_value_problem

    value = Decimal(text)
    if _plain_and_short(value):
        assert metric_value_problem(value) is None


def test_long_exact_texts_go_to_the_spill_not_memory() -> None:
    """16 KB keys (a plan's long item ids): 32 MB of them leave about 1 MiB in memory."""
    import tracemalloc

    tracemalloc.start()
    seen = SeenKeys()
    for start in range(0, 2000, 100):
        texts = [b"%08d" % n + b"x" * 16_000 for n in range(start, start + 100)]
        seen.first_positions(list(map(hash, texts)), list(range(start, start + 100)), texts)
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert current < 3 * 1024 * 1024
    assert (
        seen.first_position(hash(b"%08d" % 7 + b"x" * 16_000), 5000, b"%08d" % 7 + b"x" * 16_000)
        == 7
    )
    seen.close()
