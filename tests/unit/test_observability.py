"""Tracing is opt-in: the X-Ray SDK stays out of the cold path unless it is switched on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from achieveit_sync.observability import enable_tracing_if_configured

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("handler", ["functions/ingest/app.py", "functions/export/app.py"])
def test_importing_a_handler_imports_neither_xray_nor_powertools_tracer(handler: str) -> None:
    probe = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(ROOT / handler)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('aws_xray_sdk', "
        "'aws_lambda_powertools.tracing'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )

    assert result.stdout.strip() == "[]"


def test_tracing_is_off_unless_switched_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACHIEVEIT_TRACING", raising=False)

    assert enable_tracing_if_configured("test") is False


def test_switching_tracing_on_patches_through_the_xray_sdk() -> None:
    probe = (
        "import sys\n"
        "from achieveit_sync.observability import enable_tracing_if_configured\n"
        "print(enable_tracing_if_configured('probe'), 'aws_xray_sdk' in sys.modules)\n"
    )
    env = {"ACHIEVEIT_TRACING": "true", "AWS_XRAY_SDK_ENABLED": "false", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )

    assert result.stdout.split() == ["True", "True"]
