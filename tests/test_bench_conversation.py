"""End to end: the conversational bench on the synthetic Beauty catalog writes complete reports.

Real components throughout (MiniLM, Chroma in a tmp dir, BM25, item-kNN, the rule-based
simulator, the no-ML baselines); no LLM, so replies are the assistant's templates. The
``report`` fixture runs the facets shopper (the assistant must meet every stated constraint);
``describe_report`` the default describe shopper with every system, baselines included.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from assistant_catalog import make_dataset

from bench.conversation import (
    SYSTEMS,
    ConversationConfig,
    evaluation_split,
    main,
    parse_args,
    run,
    sample_users,
)
from retrieval.ranker import RankerWeights

MAX_TURNS = 3


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    tmp = tmp_path_factory.mktemp("conv")
    cfg = ConversationConfig(
        data=make_dataset(),
        users=4,
        max_turns=MAX_TURNS,
        seed=7,
        llm=None,
        shopper="facets",
        systems=("cf-only", "retrieval-only", "full"),
        cache_dir=str(tmp / "cache"),
        out=str(tmp / "reports"),
        show_progress=False,
    )
    return run(cfg), tmp / "reports"


@pytest.fixture(scope="module")
def describe_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    tmp = tmp_path_factory.mktemp("conv-describe")
    cfg = ConversationConfig(
        data=make_dataset(),
        users=6,
        max_turns=MAX_TURNS,
        seed=7,
        llm=None,
        cache_dir=str(tmp / "cache"),
        out=str(tmp / "reports"),
        show_progress=False,
        transcripts_in_md=4,
        n_boot=300,
    )
    return run(cfg), tmp / "reports"


def test_split_hides_the_target_from_the_systems() -> None:
    ds = make_dataset()
    visible, rows = evaluation_split(ds)
    seqs = visible.interactions.sequences()
    assert rows and len(visible.interactions) == len(ds.interactions) - len(rows)
    for user, history, target in rows:
        assert seqs[user] == history  # the systems see exactly the simulator's "prior history"
        assert ds.interactions.history(user)[-1] == target
    picked = sample_users(rows, 4, seed=7)
    assert picked == sample_users(rows, 4, seed=7) and len({u for u, _, _ in picked}) == 4


def test_json_report_has_every_system_and_metric(report) -> None:
    rep, out = report
    saved = (
        json.loads((out / "conversation-assistant-test-beauty.json").read_text())
        if (out / "conversation-assistant-test-beauty.json").exists()
        else json.loads(next(out.glob("conversation-*.json")).read_text())
    )
    assert saved["systems"].keys() == rep["systems"].keys() == {"cf-only", "retrieval-only", "full"}
    p = saved["protocol"]
    for key in ("dataset", "users", "seed", "max_turns", "llm", "simulator"):
        assert key in p
    assert p["users"] == 4 and p["seed"] == 7 and p["max_turns"] == MAX_TURNS and p["llm"] == "none"
    assert p["simulator"]["mode"] == "template/en" and p["shopper"] == "facets"
    for name, r in saved["systems"].items():
        for key in ("hit@5", "at@5", "hit@5_by_turn", "constraint_satisfaction", "out_of_catalogue_rate",
                    "duplicate_rate", "already_bought_rate", "unsupported_claim_rate", "clarify_rate",
                    "latency_p50_s", "latency_p95_s", "tokens_per_turn", "tokens_unit"):  # fmt: skip
            assert key in r, (name, key)
        assert 0.0 <= r["hit@5"] <= 1.0
        assert 1.0 <= r["at@5"] <= MAX_TURNS + 1
        assert r["hit@5_by_turn"][-1] == pytest.approx(r["hit@5"])
        assert r["hit@5_by_turn"] == sorted(r["hit@5_by_turn"])
        assert r["out_of_catalogue_rate"] == 0.0 and r["duplicate_rate"] == 0.0
    # The assistant enforces what the shopper said; the dialogue-blind CF list does not have to.
    for name in ("retrieval-only", "full"):
        assert saved["systems"][name]["constraint_satisfaction"] == 1.0
        assert saved["systems"][name]["unsupported_claim_rate"] == 0.0
        assert saved["systems"][name]["tokens_unit"].startswith("words")


def test_markdown_plot_and_transcripts(report) -> None:
    _, out = report
    md = next(out.glob("conversation-*.md")).read_text()
    assert "## Protocol" in md and "## Sample transcripts" in md and "| full |" in md
    png = next(out.glob("conversation-*.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = next(out.glob("conversation-*-facets-transcripts.jsonl")).read_text().splitlines()
    dialogues = [json.loads(x) for x in lines]
    assert len(dialogues) == 3 * 4
    for d in dialogues:
        assert 1 <= len(d["turns"]) <= MAX_TURNS
        hit = d["first_hit"]
        # The dialogue stops at the first hit, and only then.
        assert (hit is not None) == (d["target_id"] in d["turns"][-1]["shown"][:5])
        if hit is None:
            assert len(d["turns"]) == MAX_TURNS
    # Every system heard the same first message from the same shopper.
    first = {}
    for d in dialogues:
        first.setdefault(d["user_id"], set()).add(d["turns"][0]["user_text"])
    assert all(len(v) == 1 for v in first.values())


@pytest.mark.slow
def test_quick_mode_on_movielens_within_five_minutes(tmp_path: Path) -> None:
    import time

    pytest.importorskip("recbole")  # the movielens-100k demo files ship with it
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    assert main(["--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    elapsed = time.perf_counter() - t0
    rep = json.loads((tmp_path / "conversation-movielens-100k.json").read_text())
    assert rep["protocol"]["users"] == 30
    # The tiny LLM wrote the full system's replies (token counts come from its tokenizer).
    assert rep["protocol"]["llm"] == "smollm2-135m"
    assert rep["systems"]["full"]["tokens_unit"].startswith("tokenizer:")
    assert rep["protocol"]["shopper"] == "describe" and "filter+popularity" in rep["systems"]
    assert rep["systems"]["filter+popularity"]["constraint_satisfaction"] == 1.0
    assert rep["systems"]["full"]["out_of_catalogue_rate"] == 0.0
    assert elapsed < 300 + rep["timing"]["build_s"]  # a cold index build is not part of the budget


def test_checkpoints_write_valid_partial_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long run rewrites its reports over the users done so far, marked partial, so a run
    cut short (time limit) still leaves a readable report; the last write is the full one."""
    import bench.conversation as conv

    seen: list[dict] = []
    real = conv.write_reports

    def spy(report, dialogues, cfg, catalog):  # the real writer runs; we only keep the protocol
        seen.append(dict(report["protocol"]))
        return real(report, dialogues, cfg, catalog)

    monkeypatch.setattr(conv, "write_reports", spy)
    cfg = ConversationConfig(
        data=make_dataset(),
        users=3,
        max_turns=2,
        seed=7,
        llm=None,
        systems=("cf-only", "full"),
        cache_dir=str(tmp_path / "cache"),
        out=str(tmp_path / "reports"),
        show_progress=False,
        checkpoint_s=1e-9,
    )
    rep = run(cfg)
    partial = [p for p in seen if p["partial"]]
    assert [p["users"] for p in partial] == [1, 2] and all(p["users_planned"] == 3 for p in partial)
    assert seen[-1]["partial"] is False and rep["protocol"]["users"] == 3
    md = next((tmp_path / "reports").glob("conversation-*.md")).read_text()
    assert "partial report" not in md  # the final write replaced the checkpoint


