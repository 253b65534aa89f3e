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
                # Athena's List actions for the console and drivers (HistoryAnalystPolicy)
                "athena:ListWorkGroups",
                "athena:ListDataCatalogs",
                "athena:ListEngineVersions",
            }, name
    # ... and each such place says why, in a comment.
    assert text.count('Resource: "*"') == text.count(
        "X-Ray has no resource-level permissions"
    ) + text.count("these List actions take no resource")


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
    assert len(buckets) == 4  # drop, backups, access logs, Athena query results
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
        "ExportFailedRunsAlarm",
        "IngestQueueAgeAlarm",
        "ExportDestinationFailuresAlarm",
    } <= set(alarms)
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        # ... when it fires and when it clears, every one alike (review D7).
        assert alarm["Properties"]["OKActions"] == [{"Ref": "AlarmTopic"}], name


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
    # The runbook's redrive (start-message-move-task --source-arn) takes the ARN (review D2).
    assert template["Outputs"]["IngestDeadLetterQueueArn"]["Value"] == {
        "Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]
    }


# ---------------------------------------------------------------------------------------
# Rules AWS enforces on a real account and emulators do not (issue 11). Each test names the
# rule it holds the template to; the rules are in /work/shared/reference/aws-rules.md and in
# AWS's documentation as cited.


def allow_statements_of(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Each Allow statement of ``role``'s policies once (not its trust policy; policy_statements
    may meet an Fn::If branch twice)."""
    unique = {
        id(s): s
        for name, s in policy_statements(template)
        if name == role and s["Effect"] == "Allow" and "Resource" in s
    }
    return list(unique.values())


def statements_granting(template: dict[str, Any], role: str, action: str) -> list[dict[str, Any]]:
    return [s for s in allow_statements_of(template, role) if action in as_list(s["Action"])]


FUNCTION_ROLES = ("IngestFunctionRole", "ExportFunctionRole")


def test_list_bucket_is_granted_without_a_prefix_condition(template: dict[str, Any]) -> None:
    """S3 (HeadObject/GetObject, "Permissions"): for a missing key S3 answers 404 only when the
    caller has s3:ListBucket on the bucket, otherwise 403 AccessDenied. A GET or HEAD carries
    no s3:prefix, and a condition on a key absent from the request does not match (IAM) unless
    it is an ...IfExists operator. So a ListBucket grant under a plain s3:prefix condition
    never applies to a GET of latest.json before the first backup: it must be unconditional
    (or ...IfExists), or the first backup of every plan fails with AccessDenied."""
    for role, bucket in (
        ("IngestFunctionRole", "DropBucket"),
        ("ExportFunctionRole", "BackupBucket"),
    ):
        [grant] = statements_granting(template, role, "s3:ListBucket")
        assert grant["Resource"] == {"Fn::GetAtt": [bucket, "Arn"]}, role
        for operator in grant.get("Condition", {}):
            assert operator.endswith("IfExists"), f"{role}: {operator} does not match a GET"


def test_every_writer_may_abort_its_multipart_uploads(template: dict[str, Any]) -> None:
    """upload_fileobj (and the managed copy) switch to multipart uploads above 8 MB; cleaning
    up a failed one needs s3:AbortMultipartUpload on the same keys (S3 bills unfinished
    parts until then)."""
    for role in FUNCTION_ROLES:
        writers = statements_granting(template, role, "s3:PutObject")
        assert writers, role
        for statement in writers:
            assert "s3:AbortMultipartUpload" in as_list(statement["Action"]), statement["Sid"]


def test_log_permissions_name_the_groups_streams(template: dict[str, Any]) -> None:
    """GetAtt Arn of an AWS::Logs::LogGroup already ends in ":*"; appending another ":*" made
    "...:log-group:NAME:*:*". The grant is built from the group's name instead."""
    for role, group in (
        ("IngestFunctionRole", "IngestLogGroup"),
        ("ExportFunctionRole", "ExportLogGroup"),
    ):
        [grant] = statements_granting(template, role, "logs:PutLogEvents")
        resource = grant["Resource"]["Fn::Sub"]
        prefix = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
        assert resource == prefix + "${" + group + "}:*"
    assert ":*:*" not in TEMPLATE.read_text()


def test_the_dead_letter_queue_outlives_its_source(template: dict[str, Any]) -> None:
    """SQS: a message moved to a dead-letter queue keeps its original enqueue time (standard
    queues), so the DLQ's retention must be longer than its source's. And the source must keep
    a message long enough for all its receives (maxReceiveCount x visibility timeout)."""
    resources = template["Resources"]
    source = resources["IngestQueue"]["Properties"]
    dead_letter = resources["IngestDeadLetterQueue"]["Properties"]
    assert dead_letter["MessageRetentionPeriod"] > source["MessageRetentionPeriod"]
    receives = source["RedrivePolicy"]["maxReceiveCount"]
    assert source["MessageRetentionPeriod"] >= receives * source["VisibilityTimeout"]
    assert dead_letter["MessageRetentionPeriod"] <= 1209600  # SQS's maximum, 14 days


def nightly_schedule(template: dict[str, Any]) -> dict[str, Any]:
    event = template["Resources"]["ExportFunction"]["Properties"]["Events"]["NightlyBackup"]
    assert event["Type"] == "ScheduleV2"
    return dict(event["Properties"])


def test_the_schedule_name_is_unique_per_stack(template: dict[str, Any]) -> None:
    """EventBridge Scheduler: schedule names are unique per schedule group, account and region
    (SAM names a ScheduleV2 event <Function><Event> unless told otherwise). The schedule lives
    in a group of this stack's own, whose name CloudFormation generates."""
    schedule = nightly_schedule(template)
    group = schedule["GroupName"]["Ref"]
    group_resource = template["Resources"][group]
    assert group_resource["Type"] == "AWS::Scheduler::ScheduleGroup"
    assert "Name" not in group_resource.get("Properties", {})


def test_the_schedule_is_off_while_no_plans_are_configured(template: dict[str, Any]) -> None:
    """With the default PlanIds (empty) every nightly run would fail; the schedule's State
    follows the PlanIds parameter, as does the 'no backup in 26 hours' alarm."""
    schedule = nightly_schedule(template)
    assert schedule["State"] == {"Fn::If": ["HasScheduledPlans", "ENABLED", "DISABLED"]}
    assert template["Conditions"]["HasScheduledPlans"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "PlanIds"}, ""]}]
    }
    assert template["Parameters"]["PlanIds"]["Default"] == ""
    assert template["Resources"]["BackupMissingAlarm"]["Condition"] == "HasScheduledPlans"


def test_the_scheduler_role_trusts_only_this_stacks_schedules(template: dict[str, Any]) -> None:
    """Confused-deputy protection for service roles: the Scheduler's role trusts
    scheduler.amazonaws.com only with aws:SourceAccount and aws:SourceArn (for Scheduler, the
    schedule group's ARN). It may invoke the export function and feed the schedule's DLQ
    (Scheduler sends dead-letter events as the execution role), nothing else."""
    schedule = nightly_schedule(template)
    role = schedule["RoleArn"]["Fn::GetAtt"][0]
    document = template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]
    [trust] = document["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [schedule["GroupName"]["Ref"], "Arn"]}},
    }
    grants = {
        action: statement["Resource"]
        for statement in allow_statements_of(template, role)
        for action in as_list(statement["Action"])
    }
    assert grants == {
        "lambda:InvokeFunction": {"Fn::GetAtt": ["ExportFunction", "Arn"]},
        "sqs:SendMessage": schedule["DeadLetterConfig"]["Arn"],
    }


