"""Hostile events and deliveries: odd SQS bodies, S3 keys, versions of one key delivered in
order and out of order, a file re-dropped as the runbook says."""

from __future__ import annotations

import json
import logging

import pytest
from achieveit_sandbox import SandboxServer

from tests.attack.helpers import purge, put, report_or_none, s3_event_body, send
from tests.integration.ingest_stack import BUCKET, IngestStack

pytestmark = pytest.mark.usefixtures("aws")

HEADER = "External ID,Status,Metric Value,As Of Date\n"
KEY = "incoming/progress/kpis.csv"


def archived_text(stack: IngestStack) -> str:
    """Every archived source, one after the other (a key archived twice a day is kept twice)."""
    return "\n".join(stack.text(key) for key in stack.keys("archive/"))


# --------------------------------------------------------------------------- findings ---


def test_a_fixed_file_dropped_back_under_its_key_leaves_no_stale_rejected_file(
    sandbox: SandboxServer,
) -> None:
    """FINDING (confusing; risks duplicates). Runbook: fix the rows in rejected/<key> and drop
    that file under incoming/ again. Dropped back under the same key, the new version's
    report says `completed` and names no rejected file, yet rejected/<key> still holds the
    row that has just been published; the first version's report (with its rejection) is
    overwritten, and archive/<date>/<key> now holds only the fixed row, not the source."""
    stack = IngestStack(sandbox)
    stack.drop(KEY, (HEADER + "PX-1.3,On Track,,2026-11-01\nPX-2.3,Nope,,2026-11-01\n").encode())
    stack.deliver()
    first = stack.report(KEY)
    assert first["status"] == "completed_with_rejections"
    fixed = stack.text(f"rejected/{KEY}").replace("Nope", "At Risk")

    stack.drop(KEY, fixed.encode())
    stack.deliver()

    second = stack.report(KEY)
    print(second["status"], second["outputs"], stack.keys())
    print("archive now:", archived_text(stack))
    assert "rejected" not in second["outputs"]
    assert stack.keys("rejected/") == [], "a stale rejected file next to a 'completed' report"
    assert "PX-1.3" in archived_text(stack), "the archive lost the original source"


def test_an_older_version_delivered_late_does_not_win(sandbox: SandboxServer) -> None:
    """FINDING (stale data, not promised either way). Two versions of one key: v1 says On
    Track, v2 (a correction) says Off Track for the same item and date. SQS delivers v2's
    notification first (standard queues do reorder; S3 gives a `sequencer` for this). Both
    are processed, the stale v1 lands last in AchieveIt, and reports/<key> and
    archive/<date>/<key> end up describing v1: nothing says a newer version was overtaken."""
    stack = IngestStack(sandbox)
    v1, e1 = put(stack, KEY, (HEADER + "PX-1.3,On Track,,2026-11-01\n").encode())
    v2, e2 = put(stack, KEY, (HEADER + "PX-1.3,Off Track,,2026-11-01\n").encode())
    purge(stack)
    send(stack, s3_event_body(KEY, version_id=v2, etag=e2, sequencer="0055AED6DCD90281E6"))
    stack.deliver()
    send(stack, s3_event_body(KEY, version_id=v1, etag=e1, sequencer="0055AED6DCD90281E5"))
    stack.deliver()

    history = [(u.status) for u in sandbox.stored_updates()]
    report = stack.report(KEY)
    print(history, report["source"]["versionId"] == v1, report["warnings"])
    assert history[-1] == "Off Track" or report["warnings"], (
        "the older version silently overwrote the newer one"
    )
    assert report["source"]["versionId"] == v2 or report["warnings"]


