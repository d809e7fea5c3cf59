from __future__ import annotations

import pytest

from kefuqa.models.rules.matcher import Matcher
from kefuqa.models.rules.schema import RulesFileError, check_rules_file, load_rules
from kefuqa.text.normalize import normalize


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(load_rules())


def hits(matcher: Matcher, text: str, speaker: str = "agent") -> list[tuple[str, str]]:
    return [(matcher.rules[h.rule].id, text[h.start : h.end]) for h in matcher.match(speaker, normalize(text))]


def ids(matcher, text, speaker="agent"):
    return {rid for rid, _ in hits(matcher, text, speaker)}


def test_default_set_has_at_least_60_taboo_entries_across_kinds():
    rules = [r for r in load_rules() if r.category == "taboo"]
    assert sum(len(r.phrases) + len(r.patterns) for r in rules) >= 60
    assert len({r.kind for r in rules}) >= 6


@pytest.mark.parametrize(
    "text, rule",
    [
        ("您好，很高兴为您服务", "polite.greeting"),
        ("这边帮您看一下", "polite.address"),
        ("请您提供一下订单号", "polite.please"),
        ("谢谢您的反馈", "polite.thanks"),
        ("不好意思让您久等了", "polite.apology"),
        ("还有其他可以帮您的吗？祝您生活愉快", "polite.closing"),
        ("理解您的心情，给您添麻烦了", "empathy.acknowledge"),
        ("这个我不知道", "taboo.dont_know"),
        ("你自己看详情页", "taboo.see_yourself"),
        ("没办法，规定就是这样", "taboo.no_way"),
        ("听不懂吗？我已经说过了", "taboo.not_listening"),
        ("爱买不买", "taboo.buy_or_not"),
        ("跟我说没用，找快递去", "taboo.useless_to_me"),
        ("是你自己的问题", "taboo.blame"),
        ("这种问题也要问？", "taboo.mocking"),
        ("随便你投诉", "taboo.threat"),
        ("我哪里凶了？", "taboo.argue"),
        ("我念规定有错吗？", "taboo.argue"),
        ("懒得跟你说", "taboo.abrupt"),
        ("已为您退款，请查收", "resolution.done"),
        ("已经给您提交工单，24小时内回复", "resolution.escalate"),
        ("我们会反馈的", "resolution.vague"),
    ],
)
def test_each_rule_kind_fires(matcher, text, rule):
    assert rule in ids(matcher, text)


@pytest.mark.parametrize(
    "text, rule",
    [
        ("不知道您方便吗？", "taboo.dont_know"),
        ("也不是没办法，我帮您申请一下", "taboo.no_way"),
        ("您说的“没办法”是指哪一步呢？", "taboo.no_way"),
        ("您刚才说「你自己看」，是页面打不开吗", "taboo.see_yourself"),
        ("如果有不清楚的地方随时问我", "taboo.dont_know"),
        ("您开心就好，有问题随时找我", "taboo.mocking"),
    ],
)
def test_exceptions_and_quotes_do_not_fire(matcher, text, rule):
    assert rule not in ids(matcher, text)


def test_speaker_aware_customer_taboo_words_do_not_count(matcher):
    assert not any(r.startswith("taboo.") for r in ids(matcher, "我不知道啊，没办法，你自己看着办", "customer"))
    assert "customer.negative" in ids(matcher, "什么态度，我要投诉！！！", "customer")


def test_traditional_and_fullwidth_text_matches_and_offsets_index_original(matcher):
    text = "這個我不知道，你自己看ＯＫ？"
    found = hits(matcher, text)
    assert ("taboo.dont_know", "不知道") in found
    assert ("taboo.see_yourself", "你自己看") in found


def test_longest_phrase_wins_within_one_rule(matcher):
    assert hits(matcher, "你自己去查") == [("taboo.see_yourself", "自己去查")] or (
        ("taboo.see_yourself", "自己去查") in hits(matcher, "你自己去查")
    )
    see_yourself = [h for h in hits(matcher, "你自己看") if h[0] == "taboo.see_yourself"]
    assert see_yourself == [("taboo.see_yourself", "你自己看")]


def test_user_file_merges_overrides_disables_and_adds(tmp_path):
    user = tmp_path / "rules.yaml"
    user.write_text(
        """
version: 1
rules:
  - id: taboo.dont_know
    enabled: false
  - id: taboo.buy_or_not
    phrases: [爱要不要]
  - id: taboo.shop_custom
    category: taboo
    kind: rude
    phrases: [你管那么多]
""",
        encoding="utf-8",
    )
    m = Matcher(load_rules(user))
    assert "taboo.dont_know" not in ids(m, "我不知道")
    assert "taboo.buy_or_not" not in ids(m, "爱买不买")
    assert "taboo.buy_or_not" in ids(m, "爱要不要")
    assert "taboo.shop_custom" in ids(m, "你管那么多干嘛")


@pytest.mark.parametrize(
    "content, message",
    [
        ("rules: [", "not valid YAML"),
        ("version: 2\nrules: []", "version"),
        ("rules:\n  - category: taboo", "each rule needs an 'id'"),
        ("rules:\n  - id: taboo.x\n    category: nonsense\n    kind: k", "rule 'taboo.x': category"),
        ("rules:\n  - id: taboo.x\n    category: taboo\n    kind: k\n    patterns: ['(']", "does not compile"),
        ("rules:\n  - id: taboo.x\n    category: taboo\n    kind: k\n    phrases: ['  ']", "non-blank"),
        ("rules:\n  - id: Bad Id\n    category: taboo\n    kind: k", "rule 'Bad Id': id"),
    ],
)
def test_rules_check_reports_file_and_rule(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RulesFileError) as err:
        check_rules_file(path)
    assert str(path) in str(err.value) and message in str(err.value)
