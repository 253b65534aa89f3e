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
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote_plus

from achieveit_sync.client import AchieveItClient
from achieveit_sync.errors import AchieveItSyncError, ConfigurationError
from achieveit_sync.ingest.checkpoints import CheckpointStore, VersionOrder
from achieveit_sync.ingest.outputs import RowsSpool, output_key
from achieveit_sync.ingest.pipeline import (
    DEFAULT_MAX_ROWS,
    FileSource,
    IngestOptions,
    ingest_file,
)
from achieveit_sync.ingest.reading import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_LINES,
    FileFormat,
    ReadLimits,
)
from achieveit_sync.ingest.report import FileReport, FileStatus, StopReason
from achieveit_sync.ingest.routing import INCOMING_PREFIX, kind_for_key, kind_reason_for_key
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
    max_rows: int = DEFAULT_MAX_ROWS
    max_lines: int = DEFAULT_MAX_LINES
    max_bytes: int = DEFAULT_MAX_BYTES

    @property
    def ingest_options(self) -> IngestOptions:
        return IngestOptions(
            batch_size=self.batch_size,
            body_format=self.body_format,
            max_rows=self.max_rows,
            limits=ReadLimits(max_lines=self.max_lines, max_bytes=self.max_bytes),
        )

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
            max_rows=whole_number("INGEST_MAX_ROWS", DEFAULT_MAX_ROWS),
            max_lines=whole_number("INGEST_MAX_LINES", DEFAULT_MAX_LINES),
            max_bytes=whole_number("INGEST_MAX_BYTES", DEFAULT_MAX_BYTES),
        )


class Notifier(Protocol):
    def notify(self, subject: str, message: str) -> bool:
        """Send the notification; ``False`` when it could not be sent (never raises)."""
        ...


@dataclass
class SnsNotifier:
    client: SNSClient
    topic_arn: str | None

    def notify(self, subject: str, message: str) -> bool:
        if not self.topic_arn:
            return True
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.publish(
                TopicArn=self.topic_arn,
                Subject=sns_subject(subject),
                Message=_printable(message)[:_MAX_MESSAGE_CHARS],
            )
        except (BotoCoreError, ClientError) as exc:
            # The file is handled and its report stored: a lost notification is logged and
            # counted (NotificationsFailed, with an alarm), never a reason to redo the file.
            log.error("notification not sent", extra={"subject": subject, "error": str(exc)})  # noqa: TRY400
            return False
        return True


_MAX_SUBJECT_CHARS = 99  # SNS: fewer than 100 characters
_MAX_MESSAGE_CHARS = 200_000  # SNS allows 256 KB; the message lists a handful of rows
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_NOT_SUBJECT_TEXT = re.compile(r"[^\x20-\x7e]+")
_SURROGATES = re.compile("[\ud800-\udfff]")


def sns_subject(text: str) -> str:
    """A Subject SNS accepts: ASCII (accents transliterated, other characters as ``?``),
    no line breaks or control characters, starting with a letter, digit or punctuation,
    under 100 characters. SNS refuses the whole Publish call otherwise."""
    import unicodedata

    spaced = _CONTROL_CHARACTERS.sub(" ", _printable(text))  # line breaks, tabs
    decomposed = unicodedata.normalize("NFKD", spaced)
    ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    subject = " ".join(_NOT_SUBJECT_TEXT.sub("?", ascii_text).split())
    if len(subject) > _MAX_SUBJECT_CHARS:
        subject = subject[: _MAX_SUBJECT_CHARS - 3] + "..."
    return subject or "AchieveIt ingest"


def _printable(text: str) -> str:
    """``text`` that encodes as UTF-8: lone surrogates shown as ``\\udXXX``."""
    if _SURROGATES.search(text):
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


