"""``achieveit-sync smoke``: after ``sam deploy``, prove the deployed stack works end to end.

1. Ingest: drop a sample file under the stack's progress prefix, wait for its report and print
   it. The default sample is a header without rows: it travels the whole way (S3 notification,
   queue, ingest function, report, archive) and sends nothing to AchieveIt.
2. Backup: invoke the export function for one plan (synchronously, once: an invoke is never
   retried, it would run a second backup), then check that ``latest.json`` names the backup
   this run made and that its manifest says it is complete. This is what proves the API key,
   the base URL and the plan.

The last line says ``SMOKE TEST PASSED`` or ``SMOKE TEST FAILED: <why>``; the exit code is 0 or
1 (2 when the stack or its outputs cannot be found). The resources come from the stack's
outputs (``--stack``) or are named one by one.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from achieveit_sync.backup.documents import (
    BackupManifest,
    DocumentError,
    LatestPointer,
    PlanStatus,
    latest_key,
)
from achieveit_sync.errors import AchieveItSyncError, ConfigurationError
from achieveit_sync.storage import ObjectGoneError, S3Storage

SAMPLE_FILE = b"External ID,Status,Metric Value,As Of Date,Comment\r\n"
"""A header and no rows: processed and reported like any file, and nothing reaches AchieveIt."""
SAMPLE_FOLDER = "achieveit-sync-smoke/"
PASSED = "SMOKE TEST PASSED"
FAILED = "SMOKE TEST FAILED"
# The stack outputs the smoke test reads (template.yaml, Outputs).
STACK_OUTPUTS = {
    "drop_bucket": "DropBucketName",
    "progress_prefix": "ProgressDropPrefix",
    "backup_bucket": "BackupBucketName",
    "export_function": "ExportFunctionName",
}


class SmokeStepError(AchieveItSyncError):
    """One step of the smoke test did not do what a working stack does."""


@dataclass(frozen=True)
class StackResources:
    drop_bucket: str
    progress_prefix: str
    """The key prefix progress files go under (``incoming/progress/``)."""
    backup_bucket: str
    export_function: str

    @classmethod
    def from_outputs(cls, stack_name: str, outputs: Mapping[str, str]) -> StackResources:
        missing = [name for name in STACK_OUTPUTS.values() if not outputs.get(name)]
        if missing:
            raise ConfigurationError(
                f"stack '{stack_name}' has no output {', '.join(missing)}: is it an "
                "achieveit-sync stack, deployed from this version of template.yaml?"
            )
        drop_uri = outputs["ProgressDropPrefix"]
        bucket, _, prefix = drop_uri.removeprefix("s3://").partition("/")
        if not drop_uri.startswith("s3://") or bucket != outputs["DropBucketName"]:
            raise ConfigurationError(f"unexpected ProgressDropPrefix output: {drop_uri}")
        return cls(
            drop_bucket=bucket,
            progress_prefix=prefix,
            backup_bucket=outputs["BackupBucketName"],
            export_function=outputs["ExportFunctionName"],
        )


def stack_resources(cloudformation: Any, stack_name: str) -> StackResources:
    """The resources an achieveit-sync stack's outputs name."""
    from botocore.exceptions import ClientError

    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        raise ConfigurationError(
            f"cannot read stack '{stack_name}': {exc.response['Error'].get('Message', exc)} "
            "(check the name, AWS_REGION and your credentials)"
        ) from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return StackResources.from_outputs(stack_name, outputs)


