from __future__ import annotations

import json

import pytest

from kefuqa.text.normalize import fold_width, normalize
from kefuqa.text.pii import PiiMasker
from kefuqa.text.segment import segment

MASK = PiiMasker()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("我电话13812345678，快点", "我电话[手机号]，快点"),
        ("备用号码 +86 139-1234-5678", "备用号码 [手机号]"),
        ("打138 0013 8000找我", "打[手机号]找我"),
        ("座机010-62345678", "座机[电话]"),
        ("公司电话(0755)88889999转123", "公司电话[电话]"),
        ("身份证号110105199003071234核对一下", "身份证号[身份证号]核对一下"),
        ("身份证44030619851212351X", "身份证[身份证号]"),
        ("卡号6222 0200 0000 0000 000", "卡号[银行卡号]"),  # Luhn-valid test card
        ("退到4111111111111111这张卡", "退到[银行卡号]这张卡"),
        ("邮箱 zhang.san@qq.com 收一下", "邮箱 [邮箱] 收一下"),
        ("地址北京市朝阳区建国路88号3单元502室", "地址[地址]"),
        ("收货地址：上海市浦东新区张江镇祖冲之路2288弄15号601", "收货地址：[地址]"),
        ("送到幸福小区3栋2单元502", "送到[地址]"[:0] + "[地址]"),
        # Luhn is a hint, not a gate: a misheard or mistyped card keeps its issuer's shape.
        ("卡号6222 0212 3456 7890 123", "卡号[银行卡号]"),  # UnionPay, 19 digits, Luhn fails
        ("退到4111111111111112", "退到[银行卡号]"),  # Visa shape, Luhn fails
        # Full-width digits are found as their half-width form; the rest stays as written.
        ("电话１３８１２３４５６７８，ＯＫ", "电话[手机号]，ＯＫ"),
        ("身份证１１０１０５１９９００３０７１２３４", "身份证[身份证号]"),
    ],
)
def test_pii_masked_on_realistic_strings(text, expected):
    assert MASK.mask(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "这件128元，买了3件，满300减40",
        "2026年3月1日下单的，今天3号了",
        "订单 12345678 查一下",  # short numbers stay: order numbers are opt-in
        "我在路上了，5分钟到",
        "尺码选XL还是2XL",
        "9111111111111112",  # 16 digits, no card issuer's prefix, failing the Luhn check
        "流水号2403011234567890123",  # 19 digits, no issuer prefix, failing the Luhn check
    ],
)
def test_no_false_positives(text):
    assert MASK.mask(text) == text


def test_order_numbers_optional_and_masking_can_be_disabled():
    text = "订单号：240301123456789012 麻烦查一下"
    assert MASK.mask(text) == text.replace("240301123456789012", "240301123456789012")
    assert PiiMasker(mask_order_numbers=True).mask(text) == "订单号：[订单号] 麻烦查一下"
    assert PiiMasker(enabled=False).mask("13812345678") == "13812345678"


def test_normalise_is_length_preserving_and_keeps_emoji():
    src = "請問ＡＢＣ１２３　！這個運費險怎麼退😊🙏"
    out = normalize(src)
    assert out == "请问abc123 !这个运费险怎么退😊🙏"
    assert len(out) == len(src)
    assert fold_width("？！，") == "?!,"


def test_segmentation_uses_customer_service_dictionary():
    words = segment("亲亲，这边七天无理由退货，运费险会赔付，价保和工单都可以")
    for term in ("亲亲", "七天无理由退货", "运费险", "价保", "工单"):
        assert term in words


def test_rejected_lines_are_masked_in_what_they_say_not_how_they_are_escaped():
    from kefuqa.io.writers import mask_raw

    escaped = "".join(f"\\u{ord(c):04x}" for c in "13812345678")
    valid = '{"id": "c-1", "turns": [{"speaker": "boss", "text": "' + escaped + '"}]}'
    assert mask_raw(valid, MASK) == '{"id":"c-1","turns":[{"speaker":"boss","text":"[手机号]"}]}'
    broken = '{"id": "c-1", "text": "' + escaped + '", '
    assert "[手机号]" in mask_raw(broken, MASK) and "\\u0031" not in mask_raw(broken, MASK)
    # A lone surrogate stays escaped, so the rejects file can still be written as UTF-8.
    lone = mask_raw('{"text": "\\ud800 13812345678"}', MASK)
    assert json.loads(lone) == {"text": "\ud800 [手机号]"} and lone.encode("utf-8")
