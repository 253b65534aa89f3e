"""The functions fed exactly what AWS sends, from the samples in events/.

moto's own S3 notifications carry no versionId and encode '/' as '%2F'; real S3 sends, from
a versioned bucket, the key URL-encoded with '+' for a space and '/' left as is, a versionId,
a sequencer and the ETag without quotes (S3 User Guide, "Event message structure"). Here the
notification is built from events/s3-notification-versioned-bucket.json, put on the queue,
and handed to the deployed handler (functions/ingest/app.py) as Lambda's SQS event source
does, for every file format. EventBridge Scheduler delivers the schedule's Input verbatim.
"""

from __future__ import annotations

import copy
import gzip
import json
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from achieveit_sandbox import SandboxServer
from achieveit_sandbox.cloudformation import load_template

from tests.conftest import FakeLambdaContext, load_event, load_handler
from tests.integration.conftest import SandboxFactory, plan_organisation
from tests.integration.ingest_stack import BUCKET, SECRET_NAME, IngestStack

pytestmark = pytest.mark.usefixtures("aws")

NOTIFICATION = load_event("s3-notification-versioned-bucket.json")
ENCODED_KEY = NOTIFICATION["Records"][0]["s3"]["object"]["key"]  # type: ignore[index]
DECODED_KEY = "incoming/progress/Q4 KPIs (final) 50% + Zürich ✓.csv"

ROWS = [
    {"externalId": "PX-1.3", "status": "On Track", "asOfDate": "2026-11-05"},
    {"externalId": "PX-2.3", "status": "at risk", "asOfDate": "11/06/2026"},
]
CSV = "External ID,Status,As Of Date\n" + "".join(
    f"{r['externalId']},{r['status']},{r['asOfDate']}\n" for r in ROWS
)
JSON_LINES = "\n".join(json.dumps(r) for r in ROWS) + "\n"
FORMATS: dict[str, Callable[[], bytes]] = {
    "csv": CSV.encode,
    "json": lambda: json.dumps(ROWS).encode(),
    "jsonl": JSON_LINES.encode,
    "ndjson": JSON_LINES.encode,
    "csv.gz": lambda: gzip.compress(CSV.encode()),
    "json.gz": lambda: gzip.compress(json.dumps(ROWS).encode()),
    "jsonl.gz": lambda: gzip.compress(JSON_LINES.encode()),
}


def forget_function_loggers() -> None:
    logging.getLogger("achieveit_sync").handlers.clear()  # leave no JSON handler behind


def log_to_this_tests_stdout(service: str) -> None:
    """Powertools keeps one handler per service logger, bound to the sys.stdout of the test
    that first made it: point it at this test's (captured) stdout."""
    for handler in logging.getLogger(service).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = sys.stdout  # not setStream(): it flushes the old, maybe closed, one


def test_the_sample_key_is_encoded_as_s3_encodes_keys() -> None:
    """The fixture is the ground truth for the encoding: '+' is a space, %2B a plus, %25 a
    percent sign, '/' stays, non-ASCII letters are their UTF-8 bytes."""
    assert "/" in ENCODED_KEY
    assert "%2F" not in ENCODED_KEY
    assert unquote_plus(ENCODED_KEY) == DECODED_KEY
    record = NOTIFICATION["Records"][0]  # type: ignore[index]
    assert {"versionId", "sequencer", "eTag", "size"} <= set(record["s3"]["object"])
    assert not record["s3"]["object"]["eTag"].startswith('"')


@pytest.fixture
def handler_stack(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[IngestStack, Any]]:
    """The ingest stack and functions/ingest/app.py, configured by its environment alone."""
    stack = IngestStack(sandbox)
    for name, value in {
        "INGEST_QUEUE_URL": stack.queue_url,
        "IDEMPOTENCY_TABLE": "idempotency",
        "CHECKPOINT_TABLE": "checkpoints",
        "NOTIFICATION_TOPIC_ARN": stack.topic_arn,
        "ACHIEVEIT_API_KEY_SECRET": SECRET_NAME,
        "ACHIEVEIT_BASE_URL": sandbox.base_url,
        "ACHIEVEIT_CA_BUNDLE": str(sandbox.ca_file),
        "POWERTOOLS_METRICS_NAMESPACE": "AchieveItSyncTest",
    }.items():
        monkeypatch.setenv(name, value)
    yield stack, load_handler("ingest")
    forget_function_loggers()


def notification_for(
    stack: IngestStack, key: str, *, extension: str, sequencer: str = "0055AED6DCD90281E5"
) -> dict[str, Any]:
    """The sample notification, for the object now under ``key`` (its real version, ETag and
    size). The key is the sample's encoded key with its extension: S3's encoding of it."""
    head = stack.s3.head_object(Bucket=BUCKET, Key=key)
    notification = copy.deepcopy(NOTIFICATION)
    s3 = notification["Records"][0]["s3"]  # type: ignore[index]
    s3["bucket"]["name"] = BUCKET
    s3["bucket"]["arn"] = f"arn:aws:s3:::{BUCKET}"
    s3["object"].update(
        key=ENCODED_KEY.removesuffix(".csv") + f".{extension}",
        size=head["ContentLength"],
        eTag=head["ETag"].strip('"'),  # S3 notifications carry the ETag bare
        versionId=head["VersionId"],
        sequencer=sequencer,
    )
    assert unquote_plus(s3["object"]["key"]) == key
    return notification


def send(stack: IngestStack, notification: dict[str, Any]) -> None:
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(notification))


