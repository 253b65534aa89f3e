"""The ingest Lambda's logic: SQS messages carrying S3 notifications become published files.

For each message (Powertools Batch reports partial failures, so one bad message never makes
SQS redeliver the good ones): skip S3's ``s3:TestEvent``; for each created object under
``incoming/``, process that exact version once (Powertools Idempotency on DynamoDB, keyed on
bucket, key, version or ETag, and the continuation number), then write the report, the
rejected rows and archive the source. A file too large for one invocation stops before the
timeout and queues a continuation message; it resumes from its checkpoints.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote_plus

from achieveit_sync.client import AchieveItClient
from achieveit_sync.errors import AchieveItSyncError, ConfigurationError
from achieveit_sync.ingest.checkpoints import CheckpointStore
from achieveit_sync.ingest.pipeline import FileSource, IngestOptions, ingest_file
from achieveit_sync.ingest.reading import FileFormat
from achieveit_sync.ingest.report import FileReport, FileStatus, StopReason
from achieveit_sync.ingest.routing import INCOMING_PREFIX, kind_for_key
from achieveit_sync.settings import ClientSettings
from achieveit_sync.storage import ObjectGoneError, ObjectRef, S3Storage
from achieveit_sync.updates import BodyFormat

if TYPE_CHECKING:
    from aws_lambda_powertools.metrics import Metrics
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency.persistence.base import (
        BasePersistenceLayer,
    )
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

CONTINUATION_KEY = "achieveitSyncContinuation"
REPORTS_PREFIX = "reports/"
REJECTED_PREFIX = "rejected/"
AMBIGUOUS_PREFIX = "ambiguous/"
ARCHIVE_PREFIX = "archive/"
_SPOOL_BYTES = 8 * 1024 * 1024
_CONTENT_TYPES = {
    FileFormat.CSV: "text/csv; charset=utf-8",
    FileFormat.JSON: "application/json",
    FileFormat.JSONL: "application/x-ndjson",
}


class RetryLaterError(AchieveItSyncError):
    """The file is not finished and its message should come back (SQS redelivery)."""


@dataclass(frozen=True)
class IngestSettings:
    """The ingest Lambda's configuration, read once from its environment."""

    queue_url: str
    idempotency_table: str
    checkpoint_table: str
    api_key_secret: str
    client: ClientSettings
    notification_topic_arn: str | None = None
    batch_size: int = 500
    body_format: BodyFormat = BodyFormat.JSON
    time_margin_seconds: float = 120.0
    secret_max_age_seconds: int = 300
    idempotency_expiry_seconds: int = 7 * 86400

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IngestSettings:
        env = os.environ if environ is None else environ

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigurationError(f"{name} is not set (see template.yaml)")
            return value

        def whole_number(name: str, default: int) -> int:
            raw = env.get(name, "").strip() or str(default)
            if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
                raise ConfigurationError(f"{name} must be a whole number of 1 or more, got '{raw}'")
            return int(raw)

        body_format = env.get("INGEST_BODY_FORMAT", "json").strip().lower()
        if body_format not in ("json", "csv"):
            raise ConfigurationError(f"INGEST_BODY_FORMAT must be json or csv, got '{body_format}'")
        return cls(
            queue_url=required("INGEST_QUEUE_URL"),
            idempotency_table=required("IDEMPOTENCY_TABLE"),
            checkpoint_table=required("CHECKPOINT_TABLE"),
            api_key_secret=required("ACHIEVEIT_API_KEY_SECRET"),
            client=ClientSettings.from_env(env),
            notification_topic_arn=env.get("NOTIFICATION_TOPIC_ARN", "").strip() or None,
            batch_size=whole_number("INGEST_BATCH_SIZE", 500),
            body_format=BodyFormat(body_format),
            time_margin_seconds=float(whole_number("INGEST_TIME_MARGIN_SECONDS", 120)),
            secret_max_age_seconds=whole_number("ACHIEVEIT_SECRET_MAX_AGE_SECONDS", 300),
        )


class Notifier(Protocol):
    def notify(self, subject: str, message: str) -> None: ...


@dataclass
class SnsNotifier:
    client: SNSClient
    topic_arn: str | None

    def notify(self, subject: str, message: str) -> None:
        if self.topic_arn:
            self.client.publish(TopicArn=self.topic_arn, Subject=subject[:100], Message=message)


@dataclass(frozen=True)
class FileTask:
    """One object to process; ``resume`` counts continuations (0 for the S3 event)."""

    ref: ObjectRef
    resume: int = 0
    size: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.ref.bucket,
            "key": self.ref.key,
            "versionId": self.ref.version_id,
            "etag": self.ref.etag,
            "resume": self.resume,
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> FileTask:
        return cls(
            ObjectRef(
                document["bucket"], document["key"], document.get("versionId"), document.get("etag")
            ),
            resume=int(document.get("resume", 0)),
            size=document.get("size"),
        )


