"""Agreement: Cohen's kappa between reviewers and between the model and reviewers.

- reviewer vs reviewer: on items reviewed independently by two reviewers, the
  first review of each of the first two reviewers, per label;
- model vs reviewer: each reviewer's first review of an item against the
  prediction they saw, per label;
both overall and per reviewer (a reviewer against whoever they were paired
with, and against the model). kappa is ``None`` where it is undefined (no
pairs, or both sides used one single value); the raw agreement rate and the
number of pairs are always given.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from typing import Any

from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import select
from sqlalchemy.orm import Session

from kefuqa.contract import LABELS

from .access import require_lead, visible
from .auth import Principal
from .models import Prediction, Review, StoredConversation, User


def kappa(a: list[str], b: list[str], values: tuple[str, ...]) -> dict[str, Any]:
    n = len(a)
    if n == 0:
        return {"kappa": None, "agreement": None, "n": 0}
    agree = sum(x == y for x, y in zip(a, b)) / n
    if len(set(a) | set(b)) == 1:  # chance agreement is 1: kappa is 0/0
        return {"kappa": None, "agreement": round(agree, 4), "n": n}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        k = float(cohen_kappa_score(a, b, labels=list(values)))
    return {"kappa": None if math.isnan(k) else round(k, 4), "agreement": round(agree, 4), "n": n}


def compute(s: Session, user: Principal) -> dict[str, Any]:
    require_lead(user)
    rows = s.execute(
        select(Review, User.name, Prediction.labels)
        .join(User, User.id == Review.reviewer_id)
        .join(StoredConversation, StoredConversation.id == Review.conversation_id)
        .outerjoin(Prediction, Prediction.id == Review.prediction_id)
        .where(Review.kind == "review", visible(s, user))
        .order_by(Review.id)
    ).all()
    first: dict[str, dict[str, tuple[dict[str, str], dict[str, str] | None]]] = defaultdict(dict)
    for review, name, pred_labels in rows:  # each reviewer's first (independent) review of an item
        first[review.conversation_id].setdefault(name, (review.labels, pred_labels))

    rr: dict[str, tuple[list[str], list[str]]] = {h: ([], []) for h in LABELS}
    mr: dict[str, tuple[list[str], list[str]]] = {h: ([], []) for h in LABELS}
    per_rr: dict[str, dict[str, tuple[list[str], list[str]]]] = defaultdict(lambda: {h: ([], []) for h in LABELS})
    per_mr: dict[str, dict[str, tuple[list[str], list[str]]]] = defaultdict(lambda: {h: ([], []) for h in LABELS})
    counts: dict[str, int] = defaultdict(int)
    double_items = 0
    for by_reviewer in first.values():
        names = list(by_reviewer)
        for name, (labels, pred) in by_reviewer.items():
            counts[name] += 1
            if pred:
                for h in LABELS:
                    _pair(mr[h], pred[h], labels[h])
                    _pair(per_mr[name][h], pred[h], labels[h])
        if len(names) >= 2:
            double_items += 1
            (a, (la, _)), (b, (lb, _)) = (names[0], by_reviewer[names[0]]), (names[1], by_reviewer[names[1]])
            for h in LABELS:
                _pair(rr[h], la[h], lb[h])
                _pair(per_rr[a][h], la[h], lb[h])
                _pair(per_rr[b][h], lb[h], la[h])

    def table(pairs: dict[str, tuple[list[str], list[str]]]) -> dict[str, Any]:
        return {h: kappa(*pairs[h], LABELS[h]) for h in LABELS}

    return {
        "labels": {h: {"reviewers": kappa(*rr[h], LABELS[h]), "model": kappa(*mr[h], LABELS[h])} for h in LABELS},
        "reviewers": [{"name": n, "reviews": counts[n], "vs_reviewers": table(per_rr[n]), "vs_model": table(per_mr[n])}
                      for n in sorted(counts)],
        "double_reviewed_items": double_items,
        "reviewed_items": len(first),
    }


def _pair(lists: tuple[list[str], list[str]], x: str, y: str) -> None:
    lists[0].append(x)
    lists[1].append(y)
