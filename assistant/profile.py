"""A readable, editable user profile: interest clusters over history embeddings + frequent associations.

Shoppers should see (and correct) what the assistant believes about them. The
clusters are k-means over the embeddings of the items in their history (each
labelled by its dominant category and example titles); the associations are
co-purchase rules over the whole log, anchored on items the user bought
("shoppers who buy X also buy Y", with support and confidence). Removing a
cluster or an item hides those items from every later recommendation input.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from retrieval.data.schema import Catalog

MAX_CLUSTERS = 5


@dataclass
class InterestCluster:
    cluster_id: int
    label: str
    item_ids: list[str]
    titles: list[str]
    share: float  # fraction of the (visible) history in this cluster
    centroid: list[float] = field(default_factory=list, repr=False)


@dataclass
class Association:
    """Rule ``antecedent -> consequent`` over the interaction log."""

    antecedent: str
    antecedent_title: str
    consequent: str
    consequent_title: str
    support: int  # baskets with both
    confidence: float  # support / baskets with the antecedent
    in_history: bool  # the user already has the consequent


@dataclass
class UserProfile:
    user_id: str
    history: list[str]  # visible history, oldest first
    clusters: list[InterestCluster]
    associations: list[Association]
    hidden_items: list[str] = field(default_factory=list)
    chat_events: int = 0

    def to_dict(self, with_centroids: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not with_centroids:
            for c in d["clusters"]:
                c.pop("centroid", None)
        return d

    def to_markdown(self) -> str:
        lines = [f"**Profile of {self.user_id}** ({len(self.history)} items in history)"]
        if self.clusters:
            lines.append("\nInterests:")
            for c in self.clusters:
                ex = "; ".join(c.titles[:3])
                lines.append(f"- [{c.cluster_id}] {c.label} ({c.share:.0%}): {ex}")
        if self.associations:
            lines.append("\nFrequent associations:")
            for a in self.associations:
                lines.append(
                    f"- {a.antecedent_title} → {a.consequent_title} "
                    f"(together {a.support}×, confidence {a.confidence:.0%})"
                )
        if self.hidden_items:
            lines.append(f"\nHidden by you: {len(self.hidden_items)} items")
        return "\n".join(lines)


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means (cosine) with k-means++ init; deterministic for a seed."""
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=int), np.zeros((0, x.shape[1] if x.ndim == 2 else 0))
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    centers = [x[rng.integers(n)]]
    for _ in range(1, k):
        d = np.min(1.0 - np.stack(centers) @ x.T, axis=0).clip(min=0)
        if d.sum() <= 1e-12:
            break
        centers.append(x[rng.choice(n, p=d / d.sum())])
    c = np.stack(centers)
    labels = np.zeros(n, dtype=int)
    for _ in range(iters):
        new = np.argmax(x @ c.T, axis=1)
        if _ > 0 and np.array_equal(new, labels):
            break
        labels = new
        for j in range(len(c)):
            members = x[labels == j]
            if len(members):
                v = members.mean(axis=0)
                c[j] = v / max(np.linalg.norm(v), 1e-12)
    return labels, c


def _n_clusters(n: int) -> int:
    # ~sqrt(n/2) clusters, at least 1, at most MAX_CLUSTERS: 1-3 items -> 1, 8 -> 2, 50 -> 5.
    return int(max(1, min(MAX_CLUSTERS, round((n / 2) ** 0.5))))


def build_profile(
    user_id: str,
    history: Sequence[str],
    catalog: Catalog,
    embed: Callable[[Sequence[str]], np.ndarray],
    co_bought: Callable[[str], Sequence[tuple[str, int]]],
    item_count: Callable[[str], int],
    hidden: Sequence[str] = (),
    chat_events: int = 0,
    seed: int = 0,
    max_associations: int = 8,
) -> UserProfile:
    """Compute the profile from a (chronological) history.

    ``embed(item_ids)`` returns unit vectors for the items; ``co_bought(item)``
    returns (other item, baskets with both) and ``item_count(item)`` the baskets
    with the item -- the co-occurrence statistics built with the index.
    """
    hidden_set = set(hidden)
    visible = [i for i in dict.fromkeys(history) if i in catalog and i not in hidden_set]
    clusters: list[InterestCluster] = []
    if visible:
        x = np.asarray(embed(visible), dtype=np.float32)
        labels, centers = kmeans(x, _n_clusters(len(visible)), seed=seed)
        order = sorted(range(len(centers)), key=lambda j: (-(labels == j).sum(), j))
        for new_id, j in enumerate(order):
            members = [visible[i] for i in np.flatnonzero(labels == j)]
            if not members:
                continue
            # Most typical first: closest to the centroid.
            sims = x[labels == j] @ centers[j]
            members = [m for _, m in sorted(zip(-sims, members, strict=True))]
            clusters.append(
                InterestCluster(
                    cluster_id=new_id,
                    label=_label(members, catalog),
                    item_ids=members,
                    titles=[catalog[m].title for m in members],
                    share=len(members) / len(visible),
                    centroid=[float(v) for v in centers[j]],
                )
            )
    assoc: list[Association] = []
    in_hist = set(visible)
    for a in visible:
        n_a = item_count(a)
        if n_a <= 0:
            continue
        for b, both in co_bought(a):
            if b == a or b in hidden_set or b not in catalog or both < 2:
                continue
            assoc.append(
                Association(a, catalog[a].title, b, catalog[b].title, int(both), both / n_a, b in in_hist)
            )
    assoc.sort(key=lambda r: (-r.confidence, -r.support, r.antecedent, r.consequent))
    seen: set[frozenset[str]] = set()
    top: list[Association] = []
    for r in assoc:
        key = frozenset((r.antecedent, r.consequent))
        if key not in seen:
            seen.add(key)
            top.append(r)
        if len(top) >= max_associations:
            break
    return UserProfile(
        user_id=user_id,
        history=visible,
        clusters=clusters,
        associations=top,
        hidden_items=sorted(hidden_set),
        chat_events=chat_events,
    )


def _label(members: Sequence[str], catalog: Catalog) -> str:
    """The most common deepest category among the members, else the most common brand."""
    cats = Counter(catalog[m].categories[-1] for m in members if catalog[m].categories)
    if cats:
        label, _ = cats.most_common(1)[0]
        brands = Counter(catalog[m].brand for m in members if catalog[m].brand)
        if brands and brands.most_common(1)[0][1] >= max(2, len(members) // 2 + 1):
            label = f"{label} ({brands.most_common(1)[0][0]})"
        return label
    brands = Counter(catalog[m].brand for m in members if catalog[m].brand)
    return brands.most_common(1)[0][0] if brands else catalog[members[0]].title
