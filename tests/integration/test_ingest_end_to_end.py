"""Files dropped in (moto) S3 become updates in the sandbox, exactly once, with reports."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import date

import pytest
from achieveit_sandbox import SandboxServer
from achieveit_sync.client import Submission, SubmitResult

from tests.conftest import FakeLambdaContext
from tests.integration.conftest import SandboxFactory, plan_organisation
from tests.integration.ingest_stack import IngestStack, unique_key

pytestmark = pytest.mark.usefixtures("aws")

PROGRESS_CSV = (
    "\ufeffExternal ID,Status,Metric Value,As Of Date,Comment\r\n"
    "PX-1.1,on track,25,2026-11-01,Door-to-doctor improving\r\n"
    'PX-1.3,Achieved,,11/02/2026,"Clinic open, at last"\r\n'
    "\r\n"
    "PX-2.3,Cancelled,,2026-11-03,\r\n"
    "PX-9.9,At Risk,,2026-11-03,\r\n"
)
"""Excel-style: BOM, CRLF, a blank line; one invalid row, one unknown external ID."""

METRIC_ROWS = [
    {"externalId": "PX-3.1", "metricValue": 0.4, "asOfDate": "2026-11-01"},
    {
        "externalID": "PX-3.2",
        "metricValue": "3",
        "asOfDate": "2026-11-01T09:00:00Z",
        "comment": "two falls",
    },
]


@pytest.fixture
def stack(sandbox: SandboxServer) -> Iterator[IngestStack]:
    yield IngestStack(sandbox)


def stored(sandbox: SandboxServer) -> list[tuple[str, str, str | None, float | None, date]]:
    return [
        (u.kind, u.external_id, u.status, u.metric_value, u.as_of_date)
        for u in sandbox.stored_updates()
    ]


def test_an_excel_csv_is_published_reported_and_archived(
    stack: IngestStack, sandbox: SandboxServer
) -> None:
    key = "incoming/progress/kpis-2026-11.csv"
    stack.drop(key, PROGRESS_CSV.encode("utf-8"))

    stack.deliver()

    assert stored(sandbox) == [
        ("progress", "PX-1.1", "On Track", 25.0, date(2026, 11, 1)),
        ("progress", "PX-1.3", "Achieved", None, date(2026, 11, 2)),
    ]
    report = stack.report(key)
    assert report["status"] == "completed_with_rejections"
    assert report["counts"] == {
        "rowsRead": 4,
        "valid": 3,
        "published": 2,
        "rejected": 2,
        "rejectedByValidation": 1,
        "rejectedByApi": 1,
        "skippedBlank": 1,
        "skippedUntouched": 0,
        "ambiguous": 0,
        "sentEarlier": 0,
        "notSent": 0,
    }
    assert report["encoding"] == "UTF-8 with BOM"
    reasons = {(r["line"], r["field"]): r["reason"] for r in report["rejections"]}
    assert "not an AchieveIt status" in reasons[(5, "status")]
    assert "unknown external ID 'PX-9.9'" in reasons[(6, "(row)")]
    assert all(r["statusCode"] in (202, 400) for r in report["requests"])
    rejected = stack.text("rejected/incoming/progress/kpis-2026-11.csv").splitlines()
    # With Excel's byte-order mark, as it came: Excel needs it to read the file as UTF-8.
    assert rejected[0] == "\ufeffExternal ID,Status,Metric Value,As Of Date,Comment,Error"
    assert [line.split(",")[0] for line in rejected[1:]] == ["PX-2.3", "PX-9.9"]
    assert stack.keys("incoming/") == []
    assert [k.split("/", 2)[2] for k in stack.keys("archive/")] == [key]
    [notification] = stack.notifications()
    assert "2 rows rejected in kpis-2026-11.csv" in notification["Subject"]


@pytest.mark.parametrize(
    ("extension", "encode"),
    [
        ("json", lambda rows: json.dumps(rows).encode()),
        ("jsonl", lambda rows: "\n".join(json.dumps(r) for r in rows).encode()),
        ("ndjson", lambda rows: "\n".join(json.dumps(r) for r in rows).encode()),
        ("json.gz", lambda rows: gzip.compress(json.dumps(rows).encode())),
        (
            "csv",
            lambda rows: (
                "External ID,Current Metric Value,As Of Date,Comment\n"
                + "".join(
                    f"{r.get('externalId') or r['externalID']},{r['metricValue']},"
                    f"{r['asOfDate']},{r.get('comment', '')}\n"
                    for r in rows
                )
            ).encode("utf-16"),
        ),
    ],
)
def test_metric_files_in_every_format_store_exactly_the_valid_rows(
    stack: IngestStack, sandbox: SandboxServer, extension: str, encode: object
) -> None:
    key = unique_key("metrics", extension)
    stack.drop(key, encode(METRIC_ROWS))  # type: ignore[operator]

    stack.deliver()

    assert stored(sandbox) == [
        ("metric", "PX-3.1", None, 0.4, date(2026, 11, 1)),
        ("metric", "PX-3.2", None, 3.0, date(2026, 11, 1)),
    ]
    assert stack.report(key)["status"] == "completed"


def test_the_kind_is_inferred_from_columns_outside_the_kind_folders(
    stack: IngestStack, sandbox: SandboxServer
) -> None:
    stack.drop(
        "incoming/from-etl/mixed.csv", b"External ID,Status,As Of Date\nPX-1.3,At Risk,2026-11-04\n"
    )

    stack.deliver()

    assert stored(sandbox) == [("progress", "PX-1.3", "At Risk", None, date(2026, 11, 4))]


def test_the_same_event_three_times_stores_each_row_once(
    stack: IngestStack, sandbox: SandboxServer
) -> None:
    stack.drop(unique_key("progress", "csv"), PROGRESS_CSV.encode())

    stack.deliver(copies=3)

    assert len(sandbox.stored_updates()) == 2
    names = [r.path for r in sandbox.recorded_requests() if r.method == "POST"]
    assert len(names) == len(set(names))  # the second and third copies sent nothing


def test_an_unreadable_file_fails_with_one_message_and_is_archived(
    stack: IngestStack, sandbox: SandboxServer
) -> None:
    key = "incoming/progress/budget.csv"
    stack.drop(key, b"PK\x03\x04" + b"\x00" * 100)

    stack.deliver()

    report = stack.report(key)
    assert report["status"] == "failed"
    assert "Excel workbook" in report["fileError"]["reason"]
    assert "Save As" in report["fileError"]["hint"]
    assert sandbox.recorded_requests() == []
    assert stack.keys("incoming/") == []
    assert stack.dead_letters() == 0


def test_the_sample_event_with_an_url_encoded_key_is_processed(
    stack: IngestStack, sandbox: SandboxServer, lambda_context: FakeLambdaContext
) -> None:
    from tests.conftest import load_event

    key = "incoming/progress/Q4 KPIs (final).csv"
    version = stack.drop(key, b"External ID,Status,As Of Date\nPX-1.3,On Track,2026-11-05\n")
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)  # deliver the sample instead
    event = load_event("ingest-sqs-s3-object-created.json")
    body = json.loads(event["Records"][0]["body"])  # type: ignore[index]
    body["Records"][0]["s3"]["object"]["versionId"] = version
    event["Records"][0]["body"] = json.dumps(body)  # type: ignore[index]

    response = stack.service.handle(event, lambda_context)

    assert response == {"batchItemFailures": []}
    assert stored(sandbox) == [("progress", "PX-1.3", "On Track", None, date(2026, 11, 5))]
    assert stack.report(key)["status"] == "completed"


def test_the_s3_test_event_is_ignored(
    stack: IngestStack, sandbox: SandboxServer, lambda_context: FakeLambdaContext
) -> None:
    from tests.conftest import load_event

    response = stack.service.handle(load_event("ingest-sqs-s3-test-event.json"), lambda_context)

    assert response == {"batchItemFailures": []}
    assert sandbox.recorded_requests() == []


@pytest.fixture
def big_stack(start_sandbox: SandboxFactory) -> IngestStack:
    return IngestStack(start_sandbox(plan_organisation(("P", 3000))))


def plan_csv(count: int, *, start: int = 1, bad_line: int | None = None) -> bytes:
    rows = ["External ID,Status,Metric Value,As Of Date"]
    for n in range(start, start + count):
        external_id = "UNKNOWN-ID" if n == bad_line else f"P-{n:06d}"
        rows.append(f"{external_id},On Track,{n},2026-11-01")
    return ("\n".join(rows) + "\n").encode()


def test_one_bad_row_among_500_is_isolated_and_499_are_stored(big_stack: IngestStack) -> None:
    sandbox = big_stack.sandbox
    sandbox.set_behaviour(name_rows_in_errors=False)  # the API does not say which row
    key = unique_key("progress", "csv")
    big_stack.drop(key, plan_csv(500, bad_line=137))

    big_stack.deliver()

    assert len(sandbox.stored_updates()) == 499
    assert "UNKNOWN-ID" not in {u.external_id for u in sandbox.stored_updates()}
    report = big_stack.report(key)
    [rejection] = report["rejections"]
    assert rejection["line"] == 138
    assert "The import contains invalid rows" in rejection["reason"]
    assert report["counts"]["published"] == 499
    posts = [r for r in sandbox.recorded_requests() if r.method == "POST"]
    assert len(posts) <= 1 + 2 * 9  # bisection: about 2*log2(500) extra requests


def test_faults_429_and_503_still_store_every_row_once(big_stack: IngestStack) -> None:
    from achieveit_sandbox import Fault, FaultPlan

    sandbox = big_stack.sandbox
    sandbox.set_faults(
        FaultPlan(rates={Fault.THROTTLE: 0.2, Fault.UNAVAILABLE: 0.2}, seed=4, retry_after="0")
    )
    key = unique_key("progress", "csv")
    big_stack.drop(key, plan_csv(2500))

    big_stack.deliver()

    external_ids = [u.external_id for u in sandbox.stored_updates()]
    assert len(external_ids) == 2500
    assert len(set(external_ids)) == 2500
    assert big_stack.report(key)["status"] == "completed"
    assert {r.status for r in sandbox.recorded_requests()} >= {429, 503, 202}


def test_a_crash_after_part_2_of_5_then_a_rerun_stores_each_row_once(
    big_stack: IngestStack,
) -> None:
    sandbox = big_stack.sandbox
    key = unique_key("progress", "csv")
    big_stack.drop(key, plan_csv(2500))
    service = big_stack.service
    real_save = service.checkpoints.save

    class SimulatedCrash(BaseException):  # not an Exception: nothing may catch it
        pass

    def crash_after_part_2(file_id: str, record: object) -> None:
        real_save(file_id, record)  # type: ignore[arg-type]
        if getattr(record, "part", 0) == 2 and getattr(record, "complete", False):
            raise SimulatedCrash

    service.checkpoints.save = crash_after_part_2  # type: ignore[method-assign]
    with pytest.raises(SimulatedCrash):
        big_stack.deliver()
    assert len(sandbox.stored_updates()) == 1000

    service.checkpoints.save = real_save  # type: ignore[method-assign]
    big_stack.expire_in_progress_records()  # the crashed invocation's timeout has passed
    big_stack.release_crashed_messages()  # and SQS hands its message out again
    big_stack.deliver()

    external_ids = [u.external_id for u in sandbox.stored_updates()]
    assert len(external_ids) == 2500
    assert len(set(external_ids)) == 2500
    report = big_stack.report(key)
    assert report["counts"]["published"] == 2500
    assert report["status"] == "completed"


def test_a_crash_in_the_middle_of_a_request_reports_that_part_as_ambiguous(
    big_stack: IngestStack,
) -> None:
    from achieveit_sandbox import Fault, FaultPlan

    sandbox = big_stack.sandbox
    key = unique_key("progress", "csv")
    big_stack.drop(key, plan_csv(1500))
    # Request 2 is applied, then the invocation dies before hearing the answer.
    sandbox.set_faults(FaultPlan(on_requests={2: Fault.SLOW}, slow_seconds=3))
    service = big_stack.service

    class SimulatedCrash(BaseException):
        pass

    real_send = service.client.send_submission

    def die_on_part_2(submission: Submission) -> SubmitResult:
        if ".part-0002" in submission.name:
            real_send(submission)
            raise SimulatedCrash
        return real_send(submission)

    service.client.send_submission = die_on_part_2  # type: ignore[method-assign]
    with pytest.raises(SimulatedCrash):
        big_stack.deliver()
    service.client.send_submission = real_send  # type: ignore[method-assign]
    big_stack.expire_in_progress_records()
    big_stack.release_crashed_messages()
    big_stack.deliver()

    external_ids = [u.external_id for u in sandbox.stored_updates()]
    assert len(external_ids) == len(set(external_ids)) == 1500
    report = big_stack.report(key)
    assert report["status"] == "completed_with_ambiguity"
    assert report["counts"]["ambiguous"] == 500
    assert report["counts"]["published"] == 1000
    assert "interrupted" in report["ambiguousRows"][0]["request"]


def test_an_answer_lost_after_processing_is_reported_not_resent(
    big_stack: IngestStack,
) -> None:
    from achieveit_sandbox import Fault, FaultPlan

    sandbox = big_stack.sandbox
    sandbox.set_faults(FaultPlan(on_requests={1: Fault.RESET_AFTER}))
    key = unique_key("progress", "csv")
    big_stack.drop(key, plan_csv(1000))

    big_stack.deliver()

    assert len(sandbox.stored_updates()) == 1000  # part 1 applied once, never re-sent
    report = big_stack.report(key)
    assert report["status"] == "completed_with_ambiguity"
    assert report["counts"]["ambiguous"] == 500
    assert report["ambiguousRows"][0] == {
        "line": 2,
        "externalId": "P-000001",
        "request": report["requests"][0]["name"],
    }
    [notification] = big_stack.notifications()
    assert "500 rows may have been applied (no answer: check them" in notification["Message"]
    ambiguous = big_stack.text(f"ambiguous/{key}").splitlines()
    assert ambiguous[0] == "External ID,Status,Metric Value,As Of Date,Error"
    assert len(ambiguous) == 501
    assert ambiguous[1].startswith("P-000001,On Track,1,2026-11-01,line 2: sent in ")


def test_a_large_file_continues_in_a_follow_up_message(big_stack: IngestStack) -> None:
    sandbox = big_stack.sandbox
    key = unique_key("progress", "csv")
    big_stack.drop(key, plan_csv(2500))
    # Each look at the clock costs 50 s of a 200 s budget with a 120 s margin.
    contexts = iter(
        [FakeLambdaContext(remaining_ms=250_000, ms_per_call=50_000) for _ in range(10)]
    )

    big_stack.deliver(handler=lambda e, c: dict(big_stack.service.handle(e, next(contexts))))

    external_ids = [u.external_id for u in sandbox.stored_updates()]
    assert len(external_ids) == len(set(external_ids)) == 2500
    report = big_stack.report(key)
    assert report["status"] == "completed"
    assert report["source"]["resume"] >= 2  # it took follow-up messages


def test_an_api_outage_fails_the_message_and_the_retry_resumes(big_stack: IngestStack) -> None:
    from achieveit_sandbox import Fault, FaultPlan

    sandbox = big_stack.sandbox
    key = unique_key("progress", "csv")
    big_stack.drop(key, plan_csv(1500))
    # Part 1 goes through; then the API is down for longer than the client retries.
    sandbox.set_faults(FaultPlan(on_requests=dict.fromkeys(range(2, 8), Fault.UNAVAILABLE)))

    responses = big_stack.deliver()

    assert any(r["batchItemFailures"] for r in responses)
    external_ids = [u.external_id for u in sandbox.stored_updates()]
    assert len(external_ids) == len(set(external_ids)) == 1500
    assert big_stack.report(key)["status"] == "completed"


def test_a_refused_key_fails_the_file_and_keeps_it_for_a_redrive(big_stack: IngestStack) -> None:
    key = unique_key("progress", "csv")
    big_stack.put_secret("a-revoked-key")
    big_stack.drop(key, plan_csv(10))

    responses = big_stack.deliver(rounds=3, must_drain=False)

    assert all(r["batchItemFailures"] for r in responses)
    report = big_stack.report(key)
    assert report["status"] == "failed"
    assert "401" in report["fileError"]["reason"]
    assert big_stack.keys(key) == [key]  # not archived: it waits for the redrive
    assert big_stack.sandbox.stored_updates() == []
