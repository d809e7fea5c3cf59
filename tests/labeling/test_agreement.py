"""Cohen's kappa on a hand-computed example: reviewer vs reviewer, model vs reviewer, per reviewer."""

from __future__ import annotations

import pytest

from kefuqa.labeling.access import Forbidden
from kefuqa.labeling.agreement import compute
from kefuqa.labeling.db import session
from kefuqa.labeling.reviews import save_review

from .helpers import DEFAULT_LABELS, load, users

R1 = ["good", "good", "good", "good", "fair", "fair", "fair", "poor", "poor", "poor"]
R2 = ["good", "good", "good", "fair", "fair", "fair", "poor", "poor", "poor", "good"]


def test_kappa_on_a_known_example(engine):
    # r1 vs r2 on politeness:       good fair poor
    #                  r1 good   →    3    1    0
    #                  r1 fair   →    0    2    1
    #                  r1 poor   →    1    0    2
    # p_o = 7/10, p_e = .4·.4 + .3·.3 + .3·.3 = .34, κ = (.7 − .34) / (1 − .34) = 0.5455
    # The model predicted r1's labels: κ(model, r1) = 1; pooled over both reviewers
    # p_o = 17/20, p_e = .34, κ = (.85 − .34) / .66 = 0.7727.
    ids = [f"c{i}" for i in range(10)]
    load(engine, [(cid, "a-1", 0.6) for cid in ids], shares=(1.0, 0.0, 1.0),
         labels={cid: {"politeness": R1[i]} for i, cid in enumerate(ids)})
    u = users(engine, ("r1", "reviewer", None), ("r2", "reviewer", None), ("lead", "lead", None))
    with session(engine, write=True) as s:
        for i, cid in enumerate(ids):
            save_review(s, u["r1"], cid, {**DEFAULT_LABELS, "politeness": R1[i]}, version=1)
            save_review(s, u["r2"], cid, {**DEFAULT_LABELS, "politeness": R2[i]}, version=1)
    with session(engine) as s:
        with pytest.raises(Forbidden):
            compute(s, u["r1"])
        a = compute(s, u["lead"])
    pol = a["labels"]["politeness"]
    assert pol["reviewers"] == {"kappa": pytest.approx(0.5455, abs=1e-4), "agreement": 0.7, "n": 10}
    assert pol["model"] == {"kappa": pytest.approx(0.7727, abs=1e-4), "agreement": 0.85, "n": 20}
    # everyone said "positive" everywhere: agreement 100 %, kappa undefined rather than a made-up number
    assert a["labels"]["sentiment"]["reviewers"] == {"kappa": None, "agreement": 1.0, "n": 10}
    by_name = {r["name"]: r for r in a["reviewers"]}
    assert by_name["r1"]["vs_reviewers"]["politeness"]["kappa"] == pytest.approx(0.5455, abs=1e-4)
    assert by_name["r2"]["vs_reviewers"]["politeness"]["kappa"] == pytest.approx(0.5455, abs=1e-4)
    assert by_name["r1"]["vs_model"]["politeness"]["kappa"] == 1.0
    assert by_name["r2"]["vs_model"]["politeness"]["kappa"] == pytest.approx(0.5455, abs=1e-4)
    assert (a["double_reviewed_items"], a["reviewed_items"], by_name["r1"]["reviews"]) == (10, 10, 10)
    assert "lead" not in by_name
