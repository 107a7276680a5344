"""Retrieval and ranking: data, embeddings, Chroma + BM25 hybrid search, collaborative scorers, fusion."""

from __future__ import annotations

import os as _os
import sys as _sys

if "torch" not in _sys.modules:  # before torch loads: see llm/models.py (OpenMP spin-wait cliff)
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
