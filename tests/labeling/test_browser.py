"""End to end in real headless Chromium (Playwright + Debian's chromium) against a real uvicorn server:
log in, open the first queue item, correct a label with the keyboard, save, reload and see it saved,
the audit log shows the change; a transcript holding <script> renders as text."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kefuqa.contract import LABELS, ScoreRecord
from kefuqa.labeling.app import create_app
from kefuqa.labeling.config import ReviewConfig
from kefuqa.labeling.db import session
from kefuqa.labeling.importer import import_scores
from kefuqa.text.pii import PiiMasker

from .helpers import PASSWORD, T0, Server, conversation, record, users

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("KEFUQA_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'

FIRST = "c-20260302-0417"
TURNS = [
    {"speaker": "customer", "text": "在吗？我买的碎花连衣裙三天了还没到，电话13812345678",
     "ts": "2026-03-02T10:02:05+08:00"},
    {"speaker": "system", "text": "[订单卡片]", "ts": "2026-03-02T10:02:06+08:00"},
    {"speaker": "agent", "text": "亲，您好，这边帮您查一下物流哦", "ts": "2026-03-02T10:02:40+08:00"},
    {"speaker": "customer", "text": "都三天了！你们到底怎么回事", "ts": "2026-03-02T10:03:10+08:00"},
    {"speaker": "agent", "text": "不知道，你自己看物流页面", "ts": "2026-03-02T10:04:30+08:00"},
    {"speaker": "customer", "text": "什么态度？我要投诉", "ts": "2026-03-02T10:04:45+08:00"},
    {"speaker": "agent", "text": "我已经说过了，快递那边的问题", "ts": "2026-03-02T10:05:20+08:00"},
]


def _first_record() -> ScoreRecord:
    probs = {name: {v: 0.0 for v in values} for name, values in LABELS.items()}
    probs["politeness"].update(good=0.07, fair=0.48, poor=0.45)
    probs["emotional_control"].update(good=0.05, fair=0.35, poor=0.60)
    probs["resolution"].update(resolved=0.06, escalated=0.14, unresolved=0.80)
    probs["sentiment"].update(positive=0.02, neutral=0.10, negative=0.88)
    ev = [(2, 0, 2, "polite.greeting", "亲，"), (2, 2, 4, "polite.greeting", "您好"),
          (4, 0, 3, "taboo.dont_know", "不知道"), (4, 4, 8, "taboo.look_yourself", "你自己看"),
          (6, 0, 6, "taboo.said_already", "我已经说过了")]
    return ScoreRecord.model_validate({
        "id": FIRST, "agent_id": "a-017", "model": {"name": "kefu-e5-small-zh", "version": "2026.11.1"},
        "labels": {"politeness": "fair", "emotional_control": "poor", "resolution": "unresolved",
                   "sentiment": "negative"},
        "probs": probs, "turns": [{"index": i, "speaker": "customer", "sentiment": s}
                                  for i, s in ((0, -0.2), (3, -0.6), (5, -0.9))],
        "evidence": [{"turn": t, "start": a, "end": b, "rule": r, "text": x} for t, a, b, r, x in ev],
        "metrics": {"agent_turns": 3, "first_response_s": 35.0, "avg_response_s": 55.0, "polite_phrase_rate": 0.33,
                    "taboo_hits": 3}})


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def app_url(engine, settings):
    from kefuqa.contract import Conversation

    first = Conversation.model_validate({"id": FIRST, "agent_id": "a-017", "channel": "chat",
                                         "started_at": "2026-03-02T10:02:05+08:00", "turns": TURNS})
    recs = [(1, _first_record()), (2, record("c-2", "a-017", top=0.7)), (3, record("xss", "a-018", top=0.8))]
    convs = {FIRST: first, "c-2": conversation("c-2", "a-017"), "xss": conversation("xss", "a-018", XSS)}
    with session(engine, write=True) as s:
        import_scores(s, recs, convs, masker=PiiMasker(), actor="test", shares=(1.0, 0.0, 0.0), now=T0)
    users(engine, ("rev", "reviewer", None))
    with Server(create_app(settings, ReviewConfig())) as srv:
        yield srv.url


def test_reviewer_corrects_a_label_in_the_browser(browser, app_url, db_url, tmp_path):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    expect = playwright_api.expect

    page.goto(app_url + "/review")
    page.fill("#login-name", "rev")
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    rows = page.locator("#queue-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first.locator("a.queue-link")).to_have_text(FIRST)  # the least confident first

    page.keyboard.press("Enter")  # open the first item
    expect(page.locator("#item-title")).to_have_text(FIRST)
    expect(page.locator("#chat .turn")).to_have_count(7)
    expect(page.locator("#turn-4 mark.ev").first).to_have_text("不知道")
    expect(page.locator("#turn-0 .bubble")).to_contain_text("[手机号]")  # masked on import
    politeness = page.locator('fieldset[data-head="politeness"]')
    expect(politeness.locator('button[data-value="fair"]')).to_have_attribute("aria-pressed", "true")
    expect(politeness.locator('button[data-value="fair"] .prob')).to_have_text("48%")

    page.keyboard.press("3")  # politeness → poor
    expect(politeness.locator('button[data-value="poor"]')).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("/")
    page.keyboard.type("「不知道」「你自己看」是服务禁语")
    page.keyboard.press("Escape")
    if db_url.startswith("sqlite"):  # the picture in docs/review.md is taken the same way
        shot = tmp_path / "review-queue.png"
        page.screenshot(path=str(shot), full_page=False)
        assert shot.read_bytes().startswith(b"\x89PNG")
    page.keyboard.press("Enter")  # save
    expect(page.locator("#toast")).to_contain_text("Saved")
    expect(page.locator("#item-status")).to_contain_text("version 2")

    page.reload()
    expect(page.locator("#item-title")).to_have_text(FIRST)
    expect(politeness.locator('button[data-value="poor"]')).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#item-status")).to_contain_text("saved by rev")
    page.click("#item-audit-box summary")
    entry = page.locator("#item-audit li").first
    expect(entry).to_contain_text("review.saved")
    expect(entry).to_contain_text("politeness=poor")
    expect(entry).to_contain_text("rev")
    expect(page.locator("#item-reviews li").first).to_contain_text("你自己看")

    # a transcript holding markup is shown as text and never runs
    page.goto(app_url + "/review#/item/xss")
    expect(page.locator("#item-title")).to_have_text("xss")
    expect(page.locator("#turn-1 .bubble")).to_have_text(XSS)
    assert page.locator("#chat script, #chat img").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert problems == []
    context.close()


def test_admin_manages_users_in_the_browser(browser, app_url, engine):
    users(engine, ("boss", "admin", None))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    expect = playwright_api.expect

    # The queue's answer is held until the Users view is up: a late answer to a view the
    # admin has left must not take the screen back.
    held: list = []
    page.route("**/api/review/queue*", lambda route: route.continue_() if held else held.append(route))
    page.goto(app_url + "/review")
    page.fill("#login-name", "boss")
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.click('#nav a[href="#/users"]')
    rows = page.locator("#users-table tbody tr")
    expect(rows).to_have_count(2)  # boss and rev
    assert len(held) == 1
    held[0].continue_()
    expect(page.locator("#queue-table tbody tr")).not_to_have_count(0)  # the late answer arrived
    expect(page.locator("#view-users")).to_be_visible()
    expect(page.locator("#view-queue")).to_be_hidden()
    expect(page.locator('#users-table tr[data-name="boss"] button')).to_have_count(0)  # not oneself

    page.fill("#user-name", "zhao")
    page.select_option("#user-role", "agent")
    page.fill("#user-agent-id", "a-099")
    page.fill("#user-password", "short")
    page.click("#user-submit")
    expect(page.locator("#user-error")).to_contain_text("at least 8 characters")  # the store's rule, in the form
    expect(rows).to_have_count(2)
    page.fill("#user-password", PASSWORD)
    page.click("#user-submit")
    zhao = page.locator('#users-table tr[data-name="zhao"]')
    expect(zhao).to_contain_text("a-099")
    expect(zhao).to_contain_text("agent")

    zhao.locator("button").click()  # disable
    expect(zhao.locator("td").nth(4)).to_have_text("no")
    with httpx_client(app_url) as c:
        assert c.post("/api/review/login", json={"name": "zhao", "password": PASSWORD}).status_code == 401
    zhao.locator("button").click()  # enable again
    expect(zhao.locator("td").nth(4)).to_have_text("yes")
    assert problems == []
    context.close()


def httpx_client(url: str):
    import httpx

    return httpx.Client(base_url=url, timeout=10)


@pytest.fixture
def double_url(engine, settings):
    """dbl goes to two reviewers and zhang-first has reviewed it; mine-1 is agent a-017's."""
    from kefuqa.labeling.reviews import save_review

    recs = [(1, record("dbl", "a-018", top=0.5)), (2, record("mine-1", "a-017", top=0.6))]
    convs = {"dbl": conversation("dbl", "a-018"), "mine-1": conversation("mine-1", "a-017")}
    with session(engine, write=True) as s:
        import_scores(s, recs, convs, masker=PiiMasker(), actor="test", shares=(1.0, 0.0, 1.0), now=T0)
    u = users(engine, ("zhang-first", "reviewer", None), ("li-second", "reviewer", None), ("a-017", "agent", None))
    first = {"politeness": "poor", "emotional_control": "poor", "resolution": "unresolved", "sentiment": "negative"}
    with session(engine, write=True) as s:
        save_review(s, u["zhang-first"], "dbl", first, version=1, comment="FIRST-COMMENT 太敷衍", now=T0)
    with Server(create_app(settings, ReviewConfig(file_days=None))) as srv:
        yield srv.url


