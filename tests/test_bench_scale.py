"""bench.scale: the synthetic catalog generator, the tiny end-to-end run, and the "ann" dense backend."""

from __future__ import annotations

import gzip
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import numpy as np
import pytest
from _catalog_fixture import make_catalog, make_interactions

from bench.scale import (
    CHUNK,
    SYNTHETIC_PREFIX,
    BaseCatalog,
    grow_catalog,
    main,
    make_queries,
    make_variants,
)
from retrieval.data.schema import Catalog
from retrieval.filters import Constraints, FilterIndex, chroma_metadata


@pytest.fixture(scope="module")
def base() -> BaseCatalog:
    cat = make_catalog()
    items = [it for it in cat]
    brands = sorted({it.brand for it in items if it.brand})
    pop = {it.item_id: 1.0 + i % 3 for i, it in enumerate(items)}
    return BaseCatalog(items, pop, {"fixture": brands}, ["fixture"] * len(items))


def test_variants_are_seeded_marked_and_valid(base):
    a = make_variants(base, 2 * CHUNK + 5, seed=3)
    b = make_variants(base, 2 * CHUNK + 5, seed=3)
    assert [(x.item_id, x.title, x.brand, x.price, x.in_stock) for x in a] == [
        (x.item_id, x.title, x.brand, x.price, x.in_stock) for x in b
    ]
    # a smaller catalog is a prefix of a bigger one; another seed gives other variants
    assert [x.title for x in make_variants(base, 100, seed=3)] == [x.title for x in a[:100]]
    assert [x.title for x in make_variants(base, 100, seed=4)] != [x.title for x in a[:100]]
    real = {it.item_id: it for it in base.items}
    real_brands = set(base.brands_by_source["fixture"])
    for v in a:
        assert v.item_id.startswith(SYNTHETIC_PREFIX) and v.attributes["synthetic"] is True
        assert chroma_metadata(v)["synthetic"] is True
        src = real[v.attributes["base_item"]]
        assert v.title != src.title and v.title.strip()
        assert v.categories == src.categories
        assert v.brand is None or v.brand in real_brands
        assert (v.price is None) == (src.price is None)
        assert v.price is None or (np.isfinite(v.price) and v.price > 0)
    Catalog(a)  # ids unique, every Item validated on construction
    stock = np.mean([v.in_stock for v in a])
    assert 0.75 < stock < 0.95  # ~15% flipped from the (all in-stock) bases
    assert 0.1 < np.mean([v.brand != real[v.attributes["base_item"]].brand for v in a]) < 0.4


def test_grow_catalog_keeps_real_items_and_popularity(base):
    cat, pop = grow_catalog(base, 500, seed=0)
    assert len(cat) == 500
    n_real = sum(not it.item_id.startswith(SYNTHETIC_PREFIX) for it in cat)
    assert n_real == len(base.items)
    syn = next(it for it in cat if it.item_id.startswith(SYNTHETIC_PREFIX))
    assert pop[syn.item_id] == base.popularity[syn.attributes["base_item"]]
    small, _ = grow_catalog(base, 5, seed=0)  # fewer than the real items: a seeded sample of them
    assert len(small) == 5 and all(not i.startswith(SYNTHETIC_PREFIX) for i in small.ids)
    with pytest.raises(ValueError, match="positive"):
        grow_catalog(base, 0, seed=0)


def test_queries_are_seeded_and_never_empty(base):
    qs = make_queries(base, 40, seed=1)
    assert qs == make_queries(base, 40, seed=1)
    fi = FilterIndex(Catalog(base.items))
    kinds = {kind for *_, kind in qs}
    assert {"price_max", "brand_in", "category", "in_stock"} <= kinds
    for text, c, _ in qs:
        assert text.strip() and fi.mask(c).sum() > 0


def _write_shared_jsonl(folder: Path) -> None:
    """The fixture catalog in the shared datasets' format, so load_dataset reads it like the real ones."""
    cat = make_catalog()
    inter = make_interactions(cat)
    folder.mkdir(parents=True)
    ids = {it.item_id: n for n, it in enumerate(cat)}
    with gzip.open(folder / "items.jsonl.gz", "wt") as f:
        for it in cat:
            row = {"item_id": ids[it.item_id], "title": it.title, "brand": it.brand, "price": it.price}
            f.write(json.dumps({**row, "categories": list(it.categories)}) + "\n")
    frame = inter.frame.sort_values(["user_id", "order"]) if "order" in inter.frame else inter.frame
    with gzip.open(folder / "sequences.jsonl.gz", "wt") as f:
        for user, g in frame.groupby("user_id", sort=True):
            seq = [ids[i] for i in g["item_id"]]
            f.write(
                json.dumps({"user_id": str(user), "item_ids": seq, "timestamps": [None] * len(seq)}) + "\n"
            )


