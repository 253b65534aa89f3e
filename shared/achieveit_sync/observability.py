"""Powertools Logger, Metrics and (optionally) Tracer around a Lambda handler, built on the
first invocation, never at import.

``lambda_entry_point`` wraps a function's ``handle(event, context, metrics)`` with
``Logger.inject_lambda_context`` (request id, cold start, function name on every line) and
``Metrics.log_metrics(capture_cold_start_metric=True)`` (flushed after each invocation). The
package logs through the standard library (``logging.getLogger(__name__)``); the handler's
Logger lends those loggers its JSON formatting. Nothing here logs event bodies or the key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from achieveit_sync.settings import ObservabilitySettings

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

    from achieveit_sync.client import RequestStats

PACKAGE_LOGGER = "achieveit_sync"
Handle = Callable[[Mapping[str, Any], Any, "Metrics"], Mapping[str, Any]]


def lambda_entry_point(
    default_service: str, build: Callable[[], Handle]
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The handler Lambda calls: logging, tracing if switched on, then the function's own
    collaborators (``build``, once), all wrapped in Powertools' decorators. The service is
    ``POWERTOOLS_SERVICE_NAME`` when set (by the template), else ``default_service``."""
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    settings = ObservabilitySettings.from_env()
    service = settings.service_name or default_service
    logger = Logger(service=service)
    copy_config_to_registered_loggers(source_logger=logger, include={PACKAGE_LOGGER})
    if settings.tracing:
        # Creating a Tracer imports the X-Ray SDK (about 350 ms of cold start): only when
        # the template's EnableTracing asks for it.
        from aws_lambda_powertools import Tracer

        Tracer(service=service, patch_modules=["boto3", "botocore", "requests"])
    metrics = Metrics(namespace=settings.metrics_namespace, service=service)
    handle = build()

    def entry(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return dict(handle(event, context, metrics))

    with_metrics = metrics.log_metrics(entry, capture_cold_start_metric=True)
    wrapped: Callable[[dict[str, Any], Any], dict[str, Any]] = logger.inject_lambda_context(
        with_metrics
    )
    return wrapped


def api_metrics(metrics: Metrics, stats: RequestStats) -> None:
    """Per-invocation metrics of the AchieveIt client's requests."""
    from aws_lambda_powertools.metrics import MetricUnit

    metrics.add_metric("ApiRequests", MetricUnit.Count, stats.attempts)
    metrics.add_metric("ApiErrors", MetricUnit.Count, stats.failures)
    if stats.attempts:
        metrics.add_metric(
            "ApiLatency", MetricUnit.Milliseconds, round(stats.average_latency_ms, 1)
        )
