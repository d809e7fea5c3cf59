"""Speaker checks of a call in real headless Chromium against a real uvicorn server: the flagged
turn shows its likely speaker and probability, the reviewer confirms it, fixes a turn the check
missed, and the answers are stored and survive a reload."""

from __future__ import annotations

from sqlalchemy import select

from kefuqa.labeling.app import create_app
from kefuqa.labeling.config import ReviewConfig
from kefuqa.labeling.db import session
from kefuqa.labeling.models import SpeakerFix

from .helpers import PASSWORD, Server, users
from .test_browser import browser, playwright_api  # noqa: F401  (fixtures)
from .test_speaker_fixes import _load


def test_reviewer_confirms_a_flag_and_fixes_a_missed_turn(browser, engine, settings):  # noqa: F811
    _load(engine, ["v1"])
    users(engine, ("rev", "reviewer", "north"))
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    expect = playwright_api.expect
    with Server(create_app(settings, ReviewConfig(file_days=None))) as srv:
        page.goto(srv.url + "/review")
        page.fill("#login-name", "rev")
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        expect(page.locator("#queue-table tbody tr")).to_have_count(1)
        page.goto(srv.url + "/review#/item/v1")
        flagged = page.locator("#turn-2")
        expect(flagged).to_have_class("turn agent role-flag")
        expect(flagged.locator(".flag-note")).to_have_text("可能是顾客 customer · 97%")
        expect(page.locator("#turn-3 .speaker-check")).to_have_count(0)  # a system turn: nothing to answer

        flagged.locator("button.speaker-answer.confirm").click()
        expect(page.locator("#toast")).to_contain_text("Speaker saved")
        expect(flagged.locator("button.speaker-answer.confirm")).to_have_attribute("aria-pressed", "true")
        page.locator("#turn-1 button.speaker-answer.fix").click()  # missed by the check: said by the agent
        expect(page.locator("#turn-1 button.speaker-answer.keep")).to_be_visible()
        expect(page.locator("#turn-1 button.speaker-answer.fix")).to_have_attribute("aria-pressed", "true")
        page.click("#item-audit-box summary")
        expect(page.locator("#item-audit li").first).to_contain_text("speaker.fixed")

        page.reload()  # stored, not only drawn
        expect(page.locator("#turn-2 button.speaker-answer.confirm")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#turn-1 button.speaker-answer.fix")).to_have_attribute("aria-pressed", "true")
    with session(engine) as s:
        fixes = sorted((f.turn, f.original, f.speaker) for f in s.scalars(select(SpeakerFix)))
    assert fixes == [(1, "customer", "agent"), (2, "agent", "customer")]
    assert problems == []
    context.close()
