"""The `kefuqa` console command: one entry point, a subcommand per job.

Each room registers its own subcommands (``register(subparsers)``) so this file
stays a switchboard; a room whose optional dependencies are missing simply
does not appear.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from types import FrameType

from kefuqa.settings import SettingsError

# Modules that expose ``register(subparsers)``; each subparser sets ``func``.
_COMMAND_MODULES = (
    "kefuqa.service.cli",
    "kefuqa.models.cli",
    "kefuqa.training.cli",
    "kefuqa.training.roles_cli",
    "kefuqa.grading.cli",
    "kefuqa.labeling.cli",
    "kefuqa.models.encoder.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kefuqa", description="Conversation QA for Chinese customer service")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("kefuqa"):
                continue  # a room left out of this install (its optional dependencies are missing)
            raise
        module.register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be, so the same clean-up runs on the way out:
    output flushed up to the last complete record, worker processes stopped."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def _silence_stdout() -> None:
    # The reader of our stdout is gone (`| head`). Point the descriptor at /dev/null so the
    # interpreter's last flush at exit does not fail again and print "Exception ignored".
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        sys.exit(2)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        code = args.func(args) or 0
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        _silence_stdout()
        code = 0
    except SettingsError as exc:  # a bad KEFUQA_* variable: say which, no traceback
        print(f"kefuqa: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM; a command may note how far it got
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        notes = "; ".join(getattr(exc, "__notes__", ()))
        print(f"kefuqa: {what}" + (f": {notes}" if notes else ""), file=sys.stderr)
        code = 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    sys.exit(code)


if __name__ == "__main__":
    main()
