"""The `msda` command line: one thin function per command, delegating to the package.

Bad input anywhere raises `MsdaError`; `main` turns it into one line on stderr and exit 2.
"""

from __future__ import annotations

import sys

import typer

from msda_cli.errors import MsdaError, RunFailed, disk_full
from msda_cli.cli.common import app, err
from msda_cli.cli import train, measure, tables, figures, runs, store  # each registers its commands on import

__all__ = ["app", "main"]

# --help lists the commands in this order (a session's course), not in the order of their modules.
_ORDER = (train.train, measure.eval_, measure.robust, figures.preview, tables.report, tables.reproduce,
          measure.subsample, figures.export)
app.registered_commands.sort(key=lambda command: _ORDER.index(command.callback))


def main(argv: list[str] | None = None) -> None:
    from msda_cli.hostmem import keep_freed_memory

    keep_freed_memory()  # CPU steps stop paying page faults for every fresh batch-sized tensor
    try:
        # Not standalone: click's usage errors come here and are told in one line, not a box.
        code = app(args=argv, prog_name="msda", standalone_mode=False)
    except typer.TyperException as e:  # the base of typer's (vendored) click exceptions
        if type(e).__name__ == "NoArgsIsHelpError":  # the help is already printed (as typer tests it)
            sys.exit(2)
        ctx = getattr(e, "ctx", None)
        words = (sys.argv[1:] if argv is None else argv)[:1]
        command = ctx.command_path if ctx else " ".join(["msda"] + [w for w in words if not w.startswith("-")])
        message = " ".join(e.format_message().split()).rstrip(".")
        err.print(f"msda: error: {message}; see `{command} --help`", markup=False, highlight=False, soft_wrap=True)
        sys.exit(getattr(e, "exit_code", 2))
    except typer.Abort:
        err.print("msda: aborted", markup=False)
        sys.exit(1)
    except MsdaError as e:
        err.print(f"msda: error: {e}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except RunFailed as e:
        err.print(f"msda: {e}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("msda: interrupted", markup=False)
        sys.exit(130)
    except Exception as e:  # a full disk wherever a file is written: one line, not a traceback
        full = disk_full(e)
        if full is None:
            raise
        where = f" writing {full.filename}" if full.filename else ""
        err.print(f"msda: error: the disk is full ({full.strerror}{where}); free some space and run the command again",
                  markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    if isinstance(code, int) and code:  # an exit code (typer.Exit, an interrupt); commands return None
        sys.exit(code)
