"""The export (backup) Lambda: an EventBridge Scheduler event, or an on-demand event naming
plans, backs up each plan to the backups bucket. The run fails (so the failed-runs queue and
alarms work) only after every plan was tried, and names what failed.

With no plans configured and none named, there is nothing to back up: that is a stack not
configured yet, not a failure. The run logs a warning saying what to set and succeeds, so that
a schedule left on does not fail (and alarm) every night. The template keeps the schedule
DISABLED while PlanIds is empty anyway."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from achieveit_sync.backup.documents import PlanStatus
from achieveit_sync.backup.run import BackupOptions, BackupRunError, back_up_plans
from achieveit_sync.backup.targets import S3Target
from achieveit_sync.client import AchieveItClient
from achieveit_sync.errors import ConfigurationError
from achieveit_sync.settings import BackupSettings
from achieveit_sync.storage import S3Storage

if TYPE_CHECKING:
    from aws_lambda_powertools.metrics import Metrics
    from aws_lambda_powertools.utilities.typing import LambdaContext

EXPORT_SERVICE_NAME = "achieveit-sync-export"
NOT_CONFIGURED = (
    "no plans to back up: set the stack's PlanIds parameter (comma-separated plan IDs; it sets "
    'PLAN_IDS and switches the nightly schedule on), or invoke with {"plans": ["PLAN-ID"]}'
)

TIME_MARGIN_SECONDS = 30.0
"""Kept of the invocation's time for storing the last plan and returning the result."""

log = logging.getLogger(__name__)


EVENT_SHAPE = (
    '{"plans": ["PLAN-ID", ...]} (a list of plan ids, or one id as text) for those plans, or '
    'an event without "plans" (such as the schedule\'s) for the configured PlanIds'
)


class InvalidEventError(ConfigurationError):
    """An on-demand event whose plans cannot be told: refused, never read as "the configured
    plans" (the operator asked for something else)."""


def plans_for_event(event: object, configured: tuple[str, ...]) -> list[object]:
    """The plans an event asks for.

    An on-demand event names its plans (``{"plans": ["P-1"]}``, or ``{"plans": "P-1"}``); an
    event without a ``plans`` key (the Scheduler's Input, verbatim:
    ``{"source": "achieveit-sync.schedule"}``) means the configured list. Anything else that
    looks like a request for plans (``plans`` null, a number, an object or an empty list; a
    ``plan`` or ``Plans`` key; an event that is not an object) raises ``InvalidEventError``
    naming the accepted shape: an operator who asked for one plan must not silently get the
    nightly ones. Entries are passed on as sent: one that is not a valid plan id fails alone,
    with the reason (``back_up_plans``)."""
    if not isinstance(event, Mapping):
        raise InvalidEventError(
            f"the event is {_shape_of(event)}, not an object; send {EVENT_SHAPE}"
        )
    if "plans" not in event:
        lookalikes = [key for key in event if _names_plans(key)]
        if lookalikes:
            raise InvalidEventError(
                f'the event has {_shown(lookalikes[0])} but no "plans" (the name is exact, '
                f"lower case); send {EVENT_SHAPE}"
            )
        return list(configured)
    requested = event["plans"]
    if isinstance(requested, str):
        return [requested]
    if isinstance(requested, list) and requested:
        return list(requested)
    raise InvalidEventError(f'"plans" is {_shape_of(requested)}; send {EVENT_SHAPE}')


def _names_plans(key: object) -> bool:
    """``plan``, ``Plans``, ``plan_ids``, ``PLANIDS``...: a key meant to name plans."""
    return isinstance(key, str) and "".join(filter(str.isalnum, key)).lower().startswith("plan")


def _shape_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _shown(key: str) -> str:
    return ascii(key[:40]) + ("..." if len(key) > 40 else "")


@dataclass
class BackupLambda:
    settings: BackupSettings
    client: AchieveItClient
    storage: S3Storage

    def handle(
        self,
        event: Mapping[str, Any],
        context: LambdaContext | None = None,
        metrics: Metrics | None = None,
    ) -> dict[str, Any]:
        deadline = None
        if context is not None:
            # Every plan gets a result: the run stops starting work this long before Lambda
            # would end it, to store the last plan and return.
            remaining = context.get_remaining_time_in_millis() / 1000
            deadline = time.monotonic() + remaining - TIME_MARGIN_SECONDS
        try:
            return self._back_up(event, metrics, deadline)
        finally:
            stats = self.client.take_stats()
            if metrics is not None:
                from achieveit_sync.observability import api_metrics

                api_metrics(metrics, stats)

    def _back_up(
        self, event: Mapping[str, Any], metrics: Metrics | None, deadline: float | None
    ) -> dict[str, Any]:
        try:
            plans = plans_for_event(event, self.settings.plan_ids)
        except InvalidEventError as exc:
            log.error("event refused", extra={"error": str(exc)})  # noqa: TRY400 - no trace needed
            raise
        if not plans:
            log.warning(NOT_CONFIGURED, extra={"source": _event_source(event)})
            return {"plans": [], "failed": [], "notConfigured": NOT_CONFIGURED}
        run = back_up_plans(
            plans,
            client=self.client,
            target=S3Target(self.storage, self.settings.bucket),
            options=BackupOptions.from_settings(self.settings),
            deadline=deadline,
        )
        if metrics is not None:
            from aws_lambda_powertools.metrics import MetricUnit

            succeeded = [o for o in run.outcomes if o.succeeded]
            by_status = [o.status for o in run.outcomes]
            metrics.add_metric("CompleteBackups", MetricUnit.Count, len(succeeded))
            metrics.add_metric("PlansFailed", MetricUnit.Count, by_status.count(PlanStatus.FAILED))
            metrics.add_metric(
                "PlansIncomplete", MetricUnit.Count, by_status.count(PlanStatus.INCOMPLETE)
            )
            metrics.add_metric("ItemsBackedUp", MetricUnit.Count, sum(o.items for o in succeeded))
        if run.failed:
            raise BackupRunError(run)
        return run.as_dict()


def _event_source(event: Mapping[str, Any]) -> str:
    source = event.get("source") if isinstance(event, Mapping) else None
    return source if isinstance(source, str) else "on-demand"


def build_backup_lambda(settings: BackupSettings, *, session: Any = None) -> BackupLambda:
    import boto3

    from achieveit_sync.api_key import SecretsManagerApiKey

    session = session or boto3.session.Session()
    api_key = SecretsManagerApiKey(
        settings.api_key_secret,
        max_age_seconds=settings.secret_max_age_seconds,
        secrets_client=session.client("secretsmanager"),
    )
    return BackupLambda(
        settings, AchieveItClient(settings.client, api_key), S3Storage(session.client("s3"))
    )
