"""A small, deterministic Beauty-like catalog + interaction log for the assistant tests.

60 products across 6 categories and 10 brands, prices from $4 to $60, short
reviews, and 48 shoppers whose baskets follow real co-purchase patterns
(cleanser -> moisturizer, shampoo -> conditioner, lipstick -> brush), so the
collaborative scorer, co-occurrence and explanations have signal to find.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from retrieval.data.schema import Catalog, Dataset, Interactions, Item

BRANDS = [
    "Olay",
    "Neutrogena",
    "CeraVe",
    "Cetaphil",
    "Aveeno",
    "Maybelline",
    "Revlon",
    "Dove",
    "Garnier",
    "Burt's Bees",
]

# category path, product nouns, adjectives, review phrases
CATEGORIES = [
    (
        ("Beauty", "Skin Care", "Face", "Moisturizers"),
        ["Moisturizer", "Face Cream", "Night Cream", "Hydrating Lotion"],
        ["Daily Hydrating", "Oil-Free", "Sensitive Skin", "Ultra Repair", "Fragrance-Free"],
        ["keeps my dry skin soft all day", "absorbs fast and is not greasy", "gentle on sensitive skin"],
    ),
    (
        ("Beauty", "Skin Care", "Face", "Cleansers"),
        ["Foaming Cleanser", "Gentle Face Wash", "Cleansing Gel"],
        ["Deep Pore", "Gentle", "Hydrating", "Acne Control"],
        ["removes makeup without drying", "leaves my face clean and fresh", "cleared up my acne"],
    ),
    (
        ("Beauty", "Hair Care", "Shampoo"),
        ["Shampoo", "Clarifying Shampoo"],
        ["Volumizing", "Moisture Rich", "Anti-Dandruff", "Color Safe"],
        ["my hair feels thicker", "stopped my dandruff", "smells great and lathers well"],
    ),
    (
        ("Beauty", "Hair Care", "Conditioner"),
        ["Conditioner", "Leave-In Conditioner"],
        ["Smoothing", "Moisture Rich", "Repair", "Color Safe"],
        ["detangles my curls", "hair is silky after one use", "not heavy on fine hair"],
    ),
    (
        ("Beauty", "Makeup", "Lips", "Lipstick"),
        ["Matte Lipstick", "Lip Color", "Lip Balm"],
        ["Long Wear", "Velvet", "Classic Red", "Nude"],
        ["lasts through lunch", "beautiful color and not drying", "moisturizing on the lips"],
    ),
    (
        ("Beauty", "Makeup", "Eyes", "Mascara"),
        ["Mascara", "Waterproof Mascara"],
        ["Volume Boost", "Lengthening", "Curl Lift", "Lash Sensational"],
        ["no clumps and lasts all day", "my lashes look longer", "waterproof as promised"],
    ),
]


def make_catalog(seed: int = 0, images: Mapping[str, str] | None = None) -> Catalog:
    """``images``: ``{item_id: URL or path}`` for the items that have a picture (default none)."""
    images = images or {}
    rng = random.Random(seed)
    items: list[Item] = []
    for c, (path, nouns, adjs, phrases) in enumerate(CATEGORIES):
        for k in range(10):
            brand = BRANDS[(c * 3 + k) % len(BRANDS)]
            title = f"{brand} {adjs[k % len(adjs)]} {nouns[k % len(nouns)]} {rng.choice([1.7, 3.4, 6.8, 8, 12])} oz"
            price = round(rng.uniform(4, 60), 2)
            reviews = tuple(rng.sample(phrases, 2))
            items.append(
                Item(
                    item_id=f"B{c}{k:02d}",
                    title=title,
                    brand=brand,
                    categories=path,
                    price=price,
                    description=f"{adjs[k % len(adjs)]} {nouns[k % len(nouns)].lower()} by {brand}.",
                    reviews=reviews,
                    rating=round(rng.uniform(3.0, 5.0), 1),
                    in_stock=k != 9,
                    image=images.get(f"B{c}{k:02d}"),
                )
            )
    return Catalog(items)


def make_dataset(seed: int = 0, n_users: int = 48, images: Mapping[str, str] | None = None) -> Dataset:
    catalog = make_catalog(seed, images)
    rng = random.Random(seed + 1)
    by_cat = [[f"B{c}{k:02d}" for k in range(10)] for c in range(len(CATEGORIES))]
    pairs = [(1, 0), (2, 3), (4, 5)]  # cleanser->moisturizer, shampoo->conditioner, lipstick->mascara
    rows = []
    t = 1_600_000_000
    for u in range(n_users):
        a, b = pairs[u % len(pairs)]
        k = rng.randrange(10)
        basket = [by_cat[a][k], by_cat[b][k], by_cat[b][(k + 1) % 10]]
        basket += rng.sample(by_cat[rng.randrange(len(CATEGORIES))], 2)
        for item in dict.fromkeys(basket):
            t += rng.randrange(1, 5000)
            rows.append({"user_id": f"u{u:02d}", "item_id": item, "timestamp": t, "rating": 5.0})
    return Dataset(
        name="beauty-fixture",
        catalog=catalog,
        interactions=Interactions.from_records(rows, catalog),
        description="Synthetic Beauty-like fixture for the assistant tests",
        source="tests/assistant_catalog.py",
    )
