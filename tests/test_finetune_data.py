"""Fine-tuning data generation: leakage, determinism, protocol, manifest (no LLM needed)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest

from finetune.data import TEST_FILES, GenerateConfig, generate, read_jsonl
from finetune.evaluate import ranking_metrics, reply_errors, target_rank
from finetune.records import check_example
from finetune.toydata import write_toy_dataset
from llm.listwise import CANDIDATES_HEADER, LETTERS, short_title
from retrieval.data import leave_one_out, load_dataset


def _cfg(src: Path, out: Path, seed: int = 3) -> GenerateConfig:
    return GenerateConfig(
        data=str(src),
        out=str(out),
        seed=seed,
        test_users=25,
        dev_users=10,
        candidates="cooccurrence",
        train_protocol="mixed",  # both negative samplers under the leak checks
    )


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("ftdata")
    src = write_toy_dataset(root / "shop", seed=0)
    ds = load_dataset(str(src))
    manifest = generate(_cfg(src, root / "a"), dataset=ds)
    return {"root": root, "src": src, "ds": ds, "out": root / "a", "manifest": manifest}


def _files(out: Path) -> dict[str, list[dict]]:
    return {p.stem: read_jsonl(p) for p in sorted(out.glob("*.jsonl"))}


def _sequences(src: Path) -> dict[str, list[str]]:
    with gzip.open(src / "sequences.jsonl.gz", "rt") as f:
        return {r["user_id"]: r["item_ids"] for r in map(json.loads, f)}


def test_every_example_is_leak_free(toy: dict) -> None:
    catalog = toy["ds"].catalog
    n_checked = 0
    for records in _files(toy["out"]).values():
        for rec in records:
            assert check_example(rec, catalog) == [], rec["id"]
            meta = rec.get("meta", {})
            if "target_id" not in meta:
                continue
            n_checked += 1
            prompt = "\n".join(m["content"] for m in rec["messages"][:-1])
            # Independent of check_example: ids are ASIN-like, so a literal search is exact.
            assert meta["target_id"] not in prompt, rec["id"]
            assert not re.search(r"B0TOY\d{5}", prompt), f"{rec['id']}: an item id was rendered"
            title = short_title(catalog[meta["target_id"]].title).casefold()
            if rec["task"] == "rebuy":  # the answer is a shown TRAIN purchase by design
                history, _, cands = rec["messages"][1]["content"].partition(CANDIDATES_HEADER)
                assert meta["target_id"] in meta["history_ids"], rec["id"]
                assert title in history.casefold(), rec["id"]
                letter = meta["target_letter"]
                assert f"\n{title} ({letter.casefold()})\n" in cands.casefold() + "\n"
                assert cands.casefold().count(f"\n{title} (") == 1
                assert rec["messages"][-1]["content"] == letter
            elif rec["task"] == "listwise":
                history, _, cands = rec["messages"][1]["content"].partition(CANDIDATES_HEADER)
                assert title not in history.casefold(), rec["id"]
                letter = meta["target_letter"]
                assert f"\n{title} ({letter.casefold()})\n" in cands.casefold() + "\n"
                assert rec["messages"][-1]["content"] == letter
                assert meta["target_id"] not in meta["history_ids"]
            else:
                request = rec["messages"][1]["content"].casefold()
                assert title not in request, rec["id"]
                # the request is built from attributes, never from the title's words alone
                assert rec["messages"][0]["content"].casefold().count(title) == 1
    assert n_checked > 100


def test_split_protocol_targets_and_histories(toy: dict) -> None:
    seqs = _sequences(toy["src"])
    files = _files(toy["out"])
    pools: dict[str, set[str]] = {"train": set(), "dev": set(), "test": set()}
    for name, records in files.items():
        for rec in records:
            meta = rec.get("meta", {})
            if "user_id" not in meta:
                continue
            user, seq = meta["user_id"], seqs[meta["user_id"]]
            pools[rec["split"]].add(user)
            if rec["task"] == "rebuy":  # warm-up: the answer is one of the TRAIN items shown
                assert meta["history_ids"] == seq[:-2] and meta["target_id"] in seq[:-2], name
                assert seq[-1] not in json.dumps(rec) and seq[-2] not in json.dumps(rec), name
            elif rec["split"] == "test":  # history = train + valid, target = test item
                assert meta["history_ids"] == seq[:-1] and meta["target_id"] == seq[-1], name
            else:  # history = train items, target = valid item; the test item is never seen
                assert meta["history_ids"] == seq[:-2] and meta["target_id"] == seq[-2], name
                assert seq[-1] not in json.dumps(rec)
    assert pools["test"] and pools["train"] and pools["dev"]
    assert not pools["test"] & pools["train"]
    assert not pools["test"] & pools["dev"]
    assert not pools["dev"] & pools["train"]


def test_deterministic_given_seed(toy: dict) -> None:
    again = toy["root"] / "b"
    generate(_cfg(toy["src"], again), dataset=toy["ds"])
    other = toy["root"] / "c"
    generate(_cfg(toy["src"], other, seed=4), dataset=toy["ds"])
    for p in sorted(toy["out"].glob("*.jsonl")):
        assert p.read_bytes() == (again / p.name).read_bytes(), p.name
    m1, m2 = (json.loads((d / "manifest.json").read_text()) for d in (toy["out"], again))
    m1["config"].pop("out"), m2["config"].pop("out")
    assert m1 == m2
    differs = [
        p.name for p in toy["out"].glob("train_*.jsonl") if p.read_bytes() != (other / p.name).read_bytes()
    ]
    assert differs, "a different seed must give different data"


def test_letters_are_spread_and_candidates_valid(toy: dict) -> None:
    catalog = toy["ds"].catalog
    recs = read_jsonl(toy["out"] / "train_listwise.jsonl")
    letters = [r["meta"]["target_letter"] for r in recs]
    assert len(set(letters)) >= 10, "answers must not sit at a fixed position"
    for r in recs:
        cands = r["meta"]["candidate_ids"]
        assert len(cands) == 20 and len(set(cands)) == 20
        assert all(c in catalog for c in cands)
        assert cands[LETTERS.index(r["meta"]["target_letter"])] == r["meta"]["target_id"]
        assert not set(cands) & set(r["meta"]["history_ids"])
    protos = {r["protocol"] for r in recs}
    assert protos == {"retrieved", "random"}


def test_manifest(toy: dict) -> None:
    m = json.loads((toy["out"] / "manifest.json").read_text())
    for key in (
        "generator_version",
        "seed",
        "source",
        "split_protocol",
        "counts",
        "candidate_source",
        "files",
    ):
        assert key in m
    assert m["seed"] == 3 and len(m["source"]["fingerprint_sha256"]) == 64
    assert "TRAIN items" in m["split_protocol"]
    for name, n in m["counts"].items():
        assert len(read_jsonl(toy["out"] / f"{name}.jsonl")) == n
    assert all(m["counts"][f] > 0 for f in TEST_FILES)
    assert m["candidate_source"] == "fallback-cooccurrence"


def test_checker_catches_a_leak(toy: dict) -> None:
    rec = read_jsonl(toy["out"] / "train_listwise.jsonl")[0]
    title = toy["ds"].catalog[rec["meta"]["target_id"]].title
    rec["messages"][1]["content"] = rec["messages"][1]["content"].replace(
        "Purchase history (oldest first):", f"Purchase history (oldest first):\n0. {title}"
    )
    assert any("history" in p for p in check_example(rec, toy["ds"].catalog))
    sft = read_jsonl(toy["out"] / "train_sft.jsonl")[0]
    sft["messages"][1]["content"] += " " + sft["meta"]["target_id"]
    assert check_example(sft, toy["ds"].catalog)


def test_refuses_to_overwrite(toy: dict) -> None:
    with pytest.raises(FileExistsError, match="overwrite"):
        generate(_cfg(toy["src"], toy["out"]), dataset=toy["ds"])


def test_metric_functions() -> None:
    assert target_rank(np.array([0.1, 0.5, 0.3]), 1) == 1
    assert target_rank(np.array([0.1, 0.5, 0.3]), 0) == 3
    assert target_rank(np.zeros(5), 2) == 5  # ties count against the target
    m = ranking_metrics([1, 3, 11])
    assert m["recall@5"] == pytest.approx(2 / 3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / np.log2(4) + 0) / 3)
    cands, hist = ["Olay Daily Cream No. 1", "Dove Silky Wash No. 2"], ["Nivea Fresh Shampoo No. 9"]
    ok = reply_errors("Try **Dove Silky Wash No. 2** [B]. It is from Dove.", cands, hist)
    assert ok["first_pick"] == 1 and not (
        ok["candidate_error"] or ok["history_error"] or ok["duplicate_error"]
    )
    bad = reply_errors(
        "**Nivea Fresh Shampoo No. 9** or **Totally Made Up** or **Olay Daily Cream No. 1** "
        "and again **Olay Daily Cream No. 1**",
        cands,
        hist,
    )
    assert bad["history_error"] and bad["candidate_error"] and bad["duplicate_error"]


def test_target_title_inside_a_longer_history_title_is_skipped_not_leaked(toy: dict, tmp_path: Path) -> None:
    """A short target title contained in a longer history title ("Nail Polish" in "Nail Polish
    Remover") leaks the answer as surely as an equal one: generation skips such examples (counted)
    instead of writing them or aborting on the leakage check (found on real Beauty data)."""
    import dataclasses

    from finetune.records import RecordBuilder
    from retrieval.data.schema import Catalog, Dataset

    ds = toy["ds"]
    gen = RecordBuilder(_cfg(toy["src"], tmp_path / "probe"), ds)
    rows = gen.partition()["train"]
    renamed: dict[str, str] = {}
    collided: set[tuple[str, str]] = set()  # (user, target) whose target title now sits in the history
    sources: set[str] = set()
    for user, history, target in rows[:40]:  # make each target's title a prefix of a shown history title
        source = history[-1]  # its title must stay as it is: never renamed, never a renamed target
        if target in renamed or target in sources or source in renamed or any(h in renamed for h in history):
            continue
        sources.add(source)
        renamed[target] = ds.catalog[source].title.split(",")[0][:12].strip()
        collided.add((user, target))
    assert len(renamed) >= 10
    items = [dataclasses.replace(it, title=renamed.get(it.item_id, it.title)) for it in ds.catalog]
    edited = Dataset(name=ds.name, catalog=Catalog(items), interactions=ds.interactions, source=ds.source)
    manifest = generate(_cfg(toy["src"], tmp_path / "out"), dataset=edited)
    assert manifest["skipped"].get("target_title_in_history", 0) >= 10
    kept = read_jsonl(tmp_path / "out" / "train_listwise.jsonl") + read_jsonl(
        tmp_path / "out" / "train_sft.jsonl"
    )
    assert kept
    for rec in kept:
        assert check_example(rec, edited.catalog) == [], rec["id"]
        assert (rec["meta"]["user_id"], rec["meta"]["target_id"]) not in collided, rec["id"]


def test_title_overlap_reference_ranker() -> None:
    from finetune.evaluate import title_overlap_scores
    from llm.listwise import listwise_messages

    msgs = listwise_messages(
        ["Essie Nail Polish, Ballet Slippers", "OPI Nail Lacquer Red"],
        ["Dove Soap Bar", "Essie Nail Polish Mint", "OPI Top Coat", "Garnier Shampoo"],
    )
    rec = {"id": "x", "messages": [*msgs, {"role": "assistant", "content": "B"}]}
    s = title_overlap_scores(rec)
    # shared words summed over history titles: B essie+nail+polish (3) + nail (1); C opi (1); A, D none
    assert list(np.argsort(-s))[:2] == [1, 2] and s.shape == (4,)
    assert np.floor(s).tolist() == [0.0, 4.0, 1.0, 0.0]
    assert np.array_equal(s, title_overlap_scores(rec))  # ties broken the same way every time


def test_recalled_protocol_is_the_retrievers_own_top_list(toy: dict) -> None:
    """LlamaRec's protocol: only users whose target the retriever put in its top 20, and the
    candidates are that top list (the other picks in rank order, title clashes skipped); the
    rest are counted as skipped, not padded with other negatives."""
    from finetune.candidates import CooccurrenceCandidates

    catalog = toy["ds"].catalog
    split = leave_one_out(toy["ds"].interactions)
    source = CooccurrenceCandidates(split.train, catalog)
    recalled = read_jsonl(toy["out"] / "test_listwise_recalled.jsonl")
    tests = read_jsonl(toy["out"] / "test_listwise_random.jsonl")
    assert 0 < len(recalled) < len(tests)
    assert toy["manifest"]["skipped"]["recalled_target_not_retrieved"] > 0
    for rec in recalled:
        meta = rec["meta"]
        ranked = source.top(meta["history_ids"], 45, set(meta["history_ids"]))
        assert meta["target_id"] in ranked[:20]
        negatives = {c for c in meta["candidate_ids"] if c != meta["target_id"]}
        assert len(negatives) == 19 and negatives <= set(ranked) and rec["protocol"] == "recalled"
        # the top 20 minus the target, except items whose titles clash (then the next ones fill in)
        assert len(negatives & set(ranked[:20])) >= 15
        assert check_example(rec, catalog) == []
    with pytest.raises(ValueError, match="train_protocol"):
        GenerateConfig(data="x", out="y", train_protocol="nearest")
