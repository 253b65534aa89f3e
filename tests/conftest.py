"""Fixtures shared by every tier."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

# A key shaped like a real one and easy to grep for: every leak test searches for it.
RECOGNISABLE_KEY = "LEAKCHECK-4f1c9a7e2b6d-do-not-log-me"


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record at DEBUG from every logger (urllib3's included)."""
    caplog.set_level(logging.DEBUG)
    yield caplog


def all_log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Formatted messages, extras and tracebacks of every captured record."""
    handler_format = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = []
    for record in caplog.records:
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
