"""User-history embeddings: one recency-weighted profile vector per user, in its own Chroma
collection beside the product store (same client, embedder and persistence).

A profile is personal data, so forgetting a user also purges Chroma's own copies (write-ahead
log, freed sqlite pages); see ``UserHistoryStore.delete``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from retrieval.vector_store import ProductStore, name_slug

# Profile vectors are personal data: their collection flushes its vector index on every write so
# Chroma purges its write-ahead log (which holds ids and vectors) right away, not every 1,000
# writes. Profiles change on likes only, so the extra write (~10 ms) is cheap.
_USERS_HNSW = {"sync_threshold": 1, "batch_size": 1}
# A record written and deleted after a forget so the log's one kept op is not the forgotten user's.
_FLUSH_ID = "__purge-flush__"


class UserHistoryStore:
    """Profile vectors of users' histories, built from ``products``' item vectors."""

    def __init__(self, products: ProductStore):
        self.products = products
        self._collection: Any = None

    @property
    def collection(self) -> Any:
        if self._collection is None:
            p = self.products
            users = p.client.get_or_create_collection(
                f"{p.config.collection}-users-{name_slug(p.embedder.name)}",
                embedding_function=p.ef,
                configuration={"hnsw": {"space": "cosine", **_USERS_HNSW}},
            )
            if ((users.configuration or {}).get("hnsw") or {}).get("sync_threshold") != 1:
                # A store from before: switch it before this process first touches the
                # collection (Chroma reads the setting when it loads the collection's index).
                users.modify(configuration={"hnsw": dict(_USERS_HNSW)})
            self._collection = users
        return self._collection

    def update(self, user_id: str, item_ids: Sequence[str], timestamp: float | None = None) -> np.ndarray:
        """Fold new interactions (chronological) into the user's recency-weighted mean vector.

        profile = sum_i decay^(age_i) e_i / sum_i decay^(age_i), updated in O(new
        events) from the stored mean, its norm and the total weight.
        """
        known = [i for i in item_ids if self.products.has_item(i)]
        got = self.collection.get(ids=[user_id], include=["embeddings", "metadatas"])
        if got["ids"]:
            meta = dict(got["metadatas"][0])
            mean = np.asarray(got["embeddings"][0], dtype=np.float64) * float(meta["norm"])
            weight, n = float(meta["weight"]), int(meta["n_events"])
        else:
            if not known:
                raise ValueError(f"none of {list(item_ids)[:5]} is in the store; cannot start a profile")
            mean, weight, n = np.zeros(self.products.embedder.dim), 0.0, 0
        decay = self.products.config.profile_decay
        for v in self.products.vectors(known).astype(np.float64):
            total = decay * weight + 1.0
            mean = (decay * weight * mean + v) / total
            weight, n = total, n + 1
        norm = float(np.linalg.norm(mean))
        if norm == 0.0:
            raise ValueError(f"profile of user {user_id!r} has zero norm")
        unit = (mean / norm).astype(np.float32)
        meta = {"norm": norm, "weight": weight, "n_events": n, "updated_at": timestamp or time.time()}
        self.collection.upsert(ids=[user_id], embeddings=unit[None, :], metadatas=[meta])
        return unit

    def vector(self, user_id: str) -> np.ndarray | None:
        got = self.collection.get(ids=[user_id], include=["embeddings"])
        if not got["ids"]:
            return None
        return np.asarray(got["embeddings"][0], dtype=np.float32)

    def profile(self, user_id: str) -> dict[str, Any] | None:
        got = self.collection.get(ids=[user_id], include=["metadatas"])
        return dict(got["metadatas"][0]) if got["ids"] else None

    def delete(self, user_id: str) -> bool:
        """Forget a user's profile vector, including Chroma's own copies; True when one existed.

        Chroma logs every write (id + vector) in its write-ahead table ``embeddings_queue`` and
        purges it only once the collection's vector index is flushed (every ``sync_threshold``
        writes; every write for the users collection), and deleted sqlite rows linger in free
        pages. So the delete is followed by ``purge_log``; afterwards no file under the store
        holds the id.
        """
        existed = bool(self.collection.get(ids=[user_id])["ids"])
        if existed:
            self.collection.delete(ids=[user_id])
            self.purge_log()
        return existed

    def purge_log(self) -> None:
        """Make Chroma purge the users collection's write-ahead log, then VACUUM (embedded store).

        The collection flushes (and so purges its log) on every write (``_USERS_HNSW``) but
        keeps the latest op; a sentinel write + delete after a forget makes that op the
        sentinel's. VACUUM rewrites ``chroma.sqlite3`` without the freed pages; it waits up to
        30 s for other connections' locks, and readers in other processes carry on after it.
        """
        unit = np.zeros((1, self.products.embedder.dim), dtype=np.float32)
        unit[0, 0] = 1.0
        self.collection.upsert(ids=[_FLUSH_ID], embeddings=unit, metadatas=[{"sentinel": True}])
        self.collection.delete(ids=[_FLUSH_ID])
        if not self.products.config.server_url:  # a server's files are its operator's to vacuum
            import sqlite3

            path = self.products.root / "chroma" / "chroma.sqlite3"
            con = sqlite3.connect(path, timeout=30, isolation_level=None)
            try:
                con.execute("VACUUM")
            finally:
                con.close()
