"""``fetch_dataset``: download a public Amazon review dump and convert it into a catalog folder.

For users who are online; nothing else in the project touches the network for data. Two steps:

1. Download the category's review and metadata files (``SOURCES``) into a cache folder, streamed
   to ``<name>.part`` with a progress bar. A ``.part`` left by an interrupted run is resumed with
   an HTTP ``Range`` request (a server that ignores it and answers 200 restarts the file); the
   size is checked against the server's ``Content-Length`` / ``Content-Range``, the gzip stream is
   read through, and where a sha256 is known (``FetchConfig.sha256``, or a ``<file>.sha256`` the
   server publishes beside it) it is compared. Only then is the ``.part`` renamed to its final
   name: a failed or corrupt download never sits under the final name. Connection errors and
   5xx answers are retried with exponential backoff.
2. Load the pair with the existing loaders (``retrieval.data.amazon``), optionally keep the
   k-core (users and items with at least k interactions, iterated to a fixed point), and write
   the tables format (``items.jsonl.gz`` + ``interactions.jsonl.gz``, see
   ``retrieval.data.tables``) into ``FetchConfig.out`` atomically, which ``load_dataset(out)``
   reads back with prices, brands, categories, review texts, ratings and timestamps.

The data's licence and terms of use are the user's to respect (see each source's homepage).
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import http.client
import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from retrieval.data.amazon import load_amazon_2014, load_amazon_2023
from retrieval.data.schema import Catalog, Dataset, Interactions
from retrieval.files import atomic_dir, commit_file, default_cache_dir

__all__ = ["SOURCES", "FetchConfig", "FetchError", "FetchResult", "Source", "fetch_dataset"]

CHUNK = 1 << 20
USER_AGENT = "shopping-assistant-data-fetch/1"


class FetchError(RuntimeError):
    """A download or conversion failed; the message says which URL or file, and why."""


@dataclass(frozen=True)
class Source:
    """One public release: where its files are and which categories it has.

    ``reviews`` / ``meta`` are paths below ``base_url`` with ``{category}`` in them; the file
    name (last path part) is also the name the loader in ``retrieval.data.amazon`` recognises.
    """

    name: str
    base_url: str
    reviews: str
    meta: str
    categories: tuple[str, ...]
    loader: Callable[..., Dataset]
    homepage: str

    def paths(self, category: str) -> tuple[str, str]:
        """``(reviews, meta)`` paths below the base URL for ``category``."""
        return self.reviews.format(category=category), self.meta.format(category=category)


# Layouts checked on 2026-12-06 with the docs/pages search: the McAuley lab's Hugging Face mirror
# of Amazon Reviews 2023 (McAuley-Lab/Amazon-Reviews-2023, README configs and raw/ tree) has
# raw/review_categories/<Category>.jsonl and raw/meta_categories/meta_<Category>.jsonl, the same
# layout as the lab's own host below, which serves them gzip'ed (.jsonl.gz) as linked from
# amazon-reviews-2023.github.io. The 2014 per-category files (reviews_<Category>_5.json.gz, the
# 5-core reviews, and meta_<Category>.json.gz) are the names the 2014 release page lists; the
# SNAP mirror's categoryFiles/ folder could not be confirmed from here (no internet), so
# --base-url points either source at another mirror holding the same file names.
SOURCES: dict[str, Source] = {
    "amazon-2023": Source(
        name="amazon-2023",
        base_url="https://mcauleylab.ucsd.edu/public_datasets/data/amazon_2023/raw/",
        reviews="review_categories/{category}.jsonl.gz",
        meta="meta_categories/meta_{category}.jsonl.gz",
        categories=(
            "All_Beauty",
            "Amazon_Fashion",
            "Appliances",
            "Arts_Crafts_and_Sewing",
            "Automotive",
            "Baby_Products",
            "Beauty_and_Personal_Care",
            "Books",
            "CDs_and_Vinyl",
            "Cell_Phones_and_Accessories",
            "Clothing_Shoes_and_Jewelry",
            "Digital_Music",
            "Electronics",
            "Gift_Cards",
            "Grocery_and_Gourmet_Food",
            "Handmade_Products",
            "Health_and_Household",
            "Health_and_Personal_Care",
            "Home_and_Kitchen",
            "Industrial_and_Scientific",
            "Kindle_Store",
            "Magazine_Subscriptions",
            "Movies_and_TV",
            "Musical_Instruments",
            "Office_Products",
            "Patio_Lawn_and_Garden",
            "Pet_Supplies",
            "Software",
            "Sports_and_Outdoors",
            "Subscription_Boxes",
            "Tools_and_Home_Improvement",
            "Toys_and_Games",
            "Video_Games",
        ),
        loader=load_amazon_2023,
        homepage="https://amazon-reviews-2023.github.io/",
    ),
    "amazon-2014": Source(
        name="amazon-2014",
        base_url="https://snap.stanford.edu/data/amazon/productGraph/categoryFiles/",
        reviews="reviews_{category}_5.json.gz",
        meta="meta_{category}.json.gz",
        categories=(
            "Books",
            "Electronics",
            "Movies_and_TV",
            "CDs_and_Vinyl",
            "Clothing_Shoes_and_Jewelry",
            "Home_and_Kitchen",
            "Kindle_Store",
            "Sports_and_Outdoors",
            "Cell_Phones_and_Accessories",
            "Health_and_Personal_Care",
            "Toys_and_Games",
            "Video_Games",
            "Tools_and_Home_Improvement",
            "Beauty",
            "Apps_for_Android",
            "Office_Products",
            "Pet_Supplies",
            "Automotive",
            "Grocery_and_Gourmet_Food",
            "Patio_Lawn_and_Garden",
            "Baby",
            "Digital_Music",
            "Musical_Instruments",
            "Amazon_Instant_Video",
        ),
        loader=load_amazon_2014,
        homepage="https://jmcauley.ucsd.edu/data/amazon/",
    ),
}


@dataclass(frozen=True)
class FetchConfig:
    """What to fetch and how. Validated on construction (a typo fails before any download).

    ``out``: the catalog folder to write (default: ``<cache>/datasets/<source>-<category>``);
    ``download_dir``: where the raw dumps are kept (default ``<cache>/downloads/<source>``; a
    finished file there is reused, a ``.part`` resumed); ``base_url``: another host/mirror with
    the same layout; ``k_core``: keep users and items with at least this many interactions
    (0 = keep all); ``max_reviews``: review texts kept per item; ``sha256``: expected checksums by
    file name; ``retries`` / ``backoff_s``: attempts after a connection error and the first wait
    (doubling); ``force``: download again even when a finished file is in ``download_dir``.
    """

    source: str
    category: str
    out: Path | None = None
    download_dir: Path | None = None
    base_url: str | None = None
    k_core: int = 0
    max_reviews: int = 20
    sha256: Mapping[str, str] = field(default_factory=dict, hash=False)
    retries: int = 4
    backoff_s: float = 1.0
    timeout_s: float = 60.0
    progress: bool = True
    force: bool = False

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}; known: {', '.join(SOURCES)}")
        known = SOURCES[self.source].categories
        if self.category not in known:
            by_case = {c.lower(): c for c in known}
            close = difflib.get_close_matches(self.category, known, n=4, cutoff=0.5)
            if self.category.lower() in by_case:
                close = [by_case[self.category.lower()]]
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"unknown {self.source} category {self.category!r}.{hint} "
                f"Categories: {', '.join(sorted(known))}"
            )
        for name in ("k_core", "max_reviews", "retries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        for name in ("backoff_s", "timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.timeout_s == 0:
            raise ValueError("timeout_s must be > 0")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        for name, digest in self.sha256.items():
            if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
                raise ValueError(f"sha256 for {name!r} must be 64 hex digits, got {digest!r}")
        for name in ("out", "download_dir"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)).expanduser())

    @property
    def urls(self) -> tuple[str, str]:
        """``(reviews_url, meta_url)``."""
        src = SOURCES[self.source]
        base = (self.base_url or src.base_url).rstrip("/") + "/"
        return tuple(base + p for p in src.paths(self.category))  # type: ignore[return-value]

    @property
    def out_dir(self) -> Path:
        return self.out or default_cache_dir() / "datasets" / f"{self.source}-{self.category}"

    @property
    def downloads(self) -> Path:
        return self.download_dir or default_cache_dir() / "downloads" / self.source


@dataclass(frozen=True)
class FetchResult:
    """Where the catalog was written and what it holds."""

    out: Path
    files: tuple[Path, ...]
    items: int
    users: int
    interactions: int
    priced_share: float

    def summary(self) -> str:
        return (
            f"{self.out}: {self.items:,} items ({self.priced_share:.0%} priced), "
            f"{self.users:,} users, {self.interactions:,} interactions"
        )


def fetch_dataset(config: FetchConfig, *, log: Callable[[str], None] = print) -> FetchResult:
    """Download ``config``'s files (resuming, verifying) and write the catalog folder."""
    folder = config.downloads
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for url in config.urls:
        dest = folder / url.rsplit("/", 1)[-1]
        if dest.is_file() and not config.force:
            log(f"using the downloaded {dest}")
        else:
            _download(url, dest, config, log)
        files.append(dest)
    dataset = _convert(folder, config)
    out = _write(dataset, config)
    n = len(dataset.catalog)
    priced = sum(1 for it in dataset.catalog if it.price is not None)
    return FetchResult(
        out=out,
        files=tuple(files),
        items=n,
        users=len(dataset.interactions.users),
        interactions=len(dataset.interactions),
        priced_share=priced / n if n else 0.0,
    )


