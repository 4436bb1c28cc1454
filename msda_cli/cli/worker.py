"""`python -m msda_cli.cli.worker REPLY_FD`: a persistent worker of the parallel launcher (engine/worker.py),
training each run handed to it as `msda train ARGS` would in a process of its own."""

from __future__ import annotations

import sys

from msda_cli.cli import main
from msda_cli.engine.worker import serve


def _train(argv: list[str]) -> int:
    main(argv)  # exits (SystemExit) with any status but 0
    return 0


if __name__ == "__main__":
    serve(_train, int(sys.argv[1]))
