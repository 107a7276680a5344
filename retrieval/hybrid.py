"""Hybrid retrieval: dense (Chroma / exact matrix) + BM25, fused, with filters applied inside.

Both halves search only items that satisfy the constraints (a Chroma ``where``
clause or the exact matrix path for dense; a mask on the BM25 score vector for
lexical), so a selective filter still fills ``k`` whenever enough items match.
A query with no content ("something else") falls back to the user's profile
vector, else to popularity, still within the constraints.

``HybridRetriever.as_retriever`` gives the same search as a LangChain ``BaseRetriever``
(``HybridDocumentRetriever``): one ``Document`` per candidate, the item's facts and the
candidate's scores in its metadata.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from retrieval.data.schema import Catalog, Item
from retrieval.filters import Constraints, FilterIndex
from retrieval.lexical import BM25Index, tokenize
from retrieval.topk import top_k
from retrieval.vector_store import UNSET, ProductStore

# Words that carry no product content: a query made only of these is "vague".
GENERIC_WORDS = frozenset(
    [
        "something",
        "else",
        "anything",
        "more",
        "other",
        "others",
        "option",
        "options",
        "different",
        "another",
        "recommend",
        "recommendation",
        "recommendations",
        "suggest",
        "suggestion",
        "suggestions",
        "idea",
        "ideas",
        "stuff",
        "thing",
        "things",
        "any",
        "one",
        "ones",
        "new",
        "alternative",
        "alternatives",
        "instead",
        "also",
        "maybe",
        "perhaps",
        "like",
        "similar",
        "good",
        "nice",
        "great",
        "best",
        "cool",
        "item",
        "items",
        "product",
        "products",
        "buy",
    ]
)
GENERIC_CJK = (
    "别的",
    "其他",
    "其它",
    "还有",
    "随便",
    "推荐",
    "什么",
    "一些",
    "东西",
    "看看",
    "给我",
    "换",
    "吗",
    "呢",
    "的",
)


def is_vague(query: str) -> bool:
    """True when the query names nothing searchable (empty, or only filler like "show me something else")."""
    text = query.casefold()
    for phrase in GENERIC_CJK:
        text = text.replace(phrase, " ")
    return not [t for t in tokenize(text) if t not in GENERIC_WORDS and not re.fullmatch(r"\W+", t)]


@dataclass
class Candidate:
    """One retrieved item with the evidence behind its relevance (ranks are 1-based)."""

    item_id: str
    relevance: float  # fused score (RRF or weighted); higher is better
    dense_score: float | None = None  # cosine similarity to the query (or profile) vector
    lexical_score: float | None = None  # BM25 score
    dense_rank: int | None = None
    lexical_rank: int | None = None
    source: str = "hybrid"  # "hybrid", "profile" or "popularity" (vague-query fallbacks)


@dataclass
class HybridConfig:
    """How the two result lists are fetched and fused."""

    fusion: Literal["rrf", "weighted"] = "rrf"  # reciprocal-rank fusion, or min-max-normalised weighted sum
    rrf_k: int = 60  # RRF damping constant (Cormack et al. 2009)
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    pool_factor: int = 4  # each half returns max(pool_min, k * pool_factor) before fusion
    pool_min: int = 50
    user_weight: float = 0.25  # share of the user's profile vector blended into the query vector
    # "chroma": dense search inside Chroma with a where clause (works against a server);
    # "matrix": exact dot products over the in-memory item matrix + the filter mask (fastest);
    # "ann": Chroma's HNSW index queried WITHOUT a where clause for an oversampled pool,
    # then filtered by the mask; selective filters (or a pool the filter emptied) go exact
    # over the allowed rows only. A where clause makes Chroma evaluate the filter over
    # every record first (~0.2 s per query at 30k items here); this stays ~flat with size.
    # "auto": matrix up to matrix_max_items, else ann.
    dense_backend: Literal["auto", "chroma", "matrix", "ann"] = "auto"
    matrix_max_items: int = 200_000
    ann_oversample: float = 2.0  # ANN pool = n / (share of items allowed) * this
    ann_max_fetch: int = 4000  # above this ANN pool the filter is selective: score allowed rows exactly

    def __post_init__(self) -> None:
        if self.fusion not in ("rrf", "weighted"):
            raise ValueError(f"fusion must be 'rrf' or 'weighted', got {self.fusion!r}")
        if self.dense_backend not in ("auto", "chroma", "matrix", "ann"):
            raise ValueError(f"dense_backend must be auto|chroma|matrix|ann, got {self.dense_backend!r}")
        if self.ann_oversample < 1.0 or self.ann_max_fetch < 1:
            raise ValueError("ann_oversample must be >= 1 and ann_max_fetch >= 1")
        if not 0.0 <= self.user_weight <= 1.0:
            raise ValueError(f"user_weight must be in [0, 1], got {self.user_weight}")


def _rank_among(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """1-based rank each ``x`` would have among ``values`` (1 + how many are strictly greater)."""
    ordered = np.sort(values)
    return 1 + (ordered.size - np.searchsorted(ordered, x, side="right"))


def _minmax(x: np.ndarray) -> np.ndarray:
    if x.size == 0:
        return x
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x) if hi - lo <= 1e-12 else (x - lo) / (hi - lo)


class HybridRetriever:
    """Dense + lexical candidate generation over one catalog, kept in sync with the store."""

    def __init__(
        self,
        store: ProductStore,
        catalog: Catalog,
        lexical: BM25Index | None = None,
        config: HybridConfig | None = None,
        popularity: Mapping[str, float] | None = None,
    ):
        self.store = store
        self.config = config or HybridConfig()
        self.popularity_map: dict[str, float] = dict(popularity or {})
        if not store.is_built:
            raise RuntimeError("the product store is empty; call store.build(catalog) first")
        self._set_catalog(catalog, lexical)

    # --- state ----------------------------------------------------------------------------------
    def _set_catalog(self, catalog: Catalog, lexical: BM25Index | None = None) -> None:
        self.catalog = catalog
        self.filter_index = FilterIndex(catalog)
        self.matrix = self.store.item_matrix(catalog)
        self.popularity = np.array([self.popularity_map.get(i, 0.0) for i in catalog.ids], dtype=np.float64)
        if lexical is not None and lexical.ids != catalog.ids:
            raise ValueError("the BM25 index was built for a different catalog (ids differ); rebuild it")
        self._lexical = lexical

    @property
    def lexical(self) -> BM25Index:
        if self._lexical is None:  # built lazily, and again after catalog edits
            self._lexical = BM25Index.from_catalog(self.catalog)
        return self._lexical

    @property
    def dense_backend(self) -> str:
        if self.config.dense_backend != "auto":
            return self.config.dense_backend
        return "matrix" if len(self.catalog) <= self.config.matrix_max_items else "ann"

    def upsert_items(self, items: Sequence[Item]) -> None:
        """Add/replace items: store, filters, matrix and BM25 (rebuilt lazily) see them next query."""
        items = list(items)
        self.store.upsert_items(items, self.popularity_map)
        new = {it.item_id: it for it in items}
        merged = [new.pop(it.item_id, it) for it in self.catalog] + list(new.values())
        self._set_catalog(Catalog(merged))

    def delete_items(self, item_ids: Sequence[str]) -> None:
        gone = set(item_ids)
        self.store.delete_items(list(gone))
        self._set_catalog(Catalog(it for it in self.catalog if it.item_id not in gone), None)

    def update_price_stock(self, item_id: str, price: Any = UNSET, in_stock: bool | None = None) -> None:
        """Change price/stock without re-embedding (``price=None`` removes it); BM25 is kept."""
        item = self.catalog[item_id]
        changes: dict[str, Any] = {}
        if price is not UNSET:
            changes["price"] = price
        if in_stock is not None:
            changes["in_stock"] = in_stock
        updated = dataclasses.replace(item, **changes)  # validates the new price
        self.store.update_price_stock(item_id, price=price, in_stock=in_stock)
        lexical = self._lexical
        self._set_catalog(Catalog(updated if it.item_id == item_id else it for it in self.catalog), lexical)

    def set_popularity(self, popularity: Mapping[str, float]) -> None:
        self.popularity_map = dict(popularity)
        self.popularity = np.array(
            [self.popularity_map.get(i, 0.0) for i in self.catalog.ids], dtype=np.float64
        )

    def as_retriever(
        self, constraints: Constraints | None = None, k: int = 10, **kwargs: Any
    ) -> HybridDocumentRetriever:
        """This search as a LangChain retriever: ``search(query, constraints, k)`` as ``Document``s.

        ``kwargs``: the ``BaseRetriever`` fields (``tags``, ``metadata``)."""
        return HybridDocumentRetriever(retriever=self, constraints=constraints, k=k, **kwargs)

    # --- search ---------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        constraints: Constraints | None = None,
        k: int = 10,
        user_vector: np.ndarray | None = None,
        extra_ids: Sequence[str] = (),
    ) -> list[Candidate]:
        """Up to ``k`` candidates satisfying ``constraints``, best first (fewer only if fewer match).

        ``extra_ids`` (e.g. the collaborative scorer's top items for this shopper) are added to
        the result when they satisfy the constraints, scored with the same fusion as if both
        lists had been long enough to reach them (their true dense and BM25 ranks): a candidate
        union, so a strong collaborative candidate is not lost for being outside the top ``k``.
        """
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        constraints = constraints or Constraints()
        mask = self.filter_index.mask(constraints)
        n_allowed = int(mask.sum())
        if n_allowed == 0:
            return []
        if is_vague(query):
            out = self._fallback(mask, constraints, k, user_vector)
            return out + self._extras(out, extra_ids, mask, None, "", user_vector)
        pool = min(n_allowed, max(self.config.pool_min, k * self.config.pool_factor))
        qv = self.store.embedder.encode_query(query)
        if user_vector is not None and self.config.user_weight > 0:
            w = self.config.user_weight
            qv = (1 - w) * qv + w * np.asarray(user_vector, dtype=np.float32)
            qv = qv / max(float(np.linalg.norm(qv)), 1e-12)
        dense = self._dense(qv, mask, constraints, pool)
        lexical = self.lexical.search(query, pool, mask)
        out = self._fuse(dense, lexical, k)
        return out + self._extras(out, extra_ids, mask, qv, query, None)

    def _extras(
        self,
        found: list[Candidate],
        extra_ids: Sequence[str],
        mask: np.ndarray,
        qv: np.ndarray | None,
        query: str,
        user_vector: np.ndarray | None,
    ) -> list[Candidate]:
        """Candidates for the allowed ``extra_ids`` not already ``found``, ranked among ALL allowed items."""
        have = {c.item_id for c in found}
        rows = [
            r
            for r in dict.fromkeys(self.catalog.index_of(i) for i in extra_ids if i in self.catalog)
            if mask[r] and self.catalog.at(r).item_id not in have
        ]
        if not rows:
            return []
        allowed = np.flatnonzero(mask)
        extra = np.array(rows)
        vec = qv if qv is not None else user_vector
        d_rank: np.ndarray | None = None
        d_score = np.full(len(rows), np.nan)
        if vec is not None:
            v = np.asarray(vec, dtype=np.float32)
            sims = np.einsum("ij,j->i", self.matrix[allowed], v)
            d_score = np.einsum("ij,j->i", self.matrix[extra], v).astype(np.float64)
            d_rank = _rank_among(sims, d_score.astype(np.float32))
        l_rank: np.ndarray | None = None
        l_score = np.zeros(len(rows))
        if query and qv is not None:
            scores = self.lexical.scores(query)
            l_score = scores[extra].astype(np.float64)
            l_rank = _rank_among(scores[allowed], scores[extra])
        cfg = self.config
        top_pop = float(self.popularity[allowed].max()) if allowed.size else 0.0
        out = []
        for j, r in enumerate(rows):
            c = Candidate(self.catalog.at(r).item_id, 0.0, source="extra")
            if d_rank is not None:
                c.dense_score, c.dense_rank = float(d_score[j]), int(d_rank[j])
            if l_rank is not None and l_score[j] > 0:
                c.lexical_score, c.lexical_rank = float(l_score[j]), int(l_rank[j])
            # The same relevance scale as the list it joins (see _fuse and _fallback); with
            # weighted fusion an item outside both pools is at or below both minima, i.e. 0.
            if qv is None:
                c.relevance = (
                    float(d_score[j])
                    if vec is not None
                    else (float(self.popularity[r]) / top_pop if top_pop > 0 else 0.0)
                )
            elif cfg.fusion == "rrf":
                c.relevance = sum(
                    w / (cfg.rrf_k + rk)
                    for w, rk in ((cfg.dense_weight, c.dense_rank), (cfg.lexical_weight, c.lexical_rank))
                    if rk is not None
                )
            out.append(c)
        return out

    def _dense(
        self, qv: np.ndarray, mask: np.ndarray, constraints: Constraints, n: int
    ) -> list[tuple[int, float]]:
        backend = self.dense_backend
        if backend == "chroma":
            hits = self.store.query(qv, n, constraints.to_chroma_where())
            return [(self.catalog.index_of(i), s) for i, s in hits if i in self.catalog]
        if backend == "ann":
            return self._dense_ann(qv, mask, n)
        # einsum, not BLAS: one query is a single gemv, and OpenBLAS's thread pool costs
        # 5-10x more than the arithmetic on a shared CPU. Scoring all rows then masking
        # avoids copying the allowed rows.
        sims = np.einsum("ij,j->i", self.matrix, qv.astype(np.float32))
        rows = np.flatnonzero(mask)
        sims = sims[rows]
        top, vals = top_k(sims, n)
        return [(int(rows[t]), float(v)) for t, v in zip(top, vals, strict=True)]

    def _dense_ann(self, qv: np.ndarray, mask: np.ndarray, n: int) -> list[tuple[int, float]]:
        """Top-``n`` allowed rows: post-filtered HNSW pool when the filter is broad, else exact."""
        rows = np.flatnonzero(mask)
        fetch = int(np.ceil(n * len(mask) / max(rows.size, 1) * self.config.ann_oversample))
        if fetch <= self.config.ann_max_fetch:
            got = []
            for i, s in self.store.query(qv, min(fetch, len(mask)), None):
                r = self.catalog.index_of(i) if i in self.catalog else None
                if r is not None and mask[r]:
                    got.append((r, s))
            if len(got) >= min(n, rows.size):
                return got[:n]
        # Exact. A selective filter copies its few rows; a broad one whose pool the filter
        # emptied ("not <the brand the query names>") scores every row and masks: copying
        # 99% of 1M rows took 2-5 s here, scoring all of them 60-70 ms (crossover ~20%).
        if rows.size * 5 > len(mask):
            sims = np.einsum("ij,j->i", self.matrix, qv.astype(np.float32))[rows]
        else:
            sims = np.einsum("ij,j->i", self.matrix[rows], qv.astype(np.float32))
        top, vals = top_k(sims, n)
        return [(int(rows[t]), float(v)) for t, v in zip(top, vals, strict=True)]

    def _fuse(
        self, dense: list[tuple[int, float]], lexical: list[tuple[int, float]], k: int
    ) -> list[Candidate]:
        cfg = self.config
        by_row: dict[int, Candidate] = {}
        for rank, (r, s) in enumerate(dense, 1):
            by_row[r] = Candidate(self.catalog.at(r).item_id, 0.0, dense_score=s, dense_rank=rank)
        for rank, (r, s) in enumerate(lexical, 1):
            c = by_row.get(r) or Candidate(self.catalog.at(r).item_id, 0.0)
            c.lexical_score, c.lexical_rank = s, rank
            by_row[r] = c
        cands = list(by_row.values())
        if cfg.fusion == "rrf":
            for c in cands:
                c.relevance = sum(
                    w / (cfg.rrf_k + rk)
                    for w, rk in ((cfg.dense_weight, c.dense_rank), (cfg.lexical_weight, c.lexical_rank))
                    if rk is not None
                )
        else:
            dn = _minmax(np.array([s for _, s in dense], dtype=np.float64))
            ln = _minmax(np.array([s for _, s in lexical], dtype=np.float64))
            for c in cands:
                d = dn[c.dense_rank - 1] if c.dense_rank else 0.0
                lx = ln[c.lexical_rank - 1] if c.lexical_rank else 0.0
                c.relevance = float(cfg.dense_weight * d + cfg.lexical_weight * lx)
        big = 1 << 30
        cands.sort(key=lambda c: (-c.relevance, c.dense_rank or big, c.lexical_rank or big, c.item_id))
        return cands[:k]

    def _fallback(
        self, mask: np.ndarray, constraints: Constraints, k: int, user_vector: np.ndarray | None
    ) -> list[Candidate]:
        if user_vector is not None:
            hits = self._dense(np.asarray(user_vector, dtype=np.float32), mask, constraints, k)
            return [
                Candidate(self.catalog.at(r).item_id, s, dense_score=s, dense_rank=i, source="profile")
                for i, (r, s) in enumerate(hits, 1)
            ]
        rows = np.flatnonzero(mask)
        order = rows[np.lexsort((rows, -self.popularity[rows]))][:k]
        top = float(self.popularity[order[0]]) if order.size else 0.0
        return [
            Candidate(
                self.catalog.at(int(r)).item_id,
                float(self.popularity[r]) / top if top > 0 else 0.0,
                source="popularity",
            )
            for r in order
        ]


class HybridDocumentRetriever(BaseRetriever):
    """A ``HybridRetriever`` as a LangChain ``BaseRetriever`` (``HybridRetriever.as_retriever``).

    ``invoke(query)`` returns up to ``k`` items satisfying ``constraints``, best first, one
    ``Document`` each: ``page_content`` is the item's title and key facts, ``id`` its item id,
    and ``metadata`` holds the catalog facts (``item_id``, ``title``, ``brand``, ``categories``,
    ``price``, ``rating``, ``in_stock``) and every field of its ``Candidate`` (``relevance``, the
    fused score; ``dense_score``/``lexical_score`` and their 1-based ranks, None where that half
    did not find it; ``source``). ``k`` and ``constraints`` (a ``Constraints`` or its
    ``to_dict()`` form) can also be given per call: ``invoke(query, k=3)``; per-call constraints
    replace the bound ones.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: HybridRetriever
    constraints: Constraints | None = None
    k: int = Field(default=10, gt=0)

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        constraints: Constraints | Mapping[str, Any] | None = None,
    ) -> list[Document]:
        if isinstance(constraints, Mapping):
            constraints = Constraints.from_dict(dict(constraints))
        found = self.retriever.search(
            query, self.constraints if constraints is None else constraints, self.k if k is None else k
        )
        catalog = self.retriever.catalog
        return [candidate_document(catalog[c.item_id], c) for c in found]


def candidate_document(item: Item, candidate: Candidate) -> Document:
    """One search result as a LangChain ``Document`` (see ``HybridDocumentRetriever``)."""
    facts = [item.title]
    if item.brand:
        facts.append(f"Brand: {item.brand}")
    if item.categories:
        facts.append(f"Category: {item.category_path}")
    if item.price is not None:
        facts.append(f"Price: {item.price:.2f}")
    if item.rating is not None:
        facts.append(f"Rating: {item.rating:g}")
    if not item.in_stock:
        facts.append("Out of stock")
    if item.description:
        facts.append(item.description[:300])
    metadata = {
        "item_id": item.item_id,
        "title": item.title,
        "brand": item.brand,
        "categories": list(item.categories),
        "price": item.price,
        "rating": item.rating,
        "in_stock": item.in_stock,
        "image": item.image,  # an http(s) URL or a local path (``Item.image``)
        **dataclasses.asdict(candidate),
    }
    return Document(id=item.item_id, page_content="\n".join(facts), metadata=metadata)
