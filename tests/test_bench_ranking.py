"""The ranking bench writes JSON/markdown/PNG with the expected keys (real data, real scorers)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.ranking import main

SHARED = Path(os.environ.get("SHARED_DATASETS", "/work/shared/datasets"))
EXPECTED = (
    "recall@5",
    "recall@10",
    "ndcg@5",
    "ndcg@10",
    "coverage@10",
    "ild@10",
    "novelty@10",
    "popularity@10",
    "train_seconds",
    "peak_rss_delta_mb",
    "test_unmasked",
    "valid_ndcg@10",
)


def _check(out: Path, dataset: str, scorers: list[str]) -> dict:
    payload = json.loads((out / f"ranking-{dataset}.json").read_text())
    assert set(payload["scorers"]) == set(scorers)
    for name in scorers:
        row = payload["scorers"][name]
        for key in EXPECTED:
            assert key in row, (name, key)
        assert 0.0 <= row["ndcg@10"] <= row["recall@10"] <= 1.0
        assert row["ndcg@5"] <= row["ndcg@10"] and row["recall@5"] <= row["recall@10"]
    assert payload["protocol"]["ranking"].startswith("full")
    assert "mask_history" in payload["protocol"] and "ties" in payload["protocol"]
    md = (out / f"ranking-{dataset}.md").read_text()
    assert "Protocol" in md and all(f"| {s} |" in md for s in scorers)
    assert (out / f"ranking-{dataset}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return payload


def test_quick_bench_item_models(tmp_path: Path) -> None:
    scorers = ["mostpop", "itemknn", "ease"]
    main(
        [
            "--data",
            "movielens-100k",
            "--quick",
            "--out",
            str(tmp_path),
            "--scorers",
            *scorers,
            "--no-progress",
        ]
    )
    payload = _check(tmp_path, "movielens-100k", scorers)
    s = payload["scorers"]
    # personalised item-item models must beat the popularity floor on MovieLens
    assert s["ease"]["ndcg@10"] > s["mostpop"]["ndcg@10"]
    assert s["itemknn"]["recall@10"] > s["mostpop"]["recall@10"]
    assert payload["published_full_ranking"] == {}  # Beauty references only beside Beauty numbers


@pytest.mark.slow
def test_quick_bench_all_scorers(tmp_path: Path) -> None:
    main(["--data", "movielens-100k", "--quick", "--out", str(tmp_path), "--no-progress", "--threads", "1"])
    payload = _check(tmp_path, "movielens-100k", ["mostpop", "itemknn", "ease", "sasrec", "fused"])
    assert set(payload["scorers"]["fused"]["weights"]) == {"sasrec", "ease", "itemknn"}


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "amazon-office-2014").is_dir(), reason="shared Amazon datasets absent")
def test_quick_bench_shared_amazon(tmp_path: Path) -> None:
    main(
        [
            "--data",
            str(SHARED / "amazon-office-2014"),
            "--quick",
            "--out",
            str(tmp_path),
            "--scorers",
            "mostpop",
            "ease",
            "--no-progress",
        ]
    )
    _check(tmp_path, "amazon-office-2014", ["mostpop", "ease"])


def test_bad_scorer_name_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown scorers"):
        main(["--data", "movielens-100k", "--out", str(tmp_path), "--scorers", "nope"])
    assert not list(tmp_path.iterdir())  # nothing partial written
