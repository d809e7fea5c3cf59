"""The sentence catalog: both languages for every key, with the same placeholders."""

from __future__ import annotations

import re
import string
from importlib import resources

import pytest

from kefuqa.grading.text_catalog import SENTENCES
from kefuqa.grading.text_labels import LABELS
from kefuqa.grading.texts import join, sentences, tr

CATALOG = {**SENTENCES, **LABELS}


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_keys_are_not_defined_twice():
    assert not set(SENTENCES) & set(LABELS)


@pytest.mark.parametrize("key", sorted(CATALOG))
def test_both_languages_have_the_same_placeholders(key):
    zh, en = CATALOG[key]
    assert zh.strip() and en.strip()
    assert _fields(zh) == _fields(en), key
    # the Chinese side has no English words left in it (placeholders, options, file and field names, and
    # the names of methods and tools aside)
    words = re.sub(r"\{[^}]*\}|--[a-z-]+|[a-z_]+\.(csv|json)|[a-z]+_[a-z_]+|Holm|jieba|TF-IDF|k-means", "", zh)
    assert not re.search(r"[A-Za-z]{4,}", words), key


@pytest.mark.parametrize("name", ["report.html.j2", "topics.html.j2"])
def test_every_key_the_template_uses_exists(name):
    template = resources.files("kefuqa.grading").joinpath(name).read_text("utf-8")
    used = set(re.findall(r"t\('([a-z0-9_.]+[a-z0-9_])'", template))
    assert used and not used - set(CATALOG), sorted(used - set(CATALOG))


def test_tr_formats_in_the_asked_language():
    assert tr("zh-CN", "grade.reason", score=56.25, how="绝对阈值") == "综合 56.2 分（绝对阈值）"
    assert tr("en", "grade.reason", score=56.25, how="absolute thresholds") == "score 56.2 (absolute thresholds)"
    assert join("zh-CN", ["甲", "乙"]) == "甲、乙" and join("en", ["a", "b"]) == "a, b"
    assert sentences("zh-CN", ["一。", "", "二。"]) == "一。二。" and sentences("en", ["A.", "B."]) == "A. B."
    with pytest.raises(KeyError):
        tr("en", "no.such.key")
