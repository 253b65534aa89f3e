"""Export Lambda: backs up the configured AchieveIt plans to S3 (EventBridge Scheduler), or
the plans an on-demand event names ({"plans": ["PLAN-ID"]}).

Thin by design: all logic is in the achieveit_sync layer; the runtime is built on the first
invocation and reused while warm; nothing is created or read at import time.
"""

from __future__ import annotations

from typing import Any

from achieveit_sync.backup.service import EXPORT_SERVICE_NAME, BackupSettings, build_backup_service
from achieveit_sync.runtime import FunctionRuntime

_runtime: FunctionRuntime | None = None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _runtime  # noqa: PLW0603 - the warm-container cache, built lazily
    if _runtime is None:
        _runtime = FunctionRuntime.start(
            EXPORT_SERVICE_NAME, lambda: build_backup_service(BackupSettings.from_env())
        )
    return _runtime.handle(event, context)
