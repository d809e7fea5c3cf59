"""Verdicts: an effect needs an interval clear of 0 and a Holm-adjusted p below alpha."""

from __future__ import annotations

from kefuqa.grading.verdicts import CANNOT_TELL, IMPROVED, WORSENED, Units, cohort_verdict

SHARE = Units("proportion", "", "en")
SECONDS = Units("mean", "s", "en")


def _v(**kw):
    args = {
        "estimate": 0.1,
        "ci": (0.05, 0.15),
        "p": 0.001,
        "p_adj": 0.004,
        "alpha": 0.05,
        "units": SHARE,
        "higher_is_better": True,
        "method": "did",
        "n_treated": 8,
        "n_control": 9,
        "n_tests": 8,
    }
    return cohort_verdict(**{**args, **kw})


def test_clear_improvement():
    verdict, reason = _v()
    assert verdict == IMPROVED
    assert reason.startswith("rose by +10.0 pp (95% interval +5.0 pp to +15.0 pp")
    assert "8 trained agents against 9 untrained" in reason


def test_lower_is_better_fall_is_an_improvement_and_rise_a_worsening():
    assert _v(estimate=-5.0, ci=(-8.0, -2.0), units=SECONDS, higher_is_better=False)[0] == IMPROVED
    verdict, reason = _v(estimate=5.0, ci=(2.0, 8.0), units=SECONDS, higher_is_better=False)
    assert verdict == WORSENED and "+5.00 s" in reason


def test_interval_with_zero_cannot_tell():
    verdict, reason = _v(ci=(-0.01, 0.2), p=0.06, p_adj=0.3)
    assert verdict == CANNOT_TELL and "includes 0" in reason


def test_significant_alone_but_not_after_holm_cannot_tell():
    verdict, reason = _v(p=0.02, p_adj=0.16)
    assert verdict == CANNOT_TELL
    assert "p = 0.020" in reason and "8 indicators" in reason and "p = 0.160" in reason


def test_paired_method_says_there_is_no_comparison_group():
    assert "no comparison group" in _v(method="paired")[1]


def test_tiny_p_is_not_printed_as_zero():
    assert "p < 0.001" in _v(p_adj=0.00001)[1]


def test_the_reason_is_chinese_by_default():
    verdict, reason = _v(units=Units("proportion", ""))
    assert verdict == IMPROVED
    assert reason == (
        "上升 +10.0 个百分点（95% 区间 +5.0 个百分点 至 +15.0 个百分点，Holm 校正 p = 0.004）；"
        "比较方式：8 名受训客服对比同期 9 名未受训客服（双重差分）"
    )
