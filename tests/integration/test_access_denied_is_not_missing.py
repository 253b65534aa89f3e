"""A missing object behaves the same whether S3 answers 404 or (to a role that may not list
the bucket) 403; an object S3 refuses to read is never taken for a missing one.

S3 (HeadObject, GetObject: "Permissions"): for a missing key S3 answers 404 only to a caller
with s3:ListBucket on the bucket, otherwise 403 AccessDenied. ``s3_policy`` makes moto answer
that way; the template's own roles get 404s (ListBucket without a condition)."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import pytest
from achieveit_sandbox import SandboxServer
from achieveit_sync.backup.run import back_up_plans
from achieveit_sync.backup.targets import S3Target
from achieveit_sync.ingest.lambda_adapter import build_ingest_lambda
from achieveit_sync.storage import S3Storage

from tests.integration.conftest import ClientFactory, SandboxFactory, plan_organisation
from tests.integration.ingest_stack import BUCKET, IngestStack
from tests.integration.s3_policy import without_unconditioned_list_bucket

pytestmark = pytest.mark.usefixtures("aws")

CSV = b"External ID,Status,As Of Date\nPX-1.3,On Track,2026-11-05\n"
POLICIES = {
    "template policy (404)": None,
    "ListBucket only under s3:prefix (403)": ("incoming/",),
}


def stack_under(
    sandbox: SandboxServer, listable: tuple[str, ...] | None, **hook: Any
) -> IngestStack:
    stack = IngestStack(sandbox)
    if listable is not None or hook:
        without_unconditioned_list_bucket(stack.session, listable_prefixes=listable or (), **hook)
        stack.service = build_ingest_lambda(stack.settings, session=stack.session)
    return stack


@pytest.mark.parametrize("listable", POLICIES.values(), ids=POLICIES.keys())
def test_a_source_deleted_before_it_was_read_is_skipped_with_a_log_line(
    sandbox: SandboxServer,
    caplog: pytest.LogCaptureFixture,
    listable: tuple[str, ...] | None,
) -> None:
    stack = stack_under(sandbox, listable)
    key = "incoming/progress/withdrawn.csv"
    version = stack.drop(key, CSV)
    stack.s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version)

    with caplog.at_level(logging.INFO):
        stack.deliver()

    assert sandbox.recorded_requests() == []
    assert stack.dead_letters() == 0
    assert stack.keys("reports/") == []
    assert "the file is gone" in caplog.text


def test_an_unreadable_source_is_never_skipped_as_gone(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    key = "incoming/progress/locked.csv"
    stack = stack_under(sandbox, ("incoming/",), unreadable_keys=(key,))
    stack.drop(key, CSV)

    with caplog.at_level(logging.INFO):
        responses = stack.deliver(rounds=2, must_drain=False)

    assert sandbox.recorded_requests() == []
    assert stack.keys("incoming/") == [key]  # not archived, not deleted: it is still there
    assert "the file is gone" not in caplog.text
    failed = any(r.get("batchItemFailures") for r in responses)
    reported = stack.keys("reports/") and stack.report(key)["status"] == "failed"
    assert failed or reported


def test_without_any_list_bucket_a_missing_source_fails_loudly(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    """S3 will not say whether it exists: the file fails (a report, once the ingest writes
    one for unexpected errors) instead of vanishing."""
    stack = stack_under(sandbox, ())
    key = "incoming/progress/withdrawn.csv"
    version = stack.drop(key, CSV)
    stack.s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version)

    with caplog.at_level(logging.INFO):
        responses = stack.deliver(rounds=2, must_drain=False)

    assert "the file is gone" not in caplog.text
    failed = any(r.get("batchItemFailures") for r in responses)
    reported = stack.keys("reports/") and stack.report(key)["status"] == "failed"
    assert failed or reported


BACKUPS = "achieveit-sync-backups-test"


@pytest.mark.parametrize(
    "listable",
    [("backups/",), ()],
    ids=["ListBucket only under s3:prefix", "no ListBucket at all"],
)
def test_the_first_backup_of_a_plan_succeeds_when_s3_answers_403(
    start_sandbox: SandboxFactory, client_for: ClientFactory, listable: tuple[str, ...]
) -> None:
    """Before the first backup there is no backups/<plan>/latest.json: a 403 for it means
    'none yet', as a 404 does, and the backup is stored in full."""
    sandbox = start_sandbox(plan_organisation(("SMALL", 40)))
    session = boto3.session.Session(region_name="us-east-1")
    session.client("s3").create_bucket(Bucket=BACKUPS)
    without_unconditioned_list_bucket(session, listable_prefixes=listable)
    target = S3Target(S3Storage(session.client("s3")), BACKUPS)

    run = back_up_plans(["SMALL"], client=client_for(sandbox), target=target)

    assert [o.status for o in run.outcomes] == ["complete"]
    latest = target.read_json("backups/SMALL/latest.json")
    assert latest is not None
    assert latest["itemCount"] == 40
