"""Build once, load fast: the per-dataset artefacts the assistant needs at every turn.

``AssistantIndex.build_or_load`` keys a cache folder by the dataset's content
(catalog texts + interaction log) and the embedder, so a restart reuses the
Chroma collection, the embedding matrix, the BM25 index, the fitted
collaborative scorer and the co-occurrence table, while a changed catalog gets
a fresh folder. Every artefact is written to a temporary path and renamed into
place, so an interrupted build never leaves a half-written index behind.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from llm.local_only import ensure_local_url
from retrieval.complements import CooccurrenceGraph
from retrieval.data.schema import Catalog, Dataset
from retrieval.embedders import Embedder, get_embedder
from retrieval.files import atomic_dir, atomic_write, default_cache_dir
from retrieval.filters import FilterIndex
from retrieval.fingerprint import dataset_fingerprint
from retrieval.hybrid import HybridRetriever
from retrieval.lexical import TITLE_WEIGHT, BM25Index
from retrieval.ranker import popularity_from_interactions
from retrieval.scorers import SCORERS, Scorer
from retrieval.user_store import UserHistoryStore
from retrieval.vector_store import ProductStore, StoreConfig

INDEX_FORMAT = 1  # bump when the on-disk layout changes
# "auto": the first registered of these (cheap to fit on a laptop; SASRec needs training time).
DEFAULT_SCORER = "auto"
AUTO_SCORERS = ("itemknn", "ease", "mostpop")
EASE_MAX_ITEMS = 20_000  # EASE inverts an items x items matrix: skipped by "auto" above this


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9._-]+", "_", text).strip("_")[:48] or "dataset"


@dataclass
class IndexInfo:
    directory: Path
    fingerprint: str
    built: list[str] = field(default_factory=list)  # artefacts built this time (empty = all loaded)
    seconds: float = 0.0


@dataclass
class AssistantIndex:
    """Everything heavy, built once per dataset: store, BM25, retriever, scorer, co-occurrence."""

    dataset: Dataset
    embedder: Embedder
    store: ProductStore
    lexical: BM25Index
    retriever: HybridRetriever
    scorer: Scorer | None
    cooc: CooccurrenceGraph
    popularity: dict[str, float]
    item_matrix: np.ndarray  # unit vectors in catalog row order
    filter_index: FilterIndex
    info: IndexInfo
    root: Path | None = None  # the cache folder the index was built in (None: not on disk)

    @property
    def catalog(self) -> Catalog:
        return self.dataset.catalog

    @functools.cached_property
    def users(self) -> UserHistoryStore:
        """User-history profile vectors, kept beside the product vectors in ``store``."""
        return UserHistoryStore(self.store)

    def forget_user(self, user_id: str) -> int:
        """Drop the user's history from the fitted scorers' cached ``histories.json`` files (atomic
        rewrite), so the index cache no longer holds it; returns the number of files changed."""
        if self.scorer is not None:
            self.scorer.user_histories.pop(user_id, None)
        if self.root is None:
            return 0
        changed = 0
        for path in sorted(self.root.glob("scorer-*/histories.json")):
            histories = json.loads(path.read_text())
            if histories.pop(user_id, None) is None:
                continue
            atomic_write(path, json.dumps(histories))
            changed += 1
        return changed

    def vectors(self, item_ids: Sequence[str]) -> np.ndarray:
        """Unit vectors for catalog items (rows of the cached matrix)."""
        return self.item_matrix[[self.catalog.index_of(i) for i in item_ids]]

    def item_count(self, item_id: str) -> int:
        """Shoppers in the log who have the item."""
        if item_id not in self.catalog or getattr(self.cooc, "occurrences", None) is None:
            return 0
        return int(self.cooc.occurrences[self.catalog.index_of(item_id)])

    def co_bought(self, item_id: str, n: int = 20) -> list[tuple[str, int]]:
        """(other item, shoppers with both) for the item's strongest co-purchase links."""
        return [(c.item_id, c.support) for c in self.cooc.complements([item_id], n)]

    @classmethod
    def build_or_load(
        cls,
        dataset: Dataset,
        embedder: str | Embedder = "minilm",
        scorer: str | Scorer | None = DEFAULT_SCORER,
        cache_dir: str | os.PathLike[str] | None = None,
        show_progress: bool = True,
        store_url: str | None = None,
    ) -> AssistantIndex:
        """``store_url``: a Chroma server (``http://host:8000[?tenant=T&database=D]``, default
        ``$SHOPASSIST_CHROMA_URL``) holds the vectors instead of an embedded Chroma in the cache
        folder; there the collection is named after the dataset and rebuilt in place (alias swap)
        when the catalog changes. BM25, scorer and co-occurrence stay in the local cache folder."""
        t0 = time.perf_counter()
        emb = get_embedder(embedder)
        fp = dataset_fingerprint(dataset)
        root = default_cache_dir(cache_dir) / "indexes" / f"{_slug(dataset.name)}-{_slug(emb.name)}-{fp[:16]}"
        root.mkdir(parents=True, exist_ok=True)
        info = IndexInfo(root, fp)
        (root / "index.json").write_text(
            json.dumps({"format": INDEX_FORMAT, "dataset": dataset.summary(), "embedder": emb.name}, indent=2)
        )
        steps = tqdm(total=4, desc=f"index {dataset.name}", disable=not show_progress, file=sys.stderr)

        popularity = popularity_from_interactions(dataset.interactions)
        steps.set_postfix_str("vector store")
        store = ProductStore(_store_config(root / "store", emb.name, dataset.name, store_url), emb)
        if store.ensure_built(dataset.catalog, popularity, show_progress=show_progress) is not None:
            info.built.append("store")
        steps.update()

        steps.set_postfix_str("bm25")
        bm25_dir = root / "bm25"
        lexical = _load_bm25(bm25_dir, dataset.catalog)
        if lexical is None:
            lexical = BM25Index.from_catalog(dataset.catalog)
            atomic_dir(bm25_dir, lexical.save)
            info.built.append("bm25")
        steps.update()

        steps.set_postfix_str("scorer")
        fitted = _scorer(scorer, dataset, root, info)
        steps.update()

        steps.set_postfix_str("co-occurrence")
        cooc_dir = root / "cooccurrence"
        cooc = None
        if (cooc_dir / "item_ids.txt").exists():
            try:
                cooc = CooccurrenceGraph.load(cooc_dir, dataset.catalog)
            except Exception:  # stale or corrupt: refit below
                cooc = None
        if cooc is None:
            cooc = CooccurrenceGraph().fit(dataset.interactions, dataset.catalog)
            atomic_dir(cooc_dir, cooc.save)
            info.built.append("cooccurrence")
        steps.update()
        steps.close()

        retriever = HybridRetriever(store, dataset.catalog, lexical, popularity=popularity)
        info.seconds = time.perf_counter() - t0
        return cls(
            dataset=dataset,
            embedder=emb,
            store=store,
            lexical=lexical,
            retriever=retriever,
            scorer=fitted,
            cooc=cooc,
            popularity=popularity,
            item_matrix=retriever.matrix,
            filter_index=retriever.filter_index,
            info=info,
            root=root,
        )


