"""Chroma-backed product store with atomic rebuilds (user profiles: ``retrieval.user_store``).

Products live in a versioned physical collection (``products-minilm-v<ms>``);
an alias record names the one that serves. ``rebuild`` fills a NEW collection
and only then swaps the alias (temp file + ``os.replace`` locally, collection
metadata on a server), so a crash mid-rebuild leaves the old one serving.
Incremental upserts/deletes/price changes touch the serving collection only.

The item vectors are also kept as a numpy matrix (for exact search, MMR, user
profiles, model initialisation) and cached on disk by embedder + catalog text
fingerprint, so a restart never re-embeds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
from tqdm.auto import tqdm

from retrieval.data.schema import Catalog, Item
from retrieval.embedders import DEFAULT_EMBEDDER, ChromaEmbeddingFunction, Embedder, get_embedder
from retrieval.files import atomic_open, atomic_write
from retrieval.filters import META_HAS_PRICE, META_IN_STOCK, META_PRICE, chroma_metadata
from retrieval.fingerprint import catalog_fingerprint, text_fingerprint

ALIAS_FILE = "aliases.json"
META_TEXT_HASH = "text_hash"  # metadata key: hash of the embedded text (see _upsert_raw)
CHROMA_PAGE = 5000
UNSET: Any = object()  # "argument not given" (None is a meaningful price: no price)


@dataclass
class StoreConfig:
    """Where the store lives. ``server_url`` switches from an embedded to a client/server Chroma."""

    path: str | Path = "data/store"  # embedded Chroma files, alias file and embedding cache
    server_url: str | None = None  # e.g. "http://localhost:8000": use chromadb.HttpClient
    tenant: str | None = None
    database: str | None = None
    collection: str = "products"  # logical name; physical collections get a version suffix
    embedder: str = DEFAULT_EMBEDDER
    # Items per upsert during a build (capped by the client's max batch size): Chroma's
    # per-call overhead dominates small batches (256 -> 4096 doubles build throughput).
    batch_size: int = 4096
    profile_decay: float = 0.8  # weight kept by older events each time a user interacts again
    cache_dir: str | Path | None = None  # default: <path>/embedding-cache

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_-]{1,62}", self.collection):
            raise ValueError(f"collection name {self.collection!r} must be 2-63 chars of [a-zA-Z0-9_-]")
        if not 0.0 < self.profile_decay <= 1.0:
            raise ValueError(f"profile_decay must be in (0, 1], got {self.profile_decay}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")

    @classmethod
    def from_url(cls, url: str | None, **kwargs: Any) -> StoreConfig:
        """Embedded when ``url`` is empty, else a server config from ``http(s)://host:port`` with
        optional ``?tenant=T&database=D`` (e.g. from ``$SHOPASSIST_CHROMA_URL``)."""
        if not url:
            return cls(**kwargs)
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"Chroma server URL must look like http://host:8000, got {url!r}")
        query = parse_qs(parsed.query)
        unknown = set(query) - {"tenant", "database"}
        if unknown:
            raise ValueError(f"unknown Chroma URL parameters {sorted(unknown)} (allowed: tenant, database)")
        kwargs.setdefault("tenant", query.get("tenant", [None])[0])
        kwargs.setdefault("database", query.get("database", [None])[0])
        return cls(server_url=parsed._replace(query="", fragment="").geturl(), **kwargs)


@dataclass
class BuildStats:
    collection: str
    items: int
    seconds: float
    embed_seconds: float
    embedded: int  # texts actually run through the model (the rest came from caches)

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("inf")


def name_slug(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "_", name).strip("_")[:40] or "emb"


def _text_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class _AliasFile:
    """Logical -> physical collection names in one JSON file, replaced atomically."""

    def __init__(self, path: Path):
        self.path = path

    def get(self, logical: str) -> str | None:
        if not self.path.exists():
            return None
        return json.loads(self.path.read_text()).get(logical)

    def set(self, logical: str, physical: str) -> None:
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        data[logical] = physical
        atomic_write(self.path, json.dumps(data, indent=1))


class _AliasCollection:
    """Server mode: the pointer is the metadata of a tiny collection (one SQL write on the server)."""

    def __init__(self, client: Any, name: str):
        self.client = client
        self.col = client.get_or_create_collection(name, embedding_function=None)

    def get(self, logical: str) -> str | None:
        self.col = self.client.get_collection(self.col.name, embedding_function=None)
        return (self.col.metadata or {}).get(f"alias:{logical}")

    def set(self, logical: str, physical: str) -> None:
        meta = dict(self.col.metadata or {})
        meta[f"alias:{logical}"] = physical
        self.col.modify(metadata=meta)


def _http_client(url: str, kwargs: dict[str, Any]) -> Any:
    """``chromadb.HttpClient``, creating the configured database on first use (not the tenant),
    with an error that names the URL when no server answers."""
    import chromadb
    from chromadb.errors import NotFoundError

    try:
        return chromadb.HttpClient(**kwargs)
    except NotFoundError:
        if "database" not in kwargs:
            raise
        admin = chromadb.AdminClient(
            kwargs["settings"].model_copy(
                update={
                    "chroma_api_impl": "chromadb.api.fastapi.FastAPI",
                    "chroma_server_host": kwargs["host"],
                    "chroma_server_http_port": kwargs["port"],
                    "chroma_server_ssl_enabled": kwargs["ssl"],
                }
            )
        )
        admin.create_database(kwargs["database"], tenant=kwargs.get("tenant", "default_tenant"))
        return chromadb.HttpClient(**kwargs)
    except ValueError as e:
        raise ConnectionError(
            f"no Chroma server answers at {url} ({e}); start one with "
            "`chroma run --path <dir> --host 127.0.0.1 --port <port>` or leave server_url unset"
        ) from e


class ProductStore:
    """Product vectors + metadata in Chroma (``UserHistoryStore`` keeps user profiles beside them)."""

    def __init__(self, config: StoreConfig | None = None, embedder: Embedder | str | None = None):
        import chromadb
        from chromadb.config import Settings

        self.config = config or StoreConfig()
        self.embedder = get_embedder(embedder if embedder is not None else self.config.embedder)
        self.root = Path(self.config.path)
        self.root.mkdir(parents=True, exist_ok=True)
        self.cache_dir = Path(self.config.cache_dir or self.root / "embedding-cache")
        settings = Settings(anonymized_telemetry=False)
        if self.config.server_url:
            url = urlparse(self.config.server_url)
            kwargs: dict[str, Any] = {
                "host": url.hostname or "localhost",
                "port": url.port or (443 if url.scheme == "https" else 8000),
                "ssl": url.scheme == "https",
                "settings": settings,
            }
            if self.config.tenant:
                kwargs["tenant"] = self.config.tenant
            if self.config.database:
                kwargs["database"] = self.config.database
            self.client = _http_client(self.config.server_url, kwargs)
            self._alias: _AliasFile | _AliasCollection = _AliasCollection(
                self.client, f"{self.config.collection}-alias"
            )
        else:
            self.client = chromadb.PersistentClient(path=str(self.root / "chroma"), settings=settings)
            self._alias = _AliasFile(self.root / ALIAS_FILE)
        self.ef = ChromaEmbeddingFunction(self.embedder)
        self._prefix = f"{self.config.collection}-{name_slug(self.embedder.name)}-v"
        self._collection: Any = None
        # In-memory copy of the serving collection's vectors (loaded lazily).
        self._ids: list[str] | None = None
        self._row: dict[str, int] = {}
        self._matrix = np.zeros((0, self.embedder.dim), dtype=np.float32)
        self._hashes: dict[str, str] = {}
        self.refresh()

    # --- collections -------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the alias (another process may have rebuilt)."""
        name = self._alias.get(self.config.collection)
        if name is None:
            self._collection = None
        elif self._collection is None or self._collection.name != name:
            self._collection = self.client.get_collection(name, embedding_function=self.ef)
            self._ids = None

    @property
    def collection_name(self) -> str | None:
        return None if self._collection is None else self._collection.name

    @property
    def collection(self) -> Any:
        if self._collection is None:
            raise RuntimeError(
                f"store at {self.root} has no {self.config.collection!r} collection yet; call build(catalog)"
            )
        return self._collection

    @property
    def is_built(self) -> bool:
        return self._collection is not None

    def count(self) -> int:
        return self.collection.count()

    def _new_collection(self, fingerprint: str) -> Any:
        name = f"{self._prefix}{time.time_ns() // 1_000_000}"
        return self.client.create_collection(
            name,
            embedding_function=self.ef,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedder": self.embedder.name, "fingerprint": fingerprint, "built_at": time.time()},
        )

    def _mark_modified(self) -> None:
        meta = dict(self.collection.metadata or {})
        if meta.get("fingerprint"):
            meta["fingerprint"] = ""
            self.collection.modify(metadata=meta)

    # --- building ------------------------------------------------------------------------
    def needs_rebuild(self, catalog: Catalog, popularity: Mapping[str, float] | None = None) -> bool:
        if self._collection is None:
            return True
        fp = (self._collection.metadata or {}).get("fingerprint")
        return fp != catalog_fingerprint(catalog, popularity)

    def ensure_built(
        self, catalog: Catalog, popularity: Mapping[str, float] | None = None, show_progress: bool = True
    ) -> BuildStats | None:
        """Build only when the serving collection does not hold exactly this catalog."""
        if not self.needs_rebuild(catalog, popularity):
            return None
        return self.rebuild(catalog, popularity, show_progress=show_progress)

    def build(self, catalog: Catalog, popularity: Mapping[str, float] | None = None, **kw: Any) -> BuildStats:
        return self.rebuild(catalog, popularity, **kw)

    def rebuild(
        self,
        catalog: Catalog,
        popularity: Mapping[str, float] | None = None,
        show_progress: bool = True,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> BuildStats:
        """Write the catalog to a NEW collection, then swap the alias; the old one serves until then.

        ``on_batch(done, total)`` is called after each upserted batch (progress
        reporting; an exception raised there aborts the build harmlessly).
        """
        if len(catalog) == 0:
            raise ValueError("cannot build a product store from an empty catalog")
        t0 = time.perf_counter()
        matrix, embedded, embed_s = self._catalog_vectors(catalog, show_progress)
        new = self._new_collection(catalog_fingerprint(catalog, popularity))
        try:
            bs = max(1, min(self.config.batch_size, self.client.get_max_batch_size()))
            starts = list(range(0, len(catalog), bs))
            items = list(catalog)
            for done, s in enumerate(tqdm(starts, desc="chroma upsert", disable=not show_progress), 1):
                batch = items[s : s + bs]
                self._upsert_raw(new, batch, matrix[s : s + bs], popularity)
                if on_batch is not None:
                    on_batch(done, len(starts))
            if new.count() != len(catalog):
                raise RuntimeError(
                    f"collection {new.name} holds {new.count()} items, expected {len(catalog)}"
                )
        except BaseException:
            self._drop(new.name)
            raise
        old = self.collection_name
        self._alias.set(self.config.collection, new.name)
        self._collection = new
        self._set_state(catalog.ids, matrix, {it.item_id: _text_hash(it.text()) for it in catalog})
        self._drop_stale(keep=new.name, also=old)
        return BuildStats(new.name, len(catalog), time.perf_counter() - t0, embed_s, embedded)

    def _drop(self, name: str) -> None:
        # Best effort: an orphan left here is dropped by the next rebuild.
        with contextlib.suppress(Exception):
            self.client.delete_collection(name)

    def _drop_stale(self, keep: str, also: str | None) -> None:
        for col in self.client.list_collections():
            name = col if isinstance(col, str) else col.name
            if name != keep and (name == also or name.startswith(self._prefix)):
                self._drop(name)

    @staticmethod
    def _upsert_raw(
        col: Any, items: Sequence[Item], vectors: np.ndarray, popularity: Mapping[str, float] | None
    ) -> None:
        # No documents: the catalog owns the texts, and Chroma full-text-indexes every
        # document (a quarter of the upsert CPU). A hash of the text is enough to know,
        # on reopening, which stored vectors are still current.
        col.upsert(
            ids=[it.item_id for it in items],
            embeddings=np.asarray(vectors, dtype=np.float32),
            metadatas=[
                {
                    **chroma_metadata(it, None if popularity is None else popularity.get(it.item_id)),
                    META_TEXT_HASH: _text_hash(it.text()),
                }
                for it in items
            ],
        )

    # --- embedding matrix ------------------------------------------------------------------
    def _cache_path(self, fingerprint: str) -> Path:
        return self.cache_dir / f"emb-{name_slug(self.embedder.name)}-{fingerprint}.npy"

    def _catalog_vectors(self, catalog: Catalog, show_progress: bool) -> tuple[np.ndarray, int, float]:
        """Catalog-order vectors: disk cache, else reuse unchanged texts from the store, else embed."""
        path = self._cache_path(text_fingerprint(catalog))
        if path.exists():
            m = np.load(path)
            if m.shape == (len(catalog), self.embedder.dim):
                return m, 0, 0.0
        matrix = np.zeros((len(catalog), self.embedder.dim), dtype=np.float32)
        todo: list[int] = []
        known = self._state_loaded_or_empty()
        texts = [it.text() for it in catalog]
        for i, it in enumerate(catalog):
            r = self._row.get(it.item_id) if known else None
            if r is not None and self._hashes.get(it.item_id) == _text_hash(texts[i]):
                matrix[i] = self._matrix[r]
            else:
                todo.append(i)
        t0 = time.perf_counter()
        if todo:
            # Each distinct text is embedded once (variants and re-listed items share texts).
            unique: dict[str, int] = {}
            slots = [unique.setdefault(texts[i], len(unique)) for i in todo]
            vecs = self.embedder.encode(list(unique), batch_size=64, show_progress=show_progress)
            matrix[todo] = vecs[slots]
        embed_s = time.perf_counter() - t0
        with atomic_open(path) as f:
            np.save(f, matrix)
        return matrix, len(unique) if todo else 0, embed_s

    def _state_loaded_or_empty(self) -> bool:
        if self._collection is None:
            return False
        self._ensure_state()
        return True

    def _set_state(self, ids: list[str], matrix: np.ndarray, hashes: dict[str, str]) -> None:
        self._ids = list(ids)
        self._row = {i: r for r, i in enumerate(self._ids)}
        self._matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self._hashes = dict(hashes)

    def _ensure_state(self) -> None:
        if self._ids is not None:
            return
        ids: list[str] = []
        vecs: list[np.ndarray] = []
        hashes: dict[str, str] = {}
        total = self.collection.count()
        for offset in range(0, total, CHROMA_PAGE):
            page = self.collection.get(
                include=["embeddings", "metadatas", "documents"], limit=CHROMA_PAGE, offset=offset
            )
            ids.extend(page["ids"])
            vecs.append(np.asarray(page["embeddings"], dtype=np.float32))
            for i, m, d in zip(page["ids"], page["metadatas"], page["documents"], strict=True):
                # stores written before the hash was kept in metadata have the text as document
                hashes[i] = (m or {}).get(META_TEXT_HASH) or _text_hash(d or "")
        matrix = np.concatenate(vecs) if vecs else np.zeros((0, self.embedder.dim), dtype=np.float32)
        self._set_state(ids, matrix, hashes)

    def vectors(self, item_ids: Sequence[str]) -> np.ndarray:
        """Stored unit vectors for ``item_ids`` (KeyError names the first unknown id)."""
        self._ensure_state()
        missing = [i for i in item_ids if i not in self._row]
        if missing:
            raise KeyError(f"items not in the store: {missing[:5]}")
        return self._matrix[[self._row[i] for i in item_ids]]

    def has_item(self, item_id: str) -> bool:
        self._ensure_state()
        return item_id in self._row

    def item_matrix(self, catalog: Catalog) -> np.ndarray:
        """Vectors in catalog row order (for MMR, profiles, SASRec init); embeds only unseen texts."""
        self._ensure_state()
        try:
            idx = [self._row[i] for i in catalog.ids]
            if all(self._hashes.get(it.item_id) == _text_hash(it.text()) for it in catalog):
                return self._matrix[idx]
        except KeyError:
            pass
        return self._catalog_vectors(catalog, show_progress=False)[0]

    # --- incremental updates ------------------------------------------------------------------
    def upsert_items(self, items: Sequence[Item], popularity: Mapping[str, float] | None = None) -> None:
        """Add or replace items in the serving collection (only their texts are embedded)."""
        items = list(items)
        if not items:
            return
        ids = [it.item_id for it in items]
        if len(set(ids)) != len(ids):
            raise ValueError("upsert_items got duplicate item ids")
        self._ensure_state()
        vecs = self.embedder.encode([it.text() for it in items])
        self._upsert_raw(self.collection, items, vecs, popularity)
        self._mark_modified()
        assert self._ids is not None
        new_rows = []
        for it, v in zip(items, vecs, strict=True):
            r = self._row.get(it.item_id)
            if r is None:
                self._row[it.item_id] = len(self._ids)
                self._ids.append(it.item_id)
                new_rows.append(v)
            else:
                self._matrix[r] = v
            self._hashes[it.item_id] = _text_hash(it.text())
        if new_rows:
            self._matrix = np.concatenate([self._matrix, np.stack(new_rows)])

    def delete_items(self, item_ids: Sequence[str]) -> None:
        item_ids = list(dict.fromkeys(item_ids))
        if not item_ids:
            return
        self._ensure_state()
        self.collection.delete(ids=item_ids)
        self._mark_modified()
        gone = set(item_ids)
        keep = [r for r, i in enumerate(self._ids or []) if i not in gone]
        ids = [self._ids[r] for r in keep] if self._ids else []
        self._set_state(ids, self._matrix[keep], {i: self._hashes[i] for i in ids if i in self._hashes})

    def update_price_stock(
        self, item_id: str, price: float | None = UNSET, in_stock: bool | None = None
    ) -> None:
        """Change price and/or stock without re-embedding (``price=None`` removes the price)."""
        got = self.collection.get(ids=[item_id], include=["metadatas"])
        if not got["ids"]:
            raise KeyError(f"item {item_id!r} is not in the store")
        meta = dict(got["metadatas"][0] or {})
        if price is not UNSET:
            if price is None:
                meta[META_HAS_PRICE] = False
                meta[META_PRICE] = None  # Chroma deletes a key updated to None
            else:
                if not isinstance(price, int | float) or not np.isfinite(price) or price < 0:
                    raise ValueError(f"price must be a finite number >= 0 or None, got {price!r}")
                meta[META_HAS_PRICE] = True
                meta[META_PRICE] = float(price)
        if in_stock is not None:
            meta[META_IN_STOCK] = bool(in_stock)
        self.collection.update(ids=[item_id], metadatas=[meta])
        self._mark_modified()

    def metadata(self, item_id: str) -> dict[str, Any]:
        got = self.collection.get(ids=[item_id], include=["metadatas"])
        if not got["ids"]:
            raise KeyError(f"item {item_id!r} is not in the store")
        return dict(got["metadatas"][0] or {})

    # --- search ----------------------------------------------------------------------------------
    def query(
        self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None
    ) -> list[tuple[str, float]]:
        """Top-``k`` (item_id, cosine similarity) among items passing ``where`` (filtered inside Chroma)."""
        if k <= 0:
            return []
        res = self.collection.query(
            query_embeddings=np.asarray(vector, dtype=np.float32)[None, :],
            n_results=k,
            where=where,
            include=["distances"],
        )
        return [(i, 1.0 - float(d)) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)]
