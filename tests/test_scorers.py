"""Contract tests shared by every registered scorer, on the synthetic checkerboard."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from cf_fixtures import Checkerboard, checkerboard

from retrieval.scorers import SCORERS, FusedScorer, NotFittedError, SASRecScorer, Scorer

# Small, fast settings per scorer; every registered scorer must appear here.
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "mostpop": {},
    "itemknn": {"k": 20, "shrink": 1.0, "recency_decay": 0.7},
    "ease": {"lambda_": 5.0, "recency_decay": 0.7},
    "sasrec": {
        "hidden": 16,
        "max_len": 10,
        "epochs": 25,
        "dropout": 0.1,
        "lr": 5e-3,
        "eval_every": 5,
        "threads": 1,
        "verbose": False,
    },
    "fused": {"components": ["itemknn", "ease"], "component_params": [{"k": 20}, {"lambda_": 5.0}]},
}
PERSONALISED = [n for n in SCORERS if n != "mostpop"]


def test_every_scorer_has_fast_params() -> None:
    assert set(FAST_PARAMS) == set(SCORERS)


@pytest.fixture(scope="module")
def board() -> Checkerboard:
    return checkerboard(seed=0)


@pytest.fixture(scope="module")
def fitted(board: Checkerboard) -> dict[str, Scorer]:
    out = {}
    for name, cls in SCORERS.items():
        # One validation pair exercises the plumbing; SASRec trains its fixed epochs instead of
        # early-stopping on a single noisy pair.
        validation = None if name == "sasrec" else [(board.groups["A"][:3], board.groups["A"][3])]
        out[name] = cls(**FAST_PARAMS[name]).fit(board.interactions, board.catalog, validation=validation)
    return out


@pytest.mark.parametrize("name", list(SCORERS))
def test_score_shapes(name: str, fitted: dict[str, Scorer], board: Checkerboard) -> None:
    s = fitted[name]
    n = len(board.catalog)
    assert s.full_sort([[0, 1], [], [12]]).shape == (3, n)
    user = board.users["A"][0]
    assert s.score(user).shape == (n,)
    assert s.score(user, ["B1", "A2"]).shape == (2,)
    assert np.isfinite(s.score(user)).all()


@pytest.mark.parametrize("name", PERSONALISED)
def test_group_a_user_gets_group_a_items(name: str, fitted: dict[str, Scorer], board: Checkerboard) -> None:
    s = fitted[name]
    for g in "AB":
        for user in board.users[g][:5]:
            recs = s.recommend(user, n=2)
            assert len(recs) == 2
            assert all(item in board.groups[g] for item, _ in recs), (name, user, recs)


@pytest.mark.parametrize("name", list(SCORERS))
def test_recommend_excludes_history_and_filter(
    name: str, fitted: dict[str, Scorer], board: Checkerboard
) -> None:
    s = fitted[name]
    user = board.users["A"][0]
    history = board.interactions.history(user)
    banned = ["A0", "B0", "B5"]
    recs = [i for i, _ in s.recommend(user, n=len(board.catalog), filter_items=banned)]
    assert not set(recs) & set(history)
    assert not set(recs) & set(banned)
    assert len(recs) == len(board.catalog) - len(set(history) | set(banned))
    scores = [sc for _, sc in s.recommend(user, n=5)]
    assert scores == sorted(scores, reverse=True)
    # candidates restrict, and seen items come back when not filtered
    assert {i for i, _ in s.recommend(user, n=3, candidates=["A1", "B2"], filter_already_seen=False)} == {
        "A1",
        "B2",
    }


@pytest.mark.parametrize("name", PERSONALISED)
def test_new_user_history(name: str, fitted: dict[str, Scorer]) -> None:
    s = fitted[name]
    for session, group in ((["B3", "B4"], "B"), (["A7"], "A")):
        recs = s.recommend(session, n=2)
        assert all(item.startswith(group) for item, _ in recs), (name, session, recs)
        assert not {i for i, _ in recs} & set(session)
    assert s.full_sort([[]]).shape[0] == 1  # empty history is allowed


@pytest.mark.parametrize("name", list(SCORERS))
def test_save_load_round_trip(name: str, fitted: dict[str, Scorer], board: Checkerboard, tmp_path) -> None:
    s = fitted[name]
    s.save(tmp_path / name)
    loaded = Scorer.load(tmp_path / name, board.catalog)
    assert type(loaded) is type(s)
    user = board.users["B"][2]
    np.testing.assert_array_equal(loaded.score(user), s.score(user))
    np.testing.assert_array_equal(loaded.score(["A1", "A2"]), s.score(["A1", "A2"]))


@pytest.mark.parametrize("name", list(SCORERS))
def test_unfitted_raises(name: str) -> None:
    s = SCORERS[name](**FAST_PARAMS[name])
    with pytest.raises(NotFittedError):
        s.recommend(["A1"])
    with pytest.raises(NotFittedError):
        s.full_sort([[0]])


def test_load_rejects_other_catalog(fitted: dict[str, Scorer], tmp_path) -> None:
    fitted["ease"].save(tmp_path / "e")
    other = checkerboard(items_per_group=4, length=3).catalog
    with pytest.raises(ValueError, match="different catalog"):
        Scorer.load(tmp_path / "e", other)


def test_sasrec_trains_quickly_and_early_stops_on_validation() -> None:
    board = checkerboard(seed=1, cyclic=True)
    t0 = time.perf_counter()
    validation = [(board.groups["A"][:4], board.groups["A"][4]), (board.groups["B"][5:8], "B8")]
    s = SASRecScorer(
        hidden=16,
        max_len=10,
        epochs=40,
        eval_every=2,
        patience=3,
        dropout=0.1,
        lr=5e-3,
        threads=1,
        verbose=False,
    )
    s.fit(board.interactions, board.catalog, validation=validation)
    assert time.perf_counter() - t0 < 20
    evals = [h["valid_ndcg@10"] for h in s.history_ if "valid_ndcg@10" in h]
    assert evals and max(evals) > 0.3  # the cyclic next item is learnable
    assert len(s.history_) < 40 or evals[-1] >= max(evals) - 1e-9  # stopped early or still improving
    # the next item in the cycle ranks first for a group-A session
    assert s.recommend(["A2", "A3", "A4"], n=1)[0][0] == "A5"


def test_sasrec_sampled_loss_and_text_side_input(board: Checkerboard, tmp_path) -> None:
    rng = np.random.default_rng(0)
    text = rng.normal(size=(len(board.catalog), 8)).astype(np.float32)
    s = SASRecScorer(
        hidden=16,
        max_len=10,
        epochs=15,
        loss="sampled",
        n_negatives=8,
        negative_alpha=0.75,
        dropout=0.1,
        lr=5e-3,
        item_text_embeddings=text,
        threads=1,
        verbose=False,
    )
    s.fit(board.interactions, board.catalog)
    assert s.get_params()["text_dim"] == 8 and s.get_params()["negative_alpha"] == 0.75
    assert all(i.startswith("B") for i, _ in s.recommend(board.users["B"][0], n=2))
    s.save(tmp_path / "s")
    np.testing.assert_array_equal(Scorer.load(tmp_path / "s", board.catalog).score(["A1"]), s.score(["A1"]))
    with pytest.raises(ValueError, match="rows"):
        SASRecScorer(epochs=1, item_text_embeddings=text[:3], verbose=False).fit(
            board.interactions, board.catalog
        )


def test_sasrec_rejects_bad_loss() -> None:
    with pytest.raises(ValueError, match="loss"):
        SASRecScorer(loss="bpr")


def test_fused_weights_come_from_validation(fitted: dict[str, Scorer], board: Checkerboard) -> None:
    parts = [fitted["mostpop"], fitted["itemknn"]]
    cat = board.catalog
    valid = [
        (
            [cat.index_of(i) for i in board.interactions.history(u)[:-1]],
            cat.index_of(board.interactions.history(u)[-1]),
        )
        for g in "AB"
        for u in board.users[g]
    ]
    fused = FusedScorer.from_fitted(parts, validation=valid)
    assert fused.weights is not None and fused.weights[1] > 0  # itemknn carries the signal
    assert (
        fused.tuning_log
        and max(r["valid_ndcg@10"] for r in fused.tuning_log) >= fused.tuning_log[0]["valid_ndcg@10"]
    )
    fixed = FusedScorer.from_fitted(parts, weights=[0.0, 1.0])
    order_fixed = np.argsort(-fixed.full_sort([[0, 1]])[0], kind="stable")
    order_knn = np.argsort(-fitted["itemknn"].full_sort([[0, 1]])[0], kind="stable")
    np.testing.assert_array_equal(order_fixed, order_knn)


def test_bad_params_raise() -> None:
    with pytest.raises(ValueError):
        SCORERS["ease"](lambda_=0)
    with pytest.raises(ValueError):
        SCORERS["itemknn"](recency_decay=0)
    with pytest.raises(ValueError):
        FusedScorer(components=[])
