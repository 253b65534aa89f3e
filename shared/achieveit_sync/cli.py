"""The ``achieveit-sync`` command. Subcommands share the code paths of the Lambdas.

Exit codes: 0 success, 1 the work failed (invalid rows or file, an API error), 2 usage or
configuration errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from achieveit_sync.api_key import provider_from_env
from achieveit_sync.client import AchieveItClient
from achieveit_sync.errors import ConfigurationError
from achieveit_sync.ingest.pipeline import FileSource, IngestOptions, ingest_file
from achieveit_sync.ingest.report import FileReport, FileStatus
from achieveit_sync.settings import ClientSettings
from achieveit_sync.updates import BodyFormat, UpdateKind

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "sandbox": _run_sandbox,
        "validate": _run_validate,
        "publish": _run_publish,
        "export": _run_export,
        "diff": _run_diff,
        "smoke": _run_smoke,
    }
    command = commands.get(args.command or "")
    if command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return command(args)
    except ConfigurationError as exc:
        print(f"achieveit-sync: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="achieveit-sync",
        description="Publish updates to AchieveIt plans and back plans up.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check an update file offline",
        description="Check a progress or metric update file without sending anything. "
        "Exit 0 when every row is valid, 1 when any row or the file is invalid.",
    )
    _add_file_arguments(validate)

    publish = commands.add_parser(
        "publish",
        help="validate a file and send its valid rows to AchieveIt",
        description="Validate a file, then send its valid rows to the AchieveIt API set by "
        "ACHIEVEIT_BASE_URL, with the key from ACHIEVEIT_API_KEY or the Secrets Manager "
        "secret named by ACHIEVEIT_API_KEY_SECRET (and ACHIEVEIT_CA_BUNDLE to trust an extra "
        "CA). Exit 0 when every row was accepted, 1 otherwise.",
    )
    _add_file_arguments(publish)
    publish.add_argument(
        "--dry-run", action="store_true", help="validate and show what would be sent, send nothing"
    )
    publish.add_argument(
        "--batch-size", type=int, default=500, metavar="ROWS", help="rows per request (default 500)"
    )
    publish.add_argument(
        "--body-format",
        choices=("json", "csv"),
        default="json",
        help="request body format (default json)",
    )

    export = commands.add_parser(
        "export",
        help="back plans up to a folder or to S3",
        description="Export every item of each plan and store it as the Lambda does: "
        "items.json.gz, items.csv.gz and manifest.json under backups/<planId>/..., "
        "latest.json, and an upload template. Configured like publish. Exit 1 when any plan "
        "failed or was incomplete.",
    )
    export.add_argument("plan_ids", nargs="+", metavar="PLAN_ID")
    export.add_argument(
        "--out", required=True, metavar="DIR|s3://BUCKET/PREFIX", help="where to write the backups"
    )
    export.add_argument("--format", choices=("text", "json"), default="text", dest="output_format")

    diff = commands.add_parser(
        "diff",
        help="compare two backups",
        description="Items added, removed or changed (status, current value, dates, "
        "assignee, name) between two backups, each given as its manifest.json or folder.",
    )
    diff.add_argument("before", metavar="MANIFEST_A")
    diff.add_argument("after", metavar="MANIFEST_B")
    diff.add_argument("--format", choices=("text", "json"), default="text", dest="output_format")

    smoke = commands.add_parser(
        "smoke",
        help="check a deployed stack end to end (after sam deploy)",
        description="Drop a sample file (a header, no rows: nothing reaches AchieveIt) under "
        "the stack's progress prefix, wait for its report and print it; invoke the export "
        "function for one plan and check latest.json. Ends with one pass/fail line; exit 0 "
        "passed, 1 failed. Uses your AWS credentials (AWS_PROFILE, AWS_REGION).",
    )
    from achieveit_sync.smoke import add_arguments as add_smoke_arguments

    add_smoke_arguments(smoke)

    sandbox = commands.add_parser(
        "sandbox",
        help="run a local AchieveIt API sandbox (development only)",
        description="Run the local AchieveIt sandbox over HTTPS until interrupted. The first "
        "output line is JSON with base_url, ca_file, api_key and plan_ids.",
    )
    try:
        from achieveit_sandbox.cli import add_arguments
    except ImportError:  # the layer without the development tools
        sandbox.set_defaults(sandbox_missing=True)
    else:
        add_arguments(sandbox)
    return parser


def _add_file_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", type=Path, metavar="FILE", help=".csv, .json, .jsonl or .ndjson, optionally .gz"
    )
    parser.add_argument(
        "--kind",
        choices=("progress", "metric"),
        help="the kind of update (default: from the columns)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        dest="output_format",
        help="report format (default text)",
    )
    parser.add_argument(
        "--rejected-out",
        type=Path,
        metavar="PATH",
        help="write the rejected rows here, in the file's own format plus an Error column",
    )


def _run_validate(args: argparse.Namespace) -> int:
    return _ingest(args, send=False)


def _run_publish(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        print("achieveit-sync: --batch-size must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    return _ingest(args, send=not args.dry_run)


def _ingest(args: argparse.Namespace, *, send: bool) -> int:
    path: Path = args.file
    if not path.is_file():
        print(f"achieveit-sync: no such file: {path}", file=sys.stderr)
        return EXIT_USAGE
    source = FileSource(
        name=path.name,
        display_name=str(path),
        open=lambda: path.open("rb"),
        kind=UpdateKind(args.kind) if args.kind else None,
        file_id=f"{path.resolve()}:{path.stat().st_mtime_ns}",
    )
    client = _client_from_env() if send else None
    options = IngestOptions(
        batch_size=getattr(args, "batch_size", 500),
        body_format=BodyFormat(getattr(args, "body_format", "json")),
    )
    progress = _ProgressLine(sys.stderr) if send and sys.stderr.isatty() else None
    rejected_sink: IO[bytes] | None = args.rejected_out.open("wb") if args.rejected_out else None
    try:
        report = ingest_file(
            source,
            client=client,
            rejected_sink=rejected_sink,
            options=options,
            on_progress=progress.update if progress else None,
        )
    finally:
        if rejected_sink is not None:
            rejected_sink.close()
        if client is not None:
            client.close()
        if progress is not None:
            progress.done()
    if args.output_format == "json":
        sys.stdout.write(report.to_json().decode() + "\n")
    else:
        sys.stdout.write(_text_report(report))
    clean = report.status is FileStatus.COMPLETED or (
        report.status is FileStatus.VALIDATED and not report.counts.rejected
    )
    return EXIT_OK if clean else EXIT_FAILED


def _client_from_env() -> AchieveItClient:
    return AchieveItClient(ClientSettings.from_env(), provider_from_env(os.environ))


def _text_report(report: FileReport) -> str:
    counts = report.counts
    lines = [f"{report.source['name']}: {report.status.value}"]
    if report.file_error:
        lines.append(
            f"  file error: {report.file_error.get('message') or report.file_error['reason']}"
        )
    lines.append(
        f"  {counts.rows_read:,} rows read, {counts.valid:,} valid, {counts.rejected:,} "
        f"rejected, {counts.skipped_blank:,} blank lines skipped"
        + (f", {counts.published:,} published" if report.status.value != "validated" else "")
        + (f", {counts.ambiguous:,} may have been applied (no answer)" if counts.ambiguous else "")
    )
    lines.extend(f"  warning: {warning}" for warning in report.warnings)
    for rejection in report.rejections:
        value = f" '{rejection['value']}'" if rejection["value"] else ""
        lines.append(
            f"  line {rejection['line']}, {rejection['field']}{value}: {rejection['reason']}"
            f" - {rejection['hint']}"
        )
    shown_lines = {r["line"] for r in report.rejections}
    if counts.rejected > len(shown_lines):
        lines.append(
            f"  ... and more: {counts.rejected:,} rows rejected in all "
            "(--rejected-out writes them all)"
        )
    for row in report.ambiguous_rows:
        lines.append(
            f"  line {row['line']} ({row['externalId']}): sent in {row['request']}, "
            "no answer; it may have been applied"
        )
    return "\n".join(lines) + "\n"


class _ProgressLine:
    """A one-line progress display on a terminal (stderr)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def update(self, report: FileReport) -> None:
        counts = report.counts
        done = counts.published + counts.rejected_by_api + counts.ambiguous
        percent = 100 * done / counts.valid if counts.valid else 100
        self._stream.write(f"\r  sending: {done:,}/{counts.valid:,} rows ({percent:.0f}%)")
        self._stream.flush()

    def done(self) -> None:
        self._stream.write("\n")
        self._stream.flush()


