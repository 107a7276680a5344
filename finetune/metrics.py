"""Ranking metrics of one target among a prompt's candidates (1-based ranks, ties against the
target), shared by data generation (the teacher's dev check), training and evaluation."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.files import atomic_write

__all__ = ["random_ranking_baseline", "ranking_metrics", "target_rank"]


def target_rank(scores: np.ndarray, target: int) -> int:
    """1-based rank of ``target``; ties count against it (a constant scorer gets no credit)."""
    s = scores[target]
    return 1 + int(np.sum(np.delete(scores, target) >= s))


def _se(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")


def ranking_metrics(ranks: list[int]) -> dict[str, float]:
    r = np.asarray(ranks, dtype=float)
    if len(r) == 0:
        return {"n": 0}
    ndcg = np.where(r <= 10, 1.0 / np.log2(r + 1), 0.0)
    rec5 = (r <= 5).astype(float)
    return {
        "n": len(r),
        "ndcg@10": float(ndcg.mean()),
        "ndcg@10_se": _se(ndcg),
        "recall@5": float(rec5.mean()),
        "recall@5_se": _se(rec5),
        "recall@1": float((r <= 1).mean()),
        "mrr": float((1.0 / r).mean()),
        "mean_rank": float(r.mean()),
    }


def random_ranking_baseline(n_candidates: int) -> dict[str, float]:
    """Expected metrics of a uniformly random order of ``n_candidates`` with one target."""
    ranks = np.arange(1, n_candidates + 1, dtype=float)
    return {
        "ndcg@10": float(np.where(ranks <= 10, 1 / np.log2(ranks + 1), 0).mean()),
        "recall@5": min(5, n_candidates) / n_candidates,
        "mrr": float((1 / ranks).mean()),
    }


def write_report(
    report: dict[str, Any], out_dir: str | Path, tag: str, markdown: Callable[[dict[str, Any]], str]
) -> Path:
    """``<out>/<tag>.json`` and ``.md`` (atomic), their paths recorded in ``report``; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{tag}.json", out / f"{tag}.md"
    report["json_path"], report["markdown_path"] = str(json_path), str(md_path)
    atomic_write(json_path, json.dumps(report, indent=2, ensure_ascii=False))
    atomic_write(md_path, markdown(report))
    return out
