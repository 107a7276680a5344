"""Result-page diversity: MMR over item embeddings plus per-brand / per-category caps.

A page of five shades of the same lipstick answers the query but wastes the
shopper's attention. MMR (Carbonell & Goldstein 1998) trades relevance
against similarity to what is already on the page; caps are hard limits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.data.schema import Catalog
from retrieval.ranker import RankedItem


@dataclass
class DiversityConfig:
    """MMR trade-off and hard caps (None = no cap)."""

    lambda_: float = 0.7  # 1.0 = pure relevance order, 0.0 = pure novelty
    max_per_brand: int | None = None
    max_per_category: int | None = None
    category_depth: int | None = None  # compare category paths cut to this depth (None = full path)
    fill: bool = False  # relax caps (never MMR) when they would leave the page short of k

    def __post_init__(self) -> None:
        if not 0.0 <= self.lambda_ <= 1.0:
            raise ValueError(f"lambda_ must be in [0, 1], got {self.lambda_}")
        for name in ("max_per_brand", "max_per_category", "category_depth"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {v}")


def mmr_order(relevance: np.ndarray, vectors: np.ndarray, k: int, lambda_: float = 0.7) -> list[int]:
    """Indices chosen greedily by lambda * rel - (1 - lambda) * max cosine to the chosen ones.

    ``relevance`` is min-max rescaled first so lambda means the same at any score scale;
    ``vectors`` must be unit rows. Ties keep the input order.
    """
    n = len(relevance)
    if vectors.shape[0] != n:
        raise ValueError(f"{n} relevance scores but {vectors.shape[0]} vectors")
    k = min(k, n)
    if k <= 0:
        return []
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 1e-12 else np.zeros(n)
    sims = np.asarray(vectors, dtype=np.float64) @ np.asarray(vectors, dtype=np.float64).T
    chosen: list[int] = []
    max_sim = np.full(n, -np.inf)
    free = np.ones(n, dtype=bool)
    for _ in range(k):
        red = np.where(np.isfinite(max_sim), max_sim, 0.0)
        score = np.where(free, lambda_ * rel - (1 - lambda_) * red, -np.inf)
        j = int(np.argmax(score))  # first max = earliest in input order
        chosen.append(j)
        free[j] = False
        max_sim = np.maximum(max_sim, sims[j])
    return chosen


def diversify(
    ranked: Sequence[RankedItem],
    catalog: Catalog,
    k: int,
    config: DiversityConfig | None = None,
    item_vectors: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> list[RankedItem]:
    """Re-order ``ranked`` with MMR (when vectors are given and lambda < 1) under the caps."""
    cfg = config or DiversityConfig()
    items = list(ranked)
    if not items or k <= 0:
        return []
    if item_vectors is not None and cfg.lambda_ < 1.0:
        order = mmr_order(
            np.array([r.score for r in items]),
            item_vectors([r.item_id for r in items]),
            len(items),
            cfg.lambda_,
        )
        items = [items[j] for j in order]
    return apply_caps(items, catalog, k, cfg)


def _category(catalog: Catalog, item_id: str, depth: int | None) -> tuple[str, ...]:
    cats = catalog[item_id].categories
    return cats if depth is None else cats[:depth]


def apply_caps(
    items: Sequence[RankedItem], catalog: Catalog, k: int, config: DiversityConfig | None = None
) -> list[RankedItem]:
    """First ``k`` items in order that keep every brand / category under its cap."""
    cfg = config or DiversityConfig()
    brands: Counter[str] = Counter()
    cats: Counter[tuple[str, ...]] = Counter()
    out: list[RankedItem] = []
    skipped: list[RankedItem] = []
    for r in items:
        if len(out) == k:
            break
        brand = (catalog[r.item_id].brand or "").casefold()
        cat = _category(catalog, r.item_id, cfg.category_depth)
        over_brand = cfg.max_per_brand is not None and brand and brands[brand] >= cfg.max_per_brand
        over_cat = cfg.max_per_category is not None and cat and cats[cat] >= cfg.max_per_category
        if over_brand or over_cat:
            skipped.append(r)
            continue
        out.append(r)
        if brand:
            brands[brand] += 1
        if cat:
            cats[cat] += 1
    if cfg.fill and len(out) < k:
        out.extend(skipped[: k - len(out)])
    return out
