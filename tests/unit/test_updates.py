"""The wire formats: exactly the API's field names and column names."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

import pytest
from achieveit_sync.updates import (
    BodyFormat,
    MetricUpdate,
    ProgressUpdate,
    Status,
    encode_updates,
    kind_of,
)


def test_json_uses_the_documented_field_names_and_omits_an_empty_comment() -> None:
    updates = [
        ProgressUpdate("EXT-1", Status.AT_RISK, date(2026, 11, 1), Decimal("0.2"), "late"),
        ProgressUpdate("EXT-2", Status.ACHIEVED, date(2026, 11, 2)),
    ]

    body = json.loads(encode_updates(updates, BodyFormat.JSON))

    assert body == [
        {
            "externalId": "EXT-1",
            "status": "At Risk",
            "metricValue": 0.2,
            "asOfDate": "2026-11-01",
            "comment": "late",
        },
        {"externalId": "EXT-2", "status": "Achieved", "asOfDate": "2026-11-02"},
    ]


def test_integral_metric_values_stay_integers() -> None:
    body = json.loads(
        encode_updates([MetricUpdate("M", Decimal("1200.00"), date(2026, 1, 1))], BodyFormat.JSON)
    )

    assert body[0]["metricValue"] == 1200
    assert isinstance(body[0]["metricValue"], int)


def test_csv_has_a_header_and_quotes_commas_and_newlines() -> None:
    updates = [
        ProgressUpdate("EXT-1", Status.ON_TRACK, date(2026, 11, 1), Decimal("12.5"), "a, b\nc"),
    ]

    rows = list(csv.reader(io.StringIO(encode_updates(updates, BodyFormat.CSV).decode())))

    assert rows == [
        ["External ID", "Status", "Metric Value", "As Of Date", "Comment"],
        ["EXT-1", "On Track", "12.5", "2026-11-01", "a, b\nc"],
    ]


def test_metric_csv_uses_the_metric_columns() -> None:
    body = encode_updates([MetricUpdate("M-1", Decimal("3"), date(2026, 2, 3))], BodyFormat.CSV)

    assert body.decode().splitlines() == [
        "External ID,Current Metric Value,As Of Date,Comment",
        "M-1,3,2026-02-03,",
    ]


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("on track", Status.ON_TRACK),
        ("NOT  STARTED", Status.NOT_STARTED),
        (" Canceled ", Status.CANCELED),
        ("Cancelled", None),
        ("OnTrack", None),
    ],
)
def test_statuses_parse_in_any_case_but_spelling_matters(text: str, status: Status | None) -> None:
    assert Status.parse(text) == status


def test_a_request_never_mixes_kinds() -> None:
    with pytest.raises(ValueError, match="one kind"):
        kind_of(
            [
                ProgressUpdate("A", Status.ON_TRACK, date(2026, 1, 1)),
                MetricUpdate("B", Decimal(1), date(2026, 1, 1)),
            ]
        )
