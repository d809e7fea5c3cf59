"""What every ``kefuqa review`` command shares: the one-line user error, the store engine, the actor."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable

from pydantic import ValidationError

from kefuqa.io.readers import InputError, describe_validation_error
from kefuqa.settings import Settings, load_settings


class CliError(Exception):
    pass


def actor() -> str:
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def store_engine(args: argparse.Namespace, settings: Settings):
    from .config import db_url
    from .db import open_engine

    return open_engine(db_url(settings, args.db))


def fail(msg: str, prog: str = "kefuqa review") -> int:
    print(f"{prog}: {msg}", file=sys.stderr)
    return 2


def handled(handler, prog: str = "kefuqa review"):
    """Wrap a handler so every user error becomes one line (``prog: message``) and exit 2."""

    def wrapped(args: argparse.Namespace) -> int:
        from .access import ReviewError
        from .auth import AuthError
        from .db import StoreError
        from .importer import ImportInputError

        try:
            return handler(args, load_settings())
        except (CliError, StoreError, AuthError, InputError, ImportInputError) as exc:
            return fail(str(exc), prog)
        except ReviewError as exc:
            return fail(exc.message, prog)
        except ValidationError as exc:  # settings from the environment
            return fail(f"bad setting: {describe_validation_error(exc)}", prog)
        except OSError as exc:
            return fail(f"{getattr(exc, 'filename', None) or ''}: {exc.strerror or exc}".lstrip(": "), prog)
        except KeyboardInterrupt:
            return 130

    return wrapped


def prints_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """The action of a command group run without a sub-command: its help, exit code 2."""

    def show_help(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show_help

