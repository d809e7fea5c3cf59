"""The built wheel, not the source tree: rooms install under ``kefuqa.*`` and
the shipped data files (rules, dictionaries) come with them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_maps_rooms_under_kefuqa_and_runs(tmp_path):
    # Built from a copy: a build in the source tree would leave build/ and *.egg-info there.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", ".kefuqa", "build", "*.egg-info",
                                                            "__pycache__", "out", "runs", "mlruns"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(src)],
        check=True, capture_output=True, timeout=300,
    )
    [wheel] = tmp_path.glob("kefu_qa-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"kefuqa"}, tops
    for data in ("kefuqa/models/rules/default_rules.yaml", "kefuqa/text/data/cs_userdict.txt",
                 "kefuqa/models/neural/default/head.onnx", "kefuqa/models/neural/default/kept_ids.json",
                 "kefuqa/labeling/static/review.html", "kefuqa/labeling/migrations/script.py.mako",
                 "kefuqa/labeling/migrations/versions/0001_review_store.py", "kefuqa/grading/default_rubric.yaml",
                 "kefuqa/grading/report.html.j2"):
        assert data in names
    # Every file of the bundled models (the default and the distilled student) ships: without
    # one, `kefuqa models build-default` cannot rebuild that model from an installed wheel.
    neural = Path(__file__).resolve().parents[2] / "models" / "neural"
    for artifact in ("default", "distilled"):
        files = [f for f in (neural / artifact).rglob("*") if f.is_file()]
        assert files
        for f in files:
            assert f"kefuqa/models/neural/{f.relative_to(neural).as_posix()}" in names, f
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import json, kefuqa.models.baseline as b, kefuqa.contract as c;"
        f"assert b.__file__.startswith({str(site)!r}), b.__file__;"
        "e = b.RulesEngine();"
        "r = e.score(c.Conversation.model_validate("
        "{'id':'x','agent_id':'a','turns':[{'speaker':'agent','text':'不知道'}]}));"
        "print(r['labels']['politeness'])"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "poor"
