"""Embedders: unit-norm float32 output, offline loading, the Chroma adapter contract."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from chromadb.utils.embedding_functions import config_to_embedding_function, known_embedding_functions

from retrieval.embedders import ChromaEmbeddingFunction, get_embedder


@pytest.fixture(scope="module")
def minilm():
    import torch

    torch.set_num_threads(2)
    return get_embedder("minilm")


def test_minilm_shape_dtype_norm(minilm):
    x = minilm.encode(["red matte lipstick", "anti-dandruff shampoo", "lip colour"])
    assert x.shape == (3, minilm.dim) == (3, 384)
    assert x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    # semantics, not just shapes: lipstick is nearer "lip colour" than shampoo
    assert x[0] @ x[2] > x[0] @ x[1]


def test_encode_is_deterministic_and_cached(minilm):
    a = minilm.encode(["vitamin c serum"])[0]
    q1 = minilm.encode_query("vitamin c serum")
    assert minilm.encode_query("vitamin c serum") is q1  # memoised
    np.testing.assert_allclose(a, q1, atol=1e-6)


def test_encode_rejects_bad_input(minilm):
    with pytest.raises(TypeError, match="list of texts"):
        minilm.encode("a single string")
    with pytest.raises(TypeError, match="strings"):
        minilm.encode(["ok", 3])
    assert minilm.encode([]).shape == (0, 384)


def test_registry_shares_instances(minilm):
    assert get_embedder("minilm") is minilm
    assert get_embedder(minilm) is minilm


def test_unknown_model_fails_clearly_without_downloading():
    with pytest.raises((ValueError, OSError)):
        get_embedder("no-such-org/no-such-model-xyz").encode(["x"])


def test_chroma_adapter_follows_the_protocol(minilm):
    ef = ChromaEmbeddingFunction(minilm)
    assert not ef.is_legacy()
    assert known_embedding_functions[ChromaEmbeddingFunction.name()] is ChromaEmbeddingFunction
    rebuilt = config_to_embedding_function({"name": ef.name(), "config": ef.get_config()})
    assert isinstance(rebuilt, ChromaEmbeddingFunction) and rebuilt.get_config() == ef.get_config()
    out = ef(["matte lipstick", "shampoo"])
    assert len(out) == 2 and np.asarray(out[0]).shape == (384,)
    np.testing.assert_allclose(np.asarray(out[0]), minilm.encode(["matte lipstick"])[0], atol=1e-5)
    assert ef.default_space() == "cosine"
    with pytest.raises(ValueError, match="rebuild"):
        ef.validate_config_update({"embedder": "minilm"}, {"embedder": "use-multilingual"})


def test_use_multilingual_handles_chinese():
    use = get_embedder("use-multilingual")
    x = use.encode(["口红", "matte red lipstick", "anti-dandruff shampoo"])
    assert x.shape == (3, 512) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2]  # "lipstick" in Chinese is nearer lipstick than shampoo
