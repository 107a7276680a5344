"""Complements ("bought together") and budget-constrained bundles.

The co-occurrence graph counts how many users interacted with both items
(optionally only within ``window`` steps of each other), drops pairs below
``min_support`` and normalises by lift (co-count x users / (n_i n_j): how much
more often than chance) or cosine (co-count / sqrt(n_i n_j)), so bestsellers do
not dominate every item's neighbourhood.

``assemble_bundle`` runs a small beam search: each step adds one item from a
new category whose price fits the remaining budget, maximising relevance to
the need plus co-occurrence with the items already in the bundle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp

from retrieval.data.schema import Catalog, Interactions, Item
from retrieval.filters import Constraints, FilterIndex

if TYPE_CHECKING:
    from retrieval.hybrid import HybridRetriever


@dataclass
class CooccurrenceConfig:
    """How the item-item graph is counted and normalised."""

    normalization: Literal["lift", "cosine", "count"] = "lift"
    min_support: int = 2  # pairs seen for fewer users than this are treated as noise
    window: int | None = None  # None: anywhere in the same history; n: within n steps

    def __post_init__(self) -> None:
        if self.normalization not in ("lift", "cosine", "count"):
            raise ValueError(f"normalization must be lift|cosine|count, got {self.normalization!r}")
        if self.min_support < 1:
            raise ValueError(f"min_support must be >= 1, got {self.min_support}")
        if self.window is not None and self.window < 1:
            raise ValueError(f"window must be >= 1 or None, got {self.window}")


@dataclass
class Complement:
    item_id: str
    score: float  # summed normalised co-occurrence with the basket
    support: int  # users who had it together with ``because_of``
    because_of: str  # the basket item contributing most


class CooccurrenceGraph:
    """Sparse item x item co-occurrence, in catalog row order."""

    def __init__(self, config: CooccurrenceConfig | None = None):
        self.config = config or CooccurrenceConfig()
        self.catalog: Catalog | None = None
        self.counts: sp.csr_matrix | None = None  # raw co-counts (after min_support)
        self.weights: sp.csr_matrix | None = None  # normalised
        self._filters: FilterIndex | None = None

    def fit(self, interactions: Interactions, catalog: Catalog) -> CooccurrenceGraph:
        n = len(catalog)
        seqs = [[catalog.index_of(i) for i in s if i in catalog] for s in interactions.sequences().values()]
        seqs = [s for s in seqs if s]
        n_users = len(seqs)
        rows, cols = [], []
        if self.config.window is None:
            for u, s in enumerate(seqs):
                uniq = sorted(set(s))
                rows.extend([u] * len(uniq))
                cols.extend(uniq)
            x = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n))
            counts = (x.T @ x).tocsr()
            occ = np.asarray(x.sum(axis=0)).ravel()
        else:
            pairs: set[tuple[int, int, int]] = set()
            for u, s in enumerate(seqs):
                for t, a in enumerate(s):
                    for b in s[t + 1 : t + 1 + self.config.window]:
                        if a != b:
                            pairs.add((u, min(a, b), max(a, b)))
            arr = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 3)
            upper = sp.csr_matrix((np.ones(len(arr)), (arr[:, 1], arr[:, 2])), shape=(n, n))
            counts = (upper + upper.T).tocsr()
            occ = np.zeros(n)
            for s in seqs:
                occ[list(set(s))] += 1
        counts.setdiag(0)
        counts.data[counts.data < self.config.min_support] = 0
        counts.eliminate_zeros()
        counts.sort_indices()
        weights = counts.astype(np.float64).tocoo()
        ni, nj = occ[weights.row], occ[weights.col]
        if self.config.normalization == "lift":
            weights.data = weights.data * n_users / (ni * nj)
        elif self.config.normalization == "cosine":
            weights.data = weights.data / np.sqrt(ni * nj)
        self.catalog, self.counts, self.weights = catalog, counts, weights.tocsr()
        self.occurrences = occ
        self._filters = FilterIndex(catalog)
        return self

    def _check(self) -> tuple[Catalog, sp.csr_matrix, sp.csr_matrix]:
        if self.catalog is None or self.counts is None or self.weights is None:
            raise RuntimeError("CooccurrenceGraph is not fitted; call fit(interactions, catalog)")
        return self.catalog, self.counts, self.weights

    def score(self, a: str, b: str) -> float:
        catalog, _, w = self._check()
        if a not in catalog or b not in catalog:
            return 0.0
        return float(w[catalog.index_of(a), catalog.index_of(b)])

    def support(self, a: str, b: str) -> int:
        catalog, c, _ = self._check()
        if a not in catalog or b not in catalog:
            return 0
        return int(c[catalog.index_of(a), catalog.index_of(b)])

    def complements(
        self,
        basket_item_ids: Sequence[str],
        n: int = 10,
        constraints: Constraints | None = None,
        exclude_same_category: bool = False,
    ) -> list[Complement]:
        """Items most often bought with the basket, outside the basket, passing ``constraints``.

        ``exclude_same_category`` drops items sharing a basket item's full category
        path (substitutes rather than complements).
        """
        catalog, counts, w = self._check()
        rows = [catalog.index_of(i) for i in dict.fromkeys(basket_item_ids) if i in catalog]
        if not rows or n <= 0:
            return []
        sub = w[rows].toarray()  # (basket, n_items)
        total = sub.sum(axis=0)
        allowed = total > 0
        allowed[rows] = False
        if constraints is not None:
            assert self._filters is not None
            allowed &= self._filters.mask(constraints)
        if exclude_same_category:
            basket_cats = {catalog.at(r).categories for r in rows}
            allowed &= np.array([it.categories not in basket_cats for it in catalog])
        cand = np.flatnonzero(allowed)
        cand = cand[np.lexsort((cand, -total[cand]))][:n]
        out = []
        for j in cand:
            best = int(np.argmax(sub[:, j]))
            out.append(
                Complement(
                    catalog.at(int(j)).item_id,
                    float(total[j]),
                    int(counts[rows[best], j]),
                    catalog.at(rows[best]).item_id,
                )
            )
        return out

    def save(self, path: str | Path) -> None:
        catalog, counts, w = self._check()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        sp.save_npz(path / "counts.npz", counts)
        sp.save_npz(path / "weights.npz", w)
        np.save(path / "occurrences.npy", self.occurrences)
        (path / "item_ids.txt").write_text("\n".join(catalog.ids))

    @classmethod
    def load(
        cls, path: str | Path, catalog: Catalog, config: CooccurrenceConfig | None = None
    ) -> CooccurrenceGraph:
        path = Path(path)
        if (path / "item_ids.txt").read_text().split("\n") != catalog.ids:
            raise ValueError(f"co-occurrence graph at {path} was built for a different catalog; refit it")
        g = cls(config)
        g.catalog = catalog
        g.counts = sp.load_npz(path / "counts.npz").tocsr()
        g.weights = sp.load_npz(path / "weights.npz").tocsr()
        g.occurrences = np.load(path / "occurrences.npy")
        g._filters = FilterIndex(catalog)
        return g


# --- bundles ------------------------------------------------------------------------------------
@dataclass
class BundleItem:
    item_id: str
    title: str
    price: float
    category: tuple[str, ...]
    reason: str
    relevance: float = 0.0
    cooccurrence: float = 0.0


@dataclass
class Bundle:
    """A set of items from distinct categories whose total price fits the budget."""

    need: str
    budget: float
    items: list[BundleItem] = field(default_factory=list)
    total_price: float = 0.0
    covered_categories: list[tuple[str, ...]] = field(default_factory=list)
    score: float = 0.0
    note: str = ""  # why the bundle is smaller than asked, if it is

    @property
    def remaining(self) -> float:
        return self.budget - self.total_price

    @property
    def item_ids(self) -> list[str]:
        return [b.item_id for b in self.items]


_SPLIT_RE = re.compile(r"\s*(?:,|;|\+|&|\band\b|\bplus\b|和|、|，|以及|还有)\s*", re.IGNORECASE)


def split_needs(need: str) -> list[str]:
    """ "shampoo, conditioner and a brush" -> ["shampoo", "conditioner", "a brush"]."""
    return [p for p in (s.strip() for s in _SPLIT_RE.split(need)) if p]


@dataclass
class _Pool:
    items: list[Item]
    relevance: np.ndarray  # [0, 1]
    matched: list[str]  # the need part (or seed) each item was retrieved for


def _category(item: Item, depth: int | None) -> tuple[str, ...]:
    return item.categories if depth is None else item.categories[:depth]


def assemble_bundle(
    seed_or_need: str,
    budget: float,
    catalog: Catalog,
    *,
    retriever: HybridRetriever | None = None,
    graph: CooccurrenceGraph | None = None,
    constraints: Constraints | None = None,
    max_items: int = 4,
    min_items: int = 2,
    beam_width: int = 4,
    pool_size: int = 40,
    relevance_weight: float = 1.0,
    cooccurrence_weight: float = 1.0,
    coverage_weight: float = 0.3,
    category_depth: int | None = None,
) -> Bundle:
    """Best bundle found by beam search (``beam_width=1`` is greedy) under a total-price budget.

    ``seed_or_need`` is a catalog item id (the bundle is built around it, from
    its co-occurrence neighbours) or a free-text need, searched per part
    ("shampoo and conditioner" searches both). Items without a price are never
    used. Every item comes from a distinct category (cut to ``category_depth``).
    """
    base = _budget_constraints(budget, constraints, min_items, max_items)
    seed: Item | None = catalog.get(seed_or_need)
    bundle = Bundle(need=seed_or_need, budget=float(budget))
    if seed is not None and (seed.price is None or seed.price > budget):
        bundle.note = f"the seed item {seed.item_id!r} has no price or is over the budget"
        return bundle
    pool = _priced_pool(seed, seed_or_need, retriever, graph, base, pool_size)
    if not pool.items:
        bundle.note = "no priced item matches the need within the budget and constraints"
        return bundle
    cooc = _cooccurrence(pool.items, graph)
    prices = np.array([float(it.price) for it in pool.items])  # type: ignore[arg-type]
    cats = [_category(it, category_depth) for it in pool.items]

    def gain(state: tuple[int, ...], j: int) -> float:
        co = float(cooc[j, list(state)].mean()) if state else 0.0
        return relevance_weight * pool.relevance[j] + cooccurrence_weight * co + coverage_weight

    start: tuple[int, ...] = (0,) if seed is not None else ()
    first = (gain((), 0) if seed is not None else 0.0, start)
    score, chosen = _beam_search(first, gain, prices, cats, budget, max_items, min_items, beam_width)
    for j in chosen:
        bundle.items.append(_bundle_item(j, chosen, pool, cooc, prices[j], cats[j], seed is not None, graph))
    bundle.total_price = float(round(sum(b.price for b in bundle.items), 2))
    bundle.covered_categories = [b.category for b in bundle.items]
    bundle.score = float(score)
    if len(bundle.items) < min_items:
        bundle.note = f"only {len(bundle.items)} item(s) from distinct categories fit a budget of {budget:g}"
    return bundle


def _budget_constraints(
    budget: float, constraints: Constraints | None, min_items: int, max_items: int
) -> Constraints:
    """The caller's constraints with the budget as price cap (any single item must fit it; the
    cap also drops unpriced items); invalid arguments raise."""
    if not isinstance(budget, int | float) or not np.isfinite(budget) or budget <= 0:
        raise ValueError(f"budget must be a positive number, got {budget!r}")
    if max_items < 1 or min_items < 1 or min_items > max_items:
        raise ValueError(f"need 1 <= min_items <= max_items, got {min_items}, {max_items}")
    base = constraints or Constraints()
    base = base.merged(
        price_max=float(budget) if base.price_max is None else min(float(budget), base.price_max)
    )
    if base.price_min is not None and base.price_min > base.price_max:
        raise ValueError(f"price_min {base.price_min} is above the budget {budget}")
    return base


def _priced_pool(
    seed: Item | None,
    need: str,
    retriever: HybridRetriever | None,
    graph: CooccurrenceGraph | None,
    base: Constraints,
    pool_size: int,
) -> _Pool:
    """Priced candidates for the bundle; a seed item sits at index 0 (always chosen)."""
    if seed is not None:
        pool = _seed_pool(seed, graph, base, pool_size)
    else:
        pool = _need_pool(need, retriever, base, pool_size)
    keep = [
        j
        for j, it in enumerate(pool.items)
        if it.price is not None and (seed is None or it.item_id != seed.item_id)
    ]
    items = [pool.items[j] for j in keep]
    rel = pool.relevance[keep]
    matched = [pool.matched[j] for j in keep]
    if seed is not None:
        items, rel, matched = [seed, *items], np.concatenate([[1.0], rel]), [seed.item_id, *matched]
    return _Pool(items, rel, matched)


def _cooccurrence(items: list[Item], graph: CooccurrenceGraph | None) -> np.ndarray:
    """Pairwise co-occurrence scores of ``items``, scaled to a maximum of 1 (zeros without a graph)."""
    cooc = np.zeros((len(items), len(items)))
    if graph is not None:
        for a in range(len(items)):
            for b in range(a + 1, len(items)):
                cooc[a, b] = cooc[b, a] = graph.score(items[a].item_id, items[b].item_id)
        if cooc.max() > 0:
            cooc = cooc / cooc.max()
    return cooc


def _beam_search(
    first: tuple[float, tuple[int, ...]],
    gain: Callable[[tuple[int, ...], int], float],
    prices: np.ndarray,
    cats: list[tuple[str, ...]],
    budget: float,
    max_items: int,
    min_items: int,
    beam_width: int,
) -> tuple[float, tuple[int, ...]]:
    """(score, chosen indices): bundles reaching ``min_items`` beat smaller ones, then higher score."""
    beams = [first]
    best = first
    for _ in range(max_items - len(first[1])):
        expanded: dict[frozenset[int], tuple[float, tuple[int, ...]]] = {}
        for score, state in beams:
            spent = float(prices[list(state)].sum()) if state else 0.0
            used = {cats[i] for i in state}
            for j in range(len(prices)):
                if j in state or cats[j] in used or spent + prices[j] > budget + 1e-9:
                    continue
                new = (*state, j)
                s = score + gain(state, j)
                key = frozenset(new)
                if key not in expanded or s > expanded[key][0]:
                    expanded[key] = (s, new)
        if not expanded:
            break
        beams = sorted(expanded.values(), key=lambda t: (-t[0], t[1]))[:beam_width]
        for cand in beams:
            if (len(cand[1]) >= min_items) > (len(best[1]) >= min_items) or (
                (len(cand[1]) >= min_items) == (len(best[1]) >= min_items) and cand[0] > best[0]
            ):
                best = cand
    return best


def _bundle_item(
    j: int,
    chosen: tuple[int, ...],
    pool: _Pool,
    cooc: np.ndarray,
    price: float,
    category: tuple[str, ...],
    seeded: bool,
    graph: CooccurrenceGraph | None,
) -> BundleItem:
    """Item ``j`` of the chosen bundle with the reason it is in it."""
    it = pool.items[j]
    others = [i for i in chosen if i != j]
    partner = max(others, key=lambda i: cooc[j, i]) if others else None
    co = float(cooc[j, others].mean()) if others else 0.0
    if seeded and j == 0:
        reason = "the item you started from"
    elif partner is not None and graph is not None and cooc[j, partner] > 0 and co >= pool.relevance[j]:
        lift = graph.score(it.item_id, pool.items[partner].item_id)
        reason = f"often bought with {pool.items[partner].title!r} ({graph.config.normalization} {lift:.2f})"
    else:
        reason = f"matches {pool.matched[j]!r}"
    return BundleItem(it.item_id, it.title, float(price), category, reason, float(pool.relevance[j]), co)


def _seed_pool(seed: Item, graph: CooccurrenceGraph | None, constraints: Constraints, n: int) -> _Pool:
    if graph is None:
        raise ValueError("building a bundle around an item needs a fitted CooccurrenceGraph (graph=...)")
    comps = graph.complements([seed.item_id], n, constraints)
    assert graph.catalog is not None
    items = [graph.catalog[c.item_id] for c in comps]
    scores = np.array([c.score for c in comps], dtype=np.float64)
    rel = scores / scores.max() if scores.size and scores.max() > 0 else np.zeros(len(items))
    return _Pool(items, rel, [f"bought with {seed.title!r}"] * len(items))


def _need_pool(need: str, retriever: HybridRetriever | None, constraints: Constraints, n: int) -> _Pool:
    if retriever is None:
        raise ValueError(f"{need!r} is not an item id; a free-text need requires retriever=HybridRetriever")
    parts = split_needs(need) or [need]
    per_part = max(5, n // len(parts))
    items: dict[str, Item] = {}
    rel: dict[str, float] = {}
    matched: dict[str, str] = {}
    for part in parts:
        cands = retriever.search(part, constraints, k=per_part)
        if not cands:
            continue
        top = max(c.relevance for c in cands) or 1.0
        for c in cands:
            r = c.relevance / top
            if r > rel.get(c.item_id, -1.0):
                items[c.item_id] = retriever.catalog[c.item_id]
                rel[c.item_id], matched[c.item_id] = r, part
    ids = list(items)
    return _Pool([items[i] for i in ids], np.array([rel[i] for i in ids]), [matched[i] for i in ids])
