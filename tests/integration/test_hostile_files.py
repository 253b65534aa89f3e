"""Files written the way careless or hostile producers write them, through the real ingest
(moto + the sandbox): every one ends in a verdict and a report, nothing is mislabelled
"may have been applied" unless its request may have reached AchieveIt, nothing is silently
changed on the way."""

from __future__ import annotations

import gzip
import json
import logging
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from achieveit_sandbox import Fault, FaultPlan, SandboxServer
from achieveit_sync.ingest.outputs import MAX_KEY_BYTES
from achieveit_sync.settings import ReadBounds
from achieveit_sync.updates import BodyFormat
from aws_lambda_powertools import Metrics

from tests.conftest import RECOGNISABLE_KEY, all_log_text
from tests.integration.ingest_stack import BUCKET, IngestStack, unique_key

pytestmark = pytest.mark.usefixtures("aws")

HEADER = "External ID,Status,Metric Value,As Of Date\n"


def stored_metrics(sandbox: SandboxServer) -> dict[tuple[str, str], Decimal]:
    """(external ID, date) -> the metric value AchieveIt stored, as the decimal it reads."""
    return {
        (u.external_id, u.as_of_date.isoformat()): Decimal(repr(u.metric_value))
        for u in sandbox.stored_updates()
        if u.metric_value is not None
    }


@pytest.mark.parametrize("body_format", [BodyFormat.JSON, BodyFormat.CSV])
def test_metric_values_outside_the_exact_range_are_rejected_the_rest_arrive_unchanged(
    sandbox: SandboxServer, body_format: BodyFormat
) -> None:
    # Given values that would reach AchieveIt as another number (or take minutes to encode)
    stack = IngestStack(sandbox, overrides={"body_format": body_format})
    key = unique_key("progress", "csv")
    stack.drop(
        key,
        (
            HEADER + "PX-1.1,On Track,1e5000,2026-11-01\n"
            "PX-1.1,On Track,1e-999999,2026-11-02\n"
            "PX-1.1,On Track,1e99999999,2026-11-03\n"
            "PX-1.1,On Track,0.12345678901234567,2026-11-04\n"
            "PX-1.1,On Track,123456789012345,2026-11-05\n"
            "PX-1.2,On Track,0.000000000000001,2026-11-05\n"
            "PX-1.2,On Track,-98765.4321E2,2026-11-06\n"
        ).encode(),
    )

    # When the file is handled
    stack.deliver()

    # Then the four are rejected with the range, the three others stored exactly as written
    report = stack.report(key)
    assert report["counts"]["rejected"] == 4
    assert report["counts"]["published"] == 3
    assert report["counts"]["ambiguous"] == 0
    reasons = {r["line"]: r["reason"] for r in report["rejections"]}
    assert "too large" in reasons[2]
    assert "too close to 0" in reasons[3]
    assert "too large" in reasons[4]
    assert "significant digits" in reasons[5]
    assert all("at most 15 significant digits" in r["hint"] for r in report["rejections"])
    assert stored_metrics(sandbox) == {
        ("PX-1.1", "2026-11-05"): Decimal("123456789012345"),
        ("PX-1.2", "2026-11-05"): Decimal("1e-15"),
        ("PX-1.2", "2026-11-06"): Decimal("-9876543.21"),
    }


def test_json_numbers_are_read_exactly_and_huge_ones_rejected(sandbox: SandboxServer) -> None:
    stack = IngestStack(sandbox)
    key = unique_key("metrics", "json")
    huge = "9" * 5000
    body = (
        '[\n{"externalId": "PX-3.1", "metricValue": 0.1, "asOfDate": "2026-11-01"},\n'
        '{"externalId": "PX-3.1", "metricValue": 1e-999999, "asOfDate": "2026-11-02"},\n'
        f'{{"externalId": "PX-3.1", "metricValue": {huge}, "asOfDate": "2026-11-03"}},\n'
        f'{{"externalId": {huge}, "metricValue": 1, "asOfDate": "2026-11-04"}}\n]\n'
    )
    stack.drop(key, body.encode())

    stack.deliver()

    report = stack.report(key)
    assert report["status"] == "completed_with_rejections"
    assert stored_metrics(sandbox) == {("PX-3.1", "2026-11-01"): Decimal("0.1")}
    reasons = {(r["line"], r["field"]): r["reason"] for r in report["rejections"]}
    assert "too close to 0" in reasons[(3, "metricValue")]
    assert "5000 characters long" in reasons[(4, "metricValue")]
    assert reasons[(5, "externalId")] == "must be text"
    # The rejected file is JSON again, holding the numbers as the numbers they were.
    rejected = json.loads(stack.text(f"rejected/{key}"), parse_int=str, parse_float=str)
    assert [Decimal(row["metricValue"]) for row in rejected] == [
        Decimal("1e-999999"),
        Decimal(huge),
        1,
    ]
    assert rejected[2]["externalId"] == huge
    assert stack.dead_letters() == 0


