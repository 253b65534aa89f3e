"""Export Lambda: backs up the configured AchieveIt plans to S3 (EventBridge Scheduler), or
the plans an on-demand event names ({"plans": ["PLAN-ID"]}).

Thin by design: all logic is in the achieveit_sync layer; the handler is built on the first
invocation and reused while warm; nothing is created or read at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_handler: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler  # noqa: PLW0603 - the warm-container cache, built lazily
    if _handler is None:
        from achieveit_sync.backup.lambda_adapter import EXPORT_SERVICE_NAME, build_backup_lambda
        from achieveit_sync.observability import lambda_entry_point
        from achieveit_sync.settings import BackupSettings

        _handler = lambda_entry_point(
            EXPORT_SERVICE_NAME, lambda: build_backup_lambda(BackupSettings.from_env()).handle
        )
    return _handler(event, context)