def tasks_in_message(body: Mapping[str, Any]) -> Iterator[FileTask]:
    """The files an SQS message asks for: an S3 notification, or our continuation."""
    from aws_lambda_powertools.utilities.data_classes import S3Event

    if body.get("Event") == "s3:TestEvent":
        log.info("ignoring S3's test event", extra={"bucket": body.get("Bucket")})
        return
    if CONTINUATION_KEY in body:
        yield FileTask.from_dict(body[CONTINUATION_KEY])
        return
    for record in S3Event(dict(body)).records:
        if not record.event_name.startswith("ObjectCreated"):
            continue
        s3_object = record.s3.get_object
        # Keys arrive URL-encoded ('+' for spaces); Powertools leaves record keys as sent.
        key = unquote_plus(s3_object.key)
        yield FileTask(
            ObjectRef(record.s3.bucket.name, key, s3_object.version_id, s3_object.etag or None),
            size=s3_object.size,
        )


@dataclass
class IngestService:
    settings: IngestSettings
    client: AchieveItClient
    storage: S3Storage
    checkpoints: CheckpointStore
    sqs: SQSClient
    notifier: Notifier
    persistence: BasePersistenceLayer
    idempotency_config: IdempotencyConfig
    _context: LambdaContext | None = field(default=None, init=False)
    _metrics: Metrics | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        from aws_lambda_powertools.utilities.idempotency import idempotent_function

        self._process_once = idempotent_function(
            data_keyword_argument="task",
            persistence_store=self.persistence,
            config=self.idempotency_config,
        )(self._process)

    def handle(
        self, event: Mapping[str, Any], context: LambdaContext, metrics: Metrics | None = None
    ) -> PartialItemFailureResponse:
        from aws_lambda_powertools.utilities.batch import (
            BatchProcessor,
            EventType,
            process_partial_response,
        )

        # A run that dies at the timeout must not leave its idempotency record "in progress"
        # for longer than the invocation could have lived.
        self.idempotency_config.register_lambda_context(context)
        self._context = context
        self._metrics = metrics
        return process_partial_response(
            event=dict(event),
            record_handler=self._handle_record,
            processor=BatchProcessor(event_type=EventType.SQS),
            context=context,
        )

    def _handle_record(self, record: SQSRecord) -> None:
        for task in tasks_in_message(record.json_body):
            if not task.ref.key.startswith(INCOMING_PREFIX):
                log.warning("ignoring an object outside incoming/", extra={"key": task.ref.key})
                continue
            self._process_once(task=task.as_dict())

    def _process(self, task: dict[str, Any]) -> dict[str, Any]:
        file_task = FileTask.from_dict(task)
        ref = file_task.ref
        log.info(
            "processing file",
            extra={
                "file": ref.uri,
                "version": ref.version_id,
                "etag": ref.etag,
                "resume": file_task.resume,
            },
        )
        try:
            self.storage.head(ref)
        except ObjectGoneError as exc:
            log.info(
                "the file is gone (already archived?); nothing to do",
                extra={"file": ref.uri, "reason": str(exc.__cause__ or exc)},
            )
            return {"status": "gone"}
        source = FileSource(
            name=ref.key,
            display_name=ref.uri,
            open=lambda: self.storage.open(ref),
            kind=kind_for_key(ref.key),
            file_id=ref.identity,
            details={
                "bucket": ref.bucket,
                "key": ref.key,
                "versionId": ref.version_id,
                "etag": ref.etag,
                "size": file_task.size,
                "resume": file_task.resume,
            },
        )
        with (
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as rejected,
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as ambiguous,
        ):
            report = ingest_file(
                source,
                client=self.client,
                rejected_sink=rejected,
                ambiguous_sink=ambiguous,
                checkpoints=self.checkpoints,
                options=IngestOptions(self.settings.batch_size, self.settings.body_format),
                should_stop=self._out_of_time,
            )
            rejected.seek(0)
            ambiguous.seek(0)
            return self._conclude(file_task, report, rejected, ambiguous)

    def _conclude(
        self, task: FileTask, report: FileReport, rejected: Any, ambiguous: Any
    ) -> dict[str, Any]:
        ref = task.ref
        bucket = ref.bucket
        report_key = f"{REPORTS_PREFIX}{ref.key}.json"
        report.outputs["report"] = f"s3://{bucket}/{report_key}"
        self._record_metrics(report)
        # A run that stopped (time, API unavailable or refusing) is not finished: the file
        # stays where it is and a later run resumes it.
        finished = report.stop_reason is None
        if finished and report.file_format:
            content_type = _CONTENT_TYPES[FileFormat(report.file_format)]
            for name, prefix, rows, body in (
                ("rejected", REJECTED_PREFIX, report.counts.rejected, rejected),
                ("ambiguous", AMBIGUOUS_PREFIX, report.counts.ambiguous, ambiguous),
            ):
                if rows:
                    key = f"{prefix}{ref.key.removesuffix('.gz')}"
                    self.storage.put_stream(bucket, key, body, content_type)
                    report.outputs[name] = f"s3://{bucket}/{key}"
        if finished:
            archive_key = f"{ARCHIVE_PREFIX}{datetime.now(UTC):%Y-%m-%d}/{ref.key}"
            report.outputs["archive"] = f"s3://{bucket}/{archive_key}"
        self.storage.put_bytes(bucket, report_key, report.to_json(), "application/json")
        if finished:
            self.storage.move(ref, report.outputs["archive"].removeprefix(f"s3://{bucket}/"))
        log.info(
            "file handled",
            extra={"file": ref.uri, "status": report.status.value, **report.counts.as_dict()},
        )
        if report.has_problems or report.status is FileStatus.FAILED:
            self.notifier.notify(_subject(report, ref), _notification(report))
        if report.stop_reason is StopReason.TIME:
            self._continue_later(task)
        elif report.stop_reason is StopReason.API_UNAVAILABLE:
            raise RetryLaterError(f"{ref.uri}: AchieveIt unavailable; SQS will redeliver")
        elif report.stop_reason is StopReason.API_REFUSED:
            raise RetryLaterError(
                f"{ref.uri}: AchieveIt refused the requests "
                f"({(report.file_error or {}).get('reason', '')})"
            )
        return {
            "status": report.status.value,
            "counts": report.counts.as_dict(),
            "report": report.outputs["report"],
        }

    def _continue_later(self, task: FileTask) -> None:
        follow_up = FileTask(task.ref, resume=task.resume + 1, size=task.size)
        self.sqs.send_message(
            QueueUrl=self.settings.queue_url,
            MessageBody=json.dumps({CONTINUATION_KEY: follow_up.as_dict()}),
        )
        log.info("queued a continuation", extra={"file": task.ref.uri, "resume": follow_up.resume})

    def _out_of_time(self) -> bool:
        if self._context is None:
            return False
        remaining = self._context.get_remaining_time_in_millis() / 1000
        return remaining < self.settings.time_margin_seconds

    def _record_metrics(self, report: FileReport) -> None:
        if self._metrics is None:
            return
        from aws_lambda_powertools.metrics import MetricUnit

        counts = report.counts
        self._metrics.add_metric("FilesProcessed", MetricUnit.Count, 1)
        self._metrics.add_metric("RowsPublished", MetricUnit.Count, counts.published)
        self._metrics.add_metric("RowsRejected", MetricUnit.Count, counts.rejected)
        self._metrics.add_metric("RowsAmbiguous", MetricUnit.Count, counts.ambiguous)
        self._metrics.add_metric(
            "AmbiguousBatches",
            MetricUnit.Count,
            sum(1 for r in report.requests if r.outcome == "ambiguous"),
        )
        self._metrics.add_metric(
            "FilesFailed", MetricUnit.Count, int(report.status is FileStatus.FAILED)
        )


