"""LLM listwise reranker (LlamaRec-style letter verbalizer) for a CF scorer's top candidates.

One forward pass per prompt: candidates are labelled A-T, and the next-token log-probs of
those letters are the scores, so 20 candidates cost one prefill instead of 20 generations.
The prompt is ``llm.listwise.listwise_messages``, the exact format the LoRA adapter is
trained on.

In the product: ``ShoppingAssistant.from_dataset(..., rerank="llm", reranker_adapter=...)``
re-ranks the fused top-20 before diversity (``ShoppingAssistant._llm_rerank``); in the ranking
bench: ``python -m bench.ranking --llm-rerank MODEL_OR_ADAPTER``. By hand::

    from llm.reranker import LLMReranker
    reranker = LLMReranker("qwen2.5-coder-0.5b", adapter_dir="runs/beauty/adapter")  # or None
    top = scorer.recommend(history, n=20)                        # CF top-20 (ids, scores)
    scores = reranker.rerank(history, [i for i, _ in top], catalog)
    reordered = [top[k][0] for k in top_k(scores, len(scores))[0]]

``LLMReranker`` shares the process-wide model cache of ``llm.chat_model`` (same model +
adapter = same weights in memory as the chat model), so switching it on costs no extra load.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from llm.chat_model import get_loaded_llm
from llm.choices import score_choices_batch
from llm.listwise import ADAPTER_DATA_MANIFEST, LETTERS, TITLE_CHARS, listwise_messages
from llm.registry import DEFAULT_LLM
from retrieval.data.schema import Catalog
from retrieval.metrics import ndcg_at_k, recall_at_k, target_ranks
from retrieval.topk import top_k


def prompt_shape_of(adapter_dir: str | os.PathLike[str] | None) -> dict[str, int]:
    """``max_history`` and ``title_chars`` of the data an adapter was trained on (its
    ``ADAPTER_DATA_MANIFEST``), so the live prompt is the one it learned; {} without an adapter or
    manifest. A verbalizer adapter trained on 4 history titles of 32 characters and fed 10 of 60
    sees prompts unlike any it was trained on."""
    if adapter_dir is None:
        return {}
    path = Path(adapter_dir) / ADAPTER_DATA_MANIFEST
    if not path.is_file():
        return {}
    config = json.loads(path.read_text()).get("config", {})
    return {k: int(config[k]) for k in ("max_history", "title_chars") if isinstance(config.get(k), int)}


class LLMReranker:
    """Scores candidate items for a purchase history with a (LoRA-tuned) chat LLM.

    ``permutations > 1`` mitigates position bias: the candidates are scored under that many
    cyclic shifts of their order and each item's log-probability (renormalised over the
    candidate letters) is averaged, at ``permutations`` x the cost.
    """

    def __init__(
        self,
        model_name: str | os.PathLike[str] | None = None,
        adapter_dir: str | os.PathLike[str] | None = None,
        *,
        max_history: int | None = None,
        title_chars: int | None = None,
        batch_size: int = 4,
        permutations: int = 1,
        threads: int | None = None,
        model: Any = None,
        tokenizer: Any = None,
        quantize: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        lock: Any = None,
    ) -> None:
        if permutations < 1:
            raise ValueError(f"permutations must be >= 1, got {permutations}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        trained = prompt_shape_of(adapter_dir)
        self.max_history = max_history if max_history is not None else trained.get("max_history", 10)
        self.title_chars = title_chars if title_chars is not None else trained.get("title_chars", TITLE_CHARS)
        self.batch_size = batch_size
        self.permutations = permutations
        if model is not None:
            if tokenizer is None:
                raise ValueError("pass the tokenizer together with the model")
            self.model, self.tokenizer = model, tokenizer
        else:
            loaded = get_loaded_llm(
                model_name or DEFAULT_LLM,
                adapter=adapter_dir,
                threads=threads,
                quantize=quantize,
                cache_dir=cache_dir,
            )
            self.model, self.tokenizer = loaded.model, loaded.tokenizer
            lock = loaded.lock if lock is None else lock
        # Serialises forward passes with the chat model when both share one set of weights.
        self.lock = lock if lock is not None else contextlib.nullcontext()
        self.model_name = str(model_name) if model_name else None
        self.adapter_dir = str(adapter_dir) if adapter_dir else None

    @classmethod
    def from_chat_model(cls, chat_model: Any, **kwargs: Any) -> LLMReranker:
        """Share a ``LocalChatModel``'s loaded weights (int8 or not) and its generation lock."""
        loaded = chat_model.loaded
        obj = cls(model=loaded.model, tokenizer=loaded.tokenizer, lock=loaded.lock, **kwargs)
        obj.model_name = str(loaded.path)
        obj.adapter_dir = str(loaded.adapter) if loaded.adapter else None
        return obj

    # --- scoring ----------------------------------------------------------------------------------
    def score_messages(self, prompts: Sequence[list[dict[str, str]]], n_choices: int) -> np.ndarray:
        """``[len(prompts), n_choices]`` log-probs of letters A.. renormalised over the choices."""
        if not 1 <= n_choices <= len(LETTERS):
            raise ValueError(f"n_choices must be in 1..{len(LETTERS)}, got {n_choices}")
        if not prompts:
            return np.zeros((0, n_choices), dtype=np.float32)
        with self.lock:
            raw = score_choices_batch(
                self.model,
                self.tokenizer,
                list(prompts),
                list(LETTERS[:n_choices]),
                batch_size=self.batch_size,
            )
        # Renormalise over the letters: comparable across prompts, independent of other tokens.
        m = raw.max(axis=1, keepdims=True)
        return (raw - m - np.log(np.exp(raw - m).sum(axis=1, keepdims=True))).astype(np.float32)

    def _orders(self, n: int) -> list[np.ndarray]:
        base = np.arange(n)
        shifts = sorted({(k * n) // self.permutations for k in range(self.permutations)})
        return [np.roll(base, -s) for s in shifts]

    def rerank_many(
        self, requests: Sequence[tuple[Sequence[str], Sequence[str]]], catalog: Catalog
    ) -> list[np.ndarray]:
        """Batched ``rerank`` over ``(history_item_ids, candidate_item_ids)`` pairs."""
        jobs: list[tuple[int, np.ndarray, list[dict[str, str]]]] = []
        for r, (history, candidates) in enumerate(requests):
            if not candidates:
                raise ValueError("candidate_item_ids must not be empty")
            if len(candidates) > len(LETTERS):
                raise ValueError(f"at most {len(LETTERS)} candidates per call, got {len(candidates)}")
            if len(set(candidates)) != len(candidates):
                raise ValueError("candidate_item_ids contains duplicates")
            missing = [i for i in [*history, *candidates] if i not in catalog]
            if missing:
                raise KeyError(f"item ids not in the catalog: {missing[:5]}")
            hist_titles = [catalog[i].title for i in history]
            for order in self._orders(len(candidates)):
                titles = [catalog[candidates[k]].title for k in order]
                msgs = listwise_messages(hist_titles, titles, self.max_history, self.title_chars)
                jobs.append((r, order, msgs))
        out = [np.zeros(len(c), dtype=np.float64) for _, c in requests]
        by_size: dict[int, list[int]] = {}
        for j, (_, order, _) in enumerate(jobs):
            by_size.setdefault(len(order), []).append(j)
        for n, idx in by_size.items():
            scores = self.score_messages([jobs[j][2] for j in idx], n)
            for row, j in zip(scores, idx, strict=True):
                r, order, _ = jobs[j]
                out[r][order] += row  # position k of this prompt holds candidate order[k]
        return [(s / len(self._orders(len(s)))).astype(np.float32) for s in out]

    def rerank(
        self, history_item_ids: Sequence[str], candidate_item_ids: Sequence[str], catalog: Catalog
    ) -> np.ndarray:
        """Scores aligned with ``candidate_item_ids`` (higher = more likely next purchase)."""
        return self.rerank_many([(history_item_ids, candidate_item_ids)], catalog)[0]

    def rerank_ids(
        self, history_item_ids: Sequence[str], candidate_item_ids: Sequence[str], catalog: Catalog
    ) -> list[str]:
        """``candidate_item_ids`` reordered best first (stable on ties)."""
        scores = self.rerank(history_item_ids, candidate_item_ids, catalog)
        return [candidate_item_ids[k] for k in top_k(scores, len(scores))[0]]


def evaluate_rerank(
    scorer: Any,
    pairs: Sequence[tuple[Sequence[int], int]],
    catalog: Catalog,
    reranker: LLMReranker,
    top: int = len(LETTERS),
    batch_size: int = 8,
    progress: bool = False,
) -> dict[str, Any]:
    """CF-only vs CF+LLM on the same ``(history rows, target row)`` pairs, full ranking.

    Per user: the scorer ranks every item (history masked, as ``evaluate_full_ranking``), the LLM
    reorders its top-``top`` (one listwise prompt), everything below stays in CF order. Both
    columns use the same top-k order (ties: lower row first), so they differ only where the LLM
    moved the target inside the top ``top``. Returns metrics for both, the paired NDCG@10
    difference (mean and standard error) and the LLM's cost per user.
    """
    if not pairs:
        raise ValueError("no users to evaluate")
    if not 2 <= top <= len(LETTERS):
        raise ValueError(f"top must be in 2..{len(LETTERS)}, got {top}")
    cf_ranks, llm_ranks = [], []
    llm_seconds = 0.0
    for lo in tqdm(range(0, len(pairs), batch_size), desc="llm rerank", disable=not progress, leave=False):
        chunk = pairs[lo : lo + batch_size]
        hists = [list(h) for h, _ in chunk]
        scores = np.array(scorer.full_sort(hists), dtype=np.float32)
        for i, h in enumerate(hists):
            if h:
                scores[i, h] = -np.inf
        targets = np.array([t for _, t in chunk], dtype=np.int64)
        full = target_ranks(scores, targets)
        tops, _ = top_k(scores, top)
        requests = [
            ([catalog.at(r).item_id for r in h], [catalog.at(int(r)).item_id for r in tops[i]])
            for i, h in enumerate(hists)
        ]
        t0 = time.perf_counter()
        llm = reranker.rerank_many(requests, catalog)
        llm_seconds += time.perf_counter() - t0
        for i, t in enumerate(targets):
            row = tops[i].tolist()
            if int(t) in row:
                pos = row.index(int(t))
                order = top_k(llm[i], len(llm[i]))[0]
                cf_ranks.append(pos)
                llm_ranks.append(int(np.flatnonzero(order == pos)[0]))
            else:
                cf_ranks.append(max(int(full[i]), top))
                llm_ranks.append(max(int(full[i]), top))
    cf, lm = np.array(cf_ranks), np.array(llm_ranks)

    def metrics(r: np.ndarray) -> dict[str, float]:
        return {
            "recall@5": float(recall_at_k(r, 5).mean()),
            "ndcg@5": float(ndcg_at_k(r, 5).mean()),
            "recall@10": float(recall_at_k(r, 10).mean()),
            "ndcg@10": float(ndcg_at_k(r, 10).mean()),
        }

    diff = ndcg_at_k(lm, 10) - ndcg_at_k(cf, 10)
    in_top = cf < top
    return {
        "users": len(pairs),
        "top": top,
        "cf": metrics(cf),
        "cf+llm": metrics(lm),
        "ndcg@10_diff": float(diff.mean()),
        "ndcg@10_diff_se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None,
        "target_in_top_rate": float(in_top.mean()),
        "target_moved_up": int((lm < cf).sum()),
        "target_moved_down": int((lm > cf).sum()),
        "llm_seconds_per_user": round(llm_seconds / len(pairs), 3),
    }