def _login(browser, url: str, name: str):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, timezone_id="Europe/London")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.goto(url + "/review")
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    return context, page, problems


def test_the_second_reviewer_works_blind_in_the_browser(browser, double_url):
    expect = playwright_api.expect
    context, page, problems = _login(browser, double_url, "li-second")
    expect(page.locator("#queue-table tbody tr").first.locator("a.queue-link")).to_have_text("dbl")
    page.keyboard.press("Enter")
    expect(page.locator("#item-title")).to_have_text("dbl")
    expect(page.locator("#item-status")).to_contain_text("blind")
    page.click("#item-audit-box summary")
    page.wait_for_load_state("networkidle")  # the audit trail has loaded
    expect(page.locator("#item-audit li")).to_have_count(0)  # zhang-first's save stays hidden
    politeness = page.locator('fieldset[data-head="politeness"]')
    expect(politeness.locator('button[data-value="good"]')).to_have_attribute("aria-pressed", "true")  # the model's
    body = page.locator("body").inner_text()
    assert "zhang-first" not in body and "FIRST-COMMENT" not in body

    page.keyboard.press("2")  # politeness → fair, then save: the blind phase is over for li-second
    page.keyboard.press("Enter")
    expect(page.locator("#toast")).to_contain_text("Saved")
    expect(page.locator("#item-reviews")).to_contain_text("FIRST-COMMENT")
    expect(page.locator("#item-audit li")).to_have_count(2)
    assert problems == []
    context.close()


