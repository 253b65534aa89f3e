"""The ``achieveit-sync`` command. Subcommands share the code paths of the Lambdas.

Exit codes, for every command:

* 0: done, nothing to report;
* 1: the data has problems (rejected rows, an unreadable file, rows that may have been
  applied, a plan not backed up completely);
* 2: usage or configuration (bad arguments or paths, a missing or refused key, AWS
  credentials);
* 3: AchieveIt or AWS failed (unreachable, erroring).

No command prints a stack trace: every error is one line saying what is wrong and what to
do (``ACHIEVEIT_SYNC_DEBUG=1`` shows the trace, for a bug report).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from achieveit_sync import __version__
from achieveit_sync.errors import (
    ApiError,
    ConfigurationError,
    SecretUnavailableError,
    TransportSecurityError,
)
from achieveit_sync.ingest.report import FileReport, FileStatus, StopReason
from achieveit_sync.ingest.summary import plural
from achieveit_sync.settings import CliSettings, api_key_as_set, debug_requested

if TYPE_CHECKING:
    from achieveit_sync.ingest.local_state import PublishState

EXIT_OK = 0
EXIT_DATA = 1
EXIT_USAGE = 2
EXIT_SERVICE = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
"""128 + the signal's number, as shells report a process a signal stopped."""

_EXIT_CODES = """exit codes:
  0  done, nothing to report
  1  the data has problems (rejected rows, an unreadable file, rows that may have been
     applied, a plan not backed up completely)
  2  usage or configuration (arguments, paths, the key or its access refused,
     AWS credentials)
  3  AchieveIt or AWS failed (unreachable, erroring)
  130, 143  stopped by Ctrl-C, or by a termination signal"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "sandbox": _run_sandbox,
        "validate": _run_validate,
        "publish": _run_publish,
        "export": _run_export,
        "diff": _run_diff,
        "status": _run_status,
        "query": _run_query,
        "smoke": _run_smoke,
    }
    command = commands.get(args.command or "")
    if command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _show_warnings_on_stderr()
    restore_sigterm = _stop_on_sigterm()
    try:
        return command(args)
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, _TerminatedError)
        print(
            f"\nachieveit-sync: {'terminated' if terminated else 'interrupted'}"
            + _AFTER_A_STOP.get(args.command, ""),
            file=sys.stderr,
        )
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except Exception as exc:
        if debug_requested():
            raise
        message, code = describe_failure(exc)
        print(f"achieveit-sync: {message}", file=sys.stderr)
        return code
    finally:
        restore_sigterm()


_AFTER_A_STOP = {
    "publish": "; run the same command again to resume: rows AchieveIt answered are not sent "
    "again, and rows sent without an answer are reported as 'may have been applied'",
    "export": "; run the same command again: plans already backed up are kept",
}


class _TerminatedError(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``timeout``, ``docker stop``): stops a command as Ctrl-C does,
    so that what it recorded stays consistent and it says how to resume."""


def _stop_on_sigterm() -> Callable[[], None]:
    """Turn SIGTERM into ``_TerminatedError`` while a command runs; returns the undo."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def terminate(signum: int, frame: object) -> None:
        raise _TerminatedError

    previous = signal.signal(signal.SIGTERM, terminate)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


class _GracefulStop:
    """While ``publish`` runs, the first Ctrl-C (or SIGTERM) asks it to stop after the
    request in flight, so that it ends with a report and no row left "may have been
    applied"; a second one stops at once (``KeyboardInterrupt``)."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def requested(self) -> bool | StopReason:
        return StopReason.INTERRUPTED if self.signal_name else False

    def __enter__(self) -> _GracefulStop:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        import signal

        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: object) -> None:
        import signal

        if self.signal_name is not None:  # the second time: at once
            raise _TerminatedError if signum == signal.SIGTERM else KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        print(
            "\nachieveit-sync: stopping after the request in flight (Ctrl-C again to stop at once)",
            file=sys.stderr,
        )


_LOG_DETAILS = ("operation", "status", "reason", "attempt", "wait_seconds", "plan", "error")


