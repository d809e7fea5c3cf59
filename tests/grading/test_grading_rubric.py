"""The rubric file: defaults, validation with file and field, grade thresholds, forced distribution."""

from __future__ import annotations

import dataclasses
from collections import Counter
from importlib import resources

import pytest
import yaml

from kefuqa.grading.errors import InputError
from kefuqa.grading.grades import absolute_grade, forced_grades
from kefuqa.grading.rubric import GRADES, Scale, load_rubric


def test_default_rubric_groups_as_the_handbooks_do():
    rubric = load_rubric()
    # The four groups of the handbooks, and the calls-only group beside them (docs/phone-calls.md).
    assert [g.name for g in rubric.groups] == ["服务态度", "问题解决", "工作效率", "服务满意度", "通话规范"]
    assert {i.key for i in rubric.indicators} >= {
        "polite_rate",
        "emotional_control",
        "taboo_rate",
        "resolution_rate",
        "escalation_rate",
        "first_response",
        "avg_response",
        "end_negative_rate",
        "csat",
        "complaint_rate",
        "repeat_contact_rate",
    }
    assert rubric.grades.thresholds == {"优秀": 90, "良好": 80, "中等": 70, "合格": 60}
    assert rubric.timezone == "Asia/Shanghai"
    assert rubric.min_conversations == 30
    assert (rubric.impact.before_days, rubric.impact.after_days) == (60, 60)


@pytest.mark.parametrize(
    ("score", "grade"),
    [
        (100, "优秀"),
        (90, "优秀"),
        (89.99, "良好"),
        (80, "良好"),
        (79.9, "中等"),
        (70, "中等"),
        (60, "合格"),
        (59.99, "不合格"),
        (0, "不合格"),
    ],
)
def test_absolute_thresholds_are_inclusive_lower_bounds(score, grade):
    assert absolute_grade(score, load_rubric().grades) == grade


