"""Appeals on a period grade in real headless Chromium against a real uvicorn server: an agent
files one in the Disputes view, the lead of their team acknowledges, overturns and records the
notification, the agent sees the new grade and re-appeals."""

from __future__ import annotations

import pytest

from kefuqa.labeling.app import create_app
from kefuqa.labeling.config import ReviewConfig

from . import test_browser
from .helpers import PASSWORD, Server, users

playwright_api = pytest.importorskip("playwright.sync_api")
browser = test_browser.browser  # the same module-scoped Chromium (skips without it)


@pytest.fixture
def app_url(engine, settings):
    users(engine, ("a-017", "agent", "north"), ("wang", "lead", "north"))
    with Server(create_app(settings, ReviewConfig())) as srv:
        yield srv.url


def _log_in(browser, url: str, name: str, problems: list[str]):
    # the browser in another zone: deadlines still read in the review zone (Asia/Shanghai)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN",
                                  timezone_id="Europe/London")
    page = context.new_page()
    page.on("pageerror", lambda exc: problems.append(f"{name}: page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"{name}: console {msg.type}: {msg.text}")
            if msg.type == "error" and "status of 4" not in msg.text else None)
    page.goto(url + "/review#/disputes")
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    return context, page


def test_agent_files_and_lead_decides_in_the_browser(browser, app_url):
    expect = playwright_api.expect
    problems: list[str] = []
    agent_ctx, agent = _log_in(browser, app_url, "a-017", problems)
    expect(agent.locator("#appeals")).to_be_visible()
    expect(agent.locator("#appeals-list")).to_contain_text("暂无绩效申诉")
    agent.click("#appeal-submit")  # nothing filled in: the server's reason shows in the form
    expect(agent.locator("#appeal-error")).to_contain_text("a month (2026-11)")
    agent.fill("#appeal-period", "2026-11")
    agent.select_option("#appeal-grade", "合格")
    agent.fill("#appeal-score", "61.5")
    agent.fill("#appeal-reason", "十一月的三条投诉不是我接待的")
    agent.click("#appeal-submit")
    card = agent.locator(".appeal-card").first
    expect(card.locator(".appeal-status")).to_have_text("filed")
    expect(card).to_contain_text("next: acknowledge by lead")
    expect(card).to_contain_text(" 23:59 Asia/Shanghai")
    expect(card.locator(".appeal-timeline li")).to_have_count(1)
    expect(card.locator("button")).to_have_count(0)  # an agent does not handle their own appeal

    lead_ctx, lead = _log_in(browser, app_url, "wang", problems)
    card = lead.locator(".appeal-card").first
    expect(card).to_contain_text("a-017")
    card.locator(".appeal-text").fill("已收到，十个工作日内复核")
    card.locator(".appeal-ack").click()
    expect(card.locator(".appeal-status")).to_have_text("acknowledged")
    card.locator(".appeal-outcome").select_option("overturned")
    card.locator(".appeal-new-grade").select_option("中等")
    card.locator(".appeal-text").fill("核实后三条投诉属于其他客服")
    card.locator(".appeal-decide").click()
    expect(card.locator(".appeal-status")).to_have_text("decided")
    card.locator(".appeal-notify").click()
    expect(card.locator(".appeal-status")).to_have_text("notified")
    expect(card.locator(".appeal-timeline li")).to_have_count(4)
    stats = lead.locator("#appeal-stats tbody tr").first
    expect(stats.locator("td").nth(0)).to_have_text("2026-11")
    expect(stats.locator("td").nth(4)).to_have_text("1")  # overturned

    agent.reload()
    card = agent.locator(".appeal-card").first
    expect(card).to_contain_text("合格 → 中等")
    expect(card.locator(".appeal-timeline li").nth(2)).to_contain_text("overturned → 中等")
    card.locator(".appeal-text").fill("应为良好")
    card.locator(".appeal-reappeal").click()
    expect(card.locator(".appeal-status")).to_have_text("reappealed")
    expect(card).to_contain_text("next: decide by admin")
    expect(card.locator(".appeal-timeline li").nth(4)).to_contain_text(" 23:59 Asia/Shanghai")
    assert problems == []
    agent_ctx.close()
    lead_ctx.close()
