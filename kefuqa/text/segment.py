"""Word segmentation with jieba and a customer-service user dictionary.

A dedicated ``jieba.Tokenizer`` (not the module-level default) keeps the user
dictionary out of global state shared with other libraries.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib import resources

import jieba


@lru_cache(maxsize=1)
def tokenizer() -> jieba.Tokenizer:
    jieba.setLogLevel(logging.WARNING)
    tok = jieba.Tokenizer()
    words = resources.files("kefuqa.text").joinpath("data/cs_userdict.txt")
    with resources.as_file(words) as path, path.open("rb") as fh:
        tok.load_userdict(fh)  # a file object: jieba leaves paths it opens unclosed
    return tok


def segment(text: str) -> list[str]:
    return [w for w in tokenizer().lcut(text) if w.strip()]


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """Greetings, fillers, particles and generic verbs of customer-service chat (嗯 啊 那个 亲
    你好 …), in normalised form: words that say nothing about what a customer asks about."""
    text = resources.files("kefuqa.text").joinpath("data/cs_stopwords.txt").read_text("utf-8")
    return frozenset(w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#"))