def _default_yaml() -> dict:
    text = resources.files("kefuqa.grading").joinpath("default_rubric.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def test_custom_thresholds_from_a_file(tmp_path):
    data = _default_yaml()
    data["grades"]["thresholds"] = {"优秀": 95, "良好": 85, "中等": 75, "合格": 65}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    rule = load_rubric(path).grades
    assert absolute_grade(94.9, rule) == "良好"
    assert absolute_grade(64.9, rule) == "不合格"


def _broken(tmp_path, edit) -> InputError:
    data = _default_yaml()
    edit(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_rubric(path)
    assert str(path) in str(info.value)
    return info.value


def test_thresholds_must_decrease(tmp_path):
    err = _broken(tmp_path, lambda d: d["grades"]["thresholds"].update({"良好": 95}))
    assert "strictly decrease" in err.message and err.field == "grades.thresholds"


def test_unknown_label_value_names_the_field(tmp_path):
    err = _broken(
        tmp_path,
        lambda d: d["groups"][0]["indicators"][0]["source"].update({"values": ["excellent"]}),
    )
    assert err.field is not None and err.field.startswith("groups.0.indicators.0.source")


def test_forced_shares_must_sum_to_one(tmp_path):
    err = _broken(tmp_path, lambda d: d["grades"]["forced_shares"].update({"优秀": 0.5}))
    assert "sum to 1" in err.message


def test_yaml_syntax_error_has_a_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("groups:\n  - key: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_rubric(path)
    assert info.value.line is not None and "YAML" in info.value.message


def test_forced_distribution_quotas_for_ten_agents():
    scores = [99, 95, 90, 85, 80, 75, 70, 65, 60, 10]
    grades = forced_grades(scores, load_rubric().grades.forced_shares)
    assert grades == [
        "优秀",
        "良好",
        "良好",
        "中等",
        "中等",
        "中等",
        "中等",
        "合格",
        "合格",
        "不合格",
    ]


def test_forced_distribution_is_relative_not_absolute():
    # Everyone scores above 90: a forced distribution still hands out every grade.
    scores = [99.0 - i * 0.5 for i in range(20)]
    counts = Counter(forced_grades(scores, load_rubric().grades.forced_shares))
    assert counts == {"优秀": 2, "良好": 4, "中等": 8, "合格": 4, "不合格": 2}


def test_forced_distribution_ties_share_the_better_grade():
    grades = forced_grades([90, 80, 80, 70, 60], {g: 0.2 for g in GRADES})
    assert grades[1] == grades[2] == "良好"
    assert grades[0] == "优秀" and grades[4] == "不合格"


def test_forced_distribution_rounds_quotas_to_the_number_of_agents():
    for n in range(1, 13):
        assert len(forced_grades(list(range(n)), load_rubric().grades.forced_shares)) == n


def test_scale_maps_linearly_and_clips():
    faster = Scale(zero=120, full=10)  # lower is better
    assert not faster.higher_is_better
    assert faster.score(10) == 100 and faster.score(5) == 100 and faster.score(120) == 0
    assert faster.score(65) == pytest.approx(50)
    share = Scale(zero=0.5, full=1.0)
    assert share.score(0.75) == pytest.approx(50) and share.score(0.2) == 0


def test_forced_method_can_be_switched_on():
    rubric = load_rubric()
    forced = dataclasses.replace(rubric, grades=dataclasses.replace(rubric.grades, method="forced"))
    assert forced.grades.method == "forced"


def test_a_three_level_scheme_from_a_file(tmp_path):
    data = _default_yaml()
    data["grades"].update(
        levels=["优秀", "合格", "不合格"],
        thresholds={"合格": 60, "优秀": 85},  # any order in the file
        forced_shares={"优秀": 0.2, "合格": 0.7, "不合格": 0.1},
    )
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    rule = load_rubric(path).grades
    assert rule.levels == ("优秀", "合格", "不合格") and rule.pass_cut == 60
    assert [absolute_grade(x, rule) for x in (85, 84.9, 60, 59.9)] == ["优秀", "合格", "合格", "不合格"]
    assert rule.low_grades == ("不合格",)


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (lambda g: g.update(levels=["好", "差"]), "grades.levels", "3 to 5"),
        (lambda g: g.update(levels=["优秀", "良好", "中等", "合格", "及格", "不合格"]), "grades.levels", "3 to 5"),
        (lambda g: g.update(levels=["优秀", "优秀", "不合格"]), "grades.levels", "distinct"),
        (lambda g: g.update(levels=["优秀", "合格", "数据不足"]), "grades.levels", "reserved"),
        (lambda g: g.update(levels=["优秀", "合格", "不合格"]), "grades.thresholds", "exactly ['优秀', '合格']"),
        (
            lambda g: g.update(levels=["优秀", "合格", "不合格"], thresholds={"优秀": 85, "合格": 60}),
            "grades.forced_shares",
            "exactly ['优秀', '合格', '不合格']",
        ),
        (lambda g: g["repeated_low"].update(periods=1), "grades.repeated_low.periods", ">= 2"),
        (lambda g: g["repeated_low"].update(grades=["差"]), "grades", "subset"),
    ],
)
def test_grade_scheme_errors_name_the_field(tmp_path, edit, field, words):
    err = _broken(tmp_path, lambda d: edit(d["grades"]))
    assert err.field == field and words in err.message


def test_forced_method_needs_shares_for_a_custom_scheme(tmp_path):
    def edit(d):
        d["grades"].update(levels=["优秀", "合格", "不合格"], thresholds={"优秀": 85, "合格": 60}, method="forced")
        del d["grades"]["forced_shares"]

    err = _broken(tmp_path, edit)
    assert "forced_shares must give a share for each of" in err.message


def test_reaction_and_learning_settings_are_validated(tmp_path):
    err = _broken(tmp_path, lambda d: d["reaction"].update(neutral=6))
    assert err.field == "reaction" and "scale_min < neutral < scale_max" in err.message
    err = _broken(tmp_path, lambda d: d["learning"].update(pass_mark=120))
    assert err.field == "learning" and "pass_mark" in err.message
