"""A model's recipe: stored with it, reused by ``kefuqa train --from-reviews`` unless a
flag says otherwise."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kefuqa.models.registry import Registry
from kefuqa.training.cli import RECIPE_DEFAULTS, _recipe, register


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["train", "--out", "runs/x", *argv])


def _champion(tmp_path, recipe: dict | None) -> Registry:
    reg = Registry(tmp_path / "registry")
    src = tmp_path / "src"
    (src / "lora").mkdir(parents=True)
    meta = {"name": "m", "version": "v1", "created": "2026-12-01T00:00:00", "data_hash": "d", "split_hash": "s",
            "metrics": {"macro_f1": dict.fromkeys(("politeness", "emotional_control", "resolution", "sentiment"), 0.9)}}
    reg.add(src, meta | ({"recipe": recipe} if recipe else {}))
    reg.promote("v1")
    return reg


def test_defaults_without_reviews_even_when_the_champion_has_a_recipe(tmp_path):
    reg = _champion(tmp_path, {"consistency": 1.0, "ensemble": 7, "lora": "own"})
    assert _recipe(_args(), reg) == RECIPE_DEFAULTS


def test_from_reviews_takes_the_champions_recipe_and_its_adapters(tmp_path):
    reg = _champion(tmp_path, {"consistency": 1.0, "ensemble": 7, "augment": 1, "lora": "own", "finetune_epochs": 0})
    recipe = _recipe(_args("--from-reviews"), reg)
    assert recipe["consistency"] == 1.0 and recipe["ensemble"] == 7
    assert recipe["lora"] == str(reg.path("v1") / "lora") and recipe["finetune_epochs"] == 0


def test_a_champion_on_a_student_retrains_on_its_own_student(tmp_path):
    reg = _champion(tmp_path, {"consistency": 2.0, "lora": "own", "student": "own"})
    recipe = _recipe(_args("--from-reviews"), reg)
    assert recipe["student"] == str(reg.path("v1") / "student") and recipe["lora"] == str(reg.path("v1") / "lora")
    assert _recipe(_args("--from-reviews", "--student", "runs/s6"), reg)["student"] == "runs/s6"


def test_a_given_flag_overrides_the_champions_recipe(tmp_path):
    reg = _champion(tmp_path, {"consistency": 1.0, "ensemble": 7, "lora": "own"})
    recipe = _recipe(_args("--from-reviews", "--ensemble", "2", "--consistency", "0"), reg)
    assert recipe["ensemble"] == 2 and recipe["consistency"] == 0.0 and recipe["lora"].endswith("lora")


def test_adapter_shape_is_part_of_the_recipe_and_an_older_recipe_keeps_the_small_adapters(tmp_path):
    reg = _champion(tmp_path, {"lora_rank": 16, "lora_modules": "all", "finetune_epochs": 2})
    recipe = _recipe(_args("--from-reviews"), reg)
    assert (recipe["lora_rank"], recipe["lora_modules"]) == (16, "all")
    older = _champion(tmp_path / "older", {"finetune_epochs": 2})  # stored before the adapters' shape was
    assert _recipe(_args("--from-reviews"), older)["lora_modules"] == "attention"
    assert _recipe(_args("--lora-rank", "4", "--lora-modules", "all"), reg)["lora_rank"] == 4


def test_adapter_flags_without_fine_tuning_or_a_bad_rank_are_refused_in_one_line(tmp_path, capsys, monkeypatch):
    from kefuqa.cli import main

    monkeypatch.setenv("KEFUQA_HOME", str(tmp_path / "home"))
    for argv, message in ((["--lora-rank", "16"], "--lora-rank: only with --finetune-epochs N"),
                          (["--lora-modules", "all", "--lora-rank", "4"], "--lora-rank and --lora-modules: only with"),
                          (["--finetune-epochs", "1", "--lora-rank", "0"], "--lora-rank 0: must be at least 1")):
        with pytest.raises(SystemExit) as exit_:
            main(["train", "--out", str(tmp_path / "out"), "--no-mlflow", *argv])
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("kefuqa train: ") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_a_champion_without_a_recipe_gives_the_defaults(tmp_path):
    reg = _champion(tmp_path, None)
    assert _recipe(_args("--from-reviews"), reg) == RECIPE_DEFAULTS


def test_reviewed_conversations_go_through_the_split_and_leakage_filter(tmp_path):
    """A reviewed (corrected) copy of a test or outside conversation must not reach training."""
    from kefuqa.training.dataset import load_corpus
    from kefuqa.training.train import TrainConfig, _corpus

    corpus = sorted((Path(__file__).parents[2] / "training" / "data" / "hand").glob("*.jsonl"))[:1]
    outside = sorted((Path(__file__).parents[2] / "training" / "data" / "outside").glob("*.jsonl"))[:1]
    convs = load_corpus(corpus)
    test_ids = [c.id for c in convs[:20]]
    test_copy = convs[0].model_copy(update={"id": "reviewed-copy-of-a-test-conversation"})
    outside_copy = load_corpus(outside)[0].model_copy(update={"id": "reviewed-copy-of-an-outside-conversation"})
    fresh = convs[-1].model_copy(update={"id": "reviewed-fresh"})
    same_id = convs[1].model_copy(update={"id": test_ids[1]})
    cfg = TrainConfig(data=corpus, out=tmp_path, encoder_dir=tmp_path, test_ids=test_ids, outside=outside,
                      extra_train=[test_copy, outside_copy, fresh, same_id])
    _, _, _, sp = _corpus(cfg)
    train_ids = {c.id for c in sp.train}
    assert "reviewed-copy-of-a-test-conversation" not in train_ids
    assert "reviewed-copy-of-an-outside-conversation" not in train_ids
    assert {"reviewed-copy-of-a-test-conversation", "reviewed-copy-of-an-outside-conversation"} <= set(
        sp.dropped_near_duplicates)
    assert "reviewed-fresh" in train_ids  # a correction of a training conversation is trained on
    assert [c.id for c in sp.test].count(test_ids[1]) == 1  # a reviewed copy never doubles a test conversation
