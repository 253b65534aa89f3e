"""The deployed entry point, functions/ingest/app.py, configured only by its environment."""

from __future__ import annotations

import json
import logging

import pytest
from achieveit_sandbox import SandboxServer

from tests.conftest import RECOGNISABLE_KEY, FakeLambdaContext, load_handler
from tests.integration.ingest_stack import BUCKET, SECRET_NAME, IngestStack

pytestmark = pytest.mark.usefixtures("aws")


def test_importing_the_handler_reads_nothing_and_creates_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("INGEST_QUEUE_URL", "IDEMPOTENCY_TABLE", "ACHIEVEIT_API_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)

    module = load_handler("ingest")

    assert module._handler is None


def test_the_handler_runs_from_its_environment_and_logs_json_without_the_key(
    sandbox: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
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
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    }.items():
        monkeypatch.setenv(name, value)
    # A new container: Powertools keeps "cold start" per process, as Lambda's runtime does.
    from aws_lambda_powertools.metrics.provider.cold_start import reset_cold_start_flag

    reset_cold_start_flag()
    module = load_handler("ingest")
    stack.drop(
        "incoming/progress/handler.csv",
        b"External ID,Status,As Of Date\nPX-1.3,On Track,2026-11-06\nPX-X,Nope,x\n",
    )

    stack.deliver(handler=module.lambda_handler)
    stack.deliver(handler=module.lambda_handler)  # warm: the runtime is reused

    assert len(sandbox.stored_updates()) == 1
    assert stack.report("incoming/progress/handler.csv")["counts"]["rejected"] == 1
    output = capsys.readouterr().out
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    handled = [r for r in records if r.get("message") == "file handled"]
    assert handled[0]["file"] == f"s3://{BUCKET}/incoming/progress/handler.csv"
    assert handled[0]["function_request_id"] == FakeLambdaContext().aws_request_id
    metrics = [r for r in records if "_aws" in r and "RowsPublished" in r]
    assert metrics[0]["RowsPublished"] in ([1.0], 1.0)
    assert sum("ColdStart" in r for r in records) == 1  # the first invocation only
    everything = output + "\n".join(r.getMessage() for r in caplog.records)
    assert sandbox.api_key == RECOGNISABLE_KEY
    assert RECOGNISABLE_KEY not in everything
    logging.getLogger("achieveit_sync").handlers.clear()  # leave no JSON handler behind
