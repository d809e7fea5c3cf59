"""The JSON API on a real uvicorn server: login, roles, 409 on concurrent saves, teams, disputes, exports."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from kefuqa.labeling.app import create_app
from kefuqa.labeling.config import ReviewConfig

from .helpers import DEFAULT_LABELS, PASSWORD, Server, load, users

XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
CORRECTED = {**DEFAULT_LABELS, "politeness": "poor"}


@pytest.fixture
def server(engine, settings):
    load(engine, [("c1", "a-1", 0.5), ("c2", "a-1", 0.6), ("xss", "a-2", 0.55), ("s1", "a-s", 0.7)],
         teams={"a-1": "north", "a-2": "north", "a-s": "south"}, texts={"xss": XSS})
    users(engine, ("rev", "reviewer", "north"), ("rev2", "reviewer", "north"), ("srev", "reviewer", "south"),
          ("lead", "lead", "north"), ("a-1", "agent", "north"))
    with Server(create_app(settings, ReviewConfig(file_days=None))) as srv:
        yield srv


@contextmanager
def client(server: Server, name: str | None = None) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        if name:
            r = c.post("/api/review/login", json={"name": name, "password": PASSWORD})
            assert r.status_code == 200, r.text
        yield c


def test_login_cookie_and_roles(server):
    with client(server) as anon:
        assert anon.get("/api/review/queue").status_code == 401
        r = anon.post("/api/review/login", json={"name": "rev", "password": "wrong-password"})
        assert r.status_code == 401 and r.json()["detail"]["message"] == "wrong user name or password"
        r = anon.post("/api/review/login", json={"name": "rev", "password": PASSWORD})
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "token" not in r.json()
        assert anon.get("/api/review/me").json()["user"]["role"] == "reviewer"
        # a cookie-authenticated write must be JSON (no cross-site form posts)
        r = anon.post("/api/review/items/c1/review", content="labels=x",
                      headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 415
        anon.post("/api/review/logout", json={})
        assert anon.get("/api/review/me").status_code == 401
    with client(server) as bot:  # scripts log in for a bearer token
        login = {"name": "lead", "password": PASSWORD, "bearer": True}
        token = bot.post("/api/review/login", json=login).json()["token"]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as b:
        assert b.get("/api/review/agreement").status_code == 200
        assert b.post("/api/review/logout", json={}).status_code == 200  # logout revokes the token itself
        assert b.get("/api/review/agreement").status_code == 401


def test_an_agent_cannot_review(server):
    with client(server, "a-1") as agent:
        assert agent.get("/api/review/queue").status_code == 403
        own = agent.get("/api/review/items/c1").json()
        assert own["can_review"] is False and own["reviews"] == []
        r = agent.post("/api/review/items/c1/review", json={"labels": CORRECTED, "version": 1})
        assert r.status_code == 403 and "agents cannot review" in r.json()["detail"]["message"]
        assert agent.get("/api/review/items/xss").status_code == 404  # another agent's
        assert agent.get("/api/review/agreement").status_code == 403
        assert [c["id"] for c in agent.get("/api/review/mine").json()["conversations"]] == ["c1", "c2"]


def test_concurrent_saves_one_wins_the_other_gets_409(server):
    with client(server, "rev") as a, client(server, "rev2") as b:
        assert a.get("/api/review/items/c1").json()["task"]["version"] == 1
        assert b.get("/api/review/items/c1").json()["task"]["version"] == 1
        barrier, results = threading.Barrier(2), {}

        def save(name, c, labels):
            barrier.wait()
            results[name] = c.post("/api/review/items/c1/review", json={"labels": labels, "version": 1})

        threads = [threading.Thread(target=save, args=("a", a, CORRECTED)),
                   threading.Thread(target=save, args=("b", b, {**DEFAULT_LABELS, "sentiment": "negative"}))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in results.values())
        assert codes == [200, 409], {k: r.text for k, r in results.items()}
        winner, loser = sorted(results, key=lambda k: results[k].status_code)
        detail = results[loser].json()["detail"]
        assert detail["current_version"] == 2 and "Reload" in detail["message"]
        assert detail["saved_by"] == {"a": "rev", "b": "rev2"}[winner]
        saved = a.get("/api/review/items/c1").json()
        assert saved["task"]["version"] == 2 and len(saved["reviews"]) == 1  # nothing lost, nothing doubled
        expected = CORRECTED if winner == "a" else {**DEFAULT_LABELS, "sentiment": "negative"}
        assert saved["task"]["final_labels"] == expected
        trail = a.get("/api/review/items/c1/audit").json()["entries"]
        assert [e["action"] for e in trail] == ["review.saved"]
        assert trail[0]["before"]["labels"] is None and trail[0]["after"]["version"] == 2


def test_bad_input_is_a_4xx_with_the_reason(server):
    with client(server, "rev") as c:
        r = c.post("/api/review/items/c1/review",
                   json={"labels": {**DEFAULT_LABELS, "politeness": "rude"}, "version": 1})
        assert r.status_code == 422 and "politeness must be one of good, fair, poor" in r.json()["detail"]["message"]
        r = c.post("/api/review/items/c1/review", json={"labels": {"politeness": "good"}, "version": 1})
        assert r.status_code == 422 and "missing labels" in r.json()["detail"]["message"]
        assert c.post("/api/review/items/c1/review", json={"labels": DEFAULT_LABELS}).status_code == 422
        assert c.get("/api/review/items/nope").status_code == 404


def test_transcript_text_is_data_and_the_page_forbids_inline_script(server):
    with client(server, "rev") as c:
        page = c.get("/review")
        assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
        assert "'unsafe-inline'" not in page.headers["content-security-policy"]
        turns = c.get("/api/review/items/xss").json()["conversation"]["turns"]
        assert turns[1]["text"] == XSS  # stored and served verbatim as JSON data; the page renders it as text
        assert c.get("/review/static/review.js").headers["content-type"].startswith("text/javascript")
        assert c.get("/review/static/..%2Fapi.py").status_code == 404


def test_a_lead_restricts_the_team_and_other_teams_lose_sight(server):
    with client(server, "lead") as lead, client(server, "srev") as srev:
        queued = {i["conversation_id"] for i in srev.get("/api/review/queue").json()["items"]}
        assert queued == {"c1", "c2", "xss", "s1"}
        assert lead.post("/api/review/teams/south", json={"restricted": True}).status_code == 403
        assert lead.post("/api/review/teams/north", json={"restricted": True}).json()["restricted"] is True
        assert {i["conversation_id"] for i in srev.get("/api/review/queue").json()["items"]} == {"s1"}
        assert srev.get("/api/review/items/c1").status_code == 404
        assert srev.post("/api/review/items/c1/review", json={"labels": CORRECTED, "version": 1}).status_code == 404
        assert {t["team"]: t["restricted"] for t in lead.get("/api/review/teams").json()["teams"]} == \
            {"north": True, "south": False}
        assert lead.get("/api/review/audit?entity=team").json()["entries"][0]["action"] == "team.restricted"


def test_dispute_round_trip_over_http(server):
    with client(server, "a-1") as agent, client(server, "rev") as rev:
        r = agent.post("/api/review/disputes", json={"conversation_id": "c1", "reason": "客户最后很满意"})
        assert r.status_code == 201, r.text
        d = r.json()
        assert rev.get("/api/review/queue").json()["items"][0] == {
            "kind": "dispute", "conversation_id": "c1", "dispute_id": d["id"], "level": 1, "due_at": d["due_at"],
            "overdue": False}
        assert rev.post("/api/review/disputes", json={"conversation_id": "c1", "reason": "x"}).status_code == 403
        r = rev.post(f"/api/review/disputes/{d['id']}/answer",
                     json={"outcome": "overturned", "answer": "同意", "labels": {"sentiment": "neutral"},
                           "version": d["version"]})
        assert r.status_code == 200 and r.json()["status"] == "answered"
        stale = rev.post(f"/api/review/disputes/{d['id']}/answer",
                         json={"outcome": "upheld", "answer": "again", "version": d["version"]})
        assert stale.status_code == 409
        mine = {c["id"]: c for c in agent.get("/api/review/mine").json()["conversations"]}
        assert mine["c1"]["labels"]["sentiment"] == "neutral" and mine["c1"]["disputed"]
        [listed] = agent.get("/api/review/disputes").json()["disputes"]
        assert listed["answers"][0]["outcome"] == "overturned"


def test_exports_and_label_studio_import_over_http(server):
    with client(server, "rev") as rev, client(server, "lead") as lead:
        rev.post("/api/review/items/c1/review", json={"labels": CORRECTED, "version": 1})
        assert rev.get("/api/review/export?format=training").status_code == 403
        lines = lead.get("/api/review/export?format=training").text.splitlines()
        assert [json.loads(x)["labels"] for x in lines] == [CORRECTED]
        scores = [json.loads(x) for x in lead.get("/api/review/export?format=scores").text.splitlines()]
        assert {s["id"]: s["reviewed_labels"] for s in scores}["c1"] == CORRECTED
        tasks = lead.get("/api/review/export?format=label-studio").json()
        assert len(tasks) == 4
        t = next(t for t in tasks if t["data"]["conversation_id"] == "c2")
        t["annotations"] = [{"id": 1, "result": [{"from_name": "resolution", "to_name": "dialogue", "type": "choices",
                                                   "value": {"choices": ["escalated"]}}], "was_cancelled": False,
                             "ground_truth": False, "lead_time": 1.0, "completed_by": 1,
                             "created_at": "2026-03-05T00:00:00Z", "updated_at": "2026-03-05T00:00:00Z"}]
        r = lead.post("/api/review/import/label-studio", json=[t])
        assert r.status_code == 200 and r.json()["imported"] == 1
        assert lead.get("/api/review/items/c2").json()["task"]["final_labels"]["resolution"] == "escalated"
        assert "<Choices" in lead.get("/api/review/label-config").text


def test_concurrent_blind_reviews_of_a_double_item_are_both_kept(server, engine):
    load(engine, [("d1", "a-1", 0.4)], shares=(1.0, 0.0, 1.0), teams={"a-1": "north"})
    with client(server, "rev") as a, client(server, "rev2") as b:
        barrier, results = threading.Barrier(2), {}

        def save(name, c, labels):
            barrier.wait()
            results[name] = c.post("/api/review/items/d1/review", json={"labels": labels, "version": 1})

        threads = [threading.Thread(target=save, args=("a", a, CORRECTED)),
                   threading.Thread(target=save, args=("b", b, DEFAULT_LABELS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [results[k].status_code for k in "ab"] == [200, 200], {k: r.text for k, r in results.items()}
        with client(server, "lead") as lead:
            view = lead.get("/api/review/items/d1").json()
            assert sorted(r["reviewer"] for r in view["reviews"]) == ["rev", "rev2"]
            assert view["task"]["status"] == "done" and view["task"]["version"] == 3
            assert lead.get("/api/review/queue").json()["items"][0]["kind"] == "adjudicate"


def test_ids_with_slashes_work_percent_encoded(engine, settings):
    """Archive ids like "shop-7/2026-11/c1" are common; the page percent-encodes them."""
    cid = "shop-7/2026-11/c1"
    load(engine, [(cid, "a-1", 0.5)], teams={"a-1": "north"})
    users(engine, ("rev", "reviewer", "north"))
    with Server(create_app(settings, ReviewConfig(file_days=None))) as srv, client(srv, "rev") as c:
        path = "/api/review/items/" + cid.replace("/", "%2F")
        item = c.get(path)
        assert item.status_code == 200, item.text
        assert item.json()["conversation"]["id"] == cid
        saved = c.post(path + "/review", json={"labels": CORRECTED, "version": item.json()["task"]["version"]})
        assert saved.status_code == 200, saved.text
        assert c.get(path).json()["task"]["final_labels"] == CORRECTED
        assert [e["action"] for e in c.get(path + "/audit").json()["entries"]] == ["review.saved"]
        assert c.get("/api/review/items/shop-7%2Fnope").status_code == 404


def test_failed_logins_are_throttled_per_account_and_address(engine, settings):
    users(engine, ("rev", "reviewer", "north"), ("rev2", "reviewer", "north"))
    app = create_app(settings, ReviewConfig(file_days=None, login_attempts=3))
    with Server(app) as srv, httpx.Client(base_url=srv.url, timeout=10) as c:
        for _ in range(3):
            assert c.post("/api/review/login", json={"name": "rev", "password": "wrong"}).status_code == 401
        r = c.post("/api/review/login", json={"name": "rev", "password": PASSWORD})  # right, but paused
        assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 900
        assert "too many failed logins" in r.json()["detail"]["message"]
        assert c.post("/api/review/login", json={"name": "rev2", "password": PASSWORD}).status_code == 200


@pytest.mark.parametrize("trusted, throttled", [("", True), ("127.0.0.1", False)])
def test_x_forwarded_for_counts_only_from_a_trusted_proxy(engine, settings, trusted, throttled):
    users(engine, ("rev", "reviewer", "north"))
    app = create_app(settings, ReviewConfig(file_days=None, login_attempts=3))
    with Server(app, trusted_proxies=trusted) as srv, httpx.Client(base_url=srv.url, timeout=10) as c:
        for i in range(3):
            c.post("/api/review/login", json={"name": "rev", "password": "wrong"},
                   headers={"X-Forwarded-For": f"10.0.0.{i}"})
        # A client rotating the header is still one address, unless a configured proxy says otherwise.
        r = c.post("/api/review/login", json={"name": "rev", "password": PASSWORD},
                   headers={"X-Forwarded-For": "10.0.0.99"})
        assert r.status_code == (429 if throttled else 200)


def test_admin_disables_and_enables_a_login_over_http(engine, settings):
    users(engine, ("boss", "admin", None), ("rev", "reviewer", "north"))
    with Server(create_app(settings, ReviewConfig(file_days=None))) as srv, client(srv, "boss") as admin:
        with client(srv, "rev") as rev:
            assert rev.get("/api/review/me").status_code == 200
            assert rev.post("/api/review/users/rev/active", json={"active": False}).status_code == 403  # admins only
            deactivated = admin.post("/api/review/users/rev/active", json={"active": False}).json()
            assert deactivated == {"name": "rev", "active": False}
            assert rev.get("/api/review/me").status_code == 401  # its sessions end at once
        assert c_login(srv, "rev") == 401
        listed = {u["name"]: u["active"] for u in admin.get("/api/review/users").json()["users"]}
        assert listed == {"boss": True, "rev": False}
        assert admin.post("/api/review/users/rev/active", json={"active": True}).status_code == 200
        assert c_login(srv, "rev") == 200
        assert admin.post("/api/review/users/boss/active", json={"active": False}).status_code == 409
        assert admin.post("/api/review/users/nobody/active", json={"active": True}).status_code == 404
        actions = [e["action"] for e in admin.get("/api/review/audit").json()["entries"]]
        assert "user.deactivated" in actions and "user.activated" in actions


def c_login(server: Server, name: str) -> int:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        return c.post("/api/review/login", json={"name": name, "password": PASSWORD}).status_code


def test_the_standalone_review_app_bounds_bodies_while_they_stream(server, settings):
    limit = settings.service.max_body_bytes

    def chunks(total: int, size: int):
        for _ in range(0, total, size):
            yield b"x" * size

    with client(server) as c:
        # Unauthenticated: a login body is tiny, declared or streamed.
        r = c.post("/api/review/login", json={"name": "rev", "password": "x" * 10_000})
        assert r.status_code == 413 and "4096" in r.text
        r = c.post("/api/review/login", content=chunks(20_000, 1000), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
    with client(server, "rev") as c:
        r = c.post("/api/review/items/c1/review", content=chunks(limit + 65_536, 65_536),
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "body too large" in r.text
        assert c.get("/api/review/items/c1").status_code == 200  # the session still works


def test_unstorable_names_are_422_not_a_database_error(server):
    with client(server) as anon:
        r = anon.post("/api/review/login", json={"name": "rev\u0000x", "password": PASSWORD})
        assert r.status_code == 422 and "control character" in r.text
    with client(server, "lead") as lead:
        r = lead.post("/api/review/teams/" + "t" * 101, json={"restricted": True})
        assert r.status_code == 422 and "1 to 100 characters" in r.text


def test_an_overlong_id_is_reported_on_its_line_and_the_rest_is_imported(engine):
    result = load(engine, [("c1", "a-1", 0.5), ("x" * 201, "a-1", 0.5), ("c2", "a-1", 0.5)])
    assert result.conversations == 2
    assert result.problems == ["line 2: conversation id longer than 200 characters (201)"]
