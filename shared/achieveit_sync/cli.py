"""The ``achieveit-sync`` command. Subcommands share the code paths of the Lambdas.

Exit codes: 0 success, 1 the work failed (invalid data, an API error), 2 usage errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "sandbox":
        return _run_sandbox(args)
    parser.print_help(sys.stderr)
    return 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="achieveit-sync",
        description="Publish updates to AchieveIt plans and back plans up.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
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


def _run_sandbox(args: argparse.Namespace) -> int:
    if getattr(args, "sandbox_missing", False):
        print(
            "the sandbox is a development tool: install the project with "
            "'pip install -e .' from a checkout",
            file=sys.stderr,
        )
        return 2
    from achieveit_sandbox.cli import run

    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
