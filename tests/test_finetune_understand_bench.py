"""Issue #20 plumbing: ``bench.finetune --task understand`` (generate -> train -> dev evaluation,
one report), the adapter card written by training and filled in by evaluation, the selection code
never reading the test split, and the product loading an understanding adapter.

The slow tests train the real tiny LLM for two steps on generated understanding data of the toy
shop; the others use hand-made files."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.adapters import UNDERSTAND_TASK, adapter_task
from assistant.config import AssistantConfig
from assistant.dialogue_state import DialogueState
from assistant.llm_setup import chat_models
from finetune.arguments import DataArguments, GenerateConfig, ModelArguments, TrainArguments
from finetune.card import CARD_FILE, card_metric_rows, record_metrics, training_data_licence, write_card
from finetune.toydata import write_toy_dataset
from finetune.understand import generate_understand
from llm.listwise import ADAPTER_DATA_MANIFEST
from llm.registry import TEST_LLM


def _card_table(card: str, tag: str) -> dict[tuple[str, str], str]:
    section = card.split(f"<!-- report: {tag} -->", 1)[1].split("<!-- end report -->", 1)[0]
    rows = re.findall(r"^\| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", section, re.M)
    return {(a, b): c for a, b, c in rows if a not in ("system", "---")}


def _fake_adapter(root: Path, base: str = TEST_LLM, task: str = "understand") -> Path:
    root.mkdir(parents=True)
    (root / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": f"/cache/llm/{base}"}))
    (root / "training_config.json").write_text(json.dumps({"model": {"model": base}}))
    (root / ADAPTER_DATA_MANIFEST).write_text(json.dumps({"task": task, "source": {"name": "toy-shop"}}))
    return root


def _understand_report(exact: float) -> dict:
    def entry(v: float) -> dict:
        return {"value": v, "ci95": [v / 2, min(1.0, v * 1.5)]}

    systems = {
        name: {k: entry(v) for k, v in (("valid", 1.0), ("exact", e), ("exact_hard", e), ("micro_f1", e / 2))}
        for name, e in (("rules", 0.8), ("adapter", exact))
    }
    return {"task": "understand", "split": "dev", "n_records": 10, "all": {"systems": systems}}


# --- fast: the card and the adapter checks on hand-made files ------------------------------------


def test_card_metrics_section_is_replaced_per_report_and_equals_it(tmp_path: Path) -> None:
    adapter = _fake_adapter(tmp_path / "adapter")
    margs = ModelArguments(model=TEST_LLM, lora_r=4)
    dargs = DataArguments(data_dir="runs/x", tasks="understand")
    targs = TrainArguments(output_dir="runs/run", max_steps=3, batch_size=2)
    result = SimpleNamespace(
        steps=3, train_examples=40, skipped_too_long=0, seconds=12.0, tokens_per_second=50.0,
        world_size=1, first_eval_loss=3.0, last_eval_loss=2.5,
    )  # fmt: skip
    card = write_card(adapter, margs, dargs, targs, result).read_text()
    assert f"`{TEST_LLM}`" in card and "r=4" in card and "--max_steps 3" in card and "--lora_r 4" in card
    assert "No evaluation yet" in card
    record_metrics(adapter, _understand_report(0.25), "dev")
    record_metrics(adapter, _understand_report(0.5), "test")
    second = _understand_report(0.3)
    record_metrics(adapter, second, "dev")  # a re-run replaces its own section only
    card = (adapter / CARD_FILE).read_text()
    assert card.count("<!-- report: dev -->") == 1 and "No evaluation yet" not in card
    assert _card_table(card, "dev") == {(a, b): c for a, b, c in card_metric_rows(second)}
    assert _card_table(card, "dev")[("adapter", "exact")] == "0.3000 [0.1500, 0.4500]"
    assert _card_table(card, "test")[("adapter", "exact")].startswith("0.5000")
    assert card.index("## Training") < card.index("## Metrics")


def test_training_data_licence_names_what_may_not_be_redistributed() -> None:
    amazon = training_data_licence(
        {"task": "understand", "source": {"name": "amazon-beauty-2014"}, "webshop": {"folder": "w"}}
    )
    assert "NOT redistributable" in amazon[0] and "amazon-beauty-2014" in amazon[0]
    assert "MIT" in amazon[1]
    assert "MovieLens" in training_data_licence({"source": {"name": "movielens-100k"}})[0]
    assert "this project's licence" in training_data_licence({"source": {"name": "toy-shop"}})[0]


def test_adapter_checks_fail_with_a_clear_message(tmp_path: Path) -> None:
    good = _fake_adapter(tmp_path / "good")
    assert adapter_task(good, TEST_LLM) == UNDERSTAND_TASK
    assert adapter_task(_fake_adapter(tmp_path / "rec", task="recommend"), TEST_LLM) == "recommend"
    with pytest.raises(ValueError, match="not a LoRA adapter directory"):
        adapter_task(tmp_path, TEST_LLM)
    with pytest.raises(ValueError, match="was trained on 'smollm2-135m' but the configured llm is"):
        adapter_task(good, "qwen2.5-coder-0.5b")
    with pytest.raises(ValueError, match="needs a local llm"):
        chat_models(None, AssistantConfig(llm=None, adapter=str(good)))


# --- slow: the real tiny LLM, two training steps ---------------------------------------------------


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The bench on a generated folder whose test split was removed: the whole run (train, dev
    evaluation, report) must not need it."""
    from bench.finetune import main

    root = tmp_path_factory.mktemp("ftu")
    shop = write_toy_dataset(root / "toy-shop", seed=0)
    data = root / "data"
    generate_understand(
        GenerateConfig(
            data=str(shop), out=str(data), task="understand", understand_train=16,
            understand_dev=6, understand_test=6,
        )
    )  # fmt: skip
    (data / "test_understand.jsonl").unlink()
    out = root / "reports"
    main(
        [
            "--task", "understand", "--quick", "--data-dir", str(data), "--work", str(root / "work"),
            "--out", str(out), "--threads", "1", "--eval-records", "4", "--bootstrap", "20", "--no-progress",
        ]
    )  # fmt: skip
    stem = f"finetune-understand-toy-shop-{TEST_LLM}-quick"
    return {
        "root": root,
        "shop": shop,
        "out": out,
        "stem": stem,
        "report": json.loads((out / f"{stem}.json").read_text()),
    }