@pytest.mark.parametrize("extension", ["json", "jsonl"])
def test_lone_surrogates_end_in_rejections_and_warnings(
    sandbox: SandboxServer, extension: str
) -> None:
    stack = IngestStack(sandbox)
    key = unique_key("progress", extension)
    rows = [
        '{"externalId": "PX-1.3", "status": "On Track", "asOfDate": "2026-11-01"}',
        '{"externalId": "PX-1.3", "status": "On Track", "asOfDate": "2026-11-02", '
        '"comment": "broken \\ud800 escape"}',
        '{"externalId": "PX-\\udc00", "status": "On Track", "asOfDate": "2026-11-03"}',
        '{"externalId": "PX-2.3", "status": "At Risk", "asOfDate": "2026-11-04", "\\ud83d odd": 1}',
    ]
    body = "[\n" + ",\n".join(rows) + "\n]\n" if extension == "json" else "\n".join(rows)
    stack.drop(key, body.encode())

    stack.deliver()

    report = stack.report(key)
    assert report["counts"]["published"] == 2
    fields = sorted(r["field"] for r in report["rejections"])
    assert fields == ["comment", "externalId"]
    assert all("lone UTF-16 surrogate" in r["reason"] for r in report["rejections"])
    assert any("unknown field" in w and "\\ud83d" in w for w in report["warnings"])
    rejected_text = stack.text(f"rejected/{key}")
    assert "\\ud800" in rejected_text  # escaped, so the file is valid UTF-8 and valid JSON
    assert stack.keys("archive/")
    assert stack.dead_letters() == 0


def test_a_key_that_is_not_printable_ascii_is_a_configuration_error_not_ambiguity(
    sandbox: SandboxServer,
) -> None:
    # Given a secret holding the key with a pasted curly quote
    stack = IngestStack(sandbox)
    stack.put_secret(RECOGNISABLE_KEY + "\u2019")
    key = unique_key("progress", "csv")
    stack.drop(key, (HEADER + "PX-1.3,On Track,,2026-11-01\n").encode())

    # When it is tried twice, then the secret is fixed and the message comes back
    stack.deliver(rounds=2, must_drain=False)
    failed = stack.report(key)
    stack.put_secret(RECOGNISABLE_KEY)
    stack.deliver()

    # Then the first runs said what was wrong, sent nothing and marked nothing ambiguous
    assert failed["counts"]["ambiguous"] == 0
    assert failed["counts"]["notSent"] == 1
    assert "not printable ASCII" in failed["fileError"]["reason"]
    assert RECOGNISABLE_KEY not in json.dumps(failed)
    # and the fixed key published the row once, with nothing "may have been applied"
    report = stack.report(key)
    assert report["status"] == "completed"
    assert report["counts"]["ambiguous"] == 0
    assert len(sandbox.stored_updates()) == 1


