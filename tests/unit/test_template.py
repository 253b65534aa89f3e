"""template.yaml, read as CloudFormation reads it: the security and reliability properties a
review checks, asserted so that no later edit can quietly drop one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from achieveit_sandbox.cloudformation import load_template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def resources_of(template: dict[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] in types}


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in template["Resources"].items():
        for node in walk(resource.get("Properties", {})):
            if isinstance(node, dict) and "Effect" in node and "Action" in node:
                yield name, node
            if isinstance(node, dict) and "Fn::If" in node:
                for branch in node["Fn::If"][1:]:
                    if isinstance(branch, dict) and "Effect" in branch:
                        yield name, branch


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_statement_allows_a_wildcard_action(template: dict[str, Any]) -> None:
    for name, statement in policy_statements(template):
        if statement["Effect"] != "Allow":
            continue
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{name} allows {action}"


def test_wildcard_resources_only_where_the_service_requires_them(
    template: dict[str, Any],
) -> None:
    text = TEMPLATE.read_text()
    for name, statement in policy_statements(template):
        if statement["Effect"] == "Allow" and statement.get("Resource") == "*":
            assert set(as_list(statement["Action"])) <= {
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
            }, name
    # ... and each such place says why, in a comment.
    assert text.count('Resource: "*"') == text.count("X-Ray has no resource-level permissions")


def test_functions_have_their_own_roles_and_no_inline_sam_policies(
    template: dict[str, Any],
) -> None:
    functions = resources_of(template, "AWS::Serverless::Function")
    assert len(functions) == 2
    roles = {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions.values()}
    assert len(roles) == 2
    assert all("Policies" not in f["Properties"] for f in functions.values())


def test_each_function_reads_only_its_secret(template: dict[str, Any]) -> None:
    for name, statement in policy_statements(template):
        if "secretsmanager:GetSecretValue" in as_list(statement["Action"]):
            assert statement["Resource"] == {
                "Fn::If": [
                    "CreateApiKeySecret",
                    {"Ref": "ApiKeySecret"},
                    {"Ref": "ExistingApiKeySecretArn"},
                ]
            }, name


def test_every_bucket_is_encrypted_private_and_tls_only(template: dict[str, Any]) -> None:
    buckets = resources_of(template, "AWS::S3::Bucket")
    policies = resources_of(template, "AWS::S3::BucketPolicy")
    assert len(buckets) == 3
    for name, bucket in buckets.items():
        properties = bucket["Properties"]
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"], name
        block = properties["PublicAccessBlockConfiguration"]
        assert all(
            block[k] is True
            for k in (
                "BlockPublicAcls",
                "BlockPublicPolicy",
                "IgnorePublicAcls",
                "RestrictPublicBuckets",
            )
        )
        [policy] = [p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": name}]
        denies = [
            s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"
        ]
        assert any(
            s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and s["Action"] == "s3:*"
            for s in denies
        ), name


def test_buckets_holding_data_are_versioned_and_logged(template: dict[str, Any]) -> None:
    for name in ("DropBucket", "BackupBucket"):
        properties = template["Resources"][name]["Properties"]
        assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
        assert properties["LoggingConfiguration"]["DestinationBucketName"] == {
            "Ref": "AccessLogsBucket"
        }


def test_queues_and_tables_are_encrypted(template: dict[str, Any]) -> None:
    for name, queue in resources_of(template, "AWS::SQS::Queue").items():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, name
    for name, table in resources_of(template, "AWS::DynamoDB::Table").items():
        assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}, name
        assert table["Properties"]["TimeToLiveSpecification"]["Enabled"] is True, name


def test_failures_land_in_dead_letter_queues(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    redrive = resources["IngestQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    schedule = resources["ExportFunction"]["Properties"]["Events"]["NightlyBackup"]
    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["DeadLetterConfig"]["Arn"] == {
        "Fn::GetAtt": ["BackupScheduleDeadLetterQueue", "Arn"]
    }
    assert schedule["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert schedule["Properties"]["ScheduleExpressionTimezone"] == {"Ref": "BackupTimeZone"}


def test_ingest_concurrency_is_limited_and_partial_failures_reported(
    template: dict[str, Any],
) -> None:
    event = template["Resources"]["IngestFunction"]["Properties"]["Events"]["DroppedFiles"]
    assert event["Properties"]["ScalingConfig"]["MaximumConcurrency"] == {
        "Ref": "IngestMaxConcurrency"
    }
    assert template["Parameters"]["IngestMaxConcurrency"]["Default"] == 2
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_every_function_logs_to_a_group_with_retention(template: dict[str, Any]) -> None:
    groups = resources_of(template, "AWS::Logs::LogGroup")
    for name, function in resources_of(template, "AWS::Serverless::Function").items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert function["Properties"]["LoggingConfig"]["LogFormat"] == "JSON", name


def test_every_alarm_notifies_the_alarm_topic(template: dict[str, Any]) -> None:
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    assert {
        "IngestDeadLetterAlarm",
        "BackupScheduleDeadLetterAlarm",
        "IngestErrorsAlarm",
        "ExportErrorsAlarm",
        "IngestThrottlesAlarm",
        "ExportThrottlesAlarm",
        "RejectedRowsAlarm",
        "AmbiguousBatchesAlarm",
        "NotificationsFailedAlarm",
        "BackupMissingAlarm",
    } <= set(alarms)
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name


def test_the_backup_alarm_covers_26_hours(template: dict[str, Any]) -> None:
    properties = template["Resources"]["BackupMissingAlarm"]["Properties"]
    assert properties["Period"] * properties["EvaluationPeriods"] == 26 * 3600
    assert properties["TreatMissingData"] == "breaching"


def test_every_parameter_is_used_and_described(template: dict[str, Any]) -> None:
    text = json.dumps({k: v for k, v in template.items() if k != "Parameters"})
    for name, parameter in template["Parameters"].items():
        assert parameter.get("Description"), name
        used = f'"Ref": "{name}"' in text or re.search(r"\$\{" + name + r"\}", text)
        assert used, f"parameter {name} is never used"


def test_the_base_url_parameter_accepts_https_only(template: dict[str, Any]) -> None:
    pattern = template["Parameters"]["AchieveItBaseUrl"]["AllowedPattern"]
    assert re.fullmatch(pattern, "https://gov-api.achieveit.com")
    assert not re.fullmatch(pattern, "http://api.achieveit.com")


def test_functions_run_python_313_on_arm64_with_the_layer(template: dict[str, Any]) -> None:
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Layers"] == [{"Ref": "AchieveItSyncLayer"}]
    layer = template["Resources"]["AchieveItSyncLayer"]
    assert layer["Properties"]["ContentUri"] == "shared/"
    assert layer["Metadata"]["BuildMethod"] == "python3.13"


def test_outputs_give_what_a_user_needs_next(template: dict[str, Any]) -> None:
    assert {
        "DropBucketName",
        "ProgressDropPrefix",
        "MetricDropPrefix",
        "BackupBucketName",
        "ApiKeySecretArn",
        "IngestQueueUrl",
        "IngestDeadLetterQueueUrl",
        "DashboardUrl",
    } <= set(template["Outputs"])
