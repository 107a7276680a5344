"""``python -m bench.ranking --llm-rerank``: CF-only vs CF+LLM on the same seeded test users
(real MovieLens data from the installed package, real ItemKNN, the tiny smollm2-135m LLM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.ranking import main


def _run(out: Path, users: int) -> dict:
    main(
        [
            "--data",
            "movielens-100k",
            "--quick",
            "--out",
            str(out),
            "--scorers",
            "mostpop",
            "itemknn",
            "--no-progress",
            "--threads",
            "1",
            "--llm-rerank",
            "smollm2-135m",
            "--rerank-users",
            str(users),
            "--rerank-scorer",
            "itemknn",
        ]
    )
    return json.loads((out / "ranking-movielens-100k.json").read_text())


def test_llm_rerank_reports_cf_vs_cf_llm_on_the_same_users(tmp_path: Path) -> None:
    payload = _run(tmp_path / "a", 8)
    (rr,) = payload["llm_rerank"]
    assert rr["users"] == 8 and rr["top"] == 20 and rr["scorer"] == "itemknn"
    for col in ("cf", "cf+llm"):
        m = rr[col]
        assert 0.0 <= m["ndcg@5"] <= m["ndcg@10"] <= m["recall@10"] <= 1.0
        assert m["recall@5"] <= m["recall@10"]
    # Only the top-20 is reordered: Recall@20-level facts agree, and a target outside the top-20
    # cannot move.
    moved = rr["target_moved_up"] + rr["target_moved_down"]
    assert moved <= round(rr["target_in_top_rate"] * rr["users"])
    assert rr["ndcg@10_diff"] == pytest.approx(rr["cf+llm"]["ndcg@10"] - rr["cf"]["ndcg@10"], abs=1e-9)
    md = (tmp_path / "a" / "ranking-movielens-100k.md").read_text()
    assert "CF-only vs CF+LLM" in md and "| cf+llm |" in md
    assert "--llm-rerank smollm2-135m --rerank-users 8" in payload["command"]
    # Seeded: the same users and the same LLM scores give the same numbers.
    assert _run(tmp_path / "b", 8)["llm_rerank"][0]["cf+llm"] == rr["cf+llm"]


def test_bad_rerank_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--rerank-users must be >= 1"):
        main(["--data", "movielens-100k", "--quick", "--out", str(tmp_path), "--rerank-users", "0"])
