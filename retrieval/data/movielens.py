"""MovieLens 100K as a product catalog, read from the files bundled with ``recbole``.

Nothing is downloaded or copied: the GroupLens files stay inside the installed
``recbole==1.2.1`` package. Movies are the products:

* title = ``"<title> (<year>)"``, its article put back in front ("Rock, The" -> "The Rock
  (1996)": cards, replies and the LLM read titles as people write them); the one entry whose title is the literal
  ``"unkonwn"`` (sic, id 267) gets the placeholder ``"Untitled movie 267"``;
* ``Item.categories`` is one root-first path, so a movie with several genres gets
  ``("Movies", <first listed genre>)``; *all* genres are kept in
  ``attributes["genres"]`` and written into the description, so lexical and
  semantic search find a movie by any of its genres;
* no prices (``price=None``; the UI says the catalog has none) and no brands;
* interactions are the 100,000 ratings with their unix timestamps, in file order;
  ``Item.rating`` is each movie's mean star rating over them (``rating_count`` beside it).
"""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from pathlib import Path

import pandas as pd

from retrieval.data._io import ErrorCollector, clean_str, package_data_file
from retrieval.data.schema import Catalog, Dataset, DataValidationError, Interactions, Item

PIP_COMMAND = "pip install --no-deps recbole==1.2.1"
FOLDER = "dataset_example/ml-100k"
UNKNOWN = {"unknown", "unkonwn", ""}
# "Rock, The", "Misérables, Les", "City of Lost Children, The (Cité des enfants perdus, La)": the
# file files titles by their first word after the article; an alternate title in brackets stays.
_INVERTED = re.compile(r"^(?P<head>.+?), (?P<article>The|A|An|Les|La|Le|Il|El|Das|Die|Der)(?P<alt>\s+\(.*\))?$")


def natural_title(title: str) -> str:
    """``title`` with an article filed after it put back in front: "Rock, The" -> "The Rock"."""
    m = _INVERTED.match(title)
    return f"{m['article']} {m['head']}{m['alt'] or ''}" if m else title


def movielens_files() -> tuple[Path, Path]:
    item = package_data_file("recbole", f"{FOLDER}/ml-100k.item", PIP_COMMAND)
    return item, item.with_name("ml-100k.inter")


def _read_atomic(path: Path) -> pd.DataFrame:
    """RecBole atomic file: TSV with typed headers like ``item_id:token``; strip the types."""
    try:
        frame = pd.read_csv(
            path, sep="\t", dtype=str, quoting=csv.QUOTE_NONE, keep_default_na=False, encoding="utf-8"
        )
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataValidationError(f"{path}: cannot parse RecBole atomic file ({exc})") from None
    frame.columns = [c.split(":", 1)[0] for c in frame.columns]
    return frame


def _movie(row: dict[str, str]) -> Item:
    item_id = row["item_id"].strip()
    raw_title = clean_str(row.get("movie_title"))
    year_text = (row.get("release_year") or "").strip()
    year = int(year_text) if year_text.isdigit() else None
    genres = [g for g in (row.get("class") or "").split() if g.lower() not in UNKNOWN]
    missing = raw_title is None or raw_title.lower() in UNKNOWN
    title = f"Untitled movie {item_id}" if missing else natural_title(raw_title)
    if year is not None:
        title = f"{title} ({year})"
    parts = []
    if year is not None:
        parts.append(f"Released {year}.")
    if genres:
        parts.append(f"Genres: {', '.join(genres)}.")
    attributes: dict[str, object] = {"genres": genres, "release_year": year}
    if missing:
        attributes["title_missing"] = True
    return Item(
        item_id=item_id,
        title=title,
        categories=("Movies", genres[0]) if genres else ("Movies",),
        price=None,
        description=" ".join(parts) or None,
        attributes=attributes,
    )


def load_movielens_100k() -> Dataset:
    """The default demo dataset: 1,682 movies, 943 users, 100,000 timestamped ratings."""
    item_path, inter_path = movielens_files()
    items_frame = _read_atomic(item_path)
    needed = {"item_id", "movie_title", "release_year", "class"}
    if not needed <= set(items_frame.columns):
        raise DataValidationError(
            f"{item_path}: missing columns {sorted(needed - set(items_frame.columns))}; got {list(items_frame.columns)}"
        )
    errors = ErrorCollector(item_path)
    items = []
    for lineno, row in enumerate(items_frame.to_dict("records"), start=2):
        try:
            items.append(_movie(row))
        except DataValidationError as exc:
            errors.add("invalid items", f"line {lineno}: {exc}")
    errors.raise_if_any()
    catalog = Catalog(items)

    inter = _read_atomic(inter_path)
    needed = {"user_id", "item_id", "rating", "timestamp"}
    if not needed <= set(inter.columns):
        raise DataValidationError(
            f"{inter_path}: missing columns {sorted(needed - set(inter.columns))}; got {list(inter.columns)}"
        )
    interactions = Interactions(inter[["user_id", "item_id", "timestamp", "rating"]], catalog)
    # Average star rating per movie, from the same ratings (a real number, shown on cards).
    stats = interactions.frame.groupby("item_id")["rating"].agg(["mean", "count"])
    catalog = Catalog(
        replace(
            it,
            rating=round(float(stats.at[it.item_id, "mean"]), 2) if it.item_id in stats.index else None,
            attributes={**it.attributes, "rating_count": int(stats["count"].get(it.item_id, 0))},
        )
        for it in catalog
    )
    return Dataset(
        name="movielens-100k",
        catalog=catalog,
        interactions=interactions,
        description=(
            f"MovieLens 100K (GroupLens; bundled with recbole): {len(catalog)} movies, "
            f"{len(interactions.users)} users, {len(interactions)} timestamped 1-5 star ratings. "
            "Category = Movies > first genre (all genres searchable). No prices or brands in this catalog."
        ),
        currency=None,
        source=str(item_path.parent),
    )
