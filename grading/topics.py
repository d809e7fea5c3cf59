"""高频问题追踪: what customers contact us about, grouped into recurring problems.

Each conversation's opening customer turns (PII masked first) are normalised,
segmented with jieba and the customer-service dictionary, stripped of greetings
and fillers, weighted with TF-IDF and clustered with k-means (cosine geometry:
TF-IDF rows have unit length). A topic is named by its heaviest terms and
counted per period and per team, so training can aim at what keeps coming back.

Everything here is a pure function of its arguments; reading the files and the
settings is the CLI's job.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import silhouette_score

from kefuqa.contract import Conversation
from kefuqa.io.readers import Item, Reject
from kefuqa.pipeline import mask_conversation
from kefuqa.text.normalize import normalize
from kefuqa.text.pii import PiiMasker
from kefuqa.text.segment import segment, stop_words

from .periods import PeriodKind, period_of, span, to_local

# A customer states the problem in the opening messages: a greeting (在吗), the problem and
# often one detail. Later customer turns answer the agent's questions (order number, address),
# react to the solution (好的 谢谢) or move on to something else, and would blur the topics.
CUSTOMER_TURNS = 3
UNDATED = "undated"  # the period bucket of conversations without started_at
NO_TEAM = "未分配"  # the team of agents who are not on the roster
AUTO_K = range(2, 11)  # topic counts tried when --topics is not given
SEED = 20260301  # k-means and sampling seed: the same archive always gives the same topics
TOP_TERMS = 8
NAME_TERMS = 3
EXAMPLES = 3
SELECTION_SAMPLE = 5000  # the topic count is chosen on at most this many conversations
_EXAMPLE_CHARS = 160
_MIN_DF_FROM = 100  # from this many conversations on, a word must occur in two of them
_TAG = re.compile(r"\[[^\[\]\n]{1,40}\]")  # PII placeholders ([手机号], [手机号#…]) and [图片]
# Amounts and durations (两天 一盒 十几分钟 第三次): every kind of problem has them.
_QUANTITY = re.compile(
    r"第?[零一二两三四五六七八九十百千万几半多]+"
    r"(?:天|个|次|点|号|块|元|斤|分钟|小时|周|个月|月|年|盒|句|瓶|件|单|遍|份|些)?"
)
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[a-z]{2,12}[0-9]{0,3}")  # sizes and models (xl, iphone15), not order numbers


class TopicsError(Exception):
    """The conversations cannot be grouped as asked (too few words, too few different ones)."""


@dataclass(frozen=True)
class TopicDoc:
    """One conversation as topic tracking sees it; ``text`` is already PII-masked."""

    id: str
    agent_id: str
    started_at: datetime | None
    text: str  # the opening customer turns, joined with " / "
    words: tuple[str, ...]  # what is left of them after stop words, in order


@dataclass(frozen=True)
class ReadStats:
    conversations: int = 0  # valid conversations read
    rejected: int = 0  # invalid input lines, skipped and counted
    without_customer: int = 0  # conversations in which the customer says nothing


@dataclass(frozen=True)
class Term:
    term: str
    weight: float  # the term's TF-IDF weight in the topic's centre


@dataclass(frozen=True)
class Example:
    id: str
    text: str


@dataclass(frozen=True)
class Topic:
    id: str
    name: str
    terms: tuple[Term, ...]
    count: int
    share: float  # of the grouped conversations
    examples: tuple[Example, ...]  # the conversations closest to the topic's centre
    by_period: dict[str, int]  # every period, gaps as 0, plus UNDATED when there are any
    share_by_period: dict[str, float | None]  # of the period's grouped conversations
    by_team: dict[str, int]
    trend_pp: float | None  # change in share between the last two periods, percentage points


@dataclass(frozen=True)
class TopicReport:
    kind: str
    timezone: str
    customer_turns: int
    k: int
    k_chosen_by: str  # "silhouette", "--topics" or "only choice"
    silhouette: dict[int, float]  # mean cosine silhouette of each topic count tried
    periods: tuple[str, ...]  # every calendar period from the first to the last
    undated: int
    trend: tuple[str, str] | None  # the two periods the trends compare
    read: ReadStats
    no_words: int  # conversations whose customer turns hold only greetings and fillers
    grouped: int
    topics: tuple[Topic, ...]
    assignments: dict[str, str]  # conversation id → topic id


def customer_text(conv: Conversation, turns: int = CUSTOMER_TURNS) -> str:
    said = [t.text.strip() for t in conv.turns if t.speaker == "customer"]
    return " / ".join(said[:turns])


def problem_words(text: str, stop: frozenset[str] | None = None) -> list[str]:
    """Normalised, segmented words that can say what the problem is. Left out: stop words,
    punctuation, numbers, amounts, emoji, placeholders and single characters (past the stop
    words those are verbs of every problem, 买 送 寄 换: they separate no topics and make
    names unreadable)."""
    stop = stop_words() if stop is None else stop
    words = segment(_TAG.sub(" ", normalize(text)))
    return [
        w
        for w in words
        if len(w) > 1
        and w not in stop
        and (_CJK.search(w) or _LATIN.fullmatch(w))
        and not _QUANTITY.fullmatch(w)
    ]


def collect(items: Iterable[Item], masker: PiiMasker) -> tuple[list[TopicDoc], ReadStats]:
    """A reader's output → one document per conversation with customer turns. Rejects are
    counted and skipped; each conversation is masked before its text is looked at."""
    docs: list[TopicDoc] = []
    rejected = without = 0
    stop = stop_words()
    for _, item in items:
        if isinstance(item, Reject):
            rejected += 1
            continue
        conv = mask_conversation(item, masker)
        text = customer_text(conv)
        if not text:
            without += 1
            continue
        words = tuple(problem_words(text, stop))
        docs.append(TopicDoc(conv.id, conv.agent_id, conv.started_at, text, words))
    return docs, ReadStats(len(docs) + without, rejected, without)


def _as_is(words: Sequence[str]) -> list[str]:
    return list(words)


def _vectorise(docs: Sequence[TopicDoc]) -> tuple[sparse.csr_matrix, np.ndarray]:
    vec = TfidfVectorizer(
        analyzer=_as_is, sublinear_tf=True, min_df=2 if len(docs) >= _MIN_DF_FROM else 1
    )
    try:
        matrix = vec.fit_transform([d.words for d in docs])
    except ValueError:  # every word occurs in one conversation only
        raise TopicsError("no problem word occurs in two conversations: nothing recurs") from None
    return sparse.csr_matrix(matrix), vec.get_feature_names_out()


def distinct_rows(matrix: sparse.csr_matrix) -> int:
    """How many different documents there are: k-means cannot make more topics than that."""
    m = matrix.copy()
    m.sort_indices()
    rows = {
        (m.indices[a:b].tobytes(), np.round(m.data[a:b], 9).tobytes())
        for a, b in zip(m.indptr[:-1], m.indptr[1:])
    }
    return len(rows)


def _fit(matrix: sparse.csr_matrix, k: int, seed: int) -> KMeans:
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit(matrix)


def choose_k(
    matrix: sparse.csr_matrix, seed: int = SEED, candidates: Iterable[int] = AUTO_K
) -> tuple[int, dict[int, float]]:
    """The topic count with the highest mean cosine silhouette (ties: fewer topics), tried on
    a fixed sample of at most SELECTION_SAMPLE rows. No scores when only k = 2 is possible."""
    rows = matrix
    if matrix.shape[0] > SELECTION_SAMPLE:
        pick = np.random.default_rng(seed).choice(matrix.shape[0], SELECTION_SAMPLE, replace=False)
        rows = matrix[np.sort(pick)]
    top = min(distinct_rows(rows), rows.shape[0] - 1)
    scores = {
        k: float(silhouette_score(rows, _fit(rows, k, seed).labels_, metric="cosine"))
        for k in candidates
        if 2 <= k <= top
    }
    if not scores:
        return 2, {}
    best = max(scores, key=lambda k: (round(scores[k], 6), -k))
    return best, {k: round(v, 4) for k, v in scores.items()}


@dataclass(frozen=True)
class _Grouped:
    """The grouped conversations and what every topic is measured against."""

    docs: Sequence[TopicDoc]
    matrix: sparse.csr_matrix
    vocab: np.ndarray
    period: Sequence[str]  # each document's period label, or UNDATED
    team: Sequence[str]
    columns: tuple[str, ...]  # periods, then UNDATED when any document has no start
    totals: Mapping[str, int]  # grouped conversations per column
    periods: tuple[str, ...]


def _periods(
    docs: Sequence[TopicDoc], kind: PeriodKind, tz: ZoneInfo
) -> tuple[list[str], tuple[str, ...]]:
    """Each document's period label (UNDATED without a start) and every period in the span."""
    found = [
        None if d.started_at is None else period_of(to_local(d.started_at, tz), kind) for d in docs
    ]
    dated = [p for p in found if p is not None]
    periods = tuple(p.label for p in span(min(dated), max(dated))) if dated else ()
    return [UNDATED if p is None else p.label for p in found], periods


