"""Backups on moto S3 from the sandbox: complete, verifiable, independent per plan."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from achieveit_sandbox import Role, SandboxServer
from achieveit_sync.backup.run import BackupRunError, back_up_plans
from achieveit_sync.backup.targets import S3Target
from achieveit_sync.client import AchieveItClient, ExportPage
from achieveit_sync.settings import BackupSettings, ClientSettings
from achieveit_sync.storage import S3Storage

from tests.conftest import FakeLambdaContext, load_event, load_handler, plan_items
from tests.integration.conftest import ClientFactory, SandboxFactory, plan_organisation

pytestmark = pytest.mark.usefixtures("aws")
BUCKET = "achieveit-sync-backups-test"


@pytest.fixture
def s3() -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def plans_sandbox(start_sandbox: SandboxFactory) -> SandboxServer:
    return start_sandbox(plan_organisation(("P3001", 3001), ("SMALL", 40), ("LOCKED", 5)))


class Clock:
    """Each backup a minute after the previous one, so their folders differ."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def run(client: AchieveItClient, s3: Any, plans: list[str], clock: Clock) -> Any:
    return back_up_plans(
        plans,
        client=client,
        target=S3Target(S3Storage(s3), BUCKET),
        clock=clock,
    )


def read_json(s3: Any, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def read_bytes(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def keys(s3: Any, prefix: str) -> list[str]:
    return sorted(
        o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    )


def test_a_3001_item_plan_lands_complete_with_matching_checksums(
    plans_sandbox: SandboxServer, client_for: ClientFactory, s3: Any
) -> None:
    client = client_for(plans_sandbox)

    result = run(client, s3, ["P3001"], Clock())

    assert [o.status for o in result.outcomes] == ["complete"]
    latest = read_json(s3, "backups/P3001/latest.json")
    manifest = read_json(s3, latest["manifest"])
    assert manifest["complete"] is True
    assert (manifest["itemCount"], manifest["totalCount"], manifest["pagesFetched"]) == (
        3001,
        3001,
        3,
    )
    assert manifest["apiBaseUrl"] == client.base_url
    for name, described in manifest["files"].items():
        body = read_bytes(s3, described["key"])
        assert hashlib.sha256(body).hexdigest() == described["sha256"], name
        assert len(body) == described["bytes"]
    items = json.loads(gzip.decompress(read_bytes(s3, manifest["files"]["items.json.gz"]["key"])))
    assert items == list(plan_items(client, "P3001"))  # exactly as the API returns them
    csv_lines = (
        gzip.decompress(read_bytes(s3, manifest["files"]["items.csv.gz"]["key"]))
        .decode()
        .splitlines()
    )
    assert csv_lines[0].startswith("id,externalId,sequenceId,level,name,statusName")
    assert len(csv_lines) == 3002
    template = read_bytes(s3, "templates/P3001/progress-updates.csv").decode().splitlines()
    assert template[0] == "External ID,Status,Metric Value,As Of Date,Comment,Item Name"
    assert len(template) == 3002


def test_an_unchanged_plan_gets_a_pointer_manifest_not_a_copy(
    plans_sandbox: SandboxServer, client_for: ClientFactory, s3: Any
) -> None:
    client, clock = client_for(plans_sandbox), Clock()
    run(client, s3, ["SMALL"], clock)
    first = read_json(s3, "backups/SMALL/latest.json")

    second_run = run(client, s3, ["SMALL"], clock)

    assert [o.status for o in second_run.outcomes] == ["unchanged"]
    latest = read_json(s3, "backups/SMALL/latest.json")
    manifest = read_json(s3, latest["manifest"])
    assert latest["manifest"] != first["manifest"]
    assert manifest["unchanged"] is True
    assert manifest["dataFrom"] == first["manifest"]
    assert manifest["previousBackup"] == first["manifest"]
    assert manifest["files"] == read_json(s3, first["manifest"])["files"]
    assert len([k for k in keys(s3, "backups/SMALL/") if k.endswith("items.json.gz")]) == 1


def test_a_changed_plan_gets_new_data(
    plans_sandbox: SandboxServer, client_for: ClientFactory, s3: Any
) -> None:
    client, clock = client_for(plans_sandbox), Clock()
    run(client, s3, ["SMALL"], clock)
    with plans_sandbox.organisation() as organisation:
        organisation.plans["SMALL"].items[3].status = "Achieved"

    assert [o.status for o in run(client, s3, ["SMALL"], clock).outcomes] == ["complete"]
    assert len([k for k in keys(s3, "backups/SMALL/") if k.endswith("items.json.gz")]) == 2


def test_a_403_plan_fails_alone_and_the_run_names_it(
    plans_sandbox: SandboxServer, client_for: ClientFactory, s3: Any
) -> None:
    with plans_sandbox.organisation():
        plans_sandbox.service_account.plan_roles["LOCKED"] = Role.NONE

    result = run(client_for(plans_sandbox), s3, ["SMALL", "LOCKED", "P3001"], Clock())

    assert [(o.plan_id, o.status) for o in result.outcomes] == [
        ("SMALL", "complete"),
        ("LOCKED", "failed"),
        ("P3001", "complete"),
    ]
    assert "403" in (result.outcomes[1].error or "")
    with pytest.raises(BackupRunError, match="LOCKED: failed"):
        raise BackupRunError(result)
    assert keys(s3, "backups/LOCKED/") == []


class GrowingPlanClient(AchieveItClient):
    """Adds an item to the plan after the first page of the first export (a plan that
    changes while it is paged)."""

    sandbox: SandboxServer
    grown = False

    def export_page(self, plan_id: str, **options: Any) -> ExportPage:
        page = super().export_page(plan_id, **options)
        if not self.grown:
            self.grown = True
            with self.sandbox.organisation() as organisation:
                extra = plan_organisation(("X", 1)).plans["X"].items[0]
                extra.id, extra.external_id, extra.sequence_id = "new-item", "NEW", "99"
                organisation.add_item(plan_id, extra)
        return page


def test_a_plan_that_changes_while_paged_is_detected_and_exported_again(
    plans_sandbox: SandboxServer, s3: Any
) -> None:
    settings = ClientSettings(base_url=plans_sandbox.base_url, ca_bundle=plans_sandbox.ca_file)
    from achieveit_sync.api_key import StaticApiKey

    with GrowingPlanClient(settings, StaticApiKey(plans_sandbox.api_key)) as client:
        client.sandbox = plans_sandbox
        result = run(client, s3, ["P3001"], Clock())

    assert [o.status for o in result.outcomes] == ["complete"]
    manifest = read_json(s3, read_json(s3, "backups/P3001/latest.json")["manifest"])
    attempts = manifest["completeness"]["attempts"]
    assert [a["complete"] for a in attempts] == [False, True]
    assert "totalCount changed while paging (3001 -> 3002)" in attempts[0]["problems"]
    assert manifest["itemCount"] == 3002


def test_a_backup_that_cannot_be_proven_whole_is_stored_as_incomplete(
    plans_sandbox: SandboxServer, client_for: ClientFactory, s3: Any
) -> None:
    plans_sandbox.set_behaviour(omit_total_count=True)

    result = run(client_for(plans_sandbox), s3, ["SMALL"], Clock())

    [outcome] = result.outcomes
    assert outcome.status == "incomplete"
    assert "no totalCount" in (outcome.error or "")
    [manifest_key] = [k for k in keys(s3, "backups/SMALL/") if k.endswith("manifest.json")]
    manifest = read_json(s3, manifest_key)
    assert manifest["completeness"]["verdict"] == "INCOMPLETE"
    assert len(manifest["completeness"]["attempts"]) == 3
    assert "backups/SMALL/latest.json" not in keys(s3, "backups/SMALL/")


def test_latest_never_points_at_a_backup_killed_mid_upload(
    plans_sandbox: SandboxServer, client_for: ClientFactory, s3: Any
) -> None:
    client, clock = client_for(plans_sandbox), Clock()
    run(client, s3, ["SMALL"], clock)
    before = read_json(s3, "backups/SMALL/latest.json")
    with plans_sandbox.organisation() as organisation:
        organisation.plans["SMALL"].items[0].name = "Renamed"
    target = S3Target(S3Storage(s3), BUCKET)
    real_write = target.write_file

    class Killed(BaseException):
        pass

    def die_on_csv(key: str, body: Any, content_type: str) -> None:
        if key.endswith("items.csv.gz"):
            raise Killed
        real_write(key, body, content_type)

    target.write_file = die_on_csv  # type: ignore[method-assign]
    with pytest.raises(Killed):
        back_up_plans(["SMALL"], client=client, target=target, clock=clock)

    assert read_json(s3, "backups/SMALL/latest.json") == before
    for described in read_json(s3, before["manifest"])["files"].values():
        assert read_bytes(s3, described["key"])


@pytest.fixture
def handler_env(
    plans_sandbox: SandboxServer, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(Name="achieveit-sync/api-key", SecretString=plans_sandbox.api_key)
    for name, value in {
        "BACKUP_BUCKET": BUCKET,
        "PLAN_IDS": "SMALL, P3001",
        "BACKUP_TIME_ZONE": "America/Chicago",
        "ACHIEVEIT_API_KEY_SECRET": "achieveit-sync/api-key",
        "ACHIEVEIT_BASE_URL": plans_sandbox.base_url,
        "ACHIEVEIT_CA_BUNDLE": str(plans_sandbox.ca_file),
    }.items():
        monkeypatch.setenv(name, value)
    module = load_handler("export")
    yield module


def test_the_schedule_event_backs_up_the_configured_plans(
    handler_env: Any, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # A new container: Powertools keeps "cold start" per process, as Lambda's runtime does.
    from aws_lambda_powertools.metrics.provider.cold_start import reset_cold_start_flag

    reset_cold_start_flag()
    result = handler_env.lambda_handler(load_event("export-schedule.json"), FakeLambdaContext())

    assert [p["planId"] for p in result["plans"]] == ["SMALL", "P3001"]
    assert result["failed"] == []
    manifest = read_json(s3, read_json(s3, "backups/SMALL/latest.json")["manifest"])
    assert manifest["timeZone"] == "America/Chicago"
    assert manifest["startedAtLocal"].endswith("-06:00")
    emitted = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and "_aws" in line
    ]
    [backups] = [blob for blob in emitted if "CompleteBackups" in blob]
    assert backups["CompleteBackups"] in (2, [2.0], 2.0)
    assert any("ColdStart" in blob for blob in emitted)  # Powertools' cold-start metric


def test_an_on_demand_event_backs_up_the_plans_it_names(handler_env: Any, s3: Any) -> None:
    event = load_event("export-on-demand.json")
    event["plans"] = ["SMALL"]

    result = handler_env.lambda_handler(event, FakeLambdaContext())

    assert [p["planId"] for p in result["plans"]] == ["SMALL"]
    assert keys(s3, "backups/P3001/") == []


def test_a_failed_plan_fails_the_invocation_after_the_others(handler_env: Any, s3: Any) -> None:
    with pytest.raises(BackupRunError, match="NOPE: failed"):
        handler_env.lambda_handler({"plans": ["NOPE", "SMALL"]}, FakeLambdaContext())

    assert "backups/SMALL/latest.json" in keys(s3, "backups/SMALL/")


def test_settings_name_a_bad_time_zone() -> None:
    from achieveit_sync.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="BACKUP_TIME_ZONE 'Mars/Olympus'"):
        BackupSettings.from_env(
            {
                "BACKUP_BUCKET": "backups",
                "ACHIEVEIT_API_KEY_SECRET": "s",
                "BACKUP_TIME_ZONE": "Mars/Olympus",
            }
        )
