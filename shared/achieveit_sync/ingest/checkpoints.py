"""Per-request checkpoints: which rows of a file AchieveIt has settled, so a rerun never
re-sends them.

A file's valid rows are published in numbered parts. Before each request the rows it carries
are written down as *in flight*; after the answer they are *settled* (accepted, refused, or
ambiguous). A run that crashed between the two finds rows still in flight: it cannot know
whether AchieveIt applied them, so it reports them as "may have been applied" and does not
send them again. Every other unsettled row is sent; every settled row is skipped.

``DynamoDbCheckpoints`` keeps this in a table keyed by file and part (the ingest Lambda);
``InMemoryCheckpoints`` keeps it for one process (the CLI).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_MAX_MESSAGE_CHARS = 300
_MAX_RECORD_BYTES = 300_000
"""DynamoDB refuses items over 400 KB: a part whose record would pass this keeps shorter
messages and answers (the full ones are in the report written at the end of the run)."""
_SHORT_TEXT_CHARS = 80


@dataclass
class PartRecord:
    """What is known about one part of one file."""

    part: int
    rows: int = 0
    accepted: int = 0
    complete: bool = False
    """Every row of the part is settled; line lists of accepted rows are no longer kept."""
    accepted_lines: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    """Line -> the API's message, for rows AchieveIt refused."""
    ambiguous: dict[int, str] = field(default_factory=dict)
    """Line -> the request that carried it, for rows that may have been applied."""
    in_flight: list[int] = field(default_factory=list)
    in_flight_request: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    batch_size: int = 0
    """The batch size the parts were cut with (0: written before it was recorded)."""
    sent_earlier_lines: list[int] = field(default_factory=list)
    """Rows not sent because an earlier run sent the same row (the CLI's ledger)."""

    def settled_lines(self) -> set[int]:
        return {*self.accepted_lines, *self.refused, *self.ambiguous, *self.sent_earlier_lines}

    def to_json(self) -> str:
        """Lines are grouped under their message or request, which repeat: a part of 500
        rows refused for one reason stores that reason once."""
        text = self._to_json(_MAX_MESSAGE_CHARS, requests=self.requests)
        if len(text) > _MAX_RECORD_BYTES:
            shortened = [
                {**request, "response_body": str(request.get("response_body", ""))[:80]}
                for request in self.requests
            ]
            text = self._to_json(_SHORT_TEXT_CHARS, requests=shortened)
        return text

    def _to_json(self, message_chars: int, *, requests: list[dict[str, Any]]) -> str:
        return json.dumps(
            {
                "rows": self.rows,
                "batchSize": self.batch_size,
                "accepted": self.accepted,
                "complete": self.complete,
                "acceptedLines": [] if self.complete else self.accepted_lines,
                "refusedByMessage": _grouped(
                    {line: message[:message_chars] for line, message in self.refused.items()}
                ),
                "ambiguousByRequest": _grouped(self.ambiguous),
                "inFlight": self.in_flight,
                "inFlightRequest": self.in_flight_request,
                "requests": requests,
                "sentEarlierLines": self.sent_earlier_lines,
            },
            ensure_ascii=True,  # the length checked is then the size stored
        )

    @classmethod
    def from_json(cls, part: int, text: str) -> PartRecord:
        document = json.loads(text)
        if "refusedByMessage" in document:
            refused = _ungrouped(document["refusedByMessage"])
            ambiguous = _ungrouped(document["ambiguousByRequest"])
        else:  # written by an earlier version, line by line
            refused = {int(line): message for line, message in document["refused"].items()}
            ambiguous = {int(line): request for line, request in document["ambiguous"].items()}
        return cls(
            part=part,
            rows=document["rows"],
            accepted=document["accepted"],
            complete=document["complete"],
            accepted_lines=list(document["acceptedLines"]),
            refused=refused,
            ambiguous=ambiguous,
            in_flight=list(document["inFlight"]),
            in_flight_request=document["inFlightRequest"],
            requests=list(document["requests"]),
            batch_size=int(document.get("batchSize", 0)),
            sent_earlier_lines=list(document.get("sentEarlierLines", [])),
        )


