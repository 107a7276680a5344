"""A small synthetic shop in the shared JSONL format, for tests and smoke runs of the pipeline.

It goes through the real loader (``load_dataset(folder)``), has ASIN-like ids (so the
leakage check can search for them literally) and baskets that follow category
co-purchase patterns, so a retriever and a ranker have some signal to find.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

_CATS = (
    ("Beauty", "Skin Care", "Face", "Moisturizers"),
    ("Beauty", "Skin Care", "Face", "Cleansers"),
    ("Beauty", "Hair Care", "Shampoos"),
    ("Beauty", "Hair Care", "Conditioners"),
    ("Beauty", "Makeup", "Lips", "Lipstick"),
    ("Beauty", "Makeup", "Eyes", "Mascara"),
    ("Beauty", "Makeup", "Nails", "Nail Polish"),
    ("Beauty", "Fragrance", "Perfume"),
)
_NOUNS = ("Cream", "Wash", "Shampoo", "Conditioner", "Lipstick", "Mascara", "Polish", "Eau de Parfum")
_ADJ = (
    "Hydrating",
    "Gentle",
    "Volume",
    "Repair",
    "Matte",
    "Silky",
    "Fresh",
    "Ultra",
    "Daily",
    "Velvet",
    "Classic",
)
_BRANDS = ("Olay", "Neutrogena", "CeraVe", "Maybelline", "Revlon", "Dove", "Garnier", "Essie", "OPI", "Nivea")
# Category k is usually followed by category _NEXT[k] (cleanser -> moisturizer, shampoo -> conditioner ...).
_NEXT = (1, 0, 3, 2, 5, 4, 4, 0)


def write_toy_dataset(folder: str | Path, n_items: int = 120, n_users: int = 150, seed: int = 0) -> Path:
    """Write ``items.jsonl.gz`` + ``sequences.jsonl.gz`` into ``folder``; returns the folder."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    by_cat: dict[int, list[int]] = {}
    for k in range(n_items):
        c = k % len(_CATS)
        brand = _BRANDS[int(rng.integers(len(_BRANDS)))]
        title = f"{brand} {_ADJ[int(rng.integers(len(_ADJ)))]} {_NOUNS[c]} No. {k + 1}"
        price = round(float(rng.uniform(3, 80)), 2)
        items.append(
            {
                "item_id": f"B0TOY{k:05d}",
                "title": title,
                "brand": brand if rng.random() > 0.1 else None,
                "price": price if rng.random() > 0.05 else None,
                "categories": list(_CATS[c]),
            }
        )
        by_cat.setdefault(c, []).append(k)
    seqs = []
    for u in range(n_users):
        length = int(rng.integers(4, 9))
        c = int(rng.integers(len(_CATS)))
        seq: list[int] = []
        for _ in range(length):
            pool = [k for k in by_cat[c] if k not in seq]
            seq.append(int(pool[int(rng.integers(len(pool)))]))
            c = _NEXT[c] if rng.random() < 0.7 else int(rng.integers(len(_CATS)))
        t0 = 1_300_000_000 + int(rng.integers(0, 10**7))
        seqs.append(
            {
                "user_id": f"U{u:04d}",
                "item_ids": [items[k]["item_id"] for k in seq],
                "timestamps": [t0 + 86400 * j for j in range(len(seq))],
            }
        )
    with gzip.open(folder / "items.jsonl.gz", "wt", encoding="utf-8") as f:
        for rec in items:
            f.write(json.dumps(rec) + "\n")
    with gzip.open(folder / "sequences.jsonl.gz", "wt", encoding="utf-8") as f:
        for rec in seqs:
            f.write(json.dumps(rec) + "\n")
    return folder