def _subject(report: FileReport, ref: ObjectRef) -> str:
    name = ref.key.rsplit("/", 1)[-1]
    if report.status is FileStatus.FAILED:
        return f"AchieveIt ingest failed: {name}"
    return f"AchieveIt ingest: {report.counts.rejected} rows rejected in {name}"


def _notification(report: FileReport) -> str:
    counts = report.counts
    lines = [
        f"File: {report.source['name']}",
        f"Status: {report.status.value}",
        f"Rows read {counts.rows_read}, published {counts.published}, rejected "
        f"{counts.rejected}, may have been applied (no answer) {counts.ambiguous}.",
    ]
    if report.file_error:
        lines.append(
            f"Problem: {report.file_error.get('reason')} - {report.file_error.get('hint')}"
        )
    for rejection in report.rejections[:5]:
        lines.append(f"Line {rejection['line']}, {rejection['field']}: {rejection['reason']}")
    lines.extend(f"{name.capitalize()}: {uri}" for name, uri in report.outputs.items())
    return "\n".join(lines)


INGEST_SERVICE_NAME = "achieveit-sync-ingest"


def build_ingest_service(settings: IngestSettings, *, session: Any = None) -> IngestService:
    """Every collaborator of the ingest, from its settings (one boto3 session)."""
    import boto3
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
    )

    from achieveit_sync.api_key import SecretsManagerApiKey
    from achieveit_sync.ingest.checkpoints import DynamoDbCheckpoints

    session = session or boto3.session.Session()
    dynamodb = session.client("dynamodb")
    api_key = SecretsManagerApiKey(
        settings.api_key_secret,
        max_age_seconds=settings.secret_max_age_seconds,
        secrets_client=session.client("secretsmanager"),
    )
    return IngestService(
        settings=settings,
        client=AchieveItClient(settings.client, api_key),
        storage=S3Storage(session.client("s3")),
        checkpoints=DynamoDbCheckpoints(settings.checkpoint_table, dynamodb),
        sqs=session.client("sqs"),
        notifier=SnsNotifier(session.client("sns"), settings.notification_topic_arn),
        persistence=DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table, boto3_client=dynamodb
        ),
        idempotency_config=IdempotencyConfig(
            event_key_jmespath="[bucket, key, versionId, etag, resume]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=settings.idempotency_expiry_seconds,
        ),
    )
