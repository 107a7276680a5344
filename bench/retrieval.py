"""Retrieval latency and build-throughput benchmark.

    python -m bench.retrieval --data /work/shared/datasets/amazon-beauty-2014 --out reports/

Builds (or reuses) the Chroma product store for a dataset, then times, per
query: hybrid retrieval with the constraints applied inside it (both dense
backends), plus fused ranking. Query texts are cut from random item titles and
half of them carry a constraint derived from that item, so filters are
realistic and non-empty. Reports p50/p95 with and without query encoding.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from llm.runtime import configure
from retrieval.data.schema import Item
from retrieval.text import words

TARGET_P50_MS = 20.0


def _slug(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", Path(name).name or name).strip("-") or "dataset"


def make_queries(items: list[Item], n: int, seed: int) -> list[tuple[str, Any]]:
    """(query text, Constraints) pairs: title prefixes, half with an item-derived filter."""
    from retrieval.filters import Constraints

    rng = random.Random(seed)
    out = []
    for it in rng.sample(items, min(n, len(items))):
        title_words = words(it.title)
        q = " ".join(title_words[: rng.randint(2, 4)]) or it.title
        kind = rng.choice(["none", "none", "price", "category", "brand", "stock"])
        c = Constraints()
        if kind == "price" and it.price is not None:
            c = Constraints(price_max=round(it.price * 1.5 + 1, 2))
        elif kind == "category" and len(it.categories) >= 2:
            c = Constraints(categories=(it.categories[:2],))
        elif kind == "brand" and it.brand:
            c = Constraints(brands_in=(it.brand,))
        elif kind == "stock":
            c = Constraints(in_stock=True, price_min=1.0) if it.price else Constraints(in_stock=True)
        out.append((q, c))
    return out


def percentiles(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs) * 1000
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p95_ms": round(float(np.percentile(a, 95)), 2),
        "mean_ms": round(float(a.mean()), 2),
    }


def run(
    data: str,
    out: Path,
    store_dir: Path | None,
    n_queries: int,
    k: int,
    seed: int,
    threads: int,
    store_url: str | None = None,
) -> dict:
    import torch

    torch.set_num_threads(max(2, threads))  # building embeds every item: use what the box allows
    from retrieval.data import load_dataset
    from retrieval.filters import FilterIndex
    from retrieval.hybrid import HybridConfig, HybridRetriever
    from retrieval.ranker import FusedRanker, popularity_from_interactions
    from retrieval.vector_store import ProductStore, StoreConfig

    t0 = time.perf_counter()
    ds = load_dataset(data)
    load_s = time.perf_counter() - t0
    catalog = ds.catalog
    popularity = popularity_from_interactions(ds.interactions)
    store_dir = store_dir or Path(".cache") / "bench-store" / _slug(data)
    store = ProductStore(StoreConfig.from_url(store_url, path=store_dir))  # a server when store_url is set
    t0 = time.perf_counter()
    stats = store.ensure_built(catalog, popularity, show_progress=True)
    build = {
        "reused_existing_collection": stats is None,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if stats is not None:
        build.update(
            items=stats.items,
            embedded=stats.embedded,
            embed_seconds=round(stats.embed_seconds, 2),
            items_per_s=round(stats.items_per_s, 1),
            embed_items_per_s=round(stats.embedded / stats.embed_seconds, 1) if stats.embedded else None,
            chroma_items_per_s=round(stats.items / max(stats.seconds - stats.embed_seconds, 1e-9), 1),
        )
    torch.set_num_threads(threads)  # queries are single short texts: one thread is fastest per query
    queries = make_queries(list(catalog), n_queries, seed)
    ranker = FusedRanker(catalog)
    t0 = time.perf_counter()
    FilterIndex(catalog)
    index_s = time.perf_counter() - t0

    results: dict[str, Any] = {}
    for backend in ("matrix", "chroma"):
        retriever = HybridRetriever(
            store, catalog, config=HybridConfig(dense_backend=backend), popularity=popularity
        )
        retriever.search("warm up", k=k)  # BM25 build + first-call overheads
        store.embedder._query_cache.clear()
        encode, search, rank, total, sizes = [], [], [], [], []
        for q, c in queries:
            ta = time.perf_counter()
            store.embedder.encode_query(q)  # cold: each query text is new
            tb = time.perf_counter()
            cands = retriever.search(q, c, k=k)  # reuses the vector just encoded
            tc = time.perf_counter()
            ranked = ranker.rank(cands, constraints=c, popularity=popularity, k=10)
            td = time.perf_counter()
            encode.append(tb - ta)
            search.append(tc - tb)
            rank.append(td - tc)
            total.append(td - ta)
            sizes.append(len(ranked))
        results[backend] = {
            "end_to_end_incl_query_encoding": percentiles(total),
            "retrieve_filter_rank_excl_encoding": percentiles(
                [s + r for s, r in zip(search, rank, strict=True)]
            ),
            "query_encoding": percentiles(encode),
            "search": percentiles(search),
            "rank": percentiles(rank),
            "mean_results": round(float(np.mean(sizes)), 2),
        }
        store.embedder._query_cache.clear()
    report = {
        "dataset": ds.name,
        "data": data,
        "items": len(catalog),
        "interactions": len(ds.interactions),
        "embedder": store.embedder.name,
        "store": store.config.server_url or "embedded",
        "queries": len(queries),
        "constrained_queries": sum(not c.is_empty for _, c in queries),
        "k_candidates": k,
        "load_seconds": round(load_s, 2),
        "filter_index_seconds": round(index_s, 3),
        "build": build,
        "latency": results,
        "target_p50_ms": TARGET_P50_MS,
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch_threads": threads,
            "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    stem = f"retrieval_bench_{_slug(ds.name)}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (out / f"{stem}.md").write_text(to_markdown(report))
    return report


def to_markdown(r: dict) -> str:
    b = r["build"]
    lines = [
        f"# Retrieval benchmark: {r['dataset']}",
        "",
        f"{r['items']:,} items, {r['interactions']:,} interactions; embedder `{r['embedder']}`; "
        f"Chroma {'server at ' + r['store'] if r.get('store', 'embedded') != 'embedded' else 'embedded'}; "
        f"{r['queries']} queries ({r['constrained_queries']} with a constraint), {r['k_candidates']} candidates "
        f"ranked to 10. Machine: {r['machine']['cpu_count']} CPUs, torch threads {r['machine']['torch_threads']}, "
        f"load average {r['machine']['load_avg']}.",
        "",
        "## Build",
        "",
    ]
    if b["reused_existing_collection"]:
        lines.append(
            f"Existing collection reused (fingerprint matched) in {b['seconds']} s; nothing re-embedded."
        )
    else:
        lines.append(
            f"{b['items']:,} items in {b['seconds']} s = **{b['items_per_s']} items/s** overall "
            f"({b['embedded']:,} embedded at {b['embed_items_per_s']} items/s; Chroma upsert "
            f"{b['chroma_items_per_s']} items/s)."
        )
    lines += [
        "",
        "## Latency per query (ms)",
        "",
        "| dense backend | stage | p50 | p95 | mean |",
        "|---|---|---|---|---|",
    ]
    for backend, res in r["latency"].items():
        for stage in (
            "end_to_end_incl_query_encoding",
            "retrieve_filter_rank_excl_encoding",
            "query_encoding",
            "search",
            "rank",
        ):
            p = res[stage]
            lines.append(f"| {backend} | {stage} | {p['p50_ms']} | {p['p95_ms']} | {p['mean_ms']} |")
    best = min(res["end_to_end_incl_query_encoding"]["p50_ms"] for res in r["latency"].values())
    verdict = "meets" if best <= r["target_p50_ms"] else "misses"
    lines += ["", f"Best end-to-end p50 {best} ms {verdict} the {r['target_p50_ms']} ms target.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="movielens-100k", help="registered dataset name or path")
    p.add_argument("--out", type=Path, default=Path("reports"), help="folder for the JSON + markdown report")
    p.add_argument(
        "--store", type=Path, default=None, help="store folder (default .cache/bench-store/<data>)"
    )
    p.add_argument(
        "--store-url",
        default=None,
        help="Chroma server http://host:port[?database=D] instead of the embedded store (the "
        "embedding cache stays in --store)",
    )
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--k", type=int, default=50, help="candidates retrieved before ranking")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads for query encoding")
    a = p.parse_args(argv)
    configure()
    report = run(a.data, a.out, a.store, a.queries, a.k, a.seed, a.threads, a.store_url)
    print(to_markdown(report))


if __name__ == "__main__":
    main()