# ----------------------------------------------------------------------------- download


class _Retry(Exception):
    """A transient failure: the attempt may be repeated (resuming from the ``.part``)."""


def _download(url: str, dest: Path, config: FetchConfig, log: Callable[[str], None]) -> None:
    part = dest.with_name(dest.name + ".part")
    if config.force:
        part.unlink(missing_ok=True)
    expected = _expected_sha256(url, dest.name, config)
    last: Exception | None = None
    for attempt in range(config.retries + 1):
        if attempt:
            wait = config.backoff_s * 2 ** (attempt - 1)
            log(f"retrying {url} in {wait:g}s (attempt {attempt + 1} of {config.retries + 1}): {last}")
            time.sleep(wait)
        try:
            _stream(url, part, config)
            break
        except _Retry as exc:
            last = exc
    else:
        raise FetchError(
            f"could not download {url} after {config.retries + 1} attempts: {last} "
            f"(the partial file {part} is kept; running again resumes it)"
        )
    try:
        _verify(part, url, expected)
    except FetchError:
        part.unlink(missing_ok=True)
        raise
    commit_file(part, dest)  # the final name appears only once verified


def _open(url: str, config: FetchConfig, start: int = 0) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=config.timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:
            raise  # handled by the caller: the .part is not a prefix of this file
        if exc.code >= 500 or exc.code == 429:
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Retry(f"{type(exc).__name__}: {reason}") from None


