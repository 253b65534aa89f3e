"""``make demo``: the whole system on local stand-ins, end to end, in well under a minute.

moto in server mode plays S3, SQS, DynamoDB, SNS and Secrets Manager; the sandbox plays
AchieveIt with a small organisation. The resources and the functions' environment come from
template.yaml. Sample files are dropped under incoming/, S3 notifies the queue, and the real
handlers run on the queue's messages exactly as Lambda would (SQS batch events, a Lambda
context), then the backup handler runs on a schedule event; an item's status is changed in
AchieveIt and the backup runs again, and one of the template's named Athena queries
(status-changes-last-7-days) runs with DuckDB over the plan history those two backups wrote.
Everything started is stopped at the end, on Ctrl-C and on failure.

    python -m achieveit_sandbox.demo [--keep] [--output DIR]

With --keep the stack stays up: files copied into DIR/inbox/progress/ (or metrics/) are
uploaded to incoming/ and processed as they arrive, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from achieveit_sandbox.lambda_local import LocalLambdaContext, drain_queue
from achieveit_sandbox.local_stack import TEMPLATE, LocalStack
from achieveit_sandbox.model import Organisation
from achieveit_sandbox.seed import load_example_organisation
from achieveit_sandbox.server import SandboxServer

ROOT = TEMPLATE.parent
REGION = "us-east-1"
_STOP_AFTER_SECONDS = 3600
HISTORY_QUERY = "status-changes-last-7-days"


class Interrupted(Exception):  # noqa: N818 - it names what happened
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the stack running and process files dropped in DIR/inbox",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / ".demo",
        help="where reports, rejected rows and backups are left (./.demo)",
    )
    args = parser.parse_args(argv)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Interrupted

    signal.signal(signal.SIGTERM, interrupt)
    started = time.monotonic()
    try:
        with _stack(args.output) as demo:
            demo.drop_samples()
            demo.run_ingest()
            demo.run_backup()
            demo.change_an_item()
            demo.run_backup()
            demo.query_history()
            demo.download_outputs()
            demo.print_summary(time.monotonic() - started)
            if args.keep:
                demo.watch_inbox()
    except (KeyboardInterrupt, Interrupted):
        # Ctrl-C is how a kept demo ends: not an error.
        print(
            "\nstopped; everything the demo started has been shut down and its temporary "
            "files removed. Bye."
        )
        return 0
    return 0


class Demo:
    def __init__(
        self, output: Path, stack: LocalStack, sandbox: SandboxServer, organisation: Organisation
    ) -> None:
        self.output = output
        self.stack = stack
        self.sandbox = sandbox
        self.organisation = organisation
        self.session = stack.session
        self.s3 = self.session.client("s3")
        self.sqs = self.session.client("sqs")
        self.drop_bucket = stack.physical_id("DropBucket")
        self.backup_bucket = stack.physical_id("BackupBucket")
        self.notifications = _subscribe_a_queue(
            self.session, stack.physical_id("NotificationTopic")
        )
        self.files: list[str] = []
        self.changed = ""
        self.backup_results: list[dict[str, Any]] = []
        self.history_answer = ""
        self._handlers: dict[str, ModuleType] = {}
        # The functions' JSON logs and EMF metrics, as CloudWatch would receive them.
        self.function_output = (output / "function-output.jsonl").open("a", encoding="utf-8")

    # -- acting ---------------------------------------------------------------------------

    def drop_samples(self) -> None:
        samples = self.output / "samples"
        samples.mkdir(parents=True, exist_ok=True)
        for key, body in sample_files(self.organisation).items():
            (samples / Path(key).name).write_bytes(body)
            self.s3.put_object(Bucket=self.drop_bucket, Key=key, Body=body)
            self.files.append(key)

    def run_ingest(self) -> None:
        self._use_environment("IngestFunction")
        handler = self._handler("ingest").lambda_handler
        with contextlib.redirect_stdout(self.function_output):
            drain_queue(
                self.sqs,
                self.stack.physical_id("IngestQueue"),
                handler,
                context_factory=lambda: LocalLambdaContext(function_name="achieveit-sync-ingest"),
            )

    def run_backup(self) -> None:
        self._use_environment("ExportFunction")
        event = json.loads((ROOT / "events" / "export-schedule.json").read_text())
        with contextlib.redirect_stdout(self.function_output):
            result = self._handler("export").lambda_handler(
                event, LocalLambdaContext(function_name="achieveit-sync-export")
            )
        self.backup_results.append(result)
        self.backup_result = self.backup_results[0]

    def change_an_item(self) -> None:
        """Someone edits the plan in AchieveIt between two backups: the first On Track item
        of the first plan goes Off Track."""
        with self.sandbox.organisation() as organisation:
            plan = next(iter(organisation.plans.values()))
            item = next(i for i in plan.items if i.status == "On Track")
            item.status = "Off Track"
            self.changed = f"{plan.id} {item.sequence_id} {item.name!r}: On Track -> Off Track"

    def query_history(self) -> None:
        """A named query of the template, run with DuckDB over the history in the bucket."""
        from achieveit_sync.backup.query import format_result, named_queries, run_query

        [named] = [q for q in named_queries(TEMPLATE) if q.name == HISTORY_QUERY]
        result = run_query(f"s3://{self.backup_bucket}", named.sql)
        self.history_answer = format_result(result, "table")

    def download_outputs(self) -> None:
        for bucket, prefixes in (
            (self.drop_bucket, ("reports/", "rejected/", "archive/")),
            (self.backup_bucket, ("backups/", "templates/", "history/")),
        ):
            for prefix in prefixes:
                for key in _keys(self.s3, bucket, prefix):
                    target = self.output / "s3" / bucket / key
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self.s3.download_file(bucket, key, str(target))

    def watch_inbox(self) -> None:
        inbox = self.output / "inbox"
        for kind in ("progress", "metrics"):
            (inbox / kind).mkdir(parents=True, exist_ok=True)
        print(
            f"\nThe stack stays up (Ctrl-C to stop). Copy a file into {inbox}/progress/ or "
            f"{inbox}/metrics/ (or into {inbox}/ itself: then its columns say which kind): it "
            f"is uploaded to s3://{self.drop_bucket}/incoming/... and processed; its report "
            f"lands in {self.output}/s3/{self.drop_bucket}/reports/."
        )
        print(
            f"The AchieveIt sandbox is at {self.sandbox.base_url} "
            f"(GET /_sandbox/updates shows what it stored; CA: {self.sandbox.ca_file})."
        )
        deadline = time.monotonic() + _STOP_AFTER_SECONDS
        last_seen: dict[Path, tuple[int, int]] = {}
        while time.monotonic() < deadline:
            seen_now: dict[Path, tuple[int, int]] = {}
            for path in sorted([*inbox.glob("*"), *inbox.glob("*/*")]):
                if not path.is_file() or path.name.startswith("."):
                    continue
                status = path.stat()
                seen_now[path] = (status.st_size, status.st_mtime_ns)
                if last_seen.get(path) != seen_now[path]:
                    continue  # new or still being written: taken once it has stopped changing
                folder = path.parent.relative_to(inbox).as_posix()
                if folder not in (".", "progress", "metrics"):
                    print(f"  {path}: put files in {inbox}/progress/ or {inbox}/metrics/")
                    continue
                key = "incoming/" + ("" if folder == "." else f"{folder}/") + path.name
                if folder == ".":
                    print(
                        f"  {path.name}: dropped under incoming/ itself: its columns say which "
                        "kind (a Status column means progress); put it in progress/ or "
                        "metrics/ to say so yourself"
                    )
                self.s3.put_object(Bucket=self.drop_bucket, Key=key, Body=path.read_bytes())
                path.unlink()
                self.files = [key]
                self.run_ingest()
                self.download_outputs()
                self.print_files()
                self.print_notifications()
            last_seen = seen_now
            time.sleep(1)  # polling a folder for the user's files, not a timing check

    # -- showing --------------------------------------------------------------------------

    def print_summary(self, seconds: float) -> None:
        print(
            f"\nachieveit-sync demo: {len(self.files)} files ingested, "
            f"{len(self.backup_result['plans'])} plans backed up, in {seconds:.1f} s\n"
        )
        self.print_files()
        self.print_notifications()
        print("\nBackups:")
        for plan in self.backup_result["plans"]:
            where = plan["manifest"]
            print(f"  {plan['planId']}: {plan['status']}, {plan['items']} items -> {where}")
        for later in self.backup_results[1:]:
            again = ", ".join(f"{p['planId']}: {p['status']}" for p in later["plans"])
            print(f"  and again after a change in AchieveIt: {again}")
        updates = self.sandbox.stored_updates()
        names = {i.external_id: i.name for p in self.organisation.plans.values() for i in p.items}
        print(f"\nAchieveIt (the sandbox) stored {len(updates)} updates:")
        for update in updates[:8]:
            value = f" value {update.metric_value}" if update.metric_value is not None else ""
            status = f" {update.status}" if update.status else ""
            print(
                f"  {names.get(update.external_id, update.external_id)}:{status}{value} "
                f"(as of {update.as_of_date})"
            )
        if len(updates) > 8:
            print(f"  ... and {len(updates) - 8} more")
        print(f"\nChanged in AchieveIt between the two backups: {self.changed}")
        print(
            f"Plan history, the named query {HISTORY_QUERY} (Athena's SQL, run here with "
            f"achieveit-sync query):"
        )
        print("  " + self.history_answer.rstrip("\n").replace("\n", "\n  "))
        print(f"\nOutputs (reports, rejected rows, archive, backups): {self.output / 's3'}")
        print(f"The functions' JSON logs and metrics: {self.function_output.name}")

    def print_files(self) -> None:
        """Each file's summary as its report opens with it: every rejection, grouped."""
        for key in self.files:
            report = json.loads(
                self.s3.get_object(Bucket=self.drop_bucket, Key=f"reports/{key}.json")[
                    "Body"
                ].read()
            )
            summary = report["summary"]
            print(f"  {key}: {summary['headline']}")
            if report.get("fileError") and report["fileError"].get("hint"):
                print(f"    what to do: {report['fileError']['hint']}")
            for group in summary["rejectedByReason"]:
                value = ""
                if group["example"]:
                    single = group["rows"] == 1
                    value = f" '{group['example']}'" if single else f" (e.g. '{group['example']}')"
                more = group["rows"] - len(group["first"])
                where = ", ".join(group["first"]) + (f" and {more} more" if more > 0 else "")
                rows = "1 row" if group["rows"] == 1 else f"{group['rows']} rows"
                print(
                    f"    {rows}: {group['field']}{value} {group['reason']} - "
                    f"{group['hint']} ({where})"
                )
            for hint in summary["hints"]:
                print(f"    hint: {hint}")

    def print_notifications(self) -> None:
        """What the people subscribed to the file notifications would receive."""
        messages = _receive_all(self.sqs, self.notifications)
        for message in messages:
            print(f"\n  Notification: {message.get('Subject', '')}")
            for line in str(message.get("Message", "")).splitlines():
                print(f"    {line}")

    # -- plumbing -------------------------------------------------------------------------

    def _use_environment(self, function: str) -> None:
        os.environ.update(self.stack.function_environment(function))
        os.environ["ACHIEVEIT_CA_BUNDLE"] = str(self.sandbox.ca_file)

    def _handler(self, name: str) -> ModuleType:
        if name not in self._handlers:
            spec = importlib.util.spec_from_file_location(
                f"{name}_app", ROOT / "functions" / name / "app.py"
            )
            if spec is None or spec.loader is None:
                raise RuntimeError(f"cannot load functions/{name}/app.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._handlers[name] = module
        return self._handlers[name]


@contextlib.contextmanager
def _stack(output: Path) -> Iterator[Demo]:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log

    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    saved_environment = dict(os.environ)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    sandbox: SandboxServer | None = None
    try:
        host, port = moto.get_host_and_port()
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": f"http://{host}:{port}",
                "AWS_ACCESS_KEY_ID": "demo",
                "AWS_SECRET_ACCESS_KEY": "demo",
                "AWS_DEFAULT_REGION": REGION,
            }
        )
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        organisation, service_account = load_example_organisation()
        ca_folder = Path(tempfile.mkdtemp(prefix="achieveit-demo-"))
        sandbox = SandboxServer(organisation, service_account, ca_file=ca_folder / "ca.pem")
        sandbox.start()
        session = boto3.session.Session(region_name=REGION)
        stack = LocalStack(
            session,
            parameters={
                "AchieveItBaseUrl": sandbox.base_url,
                "PlanIds": ",".join(organisation.plans),
                "BackupTimeZone": "America/Chicago",
            },
            stack_name="achieveit-sync-demo",
        ).create()
        session.client("secretsmanager").put_secret_value(
            SecretId=stack.physical_id("ApiKeySecret"), SecretString=sandbox.api_key
        )
        demo = Demo(output, stack, sandbox, organisation)
        try:
            yield demo
        finally:
            demo.function_output.close()
    finally:
        if sandbox is not None:
            sandbox.stop()
            shutil.rmtree(sandbox.ca_file.parent, ignore_errors=True)
        moto.stop()
        os.environ.clear()
        os.environ.update(saved_environment)