def test_failed_export_runs_land_in_an_alarmed_queue(template: dict[str, Any]) -> None:
    """Lambda: an asynchronous invocation that fails is retried twice by default and then
    dropped unless an on-failure destination (or DLQ) is configured; the schedule's own DLQ
    only catches events that could not be delivered. MaximumRetryAttempts is set on purpose
    (0, see the template), the failure goes to a queue the function's role may send to, and
    an alarm watches that queue."""
    invoke_config = template["Resources"]["ExportFunction"]["Properties"]["EventInvokeConfig"]
    assert invoke_config["MaximumRetryAttempts"] == 0
    on_failure = invoke_config["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    queue = on_failure["Destination"]["Fn::GetAtt"][0]
    assert template["Resources"][queue]["Type"] == "AWS::SQS::Queue"
    [send] = statements_granting(template, "ExportFunctionRole", "sqs:SendMessage")
    assert send["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
    watched = [
        alarm
        for alarm in resources_of(template, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Dimensions")
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    ]
    assert len(watched) == 1


_RULE_FUNCTIONS: dict[str, Any] = {
    "Fn::Equals": lambda values: values[0] == values[1],
    "Fn::Not": lambda values: not values[0],
    "Fn::Contains": lambda values: values[1] in values[0],
    "Fn::And": all,
    "Fn::Or": any,
}


def evaluate_rule_function(node: Any, parameters: dict[str, str]) -> Any:
    """The CloudFormation Rules functions the template uses, as CloudFormation evaluates them
    (parameter values are strings there)."""
    if isinstance(node, list):
        return [evaluate_rule_function(n, parameters) for n in node]
    if not isinstance(node, dict):
        return str(node)
    [(function, argument)] = node.items()
    if function == "Ref":
        return parameters[argument]
    assert function in _RULE_FUNCTIONS, f"rule function {function} not modelled here"
    return _RULE_FUNCTIONS[function](evaluate_rule_function(argument, parameters))


def rules_accept(template: dict[str, Any], **overrides: str) -> bool:
    parameters = {
        name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()
    }
    parameters.update(overrides)
    for rule in template["Rules"].values():
        condition = rule.get("RuleCondition")
        if condition is not None and not evaluate_rule_function(condition, parameters):
            continue
        for assertion in rule["Assertions"]:
            if not evaluate_rule_function(assertion["Assert"], parameters):
                return False
    return True


def test_lifecycle_settings_s3_would_refuse_cannot_be_deployed(template: dict[str, Any]) -> None:
    """S3 lifecycle: objects move to Standard-IA only at 30 days or later, and expiration must
    come after the transition; S3 checks when the bucket is created or updated, so a bad value
    would fail the deploy half-way. Parameter constraints and the template's Rules refuse every
    such pair before anything is created, and accept every valid one."""
    transition = template["Parameters"]["BackupTransitionDays"]
    expiration = template["Parameters"]["BackupExpirationDays"]
    assert min(transition["AllowedValues"]) >= 30
    assert transition["Default"] in transition["AllowedValues"]
    assert expiration["Default"] in expiration["AllowedValues"]
    for days_to_ia in transition["AllowedValues"]:
        for days_to_expiry in expiration["AllowedValues"]:
            accepted = rules_accept(
                template,
                BackupTransitionDays=str(days_to_ia),
                BackupExpirationDays=str(days_to_expiry),
            )
            assert accepted == (days_to_expiry > days_to_ia), (days_to_ia, days_to_expiry)
    lifecycle = template["Resources"]["BackupBucket"]["Properties"]["LifecycleConfiguration"]
    text = json.dumps(lifecycle)
    assert '{"Ref": "BackupTransitionDays"}' in text
    assert '{"Ref": "BackupExpirationDays"}' in text


KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:achieveit-AbCdEf"


def test_kms_decrypt_is_granted_for_the_named_key_alone(template: dict[str, Any]) -> None:
    """Reading a secret encrypted with a customer-managed KMS key also needs kms:Decrypt on
    that key. Granted only when ExistingApiKeySecretKmsKeyArn is set, on that key alone, only
    through Secrets Manager in this region (kms:ViaService), and only for the secret named
    (Secrets Manager passes the secret's ARN as the SecretARN encryption context)."""
    parameter = template["Parameters"]["ExistingApiKeySecretKmsKeyArn"]
    assert parameter["Default"] == ""
    assert re.fullmatch(parameter["AllowedPattern"], KMS_KEY)
    assert not re.fullmatch(
        parameter["AllowedPattern"], "arn:aws:kms:us-east-1:123456789012:alias/x"
    )
    assert template["Conditions"]["HasApiKeySecretKmsKey"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ExistingApiKeySecretKmsKeyArn"}, ""]}]
    }
    for role in FUNCTION_ROLES:
        assert len(statements_granting(template, role, "kms:Decrypt")) == 1, role
    assert "kms:" not in json.dumps(template["Resources"]["BackupSchedulerRole"])
    for role in FUNCTION_ROLES:
        statements = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]
        [conditional] = [
            s
            for s in statements["Statement"]
            if isinstance(s, dict) and "Fn::If" in s and "kms:Decrypt" in json.dumps(s)
        ]
        condition, granted, otherwise = conditional["Fn::If"]
        assert condition == "HasApiKeySecretKmsKey"
        assert otherwise == {"Ref": "AWS::NoValue"}
        assert granted["Action"] == "kms:Decrypt"
        assert granted["Resource"] == {"Ref": "ExistingApiKeySecretKmsKeyArn"}
        assert granted["Condition"] == {
            "StringEquals": {
                "kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"},
                # ... and for this secret alone (review C3).
                "kms:EncryptionContext:SecretARN": {"Ref": "ExistingApiKeySecretArn"},
            }
        }
    # A key makes sense only for a secret you bring.
    assert not rules_accept(template, ExistingApiKeySecretKmsKeyArn=KMS_KEY)
    assert rules_accept(
        template, ExistingApiKeySecretKmsKeyArn=KMS_KEY, ExistingApiKeySecretArn=SECRET
    )


def test_the_scheduler_input_is_the_sample_event(template: dict[str, Any]) -> None:
    """EventBridge Scheduler delivers the schedule's Input to a Lambda target verbatim (no
    EventBridge envelope): events/export-schedule.json must be exactly that Input."""
    from tests.conftest import load_event

    schedule = nightly_schedule(template)
    assert json.loads(schedule["Input"]) == load_event("export-schedule.json")


def test_every_scanner_finding_skipped_says_why(template: dict[str, Any]) -> None:
    """checkov runs in `make test` over template.yaml; a finding is fixed, or skipped in the
    template with a one-line reason."""
    skipped = 0
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), name
            assert skip["comment"].strip(), f"{name} skips {skip['id']} without a reason"
            assert "\n" not in skip["comment"].strip(), name
            skipped += 1
    assert skipped > 0