@pytest.mark.slow
def test_bench_reports_the_evaluators_dev_numbers_without_the_test_split(bench_run: dict) -> None:
    report, out, stem = bench_run["report"], bench_run["out"], bench_run["stem"]
    ev = json.loads((bench_run["root"] / "work" / "eval" / "understand-dev.json").read_text())
    assert report["evaluation"]["split"] == ev["split"] == "dev"
    for name, m in ev["all"]["systems"].items():  # the evaluator's numbers, not the bench's own
        for key in ("valid", "exact", "exact_hard", "micro_f1"):
            assert report["evaluation"]["all"]["systems"][name][key]["value"] == m[key]["value"]
    assert set(ev["all"]["systems"]) == {"rules", "base", "adapter"} and ev["n_records"] == 4
    assert report["train"]["steps"] == 2 and "generate" not in report["seconds"]
    assert report["seconds"]["total"] >= report["seconds"]["train"] + report["seconds"]["evaluate"] - 0.2
    md = (out / f"{stem}.md").read_text()
    assert "dev (selection)" in md and f"{ev['all']['systems']['rules']['micro_f1']['value']:.3f}" in md
    assert (out / f"{stem}.png").stat().st_size > 10_000
    assert not (bench_run["root"] / "data" / "test_understand.jsonl").exists()


@pytest.mark.slow
def test_training_writes_the_card_and_evaluation_fills_in_the_reports_metrics(bench_run: dict) -> None:
    adapter = Path(bench_run["report"]["train"]["adapter_dir"])
    card = (adapter / CARD_FILE).read_text()
    ev = json.loads((bench_run["root"] / "work" / "eval" / "understand-dev.json").read_text())
    table = _card_table(card, "understand-dev")
    for name, m in ev["all"]["systems"].items():
        for key in ("exact", "micro_f1"):
            lo, hi = m[key]["ci95"]
            assert table[(name, key)] == f"{m[key]['value']:.4f} [{lo:.4f}, {hi:.4f}]"
    assert "this project's licence" in card and "python -m finetune train" in card
    assert f"`{TEST_LLM}`" in card and "dev_understand" in card


@pytest.mark.slow
def test_the_assistant_runs_its_understanding_stage_on_the_adapter(bench_run: dict, tmp_path: Path) -> None:
    from assistant import ShoppingAssistant

    adapter = bench_run["report"]["train"]["adapter_dir"]
    options = {"cache_dir": tmp_path, "show_progress": False, "threads": 1, "llm_quantize": "none"}
    bot = ShoppingAssistant.from_dataset(
        str(bench_run["shop"]), llm=TEST_LLM, adapter=adapter, understand_llm=True, **options
    )
    model = bot.understander._understand_llm
    assert model is not bot.llm and Path(model.adapter).resolve() == Path(adapter).resolve()
    assert bot.llm.adapter is None  # replies stay with the base model
    assert bot.chat("something nice, not too pricey, for my sister", session_id="s").text
    parsed, _ = bot.understander._read(
        "a shampoo but not Zorblax", DialogueState()
    )  # a negation the rules can't place
    assert parsed.source == "rules+llm"  # so the JSON fallback ran, on the adapter's model
    other = shutil.copytree(adapter, tmp_path / "other-base")
    cfg = json.loads((other / "training_config.json").read_text())
    (other / "training_config.json").write_text(
        json.dumps({**cfg, "model": {**cfg["model"], "model": "qwen2.5-coder-0.5b"}})
    )
    with pytest.raises(ValueError, match=r"was trained on 'qwen2\.5-coder-0\.5b'"):
        ShoppingAssistant.from_dataset(str(bench_run["shop"]), llm=TEST_LLM, adapter=other, **options)
    with pytest.raises(ValueError, match="not a LoRA adapter"):
        ShoppingAssistant.from_dataset(str(bench_run["shop"]), llm=TEST_LLM, adapter=tmp_path, **options)


@pytest.mark.slow
def test_app_takes_an_adapter(bench_run: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from assistant.ui.launch import main, parse_args

    assert parse_args(["--adapter", "runs/x/adapter"]).adapter == ["runs/x/adapter"]
    argv = [
        "--dataset",
        str(bench_run["shop"]),
        "--llm",
        TEST_LLM,
        "--cache-dir",
        str(tmp_path),
        "--threads",
        "1",
    ]
    assert main([*argv, "--adapter", str(tmp_path)]) == 2  # before any server starts
    assert "is not a LoRA adapter directory" in capsys.readouterr().err
