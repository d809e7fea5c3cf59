"""The Label Studio export against a real Label Studio server (1.23.2 from PyPI) on loopback.

Label Studio runs from its own virtual environment, never the project's: ``$KEFUQA_LABEL_STUDIO_VENV``,
else ``.venv-label-studio`` in the repository (``.ci/run`` creates it), else one installed into this
session's temporary directory. The test skips, saying why, only when Label Studio cannot be
installed; once installed, a Label Studio that does not start fails it. Its data directory, user and
token live in a temporary directory.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kefuqa.cli import main
from kefuqa.labeling import interop
from kefuqa.labeling.db import open_engine, session
from kefuqa.labeling.reviews import save_review
from kefuqa.labeling.views import item

from .helpers import DEFAULT_LABELS, T0, load, users

LS_VERSION = "1.23.2"
ROOT = Path(__file__).resolve().parents[2]
ADMIN = "admin@example.com"
ZHANG = "zhang@example.com"
CORRECTED = {**DEFAULT_LABELS, "politeness": "poor", "resolution": "unresolved"}
ADJUDICATED = {**DEFAULT_LABELS, "sentiment": "neutral"}
IN_LABEL_STUDIO = {**DEFAULT_LABELS, "resolution": "escalated", "sentiment": "negative"}
CONVERSATIONS = [(f"c{i}", "a-1" if i % 2 else "a-2", 0.5 + 0.05 * i) for i in range(1, 7)]


@dataclass
class LabelStudio:
    url: str
    token: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Token {self.token}"}, timeout=120)


def _has_label_studio(venv: Path) -> bool:
    return (venv / "bin" / "label-studio").exists() and any(
        venv.glob(f"lib/python*/site-packages/label_studio-{LS_VERSION}.dist-info"))


def _tail(text: str | bytes, lines: int = 5) -> str:
    text = text.decode(errors="replace") if isinstance(text, bytes) else text
    return " | ".join(text.strip().splitlines()[-lines:])


# Label Studio 1.23.2 passes options that sentry-sdk 3 refuses ("Unknown option
# 'send_default_pii'"), and its requirements do not bound it: pin what it runs with.
SENTRY_PIN = "sentry-sdk<3"


@pytest.fixture(scope="module")
def label_studio_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    candidates = [Path(p) for p in (os.environ.get("KEFUQA_LABEL_STUDIO_VENV"), ROOT / ".venv-label-studio") if p]
    for venv in candidates:
        if _has_label_studio(venv):
            return venv
    venv = tmp_path_factory.mktemp("label-studio-venv") / "venv"
    steps = ([sys.executable, "-m", "venv", str(venv)],
             [str(venv / "bin" / "pip"), "install", "-q", f"label-studio=={LS_VERSION}", SENTRY_PIN])
    for cmd in steps:
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=1800, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot install label-studio {LS_VERSION}: {exc}")
        if done.returncode != 0:
            pytest.skip(f"cannot install label-studio {LS_VERSION}: {_tail(done.stderr)}")
    return venv


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"Label Studio exited with status {proc.returncode}: {_tail(log.read_bytes())}")
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"Label Studio did not answer on {url} within 10 minutes: {_tail(log.read_bytes())}")


@pytest.fixture(scope="module")
def label_studio(label_studio_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    home = tmp_path_factory.mktemp("label-studio")
    exe = str(label_studio_venv / "bin" / "label-studio")
    # A clean environment: Label Studio also reads unprefixed USERNAME, PASSWORD, PORT and HOST.
    env = {"PATH": f"{label_studio_venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "LABEL_STUDIO_LATEST_VERSION_CHECK": "false", "LABEL_STUDIO_COLLECT_ANALYTICS": "false"}
    data = ["--data-dir", str(home / "data")]
    token = secrets.token_hex(20)
    # The first user founds the organisation; legacy tokens make "Authorization: Token …" work.
    init = subprocess.run([exe, "init", "-q", "--username", ADMIN, "--password", secrets.token_urlsafe(16),
                           "--user-token", token, "--enable-legacy-api-token", *data],
                          cwd=home, env=env, capture_output=True, timeout=900, check=False)
    if init.returncode != 0 or not (home / "data").exists():
        pytest.fail(f"`label-studio init` failed ({init.returncode}): {_tail(init.stdout + init.stderr)}")
    port = _free_port()
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([exe, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
                                 *data], cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}", proc, log)
        yield LabelStudio(f"http://127.0.0.1:{port}", token)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out, err = capsys.readouterr()
    assert exit_.value.code == 0, err
    return out


def _store(url: str, reviews: bool) -> dict[str, Any]:
    """The six conversations, queued; with ``reviews``: c1 corrected by rev, c2 reviewed by rev
    and adjudicated by the lead."""
    engine = open_engine(url, auto_migrate=True)
    try:
        load(engine, CONVERSATIONS)
        u = users(engine, ("rev", "reviewer", None), ("lead", "lead", None), ("ls-bot", "reviewer", None))
        if reviews:
            with session(engine, write=True) as s:
                save_review(s, u["rev"], "c1", CORRECTED, version=1, comment="禁语", now=T0)
                save_review(s, u["rev"], "c2", DEFAULT_LABELS, version=1, now=T0)
                save_review(s, u["lead"], "c2", ADJUDICATED, version=2, now=T0)
    finally:
        engine.dispose()
    return u


def _decided(url: str, lead: Any) -> dict[str, tuple[dict[str, str] | None, str | None]]:
    """conversation → (final labels, reviewer of the latest review)."""
    engine = open_engine(url)
    try:
        with session(engine) as s:
            views = {cid: item(s, lead, cid) for cid, _, _ in CONVERSATIONS}
    finally:
        engine.dispose()
    return {cid: (v["task"]["final_labels"], v["reviews"][-1]["reviewer"] if v["reviews"] else None)
            for cid, v in views.items()}


def _snapshot_with_annotators(ls: httpx.Client, project: int) -> list[dict[str, Any]]:
    """Label Studio's export snapshot with each annotation's ``completed_by`` expanded to the user
    (id, e-mail, names), the form that names Label Studio users by e-mail."""
    r = ls.post(f"/api/projects/{project}/exports/", json={
        "serialization_options": {"annotations__completed_by": {"only_id": False}},
        "task_filter_options": {"only_with_annotations": True}})
    assert r.status_code == 201, r.text
    export_id = r.json()["id"]
    for _ in range(120):
        if ls.get(f"/api/projects/{project}/exports/{export_id}").json()["status"] == "completed":
            break
        time.sleep(1)
    r = ls.get(f"/api/projects/{project}/exports/{export_id}/download", params={"exportType": "JSON"})
    assert r.status_code == 200, r.text
    tasks: list[dict[str, Any]] = r.json()
    return tasks


def test_our_export_imports_into_label_studio_and_comes_back(label_studio, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KEFUQA_HOME", str(tmp_path / "home"))
    db = f"sqlite:///{tmp_path / 'reviews.db'}"
    u = _store(db, reviews=True)
    tasks_file, config_file = tmp_path / "tasks.json", tmp_path / "config.xml"
    _cli(capsys, "review", "export", "--format", "label-studio", "-o", str(tasks_file), "--label-config",
         str(config_file), "--ls-user", f"rev={ZHANG}", "--db", db)

    with label_studio.client() as ls:
        zhang = ls.post("/api/users/", json={"email": ZHANG, "username": "zhang"})
        assert zhang.status_code == 201, zhang.text
        admin_id = next(x["id"] for x in ls.get("/api/users/").json() if x["email"] == ADMIN)
        project = ls.post("/api/projects/", json={"title": "kefu-qa 质检",
                                                  "label_config": config_file.read_text(encoding="utf-8")})
        assert project.status_code == 201, project.text
        pid = project.json()["id"]
        imported = ls.post(f"/api/projects/{pid}/import", content=tasks_file.read_bytes(),
                           headers={"Content-Type": "application/json"})
        assert imported.status_code == 201, imported.text
        counts = imported.json()
        assert (counts["task_count"], counts["annotation_count"], counts["prediction_count"]) == (6, 3, 6)

        everything = ls.get(f"/api/projects/{pid}/export", params={"exportType": "JSON", "download_all_tasks": True})
        in_ls = {t["data"]["conversation_id"]: t for t in everything.json()}
        assert len(in_ls) == 6 and all(len(t["predictions"]) == 1 for t in in_ls.values())
        assert in_ls["c1"]["data"]["dialogue"][0] == {"author": "customer", "text": "在吗？我的快递三天了还没到"}
        assert [a["completed_by"] for a in in_ls["c1"]["annotations"]] == [zhang.json()["id"]]
        # the lead has no Label Studio e-mail: Label Studio credits the user who imported
        c2 = sorted(in_ls["c2"]["annotations"], key=lambda a: a["import_id"])
        assert [(a["completed_by"], a["ground_truth"]) for a in c2] == [(zhang.json()["id"], False), (admin_id, True)]
        assert [r["reviewer"] for r in in_ls["c2"]["meta"]["kefuqa"]["reviews"]] == ["rev", "lead"]

        # someone labels c3 in Label Studio
        r = ls.post(f"/api/tasks/{in_ls['c3']['id']}/annotations/",
                    json={"result": interop.result_items(IN_LABEL_STUDIO), "lead_time": 4.2})
        assert r.status_code == 201, r.text

        back = ls.get(f"/api/projects/{pid}/export", params={"exportType": "JSON"})
        assert back.status_code == 200
        snapshot = _snapshot_with_annotators(ls, pid)

    back_file = tmp_path / "from-label-studio.json"
    back_file.write_bytes(back.content)
    out = _cli(capsys, "review", "import-label-studio", str(back_file), "--reviewer", "ls-bot", "--db", db)
    assert out.strip() == "1 annotations imported, 2 unchanged, 0 tasks without annotations, 0 problems"
    decided = _decided(db, u["lead"])
    assert decided["c1"] == (CORRECTED, "rev") and decided["c2"] == (ADJUDICATED, "lead")
    assert decided["c3"] == (IN_LABEL_STUDIO, "ls-bot")  # the plain export names annotators by number only
    assert decided["c4"] == (None, None)
    out = _cli(capsys, "review", "import-label-studio", str(back_file), "--reviewer", "ls-bot", "--db", db)
    assert out.startswith("0 annotations imported, 3 unchanged")

    # Into a store without those reviews: the reviewers come back from the task meta, and the
    # annotation made in Label Studio goes to whoever its annotator's e-mail is mapped to.
    snapshot_file, fresh = tmp_path / "snapshot.json", f"sqlite:///{tmp_path / 'fresh.db'}"
    snapshot_file.write_text(json.dumps(snapshot, ensure_ascii=False), encoding="utf-8")
    u2 = _store(fresh, reviews=False)
    out = _cli(capsys, "review", "import-label-studio", str(snapshot_file), "--reviewer", "ls-bot",
               "--ls-user", f"lead={ADMIN}", "--db", fresh)
    assert out.startswith("3 annotations imported")
    decided = _decided(fresh, u2["lead"])
    assert (decided["c1"], decided["c2"]) == ((CORRECTED, "rev"), (ADJUDICATED, "lead"))
    assert decided["c3"] == (IN_LABEL_STUDIO, "lead")
