"""Running a Lambda handler locally the way the Lambda service does: a context object with a
clock, and SQS messages handed over as batch events with partial failures honoured."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


class LocalLambdaContext:
    """The parts of the Lambda context our handlers use. Time runs down from ``timeout_ms``
    (real time, or ``ms_per_call`` per look when given, for deterministic tests)."""

    def __init__(
        self,
        timeout_ms: int = 900_000,
        *,
        ms_per_call: int | None = None,
        function_name: str = "achieveit-sync-local",
        request_id: str = "local-request-0001",
    ) -> None:
        self._deadline = time.monotonic() + timeout_ms / 1000
        self._remaining_ms = timeout_ms
        self._ms_per_call = ms_per_call
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self.memory_limit_in_mb = 512
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        if self._ms_per_call is None:
            return max(0, int((self._deadline - time.monotonic()) * 1000))
        remaining = self._remaining_ms
        self._remaining_ms = max(0, remaining - self._ms_per_call)
        return remaining


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message (as ReceiveMessage returns it) as a Lambda event record."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def drain_queue(
    sqs: Any,
    queue_url: str,
    handler: Handler,
    *,
    batch_size: int = 5,
    max_rounds: int = 50,
    context_factory: Callable[[], Any] = LocalLambdaContext,
) -> int:
    """Deliver the queue's messages to ``handler`` until it is empty, as Lambda's SQS event
    source does: delete what succeeded, return failures to the queue. Returns the number of
    invocations. A failure is retried at once here (not after the visibility timeout)."""
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    region = arn.split(":")[3]
    for invocations in range(max_rounds):
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=batch_size, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return invocations
        event = {"Records": [sqs_record(m, arn, region) for m in messages]}
        try:
            response = handler(event, context_factory())
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:  # noqa: BLE001 - Lambda returns every message of a failed batch
            failed = {m["MessageId"] for m in messages}
        for message in messages:
            if message["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    raise RuntimeError(f"the queue still had messages after {max_rounds} invocations")
