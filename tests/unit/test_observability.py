"""Tracing is opt-in: the X-Ray SDK stays out of the cold path unless it is switched on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.parametrize(("tracing", "xray_loaded"), [("false", "False"), ("true", "True")])
def test_the_xray_sdk_is_loaded_only_when_tracing_is_switched_on(
    tracing: str, xray_loaded: str
) -> None:
    probe = (
        "import sys\n"
        "from achieveit_sync.observability import lambda_entry_point\n"
        "lambda_entry_point('probe', lambda: (lambda event, context, metrics: {}))\n"
        "print('aws_xray_sdk' in sys.modules)\n"
    )
    env = {"ACHIEVEIT_TRACING": tracing, "AWS_XRAY_SDK_ENABLED": "false", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )

    assert result.stdout.split() == [xray_loaded]


def test_the_template_s_service_name_names_the_metrics_and_the_logs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two stacks in one account must not share metric dimensions, or dev trips prod's
    alarms: the service comes from POWERTOOLS_SERVICE_NAME, which the template sets."""
    import json

    from achieveit_sync.observability import lambda_entry_point
    from aws_lambda_powertools.metrics import MetricUnit

    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "dev-stack-ingest")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "AchieveItSync")

    def handle(event: object, context: object, metrics: object) -> dict[str, str]:
        metrics.add_metric("FilesHandled", MetricUnit.Count, 1)  # type: ignore[attr-defined]
        return {}

    class Context:
        function_name = "fn"
        memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"
        aws_request_id = "r-1"

    lambda_entry_point("achieveit-sync-ingest", lambda: handle)({}, Context())

    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    emf = [d for d in documents if "_aws" in d and "FilesHandled" in d]
    assert emf
    assert emf[0]["service"] == "dev-stack-ingest"


def test_the_first_build_does_not_import_numpy_the_first_index_does() -> None:
    """NumPy (~70 ms) comes with the first duplicate index (the first file or plan), not
    with the modules a cold start's first build imports."""
    probe = (
        "import sys\n"
        "import achieveit_sync.ingest.lambda_adapter, achieveit_sync.backup.lambda_adapter\n"
        "import achieveit_sync.cli\n"
        "print('numpy' in sys.modules)\n"
        "from achieveit_sync.key_index import SeenKeys\n"
        "SeenKeys()\n"
        "print('numpy' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )

    assert result.stdout.split() == ["False", "True"]