BUILT_LAYER = TEMPLATE.parent / ".aws-sam" / "build" / "AchieveItSyncLayer"
ELF_MACHINE_AARCH64 = 183


def test_the_built_layer_matches_the_functions_architecture(template: dict[str, Any]) -> None:
    """The layer is not pure Python (charset_normalizer and wrapt ship compiled modules): every
    extension `sam build` put in it must be built for the functions' architecture (arm64).
    Runs after `make build` (as `make test` does)."""
    assert template["Globals"]["Function"]["Architectures"] == ["arm64"]
    layer = template["Resources"]["AchieveItSyncLayer"]
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    extensions = sorted(BUILT_LAYER.rglob("*.so")) if BUILT_LAYER.is_dir() else []
    if not extensions:
        pytest.skip("no sam build output (run make build)")
    assert {p.parts[p.parts.index("python") + 1] for p in extensions} >= {"charset_normalizer"}
    for extension in extensions:
        header = extension.read_bytes()[:20]
        assert header[:4] == b"\x7fELF", extension
        machine = int.from_bytes(header[18:20], "little")
        assert machine == ELF_MACHINE_AARCH64, f"{extension} is not an arm64 module"


# ---------------------------------------------------------------------------------------
# Parameters AWS would refuse only half-way through a deploy (when it creates the resource
# that uses them) are refused by CloudFormation before anything is created (review A1, B4).


def pattern_of(template: dict[str, Any], parameter: str) -> str:
    return str(template["Parameters"][parameter]["AllowedPattern"])


def test_an_existing_secret_must_be_named_by_its_complete_arn(template: dict[str, Any]) -> None:
    """IAM compares a Resource with the secret's full ARN, which ends in "-" and six random
    characters: a grant on a partial ARN matches nothing, and every run would fail with
    AccessDenied."""
    pattern = pattern_of(template, "ExistingApiKeySecretArn")
    for complete in (
        "",
        SECRET,
        "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:team/achieveit-a1B2c3",
    ):
        assert re.fullmatch(pattern, complete), complete
    for partial in (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:achieveit",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:team/achieveit-key",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:achieveit-AbCdE",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:achieveit-AbCdEf*",
        "achieveit-AbCdEf",
    ):
        assert not re.fullmatch(pattern, partial), partial


@pytest.mark.parametrize(
    ("secret_arn", "stack_region", "refused"),
    [
        ("", "us-east-1", False),
        (SECRET, "us-east-1", False),
        (SECRET, "eu-west-1", True),
        (SECRET.replace("us-east-1", "us-east-2"), "us-east-1", True),
        (
            "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:a/b-a1B2c3",
            "us-gov-west-1",
            False,
        ),
    ],
)
def test_an_existing_secret_must_be_in_the_stacks_region(
    template: dict[str, Any], secret_arn: str, stack_region: str, refused: bool
) -> None:
    """The kms:Decrypt grant names Secrets Manager in the stack's region (kms:ViaService), so
    a secret elsewhere would fail at run time. A pattern cannot see the stack's region and
    Rules cannot take a field out of the ARN: a condition compares the ARN's region field
    with AWS::Region and, only when they differ, adds a wait condition nothing signals, which
    fails (1-second timeout) and rolls the deploy back."""
    from achieveit_sandbox.cloudformation import Resolver

    resolver = Resolver(template, {"ExistingApiKeySecretArn": secret_arn}, region=stack_region)
    assert resolver.condition("ExistingApiKeySecretInAnotherRegion") == refused
    resources = template["Resources"]
    check = resources["ExistingApiKeySecretArnIsNotInThisStacksRegion"]
    assert check["Type"] == "AWS::CloudFormation::WaitCondition"
    assert check["Condition"] == "ExistingApiKeySecretInAnotherRegion"
    handle = check["Properties"]["Handle"]["Ref"]
    assert resources[handle]["Type"] == "AWS::CloudFormation::WaitConditionHandle"
    assert resources[handle]["Condition"] == check["Condition"]
    assert check["Properties"]["Count"] == 1
    assert int(check["Properties"]["Timeout"]) <= 60
    assert "DependsOn" not in check  # nothing delays it: it fails in the first wave
    readme = (TEMPLATE.parent / "README.md").read_text()
    row = [line for line in readme.splitlines() if line.startswith("| `ExistingApiKeySecretArn`")]
    assert "in the stack's own region" in row[0]
    assert "`ExistingApiKeySecretArnIsNotInThisStacksRegion`" in row[0]


def test_the_time_zone_is_an_iana_name(template: dict[str, Any]) -> None:
    """EventBridge Scheduler takes an IANA zone of at most 50 characters and checks it only
    when it creates the schedule."""
    import zoneinfo

    parameter = template["Parameters"]["BackupTimeZone"]
    assert parameter["MaxLength"] == 50
    zones = zoneinfo.available_timezones()
    assert {"UTC", "America/Chicago", "America/Argentina/Buenos_Aires", "Etc/GMT+5"} <= zones
    for zone in sorted(zones):
        assert re.fullmatch(parameter["AllowedPattern"], zone), zone
        assert len(zone) <= parameter["MaxLength"], zone
    assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"])
    for mistake in (
        "",
        "America Chicago",
        "America/Chicago ",
        "+05:00",
        "UTC+05:00",
        "/America/Chicago",
        "America//Chicago",
        "America/",
    ):
        assert not re.fullmatch(parameter["AllowedPattern"], mistake), mistake


def test_the_schedule_is_an_at_rate_or_cron_expression(template: dict[str, Any]) -> None:
    """Scheduler: at(yyyy-mm-ddThh:mm:ss), rate(value unit) with a positive whole value and
    minute(s), hour(s) or day(s), cron(...) with six fields; at most 256 characters. In cron,
    one of day-of-month and day-of-week must be "?" ("*" in one needs "?" in the other), and
    "?" belongs in those two fields only (EventBridge cron expressions reference)."""
    parameter = template["Parameters"]["BackupScheduleExpression"]
    assert parameter["MaxLength"] == 256
    pattern = parameter["AllowedPattern"]
    for valid in (
        parameter["Default"],
        "cron(30 4 * * ? *)",
        "cron(0 5 ? * MON-FRI *)",
        "cron(0/30 1,13 1-7 * ? 2027)",
        "cron(0 12 L * ? *)",
        "cron(0 8 ? * 2#1 *)",
        "cron(15 10 ? * 6L 2027-2030)",
        "rate(1 day)",
        "rate(12 hours)",
        "rate(90 minutes)",
        "at(2030-01-31T04:30:00)",
    ):
        assert re.fullmatch(pattern, valid), valid
    for invalid in (
        "",
        "30 4 * * ? *",
        "cron(30 4 * * ?)",
        "cron(30 4 * * ? * *)",
        "cron(30  4 * * ? *)",
        # Neither day field is "?": AWS refuses it when it creates the schedule.
        "cron(30 4 * * * *)",
        "cron(0 5 1 * MON *)",
        "cron(0 5 * * MON-FRI *)",
        # Both are, or "?" is somewhere else.
        "cron(0 5 ? * ? *)",
        "cron(? 5 1 * ? *)",
        "cron(0 5 1 ? ? *)",
        "cron(0 5 1 * ? ?)",
        "cron(30 4 * * ? *) ",
        "rate(0 days)",
        "rate(1 week)",
        "rate(1.5 hours)",
        "at(2030-01-31 04:30:00)",
        "at(2030-01-31T04:30)",
    ):
        assert not re.fullmatch(pattern, invalid), invalid


