"""Ingest Lambda: SQS messages carrying S3 "object created" notifications under incoming/.

Thin by design: all logic is in the achieveit_sync layer. The runtime (settings, AWS clients,
the AchieveIt HTTPS session) is built on the first invocation and reused while warm; nothing
is created or read from the environment at import time.
"""

from __future__ import annotations

from typing import Any

from achieveit_sync.ingest.service import INGEST_SERVICE_NAME, IngestSettings, build_ingest_service
from achieveit_sync.runtime import FunctionRuntime

_runtime: FunctionRuntime | None = None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _runtime  # noqa: PLW0603 - the warm-container cache, built lazily
    if _runtime is None:
        _runtime = FunctionRuntime.start(
            INGEST_SERVICE_NAME, lambda: build_ingest_service(IngestSettings.from_env())
        )
    return _runtime.handle(event, context)
