"""The README's first-deploy checklist stays true to the template and the smoke command."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path

from achieveit_sandbox.cloudformation import load_template
from achieveit_sync.backup.lambda_adapter import plans_for_event
from achieveit_sync.smoke import add_arguments

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
FIRST_DEPLOY = README[README.index("### First deploy") : README.index("### Parameters")]


def test_every_alarm_in_the_template_is_explained() -> None:
    template = load_template(ROOT / "template.yaml")
    alarms = [
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    ]
    for alarm in alarms:
        assert f"`{alarm}`" in FIRST_DEPLOY, f"{alarm} is not in the README's alarm table"


def test_the_smoke_command_in_the_checklist_is_one_the_cli_accepts() -> None:
    [line] = [
        line.strip()
        for line in FIRST_DEPLOY.splitlines()
        if re.match(r"\s*\.venv/bin/achieveit-sync smoke ", line)
    ]
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    arguments = parser.parse_args(shlex.split(line)[2:])

    assert arguments.stack == "achieveit-sync"
    assert arguments.plan == "PLAN-ID"


def test_every_parameter_is_in_the_parameters_table() -> None:
    template = load_template(ROOT / "template.yaml")
    for name in template["Parameters"]:
        assert f"| `{name}` |" in README, name


def test_setting_plans_says_to_back_up_at_once() -> None:
    """BackupMissingAlarm treats missing data as breaching, on purpose, and exists as soon as
    PlanIds is set: it fires before the first nightly run unless a backup is made at once.
    The plans step says so, and how (review B3)."""
    template = load_template(ROOT / "template.yaml")
    alarm = template["Resources"]["BackupMissingAlarm"]
    assert alarm["Condition"] == "HasScheduledPlans"
    assert alarm["Properties"]["TreatMissingData"] == "breaching"
    step = FIRST_DEPLOY[FIRST_DEPLOY.index("3. **The plans.**") : FIRST_DEPLOY.index("4. **")]
    assert "`BackupMissingAlarm`" in step
    assert "smoke test (step 5)" in step
    assert "5. **The smoke test.**" in FIRST_DEPLOY
    [command] = re.findall(r"aws lambda invoke .*?/dev/null", step.replace("\\\n", " "), re.S)
    words = shlex.split(command)
    assert words[words.index("--function-name") + 1] == "<ExportFunctionName>"
    assert "ExportFunctionName" in template["Outputs"]
    assert words[words.index("--invocation-type") + 1] == "Event"
    payload = json.loads(words[words.index("--payload") + 1])
    assert plans_for_event(payload, ("P-1", "P-2")) == ["P-1", "P-2"]  # the PlanIds plans


def test_the_smoke_permissions_include_listing_both_buckets() -> None:
    """S3 answers a GET of a key not written yet with 404 only to a caller that may
    s3:ListBucket, else 403: the smoke command polls for a report and a latest.json that do
    not exist yet, in the drop and the backups buckets (review B8)."""
    step = FIRST_DEPLOY[FIRST_DEPLOY.index("5. **The smoke test.**") : FIRST_DEPLOY.index("6. **")]
    needs = " ".join(step[step.index("It needs") :].split())
    for permission in (
        "`cloudformation:DescribeStacks`",
        "`s3:PutObject`",
        "`s3:GetObject`",
        "`s3:ListBucket` on the drop and backups buckets",
        "`lambda:InvokeFunction`",
    ):
        assert permission in needs, permission


def test_the_upgrade_notes_cover_what_an_update_replaces() -> None:
    """Two changes replace a resource on a stack deployed before them: the secret's derived
    name (review A2; the old secret is retained) and the ingest queue's name (C4; its
    messages go with it). The checklist says what to do about each."""
    template = load_template(ROOT / "template.yaml")
    resources = template["Resources"]
    assert resources["ApiKeySecret"]["UpdateReplacePolicy"] == "Retain"
    assert "QueueName" in resources["IngestQueue"]["Properties"]
    notes = " ".join(FIRST_DEPLOY.split())
    assert "`ApiKeySecretName=achieveit-sync/api-key`" in notes
    assert "`UpdateReplacePolicy: Retain`" in notes
    assert "replaces the ingest queue" in notes
    assert "ApproximateNumberOfMessagesNotVisible" in notes


def test_the_checklist_says_which_checks_come_before_anything_is_created() -> None:
    """CloudFormation validates parameter constraints (AllowedPattern, AllowedValues,
    MaxLength) and the Rules section before it creates or updates anything; every other check
    is made by the service that receives the value, while the stack is being created. The
    checklist must not promise that all bad configuration is refused up front."""
    step = " ".join(
        FIRST_DEPLOY[FIRST_DEPLOY.index("1. **Deploy**") : FIRST_DEPLOY.index("2. **")].split()
    )
    assert "is refused before anything is created" not in step
    assert "before it creates anything" in step
    assert "Other checks happen only while the stack is being created or updated" in step
    assert "rolls the deploy back" in step