def test_the_readme_says_which_scheduler_and_how_it_keeps_time(template: dict[str, Any]) -> None:
    """The nightly backup is an EventBridge Scheduler schedule, which evaluates its
    expression in a time zone (EventBridge rules' cron is UTC only): the README says which one
    the stack uses, the "?" rule, what at() does and what daylight saving time does."""
    schedule = nightly_schedule(template)
    assert schedule["ScheduleExpressionTimezone"] == {"Ref": "BackupTimeZone"}
    readme = " ".join((TEMPLATE.parent / "README.md").read_text().split())
    section = readme[readme.index("### When backups run") : readme.index("- Every page is fetched")]
    for words in (
        "EventBridge Scheduler schedule",
        "not an EventBridge rule",
        "always evaluated in UTC",
        "exactly one of them is `?`",
        "one-time schedule",
        "on the day clocks spring forward",
        "runs once",
    ):
        assert words in section, words
    row = readme[readme.index("| `BackupScheduleExpression` |") :].split(" | `BackupTimeZone`")[0]
    assert "`?` in exactly one of DAY and WEEKDAY" in row
    assert "`at(yyyy-mm-ddThh:mm:ss)` for one backup, once" in row


def test_object_lock_days_is_a_whole_number_of_days(template: dict[str, Any]) -> None:
    """DefaultRetention Days is an integer: 1.5 or 1e3 would pass a Number parameter and fail
    the bucket's creation. The choices are whole days, written as UseObjectLock compares."""
    parameter = template["Parameters"]["BackupObjectLockDays"]
    assert parameter["Type"] == "String"
    assert parameter["Default"] == "0"
    assert template["Conditions"]["UseObjectLock"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "BackupObjectLockDays"}, "0"]}]
    }
    for days in parameter["AllowedValues"]:
        assert re.fullmatch(r"0|[1-9][0-9]*", days), days
        assert int(days) <= 3653


def test_object_lock_never_outlasts_the_expiration(template: dict[str, Any]) -> None:
    """S3 Lifecycle cannot delete a locked version: a lock longer than BackupExpirationDays
    would keep backups past the retention the README states. Every pair of allowed values
    is accepted by the Rules exactly when the lock is not longer than the expiration."""
    locks = template["Parameters"]["BackupObjectLockDays"]["AllowedValues"]
    expirations = template["Parameters"]["BackupExpirationDays"]["AllowedValues"]
    assert "0" in locks
    assert max(int(days) for days in locks) == max(expirations)
    for lock in locks:
        for expiration in expirations:
            accepted = rules_accept(
                template,
                BackupObjectLockDays=lock,
                BackupExpirationDays=str(expiration),
                HistoryRetentionDays="3653",  # so that only the expiration's rules can refuse
            )
            assert accepted == (int(lock) <= expiration), (lock, expiration)


NONCURRENT_DAYS = 30


def test_a_backup_is_kept_its_expiration_plus_a_short_noncurrent_window(
    template: dict[str, Any],
) -> None:
    """In a versioned bucket an expired object becomes a noncurrent version, kept until
    NoncurrentVersionExpiration: the real retention is ExpirationInDays + NoncurrentDays.
    NoncurrentDays was BackupExpirationDays, which doubled it (and kept a version of
    latest.json for every night); it is a short, fixed window, and the README states the sum."""
    rules = {
        rule["Id"]: rule
        for rule in template["Resources"]["BackupBucket"]["Properties"]["LifecycleConfiguration"][
            "Rules"
        ]
    }
    for backed_up in ("age-out-backups", "age-out-templates"):
        rule = rules[backed_up]
        assert rule["ExpirationInDays"] == {"Ref": "BackupExpirationDays"}
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": NONCURRENT_DAYS}
    default = template["Parameters"]["BackupExpirationDays"]["Default"]
    readme = " ".join((TEMPLATE.parent / "README.md").read_text().split())
    assert (
        f"stored for `BackupExpirationDays` + {NONCURRENT_DAYS} days "
        f"({default + NONCURRENT_DAYS} by default)"
    ) in readme
    assert f"deleted after {default + NONCURRENT_DAYS})" in readme  # Costs


def test_the_object_lock_never_outlasts_the_history_it_also_locks(
    template: dict[str, Any],
) -> None:
    """history/ lives in the locked bucket: a lock longer than HistoryRetentionDays would
    keep snapshots past their expiry. Every pair is checked as CloudFormation would (with
    the longest BackupExpirationDays, so that only this rule can refuse)."""
    longest = str(max(template["Parameters"]["BackupExpirationDays"]["AllowedValues"]))
    for lock in template["Parameters"]["BackupObjectLockDays"]["AllowedValues"]:
        for retention in template["Parameters"]["HistoryRetentionDays"]["AllowedValues"]:
            accepted = rules_accept(
                template,
                BackupObjectLockDays=str(lock),
                HistoryRetentionDays=str(retention),
                BackupExpirationDays=longest,
            )
            assert accepted == (int(lock) <= int(retention)), (lock, retention)


def test_every_free_text_parameter_has_a_maximum_length(template: dict[str, Any]) -> None:
    """A String parameter without AllowedValues takes text of any length unless it has a
    MaxLength: an ARN, an address or a name that no service accepts would then reach the
    resource (and the role policies, whose size IAM bounds) before anything refuses it."""
    for name, spec in template["Parameters"].items():
        if spec["Type"] == "String" and "AllowedValues" not in spec:
            assert isinstance(spec.get("MaxLength"), int), f"{name} has no MaxLength"
    kms = template["Parameters"]["ExistingApiKeySecretKmsKeyArn"]
    longest_key = (
        "arn:aws-iso-b:kms:" + "r" * 32 + ":123456789012:key/mrk-" + "0123456789abcdef" * 2
    )
    assert re.fullmatch(kms["AllowedPattern"], longest_key)
    assert len(longest_key) <= kms["MaxLength"]
    assert template["Parameters"]["AlertEmail"]["MaxLength"] == 254  # RFC 5321 path, less <>


LAMBDA_ENVIRONMENT_LIMIT = 4 * 1024
LONGEST_STACK_NAME = "s" * 128  # CloudFormation's longest stack name
UNBOUNDED = "u" * 10_000


def longest_parameters(template: dict[str, Any]) -> dict[str, str]:
    """Each parameter at its longest: the longest allowed value, MaxValue, or MaxLength
    characters; one with no bound is 10,000 characters long, which no environment can hold
    (so a parameter that reaches an environment must be bounded)."""
    values = {}
    for name, spec in template["Parameters"].items():
        if "AllowedValues" in spec:
            values[name] = max((str(v) for v in spec["AllowedValues"]), key=len)
        elif spec["Type"] == "Number":
            values[name] = str(spec["MaxValue"])
        elif "MaxLength" in spec:
            values[name] = "x" * spec["MaxLength"]
        else:
            values[name] = UNBOUNDED
    return values


