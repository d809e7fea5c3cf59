"""PII masking: applied to every turn before anything is stored, logged or scored.

Each kind is a compiled pattern replaced by a bracketed tag the reviewer can
read (``[手机号]``). Order matters: longer, more specific kinds go first so an
ID-card number is not half-masked as a phone number.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kefuqa.text.normalize import fold_width

if TYPE_CHECKING:
    from kefuqa.settings import PiiSettings

_D = r"(?<![0-9A-Za-z])"  # no digit/letter before
_E = r"(?![0-9A-Za-z])"  # no digit/letter after
_CN = "\u4e00-\u9fff"

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
ID_CARD = re.compile(
    _D + r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]" + _E
)
# 16–19 digits, optionally grouped by spaces or dashes: a card by its Luhn check, or by
# its issuer prefix and length when the digits were mistyped or misheard (Luhn fails).
BANK_CARD = re.compile(_D + r"(?:\d[ -]?){15,18}\d" + _E)
MOBILE = re.compile(_D + r"(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}" + _E)
LANDLINE = re.compile(_D + r"(?:\(0\d{2,3}\)|（0\d{2,3}）|0\d{2,3}[ -]?)\d{7,8}(?:[-转]\d{1,5})?" + _E)
ORDER_NO = re.compile(
    r"(?:(?<=订单号)|(?<=订单号：)|(?<=订单号:)|(?<=单号)|(?<=单号：)|(?<=单号:))\s*[A-Za-z0-9-]{8,30}"
    + r"|" + _D + r"\d{12,30}" + _E
)
# A detailed address: a road/community name followed by house, building, unit or room numbers.
ADDRESS = re.compile(
    r"(?P<keep>(?:收货|详细|家庭|送货)?地址[：:]?\s*)?"
    rf"(?:[{_CN}]{{2,12}}?(?:省|市|区|县|镇|乡))*"
    rf"[{_CN}A-Za-z0-9]{{1,12}}?(?:路|街|大道|巷|弄|胡同|里|村|小区|花园|公寓|大厦|广场|苑|园)"
    rf"(?:[{_CN}]{{0,8}}?(?:[A-Za-z]?\d+[A-Za-z]?|[A-Za-z])(?:号楼|号院|号|栋|幢|座|单元|楼|层|室|弄|户)[-—]?)+"
    r"\d*(?:室)?"
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _issuer_shape(digits: str) -> bool:
    """UnionPay (62, 16–19 digits), Visa (4) and Mastercard (51–55, 2221–2720) at 16."""
    if digits.startswith("62"):
        return True
    if len(digits) != 16:
        return False
    return digits[0] == "4" or "51" <= digits[:2] <= "55" or "2221" <= digits[:4] <= "2720"


def _bank_card(m: re.Match[str], _: str) -> str | None:
    digits = re.sub(r"[ -]", "", m.group())
    if not 16 <= len(digits) <= 19:
        return None
    return "[银行卡号]" if _luhn_ok(digits) or _issuer_shape(digits) else None


@dataclass(frozen=True)
class _Kind:
    name: str
    pattern: re.Pattern[str]
    tag: str
    # (match in the width-folded text, the original text) → the replacement, or None to keep
    check: Callable[[re.Match[str], str], str | None] | None = None


_KINDS = (
    _Kind("email", EMAIL, "[邮箱]"),
    _Kind("id_card", ID_CARD, "[身份证号]"),
    _Kind("bank_card", BANK_CARD, "[银行卡号]", _bank_card),
    _Kind("mobile", MOBILE, "[手机号]"),
    _Kind("landline", LANDLINE, "[电话]"),
    _Kind("address", ADDRESS, "[地址]",
          lambda m, text: (text[m.start("keep") : m.end("keep")] if m.group("keep") else "") + "[地址]"),
)
_ORDER = _Kind("order_no", ORDER_NO, "[订单号]")


@dataclass(frozen=True)
class PiiMasker:
    enabled: bool = True
    mask_order_numbers: bool = False
    # Key of the pseudonyms that replace PII inside ids (``mask_id``). Without one the
    # pseudonym is an unkeyed digest: stable, but a phone number can be found again by
    # trying them all, so set KEFUQA_PII_ID_KEY in production.
    id_key: str | None = None

    @classmethod
    def from_settings(cls, pii: PiiSettings) -> PiiMasker:
        """The masker every door uses, from the ``KEFUQA_PII_*`` settings group."""
        key = pii.id_key.get_secret_value() if pii.id_key is not None else None
        return cls(pii.enabled, pii.mask_order_numbers, key)

    def _kinds(self) -> tuple[_Kind, ...]:
        return _KINDS + ((_ORDER,) if self.mask_order_numbers else ())

    def mask(self, text: str) -> str:
        """Each kind is found in the width-folded text (so full-width digits １３８… are
        caught too) and replaced at the same offsets in the original: folding maps one
        character to one character, and the rest of the text stays as written."""
        if not self.enabled:
            return text
        for kind in self._kinds():
            text = _replace(text, kind, kind.check)
        return text

    def mask_id(self, value: str) -> str:
        """An id (conversation, agent, …) with each PII span replaced by a pseudonym,
        ``[手机号#3f9a0c12d4e5]``: the same span always gives the same pseudonym, so ids
        stay distinct and joins and per-agent grades still work, while the number itself
        is not kept."""
        if not self.enabled:
            return value
        for kind in self._kinds():
            value = _replace(value, kind, self._pseudonym(kind))
        return value

    def _pseudonym(self, kind: _Kind) -> Callable[[re.Match[str], str], str | None]:
        key = (self.id_key or "kefuqa-pii-id").encode("utf-8")

        def tag(m: re.Match[str], original: str) -> str | None:
            if kind.check is not None and kind.check(m, original) is None:
                return None
            span = re.sub(r"[\s-]", "", m.group())
            digest = hmac.new(key, span.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:12]
            return f"{kind.tag[:-1]}#{digest}]"

        return tag


def _replace(text: str, kind: _Kind, tag_of: Callable[[re.Match[str], str], str | None] | None) -> str:
    pieces, last = [], 0
    for m in kind.pattern.finditer(fold_width(text)):
        tag = kind.tag if tag_of is None else tag_of(m, text)
        if tag is None:
            continue
        pieces += [text[last : m.start()], tag]
        last = m.end()
    return "".join(pieces) + text[last:] if pieces else text
