"""A customer threatening to complain (投诉, 12315, 差评, 曝光 …), found in one turn's text.

A threat is the customer's own intent, so a term does not count when the clause
before it negates or withdraws it ("不是要投诉", "不会给差评", "已经撤销投诉"), or when it
sits inside quotation marks (the customer quoting someone). The text is matched
in its normal form (traditional → simplified, full-width → half-width), which has
the same length as the text, so the spans index the text as the reviewer sees it.
"""

from __future__ import annotations

import re

from kefuqa.text.normalize import normalize

# Where a customer takes a complaint: the shop, the platform's review, the regulator's
# hotlines (12315 consumer, 12345 city), consumer bodies, complaint sites, press, courts.
_TERMS = re.compile(
    r"投诉|差评|曝光|消协|消费者协会|黑猫|工商局|市场监管|市监局|举报|起诉|律师|法院|3·15|315晚会"
    r"|(?<!\d)(?:12315|12345)(?!\d)"
)
# The clause before a term ends in a negation or a withdrawal, with only helper words
# (是 要 会 去 给 你们 …) between it and the term.
_HELPERS = r"(?:是|有|会|想|要|打算|准备|用|需要|再|去|给|说|过|了|掉|这个|那个|你们|你|您|贵司|他们|他)*"
_NEGATED = re.compile(r"(?:不|没|别|勿|无意|并非|撤销|撤回|撤掉|取消|删除|删掉|删)" + _HELPERS + r"$")
_CLAUSE_END = re.compile(r"[,.!?;:，。！？；：、~\s]")
_QUOTED = re.compile(r"“[^”]*”|「[^」]*」|『[^』]*』|\"[^\"]*\"|‘[^’]*’")


def _clause_before(text: str, pos: int) -> str:
    start = 0
    for m in _CLAUSE_END.finditer(text, 0, pos):
        start = m.end()
    return text[start:pos]


def complaint_threats(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each complaint threat in ``text``, in order."""
    norm = normalize(text)
    quoted = [m.span() for m in _QUOTED.finditer(norm)]
    spans = []
    for m in _TERMS.finditer(norm):
        if any(a <= m.start() < b for a, b in quoted):
            continue
        if _NEGATED.search(_clause_before(norm, m.start())):
            continue
        spans.append(m.span())
    return spans