def worst_case_environments(
    template: dict[str, Any], existing_secret: bool
) -> dict[str, dict[str, str]]:
    from achieveit_sandbox.cloudformation import Resolver

    parameters = longest_parameters(template)
    arn_prefix = "arn:aws-us-gov:{}:us-gov-west-1:123456789012:"
    if existing_secret:
        assert len(parameters["ExistingApiKeySecretArn"]) == 600
    else:
        parameters["ExistingApiKeySecretArn"] = ""
    resolver = Resolver(template, parameters, region="us-gov-west-1", stack_name=LONGEST_STACK_NAME)
    assert resolver.condition("CreateApiKeySecret") != existing_secret
    # Each resource at the longest name AWS gives it (or that CloudFormation generates).
    resolver.physical.update(
        {
            "ApiKeySecret": arn_prefix.format("secretsmanager") + "secret:" + "n" * 512 + "-AbCdEf",
            "BackupBucket": "b" * 63,
            "IngestQueue": "https://sqs.us-gov-west-1.amazonaws.com/123456789012/" + "q" * 80,
            "IdempotencyTable": "t" * 255,
            "CheckpointTable": "t" * 255,
            "NotificationTopic": arn_prefix.format("sns") + "n" * 256,
        }
    )
    return {
        function: resolver.function_environment(function)
        for function in resources_of(template, "AWS::Serverless::Function")
    }


@pytest.mark.parametrize("existing_secret", [False, True])
def test_every_environment_fits_lambdas_4_kb_at_its_longest(
    template: dict[str, Any], existing_secret: bool
) -> None:
    """Lambda refuses a function whose environment variables pass 4 KB in all (names and
    values), when it creates or updates the function: mid-deploy. PlanIds (PLAN_IDS) is
    the one a user can grow; its MaxLength, with every other value at its longest, fits."""
    assert template["Parameters"]["PlanIds"]["MaxLength"] >= 2000  # about 80 plan IDs
    environments = worst_case_environments(template, existing_secret)
    assert environments["ExportFunction"]["PLAN_IDS"] == "x" * 2500
    for function, environment in environments.items():
        size = len(json.dumps(environment).encode())
        assert size <= LAMBDA_ENVIRONMENT_LIMIT, f"{function}: {size} bytes"


# ---------------------------------------------------------------------------------------
# Two stacks in one account (dev beside prod, or one stack name in two regions) must not
# share a name AWS keeps unique (review A2), and what must outlive the stack does (B5, C5,
# D1).

# The property naming each kind of resource; absent, CloudFormation generates a unique name,
# except where noted.
NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::Serverless::LayerVersion": "LayerName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
}
# SAM names a layer after its logical id when LayerName is absent.
NAMED_AFTER_THE_LOGICAL_ID = {"AWS::Serverless::LayerVersion"}
# Names unique across regions: a stack of the same name in another region must differ too.
GLOBAL_NAMES = {"AWS::S3::Bucket", "AWS::CloudWatch::Dashboard"}


def physical_names(
    template: dict[str, Any], stack_name: str, region: str, stack_uuid: str
) -> dict[str, str]:
    from achieveit_sandbox.cloudformation import Resolver

    class StackResolver(Resolver):
        @property
        def stack_id(self) -> str:
            return (
                f"arn:aws:cloudformation:{self.region}:{self.account}:stack/"
                f"{self.stack_name}/{stack_uuid}"
            )

    resolver = StackResolver(template, region=region, stack_name=stack_name)
    names = {}
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        if kind not in NAME_PROPERTIES:
            continue
        name = resource.get("Properties", {}).get(NAME_PROPERTIES[kind])
        if name is not None:
            names[logical_id] = str(resolver.resolve(name))
        elif kind in NAMED_AFTER_THE_LOGICAL_ID:
            names[logical_id] = logical_id
    return names


def test_two_stacks_in_one_account_share_no_name(template: dict[str, Any]) -> None:
    prod = physical_names(
        template, "achieveit-sync", "us-east-1", "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
    )
    dev = physical_names(
        template, "achieveit-sync-dev", "us-east-1", "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
    )
    elsewhere = physical_names(
        template, "achieveit-sync", "eu-west-1", "1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    assert {"ApiKeySecret", "AchieveItSyncLayer", "Dashboard", "DropBucket"} <= set(prod)
    for logical_id, name in prod.items():
        assert name != dev[logical_id], f"{logical_id} is {name} in both stacks"
        if template["Resources"][logical_id]["Type"] in GLOBAL_NAMES:
            assert name != elsewhere[logical_id], f"{logical_id} is {name} in both regions"


# CloudFormation stack ids end in a time-based (version 1) UUID: time_low-time_mid-
# time_hi_and_version-clock_seq-node. The node group is the host's and can repeat between
# stacks; time_low changes from one stack to the next.
SAME_HOST = ("51af3dc0-da77-11e4-872e-50e2416294e0", "7f00e1a0-da78-11e4-872e-50e2416294e0")
SAME_TICK = ("51af3dc0-da77-11e4-872e-50e2416294e0", "51af3dc0-da77-11e4-872e-0a1b2c3d4e5f")
STACK_SUFFIX = {
    "Fn::Join": [
        "-",
        [
            {
                "Fn::Select": [
                    index,
                    {
                        "Fn::Split": [
                            "-",
                            {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]},
                        ]
                    },
                ]
            }
            for index in (0, 4)
        ],
    ]
}


@pytest.mark.parametrize("uuids", [SAME_HOST, SAME_TICK])
def test_names_from_the_stack_id_differ_between_stacks(
    template: dict[str, Any], uuids: tuple[str, str]
) -> None:
    """The drop bucket and the ingest queue are named after the stack id's UUID, groups 0
    (time_low) and 4 (node): two stacks from one host (same node), or from one tick (same
    time_low), still get names of their own. Group 4 alone gave SAME_HOST's two stacks one
    bucket name, and the second stack failed to create it."""
    first, second = (
        physical_names(template, name, "us-east-1", uuid)
        for name, uuid in zip(("achieveit-sync", "achieveit-sync-dev"), uuids, strict=True)
    )
    for logical_id in ("DropBucket", "IngestQueue"):
        assert first[logical_id] != second[logical_id], logical_id
    assert len(first["DropBucket"]) <= 63  # S3 bucket names
    assert len(first["IngestQueue"]) <= 80  # SQS queue names
    assert first["DropBucket"].endswith("-51af3dc0-50e2416294e0")


def test_every_name_from_the_stack_id_uses_one_suffix(template: dict[str, Any]) -> None:
    """The bucket's and the queue's names are written out wherever a policy must name them
    before they exist (no GetAtt: a cycle): each place derives the same suffix, so the names
    and the ARNs in the policies agree."""
    substitutions = [
        node["Fn::Sub"]
        for node in walk(template["Resources"])
        if isinstance(node, dict) and isinstance(node.get("Fn::Sub"), list)
    ]
    suffixes = [variables["Suffix"] for _, variables in substitutions if "Suffix" in variables]
    assert len(suffixes) == 5  # + the history workgroup's name
    assert all(suffix == STACK_SUFFIX for suffix in suffixes)
    # Glue names take no "-": the history database joins the same two groups with "_".
    [database_suffix] = [v["DatabaseSuffix"] for _, v in substitutions if "DatabaseSuffix" in v]
    assert database_suffix == {"Fn::Join": ["_", STACK_SUFFIX["Fn::Join"][1]]}
    readme = " ".join((TEMPLATE.parent / "README.md").read_text().split())
    assert "Upgrading a stack deployed before the name suffix had two parts" in readme
    assert "renamed, which CloudFormation does by replacing them" in readme


