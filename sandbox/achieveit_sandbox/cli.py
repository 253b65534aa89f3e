"""``achieveit-sync sandbox``: run the AchieveIt sandbox from the shell until interrupted.

The first line on standard output is one JSON object with ``base_url``, ``ca_file``,
``api_key`` and ``plan_ids``, so that scripts can read it and point the client there.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from achieveit_sandbox.faults import FaultPlan
from achieveit_sandbox.model import Role
from achieveit_sandbox.rules import SandboxBehaviour
from achieveit_sandbox.seed import generate_plan, load_example_organisation, load_fixture
from achieveit_sandbox.server import SandboxServer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument(
        "--ca-file",
        type=Path,
        help="where to write the sandbox's CA certificate (default: a temporary folder)",
    )
    parser.add_argument(
        "--fixture",
        type=Path,
        help="organisation fixture (JSON); default: the shipped example organisation",
    )
    parser.add_argument(
        "--generate-plan",
        action="append",
        default=[],
        metavar="PLAN_ID:ITEMS",
        help="add a generated plan with this many items (repeatable), e.g. BIG:100000",
    )
    parser.add_argument("--api-key", help="use this key for the service account")
    parser.add_argument(
        "--faults",
        help='fault plan as JSON, e.g. \'{"rates": {"503": 0.05}, "seed": 1}\', or @FILE',
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds every API request takes"
    )
    parser.add_argument(
        "--env-out",
        type=Path,
        metavar="FILE",
        help="also write ACHIEVEIT_BASE_URL, ACHIEVEIT_API_KEY, ACHIEVEIT_CA_BUNDLE and "
        "ACHIEVEIT_PLAN_IDS as shell exports to FILE (then: . FILE)",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="print the organisation's plans (id, name, items) and stop",
    )


def run(args: argparse.Namespace) -> int:
    if args.fixture:
        organisation, service_account = load_fixture(args.fixture)
    else:
        organisation, service_account = load_example_organisation()
    for spec in args.generate_plan:
        plan_id, _, count = spec.partition(":")
        if not plan_id or not count.isdigit():
            print(f"--generate-plan expects PLAN_ID:ITEMS, got '{spec}'", file=sys.stderr)
            return 2
        organisation.add_plan(generate_plan(plan_id, int(count), seed=len(organisation.plans)))
        service_account.plan_roles[plan_id] = Role.EDITOR
    if args.api_key:
        service_account.api_key = args.api_key
    if args.list:
        for plan in organisation.plans.values():
            print(f"{plan.id}\t{plan.name}\t{len(plan.items):,} items")
        return 0
    faults = FaultPlan()
    if args.faults:
        text = Path(args.faults[1:]).read_text() if args.faults.startswith("@") else args.faults
        faults = FaultPlan.from_dict(json.loads(text))
    own_folder: Path | None = None
    if args.ca_file:
        ca_file = args.ca_file
    else:
        own_folder = Path(tempfile.mkdtemp(prefix="achieveit-sandbox-"))
        ca_file = own_folder / "ca.pem"

    server = SandboxServer(
        organisation,
        service_account,
        ca_file=ca_file,
        host=args.host,
        port=args.port,
        behaviour=SandboxBehaviour(latency_seconds=args.latency),
        faults=faults,
    )
    stop = threading.Event()
    _quiet_client_disconnects()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with server:
        info = server.connection_info()
        if args.env_out:
            args.env_out.write_text(
                f"export ACHIEVEIT_BASE_URL={shlex.quote(info['base_url'])}\n"
                f"export ACHIEVEIT_API_KEY={shlex.quote(info['api_key'])}\n"
                f"export ACHIEVEIT_CA_BUNDLE={shlex.quote(info['ca_file'])}\n"
                f"export ACHIEVEIT_PLAN_IDS={shlex.quote(' '.join(info['plan_ids']))}\n"
            )
            args.env_out.chmod(0o600)  # it holds a (sandbox) key
        print(json.dumps(info), flush=True)
        plans = ", ".join(
            f"{plan.id} ({len(plan.items):,} items)" for plan in organisation.plans.values()
        )
        print(
            f"AchieveIt sandbox serving {organisation.name} at {server.base_url}; plans: "
            f"{plans} (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )
        stop.wait()
    if own_folder is not None:  # a CA of its own making: nothing is left behind
        shutil.rmtree(own_folder, ignore_errors=True)
    requests, updates = len(server.recorded_requests()), len(server.stored_updates())
    print(
        f"sandbox stopped after {requests} request{'' if requests == 1 else 's'}, "
        f"{updates} update{'' if updates == 1 else 's'} stored",
        file=sys.stderr,
    )
    return 0


def _quiet_client_disconnects() -> None:
    """A client that goes away mid-answer (Ctrl-C on a publish) is normal for a sandbox;
    aiohttp logs it as an error with a stack trace, which reads like the sandbox broke."""
    import asyncio
    import logging

    def keep(record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, ConnectionError | asyncio.CancelledError)

    for name in ("aiohttp.server", "aiohttp.access", "aiohttp.web"):
        logging.getLogger(name).addFilter(keep)
