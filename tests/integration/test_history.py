"""The plan history (issue 15): what backups write under history/, and the template's named
queries run through `achieveit-sync query` against it, from a folder and from S3 (moto)."""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from achieveit_sandbox import SandboxServer
from achieveit_sync.backup.history import HISTORY_COLUMNS, Snapshot, history_line
from achieveit_sync.backup.query import named_queries
from achieveit_sync.backup.run import back_up_plans
from achieveit_sync.backup.targets import BackupTarget, LocalTarget, S3Target
from achieveit_sync.cli import main
from achieveit_sync.storage import S3Storage

from tests.conftest import plan_items as every_item
from tests.integration.conftest import ClientFactory, SandboxFactory, plan_organisation

PLAN = "H1"
OTHER = "H2"
BUCKET = "achieveit-sync-history-test"
OWNERS = ("Ana Ruiz", "Ben Cole")


@pytest.fixture
def history_sandbox(start_sandbox: SandboxFactory) -> SandboxServer:
    sandbox = start_sandbox(plan_organisation((PLAN, 12), (OTHER, 5)))
    with sandbox.organisation() as organisation:
        for plan_id in (PLAN, OTHER):
            for index, item in enumerate(organisation.plans[plan_id].items):
                item.status = "On Track"
                item.due = date(2099, 12, 31)
                item.assigned_to_full_name = OWNERS[index % 2]
    return sandbox


class Moments:
    """Yesterday's backup, then today's: real dates, as the named queries count back from
    today."""

    def __init__(self) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        self.times = iter([now - timedelta(days=1), now - timedelta(days=1), now, now])

    def __call__(self) -> datetime:
        return next(self.times)


def back_up(client: Any, target: BackupTarget, clock: Moments, plans: list[str]) -> Any:
    return back_up_plans(plans, client=client, target=target, clock=clock)


def two_snapshots(sandbox: SandboxServer, client: Any, target: BackupTarget) -> None:
    """Yesterday all items On Track; today item 0 Off Track, item 1 overdue, item 2 Achieved
    (with a past due date, which is not overdue: it is finished)."""
    clock = Moments()
    assert all(o.succeeded for o in back_up(client, target, clock, [PLAN]).outcomes)
    with sandbox.organisation() as organisation:
        items = organisation.plans[PLAN].items
        items[0].status = "Off Track"
        items[1].due = date(2020, 1, 31)
        items[2].status = "Achieved"
        items[2].due = date(2020, 1, 31)
    assert all(o.succeeded for o in back_up(client, target, clock, [PLAN]).outcomes)


def plan_items(client: Any, plan_id: str) -> list[dict[str, Any]]:
    return list(every_item(client, plan_id))


def history_files(root: Path) -> list[Path]:
    return sorted((root / "history").glob("*/*/*"))


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]


def run_cli(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, Any, str]:
    capsys.readouterr()
    code = main(["query", *arguments])
    captured = capsys.readouterr()
    parsed = json.loads(captured.out) if code == 0 and "json" in arguments else captured.out
    return code, parsed, captured.err


def test_each_complete_backup_writes_one_snapshot_in_its_partition_with_every_column(
    history_sandbox: SandboxServer, client_for: ClientFactory, tmp_path: Path
) -> None:
    client = client_for(history_sandbox)
    two_snapshots(history_sandbox, client, LocalTarget(tmp_path))

    first, second = history_files(tmp_path)
    yesterday, today = (datetime.now(UTC) - timedelta(days=1)).date(), datetime.now(UTC).date()
    # By day, then plan: the Glue table's one partition is the day (every plan is in it).
    assert first.parent == tmp_path / "history" / f"snapshot_date={yesterday}" / f"plan_id={PLAN}"
    assert second.parent.parent.name == f"snapshot_date={today}"
    assert first.name.endswith("Z.jsonl.gz")
    rows = read_lines(second)
    items = plan_items(client, PLAN)
    assert len(rows) == len(items) == 12
    assert [list(row) for row in rows] == [[name for name, _ in HISTORY_COLUMNS]] * 12
    row, item = rows[0], items[0]
    assert json.loads(row["item"]) == item  # the item exactly as the API returned it
    assert (row["plan_id"], row["snapshot_date"], row["item_id"]) == (PLAN, str(today), item["id"])
    assert row["snapshot_at"].startswith(f"{today} ")
    assert (row["status"], row["due"], row["assigned_to"]) == ("Off Track", "2099-12-31", OWNERS[0])
    assert row["level"] == item["level"]
    assert row["sequence_id"] == item["sequenceId"]
    assert row["assigned_to_email"] == item["assignedToEmailAddress"]
    metric = next(r for r in rows if json.loads(r["item"])["hasMetric"])
    assert isinstance(metric["current_value"], float)
    plain = next(r for r in rows if not json.loads(r["item"])["hasMetric"])
    assert plain["current_value"] is None  # the API sent null: null, not 0


