"""Ranking metrics (RecBole-style registry) and the full-ranking evaluation loop.

Protocol implemented by ``evaluate_full_ranking`` (the S3-Rec / eSASRec
leave-one-out convention, stated beside every number the benches print):

* every catalog item is ranked (no sampled negatives);
* ``mask_history=True`` (the default, as in the S3-Rec lineage's full-sort code,
  which zeroes the user's training-matrix items) removes the items of the
  user's history before ranking. A target that repeats a history item is then
  a miss; ``mask_history=False`` ranks everything;
* ties are broken pessimistically: the target's rank counts every other item
  with a score >= its own, so a constant scorer gets no credit.

Accuracy metrics are per user (averaged); list metrics look at the top-k lists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from retrieval.topk import top_k

if TYPE_CHECKING:
    from retrieval.scorers.base import Scorer


@dataclass
class ListContext:
    """What list metrics need besides the top-k lists."""

    n_items: int
    popularity: np.ndarray  # training interaction count per item
    n_users: int  # users in training (for self-information)
    item_vectors: np.ndarray | None = None  # L2-normalised rows for ILD; None -> ILD is NaN


# --- accuracy metrics: f(ranks, k) -> per-user values (rank is 0-based; -1 never occurs) ---
def recall_at_k(ranks: np.ndarray, k: int) -> np.ndarray:
    """Recall@k with one held-out item per user (= HR@k)."""
    return (ranks < k).astype(np.float64)


def ndcg_at_k(ranks: np.ndarray, k: int) -> np.ndarray:
    """1/log2(rank+2) when the target is in the top k (IDCG = 1 with one target)."""
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def mrr(ranks: np.ndarray, k: int | None = None) -> np.ndarray:
    """Reciprocal rank; with ``k`` it is cut off at k (MRR@k)."""
    rr = 1.0 / (ranks + 1.0)
    return rr if k is None else np.where(ranks < k, rr, 0.0)


# --- list metrics: f(topk (U, k) item rows, ctx) -> scalar ---------------------------------
def coverage_at_k(topk: np.ndarray, ctx: ListContext) -> float:
    """Share of the catalog that appears in at least one user's top-k list."""
    return float(len(np.unique(topk)) / max(ctx.n_items, 1))


def intra_list_diversity(topk: np.ndarray, ctx: ListContext) -> float:
    """1 - mean pairwise cosine similarity of the items in each list (averaged over users)."""
    if ctx.item_vectors is None or topk.shape[1] < 2:
        return float("nan")
    v = ctx.item_vectors[topk]  # (U, k, d)
    sims = np.einsum("ukd,ujd->ukj", v, v)
    k = topk.shape[1]
    off = (sims.sum(axis=(1, 2)) - np.trace(sims, axis1=1, axis2=2)) / (k * (k - 1))
    return float(1.0 - off.mean())


def novelty(topk: np.ndarray, ctx: ListContext) -> float:
    """Mean self-information -log2 p(i), p(i) = (count_i + 1) / (n_users + 1)."""
    p = (ctx.popularity + 1.0) / (ctx.n_users + 1.0)
    return float((-np.log2(p))[topk].mean())


def popularity_bias(topk: np.ndarray, ctx: ListContext) -> float:
    """Mean popularity percentile (0 = least, 1 = most popular training item) of recommended items."""
    order = np.argsort(np.argsort(ctx.popularity, kind="stable"), kind="stable")
    pct = order / max(ctx.n_items - 1, 1)
    return float(pct[topk].mean())


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # "accuracy" (per user, from ranks) or "list" (from top-k lists)
    fn: Callable[..., Any]
    lower_is_better: bool = False


METRICS: dict[str, Metric] = {
    "recall": Metric("recall", "accuracy", recall_at_k),
    "hit": Metric("hit", "accuracy", recall_at_k),
    "ndcg": Metric("ndcg", "accuracy", ndcg_at_k),
    "mrr": Metric("mrr", "accuracy", mrr),
    "coverage": Metric("coverage", "list", coverage_at_k),
    "ild": Metric("ild", "list", intra_list_diversity),
    "novelty": Metric("novelty", "list", novelty),
    "popularity": Metric("popularity", "list", popularity_bias, lower_is_better=True),
}


