"""Shared by the backup tests: the fixtures of test_backup.py, and what a restore checks."""

from __future__ import annotations

import hashlib
from typing import Any

from achieveit_sandbox import SandboxServer
from achieveit_sync.backup.lambda_adapter import BackupLambda
from achieveit_sync.settings import BackupSettings, ClientSettings
from achieveit_sync.storage import S3Storage
from botocore.exceptions import ClientError

from tests.integration.conftest import ClientFactory
from tests.integration.test_backup import (
    BUCKET,
    Clock,
    handler_env,
    keys,
    plans_sandbox,
    read_bytes,
    read_json,
    run,
    s3,
)

__all__ = [
    "BUCKET",
    "Clock",
    "assert_latest_names_intact_data",
    "failing_s3",
    "handler_env",
    "keys",
    "plans_sandbox",
    "read_bytes",
    "read_json",
    "run",
    "s3",
    "service_for",
]


def assert_latest_names_intact_data(s3: Any, plan_id: str) -> dict[str, Any]:
    """What a restore does: follow latest.json to files that exist and match their SHA-256."""
    latest = read_json(s3, f"backups/{plan_id}/latest.json")
    manifest = read_json(s3, latest["manifest"])
    assert manifest["files"] == latest["files"]
    for described in latest["files"].values():
        body = read_bytes(s3, described["key"])
        assert hashlib.sha256(body).hexdigest() == described["sha256"]
    return latest


def failing_s3(s3: Any, operation: str, key_part: str, code: str) -> Any:
    """``s3`` whose ``operation`` calls on keys containing ``key_part`` fail with ``code``."""

    def fail(params: dict[str, Any], **_: Any) -> None:
        if key_part in params.get("Key", ""):
            raise ClientError({"Error": {"Code": code, "Message": f"injected {code}"}}, operation)

    s3.meta.events.register(f"before-parameter-build.s3.{operation}", fail)
    return s3


def service_for(plans_sandbox: SandboxServer, client_for: ClientFactory, s3: Any) -> BackupLambda:
    settings = BackupSettings(
        bucket=BUCKET,
        plan_ids=("P3001", "SMALL"),
        api_key_secret="unused",
        client=ClientSettings(base_url=plans_sandbox.base_url, ca_bundle=plans_sandbox.ca_file),
    )
    return BackupLambda(settings, client_for(plans_sandbox), S3Storage(s3))
