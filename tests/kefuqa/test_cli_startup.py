"""`kefuqa --help` and every command's --help stay quick: nothing heavy is imported
until a command runs."""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

from kefuqa.cli import build_parser

KEFUQA = shutil.which("kefuqa", path=str(Path(sys.executable).parent)) or "kefuqa"

# Seconds each to import; a command imports what it needs when it runs.
HEAVY = ("torch", "onnxruntime", "sklearn", "pyarrow", "fastapi", "sqlalchemy", "matplotlib", "jieba",
         "scipy", "pandas", "statsmodels", "ray", "uvicorn", "starlette", "transformers", "tokenizers")

# Runs in a fresh interpreter: the help of argv's command (and, with --all, of every command),
# then the heavy modules loaded by then, as JSON on the last line of stderr.
PROBE = """
import json, sys
from kefuqa.cli import build_parser, main

loaded = {}
def help_of(argv):
    try:
        main(argv)
    except SystemExit:
        pass
    loaded[" ".join(argv)] = sorted(m for m in HEAVY if m in sys.modules)

HEAVY = json.loads(sys.argv[1])
if sys.argv[2] == "--all":
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        help_of([name, "--help"])
else:
    help_of(sys.argv[2:])
print(json.dumps(loaded), file=sys.stderr)
"""


def _heavy_after(*argv: str) -> dict[str, list[str]]:
    res = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY), *argv],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stderr.strip().splitlines()[-1])


def test_top_level_help_imports_nothing_heavy():
    assert _heavy_after("--help") == {"--help": []}


def test_score_help_imports_nothing_heavy():
    assert _heavy_after("score", "--help") == {"score --help": []}


def test_no_command_help_imports_anything_heavy():
    loaded = _heavy_after("--all")
    assert "score --help" in loaded and "serve --help" in loaded
    assert {cmd: mods for cmd, mods in loaded.items() if mods} == {}


def test_top_level_help_imports_none_of_the_rooms():
    """The command list comes from the switchboard's table: no room's code, not even settings
    (finding a room imports its parent package, an empty ``__init__``)."""
    probe = ("import sys; from kefuqa.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith(('kefuqa.', 'pydantic', 'numpy'))), file=sys.stderr)")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    loaded = set(ast.literal_eval(res.stderr.strip().splitlines()[-1]))
    assert "kefuqa.cli" in loaded and loaded - {"kefuqa.cli"} <= {"kefuqa.models"}, loaded


def _listed(parser: argparse.ArgumentParser) -> list[tuple[str, str | None]]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [(a.dest, a.help) for a in sub._choices_actions]


def test_the_command_list_is_what_the_rooms_register():
    """Same commands, same order, same one-line help as the rooms give when all are imported."""
    listed = _listed(build_parser(""))
    assert listed == _listed(build_parser()) and len(listed) >= 13


def test_a_command_runs_with_its_own_room_loaded_and_the_others_listed(tmp_path):
    parser = build_parser("score")
    args = parser.parse_args(["score", str(tmp_path / "in.jsonl"), "--workers", "2"])
    assert args.command == "score" and args.workers == 2 and callable(args.func)
    assert parser.parse_args(["grade"]).command == "grade"  # listed only: no options, no func
    assert not hasattr(parser.parse_args(["grade"]), "func")


def test_the_help_still_shows_the_options_of_score():
    res = subprocess.run([KEFUQA, "score", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    assert "--resume" in res.stdout and "--quiet" in res.stdout and "--workers" in res.stdout


def test_the_topics_help_names_the_topic_counts_it_tries():
    from kefuqa.grading.topics import AUTO_K

    res = subprocess.run([KEFUQA, "topics", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and f"{AUTO_K[0]}–{AUTO_K[-1]}" in res.stdout
