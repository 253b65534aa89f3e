"""What a warm Lambda keeps between invocations, and what every invocation does around the
work: tag the logs, count the metrics, flush them. Built on the first invocation (never at
import), so a handler module stays cheap to import."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aws_lambda_powertools.metrics import Metrics
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from achieveit_sync.client import AchieveItClient


class FunctionService(Protocol):
    """The part of a function's service the runtime needs."""

    client: AchieveItClient

    def handle(
        self, event: Mapping[str, Any], context: LambdaContext, metrics: Metrics | None
    ) -> Mapping[str, Any]: ...


@dataclass
class FunctionRuntime:
    service_name: str
    service: FunctionService
    logger: Any
    invocations: int = 0

    @classmethod
    def start(cls, service_name: str, build: Callable[[], FunctionService]) -> FunctionRuntime:
        """Logger first (so that building the service logs as JSON), tracing if switched
        on, then the service and its clients."""
        from achieveit_sync.observability import enable_tracing_if_configured, structured_logger

        logger = structured_logger(service_name)
        enable_tracing_if_configured(service_name)
        return cls(service_name, build(), logger)

    def handle(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        from achieveit_sync.observability import api_metrics, invocation_metrics, tag_invocation

        tag_invocation(self.logger, context, cold_start=self.invocations == 0)
        self.invocations += 1
        metrics = invocation_metrics(self.service_name)
        try:
            return dict(self.service.handle(event, context, metrics))
        finally:
            api_metrics(metrics, self.service.client.take_stats())
            metrics.flush_metrics()
