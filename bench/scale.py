"""Scale benchmark: build and query cost of the product's retrieval path at 100k..1M items.

    python -m bench.scale --items 100000,1000000 [--out reports] \
        [--data /work/shared/datasets/amazon-beauty-2014,/work/shared/datasets/amazon-scientific-2018]

No public catalog of a million products with prices, brands and category paths
ships here, so the catalog is GROWN from the real Amazon Beauty + Scientific
items: every real item is kept (id ``<dataset>:<id>``), and the rest are
SYNTHETIC variants of random real items (id ``syn-<n>``, ``attributes
["synthetic"] = True``, stored as ``synthetic: true`` in Chroma): price jitter
(and pack-size pricing), a brand swap among real brands of the same dataset,
size / colour / pack-size words in the title, and in_stock flips. Generation is
seeded and chunked, so the catalog of N items is a prefix of the one of M > N.

Per size it measures, with the product's own code (``ProductStore.rebuild``,
``BM25Index``, ``HybridRetriever.search`` + ``FusedRanker.rank``, the calls
``ShoppingAssistant._plan_recommend`` makes): build throughput (embed + upsert),
index size on disk (du) and in RAM (RSS growth), BM25 build time, and per-query
p50/p95 of filtered retrieve+rank for a fixed seeded set of realistic queries,
with and without query encoding, for each dense backend.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import random
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import _rss_bytes, environment, save_figure, slug, write_json, write_text
from llm.runtime import configure
from retrieval.data.schema import Catalog, Item
from retrieval.filters import Constraints

DEFAULT_DATA = (
    "/work/shared/datasets/amazon-beauty-2014",
    "/work/shared/datasets/amazon-scientific-2018",
)
TARGET_P50_MS = 60.0  # issue #9: filtered retrieve+rank p50 at 1M items
TARGET_BUILD_ITEMS_PER_S = 400.0
CHUNK = 10_000  # variants per RNG chunk: catalog(N) is a prefix of catalog(M > N)
SYNTHETIC_PREFIX = "syn-"

SIZE_WORDS = (
    "Travel Size",
    "Mini",
    "Value Size",
    "Jumbo",
    "0.5 oz",
    "1 oz",
    "1.7 oz",
    "3.4 oz",
    "8 oz",
    "16 oz",
    "30 ml",
    "50 ml",
    "100 ml",
    "250 ml",
    "500 ml",
    "Small",
    "Medium",
    "Large",
)
COLOUR_WORDS = (
    "Black",
    "White",
    "Red",
    "Rose",
    "Nude",
    "Coral",
    "Berry",
    "Plum",
    "Blue",
    "Navy",
    "Green",
    "Gold",
    "Silver",
    "Clear",
    "Ivory",
    "Beige",
    "Pink",
    "Grey",
)
PACKS = ((2, "Pack of 2"), (3, "Pack of 3"), (2, "2-Pack"), (3, "3-Pack"), (4, "4-Pack"), (6, "6-Pack"))


# --- the synthetic catalog ----------------------------------------------------------------------
@dataclass
class BaseCatalog:
    """The real items the variants are grown from, with their dataset and popularity."""

    items: list[Item]  # ids already prefixed with the dataset name
    popularity: dict[str, float]
    brands_by_source: dict[str, list[str]]  # real brands per dataset (brand swaps stay in-domain)
    sources: list[str]  # dataset name per item
    datasets: list[dict[str, Any]] = field(default_factory=list)


def load_base(paths: Sequence[str]) -> BaseCatalog:
    """Real items of each dataset (ids prefixed ``<dataset>:``), popularity from their interactions."""
    from retrieval.data.registry import load_dataset
    from retrieval.ranker import popularity_from_interactions

    items: list[Item] = []
    sources: list[str] = []
    popularity: dict[str, float] = {}
    brands: dict[str, list[str]] = {}
    info = []
    for path in paths:
        ds = load_dataset(path)
        name = slug(ds.name)
        pop = popularity_from_interactions(ds.interactions)
        for it in ds.catalog:
            new_id = f"{name}:{it.item_id}"
            attrs = {**it.attributes, "synthetic": False, "source": name}
            items.append(dataclasses.replace(it, item_id=new_id, attributes=attrs))
            sources.append(name)
            if it.item_id in pop:
                popularity[new_id] = pop[it.item_id]
        brands[name] = sorted({it.brand for it in ds.catalog if it.brand})
        info.append({"name": ds.name, "path": str(path), **ds.summary()})
    if not items:
        raise ValueError(f"no items in {list(paths)}")
    return BaseCatalog(items, popularity, brands, sources, info)


def _swap_brand(title: str, old: str | None, new: str) -> str:
    if old and old.casefold() in title.casefold():
        return re.sub(re.escape(old), new, title, flags=re.IGNORECASE)
    return title


def make_variants(base: BaseCatalog, n: int, seed: int, start: int = 0) -> list[Item]:
    """``n`` synthetic variants (``syn-<start>`` ... ) of random real items; deterministic in seed.

    Variant j depends only on (seed, j // CHUNK) and its place in the chunk, so
    ``make_variants(b, n, s)`` is a prefix of ``make_variants(b, m, s)`` for m > n.
    """
    out: list[Item] = []
    if n <= 0:
        return out
    first_chunk, last = start // CHUNK, start + n
    for chunk in range(first_chunk, (last - 1) // CHUNK + 1):
        rng = np.random.default_rng([seed, chunk])
        m = CHUNK
        bidx = rng.integers(0, len(base.items), m)
        jitter = np.exp(rng.normal(0.0, 0.15, m))
        u_brand, u_size, u_colour, u_pack, u_stock = rng.random((5, m))
        size_i = rng.integers(0, len(SIZE_WORDS), m)
        colour_i = rng.integers(0, len(COLOUR_WORDS), m)
        pack_i = rng.integers(0, len(PACKS), m)
        brand_r = rng.random(m)
        for j in range(m):
            vid = chunk * CHUNK + j
            if vid < start or vid >= last:
                continue
            b = base.items[int(bidx[j])]
            src = base.sources[int(bidx[j])]
            words: list[str] = []
            if u_size[j] < 0.6:
                words.append(SIZE_WORDS[size_i[j]])
            if u_colour[j] < 0.5:
                words.append(COLOUR_WORDS[colour_i[j]])
            factor = 1.0
            if u_pack[j] < 0.3:
                count, label = PACKS[pack_i[j]]
                words.append(label)
                factor = count * 0.9
            if not words:  # every variant differs from its base in the title
                words.append(SIZE_WORDS[size_i[j]])
            brand, title = b.brand, b.title
            pool = base.brands_by_source.get(src) or []
            if b.brand and pool and u_brand[j] < 0.25:
                brand = pool[int(brand_r[j] * len(pool))]
                title = _swap_brand(title, b.brand, brand)
            price = None if b.price is None else round(max(0.5, b.price * float(jitter[j]) * factor), 2)
            out.append(
                dataclasses.replace(
                    b,
                    item_id=f"{SYNTHETIC_PREFIX}{vid:07d}",
                    title=f"{title} - {', '.join(words)}",
                    brand=brand,
                    price=price,
                    in_stock=bool(b.in_stock) != bool(u_stock[j] < 0.15),
                    reviews=(),
                    attributes={"synthetic": True, "base_item": b.item_id, "source": src},
                )
            )
    return out


def grow_catalog(base: BaseCatalog, n_items: int, seed: int) -> tuple[Catalog, dict[str, float]]:
    """``n_items`` items: the real ones (a seeded sample when fewer are asked), then synthetic variants.

    Variants inherit their base item's popularity (the ranker's popularity prior).
    """
    if n_items <= 0:
        raise ValueError(f"--items must be positive, got {n_items}")
    real = base.items
    if n_items < len(real):
        rows = sorted(random.Random(seed).sample(range(len(real)), n_items))
        real = [real[r] for r in rows]
    items = list(real) + make_variants(base, n_items - len(real), seed)
    pop = {it.item_id: base.popularity[it.item_id] for it in real if it.item_id in base.popularity}
    for it in items[len(real) :]:
        p = base.popularity.get(it.attributes["base_item"])
        if p is not None:
            pop[it.item_id] = p
    return Catalog(items), pop


# --- queries ----------------------------------------------------------------------------------------
QUERY_KINDS = ("none", "price_max", "price_range", "brand_in", "brand_out", "category", "in_stock", "combo")


def make_queries(base: BaseCatalog, n: int, seed: int) -> list[tuple[str, Constraints, str]]:
    """(text, constraints, kind): title fragments of real items, each kind of filter in turn.

    Filters are derived from the item the text came from, so they are realistic
    and never empty at any catalog size that holds the real items.
    """
    rng = random.Random(seed)
    priced = [it for it in base.items if it.price is not None]
    out: list[tuple[str, Constraints, str]] = []
    for q in range(n):
        kind = QUERY_KINDS[q % len(QUERY_KINDS)]
        pool = priced if kind in ("price_max", "price_range", "combo") else base.items
        it = rng.choice(pool)
        words = re.findall(r"[A-Za-z][\w'-]*", it.title)
        text = " ".join(words[: rng.randint(2, 4)]) or it.title
        c = Constraints()
        if kind == "price_max":
            c = Constraints(price_max=round(it.price * rng.uniform(1.0, 2.0) + 1, 2))
        elif kind == "price_range":
            c = Constraints(price_min=round(it.price * 0.5, 2), price_max=round(it.price * 1.5 + 1, 2))
        elif kind == "brand_in" and it.brand:
            c = Constraints(brands_in=(it.brand,))
        elif kind == "brand_out" and it.brand:
            c = Constraints(brands_out=(it.brand,))
        elif kind == "category" and it.categories:
            c = Constraints(categories=(it.categories[: rng.randint(1, min(3, len(it.categories)))],))
        elif kind == "in_stock":
            c = Constraints(in_stock=True)
        elif kind == "combo":
            cats = (it.categories[:2],) if len(it.categories) >= 2 else ()
            c = Constraints(price_max=round(it.price * 1.5 + 1, 2), categories=cats, in_stock=True)
        out.append((text, c, kind if not c.is_empty else "none"))
    return out


# --- measuring ----------------------------------------------------------------------------------------
def du_bytes(path: Path) -> int:
    """Bytes on disk of a folder (``du -sb``; a Python walk where du is missing)."""
    try:
        return int(
            subprocess.run(
                ["du", "-sb", str(path)], capture_output=True, text=True, check=True
            ).stdout.split()[0]
        )
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _mb(b: float | None) -> float | None:
    return None if b is None else round(b / 2**20, 1)


def _peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def percentiles(xs: Sequence[float]) -> dict[str, float | None]:
    if not xs:
        return {"p50_ms": None, "p95_ms": None, "mean_ms": None, "n": 0}
    a = np.asarray(xs) * 1000
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p95_ms": round(float(np.percentile(a, 95)), 2),
        "mean_ms": round(float(a.mean()), 2),
        "n": len(xs),
    }


def time_queries(
    retriever: Any,
    ranker: Any,
    popularity: dict[str, float],
    queries: Sequence[tuple[str, Constraints, str]],
    k: int,
    budget_s: float,
) -> dict[str, Any]:
    """Per query: cold query encoding, then search + rank exactly as the assistant does."""
    from retrieval.ranker import Feedback

    emb = retriever.store.embedder
    retriever.search(queries[0][0], queries[0][1], k=k)  # first-call overheads (Chroma HNSW load)
    emb._query_cache.clear()
    enc, search, rank, total, by_kind = [], [], [], [], {}
    filled = violations = 0
    t_start = time.perf_counter()
    for text, c, kind in queries:
        ta = time.perf_counter()
        emb.encode_query(text)  # cold: each text is new to the cache
        tb = time.perf_counter()
        cands = retriever.search(text, c, k=k)
        tc = time.perf_counter()
        ranked = ranker.rank(cands, constraints=c, popularity=popularity, feedback=Feedback())
        td = time.perf_counter()
        enc.append(tb - ta)
        search.append(tc - tb)
        rank.append(td - tc)
        total.append(td - ta)
        by_kind.setdefault(kind, []).append(td - tb)
        n_allowed = int(retriever.filter_index.mask(c).sum())
        filled += len(cands) == min(k, n_allowed)
        violations += sum(not c.matches(retriever.catalog[r.item_id]) for r in ranked)
        if time.perf_counter() - t_start > budget_s:
            break
    n = len(total)
    emb._query_cache.clear()
    return {
        "queries_timed": n,
        "retrieve_rank_excl_encoding": percentiles([s + r for s, r in zip(search, rank, strict=True)]),
        "end_to_end_incl_encoding": percentiles(total),
        "query_encoding": percentiles(enc),
        "search": percentiles(search),
        "rank": percentiles(rank),
        "by_filter_kind_excl_encoding": {kd: percentiles(v) for kd, v in sorted(by_kind.items())},
        "filled_k_share": round(filled / max(n, 1), 4),
        "constraint_violations": violations,
        "stopped_by_budget": n < len(queries),
    }


def run_size(
    base: BaseCatalog,
    n_items: int,
    args: argparse.Namespace,
    queries: Sequence[tuple[str, Constraints, str]],
) -> dict[str, Any]:
    from retrieval.hybrid import HybridConfig, HybridRetriever
    from retrieval.lexical import BM25Index
    from retrieval.ranker import FusedRanker
    from retrieval.vector_store import ProductStore, StoreConfig

    print(f"\n=== {n_items:,} items ===", flush=True)
    t0 = time.perf_counter()
    catalog, popularity = grow_catalog(base, n_items, args.seed)
    grow_s = time.perf_counter() - t0
    n_syn = sum(1 for it in catalog if it.attributes.get("synthetic"))
    texts_unique = len({it.text() for it in catalog})
    print(f"catalog grown in {grow_s:.1f} s ({n_syn:,} synthetic, {texts_unique:,} unique texts)", flush=True)

    store_dir = Path(args.store_dir) / f"{args.embedder}-{n_items}"
    shutil.rmtree(store_dir, ignore_errors=True)
    gc.collect()
    rss0 = _rss_bytes()
    store = ProductStore(StoreConfig(path=store_dir, embedder=args.embedder, batch_size=args.batch_size))
    t0 = time.perf_counter()
    stats = store.rebuild(catalog, popularity, show_progress=not args.no_progress)
    build_s = time.perf_counter() - t0
    rss_build = _rss_bytes()
    chroma_bytes = du_bytes(store_dir / "chroma")
    cache_bytes = du_bytes(store.cache_dir) if store.cache_dir.exists() else 0
    build = {
        "items": stats.items,
        "seconds": round(build_s, 1),
        "items_per_s": round(stats.items / build_s, 1),
        "embedded_texts": stats.embedded,
        "embedding_cache_hits": stats.items - stats.embedded,
        "embed_seconds": round(stats.embed_seconds, 1),
        "embed_texts_per_s": round(stats.embedded / stats.embed_seconds, 1) if stats.embed_seconds else None,
        "upsert_and_other_seconds": round(build_s - stats.embed_seconds, 1),
        "meets_target": stats.items / build_s >= TARGET_BUILD_ITEMS_PER_S,
        **getattr(stats, "details", {}),
    }
    print(f"build: {build}", flush=True)

    t0 = time.perf_counter()
    lexical = BM25Index.from_texts(catalog.ids, [it.text() for it in catalog])
    bm25_s = time.perf_counter() - t0
    rss_bm25 = _rss_bytes()
    t0 = time.perf_counter()
    retriever = HybridRetriever(store, catalog, lexical, HybridConfig(), popularity=popularity)
    retriever_s = time.perf_counter() - t0
    ranker = FusedRanker(catalog)
    rss_ready = _rss_bytes()
    print(f"bm25 {bm25_s:.1f} s, retriever {retriever_s:.1f} s", flush=True)

    latency: dict[str, Any] = {}
    retriever.config.dense_backend = "auto"
    auto_is = retriever.dense_backend  # timed once, as "auto (<backend>)"
    backends = ["auto", *[b for b in args.backends if b not in ("auto", auto_is)]]
    for backend in backends:
        retriever.config.dense_backend = backend
        label = backend if backend != "auto" else f"auto ({retriever.dense_backend})"
        budget = float("inf") if backend == "auto" else args.query_budget_s  # the product path: all
        res = time_queries(retriever, ranker, popularity, queries, args.k, budget)
        res["dense_backend"] = retriever.dense_backend
        latency[label] = res
        p = res["retrieve_rank_excl_encoding"]
        print(
            f"{label}: retrieve+rank p50 {p['p50_ms']} ms p95 {p['p95_ms']} ms ({res['queries_timed']} q)",
            flush=True,
        )
    retriever.config.dense_backend = "auto"
    rss_end = _rss_bytes()
    row = {
        "items": n_items,
        "synthetic_items": n_syn,
        "real_items": n_items - n_syn,
        "unique_texts": texts_unique,
        "priced_share": round(sum(it.price is not None for it in catalog) / n_items, 4),
        "in_stock_share": round(sum(bool(it.in_stock) for it in catalog) / n_items, 4),
        "grow_catalog_seconds": round(grow_s, 1),
        "build": build,
        "bm25_build_seconds": round(bm25_s, 1),
        "retriever_init_seconds": round(retriever_s, 1),
        "disk_mb": {"chroma": _mb(chroma_bytes), "embedding_cache": _mb(cache_bytes)},
        "ram_mb": {
            "store_build_rss_growth": _mb((rss_build or 0) - (rss0 or 0)),
            "bm25_rss_growth": _mb((rss_bm25 or 0) - (rss_build or 0)),
            "retriever_rss_growth": _mb((rss_ready or 0) - (rss_bm25 or 0)),
            "after_queries_rss_total": _mb(rss_end),
            "peak_rss_process": _peak_rss_mb(),
        },
        "latency": latency,
        "store_dir": str(store_dir),
        "load_average_after": list(os.getloadavg()),
    }
    del retriever, ranker, lexical, store, catalog
    gc.collect()
    if not args.keep_store:
        shutil.rmtree(store_dir, ignore_errors=True)
        row["store_deleted"] = True
    return row


# --- report ------------------------------------------------------------------------------------------
def _best_label(row: dict[str, Any]) -> str:
    return next(lbl for lbl in row["latency"] if lbl.startswith("auto"))


def to_markdown(r: dict[str, Any]) -> str:
    env = r["environment"]
    lines = [
        "# Scale benchmark: build and filtered retrieve+rank cost, 100k..1M items",
        "",
        f"**Synthetic data.** The catalog is grown from the {r['base']['real_items']:,} real items of "
        f"{', '.join(d['name'] for d in r['base']['datasets'])}; every other item is a SYNTHETIC variant "
        "(id `syn-<n>`, `synthetic: true` in its attributes and Chroma metadata) of a random real item: "
        "price jitter (x exp(N(0, 0.15)), pack sizes priced x0.9 per unit), a brand swap among real brands of "
        "the same dataset (25%), size/colour/pack words in the title, in_stock flipped (15%). "
        f"Seed {r['protocol']['seed']}.",
        "",
        "## Protocol",
        "",
        f"- Store: **embedded Chroma** {r['protocol']['chromadb']} (PersistentClient, one process), "
        f"embedder `{r['protocol']['embedder']}` ({r['protocol']['embedder_choice']}).",
        f"- Build = `ProductStore.rebuild` (embed unique texts + upsert in batches of {r['protocol']['batch_size']}, "
        "embedding cache cold). Build throughput = items / build wall time.",
        f"- Queries: {r['protocol']['queries']} seeded title fragments of real items, filter kinds cycled "
        f"({', '.join(QUERY_KINDS)}); k={r['protocol']['k']} candidates from `HybridRetriever.search` "
        "(dense + BM25, filters inside), then `FusedRanker.rank` (constraints, popularity, no CF scorer): "
        "the calls `ShoppingAssistant._plan_recommend` makes. Query encoding timed separately (cold cache).",
        "- Disk = `du -sb` of the Chroma folder (+ the embedding cache .npy); RAM = RSS growth of the process "
        "over each step; peak = ru_maxrss.",
        f"- Machine: {env['cpu_count']} CPUs shared with other jobs; load average (1/5/15 min) at start "
        f"{env.get('load_average_1m_5m_15m')}, per size below. Timings on a loaded box are inflated.",
        "",
        "## Results",
        "",
        "| items | build s | build items/s | embed texts/s | BM25 build s | Chroma disk MB | RAM growth MB "
        "(store + BM25 + retriever) | retrieve+rank p50 / p95 ms | incl. encoding p50 / p95 ms | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["sizes"]:
        b, ram = row["build"], row["ram_mb"]
        lat = row["latency"][_best_label(row)]
        ex, inc = lat["retrieve_rank_excl_encoding"], lat["end_to_end_incl_encoding"]
        growth = sum(v or 0 for k, v in ram.items() if k.endswith("growth"))
        lines.append(
            f"| {row['items']:,} | {b['seconds']} | **{b['items_per_s']}** | {b['embed_texts_per_s']} | "
            f"{row['bm25_build_seconds']} | {row['disk_mb']['chroma']} | {growth:.0f} | "
            f"**{ex['p50_ms']}** / {ex['p95_ms']} | {inc['p50_ms']} / {inc['p95_ms']} | "
            f"{', '.join(f'{x:.1f}' for x in row['load_average_after'])} |"
        )
    lines += ["", "## Latency by dense backend (retrieve+rank, excl. encoding, ms)", ""]
    lines += [
        "| items | backend | p50 | p95 | queries | filled k | violations |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["sizes"]:
        for lbl, lat in row["latency"].items():
            p = lat["retrieve_rank_excl_encoding"]
            lines.append(
                f"| {row['items']:,} | {lbl} | {p['p50_ms']} | {p['p95_ms']} | {lat['queries_timed']}"
                f"{' (time budget)' if lat['stopped_by_budget'] else ''} | {lat['filled_k_share']:.0%} | "
                f"{lat['constraint_violations']} |"
            )
    big = r["sizes"][-1]
    lat = big["latency"][_best_label(big)]["retrieve_rank_excl_encoding"]
    lines += [
        "",
        "## Acceptance (issue #9)",
        "",
        f"- Filtered retrieve+rank p50 at {big['items']:,} items: **{lat['p50_ms']} ms** "
        f"(target <= {TARGET_P50_MS:.0f} ms at 1M items"
        + (
            f": {'met' if (lat['p50_ms'] or 1e9) <= TARGET_P50_MS else 'MISSED'}"
            if big["items"] >= 1_000_000
            else ""
        )
        + "), embedded Chroma.",
        "- Build throughput: "
        + ", ".join(f"{row['items']:,}: **{row['build']['items_per_s']} items/s**" for row in r["sizes"])
        + f" (target >= {TARGET_BUILD_ITEMS_PER_S:.0f}).",
        *(
            [f"- **Not measured at 1M here**: the largest size in this report is {big['items']:,} items."]
            if big["items"] < 1_000_000
            else []
        ),
        "",
        f"Peak process RSS {big['ram_mb']['peak_rss_process']} MB. Raw numbers: `{r['json_name']}`.",
        "",
    ]
    return "\n".join(lines)


def plot(r: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [row["items"] for row in r["sizes"]]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    ax = axes[0]
    ax.plot(xs, [row["build"]["seconds"] for row in r["sizes"]], "o-", label="build s")
    ax2 = ax.twinx()
    ax2.plot(xs, [row["build"]["items_per_s"] for row in r["sizes"]], "s--", color="C1", label="items/s")
    ax2.axhline(TARGET_BUILD_ITEMS_PER_S, color="C1", lw=0.8, ls=":")
    ax.set_title("build (embed + upsert)")
    ax.set_ylabel("seconds")
    ax2.set_ylabel("items/s")
    ax = axes[1]
    labels = sorted({lbl.split(" ")[0] for row in r["sizes"] for lbl in row["latency"]})
    for i, base in enumerate(labels):
        for stat, ls in (("p50_ms", "-"), ("p95_ms", ":")):
            ys = []
            for row in r["sizes"]:
                lat = next((v for k, v in row["latency"].items() if k.split(" ")[0] == base), None)
                ys.append(None if lat is None else lat["retrieve_rank_excl_encoding"][stat])
            ax.plot(
                xs,
                [np.nan if y is None else y for y in ys],
                "o" + ls,
                color=f"C{i}",
                label=f"{base} {stat[:3]}",
            )
    ax.axhline(TARGET_P50_MS, color="k", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_title("filtered retrieve+rank per query (ms)")
    ax.legend(fontsize=7)
    ax = axes[2]
    ax.plot(xs, [row["disk_mb"]["chroma"] for row in r["sizes"]], "o-", label="Chroma disk MB")
    ax.plot(
        xs,
        [sum(v or 0 for k, v in row["ram_mb"].items() if k.endswith("growth")) for row in r["sizes"]],
        "s-",
        label="RAM growth MB",
    )
    ax.set_title("index size")
    ax.legend(fontsize=7)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("items (synthetic variants of real items)")
    fig.suptitle("bench.scale: cost growth (embedded Chroma, 2 shared CPUs)", fontsize=9)
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", default="100000,1000000", help="comma-separated catalog sizes")
    p.add_argument(
        "--data", default=",".join(DEFAULT_DATA), help="comma-separated dataset paths (the real base items)"
    )
    p.add_argument("--out", type=Path, default=Path("reports"))
    p.add_argument("--name", default="scale", help="report file stem")
    p.add_argument("--store-dir", default=".cache/bench-scale", help="scratch folder for the stores")
    p.add_argument("--keep-store", action="store_true", help="keep each size's store (default: deleted)")
    p.add_argument("--embedder", default="use-multilingual")
    p.add_argument("--embedder-choice", default="", help="why this embedder (printed in the report)")
    p.add_argument("--batch-size", type=int, default=None, help="embed+upsert batch (default: StoreConfig's)")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--k", type=int, default=50, help="candidates (the assistant's RETRIEVE_POOL)")
    p.add_argument("--backends", default="auto,ann,matrix,chroma", help="dense backends to time")
    p.add_argument(
        "--query-budget-s", type=float, default=240.0, help="stop timing a non-auto backend after this long"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch / BLAS threads")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--append", action="store_true", help="keep other sizes already in the report")
    a = p.parse_args(argv)
    try:
        sizes = sorted({int(s) for s in a.items.split(",") if s.strip()})
    except ValueError as err:
        raise SystemExit(f"--items must be comma-separated integers, got {a.items!r}") from err
    if not sizes or sizes[0] <= 0:
        raise SystemExit(f"--items must be positive integers, got {a.items!r}")
    paths = [s for s in a.data.split(",") if s.strip()]
    missing = [s for s in paths if not Path(s).exists()]
    if missing:
        raise SystemExit(f"dataset folder(s) not found: {missing} (see /work/shared/datasets/README.md)")
    a.backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    if a.batch_size is None:
        from retrieval.vector_store import StoreConfig

        a.batch_size = StoreConfig().batch_size
    configure()
    import chromadb
    import torch

    torch.set_num_threads(a.threads)
    env = environment()
    base = load_base(paths)
    queries = make_queries(base, a.queries, a.seed)
    rows = [run_size(base, n, a, queries) for n in sizes]
    previous = a.out / f"{a.name}.json"
    if a.append and previous.exists():  # sizes measured by earlier runs (same protocol) are kept
        import json

        done = {row["items"] for row in rows}
        old_rows = [row for row in json.loads(previous.read_text())["sizes"] if row["items"] not in done]
        rows = sorted(old_rows + rows, key=lambda row: row["items"])
    report = {
        "bench": "scale",
        "synthetic": True,
        "base": {"real_items": len(base.items), "datasets": base.datasets},
        "protocol": {
            "seed": a.seed,
            "embedder": a.embedder,
            "embedder_choice": a.embedder_choice or "given by --embedder",
            "chromadb": chromadb.__version__,
            "store": "embedded (PersistentClient)",
            "batch_size": a.batch_size,
            "queries": len(queries),
            "query_kinds": {kd: sum(1 for *_, x in queries if x == kd) for kd in QUERY_KINDS},
            "k": a.k,
            "threads": a.threads,
            "targets": {"p50_ms_at_1M": TARGET_P50_MS, "build_items_per_s": TARGET_BUILD_ITEMS_PER_S},
        },
        "sizes": rows,
        "environment": env,
        "environment_end": environment(),
        "json_name": f"{a.name}.json",
    }
    write_json(a.out / f"{a.name}.json", report)
    md = to_markdown(report)
    write_text(a.out / f"{a.name}.md", md)
    plot(report, a.out / f"{a.name}.png")
    print(md)
    return report


if __name__ == "__main__":
    main()
