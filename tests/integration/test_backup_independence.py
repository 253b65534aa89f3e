"""One plan's problem is that plan's alone (issue 10, point 8): a damaged or unreadable
latest.json is reported and the plan backed up from scratch; an unexpected error fails that
plan and the others go on; an item JSON can carry but UTF-8 cannot is still backed up.
On moto S3 and the sandbox, through the handler or BackupLambda."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from achieveit_sandbox import SandboxServer
from achieveit_sync.backup.run import BackupRunError

from tests.conftest import FakeLambdaContext
from tests.integration.backup_support import (
    BUCKET,
    Clock,
    assert_latest_names_intact_data,
    failing_s3,
    handler_env,
    plans_sandbox,
    read_bytes,
    run,
    s3,
    service_for,
)
from tests.integration.conftest import ClientFactory

__all__ = ["handler_env", "plans_sandbox", "s3"]
pytestmark = pytest.mark.usefixtures("aws")


@pytest.mark.parametrize(
    "damaged",
    [
        b"\x00\x01 not json",
        b'{"planId": "SMALL", "manifest": ',
        b"[]",
        b'{"manifest": "backups/P3001/x/manifest.json", "files": {}}',
        json.dumps(
            {
                "manifest": "backups/SMALL/../P3001/manifest.json",
                "contentSha256": "0" * 64,
                "files": {"items.json.gz": {"key": "backups/SMALL/../../etc", "sha256": "0"}},
            }
        ).encode(),
    ],
    ids=["binary", "truncated", "not-an-object", "other-plan", "climbing-keys"],
)
def test_a_damaged_latest_json_is_reported_and_the_plan_backed_up_from_scratch(
    handler_env: Any, s3: Any, damaged: bytes
) -> None:
    s3.put_object(Bucket=BUCKET, Key="backups/SMALL/latest.json", Body=damaged)

    result = handler_env.lambda_handler({"plans": ["SMALL", "P3001"]}, FakeLambdaContext())

    assert [(p["planId"], p["status"]) for p in result["plans"]] == [
        ("SMALL", "complete"),
        ("P3001", "complete"),
    ]
    [warning] = result["plans"][0]["warnings"]
    assert "s3://achieveit-sync-backups-test/backups/SMALL/latest.json" in warning
    assert "backed up from scratch" in warning
    assert result["plans"][1]["warnings"] == []
    assert_latest_names_intact_data(s3, "SMALL")


def test_a_latest_json_that_cannot_be_read_is_reported_and_the_plan_backed_up_anew(
    plans_sandbox: SandboxServer, client_for: ClientFactory, s3: Any
) -> None:
    service = service_for(plans_sandbox, client_for, s3)
    service.handle({})  # a first backup of both plans
    failing_s3(s3, "GetObject", "P3001/latest.json", "InvalidObjectState")

    result = service.handle({})

    assert [(p["planId"], p["status"]) for p in result["plans"]] == [
        ("P3001", "complete"),
        ("SMALL", "unchanged"),
    ]
    [warning] = result["plans"][0]["warnings"]
    assert "could not be read (ClientError" in warning
    assert "InvalidObjectState" in warning


def test_an_unexpected_error_in_one_plan_fails_that_plan_alone(
    plans_sandbox: SandboxServer, client_for: ClientFactory, s3: Any
) -> None:
    service = service_for(
        plans_sandbox,
        client_for,
        failing_s3(s3, "PutObject", "P3001/", "KMS.KMSInvalidStateException"),
    )

    with pytest.raises(BackupRunError) as raised:
        service.handle({})

    outcomes = {o.plan_id: o for o in raised.value.run.outcomes}
    assert outcomes["SMALL"].status == "complete"
    assert outcomes["P3001"].status == "failed"
    assert "unexpected error (ClientError" in (outcomes["P3001"].error or "")
    assert "KMS.KMSInvalidStateException" in (outcomes["P3001"].error or "")
    assert "P3001: failed" in str(raised.value)
    assert_latest_names_intact_data(s3, "SMALL")


def test_an_item_holding_a_lone_surrogate_is_backed_up_exactly(
    plans_sandbox: SandboxServer, client_for: ClientFactory, s3: Any
) -> None:
    # JSON can carry "\ud800"; no UTF-8 file can hold it as a character.
    with plans_sandbox.organisation() as organisation:
        organisation.plans["SMALL"].items[1].name = "broken \ud800 name"

    [small, big] = run(client_for(plans_sandbox), s3, ["SMALL", "P3001"], Clock()).outcomes

    assert (small.status, big.status) == ("complete", "complete")
    latest = assert_latest_names_intact_data(s3, "SMALL")
    items = json.loads(gzip.decompress(read_bytes(s3, latest["files"]["items.json.gz"]["key"])))
    assert items[1]["name"] == "broken \ud800 name"  # escaped in the file, the same on reading