def _stream(url: str, part: Path, config: FetchConfig) -> None:
    """One attempt: append the rest of ``url`` to ``part`` (or restart it); raises ``_Retry``."""
    start = part.stat().st_size if part.is_file() else 0
    try:
        response = _open(url, config, start)
    except urllib.error.HTTPError:
        # 416: nothing left to fetch from ``start`` — the .part is longer than the file; restart.
        part.unlink(missing_ok=True)
        raise _Retry("the server refused the resume range (416); restarting the file") from None
    with response:
        total = _total_size(response, start)
        if response.status == 206:
            if _range_start(response) != start:
                part.unlink(missing_ok=True)
                raise _Retry("the server answered a different range than asked; restarting the file")
            mode, done = "ab", start
        else:  # 200: the server ignored Range (or none was asked): the whole file from byte 0
            mode, done = "wb", 0
        bar = tqdm(
            total=total,
            initial=done,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name.removesuffix(".part"),
            disable=not config.progress,
        )
        with bar, part.open(mode) as out:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Retry(f"connection lost after {done:,} bytes ({type(exc).__name__})") from None
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                bar.update(len(chunk))
    if total is not None and done != total:
        if done > total:
            part.unlink(missing_ok=True)
        raise _Retry(f"size mismatch: got {done:,} bytes, the server announced {total:,}")


