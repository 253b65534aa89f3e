"""The export (backup) Lambda: an EventBridge Scheduler event, or an on-demand event naming
plans, backs up each plan to the backups bucket. The run fails (so the failed-runs queue and
alarms work) only after every plan was tried, and names what failed.

With no plans configured and none named, there is nothing to back up: that is a stack not
configured yet, not a failure. The run logs a warning saying what to set and succeeds, so that
a schedule left on does not fail (and alarm) every night. The template keeps the schedule
DISABLED while PlanIds is empty anyway."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from achieveit_sync.backup.run import DEFAULT_EXPIRATION_DAYS, BackupRunError, back_up_plans
from achieveit_sync.backup.targets import S3Target
from achieveit_sync.client import AchieveItClient
from achieveit_sync.errors import ConfigurationError
from achieveit_sync.settings import ClientSettings
from achieveit_sync.storage import S3Storage

if TYPE_CHECKING:
    from aws_lambda_powertools.metrics import Metrics
    from aws_lambda_powertools.utilities.typing import LambdaContext

EXPORT_SERVICE_NAME = "achieveit-sync-export"
NOT_CONFIGURED = (
    "no plans to back up: set the stack's PlanIds parameter (comma-separated plan IDs; it sets "
    'PLAN_IDS and switches the nightly schedule on), or invoke with {"plans": ["PLAN-ID"]}'
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackupSettings:
    bucket: str
    plan_ids: tuple[str, ...]
    api_key_secret: str
    client: ClientSettings
    time_zone: str = "UTC"
    secret_max_age_seconds: int = 300
    expiration_days: int = DEFAULT_EXPIRATION_DAYS
    """The bucket's lifecycle expiration (``BackupExpirationDays``): bounds how old data an
    unchanged backup may point at (``run.reuse_window``)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BackupSettings:
        env = os.environ if environ is None else environ
        bucket = env.get("BACKUP_BUCKET", "").strip()
        secret = env.get("ACHIEVEIT_API_KEY_SECRET", "").strip()
        for name, value in (("BACKUP_BUCKET", bucket), ("ACHIEVEIT_API_KEY_SECRET", secret)):
            if not value:
                raise ConfigurationError(f"{name} is not set (see template.yaml)")
        time_zone = env.get("BACKUP_TIME_ZONE", "").strip() or "UTC"
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(
                f"BACKUP_TIME_ZONE '{time_zone}' is not an IANA time zone (e.g. America/Chicago)"
            ) from None
        plans = tuple(p.strip() for p in env.get("PLAN_IDS", "").split(",") if p.strip())
        max_age = env.get("ACHIEVEIT_SECRET_MAX_AGE_SECONDS", "").strip() or "300"
        expiration = env.get("BACKUP_EXPIRATION_DAYS", "").strip() or str(DEFAULT_EXPIRATION_DAYS)
        if not (expiration.isascii() and expiration.isdigit() and int(expiration) >= 1):
            raise ConfigurationError(
                f"BACKUP_EXPIRATION_DAYS '{expiration}' is not a whole number of days of 1 or "
                "more (the template sets it from BackupExpirationDays)"
            )
        return cls(
            bucket=bucket,
            plan_ids=plans,
            api_key_secret=secret,
            client=ClientSettings.from_env(env),
            time_zone=time_zone,
            secret_max_age_seconds=(
                int(max_age) if max_age.isascii() and max_age.isdigit() else 300
            ),
            expiration_days=int(expiration),
        )


def plans_for_event(event: Mapping[str, Any], configured: tuple[str, ...]) -> list[object]:
    """An on-demand event names its plans (``{"plans": ["P-1"]}``); a scheduled one (the
    Scheduler's Input, verbatim: ``{"source": "achieveit-sync.schedule"}``) uses the
    configured list. Empty when neither names a plan. Entries are passed on as sent: one that
    is not a valid plan id fails alone, with the reason (``back_up_plans``)."""
    requested = event.get("plans") if isinstance(event, Mapping) else None
    if isinstance(requested, str):
        requested = [requested]
    if isinstance(requested, list) and requested:
        return list(requested)
    return list(configured)


@dataclass
class BackupService:
    settings: BackupSettings
    client: AchieveItClient
    storage: S3Storage

    def handle(
        self,
        event: Mapping[str, Any],
        context: LambdaContext | None = None,
        metrics: Metrics | None = None,
    ) -> dict[str, Any]:
        plans = plans_for_event(event, self.settings.plan_ids)
        if not plans:
            log.warning(NOT_CONFIGURED, extra={"source": _event_source(event)})
            return {"plans": [], "failed": [], "notConfigured": NOT_CONFIGURED}
        run = back_up_plans(
            plans,
            client=self.client,
            target=S3Target(self.storage, self.settings.bucket),
            api_base_url=self.settings.client.base_url,
            time_zone=self.settings.time_zone,
            expiration_days=self.settings.expiration_days,
        )
        if metrics is not None:
            from aws_lambda_powertools.metrics import MetricUnit

            succeeded = [o for o in run.outcomes if o.succeeded]
            metrics.add_metric("PlansBackedUp", MetricUnit.Count, len(succeeded))
            metrics.add_metric(
                "PlansFailed",
                MetricUnit.Count,
                sum(1 for o in run.outcomes if o.status == "failed"),
            )
            metrics.add_metric(
                "PlansIncomplete",
                MetricUnit.Count,
                sum(1 for o in run.outcomes if o.status == "incomplete"),
            )
            metrics.add_metric("ItemsBackedUp", MetricUnit.Count, sum(o.items for o in succeeded))
            metrics.add_metric("CompleteBackups", MetricUnit.Count, len(succeeded))
        if run.failed:
            raise BackupRunError(run)
        return run.as_dict()


def _event_source(event: Mapping[str, Any]) -> str:
    source = event.get("source") if isinstance(event, Mapping) else None
    return source if isinstance(source, str) else "on-demand"


def build_backup_service(settings: BackupSettings, *, session: Any = None) -> BackupService:
    import boto3

    from achieveit_sync.api_key import SecretsManagerApiKey

    session = session or boto3.session.Session()
    api_key = SecretsManagerApiKey(
        settings.api_key_secret,
        max_age_seconds=settings.secret_max_age_seconds,
        secrets_client=session.client("secretsmanager"),
    )
    return BackupService(
        settings, AchieveItClient(settings.client, api_key), S3Storage(session.client("s3"))
    )
