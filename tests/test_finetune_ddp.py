"""Two-process DDP training on CPUs (gloo) under ``torchrun``, as documented in finetune/README.md
("Multi-process and multi-GPU training"): the time-budget stop is one decision for every rank
(no rank left waiting in a gradient all-reduce), one summary / metrics.json / log, and the
throughput counts the tokens of both processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _servers import die_with_parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from finetune.arguments import DataArguments
from finetune.data import GenerateConfig, generate, read_jsonl
from finetune.encoding import encode_example, load_training_records

REPO = Path(__file__).resolve().parents[1]
TASKS, MAX_SEQ_LEN, SEED = "chat", 256, 0


def _gloo_available() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_gloo_available()


def expected_tokens(data_dir: Path, model_dir: Path, n_examples: int) -> int:
    """Unpadded tokens of the first ``n_examples`` of epoch 0, in the order ``train`` feeds them
    (batch size 1 and 2 processes: rank r takes examples r, r + 2, ...)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    dargs = DataArguments(data_dir=str(data_dir), tasks=TASKS, max_seq_len=MAX_SEQ_LEN)
    train_recs, _ = load_training_records(dargs, SEED)
    lengths = [len(encode_example(tok, r["messages"])[0]) for r in train_recs]
    lengths = [n for n in lengths if n <= MAX_SEQ_LEN]
    assert n_examples <= len(lengths), "the run went past epoch 0: lower max_train_seconds"
    order = np.random.default_rng([SEED, 0]).permutation(len(lengths))
    return sum(lengths[i] for i in order[:n_examples])


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux" or not _gloo_available(), reason="needs torch.distributed gloo")
def test_two_process_run_stops_on_time_together(tmp_path: Path, tiny_llm_dir: Path) -> None:
    pytest.importorskip("peft")
    from finetune.toydata import write_toy_dataset

    data = tmp_path / "data"
    generate(
        GenerateConfig(
            data=str(write_toy_dataset(tmp_path / "shop", n_items=80, n_users=60, seed=1)),
            out=str(data),
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
    assert len(read_jsonl(data / "train_chat.jsonl")) >= 20
    out = tmp_path / "run"
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "true",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
    }
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "finetune", "train",
        "--model", str(tiny_llm_dir), "--lora_r", "4", "--lora_alpha", "8", "--lora_dropout", "0",
        "--data_dir", str(data), "--tasks", TASKS, "--max_seq_len", str(MAX_SEQ_LEN),
        "--eval_examples", "2", "--eval_source", "train",
        "--output_dir", str(out), "--seed", str(SEED), "--learning_rate", "5e-3",
        "--max_steps", "1000", "--max_train_seconds", "2",  # the time budget, not max_steps, ends it
        "--batch_size", "1", "--grad_accum", "1", "--save_every", "1", "--keep_last", "1",
        "--eval_every", "0", "--log_every", "1", "--threads", "1", "--progress", "false",
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd,
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=480,
            preexec_fn=die_with_parent(),  # torchrun passes the SIGTERM on to its workers
        )
    except subprocess.TimeoutExpired as exc:  # the hang this guards against
        pytest.fail(
            f"2-process run did not finish in 480 s (a rank left waiting?):\n{str(exc.stderr)[-3000:]}"
        )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]  # torchrun exits 0 only when both ranks did

    # One summary, one stop message: only the main process prints.
    assert proc.stdout.count('"adapter_dir"') == 1, proc.stdout
    assert log.count("max_train_seconds reached") == 1, log[-4000:]

    metrics = json.loads((out / "metrics.json").read_text())
    steps = metrics["steps"]
    assert 1 <= steps < 1000 and metrics["world_size"] == 2
    # Both ranks' tokens: 2 examples (one per rank) per optimizer step.
    assert metrics["tokens"] == expected_tokens(data, tiny_llm_dir, 2 * steps)
    assert metrics["tokens_per_second"] > 0

    # The main process alone wrote the log (one line per step) and the checkpoints.
    events = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "train"] == list(range(1, steps + 1))
    assert [e["step"] for e in events if e["event"] == "checkpoint"][-1] == steps
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [f"checkpoint-{steps:06d}"]
    state = json.loads((out / "checkpoints" / f"checkpoint-{steps:06d}" / "trainer_state.json").read_text())
    assert state["step"] == steps and state["tokens"] == metrics["tokens"]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