def _grouped(by_line: dict[int, str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for line, text in by_line.items():
        groups.setdefault(text, []).append(line)
    return groups


def _ungrouped(groups: dict[str, list[int]]) -> dict[int, str]:
    return {line: text for text, lines in groups.items() for line in lines}


class CheckpointStore(Protocol):
    def load(self, file_id: str) -> dict[int, PartRecord]:
        """Every part recorded for ``file_id``, by part number."""
        ...

    def save(self, file_id: str, record: PartRecord) -> None:
        """Record ``record`` durably before returning."""
        ...


class InMemoryCheckpoints:
    """Checkpoints for one process (the CLI, and tests)."""

    def __init__(self) -> None:
        self._files: dict[str, dict[int, str]] = {}
        self.saves = 0

    def load(self, file_id: str) -> dict[int, PartRecord]:
        stored = self._files.get(file_id, {})
        return {part: PartRecord.from_json(part, text) for part, text in stored.items()}

    def save(self, file_id: str, record: PartRecord) -> None:
        self.saves += 1
        self._files.setdefault(file_id, {})[record.part] = record.to_json()


class FileCheckpoints:
    """Checkpoints on local disk, one folder per file (the CLI's ``publish``): a run stopped
    by an outage or Ctrl-C resumes where it stopped when the same command runs again, and
    never re-sends a row AchieveIt already answered.

    Each part is its own small JSON file, replaced atomically (write, then rename), so a
    crash leaves either the old record or the new one."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, file_id: str) -> Path:
        return self.root / hashlib.sha256(file_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def load(self, file_id: str) -> dict[int, PartRecord]:
        folder = self.folder(file_id)
        records = {}
        for path in folder.glob("part-*.json") if folder.is_dir() else ():
            part = int(path.stem.removeprefix("part-"))
            records[part] = PartRecord.from_json(part, path.read_text("utf-8"))
        return records

    def save(self, file_id: str, record: PartRecord) -> None:
        folder = self.folder(file_id)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{record.part:06d}.json"
        partial = path.with_suffix(".partial")
        partial.write_text(record.to_json(), "utf-8")
        partial.replace(path)

    def forget(self, file_id: str) -> None:
        """Drop what is recorded for ``file_id`` (``publish --restart``)."""
        folder = self.folder(file_id)
        for path in folder.glob("part-*") if folder.is_dir() else ():
            path.unlink()


class DynamoDbCheckpoints:
    """Checkpoints in a DynamoDB table: partition key ``file`` (S), sort key ``part`` (N),
    the record as JSON in ``payload``, and ``expiresAt`` for the table's TTL."""

    def __init__(self, table_name: str, client: DynamoDBClient, *, ttl_days: int = 30) -> None:
        self._table = table_name
        self._client = client
        self._ttl_seconds = ttl_days * 86400

    def load(self, file_id: str) -> dict[int, PartRecord]:
        records: dict[int, PartRecord] = {}
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="#file = :file",
            ExpressionAttributeNames={"#file": "file"},
            ExpressionAttributeValues={":file": {"S": file_id}},
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                part = int(item["part"]["N"])
                records[part] = PartRecord.from_json(part, item["payload"]["S"])
        return records

    def save(self, file_id: str, record: PartRecord) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                "file": {"S": file_id},
                "part": {"N": str(record.part)},
                "payload": {"S": record.to_json()},
                "expiresAt": {"N": str(int(time.time()) + self._ttl_seconds)},
            },
        )


class VersionOrder(Protocol):
    def claim(self, object_key: str, sequencer: str) -> bool:
        """Record that the version with ``sequencer`` of ``object_key`` is being handled;
        ``False`` when a newer version of that key already was (this one is stale)."""
        ...


class DynamoDbVersionOrder:
    """The newest S3 ``sequencer`` handled per key, in the checkpoint table (``file`` =
    ``newest#<bucket>/<key>``, ``part`` = 0).

    S3 delivers notifications at least once and in no particular order; for one key, the
    event with the larger sequencer is the later write (S3's documented way to order them:
    compare as hexadecimal strings after padding the shorter with leading zeros). A version
    older than one already handled must not be published after it: its rows would
    overwrite the newer ones in AchieveIt."""

    _WIDTH = 64

    def __init__(self, table_name: str, client: DynamoDBClient, *, ttl_days: int = 30) -> None:
        self._table = table_name
        self._client = client
        self._ttl_seconds = ttl_days * 86400

    def claim(self, object_key: str, sequencer: str) -> bool:
        padded = sequencer.upper().rjust(self._WIDTH, "0")
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "file": {"S": f"newest#{object_key}"},
                    "part": {"N": "0"},
                    "payload": {"S": padded},
                    "expiresAt": {"N": str(int(time.time()) + self._ttl_seconds)},
                },
                ConditionExpression="attribute_not_exists(payload) OR payload <= :mine",
                ExpressionAttributeValues={":mine": {"S": padded}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True
