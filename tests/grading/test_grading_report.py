"""The HTML report: self-contained, and its charts render in headless Chromium."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from gradingsim import TRUE_EFFECTS, simulate

from kefuqa.grading.charts import Fonts, _png
from kefuqa.grading.dataset import build_dataset
from kefuqa.grading.grades import grade_all
from kefuqa.grading.impact import analyse_event
from kefuqa.grading.inputs import RosterEntry
from kefuqa.grading.report import render_html
from kefuqa.grading.rubric import load_rubric

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RUBRIC = load_rubric()


def _report(fonts: Fonts | None = None, team: str = "team", lang: str = "zh-CN", rubric=RUBRIC) -> tuple[str, int]:
    sim = simulate(3, effects=TRUE_EFFECTS, n_treated=6, n_control=6, per_window=90)
    roster = [
        RosterEntry(e.agent_id, f"{team}-{i % 2}", e.hire_date) for i, e in enumerate(sim.roster)
    ]
    data = build_dataset(
        sim.records, roster, tz=RUBRIC.tz, events=sim.events, outcomes=sim.outcomes
    )
    grades = grade_all(data, rubric, "month", lang=lang)
    impact = analyse_event(data, rubric, "ev-1", lang=lang)
    html = render_html(rubric, grades=grades, impacts=[impact], fonts=fonts, lang=lang)
    n_charts = (
        1 + len(data.agents) + 1
    )  # grade distribution, one trajectory per agent, before/after
    return html, n_charts


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, int]:
    html, n = _report()
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(html, encoding="utf-8")
    return path, n


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def test_report_is_self_contained(report):
    path, n = report
    html = path.read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="(https?:)?//', html), "the report must open offline"
    images = _images(html)
    assert len(images) == n and all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    for text in ("成长轨迹", "等级分布", "培训效果评估报告", "无法判断", "Holm", "一、目的", "四级评估汇总", "五、建议",
                 "再培训名单"):
        assert text in html
    assert "cannot tell" not in html and "Grade distribution" not in html  # zh-CN by default


def test_charts_fall_back_to_english_without_a_cjk_font():
    # Chinese team names and indicator names, no CJK font: no "glyph missing" warning
    # (pytest turns warnings into errors) and every chart still drawn.
    html, n = _report(fonts=Fonts(None), team="售后组")
    assert len(_images(html)) == n
    assert "售后组" in html  # the HTML itself keeps the real names


def test_charts_render_in_headless_chromium(report, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    path, n = report
    shot = tmp_path / "report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(path.as_uri(), wait_until="load")
            widths = page.evaluate(
                "Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)"
            )
            page.screenshot(path=str(shot), full_page=True)
            title = page.title()
        finally:
            browser.close()
    assert len(widths) == n and all(w > 0 for w in widths), widths
    assert "kefu-qa" in title
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 50_000
    height = int.from_bytes(png[20:24], "big")
    assert height > 900  # full page: the charts and tables below the fold are in the picture


@pytest.mark.parametrize("fonts", [Fonts(None), Fonts.detect()])
def test_user_text_in_charts_is_drawn_not_parsed_as_mathtext(fonts):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.subplots().set_title(fonts.safe(r"$\frac{x$ a-1 $5"), **fonts.props)
    assert _png(fig).startswith("data:image/png;base64,")  # an unescaped id raises in mathtext


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(tmp_path):
    import csv

    from kefuqa.grading.report import _write_csv

    path = tmp_path / "grades.csv"
    _write_csv(path, ["agent_id", "score"], [['=HYPERLINK("http://x","y")', -3.5], ["@SUM(A1)", None],
                                            ["+1", 2], ["-cmd", 1], ["a-017", 88.0]])
    rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    assert [r[0] for r in rows[1:]] == ["'=HYPERLINK(\"http://x\",\"y\")", "'@SUM(A1)", "'+1", "'-cmd", "a-017"]
    assert rows[1][1] == "-3.5" and rows[2][1] == ""  # numbers and blanks stay as they are


def test_english_report_has_english_prose():
    html, n = _report(lang="en")
    assert len(_images(html)) == n
    for text in ("Training evaluation", "1. Purpose", "5. Suggestions", "Re-training candidates", "cannot tell",
                 "four Kirkpatrick levels", "score ", "weakest: "):
        assert text in html
    for text in ("一、目的", "无法判断", "成长轨迹", "综合 "):
        assert text not in html


def test_a_three_level_scheme_renders_with_its_own_grades():
    import dataclasses

    from kefuqa.grading.rubric import GradeRule

    rule = GradeRule(levels=("优秀", "合格", "不合格"), thresholds={"优秀": 85, "合格": 60})
    html, n = _report(rubric=dataclasses.replace(RUBRIC, grades=rule))
    assert len(_images(html)) == n
    assert "良好" not in html and "优秀 ≥ 85；合格 ≥ 60" in html


CJK_FILE = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def test_the_cjk_font_is_found_by_file_whatever_matplotlibs_cache_says(monkeypatch):
    from matplotlib import font_manager
    from matplotlib.figure import Figure

    from kefuqa.grading import charts

    if not CJK_FILE.exists():
        pytest.skip(f"needs a CJK font at {CJK_FILE} (apt-get install -y fonts-wqy-microhei)")
    # a font cache built before the font was installed, and no fontconfig either
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [])
    monkeypatch.setattr(charts.shutil, "which", lambda name: None)
    fonts = Fonts.detect()
    assert fonts.path == str(CJK_FILE) and fonts.chinese
    fig = Figure(figsize=(2, 1))
    fig.subplots().set_title(fonts.text("chart.distribution"), **fonts.props)
    assert _png(fig).startswith("data:image/png;base64,")  # a missing glyph would warn, and fail the test
    assert fonts.text("chart.distribution") == "等级分布"
    assert Fonts(fonts.path, "en").text("chart.distribution") == "Grade distribution"


def test_a_font_without_chinese_glyphs_is_not_taken_for_one():
    from kefuqa.grading.charts import has_cjk

    dejavu = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not dejavu.exists():
        pytest.skip("needs DejaVu Sans")
    assert not has_cjk(dejavu)
    assert not has_cjk("/nonexistent/font.ttf")