def test_an_agent_proposes_labels_with_a_dispute_in_the_browser(browser, double_url, engine):
    from kefuqa.labeling.models import Dispute

    expect = playwright_api.expect
    context, page, problems = _login(browser, double_url, "a-017")
    expect(page.locator("#mine-table tbody tr")).to_have_count(1)
    page.click("#mine-table a")
    expect(page.locator("#item-title")).to_have_text("mine-1")
    sentiment = page.locator('fieldset[data-head="sentiment"]')
    sentiment.locator('button[data-value="negative"]').click()  # the agent's proposal
    expect(sentiment.locator('button[data-value="negative"]')).to_have_attribute("aria-pressed", "true")
    page.fill("#dispute-reason", "客户最后很生气，情绪应为negative")
    page.click("#dispute-file")
    card = page.locator("#item-disputes .dispute-card")
    expect(card.locator(".proposed")).to_have_text("proposed 建议: sentiment=negative")
    # the deadline shows in the review zone, named, although the browser is in London
    expect(card.locator(".due")).to_contain_text("Asia/Shanghai")
    with session(engine) as s:
        dispute = s.query(Dispute).one()
        assert dispute.requested_labels == {"sentiment": "negative"}
    local = dispute.due_at.astimezone(ZoneInfo("Asia/Shanghai"))
    expect(card.locator(".due")).to_contain_text(f"{local:%Y/%m/%d} 23:59")
    assert problems == []
    context.close()