def test_the_secrets_name_comes_from_the_stacks(template: dict[str, Any]) -> None:
    """Empty ApiKeySecretName derives STACK-NAME/api-key: for the stack name the README uses
    that is the former default, so that stack keeps its secret; a name given is used."""
    from achieveit_sandbox.cloudformation import Resolver

    parameter = template["Parameters"]["ApiKeySecretName"]
    assert parameter["Default"] == ""
    assert re.fullmatch(parameter["AllowedPattern"], "")
    name = template["Resources"]["ApiKeySecret"]["Properties"]["Name"]
    assert Resolver(template, stack_name="achieveit-sync").resolve(name) == (
        "achieveit-sync/api-key"
    )
    given = Resolver(template, {"ApiKeySecretName": "team/achieveit"}, stack_name="x")
    assert given.resolve(name) == "team/achieveit"


def test_the_secret_name_cannot_end_like_secrets_managers_suffix(template: dict[str, Any]) -> None:
    """CreateSecret: names are letters, digits and /_+=.@-, at most 512 characters, and should
    not end in a hyphen followed by six characters: Secrets Manager appends "-" and six
    random characters in the ARN, and takes a partial ARN whose name ends that way for a
    complete one. The derived default (STACK/api-key) never ends that way."""
    from achieveit_sandbox.cloudformation import Resolver

    parameter = template["Parameters"]["ApiKeySecretName"]
    pattern = parameter["AllowedPattern"]
    for name in ("", "team/achieveit", "achieveit-sync/api-key", "a-b", "-abcde", "key-AbCdE"):
        assert re.fullmatch(pattern, name), name
    for name in (
        "team/key-AbCdEf",
        "achieveit-sync/api-key-123456",
        "x-abcdef",
        "-abcdef",
        "a--/_+=.",
        "team key",
        "team/api-key!",
    ):
        assert not re.fullmatch(pattern, name), name
    for length in range(1, 40):
        name = "a" * length
        hyphened = name[:-7] + "-" + name[-6:] if length >= 7 else name
        assert re.fullmatch(pattern, name), name
        assert bool(re.fullmatch(pattern, hyphened)) == (length < 7), hyphened
    derived = template["Resources"]["ApiKeySecret"]["Properties"]["Name"]
    for stack_name in ("achieveit-sync", "x", "S-" * 64):
        resolved = Resolver(template, stack_name=stack_name).resolve(derived)
        assert re.fullmatch(pattern, resolved), resolved
    assert '"-" followed by six' in parameter["ConstraintDescription"]


def test_the_layer_name_fits_at_the_longest_stack_name(template: dict[str, Any]) -> None:
    """Lambda layer names: at most 140 characters of [a-zA-Z0-9-_]."""
    from achieveit_sandbox.cloudformation import Resolver

    layer = template["Resources"]["AchieveItSyncLayer"]["Properties"]["LayerName"]
    name = Resolver(template, stack_name="S-" * 64).resolve(layer)
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,140}", name), name


RETAINED = {
    "ApiKeySecret",
    "BackupBucket",
    "DropBucket",
    "AccessLogsBucket",
    "HistoryQueryResultsBucket",
}
# DeletionPolicy takes Delete, Retain, RetainExceptOnCreate and (some types) Snapshot;
# UpdateReplacePolicy takes Delete, Retain and Snapshot only (CloudFormation's attribute
# reference; cfn-lint E3035 and E3036 hold the same lists).
UPDATE_REPLACE_POLICIES = {"Delete", "Retain", "Snapshot"}


def test_the_key_and_the_data_outlive_the_stack(template: dict[str, Any]) -> None:
    """DeletionPolicy (stack or resource deleted) and UpdateReplacePolicy (an update replaces
    the resource, e.g. renames the secret) both default to Delete. The key, the buckets and
    their bucket policies (a kept bucket stays TLS-only) are kept by both; nothing else is
    (the template says why, as does the README)."""
    bucket_policies = {
        name
        for name, policy in resources_of(template, "AWS::S3::BucketPolicy").items()
        if policy["Properties"]["Bucket"]["Ref"] in RETAINED
    }
    assert len(bucket_policies) == 4
    for logical_id, resource in template["Resources"].items():
        deletion = resource.get("DeletionPolicy")
        replacement = resource.get("UpdateReplacePolicy")
        if logical_id in RETAINED | bucket_policies:
            assert deletion == "RetainExceptOnCreate", logical_id
            assert replacement == "Retain", logical_id
        else:
            assert (deletion, replacement) == (None, None), logical_id
        assert replacement in UPDATE_REPLACE_POLICIES | {None}, logical_id
    readme = (TEMPLATE.parent / "README.md").read_text()
    assert "`DeletionPolicy: RetainExceptOnCreate`" in readme
    assert "`UpdateReplacePolicy: Retain`" in readme


def test_a_failed_first_create_leaves_no_orphans(template: dict[str, Any]) -> None:
    """With Retain, a first create that fails and rolls back leaves the new secret and
    buckets behind, and the retry then fails on the secret's name (names are unique per
    account and region). RetainExceptOnCreate deletes what the failed create made and keeps
    it in every later operation; the README says which."""
    for logical_id in RETAINED:
        assert template["Resources"][logical_id]["DeletionPolicy"] != "Retain", logical_id
    readme = " ".join((TEMPLATE.parent / "README.md").read_text().split())
    assert "a first deploy that fails and rolls back deletes" in readme


# ---------------------------------------------------------------------------------------
# Every stack publishes to one namespace (AchieveItSync); the "service" dimension, each
# function's POWERTOOLS_SERVICE_NAME, is the stack's own, and its alarms and dashboard watch
# that one (review B1).


def resolved_dashboard(template: dict[str, Any], resolver: Any) -> dict[str, Any]:
    for alarm in resources_of(template, "AWS::CloudWatch::Alarm"):
        resolver.attributes[(alarm, "Arn")] = f"arn:aws:cloudwatch:us-east-1:1:alarm:{alarm}"
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
    return dict(json.loads(resolver.resolve(body)))


def dashboard_metrics(dashboard: dict[str, Any]) -> list[list[Any]]:
    """Each metric of the dashboard's metric widgets, with its "." shorthands (same as the
    row above) filled in."""
    metrics = []
    for widget in dashboard["widgets"]:
        previous: list[Any] = []
        for row in widget["properties"].get("metrics", []):
            fields = [f for f in row if not isinstance(f, dict)]
            full = [previous[i] if f == "." else f for i, f in enumerate(fields)]
            metrics.append(full)
            previous = full
    return metrics


def environment_of(template: dict[str, Any], function: str) -> dict[str, Any]:
    return dict(template["Resources"][function]["Properties"]["Environment"]["Variables"])


