"""Odd on-demand events, settings and secrets given to the export function.

README: "Invoked with {"plans": ["PLAN-ID"]} it backs up those plans on demand"; bad plan ids
fail alone "whether the id came from PlanIds or from an on-demand event (where null, numbers
and lists are refused likewise)"; settings are checked ("BACKUP_TIME_ZONE ... IANA"); the
key never appears in any object, log or output.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.conftest import RECOGNISABLE_KEY, all_log_text

from .hostile import (
    everything_in_bucket,
    handler_for,
    invoke,
    item,
    keys,
    make_bucket,
    outcomes,
    paged,
)

pytestmark = pytest.mark.usefixtures("aws")

PLANS = {
    "SMALL": [item(n, "SMALL") for n in range(1, 4)],
    "S": [item(1, "S")],
    "NIGHTLY": [item(1, "N")],
}


@pytest.fixture
def server(hostile: Any) -> Any:
    return hostile(paged(PLANS))


@pytest.mark.parametrize(
    "event",
    [
        {"plans": None},
        {"plans": 5},
        {"plans": {"SMALL": True}},
        {"plan": ["SMALL"]},
        {"Plans": ["SMALL"]},
    ],
    ids=["null", "number", "object", "plan", "Plans"],
)
def test_a_malformed_on_demand_event_is_refused_not_swapped_for_the_nightly_plans(
    server: Any, monkeypatch: pytest.MonkeyPatch, event: dict[str, Any]
) -> None:
    s3 = make_bucket()
    handler = handler_for(monkeypatch, server.base_url, server.ca_file, "NIGHTLY")

    result, error = invoke(handler, event)

    ran = (
        [o["planId"] for o in outcomes(result, error)] if (result or hasattr(error, "run")) else []
    )
    assert error is not None or "NIGHTLY" not in ran, (event, ran)
    assert not keys(s3, "backups/NIGHTLY/")


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"plans": "SMALL"}, [("SMALL", "complete")]),
        ({"plans": ["SMALL", "SMALL"]}, [("SMALL", "complete")]),
        ({"plans": ["SMALL\n"]}, [("SMALL", "complete")]),
        ({"plans": ["x"] * 20_000}, [("x", "failed")]),
        (
            {"plans": ["\uff33\uff2d\uff21\uff2c\uff2c"]},
            [("'\\uff33\\uff2d\\uff21\\uff2c\\uff2c'", "failed")],
        ),
    ],
    ids=["a string", "twice", "newline", "20000 copies", "fullwidth"],
)
def test_odd_but_harmless_events(
    server: Any, monkeypatch: pytest.MonkeyPatch, event: Any, expected: list[tuple[str, str]]
) -> None:
    s3 = make_bucket()
    handler = handler_for(monkeypatch, server.base_url, server.ca_file, "NIGHTLY")

    result, error = invoke(handler, event)

    assert [(o["planId"], o["status"]) for o in outcomes(result, error)] == expected
    # backups/SMALL/..., templates/SMALL/..., history/snapshot_date=<day>/plan_id=SMALL/...
    assert {
        k.split("/")[2 if k.startswith("history/") else 1].removeprefix("plan_id=")
        for k in keys(s3)
    } <= {"SMALL"}


@pytest.mark.parametrize(
    ("plan_ids", "expected"),
    [
        (",,,", []),
        ("SMALL,,S", [("SMALL", "complete"), ("S", "complete")]),
        ("SMALL\t, S\u00a0", [("SMALL", "complete"), ("S", "complete")]),
        ("SMALL,SMALL", [("SMALL", "complete")]),
        ("SMALL\u200b,S", [("'SMALL\\u200b'", "failed"), ("S", "complete")]),
        ('["SMALL","S"]', [("'[\"SMALL\"'", "failed"), ("'\"S\"]'", "failed")]),
    ],
)
def test_plan_ids_values(
    server: Any, monkeypatch: pytest.MonkeyPatch, plan_ids: str, expected: list[Any]
) -> None:
    make_bucket()
    handler = handler_for(monkeypatch, server.base_url, server.ca_file, plan_ids)

    result, error = invoke(handler, {})

    assert [(o["planId"], o["status"]) for o in outcomes(result, error)] == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BACKUP_TIME_ZONE", "../../../etc/localtime"),
        ("BACKUP_TIME_ZONE", "/usr/share/zoneinfo/UTC"),
        ("BACKUP_TIME_ZONE", "utc"),
        ("BACKUP_EXPIRATION_DAYS", "0"),
        ("BACKUP_EXPIRATION_DAYS", "-400"),
        ("BACKUP_EXPIRATION_DAYS", "nan"),
        ("BACKUP_EXPIRATION_DAYS", "inf"),
        ("BACKUP_EXPIRATION_DAYS", "400.5"),
        ("BACKUP_EXPIRATION_DAYS", "4_00"),
        ("BACKUP_EXPIRATION_DAYS", "\u0664\u0660\u0660"),
        ("ACHIEVEIT_BASE_URL", "http://127.0.0.1:1"),
        ("ACHIEVEIT_BASE_URL", f"https://user:{RECOGNISABLE_KEY}@127.0.0.1:1"),
        ("ACHIEVEIT_CA_BUNDLE", "/tmp"),
    ],
)
def test_bad_settings_are_refused_before_any_request(
    server: Any, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    s3 = make_bucket()
    handler = handler_for(monkeypatch, server.base_url, server.ca_file, "SMALL", **{name: value})

    result, error = invoke(handler, {})

    assert type(error).__name__ == "ConfigurationError", (result, error)
    assert RECOGNISABLE_KEY not in str(error)
    assert server.exports() == []
    assert keys(s3) == []


@pytest.mark.parametrize(
    "bucket",
    ["arn:aws:s3:::attack-backups-bucket", "s3://attack-backups-bucket", "attack-backups-bucket/x"],
)
def test_a_bucket_setting_that_is_not_a_bucket_name_is_a_configuration_error(
    server: Any, monkeypatch: pytest.MonkeyPatch, bucket: str
) -> None:
    make_bucket()
    handler = handler_for(
        monkeypatch, server.base_url, server.ca_file, "SMALL", BACKUP_BUCKET=bucket
    )

    result, error = invoke(handler, {})

    assert type(error).__name__ == "ConfigurationError", (result, error)
    assert server.exports() == []


SECRETS = {
    "trailing newline": RECOGNISABLE_KEY + "\n",
    "CRLF": RECOGNISABLE_KEY + "\r\n",
    "a newline inside": RECOGNISABLE_KEY[:10] + "\n" + RECOGNISABLE_KEY[10:],
    "JSON, wrong field": json.dumps({"api_key": RECOGNISABLE_KEY}),
    "JSON, list": json.dumps({"apiKey": [RECOGNISABLE_KEY]}),
    "JSON, nested": json.dumps({"apiKey": {"value": RECOGNISABLE_KEY}}),
    "JSON, trailing comma": '{"apiKey": "' + RECOGNISABLE_KEY + '",}',
    "curly quotes": "\u201c" + RECOGNISABLE_KEY + "\u201d",
    "NUL": RECOGNISABLE_KEY + "\x00",
    "with its scheme": "API-KEY " + RECOGNISABLE_KEY,
    "70 kB": RECOGNISABLE_KEY + "x" * 70_000,
}


@pytest.mark.parametrize("shape", sorted(SECRETS))
def test_no_shape_of_secret_leaks_the_key(
    server: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    shape: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    s3 = make_bucket()
    handler = handler_for(monkeypatch, server.base_url, server.ca_file, "SMALL", key=SECRETS[shape])

    result, error = invoke(handler, {})

    out = capsys.readouterr()
    logs = all_log_text(caplog, exclude=("botocore", "urllib3", "boto3", "s3transfer"))
    seen = "\n".join(
        [out.out, out.err, repr(result), repr(error), str(error), everything_in_bucket(s3), logs]
    )
    for fragment in (RECOGNISABLE_KEY, RECOGNISABLE_KEY[:10], RECOGNISABLE_KEY[10:]):
        assert fragment not in seen, shape
