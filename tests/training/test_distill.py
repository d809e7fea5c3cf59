"""The distilled student: a few of the teacher's layers plus small adapters, trained to give
the teacher's turn vectors, rebuilt from the teacher and the adapters alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from kefuqa.models.encoder.convert import convert
from kefuqa.models.encoder.embed import Encoder
from kefuqa.models.encoder.prune import load_kept_ids
from kefuqa.training.build_default import teacher_artifact
from kefuqa.training.distill import DistillConfig, build_student, distill, spread_layers

TEXTS = [
    "亲，您好，请问有什么可以帮您", "我的快递三天了还没到", "这边帮您查一下物流，请稍等", "不知道，你自己看",
    "退款已经原路退回了，一到三个工作日到账", "我要投诉你们", "给您添麻烦了，非常抱歉", "喂 你好 宽带又断了",
    "工单已经提交 二十四小时内师傅联系您", "好的谢谢", "我已经说过了", "那您去投诉啊",
    "理解您的心情 我马上帮您处理", "这个没办法", "嗯", "祝您生活愉快",
]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    kept = set(load_kept_ids(teacher_artifact() / "kept_ids.json").tolist())
    return convert(tmp_path_factory.mktemp("teacher"), kept)


def test_spread_layers_end_at_the_teachers_last_layer() -> None:
    assert spread_layers(4) == (2, 5, 8, 11)
    assert spread_layers(6) == (1, 3, 5, 7, 9, 11)
    assert spread_layers(12) == tuple(range(12))
    with pytest.raises(ValueError, match="1 to 12"):
        spread_layers(0)


def test_batches_group_texts_of_a_length_and_cover_each_text_once_per_epoch() -> None:
    from kefuqa.training.distill import _batches

    lengths = [(i * 37) % 120 + 1 for i in range(1000)]
    batches = _batches(lengths, 64, seed=1)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    # Sorted by length before cutting: a batch spans a few characters, not the whole range.
    assert max(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) <= 10
    # A new epoch's seed gives another order of batches (the model must not see a fixed curriculum).
    assert [b[0] for b in _batches(lengths, 64, seed=2)] != [b[0] for b in batches]


def test_the_student_moves_towards_the_teacher_and_rebuilds_from_its_adapters(teacher: Path, tmp_path: Path) -> None:
    targets = Encoder(teacher).embed(TEXTS, max_length=128)
    cfg = DistillConfig(layers=(5, 11), rank=4, lr=5e-3, batch_size=4, epochs=3, holdout=0.25)
    lines: list[str] = []
    out = distill(TEXTS, targets, teacher, tmp_path / "student", cfg, log=lines.append)

    before = float(lines[0].rsplit("before training ", 1)[1].split()[0])
    after = float(lines[-1].split("held-out cosine ")[1].split()[0])
    assert after > before  # held-out texts: the student learnt vectors, not the training rows
    assert json.loads((out / "student.json").read_text())["layers"] == [5, 11]
    # Nothing about this machine: the teacher is rebuilt wherever the student is.
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] is None
    assert not (out / "README.md").exists()
    with safe_open(str(out / "adapter_model.safetensors"), "np") as f:
        names = list(f.keys())
        assert names and all("lora_" in n for n in names)  # adapters only: the layers are the teacher's

    student = build_student(teacher, out, tmp_path / "built")
    config = json.loads((student / "config.json").read_text())
    assert config["num_hidden_layers"] == 2
    vectors = Encoder(student).embed(TEXTS[:4], max_length=128)
    cosine = (vectors * targets[:4]).sum(-1)
    assert vectors.shape == (4, 384) and np.all(cosine > 0.5)


def test_bad_inputs_say_what_is_wrong(teacher: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one vector per text"):
        distill(TEXTS, np.zeros((3, 384), np.float32), teacher, tmp_path / "s", DistillConfig())
    with pytest.raises(ValueError, match="increasing indexes"):
        distill(TEXTS, np.zeros((len(TEXTS), 384), np.float32), teacher, tmp_path / "s", DistillConfig(layers=(3, 12)))
    with pytest.raises(ValueError, match="not a distilled student"):
        build_student(teacher, tmp_path, tmp_path / "built")


def test_the_pool_holds_each_normalised_turn_once_with_the_training_variants() -> None:
    from kefuqa.contract import Conversation
    from kefuqa.models.neural.features import turn_text
    from kefuqa.training.augment import augment_corpus
    from kefuqa.training.distill_run import pool_texts

    turns = [{"speaker": "customer" if i % 2 == 0 else "agent", "text": t} for i, t in enumerate(TEXTS[:6])]
    convs = [Conversation.model_validate({"id": f"c{k}", "agent_id": "a1", "channel": "chat", "turns": turns})
             for k in range(3)]
    pool = pool_texts(convs, variants=2, seed=13)
    assert len(pool) == len(set(pool))
    variants = augment_corpus(convs, 1, 13) + augment_corpus(convs, 1, 14)
    expected = {turn_text(t.text) for c in convs + variants for t in c.turns}
    assert set(pool) == expected and len(pool) > 6  # the variants add texts the originals lack


def test_a_head_trained_on_a_student_ships_and_rebuilds_with_it(teacher: Path, tmp_path: Path) -> None:
    from kefuqa.models.neural.engine import NeuralEngine
    from kefuqa.models.registry import Registry
    from kefuqa.training.build_default import build_version
    from kefuqa.training.dataset import load_corpus
    from kefuqa.training.train import TrainConfig, train

    examples = Path(__file__).resolve().parents[2] / "examples" / "conversations.jsonl"
    cfg = DistillConfig(layers=(11,), rank=2, batch_size=8, epochs=1)
    student = distill(TEXTS, Encoder(teacher).embed(TEXTS, max_length=128), teacher, tmp_path / "student", cfg,
                      log=lambda *_: None)
    build_student(teacher, student, student / "encoder")  # the runnable student, as kefuqa distill leaves it
    ids = [c.id for c in load_corpus([examples])]
    train_cfg = TrainConfig(data=[examples], out=tmp_path / "out", encoder_dir=teacher, epochs=1, ensemble=1,
                            augment_copies=0, review_sentences=8, test_ids=ids[:8], seed=3, outside=[],
                            student=student)
    meta = train(train_cfg, log=lambda *_: None)
    assert meta["encoder"] == {"role": "student", "layers": 1, "teacher_layers_kept": [11]}
    assert (train_cfg.out / "student" / "student.json").exists()
    assert not (train_cfg.out / "student" / "encoder").exists()  # rebuilt from the adapters, never shipped
    # The registry builds it like the shipped model: teacher rebuilt, cut down, adapters merged.
    version = build_version(tmp_path / "home", train_cfg.out, log=lambda *_: None)
    model = Registry(tmp_path / "home" / "registry").path(version)
    assert version == meta["version"] and (model / "student" / "student.json").exists()
    engine = NeuralEngine(model)
    record = engine.score_batch(load_corpus([examples])[:1])[0]
    assert set(record["labels"]) == {"politeness", "emotional_control", "resolution", "sentiment"}


def test_a_student_fine_tuned_on_the_labels_ships_its_adapters_and_rebuilds_with_them(
        teacher: Path, tmp_path: Path) -> None:
    from kefuqa.models.registry import Registry
    from kefuqa.training.build_default import build_version
    from kefuqa.training.dataset import load_corpus
    from kefuqa.training.finetune import apply_lora
    from kefuqa.training.train import TrainConfig, train

    examples = Path(__file__).resolve().parents[2] / "examples" / "conversations.jsonl"
    lora = teacher_artifact() / "lora"
    tuned_teacher = apply_lora(teacher, lora, tmp_path / "tuned-teacher")
    cfg = DistillConfig(layers=(11,), rank=2, batch_size=8, epochs=1)
    student = distill(TEXTS, Encoder(tuned_teacher).embed(TEXTS, max_length=128), tuned_teacher,
                      tmp_path / "student", cfg, log=lambda *_: None)
    ids = [c.id for c in load_corpus([examples])]
    base = dict(data=[examples], encoder_dir=teacher, epochs=1, ensemble=1, augment_copies=0, review_sentences=8,
                test_ids=ids[:8], seed=3, outside=[], student=student, finetune_epochs=1)
    with pytest.raises(ValueError, match="give the adapters of the teacher"):
        train(TrainConfig(out=tmp_path / "no-lora", **base), log=lambda *_: None)

    out = tmp_path / "out"
    meta = train(TrainConfig(out=out, lora=lora, **base), log=lambda *_: None)
    assert meta["encoder"] == {"role": "student", "layers": 1, "teacher_layers_kept": [11], "fine_tuned": True}
    assert meta["base"].endswith("; student of 1 layers, LoRA r8 fine-tuned 1 epochs")
    with safe_open(str(out / "student" / "tuned" / "adapter_model.safetensors"), "np") as f:
        names = list(f.keys())
        assert names and all("lora_" in n for n in names)  # adapters only, over the distilled student
    # The fine-tuned adapters are part of the rebuilt student: its vectors are not the distilled one's.
    distilled = Encoder(build_student(tuned_teacher, student, tmp_path / "distilled")).embed(TEXTS[:4])
    shipped = Encoder(build_student(tuned_teacher, out / "student", tmp_path / "shipped")).embed(TEXTS[:4])
    assert np.abs(distilled - shipped).max() > 1e-6  # the same build twice is bit-identical
    version = build_version(tmp_path / "home", out, log=lambda *_: None)
    assert (Registry(tmp_path / "home" / "registry").path(version) / "student" / "tuned").is_dir()

    with pytest.raises(ValueError, match="already fine-tuned"):  # stage 1 runs once, on a distilled student
        train(TrainConfig(out=tmp_path / "again", lora=lora, **base | {"student": out / "student"}),
              log=lambda *_: None)


def test_the_command_says_what_is_wrong_in_one_line(tmp_path: Path, capsys) -> None:
    from kefuqa.cli import main

    for argv, message in ((["--lora", str(tmp_path)], "no adapter_model.safetensors there"),
                          (["--layers", "13"], "--layers: a student has 1 to 12 layers, not 13")):
        with pytest.raises(SystemExit) as exit_:
            main(["distill", "--out", str(tmp_path / "s"), *argv])
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("kefuqa distill: ") and message in err and "\n" not in err
