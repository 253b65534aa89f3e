"""An unchanged plan's backup points only at data that is still there, intact, and young
enough that the bucket's lifecycle rule cannot expire it while latest.json names it
(issue 10, point 8). On moto S3 and the sandbox."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from achieveit_sandbox import SandboxServer
from achieveit_sync.backup.run import BackupOptions, back_up_plans, reuse_window
from achieveit_sync.backup.targets import S3Target
from achieveit_sync.storage import S3Storage

from tests.integration.backup_support import (
    BUCKET,
    Clock,
    assert_latest_names_intact_data,
    plans_sandbox,
    read_json,
    run,
    s3,
)
from tests.integration.conftest import ClientFactory

__all__ = ["plans_sandbox", "s3"]
pytestmark = pytest.mark.usefixtures("aws")


def test_an_unchanged_plan_whose_data_was_deleted_is_stored_anew(
    plans_sandbox: SandboxServer, client_for: ClientFactory, s3: Any
) -> None:
    client, clock = client_for(plans_sandbox), Clock()
    run(client, s3, ["SMALL"], clock)
    first = read_json(s3, "backups/SMALL/latest.json")
    s3.delete_object(Bucket=BUCKET, Key=first["files"]["items.json.gz"]["key"])

    [outcome] = run(client, s3, ["SMALL"], clock).outcomes

    assert outcome.status == "complete"  # not "unchanged": it stored the data again
    [warning] = outcome.warnings
    assert "items.json.gz" in warning
    assert "is missing" in warning
    assert "stored anew" in warning
    latest = assert_latest_names_intact_data(s3, "SMALL")
    assert latest["files"] != first["files"]
    assert read_json(s3, latest["manifest"])["warnings"] == [warning]


def test_an_unchanged_plan_whose_data_was_altered_is_stored_anew(
    plans_sandbox: SandboxServer, client_for: ClientFactory, s3: Any
) -> None:
    client, clock = client_for(plans_sandbox), Clock()
    run(client, s3, ["SMALL"], clock)
    first = read_json(s3, "backups/SMALL/latest.json")
    s3.put_object(
        Bucket=BUCKET, Key=first["files"]["items.csv.gz"]["key"], Body=gzip.compress(b"tampered")
    )

    [outcome] = run(client, s3, ["SMALL"], clock).outcomes

    assert outcome.status == "complete"
    assert "items.csv.gz" in outcome.warnings[0]
    assert "does not match the SHA-256" in outcome.warnings[0]
    assert_latest_names_intact_data(s3, "SMALL")


@pytest.fixture
def s3_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """One clock for the backups and for moto's S3, so that an object's LastModified is the
    (simulated) moment it was written."""
    clock = Clock()
    clock.now = datetime(2026, 1, 1, 2, 30, tzinfo=UTC)
    monkeypatch.setattr("moto.s3.models.utcnow", lambda: clock.now.replace(tzinfo=None))
    return clock


def expire_like_the_lifecycle_rule(s3: Any, now: datetime, expiration_days: int) -> list[str]:
    """What the bucket's one rule does each day: every current version older than
    ``expiration_days`` gets a delete marker (template.yaml, BackupBucket)."""
    expired = []
    for listed in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        if now - listed["LastModified"] > timedelta(days=expiration_days):
            s3.delete_object(Bucket=BUCKET, Key=listed["Key"])
            expired.append(listed["Key"])
    return expired


def test_latest_json_never_names_data_the_lifecycle_rule_expires(
    plans_sandbox: SandboxServer, client_for: ClientFactory, s3: Any, s3_clock: Clock
) -> None:
    # 40 nightly runs of an unchanged plan in a bucket that expires objects after 10 days
    # (reuse window: 5 days); each night first applies the lifecycle rule.
    expiration_days = 10
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    client = client_for(plans_sandbox)
    target = S3Target(S3Storage(s3), BUCKET)
    statuses = []
    expired_data = 0
    for _night in range(40):
        s3_clock.now += timedelta(days=1)
        expired = expire_like_the_lifecycle_rule(s3, s3_clock.now, expiration_days)
        expired_data += sum(1 for key in expired if key.endswith(".gz"))
        result = back_up_plans(
            ["SMALL"],
            client=client,
            target=target,
            options=BackupOptions(expiration_days=expiration_days),
            clock=lambda: s3_clock.now,
        )
        [outcome] = result.outcomes
        statuses.append(outcome.status)
        assert outcome.warnings == []  # never found its data gone: it never relied on old data
        latest = assert_latest_names_intact_data(s3, "SMALL")
        for described in latest["files"].values():
            written = s3.head_object(Bucket=BUCKET, Key=described["key"])["LastModified"]
            left = written + timedelta(days=expiration_days) - s3_clock.now
            assert left >= timedelta(days=expiration_days) - reuse_window(expiration_days)

    assert expired_data > 0  # the rule did expire old copies meanwhile
    # A fresh copy once the stored one is more than 5 days old; pointers in between.
    assert [night for night, status in enumerate(statuses) if status != "unchanged"] == list(
        range(0, 40, 6)
    )
    assert set(statuses) == {"complete", "unchanged"}