def _group(
    docs: Sequence[TopicDoc], kind: PeriodKind, tz: ZoneInfo, teams: Mapping[str, str]
) -> tuple[_Grouped, int]:
    """Vectorise the documents with words; the number left out (no words) comes beside."""
    worded = [d for d in docs if d.words]
    if not worded:
        raise TopicsError("the customer turns hold only greetings and fillers: nothing to group")
    matrix, vocab = _vectorise(worded)
    keep = np.flatnonzero(matrix.getnnz(axis=1) > 0)
    worded = [worded[i] for i in keep]
    matrix = sparse.csr_matrix(matrix[keep])
    labels, periods = _periods(worded, kind, tz)
    columns = periods + ((UNDATED,) if UNDATED in labels else ())
    totals = Counter(labels)
    team = [teams.get(d.agent_id, NO_TEAM) for d in worded]
    grouped = _Grouped(worded, matrix, vocab, labels, team, columns, totals, periods)
    return grouped, len(docs) - len(worded)


def _examples(g: _Grouped, members: np.ndarray, center: np.ndarray) -> tuple[Example, ...]:
    sims = np.asarray(g.matrix[members] @ (center / (np.linalg.norm(center) or 1.0))).ravel()
    docs = [g.docs[int(m)] for m in members]
    order = sorted(range(len(docs)), key=lambda i: (-round(float(sims[i]), 9), docs[i].id))
    out: list[Example] = []
    for i in order:
        doc = docs[i]
        text = doc.text if len(doc.text) <= _EXAMPLE_CHARS else doc.text[: _EXAMPLE_CHARS - 1] + "…"
        if all(e.text != text for e in out):
            out.append(Example(doc.id, text))
        if len(out) == EXAMPLES:
            break
    return tuple(out)