def _run_export(args: argparse.Namespace) -> int:
    from achieveit_sync.backup.run import PlanOutcome, back_up_plans
    from achieveit_sync.backup.targets import target_for
    from achieveit_sync.plan_ids import InvalidPlanIdError, is_plan_id

    # Checked before anything is fetched or written: a plan id becomes a URL segment and a
    # folder under --out, and must never lead anywhere else.
    refused = [InvalidPlanIdError(p) for p in args.plan_ids if not is_plan_id(p.strip())]
    for problem in refused:
        print(f"achieveit-sync: {problem}", file=sys.stderr)
    if refused:
        return EXIT_USAGE
    settings = ClientSettings.from_env()
    client = _client_from_env()
    interactive = sys.stderr.isatty()

    def show_page(plan_id: str, pages: int, items: int) -> None:
        print(
            f"\r  {plan_id}: {items:,} items ({pages} pages)", end="", file=sys.stderr, flush=True
        )

    def show_plan(outcome: PlanOutcome) -> None:
        print(
            f"\r  {outcome.plan_id}: {outcome.status}, {outcome.items:,} items",
            file=sys.stderr,
            flush=True,
        )

    with client:
        run = back_up_plans(
            args.plan_ids,
            client=client,
            target=target_for(args.out),
            api_base_url=settings.base_url,
            on_plan=show_plan if interactive else None,
            on_page=show_page if interactive else None,
        )
    if args.output_format == "json":
        sys.stdout.write(json.dumps(run.as_dict(), indent=2) + "\n")
    else:
        for outcome in run.outcomes:
            line = f"{outcome.plan_id}: {outcome.status}, {outcome.items:,} items"
            line += f" -> {outcome.manifest}" if outcome.manifest else ""
            line += f" ({outcome.error})" if outcome.error else ""
            sys.stdout.write(line + "\n")
    return EXIT_FAILED if run.failed else EXIT_OK


def _run_diff(args: argparse.Namespace) -> int:
    from achieveit_sync.backup.diff import BackupNotFoundError, diff_backups

    try:
        result = diff_backups(args.before, args.after)
    except BackupNotFoundError as exc:
        print(f"achieveit-sync: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.output_format == "json":
        sys.stdout.write(json.dumps(result.as_dict(), indent=2, default=str) + "\n")
    else:
        sys.stdout.write(result.as_text())
    return EXIT_OK


def _run_sandbox(args: argparse.Namespace) -> int:
    if getattr(args, "sandbox_missing", False):
        print(
            "the sandbox is a development tool: install the project with "
            "'pip install -e .' from a checkout",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from achieveit_sandbox.cli import run

    return run(args)


def _run_smoke(args: argparse.Namespace) -> int:
    from achieveit_sync.smoke import run

    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