def test_each_stack_alarms_on_and_shows_its_own_metrics(template: dict[str, Any]) -> None:
    from achieveit_sandbox.cloudformation import Resolver

    services_by_stack = []
    for stack_name in ("achieveit-sync", "achieveit-sync-dev"):
        resolver = Resolver(template, stack_name=stack_name)
        services = {
            function: resolver.resolve(
                environment_of(template, function)["POWERTOOLS_SERVICE_NAME"]
            )
            for function in ("IngestFunction", "ExportFunction")
        }
        assert len(set(services.values())) == 2
        services_by_stack.append(set(services.values()))
        namespace = template["Globals"]["Function"]["Environment"]["Variables"][
            "POWERTOOLS_METRICS_NAMESPACE"
        ]
        # Every alarm on this code's metrics names one function's service.
        custom = {
            name: alarm["Properties"]
            for name, alarm in resources_of(template, "AWS::CloudWatch::Alarm").items()
            if alarm["Properties"]["Namespace"] == namespace
        }
        assert {"RejectedRowsAlarm", "BackupMissingAlarm"} <= set(custom)
        for name, properties in custom.items():
            [dimension] = properties["Dimensions"]
            assert dimension["Name"] == "service", name
            assert resolver.resolve(dimension["Value"]) in services.values(), name
        # ... as does every metric of the dashboard.
        metrics = dashboard_metrics(resolved_dashboard(template, resolver))
        assert metrics
        for metric in metrics:
            assert metric[0] == namespace, metric
            assert metric[2:] in (["service", s] for s in services.values()), metric
    assert not services_by_stack[0] & services_by_stack[1]


def test_the_default_backup_time_exists_every_day(template: dict[str, Any]) -> None:
    """EventBridge Scheduler skips a cron time that does not exist (the hour clocks spring
    forward) and runs a repeated one once. The default time of day must exist every day in
    every American and European zone (02:30 did not, in 106 of them); otherwise one night a
    year has no backup and BackupMissingAlarm fires (review B2)."""
    import zoneinfo
    from datetime import UTC, date, datetime, timedelta

    default = template["Parameters"]["BackupScheduleExpression"]["Default"]
    match = re.fullmatch(r"cron\((\d+) (\d+) .*\)", default)
    assert match, default
    minute, hour = match.groups()
    zones = sorted(
        z for z in zoneinfo.available_timezones() if z.startswith(("America/", "Europe/"))
    )
    assert "America/Chicago" in zones
    assert "Europe/London" in zones
    for zone in zones:
        tz = zoneinfo.ZoneInfo(zone)
        day = date(2026, 1, 1)
        while day.year < 2031:
            local = datetime(day.year, day.month, day.day, int(hour), int(minute), tzinfo=tz)
            round_trip = local.astimezone(UTC).astimezone(tz)
            assert round_trip.replace(tzinfo=None) == local.replace(tzinfo=None), (zone, day)
            day += timedelta(days=1)


# ---------------------------------------------------------------------------------------
# Failures no other alarm sees (review B7), and a dashboard that shows every alarm (D5).


def test_a_message_nothing_receives_alarms_before_it_expires(template: dict[str, Any]) -> None:
    """Only receives count towards maxReceiveCount: a message the function never receives
    (mapping disabled, throttled, no permission to poll) never reaches the dead-letter queue
    and is deleted at the end of the queue's retention. Its age alarms once it is older than
    every try could take, and well before it expires."""
    queue = template["Resources"]["IngestQueue"]["Properties"]
    [alarm] = [
        a["Properties"]
        for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "ApproximateAgeOfOldestMessage"
    ]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["IngestQueue", "QueueName"]}}
    ]
    assert alarm["Statistic"] == "Maximum"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    every_try = queue["RedrivePolicy"]["maxReceiveCount"] * queue["VisibilityTimeout"]
    assert alarm["Threshold"] >= every_try
    assert alarm["Threshold"] + alarm["Period"] * alarm["EvaluationPeriods"] <= (
        queue["MessageRetentionPeriod"] / 2
    )


def test_a_failed_run_that_cannot_be_recorded_alarms(template: dict[str, Any]) -> None:
    """Lambda counts DestinationDeliveryFailures when it cannot send a failed asynchronous
    run to the on-failure destination: that run is then in no queue to alarm on."""
    [alarm] = [
        a["Properties"]
        for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "DestinationDeliveryFailures"
    ]
    assert alarm["Namespace"] == "AWS/Lambda"
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "ExportFunction"}}]
    assert (
        "DestinationConfig"
        in (template["Resources"]["ExportFunction"]["Properties"]["EventInvokeConfig"])
    )
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 0)
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


@pytest.mark.parametrize("plan_ids", ["", "P-1,P-2"])
def test_the_dashboard_shows_every_alarm_the_stack_has(
    template: dict[str, Any], plan_ids: str
) -> None:
    from achieveit_sandbox.cloudformation import Resolver

    resolver = Resolver(template, {"PlanIds": plan_ids})
    dashboard = resolved_dashboard(template, resolver)
    [widget] = [w for w in dashboard["widgets"] if w["type"] == "alarm"]
    existing = {
        name
        for name, alarm in resources_of(template, "AWS::CloudWatch::Alarm").items()
        if "Condition" not in alarm or resolver.condition(alarm["Condition"])
    }
    assert ("BackupMissingAlarm" in existing) == bool(plan_ids)
    shown = widget["properties"]["alarms"]
    assert len(shown) == len(set(shown)) <= 100  # the alarm widget's limit
    assert {arn.rsplit(":", 1)[-1] for arn in shown} == existing


# ---------------------------------------------------------------------------------------
# Grants and policies narrowed to what each needs (review C1, C3), and each function's
# permissions explained in the README (C2).


def test_only_this_stacks_buckets_may_deliver_access_logs(template: dict[str, Any]) -> None:
    """S3 server access logging: the log bucket's policy lets logging.s3.amazonaws.com write,
    limited to the source buckets (aws:SourceArn) of this account (aws:SourceAccount)."""
    logging_buckets = [
        {"Fn::GetAtt": [name, "Arn"]}
        for name, bucket in resources_of(template, "AWS::S3::Bucket").items()
        if bucket["Properties"].get("LoggingConfiguration", {}).get("DestinationBucketName")
        == {"Ref": "AccessLogsBucket"}
    ]
    assert len(logging_buckets) == 2
    policy = template["Resources"]["AccessLogsBucketPolicy"]["Properties"]["PolicyDocument"]
    [delivery] = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Condition"] == {
        "ArnLike": {"aws:SourceArn": logging_buckets},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }


