"""The command line as a user runs it: a separate process, its exit code, what it prints.
No command ever prints a stack trace; each error is one line that says what to do."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from achieveit_sandbox import SandboxServer

from tests.conftest import RECOGNISABLE_KEY

CLI = str(Path(sys.executable).with_name("achieveit-sync"))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    for name in ("ACHIEVEIT_SYNC_DEBUG",):
        environment.pop(name, None)
    return subprocess.run(
        [CLI, *args], check=False, capture_output=True, text=True, timeout=120, env=environment
    )


def sandbox_env(sandbox: SandboxServer) -> dict[str, str]:
    return {
        "ACHIEVEIT_BASE_URL": sandbox.base_url,
        "ACHIEVEIT_API_KEY": sandbox.api_key,
        "ACHIEVEIT_CA_BUNDLE": str(sandbox.ca_file),
    }


def no_trace(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr
    assert RECOGNISABLE_KEY not in result.stdout + result.stderr


# -- help and version ------------------------------------------------------------------------


def test_version_and_help_say_what_each_command_does_with_an_example_and_exit_codes() -> None:
    version = run("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("achieveit-sync ")
    for command in ("validate", "publish", "export", "diff", "status", "sandbox", "smoke"):
        text = run(command, "--help").stdout
        assert "example:" in text, command
        assert "exit codes:" in text, command
        assert "2  usage or configuration" in text, command


# -- the errors of the issue, one line each ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "code", "says"),
    [
        (["validate", "/no/such/file.csv"], {}, 2, "no such file"),
        (["validate", "{tmp}"], {}, 2, "is a folder"),
        (["publish", "{good}"], {"ACHIEVEIT_API_KEY": ""}, 2, "ACHIEVEIT_API_KEY"),
        (
            ["publish", "{good}"],
            {"ACHIEVEIT_API_KEY": "k", "ACHIEVEIT_BASE_URL": "http://insecure.example"},
            2,
            "must be an https:// URL",
        ),
        (["export", "../../x", "--out", "{tmp}"], {"ACHIEVEIT_API_KEY": "k"}, 2, "not valid"),
        (
            ["export", "PX-2027", "--out", "s3://bucket/prefix"],
            {
                "ACHIEVEIT_API_KEY": "k",
                "AWS_ACCESS_KEY_ID": "",
                "AWS_SECRET_ACCESS_KEY": "",
                "AWS_PROFILE": "",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                "AWS_CONFIG_FILE": "/nonexistent",
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_DEFAULT_REGION": "us-east-1",
            },
            2,
            "no usable AWS credentials",
        ),
        (["diff", "{tmp}/a", "{tmp}/b"], {}, 2, "no backup manifest"),
        (["diff", "{good}", "{good}"], {}, 2, "cannot be read as JSON"),
        (["status"], {}, 2, "say where to look"),
        (["validate", "{good}", "--rejected-out", "{good}"], {}, 2, "the input file itself"),
        (["validate", "{good}", "--rejected-out", "{tmp}"], {}, 2, "is a folder"),
        (["publish", "{good}", "--batch-size", "0"], {}, 2, "must be at least 1"),
        (
            ["publish", "{good}"],
            {"ACHIEVEIT_API_KEY": "k" * 20, "ACHIEVEIT_CA_BUNDLE": "{good}"},
            2,
            "holds no certificate that can be loaded",
        ),
    ],
)
def test_every_error_is_one_line_with_its_exit_code(
    tmp_path: Path, args: list[str], env: dict[str, str], code: int, says: str
) -> None:
    good = tmp_path / "good.csv"
    good.write_text("External ID,Status,As Of Date\nPX-1.3,On Track,2026-11-01\n")
    argv = [a.format(tmp=tmp_path, good=good) for a in args]
    result = run(*argv, env={name: v.format(tmp=tmp_path, good=good) for name, v in env.items()})

    no_trace(result)
    assert result.returncode == code, result.stdout + result.stderr
    assert says in result.stderr


def test_unreachable_s3_fails_the_plan_in_one_line_and_exits_3(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    env = {
        **sandbox_env(sandbox),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
        "AWS_MAX_ATTEMPTS": "1",
    }

    result = run("export", "PX-2027", "--out", "s3://bucket/prefix", env=env)

    no_trace(result)
    assert result.returncode == 3
    assert "PX-2027: failed" in result.stdout
    assert "Could not connect to the endpoint URL" in result.stdout


def test_an_unreachable_api_says_why_and_exits_3(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("External ID,Status,As Of Date\nPX-1.3,On Track,2026-11-01\n")

    result = run(
        "publish",
        str(good),
        env={
            "ACHIEVEIT_API_KEY": "k",
            "ACHIEVEIT_BASE_URL": "https://127.0.0.1:9",
            "ACHIEVEIT_MAX_ATTEMPTS": "2",
            "ACHIEVEIT_CONNECT_TIMEOUT_SECONDS": "1",
        },
    )

    no_trace(result)
    assert result.returncode == 3
    assert "not finished: 0 rows published so far, 1 not sent yet" in result.stdout
    assert "Connection" in result.stdout  # the reason, not only a status
    assert "retrying" in result.stderr
    assert "reason:" in result.stderr


def test_a_missing_ca_suggests_the_setting(sandbox: SandboxServer, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("External ID,Status,As Of Date\nPX-1.3,On Track,2026-11-01\n")
    env = {**sandbox_env(sandbox), "ACHIEVEIT_CA_BUNDLE": ""}

    result = run("publish", str(good), env=env)

    no_trace(result)
    assert result.returncode == 2
    assert "ACHIEVEIT_CA_BUNDLE" in result.stdout


def test_the_diff_of_any_two_backup_documents_in_either_order(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    out = tmp_path / "plan-backups"
    assert run("export", "PX-2027", "--out", str(out), env=sandbox_env(sandbox)).returncode == 0
    with sandbox.organisation() as organisation:
        organisation.plans["PX-2027"].items[1].status = "Achieved"
    assert run("export", "PX-2027", "--out", str(out), env=sandbox_env(sandbox)).returncode == 0
    first, second = sorted((out / "backups" / "PX-2027").glob("*/*/*/*/manifest.json"))
    latest = out / "backups" / "PX-2027" / "latest.json"

    for before, after in [(first, latest), (latest, first), (first.parent, second)]:
        result = run("diff", str(before), str(after), "--format", "json")
        no_trace(result)
        assert result.returncode == 0
        assert len(json.loads(result.stdout)["changed"]) == 1  # latest.json names the second


# -- the messy files of the issue ----------------------------------------------------------------

MESSY = {
    # European Excel: semicolons and decimal commas (the comma is refused with the number)
    "european.csv": (
        "External ID;Status;Metric Value;As Of Date\nPX-1.1;On Track;12,5;2026-11-01\n"
        "PX-1.3;At Risk;;2026-11-01\n".encode("utf-8-sig"),
        1,
        ["1 row: metricValue '12,5' uses a decimal comma - use a decimal point: write 12.5"],
    ),
    "sep-line.csv": (
        b"sep=;\nExternal ID;Status;As Of Date\nPX-1.3;On Track;2026-11-01\n",
        0,
        ["semicolon-separated (from its 'sep=' line)"],
    ),
    # Excel's "Unicode text": UTF-16 with a BOM, tab-separated
    "unicode-text.csv": (
        "External ID\tStatus\tAs Of Date\r\nPX-1.3\tOn Track\t2026-11-01\r\n".encode("utf-16"),
        0,
        ["tab-separated", "UTF-16 LE with BOM"],
    ),
    "day-first.csv": (
        (
            "External ID,Status,As Of Date\n"
            + "".join(f"PX-1.3,On Track,{d:02d}/11/2026\n" for d in range(13, 31))
        ).encode(),
        1,
        ["18 rows: asOfDate (e.g. '13/11/2026') looks day-first", "Hint: the As Of Date column"],
    ),
    "template.csv": (
        b"External ID,Status,Metric Value,As Of Date,Comment,Item Name\n"
        b"PX-1,,,,,Reduce wait times\nPX-1.3,At Risk,,2026-11-01,,Open the clinic\n",
        0,
        ["1 template row with nothing filled in skipped", "1 row valid"],
    ),
    "trailing-comma.json": (
        b'[\n{"externalId": "PX-1.3", "status": "On Track", "asOfDate": "2026-11-01"},\n]\n',
        1,
        ["failed: the JSON is invalid", "where: line 3"],
    ),
    "windows-1252.csv": (
        "External ID,Status,As Of Date,Comment\nPX-1.3,On Track,2026-11-01,caf\xe9\n".encode(
            "cp1252"
        ),
        1,
        ["cannot be decoded as UTF-8", "where: line 2, byte"],
    ),
    "headerless-elsewhere.csv": (
        b"PX-1.3,On Track,,2026-11-01,\n",
        1,
        ["--kind progress"],
    ),
}


@pytest.mark.parametrize("name", sorted(MESSY))
def test_messy_files_get_a_verdict_a_person_can_act_on(tmp_path: Path, name: str) -> None:
    content, code, says = MESSY[name]
    path = tmp_path / name
    path.write_bytes(content)

    result = run("validate", str(path))

    no_trace(result)
    assert result.returncode == code, result.stdout
    for text in says:
        assert text in result.stdout, result.stdout


def test_a_publish_dry_run_says_what_would_be_sent(tmp_path: Path) -> None:
    path = tmp_path / "kpis.csv.gz"
    rows = "".join(f"PX-{n},On Track,,2026-11-01\n" for n in range(1, 1201))
    path.write_bytes(
        gzip.compress(("External ID,Status,Metric Value,As Of Date\n" + rows).encode())
    )

    result = run("publish", str(path), "--dry-run", env={"ACHIEVEIT_API_KEY": ""})

    no_trace(result)
    assert result.returncode == 0
    assert "would send 1,200 rows in 3 requests of up to 500 rows" in result.stdout
    assert "POST https://api.achieveit.com/api/progressupdates/kpis.csv.gz.part-0001.json" in (
        result.stdout
    )
    assert "dry run: nothing was sent" in result.stdout


def test_status_reads_a_local_layout(sandbox: SandboxServer, tmp_path: Path) -> None:
    out = tmp_path / "plan-backups"
    run("export", "PX-2027", "--out", str(out), env=sandbox_env(sandbox))

    table = run("status", "--backups", str(out))
    as_json = run("status", "--backups", str(out), "--format", "json")

    no_trace(table)
    assert table.returncode == 0
    assert "PX-2027" in table.stdout
    assert "complete" in table.stdout
    [plan] = json.loads(as_json.stdout)["plans"]
    assert plan["items"] == 12
    assert plan["newestRunComplete"] is True
    assert plan["ageHours"] < 1


def test_status_reads_the_buckets(
    aws: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import boto3
    from achieveit_sync.cli import main

    s3 = boto3.client("s3", region_name="us-east-1")
    for bucket in ("drop", "backups"):
        s3.create_bucket(Bucket=bucket)
    report = {
        "summary": {"headline": "2 rows published, 1 row rejected (1 by validation)"},
        "source": {"key": "incoming/progress/kpis.csv"},
        "status": "completed_with_rejections",
        "counts": {"published": 2, "rejected": 1, "ambiguous": 0, "notSent": 0},
        "timings": {"finishedAt": "2026-11-28T08:00:00Z"},
    }
    s3.put_object(
        Bucket="drop", Key="reports/incoming/progress/kpis.csv.json", Body=json.dumps(report)
    )
    manifest_key = "backups/P-1/2026/11/28/20261128T023000.000000Z/manifest.json"
    s3.put_object(
        Bucket="backups", Key=manifest_key, Body=json.dumps({"complete": False, "startedAt": "x"})
    )
    # The last complete backup, the night before: its manifest and data are there, and
    # latest.json names them (status checks that a pointer names data that exists).
    complete = "backups/P-1/2026/11/27/20261127T023000.000000Z/"
    for name in ("manifest.json", "items.json.gz"):
        s3.put_object(Bucket="backups", Key=complete + name, Body=b"{}")
    latest = {
        "planId": "P-1",
        "manifest": complete + "manifest.json",
        "completedAt": "2026-11-27T02:30:00Z",
        "itemCount": 40,
        "contentSha256": "0" * 64,
        "files": {
            "items.json.gz": {"key": complete + "items.json.gz", "sha256": "0" * 64, "bytes": 2}
        },
    }
    s3.put_object(Bucket="backups", Key="backups/P-1/latest.json", Body=json.dumps(latest))

    code = main(["status", "--drop", "s3://drop", "--backups", "s3://backups", "--format", "json"])

    assert code == 0
    document = json.loads(capsys.readouterr().out)
    [file] = document["files"]
    assert file["file"] == "incoming/progress/kpis.csv"
    assert file["report"] == "s3://drop/reports/incoming/progress/kpis.csv.json"
    [plan] = document["plans"]
    assert plan["items"] == 40
    assert plan["newestRunComplete"] is False  # the newest run did not complete
    assert main(["status", "--backups", "s3://backups"]) == 1  # and the table says so
    assert "INCOMPLETE" in capsys.readouterr().out


def test_the_sandbox_lists_its_plans_without_starting() -> None:
    result = run("sandbox", "--list", "--generate-plan", "BIG:1500")

    no_trace(result)
    assert result.returncode == 0
    assert "PX-2027\t" in result.stdout
    assert "BIG\tGenerated plan BIG\t1,500 items" in result.stdout


# -- stopping and resuming -------------------------------------------------------------------


def _publish_held_at_its_second_request(
    sandbox: SandboxServer, tmp_path: Path
) -> tuple[list[str], list[str], dict[str, str], subprocess.Popen[str]]:
    """A publish of three rows, one request each, whose second request is processed and
    then its answer held back for 10 s: a person presses Ctrl-C (or a scheduler sends
    SIGTERM) while it waits."""
    import time

    from achieveit_sandbox.faults import Fault, FaultPlan

    rows = ["PX-1.1", "PX-1.2", "PX-1.3"]
    path = tmp_path / "kpis.csv"
    path.write_text(
        "External ID,Status,Metric Value,As Of Date\n"
        + "".join(f"{external_id},On Track,1,2026-11-01\n" for external_id in rows)
    )
    env = {**os.environ, **sandbox_env(sandbox), "ACHIEVEIT_SYNC_STATE_DIR": str(tmp_path / "s")}
    env.pop("ACHIEVEIT_SYNC_DEBUG", None)
    sandbox.set_faults(FaultPlan(on_requests={2: Fault.SLOW}, slow_seconds=10))
    command = [CLI, "publish", "--batch-size", "1", str(path)]
    running = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while len(sandbox.recorded_requests()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for the request to arrive, not measuring time
    return rows, command, env, running


@pytest.mark.parametrize(("signal_number", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_publish_asked_to_stop_finishes_the_request_in_flight_and_reports(
    sandbox: SandboxServer, tmp_path: Path, signal_number: int, code: int
) -> None:
    from achieveit_sandbox.faults import FaultPlan

    rows, command, env, running = _publish_held_at_its_second_request(sandbox, tmp_path)
    try:
        running.send_signal(signal_number)
        out, err = running.communicate(timeout=60)
    finally:
        running.kill()

    assert running.returncode == code, err
    assert "stopping after the request in flight (Ctrl-C again to stop at once)" in err
    assert "not finished: 2 rows published so far, 1 not sent yet" in out  # a report, at once
    assert "may have been applied" not in out  # the answer was waited for
    assert "Traceback" not in err + out

    sandbox.set_faults(FaultPlan())
    again = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert again.returncode == 0, again.stdout + again.stderr
    assert [update.external_id for update in sandbox.stored_updates()] == rows  # each once


@pytest.mark.parametrize(
    ("signal_number", "code", "said"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
)
def test_a_publish_stopped_at_once_says_how_to_resume_and_resumes(
    sandbox: SandboxServer, tmp_path: Path, signal_number: int, code: int, said: str
) -> None:
    from achieveit_sandbox.faults import FaultPlan

    rows, command, env, running = _publish_held_at_its_second_request(sandbox, tmp_path)
    try:
        running.send_signal(signal_number)
        assert running.stderr is not None
        while "stopping after the request in flight" not in running.stderr.readline():
            pass  # the first signal was handled; the second stops at once
        running.send_signal(signal_number)
        out, err = running.communicate(timeout=60)
    finally:
        running.kill()

    assert running.returncode == code, err
    assert f"achieveit-sync: {said}; run the same command again to resume" in err
    assert "Traceback" not in err + out

    sandbox.set_faults(FaultPlan())
    check_these = tmp_path / "check-these.csv"
    again = subprocess.run(
        [*command, "--ambiguous-out", str(check_these)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert again.returncode == 1, again.stdout + again.stderr  # one row may have been applied
    assert "1 row may have been applied" in again.stdout
    assert (
        "1 row sent in kpis.csv.part-0002.json (interrupted: no answer was recorded): "
        "line 3 (PX-1.2)" in again.stdout
    )
    stored = [update.external_id for update in sandbox.stored_updates()]
    assert stored == rows  # each once: the held-back row was not sent again
    listed = check_these.read_text().splitlines()
    assert listed[0] == "External ID,Status,Metric Value,As Of Date,Error"
    assert [line.split(",")[0] for line in listed[1:]] == ["PX-1.2"]

    # That list, or the file edited, published: the row in flight is not sent again.
    edited = tmp_path / "kpis.csv"
    edited.write_text(edited.read_text() + "PX-2.1,On Track,1,2026-11-01\n")
    for follow_up in (check_these, edited):
        result = subprocess.run(
            [CLI, "publish", str(follow_up)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert "already sent by an earlier run" in result.stdout, result.stdout + result.stderr
    stored = [update.external_id for update in sandbox.stored_updates()]
    assert stored == [*rows, "PX-2.1"]