class OneLineFormatter(logging.Formatter):
    """``achieveit-sync: AchieveIt request failed; retrying (reason: HTTP 503; attempt 1;
    wait_seconds: 0.4)``: the package's log records, with the details people need."""

    def format(self, record: logging.LogRecord) -> str:
        details = "; ".join(
            f"{name.replace('_', ' ')}: {getattr(record, name)}"
            for name in _LOG_DETAILS
            if getattr(record, name, None) not in (None, "")
        )
        text = f"achieveit-sync: {record.getMessage()}" + (f" ({details})" if details else "")
        if debug_requested():  # where it came from, for a bug report
            trace = getattr(record, "traceback", None) or (
                self.formatException(record.exc_info) if record.exc_info else ""
            )
            if trace:
                return _safe(f"{text}\n{trace}", limit=50_000)
        return _safe(text)


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record comes (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - logging must never end a command
            self.handleError(record)


def _show_warnings_on_stderr() -> None:
    package = logging.getLogger("achieveit_sync")
    if not any(isinstance(handler, _StderrHandler) for handler in package.handlers):
        handler = _StderrHandler(logging.WARNING)
        handler.setFormatter(OneLineFormatter())
        package.addHandler(handler)


def describe_failure(exc: BaseException) -> tuple[str, int]:  # noqa: PLR0911 - one per kind
    """One line for the user, and the exit code, for any error a command can end in."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
    )
    from botocore.exceptions import (
        ConnectTimeoutError as AwsConnectTimeoutError,
    )

    from achieveit_sync.backup.diff import BackupNotFoundError, DamagedBackupError
    from achieveit_sync.backup.query import QueryDataError
    from achieveit_sync.plan_ids import InvalidPlanIdError

    if isinstance(exc, ConfigurationError | InvalidPlanIdError | BackupNotFoundError):
        return _printable(str(exc)), EXIT_USAGE
    if isinstance(exc, DamagedBackupError | QueryDataError):
        return _printable(str(exc)), EXIT_DATA
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | ProfileNotFound):
        return (
            f"no usable AWS credentials ({exc}): set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY",
            EXIT_USAGE,
        )
    if isinstance(exc, NoRegionError):
        return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)", EXIT_USAGE
    if isinstance(exc, EndpointConnectionError | AwsConnectTimeoutError):
        return f"cannot reach AWS ({exc}): check the network and the region", EXIT_SERVICE
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        message = f"AWS refused {exc.operation_name}: {code} {error.get('Message', '')}".strip()
        if code in ("AccessDenied", "403", "AccessDeniedException"):
            message += "; check what these credentials may do (the README lists it)"
        if code in ("NoSuchBucket", "NoSuchKey", "404"):
            return f"{message}; check the bucket and key", EXIT_USAGE
        return message, EXIT_SERVICE
    if isinstance(exc, TransportSecurityError):
        hint = ""
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate verify failed" in str(exc):
            hint = (
                "; a server with a private CA (such as the sandbox) needs ACHIEVEIT_CA_BUNDLE "
                "set to its CA certificate"
            )
        return _safe(f"{exc}{hint}"), EXIT_SERVICE
    if isinstance(exc, ApiError | SecretUnavailableError):
        return _safe(str(exc)), EXIT_SERVICE
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}", EXIT_USAGE
    return (
        _safe(
            f"unexpected error ({type(exc).__name__}: {exc}); run again with "
            "ACHIEVEIT_SYNC_DEBUG=1 to see where, and report it"
        ),
        EXIT_SERVICE,
    )


def _safe(text: str, limit: int = 2000) -> str:
    """``text`` without the key from ACHIEVEIT_API_KEY, in any form it could take."""
    from achieveit_sync.api_key import ApiKey

    key = api_key_as_set()
    try:
        return ApiKey(key).scrub(text)[:limit] if key else text[:limit]
    except ConfigurationError:  # not a usable key: blank it as written
        return (text.replace(key, "********") if len(key) >= 8 else text)[:limit]


# -- the parser ---------------------------------------------------------------------------


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="achieveit-sync",
        description="Publish updates to AchieveIt plans and back plans up. "
        "'achieveit-sync COMMAND --help' explains each command.",
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"achieveit-sync {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = _command(
        commands,
        "validate",
        "check an update file offline; nothing is sent",
        "Check a progress or metric update file as the ingest Lambda would, without sending "
        "anything: every rejected row with its line, field, reason and how to fix it, grouped "
        "by reason.",
        "achieveit-sync validate kpis.csv --rejected-out fix-me.csv",
    )
    _add_file_arguments(validate)

    publish = _command(
        commands,
        "publish",
        "validate a file, then send its valid rows to AchieveIt",
        "Validate a file, then send its valid rows to the AchieveIt API set by "
        "ACHIEVEIT_BASE_URL, with the key from ACHIEVEIT_API_KEY or the Secrets Manager secret "
        "named by ACHIEVEIT_API_KEY_SECRET (ACHIEVEIT_CA_BUNDLE trusts an extra CA). Progress "
        "is recorded on disk: running the same command again after an outage or Ctrl-C "
        "resumes where it stopped and never sends a row twice.",
        "achieveit-sync publish kpis.csv --dry-run\n  achieveit-sync publish kpis.csv",
    )
    _add_file_arguments(publish)
    publish.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and say what would be sent (rows, requests, sizes, URL); send nothing",
    )
    publish.add_argument(
        "--batch-size",
        type=_positive_int,
        default=500,
        metavar="ROWS",
        help="rows per request (default 500)",
    )
    publish.add_argument(
        "--body-format",
        choices=("json", "csv"),
        default="json",
        help="request body format (default json)",
    )
    publish.add_argument(
        "--ambiguous-out",
        type=Path,
        metavar="PATH",
        help="write the rows that may have been applied (sent, no answer) here, in the file's "
        "own format: check each in AchieveIt before sending any of them again",
    )
    publish.add_argument(
        "--restart",
        action="store_true",
        help="send every row again, even rows earlier runs sent to this server (forgets "
        "this file's progress)",
    )
    publish.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where progress and the rows sent are recorded (default: "
        "ACHIEVEIT_SYNC_STATE_DIR, else "
        "~/.local/state/achieveit-sync)",
    )

    export = _command(
        commands,
        "export",
        "back plans up to a folder or to S3",
        "Export every item of each plan and store it as the backup Lambda does: "
        "backups/<planId>/<date>/<time>/ with items.json.gz, items.csv.gz and manifest.json, "
        "backups/<planId>/latest.json, and templates/<planId>/progress-updates.csv (an upload "
        "template), all under --out. Configured like publish.",
        "achieveit-sync export PX-2027 --out plan-backups\n"
        "  achieveit-sync export PX-2027 --out s3://my-bucket/achieveit",
    )
    export.add_argument(
        "plan_ids", nargs="+", metavar="PLAN_ID", help="the plans (ids from the plan's options)"
    )
    export.add_argument(
        "--out",
        required=True,
        metavar="DIR|s3://BUCKET/PREFIX",
        help="where the layout (backups/, templates/) is written",
    )
    _add_output_format(export)

    diff = _command(
        commands,
        "diff",
        "compare two backups",
        "Items added, removed or changed (name, status, current value, dates, assignee) "
        "between two backups, each given as its folder, its manifest.json, or a plan's "
        "latest.json (the newest complete backup), in either order.",
        "achieveit-sync diff plan-backups/backups/PX-2027/2026/11/01/20261101T023000.000000Z "
        "plan-backups/backups/PX-2027/latest.json",
    )
    diff.add_argument("before", metavar="BACKUP_A", help="the older backup")
    diff.add_argument("after", metavar="BACKUP_B", help="the newer backup")
    _add_output_format(diff)

    status = _command(
        commands,
        "status",
        "the last files handled and each plan's backups",
        "The last files the ingest handled (status, counts, when, report) and each plan's "
        "backups (newest complete, its age and items; whether the newest run was complete), "
        "from the drop and backups buckets or from local folders of the same layout.",
        "achieveit-sync status --drop s3://my-drop-bucket --backups s3://my-backups-bucket\n"
        "  achieveit-sync status --backups plan-backups",
    )
    status.add_argument(
        "--drop", metavar="DIR|s3://BUCKET", help="the drop bucket (reports/ under it)"
    )
    status.add_argument(
        "--backups", metavar="DIR|s3://BUCKET", help="the backups bucket or an --out folder"
    )
    status.add_argument(
        "--last", type=_positive_int, default=10, metavar="N", help="files to show (default 10)"
    )
    status.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        dest="output_format",
        help="a table (default) or JSON",
    )

    query = _command(
        commands,
        "query",
        "SQL over the plan history (DuckDB), as Athena runs it in AWS",
        "Run SQL with DuckDB over the plan history that backups write (history/ in the backups "
        "bucket or an export --out folder). The table is plan_item_history, partitioned by "
        "plan_id and snapshot_date: filter on them and only those partitions are read (from "
        "S3, only those files are fetched). SQL may also be the name of one of the template's "
        "named queries; --list prints them.",
        "achieveit-sync query --backups plan-backups \\\n"
        '      "SELECT plan_id, status, COUNT(*) AS items FROM plan_item_history GROUP BY 1, 2"\n'
        "  achieveit-sync query --backups s3://my-backups-bucket status-changes-last-7-days\n"
        "  achieveit-sync query --list",
    )
    query.add_argument(
        "sql",
        nargs="?",
        metavar="SQL",
        help="the query, or the name of a named query (see --list)",
    )
    query.add_argument(
        "--backups",
        metavar="DIR|s3://BUCKET[/PREFIX]",
        help="the backups bucket (and prefix) or an export --out folder: where history/ is",
    )
    query.add_argument(
        "--list", action="store_true", help="print the template's named queries and stop"
    )
    query.add_argument(
        "--template",
        type=Path,
        metavar="FILE",
        help="the stack's template.yaml, for the named queries (default: the checkout's)",
    )
    query.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        dest="output_format",
        help="a table (default), CSV with a header, or a JSON array of objects",
    )

    smoke = _command(
        commands,
        "smoke",
        "check a deployed stack end to end (after sam deploy)",
        "Drop a sample file (a header, no rows: nothing reaches AchieveIt) under the stack's "
        "progress prefix, wait for its report and print it; invoke the export function for "
        "one plan and check latest.json. Ends with one pass/fail line. Uses your AWS "
        "credentials (AWS_PROFILE, AWS_REGION).",
        "achieveit-sync smoke --stack achieveit-sync --plan PX-2027",
    )
    from achieveit_sync.smoke import add_arguments as add_smoke_arguments

    add_smoke_arguments(smoke)

    sandbox = _command(
        commands,
        "sandbox",
        "run a local AchieveIt API sandbox (development only)",
        "Run the local AchieveIt sandbox over HTTPS until interrupted. The first output line "
        "is JSON with base_url, ca_file, api_key and plan_ids; --list prints the plans and "
        "stops.",
        "achieveit-sync sandbox --env-out /tmp/sandbox.env\n  achieveit-sync sandbox --list",
    )
    try:
        from achieveit_sandbox.cli import add_arguments
    except ImportError:  # the layer without the development tools
        sandbox.set_defaults(sandbox_missing=True)
    else:
        add_arguments(sandbox)
    return parser


def _command(
    commands: Any, name: str, summary: str, description: str, example: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=f"example:\n  {example}\n\n{_EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _add_file_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", type=Path, metavar="FILE", help=".csv, .json, .jsonl or .ndjson, optionally .gz"
    )
    parser.add_argument(
        "--kind",
        choices=("progress", "metric"),
        help="the kind of update, for a file without a header (default: from the columns)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        dest="output_format",
        help="text for people (default), or the report as JSON",
    )
    parser.add_argument(
        "--rejected-out",
        type=Path,
        metavar="PATH",
        help="write the rejected rows here, in the file's own format plus an Error column "
        "(gzip-compressed if PATH ends in .gz): fix them and validate or publish that file",
    )


def _add_output_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        dest="output_format",
        help="text for people (default) or JSON",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# -- validate and publish -----------------------------------------------------------------


def _run_validate(args: argparse.Namespace) -> int:
    return _ingest(args, send=False)


def _run_publish(args: argparse.Namespace) -> int:
    return _ingest(args, send=not args.dry_run)


def _ingest(args: argparse.Namespace, *, send: bool) -> int:
    from achieveit_sync.ingest.pipeline import ingest_file

    cli_settings = CliSettings.from_env()
    path: Path = args.file
    _check_input(path)
    outputs = _RowFiles.checked(args, path)
    source, options = _source_and_options(args, path, cli_settings)
    if getattr(args, "dry_run", False):
        from achieveit_sync.settings import ClientSettings

        ClientSettings.from_env()  # a dry run says where rows would go: a bad URL is exit 2
    with contextlib.ExitStack() as held:
        client = _client_from_env() if send else None
        sending: PublishState | None = None
        stop: _GracefulStop | None = None
        if client is not None:
            held.callback(client.close)
            from achieveit_sync.ingest.local_state import PublishState

            state_dir, named = _state_dir(args, cli_settings)
            # The ledger's lock is held until the run ends: no other run sends meanwhile.
            sending = PublishState.open(
                path, client.base_url, state_dir, held, restart=args.restart, named=named
            )
            source = replace(source, file_id=sending.file_id)
            stop = held.enter_context(_GracefulStop())
        progress = _PublishProgress(sys.stderr) if client is not None else None
        rejected = held.enter_context(tempfile.TemporaryFile())
        ambiguous = held.enter_context(tempfile.TemporaryFile())
        try:
            report = ingest_file(
                source,
                client=client,
                rejected_sink=rejected if outputs.rejected is not None else None,
                ambiguous_sink=ambiguous if outputs.ambiguous is not None else None,
                checkpoints=sending.checkpoints if sending is not None else None,
                sent_rows=sending.sent_rows if sending is not None else None,
                options=options,
                should_stop=stop.requested if stop is not None else lambda: False,
                on_progress=progress.update if progress else None,
            )
        finally:
            if progress is not None:
                progress.clear()
        if sending is not None:
            sending.conclude(report)
        outputs, unwritten = outputs.write(report, rejected, ambiguous)
    code = _exit_code(report)
    if unwritten and code in (EXIT_OK, EXIT_DATA):
        code = EXIT_USAGE  # a script must see that a file it asked for is missing
    if stop is not None and stop.signal_name:
        code = EXIT_TERMINATED if stop.signal_name == "SIGTERM" else EXIT_INTERRUPTED
    if args.output_format == "json":
        sys.stdout.write(report.to_json().decode() + "\n")
    else:
        settled_earlier = (
            sending is not None
            and report.rows_settled_this_run == 0
            and report.counts.valid > 0
            and report.status.finished
        )
        sys.stdout.write(
            _text_report(
                report, outputs.rejected, outputs.ambiguous, settled_earlier=settled_earlier
            )
        )
        if getattr(args, "dry_run", False) and report.counts.valid and not report.file_error:
            sys.stdout.write(_dry_run_text(args, source, options, cli_settings))
    for failure in unwritten:
        print(f"achieveit-sync: {failure}", file=sys.stderr)
    return code


def _source_and_options(
    args: argparse.Namespace, path: Path, settings: CliSettings
) -> tuple[Any, Any]:
    from achieveit_sync.ingest.pipeline import FileSource, IngestOptions
    from achieveit_sync.ingest.reading import ReadLimits
    from achieveit_sync.updates import BodyFormat, UpdateKind

    source = FileSource(
        name=path.name,
        display_name=str(path),
        open=lambda: path.open("rb"),
        kind=UpdateKind(args.kind) if args.kind else None,
        kind_reason=f"--kind {args.kind}" if args.kind else None,
    )
    bounds = settings.bounds
    options = IngestOptions(
        batch_size=getattr(args, "batch_size", 500),
        body_format=BodyFormat(getattr(args, "body_format", "json")),
        max_rows=bounds.max_rows,
        limits=ReadLimits(max_lines=bounds.max_lines, max_bytes=bounds.max_bytes),
    )
    return source, options


@dataclass(frozen=True)
class _RowFiles:
    """Where ``--rejected-out`` and ``--ambiguous-out`` write their rows, checked up front."""

    rejected: Path | None
    ambiguous: Path | None

    @classmethod
    def checked(cls, args: argparse.Namespace, source: Path) -> _RowFiles:
        files = cls(args.rejected_out, getattr(args, "ambiguous_out", None))
        for option, target in (
            ("--rejected-out", files.rejected),
            ("--ambiguous-out", files.ambiguous),
        ):
            if target is not None:
                _check_rows_out(option, target, source)
        if (
            files.rejected is not None
            and files.ambiguous is not None
            and files.rejected.resolve() == files.ambiguous.resolve()
        ):
            raise ConfigurationError(
                f"--rejected-out and --ambiguous-out both name {files.rejected}: rows to fix "
                "and rows to check before any is sent again must not share a file; give two "
                "names"
            )
        return files

    def write(
        self, report: FileReport, rejected: IO[bytes], ambiguous: IO[bytes]
    ) -> tuple[_RowFiles, list[str]]:
        """Each file that has rows: the files written, and why any could not be (also a
        warning in the report, whose rows were sent by then)."""
        written, failures = self, []
        for option, rows, spool, target in (
            ("--rejected-out", report.counts.rejected, rejected, self.rejected),
            ("--ambiguous-out", report.counts.ambiguous, ambiguous, self.ambiguous),
        ):
            if target is not None and rows:
                spool.seek(0)
                failure = _write_rows(option, spool, target)
                field = "rejected" if option == "--rejected-out" else "ambiguous"
                if failure is not None:
                    report.warnings.append(failure)
                    failures.append(failure)
                    written = replace(written, **{field: None})
                else:  # (named in the JSON report, as the Lambda names its S3 objects)
                    report.outputs[field] = str(target)
        return written, failures


def _state_dir(args: argparse.Namespace, settings: CliSettings) -> tuple[Path, str]:
    """Where publish keeps its state, and how messages name it."""
    if args.state_dir:
        return args.state_dir.expanduser(), "--state-dir"
    return settings.state_dir, "ACHIEVEIT_SYNC_STATE_DIR"


def _check_input(path: Path) -> None:
    if not path.exists():
        raise ConfigurationError(f"no such file: {path}")
    if path.is_dir():
        raise ConfigurationError(f"{path} is a folder; give one file")
    if not path.is_file():
        raise ConfigurationError(f"{path} is not a regular file (a device or a pipe?)")


def _check_rows_out(option: str, target: Path, source: Path) -> None:
    """Refuse, before anything is sent, a place the rows could not be written to: found
    only afterwards, the rows would be published and their list lost."""
    if target.is_dir():
        raise ConfigurationError(f"{option} {target} is a folder; give a file name")
    if target.exists() and target.resolve() == source.resolve():
        raise ConfigurationError(
            f"{option} {target} is the input file itself: writing it would destroy the "
            "input; give another name"
        )
    if target.parent.exists() and not target.parent.is_dir():
        raise ConfigurationError(
            f"{option} {target}: {target.parent} is a file, not a folder; give a path in a folder"
        )
    if not target.parent.is_dir():
        raise ConfigurationError(f"{option} {target}: the folder {target.parent} is missing")
    if target.exists() and not target.is_file():
        return  # a device or a pipe (/dev/stdout): written to directly
    try:
        tempfile.NamedTemporaryFile(dir=target.parent, prefix=".probe-").close()
    except OSError as exc:
        raise ConfigurationError(
            f"{option} {target}: the folder {target.parent} cannot be written to "
            f"({exc.strerror or exc}); give a writable place. Nothing was sent"
        ) from None


def _write_rows(option: str, rows: IO[bytes], target: Path) -> str | None:
    """Into ``target`` whole or not at all: a regular file is written beside it and renamed;
    a device or pipe (``/dev/stdout``) is written to directly. Returns why it failed (the
    rows may have been published by then: the run's report still has to be shown)."""
    try:
        if target.exists() and not target.is_file():
            with target.open("wb") as handle:
                shutil.copyfileobj(rows, handle)
            return None
        mode = target.stat().st_mode & 0o777 if target.exists() else _new_file_mode()
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".partial") as out:
            if target.name.lower().endswith(".gz"):  # named so: compressed, as it says
                with gzip.GzipFile(fileobj=out, mode="wb") as compressed:
                    shutil.copyfileobj(rows, compressed)
            else:
                shutil.copyfileobj(rows, out)
        # NamedTemporaryFile creates 0600: give the file what any new file would get.
        Path(out.name).chmod(mode)
        Path(out.name).replace(target)
    except OSError as exc:
        return (
            f"{option} {target}: the rows could not be written ({exc.strerror or exc}); "
            "they are listed in this report (--format json has every one)"
        )
    return None


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _exit_code(report: FileReport) -> int:
    if report.stop_reason is StopReason.API_REFUSED:
        return EXIT_USAGE  # the key, the service account's access or the base URL
    if report.stop_reason in (StopReason.API_UNAVAILABLE, StopReason.ERROR):
        return EXIT_SERVICE
    clean = report.status is FileStatus.COMPLETED or (
        report.status is FileStatus.VALIDATED and not report.counts.rejected
    )
    return EXIT_OK if clean and not report.ignored else EXIT_DATA


def _client_from_env() -> Any:
    from achieveit_sync.api_key import provider_for
    from achieveit_sync.client import AchieveItClient
    from achieveit_sync.settings import ApiKeySettings, ClientSettings

    return AchieveItClient(ClientSettings.from_env(), provider_for(ApiKeySettings.from_env()))


def _ambiguous_lines(report: FileReport, ambiguous_out: Path | None) -> list[str]:
    """Rows sent without an answer, one line per request: each may have been applied."""
    if not report.counts.ambiguous:
        return []
    by_request: dict[str, list[dict[str, Any]]] = {}
    for row in report.ambiguous_rows:
        by_request.setdefault(row["request"], []).append(row)
    lines = [
        f"  {plural(report.counts.ambiguous, 'row')} may have been applied (sent, but no "
        "answer came): check each in AchieveIt before sending it again"
    ]
    for request, rows in by_request.items():
        ids = ", ".join(str(row["externalId"]) for row in rows[:3])
        more = f" and {len(rows) - 3:,} more" if len(rows) > 3 else ""
        lines.append(
            f"    {plural(len(rows), 'row')} sent in {request}: line {rows[0]['line']}"
            + (f" to {rows[-1]['line']}" if len(rows) > 1 else "")
            + f" ({ids}{more})"
        )
    listed = len(report.ambiguous_rows)
    if report.counts.ambiguous > listed:
        lines.append(f"    ... {report.counts.ambiguous - listed:,} more rows not listed here")
    if ambiguous_out is not None:
        lines.append(f"  those rows are written to {ambiguous_out}")
    elif report.counts.ambiguous > listed or len(by_request) > 1:
        lines.append("  (--ambiguous-out PATH writes every one of them)")
    return lines


def _text_report(
    report: FileReport,
    rejected_out: Path | None,
    ambiguous_out: Path | None = None,
    *,
    settled_earlier: bool = False,
) -> str:
    counts = report.counts
    headline = report.full_headline()
    if settled_earlier and counts.sent_earlier:
        headline = f"nothing sent now: {headline}"
    elif settled_earlier:
        headline = (
            f"nothing sent now: an earlier run of this command sent this file ({headline}); "
            "--restart sends it again"
        )
    lines = [f"{report.source['name']}: {headline}"]
    if report.file_error:
        where = [
            f"line {report.file_error['line']}" if report.file_error.get("line") else "",
            f"byte {report.file_error['byteOffset']}"
            if report.file_error.get("byteOffset") is not None
            else "",
        ]
        located = ", ".join(w for w in where if w)
        if located:
            lines.append(f"  where: {located}")
        if report.file_error.get("hint"):
            lines.append(f"  what to do: {report.file_error['hint']}")
    if report.file_format:
        described = ", ".join(
            part
            for part in (
                (report.file_format or "").upper(),
                report.encoding or "",
                report.dialect or "",
                "gzip" if report.compressed else "",
            )
            if part
        )
        read = f"  read: {plural(counts.rows_read, 'row')} ({described})"
        if counts.skipped_blank:
            read += f", {plural(counts.skipped_blank, 'blank line')} skipped"
        if counts.skipped_untouched:
            read += (
                f", {plural(counts.skipped_untouched, 'template row')} with nothing filled in "
                "skipped"
            )
        if report.kind:
            read += f"; {report.kind} updates"
            read += f" ({report.kind_reason})" if report.kind_reason else ""
        lines.append(read)
    lines.extend(f"  {line}" for line in report.summary_lines()[1:])
    lines.extend(f"  warning: {warning}" for warning in report.warnings)
    lines.extend(_ambiguous_lines(report, ambiguous_out))
    if rejected_out is not None and counts.rejected:
        lines.append(
            f"  rejected rows written to {rejected_out}: fix them there, then run this "
            "command on that file"
        )
    elif counts.rejected and not report.rejection_summary.groups:
        lines.append("  (--rejected-out PATH writes the rejected rows)")
    return "\n".join(lines) + "\n"


def _dry_run_text(
    args: argparse.Namespace, source: Any, options: Any, settings: CliSettings
) -> str:
    from achieveit_sync.ingest.pipeline import plan_requests, request_stem
    from achieveit_sync.ingest.sent_rows import SentLedger
    from achieveit_sync.settings import ClientSettings
    from achieveit_sync.terminal import human_bytes
    from achieveit_sync.updates import UpdateKind

    base_url = ClientSettings.from_env().base_url  # checked before validating
    ledger = None
    if not args.restart:  # what publish would skip, read without taking the lock
        ledger = SentLedger.peek(_state_dir(args, settings)[0] / "sent", base_url)
    planned, sent_earlier = plan_requests(source, options, ledger)
    earlier = (
        f"  would not send {plural(sent_earlier, 'row')} already sent by an earlier run "
        "(--restart sends them)\n"
        if sent_earlier
        else ""
    )
    if not planned:
        return earlier + "  would send nothing\n  dry run: nothing was sent\n"
    rows = sum(request.rows for request in planned)
    sizes = [request.body_bytes for request in planned]
    kind = UpdateKind(source.kind) if source.kind else None
    collection = (kind or UpdateKind.PROGRESS).api_collection
    stem = request_stem(source.name)
    first = f"{base_url}/api/{collection}/{stem}.part-0001.{options.body_format.value}"
    size_range = (
        human_bytes(sizes[0])
        if len(sizes) == 1
        else f"{human_bytes(min(sizes))} to {human_bytes(max(sizes))}, "
        f"{human_bytes(sum(sizes))} in all"
    )
    return (
        earlier
        + f"  would send {plural(rows, 'row')} in {plural(len(planned), 'request')} of up to "
        f"{options.batch_size:,} rows ({options.body_format.value} bodies, {size_range})\n"
        f"  to POST {first}"
        + (f" ... part-{len(planned):04d}" if len(planned) > 1 else "")
        + "\n  dry run: nothing was sent\n"
    )


class _PublishProgress:
    def __init__(self, stream: IO[str]) -> None:
        from achieveit_sync.terminal import ProgressLine

        self._line = ProgressLine(stream, "rows")

    def update(self, report: FileReport) -> None:
        counts = report.counts
        done = counts.published + counts.rejected_by_api + counts.ambiguous + counts.sent_earlier
        self._line.show("sending", done, counts.valid)

    def clear(self) -> None:
        self._line.clear()


# -- export, diff, status -------------------------------------------------------------------


def _run_export(args: argparse.Namespace) -> int:
    from achieveit_sync.backup.run import BackupOptions, FailureCause, PlanOutcome, back_up_plans
    from achieveit_sync.backup.targets import target_for
    from achieveit_sync.plan_ids import check_plan_id
    from achieveit_sync.settings import ExportLimits
    from achieveit_sync.terminal import ProgressLine

    # Checked before anything is fetched or written: a plan id becomes a URL segment and a
    # folder under --out, and must never lead anywhere else.
    plan_ids = [check_plan_id(plan.strip()) for plan in args.plan_ids]
    options = BackupOptions.from_limits(
        ExportLimits.from_env(),
        retry_hint="run again with ACHIEVEIT_SYNC_DEBUG=1 to see where, and report it",
    )
    target = target_for(args.out)
    if not args.out.startswith("s3://") and Path(args.out).name == "backups":
        print(
            f"achieveit-sync: note: the layout has its own backups/ and templates/ folders, so "
            f"plans go to {Path(args.out) / 'backups'}/<plan>/; give the folder above as --out "
            "to avoid backups/backups",
            file=sys.stderr,
        )
    progress = ProgressLine(sys.stderr, "items")

    def show_page(plan_id: str, pages: int, items: int, total: int | None) -> None:
        progress.show(plan_id, items, total)

    def show_plan(outcome: PlanOutcome) -> None:
        progress.clear()
        progress.restart()

    with _client_from_env() as client:
        run = back_up_plans(
            plan_ids,
            client=client,
            target=target,
            options=options,
            on_plan=show_plan,
            on_page=show_page,
        )
    if args.output_format == "json":
        sys.stdout.write(json.dumps(run.as_dict(), indent=2) + "\n")
    else:
        for outcome in run.outcomes:
            line = f"{outcome.plan_id}: {outcome.status}, {plural(outcome.items, 'item')}"
            line += f" -> {outcome.manifest}" if outcome.manifest else ""
            line += f" ({outcome.error})" if outcome.error else ""
            sys.stdout.write(line + "\n")
            for warning in outcome.warnings:
                sys.stdout.write(f"  warning: {warning}\n")
    causes = {o.cause for o in run.outcomes if o.status == "failed"}
    if FailureCause.USAGE in causes:
        return EXIT_USAGE  # the first thing to fix: a plan's access, the key, --out, a limit
    if causes:
        return EXIT_SERVICE
    return EXIT_DATA if run.failed else EXIT_OK


def _run_diff(args: argparse.Namespace) -> int:
    from achieveit_sync.backup.diff import diff_backups

    result = diff_backups(args.before, args.after)
    if args.output_format == "json":
        sys.stdout.write(json.dumps(result.as_dict(), indent=2, default=str) + "\n")
    else:
        sys.stdout.write(result.as_text())
    return EXIT_OK


def _run_status(args: argparse.Namespace) -> int:
    from achieveit_sync.status import place_for, plan_backups, recent_files

    if not args.drop and not args.backups:
        raise ConfigurationError(
            "say where to look: --drop (the drop bucket or a folder with reports/) and/or "
            "--backups (the backups bucket or an export --out folder)"
        )
    now = datetime.now(UTC)
    files = recent_files(place_for(args.drop), args.last) if args.drop else []
    plans = plan_backups(place_for(args.backups), now) if args.backups else []
    if args.output_format == "json":
        document = {
            "files": [f.as_dict() for f in files],
            "plans": [p.as_dict() for p in plans],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return EXIT_OK
    if args.drop:
        sys.stdout.write(_table_of_files(files))
    if args.backups:
        sys.stdout.write(_table_of_plans(plans))
    problems = any(f.status == "failed" for f in files) or any(
        p.newest_complete is False or p.problem for p in plans
    )
    return EXIT_DATA if problems else EXIT_OK


def _run_query(args: argparse.Namespace) -> int:
    from achieveit_sync.backup.query import (
        TEMPLATE,
        format_result,
        named_queries,
        require_dependencies,
        resolve_named_query,
        run_query,
    )

    require_dependencies()
    queries = named_queries(args.template or TEMPLATE)
    if args.list:
        if args.sql or args.backups:
            raise ConfigurationError("--list prints the named queries: give it alone")
        for named in queries:
            sys.stdout.write(f"{named.name}\n  {named.description}\n\n")
            sys.stdout.write("".join(f"    {line}\n" for line in named.sql.splitlines()) + "\n")
        return EXIT_OK
    if not args.sql or not args.sql.strip():
        raise ConfigurationError(
            "give the SQL to run (or the name of a named query: achieveit-sync query --list)"
        )
    if not args.backups:
        raise ConfigurationError(
            "say where the history is: --backups s3://BUCKET[/PREFIX] or --backups DIR (an "
            "export --out folder)"
        )
    result = run_query(args.backups, resolve_named_query(args.sql, queries))
    if result.files_listed is not None:
        print(
            f"achieveit-sync: read {result.files_read} of {result.files_listed} snapshot "
            f"file(s) under {args.backups.rstrip('/')}/history/",
            file=sys.stderr,
        )
    sys.stdout.write(format_result(result, args.output_format))
    return EXIT_OK


def _table_of_files(files: list[Any]) -> str:
    if not files:
        return "Files: no reports yet\n"
    rows = [("When", "Status", "Published", "Rejected", "To check", "File")]
    rows += [
        (
            f.when,
            f.status,
            f"{f.published:,}",
            f"{f.rejected:,}",
            f"{f.ambiguous:,}",
            f.file,
        )
        for f in files
    ]
    return f"Files (the last {len(files)}):\n" + _table(rows)


def _table_of_plans(plans: list[Any]) -> str:
    if not plans:
        return "Backups: none yet\n"
    rows = [("Plan", "Last complete", "Age", "Items", "Newest run")]
    for p in plans:
        age = "-" if p.age_hours is None else f"{p.age_hours:,.1f} h"
        newest = (
            "-"
            if p.newest_complete is None
            else ("complete" if p.newest_complete else "INCOMPLETE")
        )
        rows.append(
            (
                p.plan_id,
                p.last_complete or "never",
                age,
                "-" if p.items is None else f"{p.items:,}",
                newest + (f" ({p.problem})" if p.problem else ""),
            )
        )
    return "Backups:\n" + _table(rows)


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    # Cells come from key names and documents anyone with write access can set: control
    # characters (terminal escapes) are shown escaped, never sent to the terminal.
    rows = [tuple(_printable(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append("  " + "  ".join(cells).rstrip() + "\n")
    return "".join(lines)


def _printable(text: str) -> str:
    """``text`` with control and format characters escaped (``\\x1b``, ``\\u202e``)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


# -- development and deployment helpers --------------------------------------------------------


def _run_sandbox(args: argparse.Namespace) -> int:
    if getattr(args, "sandbox_missing", False):
        raise ConfigurationError(
            "the sandbox is a development tool: install the project with 'pip install -e .' "
            "from a checkout"
        )
    from achieveit_sandbox.cli import run

    return run(args)


def _run_smoke(args: argparse.Namespace) -> int:
    from achieveit_sync.smoke import run

    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