@dataclass(frozen=True)
class FileTask:
    """One object to process; ``resume`` counts continuations (0 for the S3 event),
    ``stalls`` the continuations in a row that settled no row."""

    ref: ObjectRef
    resume: int = 0
    size: int | None = None
    stalls: int = 0
    sequencer: str | None = None
    """S3's order of writes to this key (from the notification)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.ref.bucket,
            "key": self.ref.key,
            "versionId": self.ref.version_id,
            "etag": self.ref.etag,
            "resume": self.resume,
            "size": self.size,
            "stalls": self.stalls,
            "sequencer": self.sequencer,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> FileTask:
        return cls(
            ObjectRef(
                document["bucket"], document["key"], document.get("versionId"), document.get("etag")
            ),
            resume=int(document.get("resume", 0)),
            size=document.get("size"),
            stalls=int(document.get("stalls", 0)),
            sequencer=document.get("sequencer"),
        )


_RETRIED_HINT = (
    "the file is tried again by itself; rows already settled are not sent again. If it keeps "
    "failing, its message goes to the dead-letter queue after five tries: the function's log "
    "says why; fix that, then redrive the queue"
)
_STALLS_BEFORE_FAILING = 2
"""A first run may have started late in a batch; a continuation has a whole invocation.
Two runs in a row without progress mean the file cannot be handled in the time allowed."""


def tasks_in_message(body: Mapping[str, Any]) -> Iterator[FileTask]:
    """The files an SQS message asks for: an S3 notification, or our continuation."""
    from aws_lambda_powertools.utilities.data_classes import S3Event

    if body.get("Type") == "Notification" and isinstance(body.get("Message"), str):
        # S3 -> SNS -> SQS (a fan-out topic between the bucket and the queue)
        body = json.loads(body["Message"])
    if body.get("Event") == "s3:TestEvent":
        log.info("ignoring S3's test event", extra={"bucket": body.get("Bucket")})
        return
    if CONTINUATION_KEY in body:
        yield FileTask.from_dict(body[CONTINUATION_KEY])
        return
    if not isinstance(body.get("Records"), list):
        raise UnreadableMessageError("it holds no 'Records': not an S3 event notification")
    for record in S3Event(dict(body)).records:
        try:
            event_name = record.event_name
            s3_object = record.s3.get_object
            bucket = record.s3.bucket.name
            raw_key = s3_object.key
        except (KeyError, TypeError) as exc:
            raise UnreadableMessageError(f"a record lacks {exc}") from None
        if not event_name.startswith("ObjectCreated"):
            continue
        # Keys arrive URL-encoded ('+' for spaces); Powertools leaves record keys as sent.
        key = unquote_plus(raw_key)
        yield FileTask(
            ObjectRef(bucket, key, s3_object.version_id, s3_object.etag or None),
            size=s3_object.size,
            sequencer=s3_object.get("sequencer"),
        )


class UnreadableMessageError(AchieveItSyncError):
    """An SQS message that is not an S3 notification (nor our continuation)."""


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
    versions: VersionOrder
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
        if file_task.sequencer and not self.versions.claim(ref.uri, file_task.sequencer):
            log.warning(
                "a newer version of this file was handled already; this older one is skipped "
                "(its rows would overwrite newer ones)",
                extra={"file": ref.uri, "version": ref.version_id},
            )
            return {"status": "superseded"}
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
            with RowsSpool() as rejected, RowsSpool() as ambiguous:
                report = ingest_file(
                    self._source(file_task),
                    client=self.client,
                    rejected_sink=rejected.sink,
                    ambiguous_sink=ambiguous.sink,
                    checkpoints=self.checkpoints,
                    options=self.settings.ingest_options,
                    should_stop=self._out_of_time,
                )
                return self._conclude(file_task, report, rejected, ambiguous)
        except RetryLaterError:
            raise
        except Exception as exc:
            # Whatever failed (S3, DynamoDB, a bug), the file gets a report and a notification
            # before its message goes back to the queue, and so before any dead-letter queue.
            self._report_failure(file_task, report, exc)
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
        self, task: FileTask, report: FileReport, rejected: RowsSpool, ambiguous: RowsSpool
    ) -> dict[str, Any]:
        ref = task.ref
        bucket = ref.bucket
        stalls = task.stalls + 1 if report.rows_settled_this_run == 0 else 0
        if report.stop_reason is StopReason.TIME and stalls >= _STALLS_BEFORE_FAILING:
            _fail_for_lack_of_progress(report, self.settings)
        report_key = output_key(REPORTS_PREFIX, ref.key, ".json")
        report.outputs["report"] = f"s3://{bucket}/{report_key}"
        if report.stop_reason is StopReason.ERROR and report.file_error is not None:
            report.file_error["hint"] = _RETRIED_HINT
        self._record_metrics(report)
        # A run that stopped (time, API unavailable or refusing, an error) is not finished:
        # the file stays where it is and a later run resumes it.
        finished = report.stop_reason is None
        if finished and report.file_format:
            self._write_lists(ref, report, rejected, ambiguous)
        if finished:
            report.outputs["archive"] = f"s3://{bucket}/{self._archive_key(ref)}"
        self.storage.put_bytes(bucket, report_key, report.to_json(), "application/json")
        if finished:
            self.storage.move(ref, report.outputs["archive"].removeprefix(f"s3://{bucket}/"))
        log.info(
            "file handled",
            extra={"file": ref.uri, "status": report.status.value, **report.counts.as_dict()},
        )
        if report.has_problems or report.status is FileStatus.FAILED:
            self._notify(report, ref)
        if report.stop_reason is StopReason.TIME:
            self._continue_later(task, stalls)
        elif report.stop_reason is StopReason.API_UNAVAILABLE:
            raise RetryLaterError(f"{ref.uri}: AchieveIt unavailable; SQS will redeliver")
        elif report.stop_reason is StopReason.API_REFUSED:
            raise RetryLaterError(
                f"{ref.uri}: AchieveIt refused the requests "
                f"({(report.file_error or {}).get('reason', '')})"
            )
        elif report.stop_reason is StopReason.ERROR:
            raise RetryLaterError(
                f"{ref.uri}: {(report.file_error or {}).get('reason', 'unexpected error')}"
            )
        return {
            "status": report.status.value,
            "counts": report.counts.as_dict(),
            "report": report.outputs["report"],
        }

    def _write_lists(
        self, ref: ObjectRef, report: FileReport, rejected: RowsSpool, ambiguous: RowsSpool
    ) -> None:
        """The rejected and ambiguous rows, next to the file (gzip if the source was)."""
        content_type = _CONTENT_TYPES[FileFormat(report.file_format or "csv")]
        for name, prefix, rows, spool in (
            ("rejected", REJECTED_PREFIX, report.counts.rejected, rejected),
            ("ambiguous", AMBIGUOUS_PREFIX, report.counts.ambiguous, ambiguous),
        ):
            key = output_key(prefix, ref.key)
            if rows:
                body = spool.contents(compressed=report.compressed)
                self.storage.put_stream(
                    ref.bucket,
                    key,
                    body,
                    "application/gzip" if report.compressed else content_type,
                )
                report.outputs[name] = f"s3://{ref.bucket}/{key}"
            else:
                # An earlier version's list must not outlive it: dropped back, it would
                # send rows again that this version has just published.
                self.storage.delete_if_present(ref.bucket, key)

    def _archive_key(self, ref: ObjectRef) -> str:
        now = datetime.now(UTC)
        key = output_key(f"{ARCHIVE_PREFIX}{now:%Y-%m-%d}/", ref.key)
        if self.storage.exists(ref.bucket, key):
            # An earlier version of this key was archived today: keep both, side by side.
            key = output_key(f"{ARCHIVE_PREFIX}{now:%Y-%m-%d}/{now:%H%M%S}/", ref.key)
        return key

    def _report_failure(self, task: FileTask, report: FileReport | None, exc: Exception) -> None:
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
        report_key = output_key(REPORTS_PREFIX, ref.key, ".json")
        report.outputs["report"] = f"s3://{ref.bucket}/{report_key}"
        try:
            self.storage.put_bytes(ref.bucket, report_key, report.to_json(), "application/json")
        except Exception:
            log.exception("could not store the failed file's report", extra={"file": ref.uri})
            report.outputs.pop("report")
        self._notify(report, ref)
        self._record_metrics(report)

    def _notify(self, report: FileReport, ref: ObjectRef) -> None:
        sent = self.notifier.notify(_subject(report, ref), _notification(report))
        if not sent and self._metrics is not None:
            from aws_lambda_powertools.metrics import MetricUnit

            self._metrics.add_metric("NotificationsFailed", MetricUnit.Count, 1)

    def _continue_later(self, task: FileTask, stalls: int) -> None:
        follow_up = FileTask(task.ref, resume=task.resume + 1, size=task.size, stalls=stalls)
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


def _fail_for_lack_of_progress(report: FileReport, settings: IngestSettings) -> None:
    report.status = FileStatus.FAILED
    report.stop_reason = None
    report.file_error = {
        "reason": f"{_STALLS_BEFORE_FAILING} runs in a row stopped at the time limit without "
        "settling a single row: reading and validating this file takes longer than one "
        "invocation allows",
        "hint": f"split it into smaller files (at most {settings.max_rows:,} rows each, fewer "
        "if its rows are long) and drop them again; rows already accepted are listed in this "
        "report",
    }


_GROUPS_IN_A_NOTIFICATION = 10


def _subject(report: FileReport, ref: ObjectRef) -> str:
    name = ref.key.rsplit("/", 1)[-1] or ref.key
    counts = report.counts
    if report.status is FileStatus.FAILED:
        return f"AchieveIt ingest failed: {name}"
    said = []
    if counts.rejected:
        said.append(f"{_rows(counts.rejected)} rejected")
    if counts.ambiguous:
        said.append(f"{_rows(counts.ambiguous)} to check (may have been applied)")
    return f"AchieveIt ingest: {', '.join(said) or report.status.value} in {name}"


def _rows(count: int) -> str:
    return f"{count:,} row" + ("" if count == 1 else "s")


def _notification(report: FileReport) -> str:
    """The same summary the report opens with, then where to look."""
    lines = [
        f"File: {report.source['name']}",
        f"Status: {report.status.value}",
        "",
        *report.summary_lines(groups=_GROUPS_IN_A_NOTIFICATION),
    ]
    if report.file_error and report.file_error.get("hint"):
        lines.append(f"What to do: {report.file_error['hint']}")
    lines.append("")
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
    from achieveit_sync.ingest.checkpoints import DynamoDbCheckpoints, DynamoDbVersionOrder

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
        versions=DynamoDbVersionOrder(settings.checkpoint_table, dynamodb),
        idempotency_config=IdempotencyConfig(
            event_key_jmespath="[bucket, key, versionId, etag, resume]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=settings.idempotency_expiry_seconds,
        ),
    )
