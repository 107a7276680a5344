"""Content hashes that key caches: equal hash, reusable artefact."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

import pandas as pd

from retrieval.data.schema import Dataset, Item
from retrieval.filters import chroma_metadata


def text_fingerprint(items: Iterable[Item]) -> str:
    """Hash of ids + embedded texts in order: the embedding cache key."""
    h = hashlib.sha1()
    for it in items:
        h.update(it.item_id.encode())
        h.update(b"\0")
        h.update(it.text().encode())
        h.update(b"\1")
    return h.hexdigest()[:16]


def catalog_fingerprint(items: Iterable[Item], popularity: Mapping[str, float] | None = None) -> str:
    """Hash of texts AND filterable metadata: equal means the collection needs no rebuild."""
    h = hashlib.sha1()
    for it in items:
        pop = None if popularity is None else popularity.get(it.item_id)
        h.update(it.text().encode())
        h.update(json.dumps(chroma_metadata(it, pop), sort_keys=True).encode())
    return h.hexdigest()[:16]


def dataset_fingerprint(dataset: Dataset) -> str:
    """sha256 (hex) over the catalog (ids, embedded texts, prices, stock, brands, categories) and the
    interaction log (user, item, timestamp, order): equal means every artefact built from it is
    reusable and a generated data set came from the same source."""
    h = hashlib.sha256()
    h.update(text_fingerprint(dataset.catalog).encode())
    for it in dataset.catalog:
        h.update(f"{it.item_id}|{it.price}|{it.in_stock}|{it.brand}|{'>'.join(it.categories)}\n".encode())
    frame = dataset.interactions.frame[["user_id", "item_id", "timestamp", "order"]]
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()