@dataclass
class SmokeTest:
    resources: StackResources
    storage: S3Storage
    lambda_client: Any
    out: IO[str]
    timeout_seconds: float = 300.0
    poll_seconds: float = 5.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def run(self, plan_id: str, *, sample: bytes = SAMPLE_FILE, sample_name: str = "") -> bool:
        """Both steps; prints as it goes and ends with the pass/fail line."""
        try:
            report = self.ingest(sample, sample_name)
            outcome = self.backup(plan_id)
        except SmokeStepError as exc:
            self._say(f"{FAILED}: {exc}")
            return False
        self._say(
            f"{PASSED}: {report['source'].get('key', 'the sample')} was ingested "
            f"({report['status']}) and plan {plan_id} was backed up "
            f"({outcome['status']}, {outcome['items']:,} items)"
        )
        return True

    def ingest(self, sample: bytes, sample_name: str = "") -> dict[str, Any]:
        resources = self.resources
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        name = sample_name or "sample.csv"
        key = f"{resources.progress_prefix}{SAMPLE_FOLDER}{stamp}-{secrets.token_hex(4)}-{name}"
        self.storage.put_bytes(resources.drop_bucket, key, sample, "text/csv")
        self._say(f"1/2 ingest: dropped s3://{resources.drop_bucket}/{key}")
        if sample == SAMPLE_FILE:
            self._say("    (a header and no rows: nothing is sent to AchieveIt)")
        from achieveit_sync.ingest.outputs import REPORTS_PREFIX, output_key

        report_key = output_key(REPORTS_PREFIX, key, ".json")
        self._say(
            f"    waiting up to {self.timeout_seconds:.0f} s for "
            f"s3://{resources.drop_bucket}/{report_key}"
        )
        report = self._wait_for_json(resources.drop_bucket, report_key)
        if not isinstance(report, dict):
            raise SmokeStepError(
                f"no report for the sample file after {self.timeout_seconds:.0f} s: check the "
                "ingest function's log group and the IngestDeadLetterQueue (README, First deploy)"
            )
        self._say("    report:")
        self._say("\n".join("    " + line for line in json.dumps(report, indent=2).splitlines()))
        from achieveit_sync.ingest.report import StoredReport

        try:
            stored = StoredReport.from_dict(report)
        except ValueError as exc:
            raise SmokeStepError(f"the sample file's report cannot be read: {exc}") from None
        if not stored.finished:
            reason = stored.file_error or stored.stop_reason
            raise SmokeStepError(f"the sample file's report says {stored.status}: {reason}")
        self._say(f"    ok: {stored.status}")
        return report

    def backup(self, plan_id: str) -> dict[str, Any]:
        resources = self.resources
        event = {"plans": [plan_id]}
        self._say(f"2/2 backup: invoking {resources.export_function} with {json.dumps(event)}")
        answer = self.lambda_client.invoke(
            FunctionName=resources.export_function,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        payload = json.loads(answer["Payload"].read() or b"null")
        if answer.get("FunctionError"):
            message = payload.get("errorMessage") if isinstance(payload, dict) else payload
            raise SmokeStepError(f"the export function failed: {message}")
        plans = payload.get("plans") if isinstance(payload, dict) else None
        if not plans:
            raise SmokeStepError(f"the export function backed up nothing: {payload}")
        [outcome] = plans
        if not _succeeded(outcome.get("status")):
            raise SmokeStepError(
                f"plan {plan_id}: {outcome.get('status')} ({outcome.get('error')})"
            )
        self._say(f"    {plan_id}: {outcome['status']}, {outcome['items']:,} items")
        self._check_latest(plan_id, str(outcome.get("manifest") or ""))
        return dict(outcome)

    def _check_latest(self, plan_id: str, manifest_uri: str) -> None:
        bucket = self.resources.backup_bucket
        key = latest_key(plan_id)
        try:
            latest = LatestPointer.from_json(self._read_json(bucket, key), plan_id)
        except DocumentError:
            raise SmokeStepError(f"s3://{bucket}/{key} is missing or names no manifest") from None
        if manifest_uri != f"s3://{bucket}/{latest.manifest}":
            raise SmokeStepError(
                f"s3://{bucket}/{key} names {latest.manifest}, not this run's backup "
                f"({manifest_uri})"
            )
        try:
            complete = BackupManifest.from_json(self._read_json(bucket, latest.manifest)).complete
        except DocumentError:
            complete = False
        if not complete:
            raise SmokeStepError(f"{manifest_uri} does not say the backup is complete")
        self._say(f"    latest.json: s3://{bucket}/{key} -> {latest.manifest} (complete)")

    def _wait_for_json(self, bucket: str, key: str) -> Any:
        deadline = self.clock() + self.timeout_seconds
        while True:
            document = self._read_json(bucket, key)
            if document is not None or self.clock() >= deadline:
                return document
            self.sleep(self.poll_seconds)

    def _read_json(self, bucket: str, key: str) -> Any:
        try:
            return json.loads(self.storage.get_bytes(bucket, key))
        except ObjectGoneError:
            return None

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)


