"""The rules that keep a row's fate honest, checked without a network: what a metric value
may be, how a request is prepared, how the key is kept out of text, how outputs are named."""

from __future__ import annotations

import gzip
import json
from datetime import date
from decimal import Decimal

import pytest
import responses
from achieveit_sync.api_key import ApiKey, StaticApiKey
from achieveit_sync.client import AchieveItClient
from achieveit_sync.errors import AmbiguousDeliveryError, ConfigurationError
from achieveit_sync.ingest.checkpoints import PartRecord
from achieveit_sync.ingest.notifications import sns_subject
from achieveit_sync.ingest.outputs import MAX_KEY_BYTES, RowsSpool, output_key
from achieveit_sync.ingest.pipeline import request_stem
from achieveit_sync.settings import ClientSettings
from achieveit_sync.spreadsheet import neutralise, unneutralise
from achieveit_sync.updates import (
    BodyFormat,
    MetricUpdate,
    ProgressUpdate,
    Status,
    encode_updates,
    metric_value_problem,
)
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import RECOGNISABLE_KEY

# -- metric values -------------------------------------------------------------------------


@given(
    digits=st.integers(min_value=0, max_value=10**15 - 1),
    exponent=st.integers(min_value=-40, max_value=20),
    negative=st.booleans(),
)
def test_every_accepted_metric_value_reaches_the_api_as_the_same_number(
    digits: int, exponent: int, negative: bool
) -> None:
    value = Decimal(f"{'-' if negative else ''}{digits}E{exponent}")
    if metric_value_problem(value) is not None:
        return
    update = MetricUpdate("A-1", value, date(2026, 11, 1))

    as_json = json.loads(encode_updates([update], BodyFormat.JSON), parse_float=Decimal)
    as_csv = encode_updates([update], BodyFormat.CSV).decode().splitlines()[1].split(",")[1]

    assert Decimal(str(as_json[0]["metricValue"])) == value
    assert Decimal(as_csv) == value
    assert len(as_csv) < 40  # no value explodes into a huge body


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("0", True),
        ("-0.000", True),
        ("999999999999999", True),
        ("1000000000000000", False),
        ("0.000000000000001", True),
        ("0.0000000000000001", False),
        ("123456789012345", True),
        ("1234567890123456", False),
        ("25.500000000000000000000", True),  # trailing zeros carry no digits
        ("1e5000", False),
        ("1e-999999", False),
    ],
)
def test_the_documented_metric_range(text: str, accepted: bool) -> None:
    assert (metric_value_problem(Decimal(text)) is None) is accepted


# -- the key -------------------------------------------------------------------------------