def _store_config(path: Path, embedder: str, dataset_name: str, url: str | None) -> StoreConfig:
    url = url if url is not None else os.environ.get("SHOPASSIST_CHROMA_URL", "")
    if not url or url.lower() in ("none", "embedded"):
        return StoreConfig(path=path, embedder=embedder)
    ensure_local_url(url, "Chroma server URL")  # local-only mode: loopback servers only
    # One logical collection per dataset on a shared server (the embedded store has a folder each).
    name = re.sub(r"[^a-zA-Z0-9_-]+", "-", dataset_name).strip("-_")[:40]
    return StoreConfig.from_url(url, path=path, embedder=embedder, collection=f"ds-{name or 'dataset'}")


def _load_bm25(path: Path, catalog: Catalog) -> BM25Index | None:
    if not (path / "ids.json").exists():
        return None
    try:
        idx = BM25Index.load(path)
    except Exception:  # corrupt or old format: rebuild
        return None
    return idx if idx.ids == catalog.ids and idx.title_weight == TITLE_WEIGHT else None


def _scorer(spec: str | Scorer | None, dataset: Dataset, root: Path, info: IndexInfo) -> Scorer | None:
    """A fitted scorer: given one as is (fitted if needed), else loaded from or saved to the cache."""
    if spec is None or spec == "none":
        return None
    if isinstance(spec, Scorer):
        if spec.catalog is None:
            spec.fit(dataset.interactions, dataset.catalog)
        return spec
    if spec == "auto":
        names = [n for n in AUTO_SCORERS if n in SCORERS]
        if len(dataset.catalog) > EASE_MAX_ITEMS:
            names = [n for n in names if n != "ease"]
        if not names:
            return None
        spec = names[0]
    if spec not in SCORERS:
        raise ValueError(f"unknown scorer {spec!r}; available: {sorted(SCORERS)} (or None for no CF signal)")
    if len(dataset.interactions) == 0:
        return None
    path = root / f"scorer-{_slug(spec)}"
    if (path / "scorer.json").exists():
        try:
            return Scorer.load(path, dataset.catalog)
        except Exception:  # stale or corrupt: refit below
            pass
    model = SCORERS[spec]().fit(dataset.interactions, dataset.catalog)
    atomic_dir(path, model.save)
    info.built.append(f"scorer:{spec}")
    return model
