"""LoRA training, checkpoint/resume, adapter reload, evaluation and reranking with the real tiny LLM."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from finetune.arguments import DataArguments, ModelArguments, TrainArguments
from finetune.checkpoints import list_checkpoints
from finetune.data import GenerateConfig, generate, read_jsonl
from finetune.toydata import write_toy_dataset
from finetune.train import train
from llm.models import load_llm
from llm.registry import TEST_LLM


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fttrain")
    src = write_toy_dataset(root / "shop", n_items=80, n_users=60, seed=1)
    out = root / "data"
    generate(
        GenerateConfig(
            data=str(src),
            out=str(out),
            seed=0,
            users=20,
            test_users=4,
            dev_users=2,
            n_candidates=5,
            sft_candidates=3,
            max_history=3,
            title_chars=30,
            candidates="cooccurrence",
        )
    )
    return out


def _args(data_dir: Path, out: Path, max_steps: int, resume: bool = False):
    return (
        ModelArguments(model=TEST_LLM, lora_r=4, lora_alpha=8, lora_dropout=0.0),
        DataArguments(
            data_dir=str(data_dir), tasks="chat", max_seq_len=256, eval_examples=4, eval_source="train"
        ),
        TrainArguments(
            output_dir=str(out),
            seed=0,
            learning_rate=5e-3,
            max_steps=max_steps,
            batch_size=2,
            eval_every=0,
            save_every=1,
            keep_last=2,
            log_every=1,
            threads=2,
            resume=resume,
            progress=False,
        ),
    )


@pytest.fixture(scope="module")
def run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("ftrun") / "run"
    first = train(*_args(data_dir, out, max_steps=2))
    return {"out": out, "first": first}


def test_training_lowers_eval_loss(run: dict) -> None:
    r = run["first"]
    assert r.steps == 2 and r.start_step == 0
    assert r.first_eval_loss is not None and r.last_eval_loss is not None
    assert r.last_eval_loss < r.first_eval_loss, (r.first_eval_loss, r.last_eval_loss)
    out = run["out"]
    for name in ("training_config.json", "data_manifest.json", "metrics.json", "train_log.jsonl"):
        assert (out / name).is_file(), name
    adapter = out / "adapter"
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "training_config.json",
        "data_manifest.json",
    } <= {p.name for p in adapter.iterdir()}
    cfg = json.loads((adapter / "training_config.json").read_text())
    assert cfg["model"]["model"] == TEST_LLM and cfg["model"]["lora_r"] == 4


def test_adapter_reloads_with_peft_and_load_llm(run: dict) -> None:
    import torch
    from peft import PeftModel

    adapter = run["out"] / "adapter"
    base, tok = load_llm(TEST_LLM, threads=2)
    ids = tok("Hello, can you recommend a shampoo?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        base_logits = base(input_ids=ids).logits
    peft_model = PeftModel.from_pretrained(base, str(adapter)).eval()
    with torch.no_grad():
        peft_logits = peft_model(input_ids=ids).logits
    merged, _ = load_llm(TEST_LLM, adapter=adapter, threads=2)
    with torch.no_grad():
        merged_logits = merged(input_ids=ids).logits
    assert not torch.allclose(base_logits, peft_logits, atol=1e-4), "the trained adapter changed nothing"
    assert torch.allclose(peft_logits, merged_logits, atol=1e-3)


def test_resume_continues_step_count(run: dict, data_dir: Path) -> None:
    out = run["out"]
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-000001", "checkpoint-000002"]
    with pytest.raises(FileExistsError, match="resume"):
        train(*_args(data_dir, out, max_steps=3))
    second = train(*_args(data_dir, out, max_steps=3, resume=True))
    assert second.start_step == 2 and second.steps == 3
    steps = [
        e["step"]
        for e in map(json.loads, (out / "train_log.jsonl").read_text().splitlines())
        if e["event"] == "train"
    ]
    assert steps == [1, 2, 3]  # the resumed run logged step 3 only
    ckpts = list_checkpoints(out)
    assert [p.name for p in ckpts] == ["checkpoint-000002", "checkpoint-000003"]  # keep_last=2
    state = json.loads((ckpts[-1] / "trainer_state.json").read_text())
    assert state["step"] == 3
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow
def test_evaluate_writes_expected_keys(run: dict, data_dir: Path, tmp_path: Path) -> None:
    from finetune.evaluate import EvalConfig, evaluate

    report = evaluate(
        EvalConfig(
            data=str(data_dir),
            adapter=str(run["out"] / "adapter"),
            out=str(tmp_path),
            max_users=2,
            n_generate=1,
            max_new_tokens=8,
            batch_size=2,
            progress=False,
        )
    )
    saved = json.loads((tmp_path / "finetune-eval.json").read_text())
    assert saved["base_model"] == TEST_LLM
    for protocol in ("retrieved", "random"):
        entry = saved["listwise"][protocol]
        for name in ("base", "adapter"):
            assert {"ndcg@10", "recall@5", "mrr", "n"} <= set(entry[name])
            assert entry[name]["n"] == 2 and 0 <= entry[name]["ndcg@10"] <= 1
        assert "paired_ndcg@10_diff" in entry and "random_baseline" in entry
    for name in ("base", "adapter"):
        assert {"candidate_error_rate", "history_error_rate", "duplicate_error_rate"} <= set(
            saved["replies"][name]
        )
    md = (tmp_path / "finetune-eval.md").read_text()
    assert "NDCG@10" in md and "adapter" in md and report["markdown_path"].endswith(".md")
    # The adapter's card (written by train) now holds this report's numbers.
    card = (run["out"] / "adapter" / "README.md").read_text()
    adapter = saved["listwise"]["random"]["adapter"]
    assert "<!-- report: finetune-eval -->" in card
    assert f"| adapter | random ndcg@10 | {adapter['ndcg@10']:.4f} ± {adapter['ndcg@10_se']:.4f} |" in card


@pytest.mark.slow
def test_reranker_scores_match_training_format(run: dict, data_dir: Path) -> None:
    from llm.reranker import LLMReranker
    from retrieval.data import load_dataset

    manifest = json.loads((data_dir / "manifest.json").read_text())
    catalog = load_dataset(manifest["source"]["data"]).catalog
    rec = read_jsonl(data_dir / "test_listwise_random.jsonl")[0]
    model, tok = load_llm(TEST_LLM, adapter=run["out"] / "adapter", threads=2)
    rr = LLMReranker(model=model, tokenizer=tok, max_history=3, title_chars=30)
    hist, cands = rec["meta"]["history_ids"], rec["meta"]["candidate_ids"]
    scores = rr.rerank(hist, cands, catalog)
    stored = rr.score_messages([rec["messages"][:-1]], len(cands))[0]
    np.testing.assert_allclose(scores, stored, atol=1e-4)  # same prompt as the training data
    assert np.isclose(np.exp(scores).sum(), 1.0, atol=1e-4)
    both = LLMReranker(model=model, tokenizer=tok, max_history=3, title_chars=30, permutations=2)
    s2 = both.rerank(hist, cands, catalog)
    assert s2.shape == (len(cands),) and np.isfinite(s2).all()
    assert sorted(both.rerank_ids(hist, cands, catalog)) == sorted(cands)


def test_periodic_eval_reports_dev_listwise_ranking(data_dir: Path, tmp_path: Path) -> None:
    """Each eval also ranks the dev listwise examples by letter logits; at step 0 (LoRA B = 0)
    that must equal the base model scored by the reranker the evaluator uses."""
    import dataclasses

    from finetune.data import read_jsonl
    from finetune.evaluate import ranking_metrics, target_rank
    from llm.listwise import LETTERS
    from llm.reranker import LLMReranker

    margs, dargs, targs = _args(data_dir, tmp_path / "run", max_steps=1)
    dargs = dataclasses.replace(dargs, tasks="listwise", eval_source="dev", eval_examples=8)
    result = train(margs, dargs, dataclasses.replace(targs, save_every=0))
    first, last = result.eval_history[0], result.eval_history[-1]
    dev = read_jsonl(data_dir / "dev_listwise.jsonl")[:8]
    assert first["listwise_n"] == last["listwise_n"] == len(dev) > 0
    model, tok = load_llm(TEST_LLM, threads=2)
    rr = LLMReranker(model=model, tokenizer=tok)
    ranks = [
        target_rank(
            rr.score_messages([r["messages"][:-1]], len(r["meta"]["candidate_ids"]))[0],
            LETTERS.index(r["meta"]["target_letter"]),
        )
        for r in dev
    ]
    assert first["listwise_ndcg@10"] == pytest.approx(ranking_metrics(ranks)["ndcg@10"], abs=1e-6)
    assert 0.0 <= last["listwise_ndcg@10"] <= 1.0


def test_verbalizer_loss_is_the_rerankers_letter_log_prob(data_dir: Path) -> None:
    """The listwise training loss is the negative log-prob the evaluator ranks by (letters
    renormalised over the candidates), per example and batched with left padding; the LM loss
    of the same example differs (it covers the whole vocabulary and the end-of-turn tokens)."""
    import torch

    from finetune.encoding import collate, completion_loss, encode_record
    from llm.listwise import LETTERS
    from llm.reranker import LLMReranker

    model, tok = load_llm(TEST_LLM, threads=2)
    recs = read_jsonl(data_dir / "test_listwise_random.jsonl")[:3]
    rr = LLMReranker(model=model, tokenizer=tok)
    expected = [
        -rr.score_messages([r["messages"][:-1]], len(r["meta"]["candidate_ids"]))[0][
            LETTERS.index(r["meta"]["target_letter"])
        ]
        for r in recs
    ]
    encoded = [encode_record(tok, r) for r in recs]
    assert all(ex.choice_ids and ex.target >= 0 for ex in encoded)
    with torch.inference_mode():
        single = [float(completion_loss(model, collate([ex], tok.eos_token_id))[0]) for ex in encoded]
        batched, count = completion_loss(model, collate(encoded, tok.eos_token_id))
        lm, lm_count = completion_loss(model, collate([encode_record(tok, recs[0], "lm")], tok.eos_token_id))
    np.testing.assert_allclose(single, expected, atol=2e-3)
    assert count == len(recs) and float(batched) == pytest.approx(sum(expected), abs=5e-3)
    assert lm_count > 1 and abs(float(lm) - expected[0]) > 1e-2
    with pytest.raises(ValueError, match="listwise_loss"):
        encode_record(tok, recs[0], "pairwise")


def test_lora_layers_top_k_trains_only_the_last_layers(data_dir: Path, tmp_path: Path) -> None:
    import dataclasses

    from safetensors.torch import load_file

    from finetune.arguments import lora_layer_indices

    assert lora_layer_indices("all", 30) is None and lora_layer_indices("top2", 30) == [28, 29]
    for bad in ("top0", "top31", "last2", "2"):
        with pytest.raises(ValueError):
            lora_layer_indices(bad, 30)
    margs, dargs, targs = _args(data_dir, tmp_path / "run", max_steps=1)
    result = train(
        dataclasses.replace(margs, lora_layers="top2"),
        dataclasses.replace(dargs, tasks="listwise"),
        dataclasses.replace(targs, save_every=0),
    )
    weights = load_file(str(Path(result.adapter_dir) / "adapter_model.safetensors"))
    layers = {int(k.split(".layers.")[1].split(".")[0]) for k in weights}
    n = load_llm(TEST_LLM, threads=2)[0].config.num_hidden_layers
    assert layers == {n - 2, n - 1}
    with pytest.raises(ValueError, match="lora_layers"):
        train(dataclasses.replace(margs, lora_layers="bottom2"), dargs, targs)


def test_distillation_loss_is_the_cross_entropy_to_the_teacher(data_dir: Path) -> None:
    """With teacher log-probs the verbalizer row's loss is (1-w) x CE(true letter) + w x CE(teacher
    distribution at temperature T), both over the reranker's renormalised letter log-probs; a row
    without a teacher keeps the hard loss; data without teacher labels is refused, not ignored."""
    import dataclasses

    import torch

    from finetune.encoding import collate, completion_loss, encode_record
    from llm.listwise import LETTERS
    from llm.reranker import LLMReranker

    model, tok = load_llm(TEST_LLM, threads=2)
    rr = LLMReranker(model=model, tokenizer=tok)
    recs = read_jsonl(data_dir / "test_listwise_random.jsonl")[:2]
    rng = np.random.default_rng(0)
    for r in recs:  # test records carry no teacher: give them an arbitrary one
        z = rng.normal(size=len(r["meta"]["candidate_ids"]))
        r["meta"]["teacher_logprobs"] = (z - np.log(np.exp(z).sum())).tolist()
    w, t = 0.7, 0.5
    expected = []
    for r in recs:
        logp = rr.score_messages([r["messages"][:-1]], len(r["meta"]["candidate_ids"]))[0].astype(float)
        q = np.exp(np.array(r["meta"]["teacher_logprobs"]) / t)
        q /= q.sum()
        hard = -logp[LETTERS.index(r["meta"]["target_letter"])]
        expected.append((1 - w) * hard + w * float(-(q * logp).sum()))
    distilled = encode_record(tok, recs[0], distill=True)
    plain = encode_record(tok, recs[1])  # no teacher on this one: hard label only
    assert distilled.teacher and not plain.teacher
    with torch.inference_mode():
        both, count = completion_loss(model, collate([distilled, plain], tok.eos_token_id), w, t)
        alone = completion_loss(model, collate([distilled], tok.eos_token_id), w, t)[0]
        hard_only = completion_loss(model, collate([distilled], tok.eos_token_id))[0]
    assert count == 2
    assert float(alone) == pytest.approx(expected[0], abs=5e-3)
    hard_1 = -rr.score_messages([recs[1]["messages"][:-1]], len(recs[1]["meta"]["candidate_ids"]))[0][
        LETTERS.index(recs[1]["meta"]["target_letter"])
    ]
    assert float(both) == pytest.approx(expected[0] + hard_1, abs=1e-2)
    assert abs(float(hard_only) - float(alone)) > 1e-3  # the teacher term changes the loss
    del recs[1]["meta"]["teacher_logprobs"]
    with pytest.raises(ValueError, match="teacher_logprobs"):
        encode_record(tok, recs[1], distill=True)
    margs, dargs, targs = _args(data_dir, data_dir.parent / "unused", max_steps=1)
    with pytest.raises(ValueError, match="distill_weight"):
        train(margs, dataclasses.replace(dargs, distill_weight=1.5), targs)
    with pytest.raises(ValueError, match="verbalizer"):
        train(margs, dataclasses.replace(dargs, distill_weight=0.5, listwise_loss="lm"), targs)


def test_init_adapter_continues_from_saved_weights(run: dict, data_dir: Path, tmp_path: Path) -> None:
    """A second stage starts from the first stage's LoRA weights (its step-0 eval equals the
    saved adapter's last eval), and an adapter of another shape is refused."""
    import dataclasses

    margs, dargs, targs = _args(data_dir, tmp_path / "stage2", max_steps=1)
    adapter = run["out"] / "adapter"
    saved = json.loads((run["out"] / "metrics.json").read_text())  # written with that adapter
    result = train(
        dataclasses.replace(margs, init_adapter=str(adapter)), dargs, dataclasses.replace(targs, save_every=0)
    )
    assert result.eval_history[0]["eval_loss"] == pytest.approx(saved["last_eval_loss"], abs=1e-4)
    with pytest.raises(ValueError, match="init_adapter"):
        train(
            dataclasses.replace(margs, init_adapter=str(adapter), lora_r=8),
            dargs,
            dataclasses.replace(targs, output_dir=str(tmp_path / "bad")),
        )