@pytest.mark.parametrize(
    "body",
    [
        "not json at all",
        '{"Records": [{"eventSource": "aws:s3"}]}',
        '{"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": "{}"}',
    ],
    ids=["not-json", "record-without-eventName", "sns-envelope"],
)
def test_a_poison_message_is_explained_in_the_log_not_only_at_debug(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture, body: str
) -> None:
    """FINDING (crash, low). A message that is not an S3 notification raises (JSONDecodeError,
    KeyError 'eventName') inside the record handler; the only trace is Powertools' DEBUG
    line, so at the template's INFO level nothing says why it was retried five times and
    ended in the dead-letter queue."""
    caplog.set_level(logging.INFO)
    stack = IngestStack(sandbox)
    send(stack, body)

    stack.deliver(rounds=8, must_drain=False)

    ours = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith(("achieveit_sync", "aws_lambda"))
    ]
    print(stack.dead_letters(), [(r.name, r.getMessage()) for r in ours])
    assert ours, "the message went to the DLQ without a warning or error in the log"


def test_a_folder_placeholder_is_not_a_failed_file(sandbox: SandboxServer) -> None:
    """FINDING (cosmetic). The S3 console's 'Create folder' puts a 0-byte object
    `incoming/progress/`; it gets a `failed` report at reports/incoming/progress/.json and a
    notification 'AchieveIt ingest failed: ' with no file name."""
    stack = IngestStack(sandbox)
    stack.drop("incoming/progress/", b"")

    stack.deliver()

    subjects = [n["Subject"] for n in stack.notifications()]
    print(stack.keys(), subjects)
    assert not any("failed" in s for s in subjects)


# --------------------------------------------------------------------- held up ---------


def test_a_file_deleted_before_its_message_is_ignored_quietly(sandbox: SandboxServer) -> None:
    """HELD. The version named by the event no longer exists: nothing sent, no DLQ."""
    stack = IngestStack(sandbox)
    v1, e1 = put(stack, KEY, (HEADER + "PX-1.3,On Track,,2026-11-01\n").encode())
    stack.s3.delete_object(Bucket=BUCKET, Key=KEY, VersionId=v1)
    purge(stack)
    send(stack, s3_event_body(KEY, version_id=v1, etag=e1))

    stack.deliver()

    assert sandbox.recorded_requests() == []
    assert stack.dead_letters() == 0


def test_events_for_other_buckets_archives_and_removals_send_nothing(
    sandbox: SandboxServer,
) -> None:
    """HELD. An event naming another bucket, the ingest's own archive copy, or an
    ObjectRemoved event is not processed (no request, nothing re-sent)."""
    stack = IngestStack(sandbox)
    stack.drop(KEY, (HEADER + "PX-1.3,On Track,,2026-11-01\n").encode())
    stack.deliver()
    [archived] = stack.keys("archive/")
    stack.s3.create_bucket(Bucket="someone-elses-bucket")
    stack.s3.put_object(Bucket="someone-elses-bucket", Key=KEY, Body=b"x")
    send(stack, s3_event_body(KEY, bucket="someone-elses-bucket"))
    send(stack, s3_event_body(archived))
    send(stack, s3_event_body(KEY, event_name="ObjectRemoved:Delete"))

    stack.deliver()

    assert len(sandbox.recorded_requests()) == 1
    assert stack.dead_letters() == 0


def test_a_key_with_spaces_plus_and_percent_is_decoded(sandbox: SandboxServer) -> None:
    """HELD. `Q4 KPIs+final (v2)%41.csv` as S3 encodes it (+ for space, %2B, %25)."""
    stack = IngestStack(sandbox)
    key = "incoming/progress/Q4 KPIs+final (v2)%41.csv"
    v, e = put(stack, key, (HEADER + "PX-1.3,On Track,,2026-11-01\n").encode())
    purge(stack)
    send(stack, s3_event_body(key, version_id=v, etag=e))

    stack.deliver()

    assert report_or_none(stack, key)["status"] == "completed"  # type: ignore[index]


def test_the_same_version_delivered_three_times_is_sent_once(sandbox: SandboxServer) -> None:
    """HELD. Three copies of one notification, plus a copy with the version id missing."""
    stack = IngestStack(sandbox)
    v, e = put(stack, KEY, (HEADER + "PX-1.3,On Track,,2026-11-01\n").encode())
    purge(stack)
    for _ in range(3):
        send(stack, s3_event_body(KEY, version_id=v, etag=e))

    stack.deliver(copies=2)

    assert len(sandbox.stored_updates()) == 1
    print(json.dumps(stack.report(KEY)["counts"]))
