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
    assert [g.name for g in rubric.groups] == ["服务态度", "问题解决", "工作效率", "服务满意度"]
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
