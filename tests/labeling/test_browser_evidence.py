"""Evidence feedback in real headless Chromium against a real uvicorn server: a reviewer marks chips
right and wrong, selects words in a turn to add a missed span, and a lead reads the Rules view."""

from __future__ import annotations

from sqlalchemy import select
from statsmodels.stats.proportion import proportion_confint

from kefuqa.labeling.db import session
from kefuqa.labeling.models import EvidenceMark, MissedSpan

from .helpers import PASSWORD, users
from .test_browser import FIRST, app_url, browser, playwright_api  # noqa: F401  (fixtures)

SELECT_WORDS = """([turn, from, to]) => {
  const bubble = document.querySelector(`#turn-${turn} .bubble`);
  const walker = document.createTreeWalker(bubble, NodeFilter.SHOW_TEXT);
  let pos = 0, range = document.createRange(), node;
  while ((node = walker.nextNode())) {
    const len = node.textContent.length;
    if (pos <= from && from < pos + len) range.setStart(node, from - pos);
    if (pos < to && to <= pos + len) range.setEnd(node, to - pos);
    pos += len;
  }
  const sel = document.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
}"""


def _login(page, url: str, name: str) -> None:
    page.goto(url + "/review")
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")


def test_reviewer_marks_evidence_and_adds_a_missed_span(browser, app_url, engine):  # noqa: F811
    users(engine, ("wang", "lead", None))
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    expect = playwright_api.expect

    _login(page, app_url, "rev")
    expect(page.locator("#queue-table tbody tr")).to_have_count(3)
    page.goto(app_url + "/review#/item/" + FIRST)
    expect(page.locator("#item-title")).to_have_text(FIRST)
    chips = page.locator("#evidence-list .chip-group")
    expect(chips).to_have_count(5)

    greeting = chips.nth(0)
    greeting.locator("button.verdict.right").click()
    expect(page.locator("#toast")).to_contain_text("Marked right")
    expect(chips.nth(0).locator("button.verdict.right")).to_have_attribute("aria-pressed", "true")
    said = page.locator('#evidence-list .chip-group[data-rule="taboo.said_already"]')
    said.locator("button.verdict.wrong").click()
    expect(said.locator("button.verdict.wrong")).to_have_attribute("aria-pressed", "true")
    expect(said).to_have_class("chip-group wrong")

    # "快递那边的问题" in turn 6 ("我已经说过了，快递那边的问题") blames the courier: missed for emotional control
    page.evaluate(SELECT_WORDS, [6, 7, 14])
    expect(page.locator("#missed-add")).to_be_visible()
    expect(page.locator("#evidence-missed .missed-new")).to_contain_text("“快递那边的问题”")
    page.select_option("#missed-label", "emotional_control")
    page.click("#missed-add")
    expect(page.locator("#evidence-missed .missed-chip")).to_have_text("emotional_control “快递那边的问题” #6×")
    page.click("#item-audit-box summary")
    expect(page.locator("#item-audit li").first).to_contain_text("evidence.missed_added")

    page.reload()  # the marks are stored, not only drawn
    expect(page.locator('#evidence-list .chip-group[data-rule="taboo.said_already"] button.verdict.wrong')
           ).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#evidence-missed .missed-chip")).to_have_count(1)
    with session(engine) as s:
        marks = sorted((m.rule, m.turn, m.start, m.end, m.verdict) for m in s.scalars(select(EvidenceMark)))
        spans = [(m.turn, m.start, m.end, m.label, m.text) for m in s.scalars(select(MissedSpan))]
    assert marks == [("polite.greeting", 2, 0, 2, "right"), ("taboo.said_already", 6, 0, 6, "wrong")]
    assert spans == [(6, 7, 14, "emotional_control", "快递那边的问题")]

    page.click("#logout")
    _login(page, app_url, "wang")
    page.goto(app_url + "/review#/rules")
    rows = page.locator("#rules-table tbody tr")
    expect(rows).to_have_count(4)  # the four rules of the first conversation's chips
    said_row = page.locator('#rules-table tr[data-rule="taboo.said_already"]')
    expect(said_row.locator("td").nth(2)).to_have_text("1")  # marks
    expect(said_row.locator("td").nth(4)).to_have_text("100%")  # wrong rate
    expect(said_row.locator("td").nth(5)).to_have_text("0%")  # precision
    low, high = proportion_confint(0, 1, alpha=0.05, method="wilson")  # one mark, marked wrong
    interval = f"{round(low * 100)}%–{round(high * 100)}%"
    expect(said_row.locator("td").nth(6)).to_have_text(interval + " (few marks)")
    expect(page.locator("#rules-fix-first")).to_contain_text("none yet")
    page.fill("#rules-min-marks", "1")
    page.dispatch_event("#rules-min-marks", "change")
    expect(page.locator("#rules-fix-first")).to_contain_text("taboo.said_already")
    expect(said_row.locator("td").nth(6)).to_have_text(interval)
    expect(said_row).to_have_class("fix")
    expect(page.locator("#rules-missed")).to_contain_text("emotional_control 1")
    assert problems == []
    context.close()
