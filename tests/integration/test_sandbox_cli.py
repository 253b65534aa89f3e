"""`achieveit-sync sandbox` from the shell: first line is JSON a script can use; Ctrl-C stops it."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

from achieveit_sync.api_key import StaticApiKey
from achieveit_sync.client import AchieveItClient
from achieveit_sync.settings import ClientSettings

from tests.conftest import plan_items


def test_the_sandbox_command_prints_connection_json_and_stops_on_interrupt(
    tmp_path: Path,
) -> None:
    ca_file = tmp_path / "nested" / "sandbox-ca.pem"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "achieveit_sync.cli",
            "sandbox",
            "--ca-file",
            str(ca_file),
            "--generate-plan",
            "BIG:2000",
            "--api-key",
            "cli-test-key",
            "--env-out",
            str(tmp_path / "sandbox.env"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    try:
        info = json.loads(lines.get(timeout=30))

        assert set(info) == {"base_url", "ca_file", "api_key", "plan_ids"}
        assert info["base_url"].startswith("https://127.0.0.1:")
        assert Path(info["ca_file"]) == ca_file
        assert ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert info["api_key"] == "cli-test-key"
        assert "BIG" in info["plan_ids"]
        exports = (tmp_path / "sandbox.env").read_text().splitlines()
        assert exports == [
            f"export ACHIEVEIT_BASE_URL={info['base_url']}",
            "export ACHIEVEIT_API_KEY=cli-test-key",
            f"export ACHIEVEIT_CA_BUNDLE={ca_file}",
            f"export ACHIEVEIT_PLAN_IDS='{' '.join(info['plan_ids'])}'",
        ]
        settings = ClientSettings(base_url=info["base_url"], ca_bundle=ca_file)
        with AchieveItClient(settings, StaticApiKey(info["api_key"])) as client:
            assert sum(1 for _ in plan_items(client, "BIG")) == 2000
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == 0
    assert "sandbox stopped after 2 requests" in stderr


def test_a_bad_generate_plan_argument_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "achieveit_sync.cli",
            "sandbox",
            "--ca-file",
            str(tmp_path / "ca.pem"),
            "--generate-plan",
            "BIG",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "PLAN_ID:ITEMS" in result.stderr
