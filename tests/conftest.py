"""Fixtures shared by every tier."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from achieveit_sandbox.lambda_local import LocalLambdaContext

# A key shaped like a real one and easy to grep for: every leak test searches for it.
RECOGNISABLE_KEY = "LEAKCHECK-4f1c9a7e2b6d-do-not-log-me"


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record at DEBUG from every logger (urllib3's included)."""
    caplog.set_level(logging.DEBUG)
    yield caplog


def all_log_text(caplog: pytest.LogCaptureFixture, *, exclude: tuple[str, ...] = ()) -> str:
    """Formatted messages, extras and tracebacks of every captured record (but those of the
    ``exclude``d logger names)."""
    handler_format = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = []
    for record in caplog.records:
        if record.name.startswith(exclude):
            continue
        lines.append(handler_format.format(record))
        lines.append(repr(record.__dict__))
    return "\n".join(lines)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's in-process AWS with fake credentials: nothing can reach real AWS."""
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


class FakeLambdaContext(LocalLambdaContext):
    """A Lambda context whose clock only moves when looked at (``ms_per_call`` a look)."""

    def __init__(self, remaining_ms: int = 900_000, ms_per_call: int = 0) -> None:
        super().__init__(
            remaining_ms,
            ms_per_call=ms_per_call,
            function_name="achieveit-sync-test",
            request_id="test-request-0001",
        )


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


EVENTS_DIR = __import__("pathlib").Path(__file__).resolve().parent.parent / "events"


def load_event(name: str) -> dict[str, object]:
    """A sample Lambda event from events/ (the same files the README points to)."""
    import json

    return json.loads((EVENTS_DIR / name).read_text())  # type: ignore[no-any-return]


def load_handler(function: str) -> Any:
    """Import functions/<function>/app.py afresh, as the Lambda runtime would."""
    import importlib.util

    path = EVENTS_DIR.parent / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"{function}_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _private_cli_state(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`publish` records progress on disk: each test keeps its own, never the user's."""
    monkeypatch.setenv("ACHIEVEIT_SYNC_STATE_DIR", str(tmp_path / "achieveit-sync-state"))


def plan_items(client: Any, plan_id: str, **paging: Any) -> Iterator[dict[str, Any]]:
    """Every item of a plan through the backup's paging (``backup.paging``), page after page."""
    from achieveit_sync.backup.paging import iter_plan_pages

    for page in iter_plan_pages(client, plan_id, **paging):
        yield from page.items