def sample_files(organisation: Organisation) -> dict[str, bytes]:
    """Three files as a data team would drop them: an Excel CSV (BOM, CRLF), a metrics JSON,
    and a file with a few rows that need fixing."""
    items = [i for p in organisation.plans.values() for i in p.items if i.external_id]
    with_metric = [i for i in items if i.has_metric][:6]
    without_metric = [i for i in items if not i.has_metric][:4]
    statuses = ["On Track", "At Risk", "Off Track", "Achieved"]
    rows = ["External ID,Status,Metric Value,As Of Date,Comment"]
    for n, item in enumerate(with_metric[:4]):
        value = round((item.target or 10) * (0.5 + n / 10), 2)
        rows.append(
            f"{item.external_id},{statuses[n % 4]},{value},11/30/2026,"
            f'"Reviewed at the November meeting, item {item.sequence_id}"'
        )
    for n, item in enumerate(without_metric[:3]):
        rows.append(f"{item.external_id},{statuses[(n + 1) % 4].lower()},,2026-11-30,")
    excel_csv = ("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8")
    metrics = json.dumps(
        [
            {
                "externalId": item.external_id,
                "metricValue": round((item.target or 5) * 0.8, 2),
                "asOfDate": "2026-11-30",
                "comment": "From the warehouse",
            }
            for item in with_metric[4:6]
        ],
        indent=2,
    ).encode()
    needs_fixing = (
        "\r\n".join(
            [
                "External ID,Status,Metric Value,As Of Date,Comment",
                f"{without_metric[3].external_id},Done,,2026-11-30,finished early",
                f"{with_metric[0].external_id},On Track,20%,2026-11-31,",
                "NOT-A-REAL-ID,On Track,,2026-11-30,",
                f"{without_metric[0].external_id},On Track,,2026-11-29,this one is fine",
            ]
        ).encode()
        + b"\r\n"
    )
    return {
        "incoming/progress/kpis-2026-11.csv": excel_csv,
        "incoming/metrics/warehouse-2026-11.json": metrics,
        "incoming/progress/needs-fixing.csv": needs_fixing,
    }


def _subscribe_a_queue(session: Any, topic_arn: str) -> str:
    """A queue subscribed to the notification topic: the demo's stand-in for an inbox."""
    sqs = session.client("sqs")
    url = str(sqs.create_queue(QueueName="demo-notification-inbox")["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    session.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def _receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    notifications: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return notifications
        for message in messages:
            notifications.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    paginator = s3.get_paginator("list_objects_v2")
    return [
        item["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]


if __name__ == "__main__":
    sys.exit(main())
