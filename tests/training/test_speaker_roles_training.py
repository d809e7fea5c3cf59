"""Fitting the speaker-role check: turn rows from the int8 encoder as the engine embeds them,
both models fitted and written as a file the scorer reads, the threshold rule, and the
command's user errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kefuqa.contract import ModelInfo
from kefuqa.models.call_cues import load_call_cues
from kefuqa.models.speaker_roles import RoleChecker, RoleModel, read_role_file
from kefuqa.training.dataset import HAND_DIR, load_corpus
from kefuqa.training.speaker_roles import (
    RolesConfig,
    choose_threshold,
    fit_rows,
    turn_rows,
    write_role_file,
)


def _home() -> Path | None:
    home = Path(os.environ.get("KEFUQA_HOME", Path.home() / ".kefuqa"))
    return home if (home / "registry" / "champion.json").exists() else None


def test_the_threshold_is_the_lowest_with_enough_precision():
    # 90 turns 0.99 sure of their true role, 10 turns 0.9 sure of the other one.
    truth = np.array([0.99] * 90 + [0.1] * 10)
    # At 0.9 and below those 10 are flagged on their own speaker: at a 5% swap rate precision is
    # 0.05·0.9 / (0.05·0.9 + 0.95·0.1) = 0.32. The next step up flags only the swaps.
    assert choose_threshold(truth, 0.05, 0.9) == 0.905
    truth = np.array([0.999] * 99 + [0.5])
    assert choose_threshold(truth, 0.05, 0.9) == 0.55  # the grid starts at 0.55


@pytest.mark.skipif(_home() is None, reason="no neural model installed in KEFUQA_HOME (kefuqa models build-default)")
def test_fitted_models_are_a_file_the_scorer_reads(tmp_path):
    pytest.importorskip("onnxruntime")
    from kefuqa.models.neural.engine import OnnxEmbedder
    from kefuqa.models.registry import Registry

    home = _home()
    assert home is not None
    registry = Registry(home / "registry")
    version = registry.resolve(None)
    convs = [c for c in load_corpus([HAND_DIR / "w16.jsonl"]) if c.channel == "voice"][:60]
    embed = OnnxEmbedder(registry.path(version))
    rows = turn_rows(convs, load_call_cues(), embed)
    assert rows.embedding.shape == (len(rows.is_agent), 384) and rows.cues.shape == (len(rows.is_agent), 2)
    cfg = RolesConfig(data=[HAND_DIR / "w16.jsonl"], encoder=ModelInfo(name="kefu-e5-small-zh", version=version))
    content = fit_rows(cfg, rows, [c.id for c in convs], log=lambda _: None)
    path = write_role_file(content, tmp_path / "speaker_roles.json")
    role_file = read_role_file(path)
    assert role_file.encoder.version == version
    model = RoleModel.of(role_file.embedding, uses_embedding=True)
    assert model.n_features == 386 and len(role_file.embedding.layers) == 2
    # On turns it was fitted on, a fitted network gets most speakers right.
    checker = RoleChecker(load_call_cues(), model, embed)
    right = [(p >= 0.5) == (c.turns[i].speaker == "agent") for c in convs[:20] for i, p in checker.p_agent(c).items()]
    assert np.mean(right) > 0.8


def test_roles_train_user_errors_exit_2_with_one_line(tmp_path):
    env = {**os.environ, "KEFUQA_HOME": str(tmp_path / "home")}
    for args, words in ((["--swap-rate", "0.7"], "--swap-rate must be in (0, 0.5)"),
                        ([], "no champion model in")):
        res = subprocess.run([sys.executable, "-m", "kefuqa.cli", "roles", "train", *args], capture_output=True,
                             text=True, env=env, timeout=120)
        assert res.returncode == 2 and words in res.stderr and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
