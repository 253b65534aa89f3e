"""Ingest Lambda: SQS messages carrying S3 "object created" notifications under incoming/.

Thin by design: all logic is in the achieveit_sync layer. The handler (settings, AWS clients,
the AchieveIt HTTPS session, Powertools) is built on the first invocation and reused while
warm; nothing is created or read from the environment at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_handler: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler  # noqa: PLW0603 - the warm-container cache, built lazily
    if _handler is None:
        from achieveit_sync.ingest.lambda_adapter import INGEST_SERVICE_NAME, build_ingest_lambda
        from achieveit_sync.observability import lambda_entry_point
        from achieveit_sync.settings import IngestSettings

        _handler = lambda_entry_point(
            INGEST_SERVICE_NAME, lambda: build_ingest_lambda(IngestSettings.from_env()).handle
        )
    return _handler(event, context)
