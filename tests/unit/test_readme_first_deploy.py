"""The README's first-deploy checklist stays true to the template and the smoke command."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

from achieveit_sandbox.cloudformation import load_template
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
