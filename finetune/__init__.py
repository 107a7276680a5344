"""Fine-tuning: LoRA data generation, training, evaluation, LLM reranking."""

import os as _os
import sys as _sys

if "torch" not in _sys.modules:  # before torch loads: see llm/models.py (OpenMP spin-wait cliff)
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