def test_the_key_echoed_in_any_encoding_never_reaches_a_report(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stack = IngestStack(sandbox)
    sandbox.set_faults(FaultPlan(on_requests=dict.fromkeys(range(1, 4), Fault.ECHO_KEY)))
    key = unique_key("progress", "csv")
    stack.drop(
        key, (HEADER + "PX-1.3,On Track,,2026-11-01\nPX-404,On Track,,2026-11-01\n").encode()
    )

    stack.deliver()

    report_text = stack.text(f"reports/{key}.json")
    echoes = [
        RECOGNISABLE_KEY,
        "".join(f"\\u{ord(c):04X}" if c.isalnum() else c for c in RECOGNISABLE_KEY),
        quote(RECOGNISABLE_KEY, safe=""),
    ]
    # (botocore's own DEBUG lines carry the secret this test stored: not our logging)
    logs = all_log_text(caplog, exclude=("botocore",))
    everything = [report_text, stack.text(f"rejected/{key}"), logs]
    assert "********" in report_text  # the echo was there, and blanked
    for text in everything:
        for echo in echoes:
            assert echo not in text
            assert echo not in json.loads(json.dumps(text))


def test_every_output_key_stays_within_s3s_limit(sandbox: SandboxServer) -> None:
    stack = IngestStack(sandbox)
    sandbox.set_faults(FaultPlan(on_requests={1: Fault.RESET_AFTER}))
    folder = "incoming/progress/"
    key = folder + "é" * ((MAX_KEY_BYTES - len(folder) - 4) // 2) + ".csv"
    assert len(key.encode()) <= MAX_KEY_BYTES
    stack.drop(key, (HEADER + "PX-1.3,On Track,,2026-11-01\nPX-1.3,Nope,,2026-11-02\n").encode())

    stack.deliver()

    outputs = [k for k in stack.keys() if not k.startswith("incoming/")]  # noqa: SIM118
    assert {k.split("/", 1)[0] for k in outputs} == {"reports", "rejected", "ambiguous", "archive"}
    assert all(len(k.encode()) <= MAX_KEY_BYTES for k in outputs)
    [report_key] = [k for k in outputs if k.startswith("reports/")]
    report = json.loads(stack.text(report_key))
    assert report["source"]["key"] == key
    assert report["counts"]["ambiguous"] == 1
    assert report["outputs"]["report"] == f"s3://{BUCKET}/{report_key}"


def test_a_csv_and_its_gzip_twin_keep_separate_rejected_files(sandbox: SandboxServer) -> None:
    stack = IngestStack(sandbox)
    plain = HEADER + "PX-1.3,Nope,,2026-11-01\n"
    stack.drop("incoming/progress/twin.csv", plain.encode())
    stack.drop(
        "incoming/progress/twin.csv.gz",
        gzip.compress((HEADER + "PX-2.3,Sideways,,2026-11-01\n").encode()),
    )

    stack.deliver()

    assert "Nope" in stack.text("rejected/incoming/progress/twin.csv")
    assert "Sideways" in stack.text("rejected/incoming/progress/twin.csv.gz")


def test_a_rejected_file_dropped_back_carries_the_same_external_ids(
    sandbox: SandboxServer,
) -> None:
    # Given items whose external IDs a spreadsheet would take for formulas
    renamed = {"PX-1.3": "-PX-1.3", "PX-2.3": "=PX-2.3", "PX-1": "+PX-1", "PX-2": "@PX-2"}
    with sandbox.organisation() as organisation:
        plan = organisation.plans["PX-2027"]
        for item in list(plan.items):
            if item.external_id in renamed:
                organisation.remove_item(plan.id, item.id)
                item.external_id = renamed[item.external_id]
                organisation.add_item(plan.id, item)
    stack = IngestStack(sandbox)
    lines = [f"{new},On Track,,2026-13-01,- checked by @ops" for new in renamed.values()]
    stack.drop(
        "incoming/progress/ids.csv",
        ("External ID,Status,Metric Value,As Of Date,Comment\n" + "\n".join(lines)).encode(),
    )
    stack.deliver()
    rejected = stack.text("rejected/incoming/progress/ids.csv")
    assert "'-PX-1.3" in rejected  # neutralised for spreadsheets

    # When the rejected file is fixed (only the date) and dropped back
    stack.drop(
        "incoming/progress/ids-fixed.csv", rejected.replace("2026-13-01", "2026-12-01").encode()
    )
    stack.deliver()

    # Then AchieveIt received the original IDs and comments
    stored = sandbox.stored_updates()
    assert sorted(u.external_id for u in stored) == sorted(renamed.values())
    assert {u.comment for u in stored} == {"- checked by @ops"}


def test_an_unexpected_error_writes_the_report_before_the_dead_letter_queue(
    sandbox: SandboxServer,
) -> None:
    stack = IngestStack(sandbox)
    stack.dynamodb.delete_table(TableName="checkpoints")
    key = unique_key("progress", "csv")
    stack.drop(key, (HEADER + "PX-1.3,On Track,,2026-11-01\n").encode())

    stack.deliver(rounds=8, must_drain=False)

    assert stack.dead_letters() == 1
    report = stack.report(key)
    assert report["status"] == "failed"
    assert report["stopReason"] == "error"
    assert report["fileError"]["errorType"] == "ResourceNotFoundException"
    assert any("failed" in n["Subject"] for n in stack.notifications())


def test_a_lost_notification_never_fails_a_handled_file(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    stack = IngestStack(sandbox)
    stack.sns.delete_topic(TopicArn=stack.topic_arn)
    key = unique_key("progress", "csv")
    stack.drop(key, (HEADER + "PX-1.3,On Track,,2026-11-01\nPX-2.3,Nope,,2026-11-01\n").encode())

    metrics = Metrics(namespace="AchieveItSync", service="achieveit-sync-ingest")

    stack.deliver(
        handler=lambda event, context: dict(stack.service.handle(event, context, metrics))
    )

    assert stack.report(key)["status"] == "completed_with_rejections"
    assert stack.keys("archive/")
    assert stack.dead_letters() == 0
    assert any(r.getMessage() == "notification not sent" for r in caplog.records)
    emitted = metrics.serialize_metric_set()
    assert emitted["NotificationsFailed"] == [1.0]  # the metric NotificationsFailedAlarm watches
    metrics.clear_metrics()


def test_a_non_ascii_file_name_still_gets_its_notification(sandbox: SandboxServer) -> None:
    stack = IngestStack(sandbox)
    stack.drop(
        "incoming/progress/données\r\nété.csv", (HEADER + "PX-2.3,Nope,,2026-11-01\n").encode()
    )

    stack.deliver()

    [notification] = stack.notifications()
    subject = notification["Subject"]
    assert subject == "AchieveIt ingest: 1 row rejected in donnees ete.csv"
    assert "Rejected rows, by reason:" in notification["Message"]
    assert "use one of" in notification["Message"]  # the hint travels with the reason


def test_a_gzip_of_blank_lines_fails_at_once_with_a_report(sandbox: SandboxServer) -> None:
    stack = IngestStack(sandbox)
    key = unique_key("progress", "csv.gz")
    stack.drop(key, gzip.compress(b"\n" * 3_000_000, compresslevel=9))

    stack.deliver()

    report = stack.report(key)
    assert report["status"] == "failed"
    assert "more than 2,000,000 lines" in report["fileError"]["reason"]
    assert "INGEST_MAX_LINES" in report["fileError"]["hint"]
    assert stack.keys("archive/")


def test_more_rows_than_allowed_fail_with_a_split_hint(sandbox: SandboxServer) -> None:
    stack = IngestStack(sandbox, overrides={"bounds": ReadBounds(max_rows=3)})
    key = unique_key("progress", "csv")
    stack.drop(
        key, (HEADER + "".join(f"PX-1.3,On Track,,2026-11-0{d}\n" for d in range(1, 5))).encode()
    )

    stack.deliver()

    report = stack.report(key)
    assert report["status"] == "failed"
    assert "more than 3 rows" in report["fileError"]["reason"]
    assert sandbox.recorded_requests() == []


def test_validation_that_outlasts_every_invocation_ends_instead_of_looping(
    sandbox: SandboxServer,
) -> None:
    # Given a function that is always short of time (every check says: stop now)
    stack = IngestStack(sandbox, overrides={"time_margin_seconds": 10_000.0})
    key = unique_key("progress", "csv")
    first = date(2026, 1, 1)
    rows = [f"PX-1.3,On Track,,{first + timedelta(days=n)}\n" for n in range(5000)]
    stack.drop(key, (HEADER + "".join(rows)).encode())

    # When it is delivered (the first run queues a continuation)
    stack.deliver(rounds=5)

    # Then the second run without progress failed the file, with the advice to split it
    report = stack.report(key)
    assert report["status"] == "failed"
    assert "split it" in report["fileError"]["hint"]
    assert report["stopReason"] is None
    assert report["source"]["resume"] == 1
    assert sandbox.recorded_requests() == []
    assert stack.keys("archive/")