@pytest.mark.parametrize("pasted", ["abc\u2019def", "abc\u00e9def", "abc\x00def", "abc\x7fdef"])
def test_a_key_that_is_not_printable_ascii_is_refused_without_showing_it(pasted: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        ApiKey(pasted)

    assert "not printable ASCII (at position 4)" in str(error.value)
    assert "abc" not in str(error.value)


def test_the_key_is_scrubbed_in_every_form_a_server_could_echo() -> None:
    key = ApiKey('ab/c+"d\\e')
    echoes = [
        'ab/c+"d\\e',
        '"ab\\/c+\\"d\\\\e"',
        "ab\\u002Fc\\u002b\\u0022d\\u005Ce",
        "ab%2Fc%2B%22d%5ce",
        "ab\\/c%2B\\u0022d\\\\e",  # mixed
    ]

    for echo in echoes:
        assert key.scrub(f"before {echo} after") in (
            "before ******** after",
            'before "********" after',
        )


def test_an_answer_cut_at_the_size_limit_loses_a_half_echoed_key() -> None:
    body = "x" * (64 * 1024 - 10) + RECOGNISABLE_KEY
    with responses.RequestsMock() as mocked:
        mocked.post("https://api.achieveit.com/api/progressupdates/a.json", status=200, body=body)
        client = AchieveItClient(ClientSettings(), StaticApiKey(RECOGNISABLE_KEY))
        result = client.submit_updates(
            "a.json", [ProgressUpdate("A", Status.ON_TRACK, date(2026, 11, 1))]
        )

    assert RECOGNISABLE_KEY[:10] not in result.body
    assert result.body.endswith("[cut]")


def test_an_error_the_transport_should_not_raise_is_ambiguous_and_scrubbed() -> None:
    def explode(request: object) -> tuple[int, dict[str, str], str]:
        raise UnicodeEncodeError("latin-1", f"API-KEY {RECOGNISABLE_KEY}", 0, 1, "boom")

    with responses.RequestsMock() as mocked:
        mocked.add_callback(
            responses.POST, "https://api.achieveit.com/api/progressupdates/a.json", explode
        )
        client = AchieveItClient(ClientSettings(), StaticApiKey(RECOGNISABLE_KEY))
        with pytest.raises(AmbiguousDeliveryError) as error:
            client.submit_updates(
                "a.json", [ProgressUpdate("A", Status.ON_TRACK, date(2026, 11, 1))]
            )

    assert "unexpected UnicodeEncodeError" in str(error.value)
    assert error.value.__cause__ is None
    assert RECOGNISABLE_KEY not in repr(error.value) + str(error.value)


# -- names and outputs ---------------------------------------------------------------------


@given(st.text(min_size=1, max_size=300))
def test_neutralised_cells_read_back_as_written(text: str) -> None:
    assert unneutralise(neutralise(text)) == text


@given(
    folder=st.sampled_from(["incoming/progress/", "incoming/"]),
    name=st.text(min_size=1, max_size=600).filter(lambda t: "\x00" not in t),
    extension=st.sampled_from([".csv", ".csv.gz", ".json", ""]),
)
def test_derived_keys_fit_s3_and_stay_distinct(folder: str, name: str, extension: str) -> None:
    key = (folder + name)[:1000] + extension
    key = key.encode("utf-8", "ignore")[:MAX_KEY_BYTES].decode("utf-8", "ignore")
    other = key + "x"

    for prefix, suffix in [("reports/", ".json"), ("rejected/", ""), ("archive/2026-11-28/", "")]:
        derived = output_key(prefix, key, suffix)
        assert len(derived.encode("utf-8")) <= MAX_KEY_BYTES
        assert derived == output_key(prefix, key, suffix)
        assert derived != output_key(prefix, other, suffix)
        if key.endswith(".csv.gz"):
            assert derived.endswith(".csv.gz" + suffix)


def test_request_names_stay_short_whatever_the_file_name() -> None:
    stem = request_stem("incoming/progress/" + "é" * 900 + ".csv")

    assert len(stem) <= 60
    assert stem != request_stem("incoming/progress/" + "é" * 901 + ".csv")
    assert request_stem("incoming/progress/kpis.csv") == "kpis.csv"


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        ("AchieveIt ingest failed: données.csv", "AchieveIt ingest failed: donnees.csv"),
        ("a\r\nb\tc", "a b c"),
        ("✓ 数据.csv", "? ?.csv"),
        ("x" * 300, "x" * 96 + "..."),
        ("\ud800 broken", "\\ud800 broken"),
        ("\n\n", "AchieveIt ingest"),
    ],
)
def test_sns_subjects_are_what_sns_accepts(name: str, subject: str) -> None:
    result = sns_subject(name)

    assert result == subject
    assert result.isascii()
    assert result.isprintable()
    assert len(result) < 100


def test_rejected_rows_are_spooled_compressed() -> None:
    row = b"PX-1.3,Sideways,,2026-11-01,line 2: status: is not an AchieveIt status\r\n"
    with RowsSpool() as spool:
        for _ in range(100_000):
            spool.sink.write(row)
        compressed = spool.contents(compressed=True).read()
        plain = spool.contents(compressed=False).read()

    assert plain == row * 100_000
    assert gzip.decompress(compressed) == plain
    assert len(compressed) < len(plain) / 50


def test_a_checkpoint_of_a_part_refused_row_by_row_fits_dynamodb() -> None:
    record = PartRecord(part=1, rows=500)
    name = "x" * 60 + ".part-0001.json"
    for line in range(2, 502):
        record.refused[line] = f"unknown external ID 'ID-{line}' " + "m" * 300
    record.requests = [
        {"name": name, "response_body": "b" * 2000, "outcome": "refused"} for _ in range(40)
    ]

    text = record.to_json()

    assert len(text) < 300_000
    restored = PartRecord.from_json(1, text)
    assert restored.refused.keys() == record.refused.keys()


def test_a_checkpoint_written_before_grouping_still_loads() -> None:
    old = json.dumps(
        {
            "rows": 2,
            "accepted": 0,
            "complete": True,
            "acceptedLines": [],
            "refused": {"2": "unknown"},
            "ambiguous": {"3": "f.part-0001.json"},
            "inFlight": [],
            "inFlightRequest": "",
            "requests": [],
        }
    )

    record = PartRecord.from_json(1, old)

    assert record.refused == {2: "unknown"}
    assert record.ambiguous == {3: "f.part-0001.json"}
