"""The plan-id rule (issue 10, point 9): what passes, what is refused, and how a refused id
is shown."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest
from achieveit_sync.backup.targets import LocalTarget
from achieveit_sync.plan_ids import InvalidPlanIdError, check_plan_id, describe_plan_id, is_plan_id

ROOT = Path(__file__).resolve().parents[2]


def sandbox_plan_ids() -> list[str]:
    fixtures = resources.files("achieveit_sandbox") / "fixtures"
    ids = []
    for fixture in fixtures.iterdir():
        if fixture.name.endswith(".json"):
            document = json.loads(fixture.read_text("utf-8"))
            ids += [plan["id"] for plan in document.get("plans", [])]
            ids += [plan["id"] for plan in document.get("generatedPlans", [])]
    return ids


def test_the_sandbox_fixture_plan_ids_pass() -> None:
    ids = sandbox_plan_ids()
    assert "PX-2027" in ids
    for plan_id in ids:
        assert check_plan_id(plan_id) == plan_id


@pytest.mark.parametrize(
    "plan_id",
    [
        "PX-2027",
        "5d9f2c1e-7a3b-4e8f-9c61-2f0a8d4b7e13",
        "P3001",
        "no-such-plan",
        "a.b_c",
        "9" * 128,
    ],
)
def test_ordinary_ids_pass(plan_id: str) -> None:
    assert is_plan_id(plan_id)


@pytest.mark.parametrize(
    "plan_id",
    [
        "",
        ".",
        "..",
        "../x",
        "a/b",
        "a\\b",
        "%2e%2e",
        "-rf",
        "_x",
        ".hidden",
        "PX 1",
        "PX-1\n",
        "PX\x00",
        "C:x",
        "é",
        "PX\u2024id",
        "\uff11\uff12\uff13",  # fullwidth digits
        "9" * 129,
    ],
)
def test_anything_that_could_leave_its_folder_or_url_segment_is_refused(plan_id: str) -> None:
    assert not is_plan_id(plan_id)
    with pytest.raises(
        InvalidPlanIdError, match=re.escape("letters (A-Z, a-z), digits, '-', '_' or '.'")
    ):
        check_plan_id(plan_id)


@pytest.mark.parametrize("value", [None, 42, ["PX-1"], {"id": "PX-1"}, b"PX-1"])
def test_only_text_is_a_plan_id(value: object) -> None:
    with pytest.raises(InvalidPlanIdError, match=f"must be text, not {type(value).__name__}"):
        check_plan_id(value)


def test_a_refused_id_is_shown_escaped_and_short() -> None:
    assert describe_plan_id("PX-1") == "PX-1"
    assert describe_plan_id("../x") == "'../x'"
    assert describe_plan_id("bad\x1b[31mred\r\n") == "'bad\\x1b[31mred\\r\\n'"
    assert describe_plan_id("\ud800") == "'\\ud800'"
    assert describe_plan_id("x" * 10_000) == "'" + "x" * 59 + "..."
    assert describe_plan_id(None) == "<NoneType: None>"


@pytest.mark.parametrize(
    "key", ["../x", "backups/../../x", "/etc/passwd", "backups//x", "a/./b", "a\\..\\b", "C:/x"]
)
def test_a_local_folder_refuses_keys_that_would_leave_it(tmp_path: Path, key: str) -> None:
    target = LocalTarget(tmp_path / "out")

    with pytest.raises(ValueError, match="must stay inside the output folder"):
        target.write_json(key, {})
    with pytest.raises(ValueError, match="must stay inside the output folder"):
        target.read_json(key)
    assert not any(tmp_path.rglob("*"))
