"""`achieveit-sync export --out`, `diff` and `status`, run as a user runs them (a separate
process), on folders someone else prepared or changed.

README: "output never leaves --out"; exit codes 0/1/2/3, "2 for usage or configuration
(arguments, paths, ...)"; "No command prints a stack trace: each error is one line saying
what to do"; restore: items.json.gz is "checked against the SHA-256 in the manifest";
status shows "each plan's backups (newest complete, its age and items ...)".
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import resource
import signal
import zlib
from pathlib import Path
from typing import Any

import pytest

from .hostile import cli, cli_env, item, no_trace, paged

PLANS: dict[str, list[Any]] = {}


@pytest.fixture
def env(hostile: Any) -> dict[str, str]:
    PLANS.clear()
    PLANS.update(
        {"PX": [item(n, "PX") for n in range(1, 6)], "QY": [item(n, "QY") for n in range(1, 3)]}
    )
    server = hostile(paged(PLANS))
    return cli_env(server.base_url, server.ca_file)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


# -- export --out ------------------------------------------------------------------------------


@pytest.mark.parametrize("link", ["backups/PX", "backups"])
def test_a_symlink_inside_out_does_not_take_the_backup_elsewhere(
    env: dict[str, str], tmp_path: Path, link: str
) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(elsewhere, out / link)

    result = cli("export", "PX", "--out", str(out), env=env)

    no_trace(result)
    assert files_under(elsewhere) == set(), result.stdout


@pytest.mark.parametrize("link", ["templates/PX/progress-updates.csv", "backups/PX/latest.json"])
def test_a_symlinked_file_inside_out_is_replaced_not_written_through(
    env: dict[str, str], tmp_path: Path, link: str
) -> None:
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / link).parent.mkdir(parents=True)
    os.symlink(victim, out / link)

    result = cli("export", "PX", "--out", str(out), env=env)

    no_trace(result)
    assert result.returncode == 0
    assert victim.read_text() == "precious\n"
    assert not (out / link).is_symlink()


@pytest.mark.parametrize("target", ["a-file", "/dev/null"])
def test_an_out_that_is_not_a_folder_is_a_usage_error(
    env: dict[str, str], tmp_path: Path, target: str
) -> None:
    out = tmp_path / "a-file" if target == "a-file" else Path(target)
    if target == "a-file":
        out.write_text("x")

    result = cli("export", "PX", "--out", str(out), env=env)

    no_trace(result)
    assert result.returncode == 2, result.stdout
    assert "function's log" not in result.stdout + result.stderr


@pytest.mark.parametrize("target", ["S3://bucket/x", "s3:/bucket/x", ""])
def test_an_out_that_looks_like_s3_or_is_empty_is_not_a_local_folder(
    env: dict[str, str], tmp_path: Path, target: str
) -> None:
    work = tmp_path / "cwd"
    work.mkdir()

    result = cli("export", "PX", "--out", target, env=env, cwd=work)

    no_trace(result)
    assert files_under(work) == set(), result.stdout
    assert result.returncode == 2


def fill_the_disk_at(limit: int) -> Any:
    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_files


def test_a_full_disk_leaves_latest_on_the_previous_backup(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert cli("export", "PX", "--out", str(out), env=env).returncode == 0
    before = (out / "backups/PX/latest.json").read_text()
    PLANS["PX"][0]["name"] = os.urandom(10000).hex()  # items.json.gz now over the limit

    result = cli("export", "PX", "--out", str(out), env=env, preexec_fn=fill_the_disk_at(6000))

    no_trace(result)
    assert result.returncode == 3
    assert (out / "backups/PX/latest.json").read_text() == before
    for described in json.loads(before)["files"].values():
        body = (out / described["key"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == described["sha256"]


def test_a_full_disk_says_so_and_leaves_no_partial_file(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert cli("export", "PX", "--out", str(out), env=env).returncode == 0
    PLANS["PX"][0]["name"] = os.urandom(10000).hex()

    result = cli("export", "PX", "--out", str(out), env=env, preexec_fn=fill_the_disk_at(6000))

    assert "function's log" not in result.stdout + result.stderr
    assert not [p for p in out.rglob("*") if p.name.endswith(".partial")]


# -- diff --------------------------------------------------------------------------------------


@pytest.fixture
def two_backups(env: dict[str, str], tmp_path: Path) -> tuple[Path, Path, Path]:
    out = tmp_path / "out"
    assert cli("export", "PX", "QY", "--out", str(out), env=env).returncode == 0
    PLANS["PX"][1]["statusName"] = "Achieved"
    assert cli("export", "PX", "--out", str(out), env=env).returncode == 0
    first, second = sorted((out / "backups" / "PX").glob("*/*/*/*/manifest.json"))
    return out, first, second


def rewrite_items(out: Path, manifest_path: Path, body: bytes, *, fix_checksum: bool) -> None:
    manifest = json.loads(manifest_path.read_text())
    described = manifest["files"]["items.json.gz"]
    (out / described["key"]).write_bytes(body)
    if fix_checksum:
        described["sha256"], described["bytes"] = hashlib.sha256(body).hexdigest(), len(body)
        manifest_path.write_text(json.dumps(manifest))


def test_diff_refuses_or_flags_a_backup_whose_data_was_altered(
    two_backups: tuple[Path, Path, Path],
) -> None:
    out, first, second = two_backups
    items = [item(n, "PX") for n in range(1, 6)]
    items[2]["statusName"] = "Canceled"  # never said by AchieveIt
    rewrite_items(out, second, gzip.compress(json.dumps(items).encode()), fix_checksum=False)

    result = cli("diff", str(first), str(second))

    no_trace(result)
    assert result.returncode != 0 or "SHA-256" in result.stdout + result.stderr, result.stdout


@pytest.mark.parametrize("how", ["absolute", "climbing"])
def test_diff_reads_only_inside_the_backup_folder(
    two_backups: tuple[Path, Path, Path], tmp_path: Path, how: str
) -> None:
    _out, first, second = two_backups
    secret = tmp_path / "private.json.gz"
    secret.write_bytes(gzip.compress(json.dumps([{"id": "s", "name": "TOP SECRET"}]).encode()))
    manifest = json.loads(second.read_text())
    manifest["files"]["items.json.gz"]["key"] = (
        str(secret) if how == "absolute" else "../" * 12 + str(secret).lstrip("/")
    )
    second.write_text(json.dumps(manifest))

    result = cli("diff", str(first), str(second))

    no_trace(result)
    assert "TOP SECRET" not in result.stdout


@pytest.mark.parametrize("items", [{"id": "x"}, [1, 2]], ids=["object", "numbers"])
def test_diff_of_data_that_is_not_items_is_an_error(
    two_backups: tuple[Path, Path, Path], items: Any
) -> None:
    out, first, second = two_backups
    rewrite_items(out, second, gzip.compress(json.dumps(items).encode()), fix_checksum=True)

    result = cli("diff", str(first), str(second))

    no_trace(result)
    assert result.returncode in (1, 2), result.stdout


@pytest.mark.parametrize("shape", ["bomb", "deep"])
def test_diff_of_a_hostile_items_file_fails_in_bounded_memory_with_a_reason(
    two_backups: tuple[Path, Path, Path], shape: str
) -> None:
    out, first, second = two_backups
    if shape == "bomb":
        deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
        block = b" " * (1 << 20)
        body = deflate.compress(b"[") + b"".join(deflate.compress(block) for _ in range(3000))
        body += deflate.compress(b"]") + deflate.flush()
    else:
        body = gzip.compress(b"[" * 100_000 + b"]" * 100_000)
    rewrite_items(out, second, body, fix_checksum=True)

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))

    result = cli("diff", str(first), str(second), preexec_fn=limit_memory)

    no_trace(result)
    assert "unexpected error" not in result.stderr, result.stderr
    assert result.returncode in (1, 2)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"[]",
        b"\x00\xff\xfe",
        b'"manifest"',
        b'{"files": NaN}',
        b'{"x": 1' + b"0" * 5000 + b"}",
        gzip.compress(b"[]"),
        b'{"planId": "PX", "files": ["a"]}',
    ],
    ids=["empty", "list", "binary", "string", "nan", "long-int", "gzip", "files-list"],
)
def test_diff_of_a_file_that_is_no_manifest_is_one_line_and_exit_2(
    two_backups: tuple[Path, Path, Path], tmp_path: Path, content: bytes
) -> None:
    _out, first, _second = two_backups
    odd = tmp_path / "odd.json"
    odd.write_bytes(content)

    result = cli("diff", str(first), str(odd))

    no_trace(result)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_diff_of_a_fifo_or_dev_null_does_not_hang(
    two_backups: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _out, first, _second = two_backups
    os.mkfifo(tmp_path / "fifo")
    for other in (tmp_path / "fifo", Path("/dev/null")):
        result = cli("diff", str(first), str(other), timeout=20)
        no_trace(result)
        assert result.returncode == 2


# -- status ------------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["missing", "file"])
def test_status_of_a_path_that_is_no_folder_is_a_usage_error(tmp_path: Path, what: str) -> None:
    path = tmp_path / "nothing"
    if what == "file":
        path.write_text("x")

    result = cli("status", "--backups", str(path))

    no_trace(result)
    assert result.returncode == 2, result.stdout


def test_status_notices_that_latest_names_missing_data(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli("export", "PX", "--out", str(out), env=env).returncode == 0
    latest = json.loads((out / "backups/PX/latest.json").read_text())
    for described in latest["files"].values():
        (out / described["key"]).unlink()
    (out / latest["manifest"]).unlink()

    result = cli("status", "--backups", str(out))

    no_trace(result)
    assert result.returncode == 1, result.stdout


def test_status_of_one_damaged_latest_still_shows_the_other_plans(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert cli("export", "PX", "QY", "--out", str(out), env=env).returncode == 0
    (out / "backups/QY/latest.json").write_bytes(b"[" * 100_000)

    result = cli("status", "--backups", str(out))

    no_trace(result)
    assert "PX" in result.stdout
    assert result.returncode == 1


def test_status_prints_no_control_characters_from_folder_names(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert cli("export", "PX", "--out", str(out), env=env).returncode == 0
    evil = out / "backups" / "\x1b[2J\x1b[31mEVIL\x1b]0;pwned\x07"
    evil.mkdir()
    (evil / "latest.json").write_text(
        json.dumps(
            {
                "planId": "x",
                "manifest": "/etc/passwd",
                "completedAt": "2099-01-01T00:00:00Z",
                "itemCount": -5,
                "files": {},
            }
        )
    )

    result = cli("status", "--backups", str(out))

    no_trace(result)
    assert "\x1b" not in result.stdout
    assert "\x07" not in result.stdout


def test_status_of_thousands_of_runs_is_quick(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli("export", "PX", "--out", str(out), env=env).returncode == 0
    [manifest] = (out / "backups" / "PX").glob("*/*/*/*/manifest.json")
    for n in range(3000):
        run = manifest.parent.parent / f"20260101T{n:06d}.000000Z"
        run.mkdir()
        (run / "manifest.json").write_bytes(manifest.read_bytes())

    result = cli("status", "--backups", str(out), timeout=30)

    no_trace(result)
    assert result.returncode == 0
    assert "PX" in result.stdout