@pytest.mark.parametrize("extension", FORMATS)
def test_a_real_notification_from_a_versioned_bucket_is_processed_for_every_format(
    handler_stack: tuple[IngestStack, Any], sandbox: SandboxServer, extension: str
) -> None:
    stack, handler = handler_stack
    key = DECODED_KEY.removesuffix(".csv") + f".{extension}"
    version = stack.drop(key, FORMATS[extension]())
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)  # moto's own notification, not S3's shape
    send(stack, notification_for(stack, key, extension=extension))

    responses = stack.deliver(handler=handler.lambda_handler)

    assert responses == [{"batchItemFailures": []}]
    assert [(u.external_id, u.status, u.as_of_date) for u in sandbox.stored_updates()] == [
        ("PX-1.3", "On Track", date(2026, 11, 5)),
        ("PX-2.3", "At Risk", date(2026, 11, 6)),
    ]
    report = stack.report(key)  # reports/<the decoded key>.json
    assert report["status"] == "completed"
    assert report["counts"]["published"] == 2
    assert version in json.dumps(report["source"])
    assert stack.keys("incoming/") == []
    [archived] = stack.keys("archive/")
    assert archived.endswith("/" + key)
    assert stack.dead_letters() == 0


def test_the_same_notification_delivered_twice_publishes_once(
    handler_stack: tuple[IngestStack, Any], sandbox: SandboxServer
) -> None:
    """S3 delivers notifications at least once: the same versionId and sequencer again."""
    stack, handler = handler_stack
    stack.drop(DECODED_KEY, FORMATS["csv"]())
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)
    notification = notification_for(stack, DECODED_KEY, extension="csv")
    send(stack, notification)
    send(stack, notification)

    stack.deliver(handler=handler.lambda_handler)

    assert len(sandbox.stored_updates()) == 2
    assert stack.dead_letters() == 0


def test_the_s3_test_event_passes_through_the_queue_and_is_dropped(
    handler_stack: tuple[IngestStack, Any], sandbox: SandboxServer
) -> None:
    """Configuring a bucket's notification makes S3 send s3:TestEvent to the queue."""
    stack, handler = handler_stack
    sample = load_event("ingest-sqs-s3-test-event.json")
    test_event = json.loads(sample["Records"][0]["body"])  # type: ignore[index]
    assert test_event["Event"] == "s3:TestEvent"
    send(stack, test_event)

    responses = stack.deliver(handler=handler.lambda_handler)

    assert responses == [{"batchItemFailures": []}]  # deleted from the queue, not retried
    assert sandbox.recorded_requests() == []
    assert stack.keys("reports/") == []
    assert stack.dead_letters() == 0


# -- the Scheduler's event --------------------------------------------------------------

BACKUPS = "achieveit-sync-backups-events"
TEMPLATE = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
TEMPLATE_SCHEDULE_INPUT = TEMPLATE["Resources"]["ExportFunction"]["Properties"]["Events"][
    "NightlyBackup"
]["Properties"]["Input"]


@pytest.fixture
def export_env(
    start_sandbox: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], Any]]:
    """functions/export/app.py with PLAN_IDS as given, the rest as the template sets it."""
    sandbox = start_sandbox(plan_organisation(("SMALL", 30)))
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BACKUPS)
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(Name="achieveit-sync/api-key", SecretString=sandbox.api_key)

    def configure(plan_ids: str) -> Any:
        for name, value in {
            "BACKUP_BUCKET": BACKUPS,
            "PLAN_IDS": plan_ids,
            "ACHIEVEIT_API_KEY_SECRET": "achieveit-sync/api-key",
            "ACHIEVEIT_BASE_URL": sandbox.base_url,
            "ACHIEVEIT_CA_BUNDLE": str(sandbox.ca_file),
        }.items():
            monkeypatch.setenv(name, value)
        return load_handler("export")

    yield configure
    forget_function_loggers()


def backup_keys() -> list[str]:
    listing = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=BACKUPS)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_the_schedules_verbatim_input_backs_up_the_configured_plans(
    export_env: Callable[[str], Any],
) -> None:
    handler = export_env("SMALL")
    event = json.loads(TEMPLATE_SCHEDULE_INPUT)  # what Scheduler hands the function
    assert event == load_event("export-schedule.json")

    result = handler.lambda_handler(event, FakeLambdaContext())

    assert [(p["planId"], p["status"]) for p in result["plans"]] == [("SMALL", "complete")]
    assert "backups/SMALL/latest.json" in backup_keys()


def test_without_plans_the_export_says_what_to_set_and_does_not_fail(
    export_env: Callable[[str], Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A stack deployed with the default (empty) PlanIds: a run must not fail (Lambda would
    retry it, record it as a failed run and alarm) but say what to configure."""
    handler = export_env("")
    log_to_this_tests_stdout("achieveit-sync-export")

    result = handler.lambda_handler(json.loads(TEMPLATE_SCHEDULE_INPUT), FakeLambdaContext())

    assert result["plans"] == []
    assert result["failed"] == []
    assert "PlanIds" in result["notConfigured"]
    assert '{"plans": ["PLAN-ID"]}' in result["notConfigured"]
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]
    [warning] = [r for r in logged if r.get("level") == "WARNING"]
    assert warning["message"] == result["notConfigured"]
    assert backup_keys() == []


def test_an_on_demand_event_still_names_its_own_plans_when_none_are_configured(
    export_env: Callable[[str], Any],
) -> None:
    handler = export_env("")
    event = load_event("export-on-demand.json")
    event["plans"] = ["SMALL"]

    result = handler.lambda_handler(event, FakeLambdaContext())

    assert [p["planId"] for p in result["plans"]] == ["SMALL"]
    assert "notConfigured" not in result
