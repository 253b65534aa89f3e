"""Powertools Logger and Metrics for the Lambdas, set up per invocation (never at import).

The package logs through the standard library (``logging.getLogger(__name__)``); the
handler's Powertools Logger lends those loggers its JSON formatting, so every line of a run
is one structured record with the request id. Nothing here logs event bodies or the key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from achieveit_sync.client import RequestStats

PACKAGE_LOGGER = "achieveit_sync"
DEFAULT_NAMESPACE = "AchieveItSync"


def structured_logger(service: str) -> Logger:
    """The function's Logger, with the package's loggers writing through it."""
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    logger = Logger(service=service)
    copy_config_to_registered_loggers(source_logger=logger, include={PACKAGE_LOGGER})
    return logger


def tag_invocation(logger: Logger, context: LambdaContext, *, cold_start: bool) -> None:
    logger.append_keys(
        function_request_id=context.aws_request_id,
        function_name=context.function_name,
        cold_start=cold_start,
    )


def invocation_metrics(service: str) -> Metrics:
    """Metrics for one invocation (flush them at the end). The namespace comes from
    POWERTOOLS_METRICS_NAMESPACE, or defaults to AchieveItSync."""
    import os

    from aws_lambda_powertools import Metrics

    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE
    return Metrics(namespace=namespace, service=service)


def enable_tracing_if_configured(service: str) -> bool:
    """X-Ray subsegments for boto3 and requests calls, only when ``ACHIEVEIT_TRACING`` is
    ``true`` (the template's EnableTracing): creating a Powertools Tracer imports the X-Ray
    SDK, about 350 ms of cold start that an untraced function should not pay."""
    import os

    if os.environ.get("ACHIEVEIT_TRACING", "false").strip().lower() != "true":
        return False
    from aws_lambda_powertools import Tracer

    Tracer(service=service, patch_modules=["boto3", "botocore", "requests"])
    return True


def api_metrics(metrics: Metrics, stats: RequestStats) -> None:
    """Per-invocation metrics of the AchieveIt client's requests."""
    from aws_lambda_powertools.metrics import MetricUnit

    metrics.add_metric("ApiRequests", MetricUnit.Count, stats.attempts)
    metrics.add_metric("ApiErrors", MetricUnit.Count, stats.failures)
    if stats.attempts:
        metrics.add_metric(
            "ApiLatency", MetricUnit.Milliseconds, round(stats.average_latency_ms, 1)
        )
