"""How the command line shows the package's log records: one line, unless a bug report
needs the trace (ACHIEVEIT_SYNC_DEBUG), and never the key."""

from __future__ import annotations

import logging
import sys

import pytest
from achieveit_sync.cli import OneLineFormatter

from tests.conftest import RECOGNISABLE_KEY


def _fail() -> None:
    raise RuntimeError(f"boom near {RECOGNISABLE_KEY}")


def _record_of_a_failure() -> logging.LogRecord:
    try:
        _fail()
    except RuntimeError:
        exc_info = sys.exc_info()
    return logging.LogRecord(
        "achieveit_sync.backup.run",
        logging.ERROR,
        __file__,
        1,
        "plan backup failed unexpectedly",
        None,
        exc_info,
    )


@pytest.fixture(autouse=True)
def _the_key_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACHIEVEIT_API_KEY", RECOGNISABLE_KEY)


def test_a_failure_is_one_line_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACHIEVEIT_SYNC_DEBUG", raising=False)

    text = OneLineFormatter().format(_record_of_a_failure())

    assert text == "achieveit-sync: plan backup failed unexpectedly"


def test_debug_shows_where_a_failure_came_from_without_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACHIEVEIT_SYNC_DEBUG", "1")

    text = OneLineFormatter().format(_record_of_a_failure())

    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: boom near" in text
    assert RECOGNISABLE_KEY not in text


def test_debug_shows_a_trace_a_record_carries_as_a_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACHIEVEIT_SYNC_DEBUG", "1")
    record = logging.LogRecord(
        "achieveit_sync.ingest.pipeline", logging.ERROR, __file__, 1, "unexpected", None, None
    )
    record.traceback = "Traceback (most recent call last):\n  File x\nValueError: y"

    assert OneLineFormatter().format(record).endswith("ValueError: y")


class _CtrlCWhileImporting:
    """A meta-path finder that raises KeyboardInterrupt when the command module is imported,
    as Ctrl-C does when pressed while boto3 and Powertools are still loading."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "achieveit_sync.cli":
            raise KeyboardInterrupt


def test_ctrl_c_while_the_command_is_still_importing_ends_quietly_with_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from achieveit_sync.console import run

    monkeypatch.delitem(sys.modules, "achieveit_sync.cli")
    monkeypatch.setattr(sys, "meta_path", [_CtrlCWhileImporting(), *sys.meta_path])

    with pytest.raises(SystemExit) as stopped:
        run()

    assert stopped.value.code == 130
    err = capsys.readouterr().err
    assert err == "\nachieveit-sync: interrupted before anything was done\n"
    assert "Traceback" not in err
