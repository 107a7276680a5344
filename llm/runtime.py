"""Process set-up in one call, ``configure()``, made by each entry point (``app.py``, ``python -m
finetune``, ``python -m llm.openai_server``, the benches) before anything heavy is imported.

It sets the OpenMP wait policy and torch's thread count, offline model loading, telemetry off,
and, when asked, local-only mode (``llm.local_only``). Importing a package of this project never
changes the process environment; a Python API user who wants the same set-up calls
``configure()`` first.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

from llm.local_only import enable_local_only
from llm.local_only import local_only as local_only_requested

__all__ = ["OFFLINE", "OPENMP", "TELEMETRY_OFF", "RuntimeSettings", "configure", "default_threads", "set_torch_threads"]

_ENV_THREADS = "SHOPASSIST_THREADS"
_DEFAULT_THREADS = 2  # measured: torch generation on this class of box is fastest with 1-2 threads

OPENMP = {"OMP_WAIT_POLICY": "PASSIVE"}
"""Measured on a shared 2-core box: with OpenMP's default spin-waiting, 2 torch threads generated
4-8x slower than 1 thread (and training ran 3-5x slower) whenever other processes were busy;
passive waiting removes the cliff. libgomp reads it once, when torch loads it."""
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
"""Models load from the packaged weights and local caches only; nothing is fetched from a hub."""
TELEMETRY_OFF = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",  # chromadb
}
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class RuntimeSettings:
    """What one ``configure()`` call did."""

    env_set: dict[str, str] = field(default_factory=dict)
    """The variables it set (the others were already in the environment and kept)."""
    threads: int | None = None
    """torch's intra-op thread count, when it set one."""
    local_only: bool = False
    openmp_in_time: bool = True
    """False when torch was loaded before the OpenMP policy was in the environment (then it only
    reaches child processes)."""


def default_threads() -> int:
    """$SHOPASSIST_THREADS, else 2 (small-model generation on CPU is memory-bound; more threads do not help)."""
    env = os.environ.get(_ENV_THREADS)
    if env:
        try:
            n = int(env)
        except ValueError as exc:
            raise ValueError(f"${_ENV_THREADS} must be a positive integer, got {env!r}") from exc
        if n < 1:
            raise ValueError(f"${_ENV_THREADS} must be a positive integer, got {env!r}")
        return n
    return _DEFAULT_THREADS


def set_torch_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count (default: `default_threads()`); returns the value used."""
    import torch  # heavy: only once threads are asked for, after configure() set the OpenMP policy

    n = default_threads() if n is None else int(n)
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    torch.set_num_threads(n)
    return n


def configure(
    threads: int | None = None,
    offline: bool = True,
    local_only: bool | None = None,
    telemetry: bool = False,
) -> RuntimeSettings:
    """Set up this process (and the children it starts) for the assistant; idempotent.

    - the OpenMP wait policy (``OPENMP``), which must be in the environment before torch loads:
      call this first in ``main``, before importing modules that import torch;
    - ``threads``: torch's intra-op thread count (None: left to the model loaders, which use
      ``default_threads()``);
    - ``offline``: the ``OFFLINE`` switches; ``telemetry=False``: the ``TELEMETRY_OFF`` switches;
    - ``local_only``: True turns local-only mode on (it forces its switches and installs the
      socket guard), None does so when ``$SHOPASSIST_LOCAL_ONLY`` asks for it, False leaves it off.

    A variable already in the environment is kept (the user's explicit choice wins); only
    local-only mode overrides, because it is a guarantee.
    """
    openmp_in_time = "torch" not in sys.modules or "OMP_WAIT_POLICY" in os.environ
    wanted = dict(OPENMP) | (OFFLINE if offline else {}) | ({} if telemetry else TELEMETRY_OFF)
    env_set = {k: v for k, v in wanted.items() if k not in os.environ}
    os.environ.update(env_set)
    on = local_only_requested() if local_only is None else local_only
    if on:
        enable_local_only()
    _sync_loaded_hub()
    if not openmp_in_time:
        logging.getLogger(__name__).warning(
            "torch was imported before llm.runtime.configure(): OMP_WAIT_POLICY=PASSIVE reaches only "
            "child processes (2 threads can run several times slower on a busy CPU)"
        )
    n = set_torch_threads(threads) if threads is not None else None
    return RuntimeSettings(env_set=env_set, threads=n, local_only=on, openmp_in_time=openmp_in_time)


def _sync_loaded_hub() -> None:
    """huggingface_hub reads its switches once, at import (gradio imports it early): an
    already-imported hub gets the values the environment has now."""
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is None:
        return
    if hasattr(hub, "HF_HUB_OFFLINE"):
        offline = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
        hub.HF_HUB_OFFLINE = offline.strip().lower() in _TRUE
    if hasattr(hub, "HF_HUB_DISABLE_TELEMETRY") and os.environ.get("HF_HUB_DISABLE_TELEMETRY", "").lower() in _TRUE:
        hub.HF_HUB_DISABLE_TELEMETRY = True
