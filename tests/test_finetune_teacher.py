"""The lexical listwise teacher: features read off the prompt, fitting, and what generate writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from finetune.data import TEACHER_FILE, GenerateConfig, generate, read_jsonl
from finetune.teacher import BASE_FEATURES, FEATURES, LexicalTeacher, prompt_features
from finetune.toydata import write_toy_dataset
from llm.listwise import LETTERS, listwise_messages

_WORDS = [f"w{k}" for k in range(400)]


def _record(history: list[str], candidates: list[str], target: int, rid: str) -> dict:
    msgs = listwise_messages(history, candidates, max_history=4, max_chars=200)
    msgs.append({"role": "assistant", "content": LETTERS[target]})
    return {"id": rid, "task": "listwise", "messages": msgs, "meta": {"target_letter": LETTERS[target]}}


def _synthetic(n: int, rule: str, seed: int) -> list[dict]:
    """Prompts where the target is decided by word repetition alone: under "history" it shares
    words with the history and the negatives are unrelated; under "odd_one_out" the negatives all
    share a word with each other (and the history) and the target shares nothing."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        words = [_WORDS[j] for j in rng.choice(len(_WORDS), 80, replace=False)]
        history = [f"{words[0]} {words[1]} {words[2]}", f"{words[3]} {words[1]} {words[4]}"]
        target = int(rng.integers(20))
        cands = []
        for k in range(20):
            fresh = words[10 + 3 * k : 13 + 3 * k]
            if rule == "history":
                cands.append(" ".join([words[1], fresh[0]] if k == target else fresh))
            else:
                cands.append(" ".join(fresh if k == target else [words[1], fresh[0], fresh[1]]))
        out.append(_record(history, cands, target, f"{rule}-{seed}-{i}"))
    return out


def test_prompt_features_count_words_shared_with_history_and_candidates() -> None:
    rec = _record(
        ["Essie Nail Polish Ballet", "OPI Nail Lacquer Red"],
        ["Dove Soap Bar", "Essie Nail Polish Mint", "OPI Top Coat", "Dove Body Wash"],
        target=1,
        rid="x",
    )
    x = prompt_features(rec["messages"][1]["content"])
    assert x.shape == (4, len(FEATURES))
    col = {name: x[:, k] for k, name in enumerate(FEATURES)}
    # B: essie+nail+polish with the first title, nail with the second; C: opi with the second
    assert col["history_overlap"].tolist() == [0, 4, 1, 0]
    assert col["last_overlap"].tolist() == [0, 1, 1, 0]
    assert col["history_titles_shared"].tolist() == [0, 2, 1, 0]
    assert col["first_word_match"].tolist() == [0, 1, 1, 0]
    assert col["candidate_overlap"].tolist() == [1, 0, 0, 1]  # the two Dove titles share "dove"
    for name in BASE_FEATURES:  # the relative copy is centred per prompt
        assert col[f"{name}_vs_mean"].sum() == pytest.approx(0.0)
        assert np.allclose(col[f"{name}_vs_mean"], col[name] - col[name].mean())
    with pytest.raises(ValueError, match="no candidate"):
        prompt_features("Purchase history (oldest first):\n1. x\n\nCandidates:\n")


@pytest.mark.parametrize(
    ("rule", "feature", "sign"), [("history", "history_overlap", 1), ("odd_one_out", "candidate_overlap", -1)]
)
def test_fit_learns_the_rule_that_decides_the_target(rule: str, feature: str, sign: int) -> None:
    teacher = LexicalTeacher.fit(_synthetic(300, rule, seed=0))
    held_out = _synthetic(100, rule, seed=1)
    hits = [int(np.argmax(teacher.scores(r))) == LETTERS.index(r["meta"]["target_letter"]) for r in held_out]
    assert np.mean(hits) > 0.95
    w = dict(zip(FEATURES, teacher.weights, strict=True))
    assert sign * (w[feature] + w[f"{feature}_vs_mean"]) > 0
    lp = teacher.log_probs(held_out[0])
    assert lp.shape == (20,) and np.exp(lp).sum() == pytest.approx(1.0)
    assert teacher.train_loss is not None and teacher.train_loss < 1.0  # uniform would be 3.00
    # The other rule's teacher ranks these prompts badly: the fit follows the data.
    other = LexicalTeacher.fit(_synthetic(300, "odd_one_out" if rule == "history" else "history", seed=0))
    assert (
        np.mean(
            [int(np.argmax(other.scores(r))) == LETTERS.index(r["meta"]["target_letter"]) for r in held_out]
        )
        < 0.2
    )


def test_fit_needs_listwise_examples_and_round_trips(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=">= 20"):
        LexicalTeacher.fit(_synthetic(5, "history", seed=0))
    teacher = LexicalTeacher.fit(_synthetic(40, "history", seed=0))
    teacher.save(tmp_path / "t.json")
    again = LexicalTeacher.load(tmp_path / "t.json")
    rec = _synthetic(1, "history", seed=3)[0]
    np.testing.assert_allclose(again.scores(rec), teacher.scores(rec))
    bad = json.loads((tmp_path / "t.json").read_text())
    bad["features"] = bad["features"][:-1]
    with pytest.raises(ValueError, match="regenerate"):
        LexicalTeacher.from_dict(bad)
    with pytest.raises(FileNotFoundError, match="--teacher lexical"):
        LexicalTeacher.load(tmp_path / "missing.json")


def test_generate_labels_train_and_dev_from_a_teacher_fitted_on_train_only(tmp_path: Path) -> None:
    src = write_toy_dataset(tmp_path / "shop", seed=0)
    out = tmp_path / "data"
    cfg = GenerateConfig(
        data=str(src), out=str(out), seed=1, test_users=25, dev_users=10,
        candidates="cooccurrence",
    )  # fmt: skip
    manifest = generate(cfg)
    info = manifest["teacher"]
    train = read_jsonl(out / "train_listwise.jsonl")
    assert info["kind"] == "lexical" and info["fitted_on"] == len(train) >= 20
    assert manifest["files"][TEACHER_FILE]
    teacher = LexicalTeacher.load(out / TEACHER_FILE)
    # Fitted on exactly the written training records: refitting them gives the same weights,
    # so no dev or test record took part.
    refit = LexicalTeacher.fit(train)
    np.testing.assert_allclose(refit.weights, teacher.weights, atol=1e-6)
    for name in ("train_listwise", "dev_listwise"):
        for rec in read_jsonl(out / f"{name}.jsonl"):
            lp = np.array(rec["meta"]["teacher_logprobs"])
            assert lp.shape == (len(rec["meta"]["candidate_ids"]),) and np.isfinite(lp).all()
            np.testing.assert_allclose(lp, teacher.log_probs(rec), atol=1e-4)
    for path in out.glob("test_*.jsonl"):  # held-out records are never labelled
        assert all("teacher_logprobs" not in r.get("meta", {}) for r in read_jsonl(path)), path.name
    plain = generate(GenerateConfig(**{**cfg.__dict__, "out": str(tmp_path / "plain"), "teacher": "none"}))
    assert plain["teacher"] is None and not (tmp_path / "plain" / TEACHER_FILE).exists()
    assert all(
        "teacher_logprobs" not in r["meta"] for r in read_jsonl(tmp_path / "plain" / "train_listwise.jsonl")
    )
    with pytest.raises(ValueError, match="teacher"):
        GenerateConfig(data="x", out="y", teacher="cf")