def test_query_is_granted_on_the_checkpoint_table_only(template: dict[str, Any]) -> None:
    [query] = statements_granting(template, "IngestFunctionRole", "dynamodb:Query")
    assert query["Resource"] == {"Fn::GetAtt": ["CheckpointTable", "Arn"]}
    for statement in allow_statements_of(template, "IngestFunctionRole"):
        if statement["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}:
            assert "dynamodb:Query" not in as_list(statement["Action"])


def test_the_tables_encryption_is_described_as_it_is(template: dict[str, Any]) -> None:
    """SSEEnabled true is SSE-KMS with the AWS managed key (aws/dynamodb); an AWS owned key
    is what false or nothing gives (review C6)."""
    for name, table in resources_of(template, "AWS::DynamoDB::Table").items():
        assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}, name
        [skip] = [s for s in table["Metadata"]["checkov"]["skip"] if s["id"] == "CKV_AWS_119"]
        assert "AWS managed KMS key" in skip["comment"], name
        assert "owned" not in skip["comment"], name
    assert TEMPLATE.read_text().count("AWS managed KMS key (alias/aws/dynamodb)") == 2


def permissions_section() -> str:
    readme = (TEMPLATE.parent / "README.md").read_text()
    section = readme[readme.index("### Permissions, and why") : readme.index("## Dropping files")]
    return " ".join(section.split())


def test_every_granted_action_is_explained_in_the_readme(template: dict[str, Any]) -> None:
    """README, "Permissions, and why": every action a role of the stack grants is named
    there (as `service:Action`, or as `Action` beside one of its service named in full)."""
    section = permissions_section()
    for role in resources_of(template, "AWS::IAM::Role"):
        for statement in allow_statements_of(template, role):
            for action in as_list(statement["Action"]):
                name = action.split(":", 1)[1]
                explained = f"`{action}`" in section or f"`{name}`" in section
                assert explained, f"{role}: {action} is not explained"


def test_permanent_deletes_of_dropped_versions_say_why(template: dict[str, Any]) -> None:
    """The ingest function deletes the processed version itself (s3:DeleteObjectVersion), not
    just adds a delete marker: a late redelivery of its notification then finds the version
    gone and is skipped, instead of publishing the rows again (review C2)."""
    [grant] = statements_granting(template, "IngestFunctionRole", "s3:DeleteObjectVersion")
    assert grant["Resource"] == {"Fn::Sub": "${DropBucket.Arn}/incoming/*"}
    section = permissions_section()
    sentence = section[section.index("`DeleteObjectVersion`") :].split(". ")[0:3]
    assert "redelivery" in " ".join(sentence)


# ---------------------------------------------------------------------------------------
# Queues and topics: TLS only, the ingest dead-letter queue for the ingest queue alone, and
# the alarm topic open to this account's alarms (review C4).


def resource_policy_statements(
    template: dict[str, Any], policy_type: str, target_key: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(target logical id, statement) for every statement of every policy of that type."""
    for policy in resources_of(template, policy_type).values():
        properties = policy["Properties"]
        for target in properties[target_key]:
            for statement in properties["PolicyDocument"]["Statement"]:
                yield target["Ref"], statement


@pytest.mark.parametrize(
    ("resource_type", "policy_type", "target_key", "actions"),
    [
        ("AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "Queues", {"sqs:*"}),
        ("AWS::SNS::Topic", "AWS::SNS::TopicPolicy", "Topics", {"sns:Publish", "sns:*"}),
    ],
)
def test_every_queue_and_topic_refuses_requests_without_tls(
    template: dict[str, Any],
    resource_type: str,
    policy_type: str,
    target_key: str,
    actions: set[str],
) -> None:
    denied = set()
    for target, statement in resource_policy_statements(template, policy_type, target_key):
        if (
            statement["Effect"] == "Deny"
            and statement["Principal"] == "*"
            and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            and set(as_list(statement["Action"])) & actions
        ):
            resources = as_list(statement["Resource"])
            arn = (
                {"Fn::GetAtt": [target, "Arn"]}
                if resource_type == "AWS::SQS::Queue"
                else {"Ref": target}
            )
            assert arn in resources, (target, resources)
            denied.add(target)
    assert denied == set(resources_of(template, resource_type))


def test_the_ingest_dead_letter_queue_takes_the_ingest_queues_failures_alone(
    template: dict[str, Any],
) -> None:
    """RedriveAllowPolicy byQueue names the one source queue, by the ARN it will have (the
    dead-letter queue is created first, so not by GetAtt)."""
    from achieveit_sandbox.cloudformation import Resolver

    resources = template["Resources"]
    allow = resources["IngestDeadLetterQueue"]["Properties"]["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    [source] = allow["sourceQueueArns"]
    resolver = Resolver(template, region="eu-west-1", stack_name="x")
    queue_name = resolver.resolve(resources["IngestQueue"]["Properties"]["QueueName"])
    assert len(queue_name) <= 80
    assert resolver.resolve(source) == f"arn:aws:sqs:eu-west-1:123456789012:{queue_name}"
    assert resources["IngestQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]
    }
    assert "IngestQueue" not in json.dumps(resources["IngestDeadLetterQueue"])  # no cycle


THIS_ACCOUNTS_ALARMS = "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"


def test_cloudwatch_may_publish_alarms_of_this_account_only(template: dict[str, Any]) -> None:
    """A topic policy replaces the default one, which let this account's alarms publish:
    CloudWatch (cloudwatch.amazonaws.com) is granted sns:Publish for this account's alarms
    in this region, nothing else, and no other service or account is."""
    allows = [
        (target, s)
        for target, s in resource_policy_statements(template, "AWS::SNS::TopicPolicy", "Topics")
        if s["Effect"] == "Allow"
    ]
    [(target, allow)] = allows
    assert target == "AlarmTopic"
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == {"Ref": "AlarmTopic"}
    assert allow["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": {"Fn::Sub": THIS_ACCOUNTS_ALARMS}},
    }


def test_expired_delete_markers_leave_the_drop_bucket(template: dict[str, Any]) -> None:
    """In a versioned bucket a delete marker whose versions have all expired stays unless a
    rule expires it; ExpiredObjectDeleteMarker cannot share a rule with ExpirationInDays
    (review D3)."""
    rules = template["Resources"]["DropBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    [rule] = [r for r in rules if "NoncurrentVersionExpiration" in r]
    assert rule["ExpiredObjectDeleteMarker"] is True
    assert "ExpirationInDays" not in rule
    assert "ExpirationDate" not in rule


def test_sam_sync_watch_never_targets_the_default_stack() -> None:
    """`sam sync --watch` redeploys on every save without a change set. samconfig.toml turns
    it on only in the dev configuration environment, whose stack is not the one default and
    prod deploy; each environment has what sam deploy needs (environments do not inherit
    from default) (review D4)."""
    import tomllib

    config = tomllib.loads((TEMPLATE.parent / "samconfig.toml").read_text())
    environments = {name: env for name, env in config.items() if isinstance(env, dict)}
    assert {"default", "dev", "prod"} <= set(environments)

    def parameters(environment: str, command: str) -> dict[str, Any]:
        return dict(environments[environment].get(command, {}).get("parameters", {}))

    def stack(environment: str) -> str:
        return str(parameters(environment, "global")["stack_name"])

    assert stack("dev") != stack("prod")
    assert stack("prod") == stack("default") == "achieveit-sync"  # the README's stack
    watching = {name for name in environments if parameters(name, "sync").get("watch")}
    assert watching == {"dev"}
    for name in environments:
        deploy = parameters(name, "deploy")
        assert "CAPABILITY_IAM" in deploy["capabilities"].split(), name
        assert deploy["confirm_changeset"] is True, name
        assert deploy["region"], name