def parse_metric(spec: str) -> tuple[Metric, int | None]:
    """``"ndcg@10"`` -> (Metric, 10); ``"mrr"`` -> (Metric, None)."""
    name, _, k = spec.lower().partition("@")
    if name not in METRICS:
        raise KeyError(f"unknown metric {spec!r}; known: {sorted(METRICS)}")
    if k and (not k.isdigit() or int(k) < 1):
        raise ValueError(f"bad cut-off in {spec!r}: expected a positive integer after '@'")
    metric = METRICS[name]
    if metric.kind == "list" and not k:
        raise ValueError(f"list metric {name!r} needs a cut-off, e.g. {name}@10")
    return metric, int(k) if k else None


# --- ranks ---------------------------------------------------------------------------------
def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based pessimistic rank: items scoring strictly higher plus tied items other than the target."""
    if not np.isfinite(scores[~np.isneginf(scores)]).all():
        raise ValueError("scores contain NaN or +inf; the scorer is broken")
    t = scores[np.arange(len(targets)), targets][:, None]
    return (scores > t).sum(axis=1) + (scores == t).sum(axis=1) - 1


@dataclass
class EvalResult:
    metrics: dict[str, float]
    ranks: np.ndarray
    protocol: dict[str, Any] = field(default_factory=dict)
    unmasked: dict[str, float] = field(default_factory=dict)  # same pass, no history mask


def evaluate_full_ranking(
    scorer: Scorer,
    pairs: Sequence[tuple[Sequence[int], int]],
    context: ListContext,
    metrics: Sequence[str] = ("recall@5", "recall@10", "ndcg@5", "ndcg@10", "mrr"),
    mask_history: bool = True,
    batch_size: int = 1024,
    progress: bool = False,
    desc: str = "evaluate",
    unmasked_metrics: Sequence[str] = (),
) -> EvalResult:
    """Rank all items for each ``(history rows, target row)``; see the module docstring for the rules.

    ``unmasked_metrics`` (accuracy only) are computed in the same pass without the history
    mask, into ``EvalResult.unmasked``; this halves the cost of reporting both conventions.
    """
    if not pairs:
        raise ValueError("no evaluation pairs: the split has no held-out events")
    parsed = [(s, *parse_metric(s)) for s in metrics]
    list_k = max([k for _, m, k in parsed if m.kind == "list"] or [0])
    ranks, lists, raw_ranks = [], [], []
    for lo in tqdm(range(0, len(pairs), batch_size), desc=desc, disable=not progress, leave=False):
        chunk = pairs[lo : lo + batch_size]
        hists = [list(h) for h, _ in chunk]
        targets = np.array([t for _, t in chunk], dtype=np.int64)
        scores = np.array(scorer.full_sort(hists), dtype=np.float32)
        if scores.shape != (len(chunk), context.n_items):
            raise ValueError(
                f"{type(scorer).__name__}.full_sort returned {scores.shape}, expected {(len(chunk), context.n_items)}"
            )
        if unmasked_metrics:
            raw_ranks.append(target_ranks(scores, targets))
        if mask_history:
            for i, h in enumerate(hists):
                if h:
                    scores[i, h] = -np.inf
        ranks.append(target_ranks(scores, targets))
        if list_k:
            lists.append(top_k(scores, list_k)[0])
    rank_arr = np.concatenate(ranks)
    topk = np.concatenate(lists) if lists else None
    out: dict[str, float] = {}
    for spec, metric, k in parsed:
        if metric.kind == "accuracy":
            out[spec] = float(metric.fn(rank_arr, k).mean()) if k else float(metric.fn(rank_arr).mean())
        else:
            assert topk is not None and k is not None
            out[spec] = metric.fn(topk[:, :k], context)
    protocol = {
        "ranking": "full (all catalog items)",
        "mask_history": mask_history,
        "ties": "pessimistic (target ranked below every equal-scored item)",
        "users": len(pairs),
    }
    unmasked: dict[str, float] = {}
    if unmasked_metrics:
        raw = np.concatenate(raw_ranks)
        for spec in unmasked_metrics:
            metric, k = parse_metric(spec)
            if metric.kind != "accuracy":
                raise ValueError(f"unmasked_metrics supports accuracy metrics only, got {spec!r}")
            unmasked[spec] = float(metric.fn(raw, k).mean()) if k else float(metric.fn(raw).mean())
    return EvalResult(out, rank_arr, protocol, unmasked)
