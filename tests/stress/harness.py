"""Load, fault and crash runs of the ingest on moto and the sandbox, with their figures.

A run drops many files at once, then drains the queue with ``workers`` concurrent "Lambdas"
(each its own IngestLambda, as separate containers would be), optionally delivering every
message 1-3 times in shuffled order and killing invocations at random points. Afterwards it
compares what the sandbox stored with what the files held, row by row.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
import re
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from achieveit_sandbox import SandboxServer
from achieveit_sandbox.lambda_local import LocalLambdaContext, sqs_record
from achieveit_sync.ingest.lambda_adapter import IngestLambda, build_ingest_lambda
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from tests.integration.ingest_stack import BUCKET, IngestStack

FIGURES = Path(__file__).resolve().parents[2] / ".stress" / "figures.jsonl"


class Killed(BaseException):
    """Raised inside an invocation to simulate the Lambda dying there."""


@dataclass
class DroppedFile:
    key: str
    body: bytes
    expected: set[tuple[str, str]]
    """(external ID, as-of date) of every valid row."""


@dataclass
class Figures:
    suite: str
    files: int = 0
    rows: int = 0
    valid_rows: int = 0
    faults_injected: int = 0
    kills: int = 0
    invocations: int = 0
    deliveries: int = 0
    retries: int = 0
    rows_stored: int = 0
    rows_lost: int = 0
    duplicates_stored: int = 0
    rows_reported_ambiguous: int = 0
    ambiguous_applied: int = 0
    unexpected_rows_stored: int = 0
    max_concurrent_requests: int = 0
    reports_written: int = 0
    dead_letters: int = 0
    redriven_from_dead_letters: int = 0
    secret_hits: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def record(self) -> None:
        FIGURES.parent.mkdir(exist_ok=True)
        with FIGURES.open("a") as handle:
            handle.write(json.dumps(asdict(self)) + "\n")


def metric_item_ids(sandbox: SandboxServer, plan_ids: list[str]) -> dict[str, list[str]]:
    """The external IDs of the items that track a metric, per plan."""
    with sandbox.organisation() as organisation:
        return {
            plan: [
                i.external_id
                for i in organisation.plans[plan].items
                if i.has_metric and i.external_id
            ]
            for plan in plan_ids
        }


def make_files(
    count: int,
    max_rows: int,
    plan_ids: list[str],
    plan_size: int,
    seed: int,
    metric_ids: dict[str, list[str]] | None = None,
) -> list[DroppedFile]:
    """A mix of kinds (every fourth file holds metric updates), formats and sizes; every
    (item, date) used once in the whole load; about 2% of rows invalid in ways the
    validator must catch."""
    rng = random.Random(seed)
    files = []
    for number in range(count):
        size = max_rows if number == 0 else rng.choice([1, 10, 100, 500, 1500, max_rows // 4])
        size = max(1, min(size, max_rows))
        as_of = date(2026, 1, 1) + timedelta(days=number)
        plan = plan_ids[number % len(plan_ids)]
        metric = metric_ids is not None and number % 4 == 3
        if metric:
            assert metric_ids is not None
            candidates = metric_ids[plan]
            size = min(size, len(candidates))
            start = rng.randrange(0, max(1, len(candidates) - size))
            ids = candidates[start : start + size]
        else:
            start = rng.randrange(0, max(1, plan_size - size))
            ids = [f"{plan}-{n:06d}" for n in range(start + 1, start + size + 1)]
        extension = rng.choice(["csv", "csv", "csv.gz", "json", "jsonl"])
        rows, expected = [], set()
        for position, external_id in enumerate(ids):
            bad = rng.random() < 0.02
            row: dict[str, Any] = {"externalId": external_id}
            if metric:
                row["metricValue"] = "20%" if bad else round(rng.uniform(0, 500), 2)
            else:
                row["status"] = (
                    "Sideways" if bad else rng.choice(["On Track", "at risk", "OFF TRACK"])
                )
                row["metricValue"] = round(rng.uniform(0, 500), 2)
            row["asOfDate"] = as_of.isoformat()
            row["comment"] = f"row {position}" if position % 3 else "=1+1"
            rows.append(row)
            if not bad:
                expected.add((external_id, as_of.isoformat()))
        folder = "metrics" if metric else "progress"
        files.append(
            DroppedFile(
                f"incoming/{folder}/load-{number:04d}.{extension}",
                _encode(rows, extension),
                expected,
            )
        )
    return files


def _encode(rows: list[dict[str, Any]], extension: str) -> bytes:
    if extension == "json":  # one element per line, so that line numbers mean something
        return ("[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n").encode()
    if extension == "jsonl":
        return "\n".join(json.dumps(r) for r in rows).encode()
    if "status" in rows[0]:
        lines = ["External ID,Status,Metric Value,As Of Date,Comment"]
        lines += [
            f"{r['externalId']},{r['status']},{r['metricValue']},{r['asOfDate']},{r['comment']}"
            for r in rows
        ]
    else:
        lines = ["External ID,Current Metric Value,As Of Date,Comment"]
        lines += [
            f"{r['externalId']},{r['metricValue']},{r['asOfDate']},{r['comment']}" for r in rows
        ]
    body = ("\r\n".join(lines) + "\r\n").encode()
    return gzip.compress(body) if extension.endswith(".gz") else body


@dataclass
class LoadRun:
    stack: IngestStack
    workers: int = 2
    max_copies: int = 1
    kill_probability: float = 0.0
    seed: int = 0
    max_rounds: int = 400

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self.kills = 0
        self.invocations = 0
        self.deliveries = 0
        self.retries = 0
        self._crashed: list[dict[str, Any]] = []
        self.redriven = 0
        # One service per worker: separate Lambda containers share nothing but AWS.
        self._services = [
            build_ingest_lambda(self.stack.settings, session=self.stack.session)
            for _ in range(self.workers)
        ]
        if self.kill_probability:
            for service in self._services:
                self._arm(service)

    def drain(self) -> None:
        rounds = 0
        while True:
            rounds += 1
            if rounds > self.max_rounds:
                raise AssertionError("the queue did not drain")
            visible = self._receive_all()
            if not visible:
                if not self._crashed:
                    if self._redrive_dead_letters():
                        continue
                    return
                # Time passes: the dead invocations' idempotency leases and their messages'
                # visibility timeouts run out, and SQS hands the messages out again.
                self.stack.expire_in_progress_records()
                for message in self._crashed:
                    self._release(message)
                self._crashed = []
                continue
            events = self._batches(visible)
            threads = [
                threading.Thread(target=self._worker, args=(index, events))
                for index in range(self.workers)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

    # -- internals ------------------------------------------------------------------------

    def _receive_all(self) -> list[dict[str, Any]]:
        messages: dict[str, dict[str, Any]] = {}
        for _ in range(100):
            batch = self.stack.sqs.receive_message(
                QueueUrl=self.stack.queue_url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                VisibilityTimeout=600,
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                messages[message["MessageId"]] = message
        return list(messages.values())

    def _redrive_dead_letters(self) -> int:
        """What the runbook says to do once the cause is fixed: move the dead-letter queue's
        messages back (files resume from their checkpoints)."""
        moved = 0
        for _ in range(100):
            messages = self.stack.sqs.receive_message(
                QueueUrl=self.stack.dlq_url, MaxNumberOfMessages=10
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                self.stack.sqs.send_message(
                    QueueUrl=self.stack.queue_url, MessageBody=message["Body"]
                )
                self.stack.sqs.delete_message(
                    QueueUrl=self.stack.dlq_url, ReceiptHandle=message["ReceiptHandle"]
                )
                moved += 1
        self.redriven += moved
        return moved

    def _batches(self, messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        deliveries = [m for m in messages for _ in range(self._rng.randint(1, self.max_copies))]
        self._rng.shuffle(deliveries)
        self.deliveries += len(deliveries)
        return [deliveries[i : i + 5] for i in range(0, len(deliveries), 5)]

    def _worker(self, index: int, batches: list[list[dict[str, Any]]]) -> None:
        service = self._services[index]
        arn = self.stack._queue_arn(self.stack.queue_url)
        while True:
            with self._lock:
                if not batches:
                    return
                batch = batches.pop()
                self.invocations += 1
            unique = {m["MessageId"]: m for m in batch}
            event = {"Records": [sqs_record(m, arn, "us-east-1") for m in unique.values()]}
            try:
                response = dict(service.handle(event, LocalLambdaContext()))
                failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            except BatchProcessingError:
                failed = set(unique)
            except Killed:
                with self._lock:
                    self.kills += 1
                    self._crashed.extend(unique.values())
                continue  # the messages stay in flight until their visibility times out
            with self._lock:
                self.retries += service.client.take_stats().failures
            for message_id, message in unique.items():
                if message_id in failed:
                    self._release(message)
                else:
                    self._delete(message)

    def _release(self, message: dict[str, Any]) -> None:
        # A duplicate's receipt handle may be stale by now: SQS then refuses the change.
        with contextlib.suppress(ClientError):
            self.stack.sqs.change_message_visibility(
                QueueUrl=self.stack.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )

    def _delete(self, message: dict[str, Any]) -> None:
        self.stack.sqs.delete_message(
            QueueUrl=self.stack.queue_url, ReceiptHandle=message["ReceiptHandle"]
        )

    def _arm(self, service: IngestLambda) -> None:
        """Make this 'Lambda' die at random checkpoint writes (between parts and around
        requests) and right after a request was applied (mid-batch)."""
        real_save = service.checkpoints.save
        real_send = service.client.send_submission
        rng = random.Random(self._rng.random())

        def save(file_id: str, record: Any) -> None:
            real_save(file_id, record)
            if rng.random() < self.kill_probability:
                raise Killed

        def send(submission: Any) -> Any:
            result = real_send(submission)
            if rng.random() < self.kill_probability:
                raise Killed
            return result

        service.checkpoints.save = save  # type: ignore[method-assign]
        service.client.send_submission = send  # type: ignore[method-assign]


def settle_figures(
    figures: Figures,
    stack: IngestStack,
    sandbox: SandboxServer,
    files: list[DroppedFile],
    secret: str,
    log_text: str,
) -> Figures:
    expected = set().union(*(f.expected for f in files))
    stored = Counter((u.external_id, u.as_of_date.isoformat()) for u in sandbox.stored_updates())
    reports = {f.key: stack.report(f.key) for f in files}
    ambiguous: set[tuple[str, str]] = set()
    for dropped in files:
        lines_to_keys = _line_keys(dropped)
        counted = reports[dropped.key]["counts"]["ambiguous"]
        if not counted:
            continue
        # Every ambiguous row is named in the ambiguous/ file (the report's list is capped).
        named = _ambiguous_lines(stack, dropped)
        ambiguous.update(lines_to_keys[line] for line in named)
        if len(named) != counted:
            figures.notes.append(f"{dropped.key}: {counted} ambiguous, {len(named)} named")
    figures.files = len(files)
    figures.rows = sum(len(_line_keys(f)) for f in files)
    figures.valid_rows = len(expected)
    figures.rows_stored = sum(1 for key in expected if stored[key] >= 1)
    figures.rows_lost = sum(1 for key in expected if stored[key] == 0 and key not in ambiguous)
    figures.duplicates_stored = sum(stored[key] - 1 for key in stored if stored[key] > 1)
    figures.rows_reported_ambiguous = len(ambiguous)
    figures.ambiguous_applied = sum(1 for key in ambiguous if stored[key] >= 1)
    figures.unexpected_rows_stored = sum(1 for key in stored if key not in expected)
    figures.max_concurrent_requests = sandbox.max_concurrent_requests
    figures.reports_written = len(reports)
    figures.dead_letters = stack.dead_letters()
    haystacks = [log_text] + [
        stack.text(key)
        for key in stack.keys()  # noqa: SIM118 - IngestStack.keys lists S3 keys
        if key.startswith(("reports/", "rejected/"))
    ]
    figures.secret_hits = sum(text.count(secret) for text in haystacks)
    duplicates_unreported = [key for key in stored if stored[key] > 1 and key not in ambiguous]
    if duplicates_unreported:
        figures.notes.append(f"{len(duplicates_unreported)} duplicates not named in a report")
    return figures


def _ambiguous_lines(stack: IngestStack, dropped: DroppedFile) -> list[int]:
    """The line numbers named in the file's ambiguous/ output (its Error column starts with
    'line N:')."""
    text = stack.text(f"ambiguous/{dropped.key}")
    return [int(found) for found in re.findall(r"line (\d+)(?: \(element \d+\))?: sent in", text)]


def _line_keys(dropped: DroppedFile) -> dict[int, tuple[str, str]]:
    """Line (or element) number -> (external ID, as-of date), for every row of the file."""
    body = gzip.decompress(dropped.body) if dropped.key.endswith(".gz") else dropped.body
    keys: dict[int, tuple[str, str]] = {}
    if dropped.key.endswith(".json"):  # element n starts on line n + 1
        return {
            n + 1: (r["externalId"], r["asOfDate"]) for n, r in enumerate(json.loads(body), start=1)
        }
    for number, line in enumerate(body.decode().splitlines(), start=1):
        if dropped.key.endswith(".jsonl"):
            row = json.loads(line)
            keys[number] = (row["externalId"], row["asOfDate"])
        elif number == 1:
            date_column = line.split(",").index("As Of Date")
        else:
            cells = line.split(",")
            keys[number] = (cells[0], cells[date_column])
    return keys


__all__ = ["BUCKET", "DroppedFile", "Figures", "Killed", "LoadRun", "make_files", "settle_figures"]