def test_describe_mode_runs_every_baseline_with_paired_statistics(describe_report) -> None:
    _, out = describe_report
    saved = json.loads(next(out.glob("conversation-*.json")).read_text())
    assert list(saved["systems"]) == [s for s in SYSTEMS if s != "full+adapter"]
    p = saved["protocol"]
    assert p["shopper"] == "describe" and set(p["systems"]) == set(saved["systems"])
    assert "paired bootstrap" in p["statistics"]
    for r in saved["systems"].values():
        lo, hi = r["hit@5_ci"]
        assert lo <= r["hit@5"] <= hi and len(r["hit@5_by_turn_ci"]) == MAX_TURNS
        assert r["does"]
    # The filter baselines show only items meeting what the shopper stated (the simulator's record).
    for name in ("filter+popularity", "filter+random"):
        assert saved["systems"][name]["constraint_satisfaction"] in (None, 1.0)
        assert saved["systems"][name]["already_bought_rate"] in (None, 0.0)
    comps = {c["b"]: c for c in saved["comparisons"]}
    assert set(comps) == set(saved["systems"]) - {"full"}
    for c in comps.values():
        h = c["hit@5"]
        assert c["a"] == "full" and h["n"] == 6 and h["lo"] <= h["diff"] <= h["hi"]
        assert h["diff"] == pytest.approx(
            saved["systems"]["full"]["hit@5"] - saved["systems"][c["b"]]["hit@5"]
        )
        assert 0.0 <= c["mcnemar"]["p_value"] <= 1.0
    md = next(out.glob("conversation-*.md")).read_text()
    assert "## Protocol" in md and "Paired differences" in md and "full − filter+popularity" in md
    for name in saved["systems"]:
        assert f"### {name}" in md
    assert md.count("**user ") == 4 * len(saved["systems"])  # 4 sampled shoppers per system
    assert (next(out.glob("conversation-*.png")).read_bytes()[:4]) == b"\x89PNG"
    # Baselines and assistants heard the same first message from each shopper.
    lines = [
        json.loads(x) for x in next(out.glob("conversation-*-transcripts.jsonl")).read_text().splitlines()
    ]
    first: dict[str, set] = {}
    for d in lines:
        first.setdefault(d["user_id"], set()).add(d["turns"][0]["user_text"])
    assert len(lines) == 6 * len(saved["systems"]) and all(len(v) == 1 for v in first.values())


def test_ranker_weights_to_tune_are_checked_and_recorded(report) -> None:
    cfg = parse_args(["--ranker", "words=0.5, popularity=1", "--llm", "none"])
    assert cfg.ranker == {"words": 0.5, "popularity": 1.0}
    for bad in ("words", "words=x", "nosuch=1"):
        with pytest.raises(SystemExit, match="--ranker"):
            parse_args(["--ranker", bad])
    # the report records the weights every assistant ran with (defaults when none were changed)
    saved, _ = report
    assert saved["protocol"]["ranker_weights"]["words"] == RankerWeights().words


def test_a_run_keeps_its_sessions_out_of_the_shared_cache(report) -> None:
    # A signed-in shopper's likes in chat join their history: sessions kept in the shared cache let
    # one system, or an earlier run, change the histories the next one ranks with.
    _, reports = report
    cache = reports.parent / "cache"
    assert (cache / "indexes").is_dir()  # the index cache is shared, as before
    assert not any((cache / "sessions").rglob("*")) if (cache / "sessions").exists() else True
