"""The `kefuqa` console command: one entry point, a subcommand per job.

Each room registers its own subcommands (``register(subparsers)``) so this file
stays a switchboard; a room whose optional dependencies are missing simply
does not appear.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from kefuqa.settings import SettingsError

# Modules that expose ``register(subparsers)``; each subparser sets ``func``.
_COMMAND_MODULES = (
    "kefuqa.service.cli",
    "kefuqa.models.cli",
    "kefuqa.training.cli",
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


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        sys.exit(2)
    try:
        code = args.func(args) or 0
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        code = 0
    except SettingsError as exc:  # a bad KEFUQA_* variable: say which, no traceback
        print(f"kefuqa: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
