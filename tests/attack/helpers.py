"""Helpers for the attack tests: realistic S3 notifications, and scanning everything the
stack wrote for a string."""

from __future__ import annotations

import contextlib
import gzip
import json
from typing import Any
from urllib.parse import quote_plus

from tests.integration.ingest_stack import BUCKET, IngestStack


def s3_event_body(
    key: str,
    *,
    version_id: str | None = None,
    etag: str = "0123456789abcdef0123456789abcdef",
    size: int = 100,
    bucket: str = BUCKET,
    event_name: str = "ObjectCreated:Put",
    sequencer: str = "0055AED6DCD90281E5",
) -> str:
    """An S3 notification as AWS writes it: the key URL-encoded with '+' for spaces."""
    obj: dict[str, Any] = {
        "key": quote_plus(key, safe="/"),
        "size": size,
        "eTag": etag,
        "sequencer": sequencer,
    }
    if version_id is not None:
        obj["versionId"] = version_id
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-east-1",
                    "eventTime": "2026-11-27T08:15:02.123Z",
                    "eventName": event_name,
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": "incoming",
                        "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                        "object": obj,
                    },
                }
            ]
        }
    )


def purge(stack: IngestStack) -> None:
    """Drop the notifications moto queued by itself (to send our own)."""
    while True:
        msgs = stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not msgs:
            return
        for m in msgs:
            stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=m["ReceiptHandle"])


def send(stack: IngestStack, body: str) -> None:
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)


def put(stack: IngestStack, key: str, body: bytes) -> tuple[str, str]:
    """Put without a notification being kept: returns (version id, etag)."""
    response = stack.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return str(response["VersionId"]), str(response["ETag"]).strip('"')


def all_output_text(stack: IngestStack) -> str:
    """Every object in the bucket (all versions), decompressed where gzip, as text."""
    texts = []
    versions = stack.s3.list_object_versions(Bucket=BUCKET).get("Versions", [])
    for v in versions:
        body = stack.s3.get_object(Bucket=BUCKET, Key=v["Key"], VersionId=v["VersionId"])[
            "Body"
        ].read()
        if body[:2] == b"\x1f\x8b":
            with contextlib.suppress(OSError):
                body = gzip.decompress(body)
        texts.append(body.decode("utf-8", "replace"))
    return "\n".join(texts)


def report_or_none(stack: IngestStack, key: str) -> dict[str, Any] | None:
    try:
        return stack.report(key)
    except stack.s3.exceptions.NoSuchKey:
        return None