def _topic(g: _Grouped, members: np.ndarray, center: np.ndarray) -> Topic:
    """One cluster as a topic; its id is given once the topics are ranked."""
    top = [i for i in np.argsort(-center, kind="stable")[:TOP_TERMS] if center[i] > 0]
    terms = tuple(Term(str(g.vocab[i]), round(float(center[i]), 4)) for i in top)
    per_period = Counter(g.period[i] for i in members)
    by_period = {c: per_period.get(c, 0) for c in g.columns}
    shares = {c: by_period[c] / g.totals[c] if g.totals.get(c) else None for c in g.columns}
    trend = None
    if len(g.periods) >= 2:
        before, last = (shares[p] for p in g.periods[-2:])
        if before is not None and last is not None:
            trend = round((last - before) * 100, 1)
    teams = Counter(g.team[i] for i in members)
    return Topic(
        id="",
        name=" · ".join(t.term for t in terms[:NAME_TERMS]),
        terms=terms,
        count=len(members),
        share=round(len(members) / len(g.docs), 4),
        examples=_examples(g, members, center),
        by_period=by_period,
        share_by_period={c: None if v is None else round(v, 4) for c, v in shares.items()},
        by_team=dict(sorted(teams.items(), key=lambda kv: (-kv[1], kv[0]))),
        trend_pp=trend,
    )


def _pick_k(
    matrix: sparse.csr_matrix, k: int | None, seed: int
) -> tuple[int, str, dict[int, float]]:
    distinct = distinct_rows(matrix)
    if distinct < 2:
        raise TopicsError("every conversation asks about the same words: nothing to group")
    if k is not None:
        if k > distinct:
            raise TopicsError(
                f"--topics {k} is more than the {distinct} different customer problems found"
            )
        return k, "--topics", {}
    best, scores = choose_k(matrix, seed)
    return best, ("silhouette" if scores else "only choice"), scores


def find_topics(
    docs: Sequence[TopicDoc],
    read: ReadStats,
    *,
    kind: PeriodKind = "month",
    tz: ZoneInfo | None = None,
    teams: Mapping[str, str] | None = None,
    k: int | None = None,
    seed: int = SEED,
) -> TopicReport:
    """Group the documents into ``k`` topics (default: chosen by silhouette over AUTO_K),
    ranked by size, with counts per period (``kind`` in ``tz``) and per team."""
    if k is not None and k < 2:
        raise TopicsError("--topics must be at least 2")
    tz = tz or ZoneInfo("Asia/Shanghai")
    g, no_words = _group(docs, kind, tz, teams or {})
    k, how, scores = _pick_k(g.matrix, k, seed)
    model = _fit(g.matrix, k, seed)
    found = [
        _topic(g, np.flatnonzero(model.labels_ == c), model.cluster_centers_[c]) for c in range(k)
    ]
    order = sorted(range(k), key=lambda c: (-found[c].count, found[c].name))
    ranked = tuple(replace(found[c], id=f"T{n}") for n, c in enumerate(order, 1))
    topic_id = {c: ranked[n].id for n, c in enumerate(order)}
    return TopicReport(
        kind=kind,
        timezone=tz.key,
        customer_turns=CUSTOMER_TURNS,
        k=k,
        k_chosen_by=how,
        silhouette=scores,
        periods=g.periods,
        undated=g.totals.get(UNDATED, 0),
        trend=(g.periods[-2], g.periods[-1]) if len(g.periods) >= 2 else None,
        read=read,
        no_words=no_words,
        grouped=len(g.docs),
        topics=ranked,
        assignments={d.id: topic_id[int(c)] for d, c in zip(g.docs, model.labels_)},
    )
