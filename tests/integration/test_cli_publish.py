"""`achieveit-sync publish` against the sandbox, configured by environment variables."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from achieveit_sandbox import SandboxServer
from achieveit_sync.cli import main

from tests.conftest import RECOGNISABLE_KEY


def test_publish_sends_the_valid_rows_and_reports_the_rest(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kpis.csv"
    path.write_text(
        "External ID,Status,As Of Date\nPX-1.3,At Risk,2026-11-01\n"
        "PX-2.3,Achieved,2026-11-01\nPX-2.1,Sideways,2026-11-01\n"
    )

    code = main(["publish", "--batch-size", "1", "--body-format", "csv", str(path)])

    assert code == 1  # one row was rejected
    out = capsys.readouterr().out
    assert "2 rows published, 1 row rejected (1 by validation)" in out
    assert "1 row: status 'Sideways' is not an AchieveIt status" in out
    assert "(line 4)" in out
    assert [u.external_id for u in configured.stored_updates()] == ["PX-1.3", "PX-2.3"]
    assert {r.content_type for r in configured.recorded_requests()} == {"text/csv; charset=utf-8"}
    assert RECOGNISABLE_KEY not in out


def test_a_clean_publish_exits_0(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"externalId": "PX-3.1", "metricValue": 0.5, "asOfDate": "2026-11-01"}\n')

    assert main(["publish", "--kind", "metric", str(path)]) == 0
    assert configured.stored_updates()[0].metric_value == 0.5


# -- what publish keeps on disk: resuming, and never sending a row twice --------------------


def _rows(*ids: str) -> str:
    return "External ID,Status,Metric Value,As Of Date\n" + "".join(
        f"{external_id},On Track,1,2026-11-01\n" for external_id in ids
    )


def test_an_outage_stops_publish_and_the_same_command_resumes_without_sending_twice(
    configured: SandboxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from achieveit_sandbox.faults import Fault, FaultPlan

    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1", "PX-1.2", "PX-1.3", "PX-2.1"))
    monkeypatch.setenv("ACHIEVEIT_MAX_ATTEMPTS", "2")
    # Requests 3 and 4 (the third part's two attempts) fail: AchieveIt is down.
    configured.set_faults(
        FaultPlan(on_requests={3: Fault.UNAVAILABLE, 4: Fault.UNAVAILABLE}, retry_after="0")
    )

    first = main(["publish", "--batch-size", "1", str(path)])
    first_out = capsys.readouterr().out

    assert first == 3  # AchieveIt failed
    assert "not finished: 2 rows published so far" in first_out
    assert len(configured.stored_updates()) == 2

    configured.set_faults(FaultPlan())
    second = main(["publish", "--batch-size", "1", str(path)])

    assert second == 0
    assert "4 rows published, none rejected" in capsys.readouterr().out
    stored = [update.external_id for update in configured.stored_updates()]
    assert stored == ["PX-1.1", "PX-1.2", "PX-1.3", "PX-2.1"]  # each once

    third = main(["publish", "--batch-size", "1", str(path)])

    assert third == 0
    assert "nothing sent now: 4 rows already sent by an earlier run" in capsys.readouterr().out
    assert len(configured.stored_updates()) == 4


def test_an_edited_file_sends_only_the_rows_it_changed_or_added(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1", "PX-1.2"))
    assert main(["publish", str(path)]) == 0
    capsys.readouterr()

    # Fixed in place: one row added, one status changed, one row as it was.
    path.write_text(
        _rows("PX-1.1", "PX-1.3").replace("PX-1.3,On Track", "PX-1.3,At Risk")
        + "PX-1.2,Achieved,1,2026-11-01\n"
    )
    assert main(["publish", str(path)]) == 0

    out = capsys.readouterr().out
    assert "2 rows published, 1 row already sent by an earlier run (not sent again" in out
    sent = [(u.external_id, u.status) for u in configured.stored_updates()]
    assert sent[2:] == [("PX-1.3", "At Risk"), ("PX-1.2", "Achieved")]  # PX-1.1 not again

    copy = tmp_path / "copy-of-kpis.csv"
    copy.write_bytes(path.read_bytes())
    assert main(["publish", str(copy)]) == 0  # the same content: its progress is found
    assert "nothing sent now" in capsys.readouterr().out
    assert len(configured.stored_updates()) == 4
    week2 = tmp_path / "week2.csv"  # other content, every row sent already
    week2.write_text(_rows("PX-1.1"))
    assert main(["publish", "--format", "json", str(week2)]) == 0
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert (counts["published"], counts["sentEarlier"], counts["notSent"]) == (0, 1, 0)
    assert len(configured.stored_updates()) == 4

    assert main(["publish", "--restart", str(copy)]) == 0  # asked: every row again
    assert len(configured.stored_updates()) == 7


def test_next_weeks_file_repeating_rows_sends_only_the_new_ones_and_survives_a_key_rotation(
    configured: SandboxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    week1 = tmp_path / "week1.csv"
    week1.write_text(_rows("PX-1.1", "PX-1.2"))
    assert main(["publish", str(week1)]) == 0
    # The URL written another way, and a new key: the same server, the same rows sent.
    monkeypatch.setenv("ACHIEVEIT_BASE_URL", configured.base_url.replace("https", "HTTPS") + "/")
    configured.service_account.api_key = "ROTATED-KEY-0123456789abcdef"
    monkeypatch.setenv("ACHIEVEIT_API_KEY", "ROTATED-KEY-0123456789abcdef")
    week2 = tmp_path / "week2.csv"
    week2.write_text(week1.read_text() + "PX-1.3,On Track,1,2026-11-01\n")
    capsys.readouterr()

    assert main(["publish", str(week2)]) == 0

    assert "1 row published, 2 rows already sent by an earlier run" in capsys.readouterr().out
    assert [u.external_id for u in configured.stored_updates()] == ["PX-1.1", "PX-1.2", "PX-1.3"]


def test_a_row_achieveit_refused_is_sent_again_once_fixed_elsewhere(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1", "NOT-IN-THE-PLAN"))
    assert main(["publish", "--batch-size", "1", str(path)]) == 1  # one refused by AchieveIt
    capsys.readouterr()

    again = tmp_path / "again.csv"  # say the item was created meanwhile: the row goes again
    again.write_text(_rows("NOT-IN-THE-PLAN", "PX-1.1"))
    main(["publish", "--format", "json", str(again)])

    counts = json.loads(capsys.readouterr().out)["counts"]
    assert (counts["sentEarlier"], counts["rejectedByApi"]) == (1, 1)  # sent, refused again
    assert [u.external_id for u in configured.stored_updates()] == ["PX-1.1"]


def test_a_state_folder_that_cannot_be_written_stops_publish_before_sending(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1"))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be")

    code = main(["publish", "--state-dir", str(blocker / "state"), str(path)])

    assert code == 2
    assert "--state-dir" in capsys.readouterr().err
    assert configured.stored_updates() == []


# -- --rejected-out and --ambiguous-out: refused before sending, or a warning after ---------


def test_a_rows_file_under_a_file_is_refused_before_anything_is_sent(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1") + "PX-1.2,Sideways,1,2026-11-01\n")

    code = main(["publish", "--rejected-out", str(path / "rejected.csv"), str(path)])

    assert code == 2
    assert f"{path} is a file, not a folder" in capsys.readouterr().err
    assert configured.stored_updates() == []


def test_a_rows_folder_that_cannot_be_written_is_refused_before_anything_is_sent(
    configured: SandboxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tempfile

    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1") + "PX-1.2,Sideways,1,2026-11-01\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_temporary_file = tempfile.NamedTemporaryFile

    def read_only_folder(*args: Any, **kwargs: Any) -> Any:  # tests run as root: no chmod
        if Path(kwargs.get("dir") or ".") == locked:
            raise PermissionError(13, "Permission denied")
        return real_temporary_file(*args, **kwargs)

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only_folder)

    code = main(["publish", "--ambiguous-out", str(locked / "maybe.csv"), str(path)])

    assert code == 2
    err = capsys.readouterr().err
    assert f"the folder {locked} cannot be written to (Permission denied)" in err
    assert "Nothing was sent" in err
    assert configured.stored_updates() == []


def test_a_rows_file_that_fails_after_publishing_is_a_warning_beside_the_report(
    configured: SandboxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1") + "PX-1.2,Sideways,1,2026-11-01\n")
    target = tmp_path / "rejected.csv"
    real_replace = Path.replace

    def disk_full(self: Path, to: Path) -> Path:  # the folder fills up while publishing
        if Path(to) == target:
            raise OSError(28, "No space left on device")
        return real_replace(self, to)

    monkeypatch.setattr(Path, "replace", disk_full)

    code = main(["publish", "--rejected-out", str(target), str(path)])

    assert code == 2  # not 1: a script must see that the file it asked for is missing
    captured = capsys.readouterr()
    assert "the rows could not be written (No space left on device)" in captured.err
    out = captured.out
    assert "1 row published, 1 row rejected" in out  # what was sent is still said
    assert "the rows could not be written (No space left on device)" in out
    assert "rejected rows written to" not in out
    assert "nothing else was affected" not in out


def test_rows_files_get_the_permissions_of_any_new_file(
    configured: SandboxServer, tmp_path: Path
) -> None:
    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1") + "PX-1.2,Sideways,1,2026-11-01\n")
    target = tmp_path / "rejected.csv"
    umask = os.umask(0o022)
    try:
        main(["publish", "--rejected-out", str(target), str(path)])
    finally:
        os.umask(umask)

    assert target.stat().st_mode & 0o777 == 0o644  # not the 0600 of a temporary file


# -- the key from Secrets Manager: what the user can fix, and what a later run may fix -----


@pytest.fixture
def key_in_a_secret(configured: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI told to read its key from a secret (no moto: the AWS calls really go out)."""
    monkeypatch.delenv("ACHIEVEIT_API_KEY")
    monkeypatch.setenv(
        "ACHIEVEIT_API_KEY_SECRET",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:achieveit/api-key-AbCdEf",
    )
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in (
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_secrets_manager_out_of_reach_is_exit_3_and_nothing_is_sent(
    configured: SandboxServer,
    key_in_a_secret: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:9")  # discard
    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1"))

    code = main(["publish", str(path)])

    assert code == 3  # for a later run, not a setting to fix
    out = capsys.readouterr().out
    assert "Secrets Manager cannot be reached" in out
    assert "not finished: 0 rows published so far, 1 not sent yet" in out
    assert configured.stored_updates() == []


def test_no_aws_credentials_for_the_secret_is_exit_2_saying_what_to_set(
    configured: SandboxServer,
    key_in_a_secret: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setattr("boto3.DEFAULT_SESSION", None)  # as in a new process: no cached keys
    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1"))

    code = main(["publish", str(path)])

    assert code == 2
    out = capsys.readouterr().out
    assert "no usable AWS credentials" in out
    assert "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in out
    assert configured.stored_updates() == []


# -- what outside eyes found in the ledger -------------------------------------------------


def test_a_correction_undone_is_sent_again(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.csv"
    for value in ("0.7", "0.9", "0.7"):  # a typo, then its fix
        path.write_text(
            f"External ID,Status,Metric Value,As Of Date\nPX-3.3,On Track,{value},2026-12-14\n"
        )
        assert main(["publish", str(path)]) == 0

    assert [u.metric_value for u in configured.stored_updates()] == [0.7, 0.9, 0.7]
    assert "already sent" not in capsys.readouterr().out


def test_a_second_run_to_the_same_server_waits_its_turn(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from achieveit_sync.ingest.sent_rows import SentLedger
    from achieveit_sync.settings import CliSettings

    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1"))
    state = CliSettings.from_env().state_dir

    with SentLedger.open(state / "sent", configured.base_url):  # a run in another terminal
        code = main(["publish", str(path)])

    assert code == 2
    assert "another publish to https://127.0.0.1:" in capsys.readouterr().err
    assert configured.stored_updates() == []
    assert main(["publish", str(path)]) == 0  # once it is done


def test_the_same_file_for_rejected_and_ambiguous_rows_is_refused(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1"))
    same = tmp_path / "same.csv"

    code = main(["publish", "--rejected-out", str(same), "--ambiguous-out", str(same), str(path)])

    assert code == 2
    assert "both name" in capsys.readouterr().err
    assert configured.stored_updates() == []


def test_a_dry_run_leaves_out_what_was_sent_earlier_and_json_says_what_this_run_sent(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    week1 = tmp_path / "week1.csv"
    week1.write_text(_rows("PX-1.1", "PX-1.2"))
    assert main(["publish", str(week1)]) == 0
    week2 = tmp_path / "week2.csv"
    week2.write_text(_rows("PX-1.1", "PX-1.2", "PX-1.3"))
    capsys.readouterr()

    assert main(["publish", "--dry-run", str(week2)]) == 0
    out = capsys.readouterr().out
    assert "would not send 2 rows already sent by an earlier run (--restart sends them)" in out
    assert "would send 1 row in 1 request" in out

    copy = tmp_path / "copy.csv"
    copy.write_bytes(week1.read_bytes())
    assert main(["publish", "--format", "json", str(copy)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["publishedThisRun"], report["counts"]["sentEarlier"]) == (0, 2)


@pytest.mark.parametrize(
    ("base_url", "said"),
    [("http://x", "must be an https:// URL"), ("https://api.achieveit.com/api", "without /api")],
)
def test_a_dry_run_with_a_base_url_that_cannot_work_is_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    base_url: str,
    said: str,
) -> None:
    monkeypatch.setenv("ACHIEVEIT_BASE_URL", base_url)
    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1"))

    assert main(["publish", "--dry-run", str(path)]) == 2
    assert said in capsys.readouterr().err


def test_a_state_folder_that_is_a_file_is_named_as_such(
    configured: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1"))
    not_a_folder = tmp_path / "state"
    not_a_folder.write_text("")

    assert main(["publish", "--state-dir", str(not_a_folder), str(path)]) == 2
    assert f"{not_a_folder} is a file, not a folder" in capsys.readouterr().err


def test_a_disk_that_fills_after_an_answer_still_counts_the_row_as_published(
    configured: SandboxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from achieveit_sync.ingest.checkpoints import FileCheckpoints

    path = tmp_path / "kpis.csv"
    path.write_text(_rows("PX-1.1", "PX-1.2", "PX-1.3"))
    real_save = FileCheckpoints.save
    saves = []

    def fills_up(self: FileCheckpoints, file_id: str, record: Any) -> None:
        saves.append(record.part)
        if len(saves) == 5:  # part 2: in flight (4), then its answer (5) cannot be saved
            raise OSError(28, "No space left on device")
        real_save(self, file_id, record)

    monkeypatch.setattr(FileCheckpoints, "save", fills_up)

    code = main(["publish", "--batch-size", "1", "--format", "json", str(path)])

    report = json.loads(capsys.readouterr().out)
    assert code == 3
    assert len(configured.stored_updates()) == 2  # AchieveIt took part 2 before the disk filled
    assert (report["counts"]["published"], report["counts"]["notSent"]) == (2, 1)


def test_the_json_report_names_the_rows_files_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by outside eyes: ``outputs`` was {} in the JSON report even when
    --rejected-out had written its file."""
    path = tmp_path / "updates.csv"
    path.write_text(
        "External ID,Status,As Of Date\nPX-1,On Track,2026-11-01\nPX-2,Nope,2026-11-01\n"
    )
    target = tmp_path / "rejected.csv"

    code = main(["validate", "--format", "json", "--rejected-out", str(target), str(path)])

    assert code == 1
    report = json.loads(capsys.readouterr().out)
    assert report["outputs"] == {"rejected": str(target)}
    assert target.exists()


def test_a_rows_file_named_gz_is_gzip_and_reads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by outside eyes (round 2): --rejected-out rejected.csv.gz wrote plain text,
    which the tool then refused ("named .gz but is not gzip-compressed")."""
    import gzip

    path = tmp_path / "updates.csv"
    path.write_text(
        "External ID,Status,As Of Date\nPX-1,On Track,2026-11-01\nPX-2,Nope,2026-11-01\n"
    )
    target = tmp_path / "rejected.csv.gz"

    assert main(["validate", "--rejected-out", str(target), str(path)]) == 1
    assert b"PX-2,Nope" in gzip.decompress(target.read_bytes())
    capsys.readouterr()
    assert main(["validate", "--format", "json", str(target)]) == 1
    assert json.loads(capsys.readouterr().out)["counts"]["rejected"] == 1
