"""`achieveit-sync smoke` run as a user runs it (a separate process, configured by the
environment) against a stack on moto in server mode.

The stack's resources are made from template.yaml (LocalStack); a CloudFormation stack in moto
carries the outputs template.yaml declares, resolved to those resources. Lambda's part is
played in this process: the ingest handler consumes the queue as the SQS event source would,
and the export handler answers Lambda Invoke calls (AWS_ENDPOINT_URL_LAMBDA).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from achieveit_sandbox import SandboxServer
from achieveit_sandbox.local_stack import LocalStack
from achieveit_sync.smoke import PASSED, SAMPLE_FOLDER, STACK_OUTPUTS

from tests.conftest import load_handler
from tests.integration.local_lambda import LambdaInvokeEndpoint, QueuePoller

REGION = "us-east-1"
STACK = "achieveit-sync-smoke"
EXPORT_FUNCTION = f"{STACK}-ExportFunction-1A2B3C4D5E6F"


@dataclass
class DeployedStack:
    session: Any
    local: LocalStack
    outputs: dict[str, str]
    invoke: LambdaInvokeEndpoint
    sandbox: SandboxServer

    def smoke(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "achieveit_sync.cli", "smoke", *arguments],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=120,
            check=False,
        )

    def keys(self, logical_id: str, prefix: str) -> list[str]:
        listing = self.session.client("s3").list_objects_v2(
            Bucket=self.local.physical_id(logical_id), Prefix=prefix
        )
        return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest.fixture
def deployed(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[DeployedStack]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    started: list[Any] = []
    host, port = moto.get_host_and_port()
    try:
        for name, value in {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "smoke",
            "AWS_SECRET_ACCESS_KEY": "smoke",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        session = boto3.session.Session(region_name=REGION)
        local = LocalStack(
            session,
            parameters={"AchieveItBaseUrl": sandbox.base_url, "PlanIds": "PX-2027"},
            stack_name=STACK,
        ).create()
        session.client("secretsmanager").put_secret_value(
            SecretId=local.physical_id("ApiKeySecret"), SecretString=sandbox.api_key
        )
        outputs = publish_outputs(session, local)
        # Both functions' environments, as the template sets them (their names do not clash).
        for function in ("IngestFunction", "ExportFunction"):
            for name, value in local.function_environment(function).items():
                monkeypatch.setenv(name, value)
        monkeypatch.setenv("ACHIEVEIT_CA_BUNDLE", str(sandbox.ca_file))
        invoke = LambdaInvokeEndpoint({EXPORT_FUNCTION: load_handler("export").lambda_handler})
        started.append(invoke.start())
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", invoke.url)
        poller = QueuePoller(
            session.client("sqs"),
            local.physical_id("IngestQueue"),
            load_handler("ingest").lambda_handler,
            function_name=f"{STACK}-IngestFunction",
        )
        started.append(poller.start())
        yield DeployedStack(session, local, outputs, invoke, sandbox)
    finally:
        for service in reversed(started):
            service.stop()
        # moto's backends live in this process, shared by every server it starts: reset them.
        requests.post(f"http://{host}:{port}/moto-api/reset", timeout=10)
        moto.stop()


def publish_outputs(session: Any, local: LocalStack) -> dict[str, str]:
    """A CloudFormation stack in moto whose outputs are template.yaml's own Outputs (those the
    smoke command reads), resolved to the resources LocalStack made."""
    local.resolver.physical["ExportFunction"] = EXPORT_FUNCTION
    declared = local.resolver.template["Outputs"]
    outputs = {
        name: str(local.resolver.resolve(declared[name]["Value"]))
        for name in STACK_OUTPUTS.values()
    }
    session.client("cloudformation").create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(
            {
                "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {name: {"Value": value} for name, value in outputs.items()},
            }
        ),
    )
    return outputs


def last_line(output: str) -> str:
    return output.rstrip("\n").splitlines()[-1]


def test_the_smoke_command_passes_against_a_working_stack(deployed: DeployedStack) -> None:
    result = deployed.smoke("--stack", STACK, "--plan", "PX-2027", "--poll-seconds", "0.2")

    assert result.returncode == 0, result.stdout + result.stderr
    assert last_line(result.stdout).startswith(PASSED)
    assert "plan PX-2027 was backed up" in last_line(result.stdout)
    assert '"status": "completed"' in result.stdout  # the report, printed
    [archived] = deployed.keys("DropBucket", "archive/")
    assert f"incoming/progress/{SAMPLE_FOLDER}" in archived
    assert deployed.keys("DropBucket", "incoming/") == []
    assert "backups/PX-2027/latest.json" in deployed.keys("BackupBucket", "backups/PX-2027/")
    assert deployed.invoke.invocations == [(EXPORT_FUNCTION, {"plans": ["PX-2027"]})]
    # The sample has no rows: nothing was sent to AchieveIt but the export's reads.
    assert [r.method for r in deployed.sandbox.recorded_requests()] == ["GET"] * len(
        deployed.sandbox.recorded_requests()
    )


def test_the_resources_can_be_named_instead_of_the_stack(deployed: DeployedStack) -> None:
    outputs = deployed.outputs
    result = deployed.smoke(
        "--drop-bucket",
        outputs["DropBucketName"],
        "--backup-bucket",
        outputs["BackupBucketName"],
        "--export-function",
        outputs["ExportFunctionName"],
        "--plan",
        "PX-2027",
        "--poll-seconds",
        "0.2",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert last_line(result.stdout).startswith(PASSED)


def test_a_failing_backup_fails_the_smoke_test_with_the_reason(deployed: DeployedStack) -> None:
    result = deployed.smoke("--stack", STACK, "--plan", "NO-SUCH-PLAN", "--poll-seconds", "0.2")

    assert result.returncode == 1, result.stdout + result.stderr
    line = last_line(result.stdout)
    assert line.startswith("SMOKE TEST FAILED: the export function failed:")
    assert "NO-SUCH-PLAN" in line
    assert "ok: completed" in result.stdout  # the ingest step had passed


def test_a_missing_report_fails_after_the_timeout(
    deployed: DeployedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack whose notifications never reach the function: the report never comes."""
    deployed.session.client("s3").put_bucket_notification_configuration(
        Bucket=deployed.local.physical_id("DropBucket"), NotificationConfiguration={}
    )

    result = deployed.smoke(
        "--stack", STACK, "--plan", "PX-2027", "--timeout", "1", "--poll-seconds", "0.2"
    )

    assert result.returncode == 1
    assert last_line(result.stdout).startswith("SMOKE TEST FAILED: no report for the sample file")
    assert deployed.invoke.invocations == []  # it stopped at the first failed step


def test_an_unknown_stack_is_a_usage_error(deployed: DeployedStack) -> None:
    result = deployed.smoke("--stack", "no-such-stack", "--plan", "PX-2027")

    assert result.returncode == 2
    assert "cannot read stack 'no-such-stack'" in result.stderr
