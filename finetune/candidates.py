"""Candidate generation for ranking prompts: a collaborative scorer's top items, or random items.

LlamaRec trains and evaluates the LLM on the top candidates of a cheap retriever, so the
"retrieved" protocol uses one: a scorer from ``retrieval.scorers.SCORERS`` when it is
available, otherwise our own item-item co-occurrence retriever, labelled
``fallback-cooccurrence`` everywhere it is reported. Every source is fitted on the
TRAINING part of the split only, so validation and test targets never shape candidates.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from retrieval.data.schema import Catalog, Interactions
from retrieval.topk import top_k

FALLBACK_NAME = "fallback-cooccurrence"
PREFERRED_SCORERS = ("ItemKNN", "itemknn", "EASE", "ease", "MostPop", "mostpop")


def available_scorers() -> dict[str, type]:
    """``SCORERS`` after importing every module of ``retrieval.scorers`` (each registers itself)."""
    import retrieval.scorers as pkg  # lazy: it loads torch (SASRec); finetune's CLI calls configure() first

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name == "base" or mod.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"retrieval.scorers.{mod.name}")
        except Exception as exc:  # a half-written sibling module must not break data generation
            warnings.warn(f"could not import retrieval.scorers.{mod.name}: {exc}", stacklevel=2)
    return dict(pkg.SCORERS)


class CooccurrenceCandidates:
    """Item-item cosine co-occurrence over training baskets, popularity as tie-breaker.

    Our own fallback (ItemKNN-like) for when no CF scorer is registered yet.
    """

    name = FALLBACK_NAME

    def __init__(self, train: Interactions, catalog: Catalog, recent: int = 5):
        self.catalog = catalog
        self.recent = recent
        index = {iid: i for i, iid in enumerate(catalog.ids)}
        frame = train.frame
        rows_user = {u: k for k, u in enumerate(dict.fromkeys(frame["user_id"]))}
        u = frame["user_id"].map(rows_user).to_numpy()
        i = frame["item_id"].map(index).to_numpy()
        ok = ~np.isnan(i.astype(float))
        x = sp.csr_matrix(
            (np.ones(int(ok.sum()), dtype=np.float32), (u[ok], i[ok].astype(np.int64))),
            shape=(len(rows_user), len(catalog)),
        )
        x.data[:] = 1.0  # repeated purchases count once
        self.popularity = np.asarray(x.sum(axis=0)).ravel()
        norms = np.sqrt(np.maximum(self.popularity, 1.0))
        co = (x.T @ x).tocsr().astype(np.float32)
        co.setdiag(0)
        co.eliminate_zeros()
        inv = sp.diags(1.0 / norms)
        self.sim = (inv @ co @ inv).tocsr()

    def top(self, history: Sequence[str], n: int, exclude: set[str]) -> list[str]:
        rows = [self.catalog.index_of(i) for i in history if i in self.catalog][-self.recent :]
        scores = np.zeros(len(self.catalog), dtype=np.float64)
        if rows:
            scores += np.asarray(self.sim[rows].sum(axis=0)).ravel()
        scores += 1e-6 * self.popularity / max(self.popularity.max(), 1.0)
        for iid in exclude:
            if iid in self.catalog:
                scores[self.catalog.index_of(iid)] = -np.inf
        top, _ = top_k(scores, n, filter_items=np.flatnonzero(~np.isfinite(scores)))
        return [self.catalog.at(int(r)).item_id for r in top]


class ScorerCandidates:
    """Adapter around a ``retrieval.scorers`` scorer (its ``recommend`` with exclusions)."""

    def __init__(self, scorer_name: str, train: Interactions, catalog: Catalog):
        scorers = available_scorers()
        if scorer_name not in scorers:
            raise ValueError(f"unknown scorer {scorer_name!r}; registered: {sorted(scorers)}")
        self.scorer = scorers[scorer_name]().fit(train, catalog)
        self.name = f"scorer:{scorer_name}"

    def top(self, history: Sequence[str], n: int, exclude: set[str]) -> list[str]:
        recs = self.scorer.recommend(
            list(history), n=n, filter_items=sorted(exclude), filter_already_seen=False
        )
        return [iid for iid, _ in recs]


@dataclass
class CandidateSampler:
    """Draws the negatives of one example under a named protocol ("retrieved" or "random")."""

    catalog: Catalog
    source: CooccurrenceCandidates | ScorerCandidates

    def negatives(
        self,
        protocol: str,
        history: Sequence[str],
        target: str,
        n: int,
        rng: np.random.Generator,
        forbidden: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> list[str]:
        """``n`` distinct non-target items outside the history and ``forbidden`` (ids)."""
        exclude = set(history) | {target} | set(forbidden)
        if protocol == "retrieved":
            picked = self.source.top(history, n, exclude)
        elif protocol == "random":
            picked = []
        else:
            raise ValueError(f"protocol must be 'retrieved' or 'random', got {protocol!r}")
        # Random fill (and the whole "random" protocol): uniform over the catalog.
        ids = self.catalog.ids
        taken = set(picked)
        tries = 0
        while len(picked) < n:
            tries += 1
            if tries > 50 * n + 1000:
                raise ValueError(f"catalog too small to draw {n} negatives (have {len(picked)})")
            cand = ids[int(rng.integers(len(ids)))]
            if cand in exclude or cand in taken:
                continue
            picked.append(cand)
            taken.add(cand)
        return picked


def make_candidate_source(
    kind: str, train: Interactions, catalog: Catalog
) -> CooccurrenceCandidates | ScorerCandidates:
    """``kind``: "auto" (a registered ItemKNN/EASE/MostPop, else the fallback), "cooccurrence",
    or a ``SCORERS`` name."""
    if kind == "cooccurrence":
        return CooccurrenceCandidates(train, catalog)
    if kind == "auto":
        scorers = available_scorers()
        for name in PREFERRED_SCORERS:
            if name in scorers:
                try:
                    return ScorerCandidates(name, train, catalog)
                except Exception as exc:
                    warnings.warn(f"scorer {name} failed ({exc}); using {FALLBACK_NAME}", stacklevel=2)
                    break
        return CooccurrenceCandidates(train, catalog)
    return ScorerCandidates(kind, train, catalog)