def _total_size(response: http.client.HTTPResponse, start: int) -> int | None:
    """The whole file's size the server announced (``Content-Range`` total, else length)."""
    if response.status == 206:
        crange = response.headers.get("Content-Range", "")
        total = crange.rsplit("/", 1)[-1]
        if total.isdigit():
            return int(total)
        length = response.headers.get("Content-Length")
        return start + int(length) if length and length.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _range_start(response: http.client.HTTPResponse) -> int | None:
    crange = response.headers.get("Content-Range", "")  # "bytes 100-199/200"
    try:
        return int(crange.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _expected_sha256(url: str, name: str, config: FetchConfig) -> str | None:
    """The configured checksum, else one the server publishes as ``<url>.sha256``, else None."""
    if name in config.sha256:
        return config.sha256[name].lower()
    try:
        with _open(url + ".sha256", config) as response:
            text = response.read(4096).decode("ascii", errors="replace")
    except (FetchError, _Retry, urllib.error.HTTPError):
        return None  # no checksum file beside it: size and gzip checks only
    word = text.split()[0] if text.split() else ""
    if len(word) == 64 and all(c in "0123456789abcdefABCDEF" for c in word):
        return word.lower()
    return None


def _verify(part: Path, url: str, expected: str | None) -> None:
    """Gzip read-through and, when known, the sha256 of the downloaded bytes."""
    if expected is not None:
        digest = hashlib.sha256()
        with part.open("rb") as fh:
            for block in iter(lambda: fh.read(CHUNK), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            raise FetchError(
                f"{url}: sha256 mismatch (got {digest.hexdigest()}, expected {expected}); "
                "the download was deleted"
            )
    try:
        with gzip.open(part, "rb") as fh:
            while fh.read(CHUNK):
                pass
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise FetchError(f"{url}: not a complete gzip file ({exc}); the download was deleted") from None


# ----------------------------------------------------------------------------- convert


def _convert(folder: Path, config: FetchConfig) -> Dataset:
    source = SOURCES[config.source]
    dataset = source.loader(
        folder,
        category=config.category,
        name=f"{config.source}-{config.category}",
        drop_unknown_items=True,
        max_reviews_per_item=config.max_reviews,
    )
    if config.k_core:
        dataset = _k_core(dataset, config.k_core)
    return dataset


def _k_core(dataset: Dataset, k: int) -> Dataset:
    """Users and items with at least ``k`` interactions each, iterated to a fixed point; the
    catalog keeps only the items left in the log (a k-core is the items that have one)."""
    frame = dataset.interactions.frame
    keep = np.ones(len(frame), dtype=bool)
    while True:
        rows = frame[keep]
        users = rows["user_id"].map(rows["user_id"].value_counts())
        items = rows["item_id"].map(rows["item_id"].value_counts())
        drop = (users < k) | (items < k)
        if not drop.any():
            break
        keep[np.flatnonzero(keep)[drop.to_numpy()]] = False
    interactions: Interactions = dataset.interactions.subset(keep)
    if not len(interactions):
        raise FetchError(
            f"the {k}-core of {dataset.name} is empty: no users and items with {k}+ interactions each; "
            "try a smaller --k-core"
        )
    left = set(interactions.frame["item_id"])
    catalog = Catalog(it for it in dataset.catalog if it.item_id in left)
    return Dataset(
        name=dataset.name,
        catalog=catalog,
        interactions=interactions,
        description=f"{dataset.description} {k}-core kept.",
        currency=dataset.currency,
        source=dataset.source,
    )


def _item_row(item: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "item_id": item.item_id,
        "title": item.title,
        "brand": item.brand,
        "categories": list(item.categories),
        "price": item.price,
        "description": item.description,
        "rating": item.rating,
        "reviews": list(item.reviews),
        "image": item.image,
    }
    for key, value in item.attributes.items():
        row.setdefault(key, value)  # attributes never shadow the standard columns
    return row


def _json_line(row: dict[str, Any]) -> bytes:
    return (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode()


def _write(dataset: Dataset, config: FetchConfig) -> Path:
    """The tables format (``items`` + ``interactions``), swapped in whole by ``atomic_dir``."""
    out = config.out_dir
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = dataset.interactions.frame.sort_values("order", kind="stable")

    def write(tmp: Path) -> None:
        with gzip.open(tmp / "items.jsonl.gz", "wb") as fh:
            for item in dataset.catalog:
                fh.write(_json_line(_item_row(item)))
        with gzip.open(tmp / "interactions.jsonl.gz", "wb") as fh:
            for user, item, stamp, rating in zip(
                frame["user_id"], frame["item_id"], frame["timestamp"], frame["rating"], strict=True
            ):
                fh.write(
                    _json_line(
                        {
                            "user_id": user,
                            "item_id": item,
                            "timestamp": None if math.isnan(stamp) else float(stamp),
                            "rating": None if math.isnan(rating) else float(rating),
                        }
                    )
                )
        source = SOURCES[config.source]
        about = {
            "source": config.source,
            "category": config.category,
            "urls": list(config.urls),
            "k_core": config.k_core,
            "homepage": source.homepage,
            "terms": "The data's licence and terms of use are the user's to respect; see the homepage.",
            "description": dataset.description,
        }
        (tmp / "SOURCE.json").write_text(json.dumps(about, indent=2) + "\n", encoding="utf-8")

    try:
        atomic_dir(out, write)
    except OSError as exc:
        raise FetchError(f"could not write {out}: {exc}") from None
    return out
