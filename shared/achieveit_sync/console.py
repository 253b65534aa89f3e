"""The ``achieveit-sync`` console script.

The command imports boto3, requests and Powertools before it can do anything: Ctrl-C
pressed during those imports must end as quietly as Ctrl-C anywhere else (one line, exit
130), not with a stack trace from deep inside a library. So the script's entry point is
this small module, which imports the command inside the handler.
"""

from __future__ import annotations

import sys

_EXIT_INTERRUPTED = 130


def run() -> None:
    try:
        from achieveit_sync.cli import main

        code = main()
    except KeyboardInterrupt:
        sys.stderr.write("\nachieveit-sync: interrupted before anything was done\n")
        code = _EXIT_INTERRUPTED
    sys.exit(code)


if __name__ == "__main__":
    run()