def _succeeded(status: object) -> bool:
    """Whether an export function's ``status`` for a plan is one of a backup made."""
    return any(status == known for known in PlanStatus if known.succeeded)


# -- the command line -------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack", metavar="NAME", help="the stack's name: its outputs name the resources"
    )
    parser.add_argument("--plan", required=True, metavar="PLAN_ID", help="the plan to back up")
    parser.add_argument("--region", help="the stack's region (default: AWS_REGION, your profile)")
    parser.add_argument(
        "--file",
        type=Path,
        metavar="PATH",
        help="drop this file instead of the sample (a header, no rows); its rows ARE sent",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, metavar="SECONDS", help="wait for the report"
    )
    parser.add_argument(
        "--poll-seconds", type=float, default=5.0, metavar="SECONDS", help=argparse.SUPPRESS
    )
    named = parser.add_argument_group("or name the resources instead of --stack")
    named.add_argument("--drop-bucket", metavar="BUCKET")
    named.add_argument("--backup-bucket", metavar="BUCKET")
    named.add_argument("--export-function", metavar="NAME")
    named.add_argument(
        "--progress-prefix", default="incoming/progress/", metavar="PREFIX", help=argparse.SUPPRESS
    )


def run(args: argparse.Namespace, *, out: IO[str] = sys.stdout) -> int:
    """The ``smoke`` subcommand; 0 passed, 1 failed, 2 the resources cannot be found."""
    import boto3
    from botocore.config import Config

    from achieveit_sync.settings import aws_region

    session = boto3.session.Session(region_name=args.region or aws_region())
    resources = _resources_from(args, session)
    # One attempt, and long enough for a whole backup: a retried invoke would back up again.
    invoke_config = Config(read_timeout=910, connect_timeout=10, retries={"max_attempts": 1})
    sample, sample_name = SAMPLE_FILE, ""
    if args.file is not None:
        if not args.file.is_file():
            raise ConfigurationError(f"no such file: {args.file}")
        sample, sample_name = args.file.read_bytes(), args.file.name
    where = f"stack '{args.stack}'" if args.stack else "the named resources"
    print(f"achieveit-sync smoke test of {where} ({session.region_name})", file=out)
    smoke = SmokeTest(
        resources,
        storage=S3Storage(session.client("s3")),
        lambda_client=session.client("lambda", config=invoke_config),
        out=out,
        timeout_seconds=args.timeout,
        poll_seconds=args.poll_seconds,
    )
    return 0 if smoke.run(args.plan, sample=sample, sample_name=sample_name) else 1


def _resources_from(args: argparse.Namespace, session: Any) -> StackResources:
    named = (args.drop_bucket, args.backup_bucket, args.export_function)
    if args.stack and any(named):
        raise ConfigurationError("give --stack, or the resources by name, not both")
    if args.stack:
        return stack_resources(session.client("cloudformation"), args.stack)
    if not all(named):
        raise ConfigurationError(
            "give --stack NAME, or all of --drop-bucket, --backup-bucket and --export-function"
        )
    return StackResources(
        drop_bucket=args.drop_bucket,
        progress_prefix=args.progress_prefix,
        backup_bucket=args.backup_bucket,
        export_function=args.export_function,
    )
