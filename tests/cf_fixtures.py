"""Synthetic checkerboard interactions for the scorer contract tests.

Two disjoint user groups, each buying only from its own item group: in random
order (``cyclic=False``, the contract tests) or walking a fixed cycle through
the group (``cyclic=True``: a pure next-item signal for sequential models).
Deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retrieval.data.schema import Catalog, Interactions, Item


@dataclass
class Checkerboard:
    catalog: Catalog
    interactions: Interactions
    groups: dict[str, list[str]]  # "A"/"B" -> item ids
    users: dict[str, list[str]]  # "A"/"B" -> user ids


def checkerboard(
    users_per_group: int = 30,
    items_per_group: int = 12,
    length: int = 6,
    seed: int = 0,
    cyclic: bool = False,
) -> Checkerboard:
    rng = np.random.default_rng(seed)
    groups = {g: [f"{g}{k}" for k in range(items_per_group)] for g in "AB"}
    catalog = Catalog(
        Item(item_id=i, title=f"Product {i}", categories=("Shop", f"Group {g}"))
        for g in "AB"
        for i in groups[g]
    )
    rows, users = [], {"A": [], "B": []}
    t = 0
    for g in "AB":
        for u in range(users_per_group):
            uid = f"{g.lower()}user{u}"
            users[g].append(uid)
            start = int(rng.integers(items_per_group))
            order = [(start + step) % items_per_group for step in range(length)]
            if not cyclic:
                order = rng.choice(items_per_group, length, replace=False).tolist()
            for k in order:
                rows.append({"user_id": uid, "item_id": groups[g][k], "timestamp": t})
                t += 1
    return Checkerboard(catalog, Interactions.from_records(rows), groups, users)