def write_snapshot(root: Path, plan_id: str, days_ago: int, statuses: dict[str, str]) -> None:
    """A history file as a backup writes it, ``days_ago`` days back at 05:00 UTC."""
    moment = datetime.now(UTC).replace(hour=5, minute=0, second=0, microsecond=0)
    snapshot = Snapshot(plan_id, moment - timedelta(days=days_ago))
    lines = b"".join(
        history_line(snapshot, item, json.dumps(item).encode())
        for item in (
            {"id": item_id, "sequenceId": item_id, "name": f"item {item_id}", "statusName": status}
            for item_id, status in statuses.items()
        )
    )
    path = root / snapshot.key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(lines))


def test_status_changes_are_found_however_far_back_the_previous_snapshot_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Item 1 changed between a snapshot 12 days ago and one 6 days ago (weekday backups, a
    # missed week): the previous snapshot is outside the last 8 days, still it is a change
    # of the last 7. Item 2 changed 40 days ago (beyond the 35-day look-back) and stays.
    write_snapshot(tmp_path, PLAN, 40, {"1": "On Track", "2": "On Track"})
    write_snapshot(tmp_path, PLAN, 38, {"1": "On Track", "2": "Off Track"})
    write_snapshot(tmp_path, PLAN, 12, {"1": "On Track", "2": "Off Track"})
    write_snapshot(tmp_path, PLAN, 6, {"1": "At Risk", "2": "Off Track"})
    write_snapshot(tmp_path, PLAN, 1, {"1": "At Risk", "2": "Off Track"})

    code, changes, _ = run_cli(
        capsys, "--backups", str(tmp_path), "--format", "json", "status-changes-last-7-days"
    )

    assert code == 0
    six_days_ago = (datetime.now(UTC) - timedelta(days=6)).date()
    assert [(r["item_id"], r["previous_status"], r["status"]) for r in changes] == [
        ("1", "On Track", "At Risk")
    ]
    assert changes[0]["changed_at"].startswith(str(six_days_ago))


def test_every_plan_is_in_the_table_without_a_plan_filter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Any plan backed up (scheduled or on demand) is queried alike; plan_id is a column.
    write_snapshot(tmp_path, PLAN, 1, {"1": "On Track"})
    write_snapshot(tmp_path, OTHER, 1, {"1": "Off Track", "2": "On Track"})

    code, rows, _ = run_cli(
        capsys,
        "--backups",
        str(tmp_path),
        "--format",
        "json",
        "SELECT plan_id, COUNT(*) AS n FROM plan_item_history GROUP BY 1 ORDER BY 1",
    )

    assert code == 0
    assert [(r["plan_id"], r["n"]) for r in rows] == [(PLAN, 1), (OTHER, 2)]


def test_an_unchanged_plan_still_gets_its_days_snapshot(
    history_sandbox: SandboxServer, client_for: ClientFactory, tmp_path: Path
) -> None:
    client, clock = client_for(history_sandbox), Moments()
    back_up(client, LocalTarget(tmp_path), clock, [OTHER])

    [outcome] = back_up(client, LocalTarget(tmp_path), clock, [OTHER]).outcomes

    assert outcome.status == "unchanged"
    assert len(history_files(tmp_path)) == 2


def test_an_incomplete_backup_writes_no_history(
    history_sandbox: SandboxServer, client_for: ClientFactory, tmp_path: Path
) -> None:
    history_sandbox.set_behaviour(omit_total_count=True)

    [outcome] = back_up(
        client_for(history_sandbox), LocalTarget(tmp_path), Moments(), [PLAN]
    ).outcomes

    assert outcome.status == "incomplete"
    assert list(tmp_path.glob("backups/*/*/*/*/*/manifest.json"))  # the backup is stored
    assert not (tmp_path / "history").exists()


def test_the_template_has_the_three_named_queries_a_data_team_runs_first() -> None:
    assert [q.name for q in named_queries()] == [
        "status-counts-per-plan-per-day",
        "status-changes-last-7-days",
        "overdue-or-off-track-by-owner",
    ]


def test_every_named_query_answers_what_it_should(
    history_sandbox: SandboxServer,
    client_for: ClientFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    two_snapshots(history_sandbox, client_for(history_sandbox), LocalTarget(tmp_path))
    today, yesterday = (
        str(datetime.now(UTC).date()),
        str((datetime.now(UTC) - timedelta(days=1)).date()),
    )
    backups = ["--backups", str(tmp_path), "--format", "json"]

    code, counts, _ = run_cli(capsys, *backups, "status-counts-per-plan-per-day")
    assert code == 0
    assert [(r["snapshot_date"], r["status"], r["items"]) for r in counts] == [
        (yesterday, "On Track", 12),
        (today, "Achieved", 1),
        (today, "Off Track", 1),
        (today, "On Track", 10),
    ]

    code, changes, _ = run_cli(capsys, *backups, "status-changes-last-7-days")
    assert code == 0
    items = plan_items(client_for(history_sandbox), PLAN)
    assert sorted((r["item_id"], r["previous_status"], r["status"]) for r in changes) == sorted(
        [(items[0]["id"], "On Track", "Off Track"), (items[2]["id"], "On Track", "Achieved")]
    )
    assert all(r["changed_at"].startswith(today) for r in changes)

    code, attention, _ = run_cli(capsys, *backups, "overdue-or-off-track-by-owner")
    assert code == 0
    assert [(r["owner"], r["off_track"], r["overdue"], r["due"]) for r in attention] == [
        (OWNERS[0], "yes", "no", "2099-12-31"),
        (OWNERS[1], "no", "yes", "2020-01-31"),
    ]


def test_plain_sql_runs_and_errors_are_one_line_with_their_exit_code(
    history_sandbox: SandboxServer,
    client_for: ClientFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    two_snapshots(history_sandbox, client_for(history_sandbox), LocalTarget(tmp_path))

    code, out, _ = run_cli(
        capsys,
        "--backups",
        str(tmp_path),
        "--format",
        "csv",
        "SELECT snapshot_date, COUNT(*) AS n FROM plan_item_history GROUP BY 1 ORDER BY 1",
    )
    assert code == 0
    assert out.splitlines()[0] == "snapshot_date,n"
    assert [line.split(",")[1] for line in out.splitlines()[1:]] == ["12", "12"]

    code, out, _ = run_cli(
        capsys, "--backups", str(tmp_path), "SELECT COUNT(*) AS n FROM plan_item_history"
    )
    assert code == 0
    assert "24" in out
    assert "(1 row)" in out

    code, _, err = run_cli(capsys, "--backups", str(tmp_path), "SELEC nonsense")
    assert code == 2
    assert err.startswith("achieveit-sync: the SQL was refused")
    assert err.count("\n") == 1

    code, _, err = run_cli(capsys, "--backups", str(tmp_path / "nowhere"), "SELECT 1")
    assert code == 2
    assert "does not exist" in err

    code, _, err = run_cli(capsys, "SELECT 1")
    assert code == 2
    assert "--backups" in err


def test_a_folder_without_history_is_a_usage_error_not_an_empty_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "--backups", str(tmp_path), "status-changes-last-7-days")

    assert code == 2
    assert f"no plan history under {tmp_path} (expected {tmp_path}/history/" in err
    assert err.count("\n") == 1

    # history/ itself given (the README's `aws s3 sync ... DIR/history`): say the parent.
    write_snapshot(tmp_path, PLAN, 1, {"1": "On Track"})
    code, _, err = run_cli(capsys, "--backups", str(tmp_path / "history"), "SELECT 1")
    assert code == 2
    assert f"give --backups {tmp_path}" in err


def test_usage_mistakes_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_snapshot(tmp_path, PLAN, 1, {"1": "On Track"})
    backups = ["--backups", str(tmp_path)]

    for empty in (";", "-- just a comment", "/* c */"):
        code, _, err = run_cli(capsys, *backups, empty)
        assert (code, err.count("\n")) == (2, 1), empty
        assert "holds no statement" in err

    code, _, err = run_cli(capsys, *backups, "status-changes-last-7-day")
    assert code == 2
    assert "no named query 'status-changes-last-7-day'" in err
    assert "did you mean status-changes-last-7-days?" in err

    for extension in ("INSTALL httpfs", "LOAD httpfs", "SELECT 1; FORCE INSTALL httpfs"):
        code, _, err = run_cli(capsys, *backups, extension)
        assert code == 2, extension
        assert "INSTALL and LOAD are refused" in err


def test_missing_query_dependencies_are_named_with_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)  # as after `pip install -e .` alone

    code, _, err = run_cli(capsys, "--backups", str(tmp_path), "SELECT 1")

    assert code == 2
    assert "needs duckdb" in err
    assert "pip install 'achieveit-sync[query]'" in err
    assert err.count("\n") == 1


def test_time_zones_nan_and_formulas_come_out_usable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_snapshot(tmp_path, PLAN, 1, {"1": "On Track"})
    backups = ["--backups", str(tmp_path)]

    # TIMESTAMP WITH TIME ZONE needs pytz in DuckDB's Python API.
    code, rows, err = run_cli(
        capsys,
        *backups,
        "--format",
        "json",
        "SELECT max(snapshot_at AT TIME ZONE 'UTC') AS t, TIMESTAMPTZ '2026-01-02 03:04:05+00' "
        "AS fixed FROM plan_item_history",
    )
    assert code == 0, err
    assert rows[0]["fixed"].startswith("2026-01-0")

    # Strict JSON: no bare NaN or Infinity.
    code, out, _ = run_cli(
        capsys,
        *backups,
        "--format",
        "json",
        "SELECT 'nan'::DOUBLE AS a, 'inf'::DOUBLE AS b, '-inf'::DOUBLE AS c",
    )
    assert code == 0
    assert out == [{"a": "NaN", "b": "Infinity", "c": "-Infinity"}]

    # CSV cells a spreadsheet would run as formulas are neutralised, numbers are not.
    code, out, _ = run_cli(
        capsys, *backups, "--format", "csv", "SELECT '=HYPERLINK(1)' AS name, -3.5 AS v"
    )
    assert code == 0
    assert out.splitlines() == ["name,v", "'=HYPERLINK(1),-3.5"]


def test_list_prints_each_named_query_with_its_sql(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--list")

    assert code == 0
    for query in named_queries():
        assert query.name in out
        assert query.sql.splitlines()[0] in out


@pytest.fixture
def s3(aws: None) -> Iterator[Any]:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client


def test_from_s3_only_the_partitions_the_query_needs_are_fetched(
    history_sandbox: SandboxServer,
    client_for: ClientFactory,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = client_for(history_sandbox)
    target = S3Target(S3Storage(s3), BUCKET, "prod")
    two_snapshots(history_sandbox, client, target)
    back_up(client, target, Moments(), [OTHER])
    location = f"s3://{BUCKET}/prod"

    code, counts, err = run_cli(
        capsys,
        "--backups",
        location,
        "--format",
        "json",
        f"SELECT status, COUNT(*) AS items FROM plan_item_history WHERE plan_id = '{PLAN}' "  # noqa: S608
        f"AND snapshot_date = '{datetime.now(UTC).date()}' GROUP BY status ORDER BY status",
    )

    assert code == 0
    assert [(r["status"], r["items"]) for r in counts] == [
        ("Achieved", 1),
        ("Off Track", 1),
        ("On Track", 10),
    ]
    assert "read 1 of 3 snapshot file(s)" in err  # H1 today: not yesterday's, not H2's

    code, changes, err = run_cli(
        capsys, "--backups", location, "--format", "json", "status-changes-last-7-days"
    )
    assert code == 0
    assert len(changes) == 2
    assert "read 3 of 3" in err

    # A query that scans the view twice still counts each file once.
    code, _, err = run_cli(
        capsys,
        "--backups",
        "S3://" + location.removeprefix("s3://"),  # the scheme in capitals: the same bucket
        "SELECT COUNT(*) FROM plan_item_history "
        "WHERE snapshot_date = (SELECT max(snapshot_date) FROM plan_item_history)",
    )
    assert code == 0, err
    assert "read 3 of 3" in err


def test_from_s3_an_empty_history_is_a_usage_error(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "--backups", f"s3://{BUCKET}/prod", "SELECT 1")

    assert code == 2
    assert f"no plan history under s3://{BUCKET}/prod" in err


def test_from_s3_a_bucket_that_does_not_exist_is_one_line(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "--backups", "s3://no-such-bucket", "SELECT 1")

    assert code == 2
    assert "NoSuchBucket" in err
    assert err.count("\n") == 1
