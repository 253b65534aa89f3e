"""Plan ids are checked before they become URL segments or S3 keys (issue 10, point 9): the
export handler fails each bad id alone, with the reason, and backs up the others."""

from __future__ import annotations

from typing import Any

import pytest
from achieveit_sandbox import SandboxServer
from achieveit_sync.backup.run import BackupRunError

from tests.conftest import FakeLambdaContext
from tests.integration.backup_support import handler_env, keys, plans_sandbox, s3

__all__ = ["handler_env", "plans_sandbox", "s3"]
pytestmark = pytest.mark.usefixtures("aws")


def test_an_on_demand_event_with_bad_plan_ids_fails_them_alone(
    handler_env: Any, s3: Any, plans_sandbox: SandboxServer
) -> None:
    event = {"plans": ["SMALL", "../P3001", None, 42, "a/b", "", "x" * 129, "P3001"]}

    with pytest.raises(BackupRunError) as raised:
        handler_env.lambda_handler(event, FakeLambdaContext())

    outcomes = raised.value.run.as_dict()["plans"]
    assert [(o["planId"], o["status"]) for o in outcomes] == [
        ("SMALL", "complete"),
        ("'../P3001'", "failed"),
        ("<NoneType: None>", "failed"),
        ("<int: 42>", "failed"),
        ("'a/b'", "failed"),
        ("''", "failed"),
        ("'" + "x" * 59 + "...", "failed"),
        ("P3001", "complete"),
    ]
    assert "plan id '../P3001' is not valid: use 1 to 128 letters" in outcomes[1]["error"]
    assert "a plan id must be text, not NoneType" in outcomes[2]["error"]
    assert "the plan id is empty" in outcomes[5]["error"]
    # Nothing was asked of AchieveIt for them, and nothing written outside the two plans.
    exported = {r.path for r in plans_sandbox.recorded_requests()}
    assert exported == {"/exports/plans/SMALL", "/exports/plans/P3001"}
    # backups/<plan>/..., templates/<plan>/..., history/snapshot_date=<day>/plan_id=<plan>/...
    prefixes = {
        k.split("/")[2 if k.startswith("history/") else 1].removeprefix("plan_id=")
        for k in keys(s3, "")
    }
    assert prefixes == {"SMALL", "P3001"}


def test_a_bad_plan_id_in_plan_ids_fails_alone(
    handler_env: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAN_IDS", "SMALL, ../../templates/P3001")  # read on first use

    with pytest.raises(BackupRunError, match=r"'\.\./\.\./templates/P3001': failed \(plan id"):
        handler_env.lambda_handler({"source": "achieveit-sync.schedule"}, FakeLambdaContext())

    assert "backups/SMALL/latest.json" in keys(s3, "backups/")
    assert keys(s3, "templates/") == ["templates/SMALL/progress-updates.csv"]
