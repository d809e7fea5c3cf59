"""Compositional augmentation of training conversations: label-preserving
paraphrase banks, slot filling and real-chat noise. Applied to training
conversations only, never to the test split."""

from __future__ import annotations

import random
import re
from functools import lru_cache

import opencc

from kefuqa.contract import Conversation

# Swaps within one meaning, so the gold labels stay true.
PARAPHRASES: dict[str, list[str]] = {
    "您好": ["您好", "你好", "亲，您好", "您好呀", "在的，您好"],
    "谢谢": ["谢谢", "感谢", "多谢", "谢谢您"],
    "不好意思": ["不好意思", "抱歉", "实在抱歉", "非常抱歉"],
    "请稍等": ["请稍等", "稍等一下哦", "您稍等", "请您稍等片刻"],
    "好的": ["好的", "好滴", "好", "ok", "嗯嗯好的"],
    "在吗": ["在吗", "在不在", "有人吗", "在么", "客服在吗"],
    "怎么回事": ["怎么回事", "咋回事", "什么情况", "搞什么"],
    "快递": ["快递", "物流", "包裹"],
    "蟹蟹": ["蟹蟹", "谢谢", "3q"],
}
PRODUCTS = ["羽绒服", "电饭煲", "口红", "蓝牙耳机", "猫粮", "床单四件套", "运动鞋", "扫地机器人", "奶粉", "手机壳",
            "空气炸锅", "连衣裙"]
_PRODUCT_RE = re.compile("|".join(map(re.escape, PRODUCTS)))
_MONEY_RE = re.compile(r"(\d{2,4})(元|块)")
TYPOS = {"在": "再", "的": "得", "退款": "推款", "订单": "定单", "已经": "以经", "那个": "拿个", "账号": "帐号"}
EMOJI_END = ["😊", "🙏", "😂", "👍", "～", "~~", "。。。", "！！", "？？"]


@lru_cache(maxsize=1)
def _s2t() -> opencc.OpenCC:
    return opencc.OpenCC("s2t")


def _paraphrase(text: str, rng: random.Random) -> str:
    for key, options in PARAPHRASES.items():
        if key in text and rng.random() < 0.5:
            text = text.replace(key, rng.choice(options), 1)
    return text


def _slots(text: str, rng: random.Random, product: str) -> str:
    text = _PRODUCT_RE.sub(product, text)
    return _MONEY_RE.sub(lambda m: f"{max(10, int(int(m.group(1)) * rng.uniform(0.5, 1.8)))}{m.group(2)}", text)


def _noise(text: str, rng: random.Random, voice: bool) -> str:
    if voice:  # ASR transcripts: little punctuation, fillers
        text = re.sub(r"[，。！？,.!?]", " ", text)
        if rng.random() < 0.3:
            text = rng.choice(["嗯 ", "那个 ", "呃 ", "就是 "]) + text
    if rng.random() < 0.15:
        src, dst = rng.choice(list(TYPOS.items()))
        text = text.replace(src, dst, 1)
    if not voice and rng.random() < 0.15:
        text += rng.choice(EMOJI_END)
    return text


def augment(conv: Conversation, rng: random.Random, k: int) -> Conversation:
    """One label-preserving variant of a training conversation."""
    product = rng.choice(PRODUCTS)
    traditional = rng.random() < 0.12  # some customers write traditional characters
    voice = conv.channel == "voice"
    turns = []
    for turn in conv.turns:
        text = turn.text
        if turn.speaker != "system":
            text = _noise(_slots(_paraphrase(text, rng), rng, product), rng, voice).strip() or turn.text
            if traditional and turn.speaker == "customer":
                text = _s2t().convert(text)
        turns.append(turn.model_copy(update={"text": text}))
    return conv.model_copy(update={"id": f"{conv.id}~aug{k}", "turns": turns})


def augment_corpus(convs: list[Conversation], copies: int, seed: int) -> list[Conversation]:
    # Each variant draws from a generator seeded by (seed, id, copy), not from one stream over
    # the corpus: a conversation's variants stay the same when writers are added or files
    # reordered, so their cached embeddings stay valid and runs stay comparable.
    return [augment(c, random.Random(f"{seed}:{c.id}:{k}"), k) for c in convs for k in range(copies)]
