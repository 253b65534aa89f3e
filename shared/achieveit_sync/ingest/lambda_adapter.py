"""The ingest Lambda: SQS messages carrying S3 notifications become published files.

For each message (Powertools Batch reports partial failures, so one bad message never makes
SQS redeliver the good ones): skip S3's ``s3:TestEvent``; for each created object under
``incoming/``, process that exact version once (Powertools Idempotency on DynamoDB, keyed on
bucket, key, version or ETag, and the continuation number), then hand the report, the
rejected rows and the source to ``FileOutputs``. A file too large for one invocation stops
before the timeout and queues a continuation message; it resumes from its checkpoints.

What lives across warm invocations (clients, settings) is this object's; what belongs to
one invocation (the Lambda context, its metrics) travels as arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from achieveit_sync.client import AchieveItClient
from achieveit_sync.errors import AchieveItSyncError
from achieveit_sync.ingest.checkpoints import CheckpointStore, VersionOrder
from achieveit_sync.ingest.events import FileTask, UnreadableMessageError, tasks_in_message
from achieveit_sync.ingest.notifications import Notifier, file_message, file_subject
from achieveit_sync.ingest.outputs import FileOutputs
from achieveit_sync.ingest.pipeline import FileSource, IngestOptions, ingest_file
from achieveit_sync.ingest.reading import ReadLimits
from achieveit_sync.ingest.report import FileReport, FileStatus, StopReason
from achieveit_sync.ingest.routing import INCOMING_PREFIX, kind_for_key, kind_reason_for_key
from achieveit_sync.settings import IngestSettings
from achieveit_sync.storage import ObjectGoneError, S3Storage

if TYPE_CHECKING:
    from aws_lambda_powertools.metrics import Metrics
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency.persistence.base import (
        BasePersistenceLayer,
    )
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

INGEST_SERVICE_NAME = "achieveit-sync-ingest"
_STALLS_BEFORE_FAILING = 2
"""A first run may have started late in a batch; a continuation has a whole invocation.
Two runs in a row without progress mean the file cannot be handled in the time allowed."""
_RETRIED_HINT = (
    "the file is tried again by itself; rows already settled are not sent again. If it keeps "
    "failing, its message goes to the dead-letter queue after five tries: the function's log "
    "says why; fix that, then redrive the queue"
)


class RetryLaterError(AchieveItSyncError):
    """The file is not finished and its message should come back (SQS redelivery)."""


@dataclass(frozen=True)
class Invocation:
    """What one invocation brings: the clock it runs against, and where metrics go."""

    context: LambdaContext
    metrics: Metrics | None = None

    def out_of_time(self, margin_seconds: float) -> Callable[[], bool]:
        return lambda: self.context.get_remaining_time_in_millis() / 1000 < margin_seconds

    def count(self, name: str, value: float) -> None:
        if self.metrics is not None:
            from aws_lambda_powertools.metrics import MetricUnit

            self.metrics.add_metric(name, MetricUnit.Count, value)


@dataclass
class IngestLambda:
    settings: IngestSettings
    client: AchieveItClient
    storage: S3Storage
    checkpoints: CheckpointStore
    sqs: SQSClient
    notifier: Notifier
    persistence: BasePersistenceLayer
    idempotency_config: IdempotencyConfig
    versions: VersionOrder

    def __post_init__(self) -> None:
        from aws_lambda_powertools.utilities.idempotency import idempotent_function

        # Only the task is hashed: the invocation passes through to ``_process``.
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
        invocation = Invocation(context, metrics)
        try:
            return process_partial_response(
                event=dict(event),
                record_handler=lambda record: self._handle_record(record, invocation),
                processor=BatchProcessor(event_type=EventType.SQS),
                context=context,
            )
        finally:
            _api_metrics(invocation, self.client)

    def _handle_record(self, record: SQSRecord, invocation: Invocation) -> None:
        try:
            tasks = list(tasks_in_message(record.json_body))
        except (ValueError, UnreadableMessageError) as exc:
            # Never a file's problem, and redelivery will not fix it: said once, plainly,
            # then the message goes to the dead-letter queue for a person to look at.
            log.error(  # noqa: TRY400 - the reason is the message; no traceback needed
                "an SQS message is not an S3 notification; it goes to the dead-letter queue",
                extra={"message_id": record.message_id, "reason": str(exc)[:300]},
            )
            raise
        for task in tasks:
            if not task.ref.key.startswith(INCOMING_PREFIX):
                log.warning("ignoring an object outside incoming/", extra={"key": task.ref.key})
                continue
            if task.ref.key.endswith("/"):
                log.info("ignoring a folder placeholder", extra={"key": task.ref.key})
                continue
            self._process_once(task=task.as_dict(), invocation=invocation)

    def _process(self, task: dict[str, Any], invocation: Invocation) -> dict[str, Any]:
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
        if file_task.sequencer and not self.versions.claim(ref.uri, file_task.sequencer):
            log.warning(
                "a newer version of this file was handled already; this older one is skipped "
                "(its rows would overwrite newer ones)",
                extra={"file": ref.uri, "version": ref.version_id},
            )
            return {"status": "superseded"}
        with FileOutputs(self.storage, ref) as outputs:
            report: FileReport | None = None
            try:
                try:
                    self.storage.head(ref)
                except ObjectGoneError as exc:
                    log.info(
                        "the file is gone (already archived?); nothing to do",
                        extra={"file": ref.uri, "reason": str(exc.__cause__ or exc)},
                    )
                    return {"status": "gone"}
                report = ingest_file(
                    self._source(file_task),
                    client=self.client,
                    rejected_sink=outputs.rejected.sink,
                    ambiguous_sink=outputs.ambiguous.sink,
                    checkpoints=self.checkpoints,
                    options=ingest_options(self.settings),
                    should_stop=invocation.out_of_time(self.settings.time_margin_seconds),
                )
                return self._conclude(file_task, report, outputs, invocation)
            except RetryLaterError:
                raise
            except Exception as exc:
                # Whatever failed (S3, DynamoDB, a bug), the file gets a report and a
                # notification before its message goes back to the queue, and so before
                # any dead-letter queue.
                self._report_failure(outputs, file_task, report, exc, invocation)
                raise

    def _source(self, task: FileTask) -> FileSource:
        ref = task.ref
        return FileSource(
            name=ref.key,
            display_name=ref.uri,
            open=lambda: self.storage.open(ref),
            kind=kind_for_key(ref.key),
            kind_reason=kind_reason_for_key(ref.key),
            file_id=ref.identity,
            details={
                "bucket": ref.bucket,
                "key": ref.key,
                "versionId": ref.version_id,
                "etag": ref.etag,
                "size": task.size,
                "resume": task.resume,
            },
        )

    def _conclude(
        self, task: FileTask, report: FileReport, outputs: FileOutputs, invocation: Invocation
    ) -> dict[str, Any]:
        stalls = task.stalls + 1 if report.rows_settled_this_run == 0 else 0
        if report.stop_reason is StopReason.TIME and stalls >= _STALLS_BEFORE_FAILING:
            _fail_for_lack_of_progress(report, self.settings)
        if report.stop_reason is StopReason.ERROR and report.file_error is not None:
            report.file_error["hint"] = _RETRIED_HINT
        # A run that stopped (time, API unavailable or refusing, an error) is not finished:
        # the file stays where it is and a later run resumes it.
        outputs.finish(report, finished=report.stop_reason is None)
        _file_metrics(invocation, report)
        log.info(
            "file handled",
            extra={"file": task.ref.uri, "status": report.status.value, **report.counts.as_dict()},
        )
        if report.has_problems or report.status is FileStatus.FAILED:
            self._notify(report, task, invocation)
        self._go_on(task, report, stalls)
        return {
            "status": report.status.value,
            "counts": report.counts.as_dict(),
            "report": report.outputs["report"],
        }

    def _go_on(self, task: FileTask, report: FileReport, stalls: int) -> None:
        """Queue the continuation, or fail the message so that SQS brings it back."""
        uri = task.ref.uri
        reason = (report.file_error or {}).get("reason", "")
        if report.stop_reason is StopReason.TIME:
            self.sqs.send_message(
                QueueUrl=self.settings.queue_url, MessageBody=task.continued(stalls=stalls)
            )
            log.info("queued a continuation", extra={"file": uri, "resume": task.resume + 1})
        elif report.stop_reason is StopReason.API_UNAVAILABLE:
            raise RetryLaterError(f"{uri}: AchieveIt unavailable; SQS will redeliver")
        elif report.stop_reason is StopReason.API_REFUSED:
            raise RetryLaterError(f"{uri}: AchieveIt refused the requests ({reason})")
        elif report.stop_reason is StopReason.ERROR:
            raise RetryLaterError(f"{uri}: {reason or 'unexpected error'}")

    def _report_failure(
        self,
        outputs: FileOutputs,
        task: FileTask,
        report: FileReport | None,
        exc: Exception,
        invocation: Invocation,
    ) -> None:
        """Best effort, after an error outside the pipeline's own handling: store a failed
        report and notify. Never raises (the original error is what matters)."""
        ref = task.ref
        message = self.client.scrub(f"{type(exc).__name__}: {exc}")[:300]
        log.error("file failed with an unexpected error", extra={"file": ref.uri, "error": message})
        if report is None:
            report = FileReport(source={"name": ref.uri, "bucket": ref.bucket, "key": ref.key})
        report.status = FileStatus.FAILED
        report.stop_reason = StopReason.ERROR
        report.file_error = {
            "reason": f"an unexpected error stopped the run ({message})",
            "hint": _RETRIED_HINT,
            "errorType": type(exc).__name__,
            "message": message,
        }
        try:
            outputs.write_report(report)
        except Exception:
            log.exception("could not store the failed file's report", extra={"file": ref.uri})
            report.outputs.pop("report", None)
        self._notify(report, task, invocation)
        _file_metrics(invocation, report)

    def _notify(self, report: FileReport, task: FileTask, invocation: Invocation) -> None:
        sent = self.notifier.notify(file_subject(report, task.ref.key), file_message(report))
        if not sent:
            invocation.count("NotificationsFailed", 1)


def ingest_options(settings: IngestSettings) -> IngestOptions:
    bounds = settings.bounds
    return IngestOptions(
        batch_size=settings.batch_size,
        body_format=settings.body_format,
        max_rows=bounds.max_rows,
        limits=ReadLimits(max_lines=bounds.max_lines, max_bytes=bounds.max_bytes),
    )


def _fail_for_lack_of_progress(report: FileReport, settings: IngestSettings) -> None:
    report.status = FileStatus.FAILED
    report.stop_reason = None
    report.file_error = {
        "reason": f"{_STALLS_BEFORE_FAILING} runs in a row stopped at the time limit without "
        "settling a single row: reading and validating this file takes longer than one "
        "invocation allows",
        "hint": f"split it into smaller files (at most {settings.bounds.max_rows:,} rows each, "
        "fewer if its rows are long) and drop them again; rows already accepted are listed in "
        "this report",
    }


def _file_metrics(invocation: Invocation, report: FileReport) -> None:
    counts = report.counts
    invocation.count("FilesProcessed", 1)
    invocation.count("RowsPublished", counts.published)
    invocation.count("RowsRejected", counts.rejected)
    invocation.count("RowsAmbiguous", counts.ambiguous)
    invocation.count(
        "AmbiguousBatches", sum(1 for r in report.requests if r.outcome == "ambiguous")
    )
    invocation.count("FilesFailed", int(report.status is FileStatus.FAILED))


def _api_metrics(invocation: Invocation, client: AchieveItClient) -> None:
    from achieveit_sync.observability import api_metrics

    stats = client.take_stats()
    if invocation.metrics is not None:
        api_metrics(invocation.metrics, stats)


def build_ingest_lambda(settings: IngestSettings, *, session: Any = None) -> IngestLambda:
    """Every collaborator of the ingest, from its settings (one boto3 session)."""
    import boto3
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
    )

    from achieveit_sync.api_key import SecretsManagerApiKey
    from achieveit_sync.ingest.checkpoints import DynamoDbCheckpoints, DynamoDbVersionOrder
    from achieveit_sync.ingest.notifications import SnsNotifier

    session = session or boto3.session.Session()
    dynamodb = session.client("dynamodb")
    api_key = SecretsManagerApiKey(
        settings.api_key_secret,
        max_age_seconds=settings.secret_max_age_seconds,
        secrets_client=session.client("secretsmanager"),
    )
    return IngestLambda(
        settings=settings,
        client=AchieveItClient(settings.client, api_key),
        storage=S3Storage(session.client("s3")),
        checkpoints=DynamoDbCheckpoints(settings.checkpoint_table, dynamodb),
        sqs=session.client("sqs"),
        notifier=SnsNotifier(session.client("sns"), settings.notification_topic_arn),
        persistence=DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table, boto3_client=dynamodb
        ),
        versions=DynamoDbVersionOrder(settings.checkpoint_table, dynamodb),
        idempotency_config=IdempotencyConfig(
            event_key_jmespath="[bucket, key, versionId, etag, resume]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=settings.idempotency_expiry_seconds,
        ),
    )