def test_tiny_run_writes_report(tmp_path):
    data = tmp_path / "fixture-beauty"
    _write_shared_jsonl(data)
    out = tmp_path / "reports"
    report = main(
        [
            "--items",
            "2000",
            "--data",
            str(data),
            "--out",
            str(out),
            "--store-dir",
            str(tmp_path / "stores"),
            "--embedder",
            "minilm",
            "--queries",
            "16",
            "--backends",
            "auto,ann,chroma",
            "--threads",
            "2",
            "--no-progress",
        ]
    )
    saved = json.loads((out / "scale.json").read_text())
    assert saved["synthetic"] is True and saved["protocol"]["embedder"] == "minilm"
    (row,) = saved["sizes"]
    assert row["items"] == 2000 and row["synthetic_items"] == 2000 - row["real_items"] > 0
    assert row["build"]["items_per_s"] > 0 and row["build"]["embedded_texts"] <= row["unique_texts"]
    assert row["disk_mb"]["chroma"] > 0 and row["ram_mb"]["peak_rss_process"] > 0
    assert {"auto (matrix)", "ann", "chroma"} <= set(row["latency"])
    for lat in row["latency"].values():
        assert lat["queries_timed"] == 16 and lat["constraint_violations"] == 0
        assert lat["filled_k_share"] == 1.0
        assert lat["retrieve_rank_excl_encoding"]["p50_ms"] > 0
    assert row.get("store_deleted") and not Path(row["store_dir"]).exists()
    assert "SYNTHETIC" in (out / "scale.md").read_text() and (out / "scale.png").stat().st_size > 0
    assert "load_average_1m_5m_15m" in saved["environment"]
    assert report["sizes"][0]["items"] == 2000


def test_ann_backend_filters_inside_and_fills_k(tmp_path):
    from retrieval.hybrid import HybridConfig, HybridRetriever
    from retrieval.vector_store import ProductStore, StoreConfig

    cat = make_catalog()
    store = ProductStore(StoreConfig(path=tmp_path / "s", batch_size=16))
    store.build(cat, show_progress=False)
    exact = HybridRetriever(store, cat, config=HybridConfig(dense_backend="matrix"))
    for fetch in (4000, 1):  # post-filtered HNSW pool, and the exact fallback for selective filters
        ann = HybridRetriever(store, cat, config=HybridConfig(dense_backend="ann", ann_max_fetch=fetch))
        for c in (Constraints(), Constraints(in_stock=True), Constraints(brands_in=("maybelline",))):
            want = {it.item_id for it in cat if c.matches(it)}
            got = ann.search("matte lipstick", c, k=5)
            assert {x.item_id for x in got} <= want
            assert len(got) == min(5, len(want))
            dense_ann = ann._dense(
                store.embedder.encode_query("matte lipstick"), ann.filter_index.mask(c), c, 3
            )
            dense_exact = exact._dense(
                store.embedder.encode_query("matte lipstick"), exact.filter_index.mask(c), c, 3
            )
            assert [r for r, _ in dense_ann] == [r for r, _ in dense_exact]  # tiny index: HNSW is exact


def test_bad_items_argument_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="--items"):
        main(["--items", "ten", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="not found"):
        main(["--items", "10", "--data", str(tmp_path / "nope"), "--out", str(tmp_path)])


@pytest.mark.slow
def test_static_embedder_distils_offline_and_ranks_sensibly(tmp_path):
    """minilm-static (the scale build's embedder): distilled from the packaged MiniLM into a cache, reused."""
    from retrieval.embedders import StaticMiniLMEmbedder

    emb = StaticMiniLMEmbedder(cache_dir=tmp_path)
    docs = [
        "red nail polish lacquer",
        "shampoo for dry hair",
        "digital lab thermometer",
        "nitrile exam gloves",
    ]
    vecs = emb.encode(docs)
    assert vecs.shape == (4, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert list(tmp_path.glob("minilm-static-v*.npy"))  # cached: the next process does not distil again
    again = StaticMiniLMEmbedder(cache_dir=tmp_path).encode(docs)
    assert np.allclose(vecs, again)
    queries = emb.encode(["nail varnish", "hair wash", "thermometer", "gloves"])
    assert list((queries @ vecs.T).argmax(axis=1)) == [0, 1, 2, 3]
    assert np.linalg.norm(emb.encode([""])[0]) == pytest.approx(1.0)