def test_curriculum_puts_the_warmup_tasks_first_in_the_first_epoch_only() -> None:
    """``rebuy:3,chat:2``: epoch 0 opens with 3 re-buy then 2 chat examples, then every other
    example once, in the seeded order a plain epoch uses; epoch 1 is a plain shuffle; a stage
    larger than its task takes what there is; bad specs are refused."""
    from finetune.arguments import parse_curriculum
    from finetune.encoding import epoch_order

    tasks = ["listwise"] * 12 + ["rebuy"] * 5 + ["chat"] * 4
    cur = parse_curriculum("rebuy:3, chat:2", "listwise,rebuy,chat")
    assert cur == [("rebuy", 3), ("chat", 2)]
    order = epoch_order(tasks, seed=7, epoch=0, curriculum=cur)
    assert sorted(order) == list(range(len(tasks)))  # a permutation: nothing lost, nothing twice
    assert [tasks[i] for i in order[:5]] == ["rebuy"] * 3 + ["chat"] * 2
    plain = epoch_order(tasks, seed=7, epoch=0)
    assert order[:3] == [i for i in plain if tasks[i] == "rebuy"][:3]
    assert order[3:5] == [i for i in plain if tasks[i] == "chat"][:2]
    assert order[5:] == [i for i in plain if i not in order[:5]]
    assert epoch_order(tasks, seed=7, epoch=1, curriculum=cur) == epoch_order(tasks, seed=7, epoch=1)
    assert epoch_order(tasks, seed=7, epoch=0, curriculum=[("rebuy", 50)])[:5] == [
        i for i in plain if tasks[i] == "rebuy"
    ]
    assert parse_curriculum("", "listwise") == []
    for bad in ("rebuy", "rebuy:0", "rebuy:x", "sft:3", "rebuy:2,rebuy:3"):
        with pytest.raises(ValueError, match="curriculum"):
            parse_curriculum(bad, "listwise,rebuy,chat")


def test_reranker_prompts_an_adapter_the_way_it_was_trained(run: dict, tmp_path: Path) -> None:
    """An adapter's reranker defaults to the history length and title cap of its training data
    (the adapter's data_manifest.json: 3 titles of 30 characters here, not the 10 / 60 of a
    bare model); explicit values still win."""
    from llm.listwise import TITLE_CHARS
    from llm.reranker import LLMReranker, prompt_shape_of

    adapter = run["out"] / "adapter"
    assert prompt_shape_of(adapter) == {"max_history": 3, "title_chars": 30}
    assert prompt_shape_of(None) == {} and prompt_shape_of(tmp_path) == {}  # no manifest there
    rr = LLMReranker(TEST_LLM, adapter_dir=adapter, threads=2)
    assert (rr.max_history, rr.title_chars) == (3, 30)
    explicit = LLMReranker(TEST_LLM, adapter_dir=adapter, threads=2, max_history=5, title_chars=40)
    assert (explicit.max_history, explicit.title_chars) == (5, 40)
    bare = LLMReranker(TEST_LLM, threads=2)
    assert (bare.max_history, bare.title_chars) == (10, TITLE_CHARS)
