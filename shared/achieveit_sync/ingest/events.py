"""What an SQS message asks the ingest to do: S3 notifications (directly, or wrapped by SNS)
name the files; a continuation names a file to resume."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from achieveit_sync.errors import AchieveItSyncError
from achieveit_sync.storage import ObjectRef

log = logging.getLogger(__name__)

CONTINUATION_KEY = "achieveitSyncContinuation"


class UnreadableMessageError(AchieveItSyncError):
    """An SQS message that is not an S3 notification (nor our continuation)."""


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

    def continued(self, *, stalls: int) -> str:
        """The SQS message body that resumes this file in a new invocation."""
        follow_up = FileTask(
            self.ref, self.resume + 1, self.size, stalls=stalls, sequencer=self.sequencer
        )
        return json.dumps({CONTINUATION_KEY: follow_up.as_dict()})


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
