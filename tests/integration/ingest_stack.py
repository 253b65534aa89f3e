"""The ingest stack on moto (S3, SQS, DynamoDB, Secrets Manager, SNS) and the sandbox, driven
the way Lambda drives it: S3 notifies SQS, messages are handed over as SQS batch events, the
failed ones come back, the good ones are deleted."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from achieveit_sandbox import SandboxServer
from achieveit_sandbox.lambda_local import sqs_record
from achieveit_sync.ingest.lambda_adapter import IngestLambda, build_ingest_lambda
from achieveit_sync.settings import ClientSettings, IngestSettings, RetrySettings
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.conftest import FakeLambdaContext

REGION = "us-east-1"
BUCKET = "achieveit-sync-drop-123456789012-a1b2c3d4e5f6"
SECRET_NAME = "achieveit-sync/api-key"


@dataclass
class IngestStack:
    sandbox: SandboxServer
    batch_size: int = 500
    max_attempts: int = 4
    overrides: dict[str, Any] = field(default_factory=dict)
    """Other IngestSettings fields (body_format, bounds, time_margin_seconds, ...)."""
    session: Any = field(init=False)
    service: IngestLambda = field(init=False)
    _in_flight: list[dict[str, Any]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.session = boto3.session.Session(region_name=REGION)
        self.s3 = self.session.client("s3")
        self.sqs = self.session.client("sqs")
        self.dynamodb = self.session.client("dynamodb")
        self.sns = self.session.client("sns")
        secrets = self.session.client("secretsmanager")
        secrets.create_secret(Name=SECRET_NAME, SecretString=self.sandbox.api_key)
        self.dlq_url = self.sqs.create_queue(QueueName="ingest-dlq")["QueueUrl"]
        dlq_arn = self._queue_arn(self.dlq_url)
        self.queue_url = self.sqs.create_queue(
            QueueName="ingest",
            Attributes={
                "VisibilityTimeout": "5400",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}
                ),
            },
        )["QueueUrl"]
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        self.s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": self._queue_arn(self.queue_url),
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}
                        },
                    }
                ]
            },
        )
        self.dynamodb.create_table(
            TableName="idempotency",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        self.dynamodb.create_table(
            TableName="checkpoints",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "file", "AttributeType": "S"},
                {"AttributeName": "part", "AttributeType": "N"},
            ],
            KeySchema=[
                {"AttributeName": "file", "KeyType": "HASH"},
                {"AttributeName": "part", "KeyType": "RANGE"},
            ],
        )
        self.topic_arn = self.sns.create_topic(Name="ingest-notifications")["TopicArn"]
        self.inbox_url = self.sqs.create_queue(QueueName="notification-inbox")["QueueUrl"]
        self.sns.subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=self._queue_arn(self.inbox_url)
        )
        self.settings = IngestSettings(
            queue_url=self.queue_url,
            idempotency_table="idempotency",
            checkpoint_table="checkpoints",
            api_key_secret=SECRET_NAME,
            client=ClientSettings(
                base_url=self.sandbox.base_url,
                ca_bundle=self.sandbox.ca_file,
                read_timeout=5,
                retry=RetrySettings(
                    max_attempts=self.max_attempts,
                    backoff_base=0.01,
                    backoff_cap=0.05,
                    max_retry_after=2,
                ),
            ),
            notification_topic_arn=self.topic_arn,
            batch_size=self.batch_size,
            **self.overrides,
        )
        self.service = build_ingest_lambda(self.settings, session=self.session)
        self._drain_test_events()

    # -- acting ---------------------------------------------------------------------------

    def drop(self, key: str, body: bytes) -> str:
        """Put a file under ``key``; returns its version id."""
        return str(self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)["VersionId"])

    def deliver(
        self,
        *,
        context: FakeLambdaContext | None = None,
        copies: int = 1,
        rounds: int = 30,
        must_drain: bool = True,
        handler: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Hand queued messages to the ingest as Lambda would, until the queue is empty.

        ``copies`` hands each event over that many times (SQS is at-least-once). Failed
        messages are made visible again at once instead of after the visibility timeout.
        """
        responses = []
        for _ in range(rounds):
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return responses
            self._in_flight = messages
            event = {"Records": [self._record(m) for m in messages]}
            run = handler or (lambda e, c: dict(self.service.handle(e, c)))
            for _ in range(copies):  # at-least-once: the same event may arrive again
                try:
                    response = run(event, context or FakeLambdaContext())
                except BatchProcessingError:
                    # Every record failed: Powertools raises, so Lambda returns them all.
                    response = {
                        "batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages]
                    }
                responses.append(response)
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] in failed:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=0,
                    )
                else:
                    self.sqs.delete_message(
                        QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
        if must_drain:
            raise AssertionError(f"the queue did not drain in {rounds} rounds")
        return responses

    def release_crashed_messages(self) -> None:
        """What SQS does when a crashed invocation's messages time out: hand them out again."""
        for message in self._in_flight:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        self._in_flight = []

    def expire_in_progress_records(self) -> None:
        """What the passing of a crashed invocation's timeout does to its idempotency
        record: its in-progress lease runs out."""
        for item in self.dynamodb.scan(TableName="idempotency")["Items"]:
            if "in_progress_expiration" in item:
                self.dynamodb.update_item(
                    TableName="idempotency",
                    Key={"id": item["id"]},
                    UpdateExpression="SET in_progress_expiration = :past",
                    ExpressionAttributeValues={":past": {"N": "1"}},
                )

    def put_secret(self, value: str) -> None:
        self.session.client("secretsmanager").put_secret_value(
            SecretId=SECRET_NAME, SecretString=value
        )

    # -- looking --------------------------------------------------------------------------

    def report(self, key: str) -> dict[str, Any]:
        body = self.s3.get_object(Bucket=BUCKET, Key=f"reports/{key}.json")["Body"].read()
        return json.loads(body)  # type: ignore[no-any-return]

    def raw(self, key: str) -> bytes:
        """An object's bytes (gzip-compressed outputs, under a ``.gz`` key, decompressed)."""
        body: bytes = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return gzip.decompress(body) if key.endswith(".gz") else body

    def text(self, key: str) -> str:
        """An object's text, as UTF-8."""
        return self.raw(key).decode("utf-8")

    def keys(self, prefix: str = "") -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def notifications(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.inbox_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        return [json.loads(m["Body"]) for m in messages]

    def dead_letters(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    # -- plumbing -------------------------------------------------------------------------

    def _queue_arn(self, url: str) -> str:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def _drain_test_events(self) -> None:
        """S3 sends s3:TestEvent when notifications are configured; the ingest ignores it."""
        self.deliver()

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return sqs_record(message, self._queue_arn(self.queue_url), REGION)


def unique_key(folder: str, extension: str) -> str:
    return f"incoming/{folder}/file-{uuid.uuid4().hex[:8]}.{extension}"
