"""LoRA fine-tuning of a chat LLM on generated data (``python -m finetune train --config x.yaml``).

Modelled on peft's ``examples/sft/train.py`` (argument dataclasses with help text parsed by
``HfArgumentParser``, launched by ``accelerate launch --config_file ...``), but with a plain
torch loop around ``accelerate.Accelerator`` instead of ``Trainer``/``SFTTrainer``, because:

* loss masking is our own (only the final assistant turn is trained; the prompt is tokenized
  exactly as the evaluator and the reranker tokenize it, so the verbalizer letters match);
* checkpoints must be atomic (tmp dir + rename), tiny (adapter + optimizer only, never the
  0.5B base weights) and resume at the exact micro-batch: a 40-line loop is easier to make
  and test that way than Trainer's callbacks;
* the same loop runs on a CPU, one GPU, DDP or FSDP; ``Accelerator`` does the device
  placement, gradient accumulation and distributed wrapping.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm.auto import tqdm

from finetune.data import read_jsonl, read_manifest
from finetune.metrics import ranking_metrics, target_rank
from llm.choices import choice_token_ids
from llm.listwise import ADAPTER_DATA_MANIFEST, LETTERS
from llm.models import load_llm
from llm.reranker import LLMReranker

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"
"""Written last into a checkpoint: a checkpoint without it is incomplete and ignored."""


@dataclass
class ModelArguments:
    model: str = field(
        default="qwen2.5-coder-0.5b",
        metadata={"help": "registered LLM name (llm.models) or a local HF directory"},
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (scale = alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA path"})
    target_modules: str = field(
        default="q_proj,v_proj", metadata={"help": "comma-separated module names that get LoRA"}
    )
    lora_layers: str = field(
        default="all",
        metadata={
            "help": "all, or topK: LoRA only on the last K decoder layers. Backward then stops at "
            "layer N-K, so a CPU run trains on ~2x the examples for K = N/4"
        },
    )
    dtype: str = field(
        default="auto",
        metadata={"help": "base weight dtype: auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16"},
    )
    init_adapter: str | None = field(
        default=None,
        metadata={
            "help": "start the LoRA weights from this saved adapter (same LoRA settings) instead of "
            "zero: continued training, or a second curriculum stage; the optimizer starts fresh"
        },
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "trade compute for activation memory"}
    )


@dataclass
class DataArguments:
    data_dir: str = field(default="", metadata={"help": "folder written by `python -m finetune generate`"})
    tasks: str = field(
        default="listwise,sft,constraints,chat",
        metadata={"help": "comma-separated tasks to train on (train_<task>.jsonl files)"},
    )
    max_train_examples: int | None = field(
        default=None, metadata={"help": "cap on the shuffled training mix (default: all)"}
    )
    max_seq_len: int = field(default=1024, metadata={"help": "longer examples are skipped (and counted)"})
    listwise_loss: str = field(
        default="verbalizer",
        metadata={
            "help": "verbalizer: cross-entropy over the candidate letters' logits at the answer "
            "position, the very scores the reranker ranks by; lm: next-token loss on the whole "
            "answer (letter + end-of-turn), which spends its first steps on the answer format"
        },
    )
    distill_weight: float = field(
        default=0.0,
        metadata={
            "help": "listwise verbalizer loss = (1 - w) x cross-entropy on the true letter + w x "
            "cross-entropy on the teacher's letter distribution (meta.teacher_logprobs, written by "
            "`generate --teacher`); soft labels carry a ranking of all 20 candidates, not one noisy "
            "pick. 0 = hard labels only"
        },
    )
    distill_temperature: float = field(
        default=1.0,
        metadata={
            "help": "the teacher's letter distribution is softmax(teacher_logprobs / T): below 1 "
            "sharpens a flat teacher (a weak ranker's T=1 distribution is near uniform and teaches "
            "almost nothing)"
        },
    )
    curriculum: str = field(
        default="",
        metadata={
            "help": "TASK:N[,TASK:N...]: warm-up stages: the first epoch opens with N examples of each "
            "TASK in turn (e.g. rebuy:240: a small model first learns to tie a title to its letter "
            "on exact re-buys), then the shuffled mix of everything else; later epochs shuffle all. "
            "Each TASK must be in tasks. Empty: none"
        },
    )
    eval_examples: int = field(default=32, metadata={"help": "size of the fixed dev set for eval loss"})
    eval_listwise: bool = field(
        default=True,
        metadata={
            "help": "at each eval also rank the eval set's listwise examples by letter logits (NDCG@10, R@1)"
        },
    )
    eval_source: str = field(
        default="dev",
        metadata={"help": "dev (held-out dev users) or train (first train examples: overfit check)"},
    )


@dataclass
class TrainArguments:
    output_dir: str = field(default="", metadata={"help": "run folder: checkpoints/, adapter/, logs"})
    seed: int = field(default=0, metadata={"help": "seed for data order, LoRA init and dropout"})
    learning_rate: float = field(default=2e-4, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    lr_scheduler: str = field(
        default="linear", metadata={"help": "linear | cosine | constant (after warmup)"}
    )
    warmup_steps: int = field(default=0, metadata={"help": "linear warmup optimizer steps"})
    lr_clock: str = field(
        default="steps",
        metadata={
            "help": "steps: the schedule decays over max_steps; time: over max_train_seconds (of "
            "training, summed across resumes), so a time-budgeted run ends at its lowest lr whatever "
            "speed the machine has (a CPU run's step count is not known in advance)"
        },
    )
    max_steps: int = field(default=-1, metadata={"help": "optimizer steps; -1 = num_epochs over the data"})
    num_epochs: float = field(default=1.0, metadata={"help": "epochs when max_steps is -1"})
    max_train_seconds: float = field(
        default=0.0, metadata={"help": "stop (and save) after this much training wall time; 0 = no limit"}
    )
    batch_size: int = field(default=1, metadata={"help": "micro-batch size per device"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping (0 = off)"})
    eval_every: int = field(
        default=50, metadata={"help": "eval-loss period in optimizer steps (0 = only start/end)"}
    )
    eval_batch_size: int = field(default=4, metadata={"help": "batch size of the eval-loss pass"})
    save_every: int = field(default=50, metadata={"help": "checkpoint period in optimizer steps (0 = off)"})
    keep_last: int = field(default=2, metadata={"help": "checkpoints to keep"})
    log_every: int = field(default=10, metadata={"help": "train-loss logging period"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads (the box is shared: keep 1-2)"})
    mixed_precision: str = field(
        default="no", metadata={"help": "accelerate mixed precision: no | bf16 | fp16"}
    )
    resume: bool = field(default=False, metadata={"help": "continue from the latest complete checkpoint"})
    resume_from: str | None = field(default=None, metadata={"help": "continue from this checkpoint folder"})
    progress: bool = field(default=True, metadata={"help": "show tqdm progress"})


@dataclass
class TrainResult:
    """What a run produced; ``train`` returns it and writes it as ``metrics.json``."""

    adapter_dir: str
    steps: int
    start_step: int
    first_eval_loss: float | None
    last_eval_loss: float | None
    eval_history: list[dict[str, float]]
    train_examples: int
    skipped_too_long: int
    seconds: float
    tokens_per_second: float
    """Job-wide: the tokens of every process over the training loop's wall time."""
    tokens: int = 0
    """Tokens (prompt + answer, no padding) trained on by all processes in this run (not a resumed part)."""
    world_size: int = 1


# --------------------------------------------------------------------------------------------
# Config parsing (YAML + CLI overrides)
# --------------------------------------------------------------------------------------------

ARG_CLASSES = (ModelArguments, DataArguments, TrainArguments)


def parse_train_args(
    argv: Sequence[str] | None = None,
) -> tuple[ModelArguments, DataArguments, TrainArguments]:
    """``--config file.yaml`` (flat keys) supplies defaults; any ``--field value`` overrides it."""
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(ARG_CLASSES)
    parser.add_argument("--config", default=None, help="YAML file with flat keys of the argument dataclasses")
    pre, _ = parser.parse_known_args(argv)
    if pre.config:
        overrides = load_yaml_config(pre.config)
        parser.set_defaults(**overrides)
    # Returns the three dataclasses, a namespace holding --config, and the unparsed strings.
    parsed = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    if parsed[-1]:
        parser.error(f"unrecognised arguments: {parsed[-1]}")
    margs, dargs, targs = parsed[:3]
    return margs, dargs, targs


def load_yaml_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config {path} not found")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of argument names to values")
    known = {f.name for cls in ARG_CLASSES for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; known: {sorted(known)}")
    return data


def _validate(margs: ModelArguments, dargs: DataArguments, targs: TrainArguments) -> None:
    if not dargs.data_dir:
        raise ValueError("data_dir is required (a folder from `python -m finetune generate`)")
    if not targs.output_dir:
        raise ValueError("output_dir is required")
    if targs.lr_clock not in ("steps", "time"):
        raise ValueError(f"lr_clock must be steps|time, got {targs.lr_clock!r}")
    if targs.lr_clock == "time" and targs.max_train_seconds <= 0:
        raise ValueError("lr_clock=time needs max_train_seconds > 0 (the length of the schedule)")
    if targs.lr_scheduler not in ("linear", "cosine", "constant"):
        raise ValueError(f"lr_scheduler must be linear|cosine|constant, got {targs.lr_scheduler!r}")
    if dargs.eval_source not in ("dev", "train"):
        raise ValueError(f"eval_source must be dev|train, got {dargs.eval_source!r}")
    for name in ("batch_size", "grad_accum", "keep_last", "threads", "eval_batch_size"):
        if getattr(targs, name) < 1:
            raise ValueError(f"{name} must be >= 1")
    if margs.lora_r < 1:
        raise ValueError("lora_r must be >= 1")
    if dargs.listwise_loss not in ("verbalizer", "lm"):
        raise ValueError(f"listwise_loss must be verbalizer|lm, got {dargs.listwise_loss!r}")
    if not 0.0 <= dargs.distill_weight <= 1.0:
        raise ValueError(f"distill_weight must be in [0, 1], got {dargs.distill_weight}")
    if dargs.distill_temperature <= 0:
        raise ValueError(f"distill_temperature must be > 0, got {dargs.distill_temperature}")
    if dargs.distill_weight > 0 and dargs.listwise_loss != "verbalizer":
        raise ValueError("distill_weight needs listwise_loss=verbalizer (the teacher scores letters)")
    _lora_top_k(margs.lora_layers)  # the form; the bound needs the model's layer count
    parse_curriculum(dargs.curriculum, dargs.tasks)


def epoch_order(
    tasks: Sequence[str | None], seed: int, epoch: int, curriculum: Sequence[tuple[str, int]] = ()
) -> list[int]:
    """Example indices in training order for one epoch: a seeded shuffle; under a curriculum
    [(TASK, N), ...] the first epoch opens with N of each TASK's examples in turn, then the rest
    of the shuffle. Deterministic, so a resumed run skips exactly the batches it trained on."""
    order = np.random.default_rng([seed, epoch]).permutation(len(tasks)).tolist()
    if curriculum and epoch == 0:
        first: list[int] = []
        for task, n in curriculum:
            first += [i for i in order if tasks[i] == task][:n]
        taken = set(first)
        order = first + [i for i in order if i not in taken]
    return order


def parse_curriculum(curriculum: str, tasks: str) -> list[tuple[str, int]]:
    """``"TASK:N[,TASK:N...]"`` -> [(TASK, N), ...]; empty -> []. Each TASK must be one of the
    trained ``tasks``, once."""
    names = [t.strip() for t in tasks.split(",") if t.strip()]
    stages: list[tuple[str, int]] = []
    for part in (p.strip() for p in curriculum.split(",") if p.strip()):
        task, sep, n = part.partition(":")
        task = task.strip()
        if not sep or not n.strip().isdigit() or int(n) < 1:
            raise ValueError(
                f"curriculum must look like TASK:N[,TASK:N] (e.g. rebuy:240), got {curriculum!r}"
            )
        if task not in names:
            raise ValueError(f"curriculum task {task!r} is not among tasks {names}")
        if any(task == t for t, _ in stages):
            raise ValueError(f"curriculum names {task!r} twice")
        stages.append((task, int(n)))
    return stages


# --------------------------------------------------------------------------------------------
# Tokenization with completion-only labels
# --------------------------------------------------------------------------------------------

IGNORE_INDEX = -100
LETTER_TASKS = ("listwise", "rebuy")
"""Tasks whose answer is one candidate letter: trained with the verbalizer loss, ranked at eval."""


def encode_example(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)``: the prompt tokenized exactly as at inference (chat template +
    generation prompt), then the final assistant turn (+ its end-of-turn tokens), the only
    tokens with a loss."""
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("a training example must end with an assistant message")
    prompt_msgs, answer = messages[:-1], messages[-1]["content"]
    if getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.apply_chat_template(prompt_msgs, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        completion = full[len(prompt) :] if full.startswith(prompt) else answer + (tokenizer.eos_token or "")
    else:
        prompt = "".join(f"{m['role']}: {m['content']}\n" for m in prompt_msgs) + "assistant: "
        completion = answer + (tokenizer.eos_token or "")
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    return p_ids + c_ids, [IGNORE_INDEX] * len(p_ids) + c_ids


@dataclass(frozen=True)
class EncodedExample:
    """One tokenized training example and how its loss is taken."""

    ids: list[int]
    labels: list[int]
    choice_ids: tuple[int, ...] = ()
    """Verbalizer loss: the candidate letters' token ids (a listwise example); empty: LM loss."""
    target: int = -1
    """Index of the true letter in ``choice_ids``."""
    teacher: tuple[float, ...] = ()
    """The teacher's log-probabilities over ``choice_ids`` (distillation); empty: none."""


def encode_record(
    tokenizer: Any, record: dict[str, Any], listwise_loss: str = "verbalizer", distill: bool = False
) -> EncodedExample:
    """``encode_example`` plus, for a listwise record under the verbalizer loss, its letters
    (and, with ``distill``, the teacher's letter log-probs, which the record must then have)."""
    ids, labels = encode_example(tokenizer, record["messages"])
    if record.get("task") not in LETTER_TASKS or listwise_loss == "lm":
        return EncodedExample(ids, labels)
    if listwise_loss != "verbalizer":
        raise ValueError(f"listwise_loss must be verbalizer or lm, got {listwise_loss!r}")
    n = len(record["meta"]["candidate_ids"])
    letters = choice_token_ids(tokenizer, list(LETTERS[:n]))
    target = LETTERS.index(record["meta"]["target_letter"])
    first = next(v for v in labels if v != IGNORE_INDEX)
    if first != letters[target]:  # the answer must start with the very token the reranker reads
        raise ValueError(
            f"listwise answer starts with token {first}, not the letter token {letters[target]}: "
            "this chat template renders the answer differently from the reranker's prompt"
        )
    teacher: tuple[float, ...] = ()
    if distill and record.get("task") == "listwise":  # re-buy warm-up answers are exact: no teacher
        raw = record["meta"].get("teacher_logprobs")
        if raw is None:
            raise ValueError(
                f"record {record.get('id', '?')} has no meta.teacher_logprobs: distill_weight > 0 needs "
                "data generated with `python -m finetune generate --teacher ...`"
            )
        if len(raw) != n or not all(math.isfinite(v) for v in raw):
            raise ValueError(
                f"record {record.get('id', '?')}: teacher_logprobs must be {n} finite numbers, got {raw!r:.80}"
            )
        teacher = tuple(float(v) for v in raw)
    return EncodedExample(ids, labels, tuple(letters), target, teacher)


def collate(batch: Sequence[EncodedExample], pad_id: int) -> dict[str, Any]:
    """LEFT-padded batch: every answer ends at the last position, so the LM head only has to
    run on the last ``n_answer + 1`` positions (``logits_to_keep``) -- on a CPU the full-sequence
    head (seq x 49k-151k vocab) costs 20-30% of a step for nothing."""
    import torch

    width = max(len(ex.ids) for ex in batch)
    n_letters = max((len(ex.choice_ids) for ex in batch), default=0)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    choice_ids = torch.full((len(batch), max(n_letters, 1)), -1, dtype=torch.long)
    teacher = torch.full((len(batch), max(n_letters, 1)), float("nan"))
    answer = 0
    for r, ex in enumerate(batch):
        ids[r, width - len(ex.ids) :] = torch.tensor(ex.ids)
        labels[r, width - len(ex.labels) :] = torch.tensor(ex.labels)
        mask[r, width - len(ex.ids) :] = 1
        if ex.choice_ids:
            choice_ids[r, : len(ex.choice_ids)] = torch.tensor(ex.choice_ids)
        if ex.teacher:
            teacher[r, : len(ex.teacher)] = torch.tensor(ex.teacher)
        first = next((k for k, v in enumerate(ex.labels) if v != IGNORE_INDEX), len(ex.labels))
        answer = max(answer, len(ex.labels) - first)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "position_ids": (mask.cumsum(-1) - 1).clamp(min=0),
        "labels": labels,
        "n_answer": torch.tensor(max(answer, 1)),
        "choice_ids": choice_ids,
        "choice_target": torch.tensor([ex.target for ex in batch], dtype=torch.long),
        "choice_teacher": teacher,
    }


def completion_loss(
    model: Any, batch: dict[str, Any], distill_weight: float = 0.0, distill_temperature: float = 1.0
) -> tuple[Any, int]:
    """(summed loss, count) of a ``collate`` batch: next-token NLL over the answer tokens of
    LM rows, plus one cross-entropy over the candidate letters per verbalizer row; a row with
    teacher log-probs mixes in ``distill_weight`` x the cross-entropy to the teacher's letter
    distribution (rows without one keep the hard label alone)."""
    import torch
    import torch.nn.functional as F

    keep = int(batch["n_answer"])
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        logits_to_keep=keep + 1,
    )
    logits = out.logits[:, :-1, :].float()
    labels = batch["labels"][:, -keep:]
    verbal = batch["choice_ids"][:, 0] >= 0
    lm_labels = labels.masked_fill(verbal[:, None], IGNORE_INDEX)
    loss = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), lm_labels.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    count = int((lm_labels != IGNORE_INDEX).sum())
    if bool(verbal.any()):
        rows = verbal.nonzero().squeeze(1)
        first = (labels[rows] != IGNORE_INDEX).int().argmax(dim=1)  # the position predicting the letter
        letters = batch["choice_ids"][rows]
        picked = logits[rows, first].gather(1, letters.clamp(min=0))
        picked = picked.masked_fill(letters < 0, torch.finfo(picked.dtype).min)
        hard = F.cross_entropy(picked, batch["choice_target"][rows], reduction="none")
        teacher = batch["choice_teacher"][rows]
        has_teacher = ~torch.isnan(teacher[:, 0])
        if distill_weight > 0 and bool(has_teacher.any()):
            # A row without a teacher gets a uniform stand-in (weight 0 below): an all -inf row
            # would give NaN, and 0 x NaN is still NaN.
            q = torch.where(has_teacher[:, None], teacher, torch.zeros_like(teacher))
            q = q.masked_fill(letters < 0, float("-inf"))
            q = torch.softmax(q / distill_temperature, dim=-1)  # renormalised over this row's letters
            soft = -(q * torch.log_softmax(picked, dim=-1)).sum(-1)
            w = distill_weight * has_teacher.to(hard.dtype)
            hard = (1 - w) * hard + w * soft
        loss = loss + hard.sum()
        count += len(rows)
    return loss, count


def _lora_top_k(spec: str) -> int | None:
    """K of a ``lora_layers`` "topK" (K >= 1), None for "all"; anything else is an error."""
    if spec == "all":
        return None
    match = re.fullmatch(r"top([1-9]\d*)", spec)
    if not match:
        raise ValueError(f"lora_layers must be 'all' or topK (e.g. top8), got {spec!r}")
    return int(match.group(1))


def lora_layer_indices(spec: str, n_layers: int) -> list[int] | None:
    """``lora_layers`` as peft's ``layers_to_transform``: None for "all", else the last K."""
    k = _lora_top_k(spec)
    if k is None:
        return None
    if k > n_layers:
        raise ValueError(f"lora_layers must be 'all' or topK with 1 <= K <= {n_layers}, got {spec!r}")
    return list(range(n_layers - k, n_layers))


def load_training_records(dargs: DataArguments, seed: int) -> tuple[list[dict], list[dict]]:
    """The shuffled training mix and the fixed eval-loss set."""
    data = Path(dargs.data_dir)
    read_manifest(data)  # fail early on a folder that is not generated data
    tasks = [t.strip() for t in dargs.tasks.split(",") if t.strip()]
    if not tasks:
        raise ValueError("tasks is empty")
    train: list[dict] = []
    for t in tasks:
        path = data / f"train_{t}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; tasks must be among those generated in {data}")
        train += read_jsonl(path)
    rng = random.Random(seed)
    rng.shuffle(train)
    if dargs.max_train_examples is not None:
        train = train[: dargs.max_train_examples]
    if not train:
        raise ValueError(f"no training examples for tasks {tasks} in {data}")
    if dargs.eval_source == "train":
        evals = train[: dargs.eval_examples]
    else:
        evals = []
        for t in tasks:
            path = data / f"dev_{t}.jsonl"
            if path.is_file():
                evals += read_jsonl(path)
        random.Random(seed + 1).shuffle(evals)
        evals = evals[: dargs.eval_examples]
    return train, evals


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints (those with a state file), oldest first."""
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.name.startswith(CHECKPOINT_PREFIX) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]))


def _atomic_dir(final: Path, write: Any) -> None:
    """Run ``write(tmp_dir)`` then rename tmp -> final: a crash never leaves a half checkpoint."""
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _lr_lambda(targs: TrainArguments, total: int, clock: dict[str, float] | None = None) -> Any:
    """LR multiplier per step; with ``lr_clock=time`` the decay reads ``clock["seconds"]`` (the
    training time so far, set by the loop before each scheduler step) instead of the step."""

    def f(step: int) -> float:
        if targs.warmup_steps and step < targs.warmup_steps:
            return (step + 1) / targs.warmup_steps
        if targs.lr_scheduler == "constant":
            return 1.0
        if targs.lr_clock == "time" and clock is not None:
            progress = clock["seconds"] / targs.max_train_seconds
        else:
            progress = (step - targs.warmup_steps) / max(1, total - targs.warmup_steps)
        progress = min(max(progress, 0.0), 1.0)
        if targs.lr_scheduler == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        return max(0.0, 1.0 - progress)

    return f


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _eval_loss(model: Any, batches: list[dict], accelerator: Any) -> float:
    """Token-level mean NLL of the answer tokens (hard labels: comparable across runs, teacher
    or not) over the fixed eval set."""
    import torch

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            loss, n = completion_loss(model, batch)
            total += float(loss)
            count += n
    if was_training:
        model.train()
    return total / max(count, 1)


def _eval_listwise(model: Any, tokenizer: Any, records: list[dict], batch_size: int) -> dict[str, float]:
    """Dev listwise ranking as ``finetune evaluate`` scores it (letter log-probs at the answer
    position), so a run shows whether the ranking improves, not only the loss."""
    was_training = model.training
    model.eval()
    rr = LLMReranker(model=model, tokenizer=tokenizer, batch_size=batch_size)
    ranks: dict[str, list[int]] = {}
    for rec in records:  # one at a time: the number of candidates may differ
        n = len(rec["meta"]["candidate_ids"])
        scores = rr.score_messages([rec["messages"][:-1]], n)[0]
        ranks.setdefault(rec["task"], []).append(
            target_rank(scores, LETTERS.index(rec["meta"]["target_letter"]))
        )
    if was_training:
        model.train()
    out: dict[str, float] = {}
    for task, task_ranks in sorted(ranks.items()):  # per task: a re-buy hit is not a next-item hit
        m = ranking_metrics(task_ranks)
        out.update({f"{task}_ndcg@10": m["ndcg@10"], f"{task}_recall@1": m["recall@1"], f"{task}_n": m["n"]})
    return out


def _sum_over_processes(accelerator: Any, values: Sequence[float]) -> list[float]:
    """``values`` summed over every process (one tiny all-reduce; identity on one process).

    Every rank must call it at the same point of the loop: it is the collective that keeps
    decisions (time-budget stop) and totals (tokens, train loss) identical on all ranks."""
    import torch

    t = torch.tensor(list(values), dtype=torch.float64, device=accelerator.device)
    return [float(v) for v in accelerator.reduce(t, reduction="sum").cpu()]


def train(margs: ModelArguments, dargs: DataArguments, targs: TrainArguments) -> TrainResult:
    """Run (or resume) one LoRA training; returns the result and writes the run folder."""
    _validate(margs, dargs, targs)
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, set_seed
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file

    t_start = time.perf_counter()
    out = Path(targs.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=targs.grad_accum, mixed_precision=targs.mixed_precision
    )
    if accelerator.device.type == "cpu":
        torch.set_num_threads(targs.threads)
    set_seed(targs.seed)
    is_main = accelerator.is_main_process
    show = targs.progress and is_main

    resume_dir: Path | None = None
    if targs.resume_from:
        resume_dir = Path(targs.resume_from)
        if not (resume_dir / STATE_FILE).is_file():
            raise FileNotFoundError(f"{resume_dir} is not a complete checkpoint (no {STATE_FILE})")
    elif targs.resume:
        ckpts = list_checkpoints(out)
        if ckpts:
            resume_dir = ckpts[-1]
        elif is_main:
            tqdm.write(f"[finetune] --resume: no checkpoint in {out / 'checkpoints'}, starting fresh")
    elif list_checkpoints(out):
        raise FileExistsError(
            f"{out} already has checkpoints; pass --resume to continue or choose another output_dir"
        )

    # --- model + LoRA ----------------------------------------------------------------------
    model, tokenizer = load_llm(margs.model, dtype=margs.dtype, threads=targs.threads)
    if margs.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=margs.lora_r,
        lora_alpha=margs.lora_alpha,
        lora_dropout=margs.lora_dropout,
        target_modules=[m.strip() for m in margs.target_modules.split(",") if m.strip()],
        layers_to_transform=lora_layer_indices(margs.lora_layers, model.config.num_hidden_layers),
    )
    model = get_peft_model(model, lora)
    model.train()
    if margs.init_adapter and resume_dir is None:  # a resumed run already holds the continued weights
        _load_init_adapter(model, Path(margs.init_adapter))
    if resume_dir is not None:
        set_peft_model_state_dict(model, load_file(str(resume_dir / "adapter" / "adapter_model.safetensors")))

    # --- data --------------------------------------------------------------------------------
    train_recs, eval_recs = load_training_records(dargs, targs.seed)
    encoded, encoded_tasks, too_long = [], [], 0
    distill = dargs.distill_weight > 0
    for rec in tqdm(train_recs, desc="tokenizing", disable=not show, leave=False):
        ex = encode_record(tokenizer, rec, dargs.listwise_loss, distill)
        if len(ex.ids) > dargs.max_seq_len:
            too_long += 1
            continue
        encoded.append(ex)
        encoded_tasks.append(rec.get("task"))
    if not encoded:
        raise ValueError(f"every training example is longer than max_seq_len={dargs.max_seq_len}")
    # Dev records are scored with the hard label only: the eval loss must not depend on the teacher.
    eval_pairs = [(r, encode_record(tokenizer, r, dargs.listwise_loss)) for r in eval_recs]
    eval_pairs = [(r, e) for r, e in eval_pairs if len(e.ids) <= dargs.max_seq_len]
    eval_encoded = [e for _, e in eval_pairs]
    listwise_eval = [r for r, _ in eval_pairs if r["task"] in LETTER_TASKS] if dargs.eval_listwise else []
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eval_batches = [
        collate(eval_encoded[i : i + targs.eval_batch_size], pad_id)
        for i in range(0, len(eval_encoded), targs.eval_batch_size)
    ]
    micro_per_epoch = math.ceil(len(encoded) / (targs.batch_size * accelerator.num_processes))
    steps_per_epoch = max(1, math.ceil(micro_per_epoch / targs.grad_accum))
    total_steps = targs.max_steps if targs.max_steps > 0 else math.ceil(targs.num_epochs * steps_per_epoch)

    curriculum = parse_curriculum(dargs.curriculum, dargs.tasks)

    def loader_for(epoch: int) -> Any:
        data = [encoded[i] for i in epoch_order(encoded_tasks, targs.seed, epoch, curriculum)]
        return torch.utils.data.DataLoader(
            data, batch_size=targs.batch_size, shuffle=False, collate_fn=lambda b: collate(b, pad_id)
        )

    # --- optimizer / scheduler / state -------------------------------------------------------------
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=targs.learning_rate, weight_decay=targs.weight_decay)
    clock = {"seconds": 0.0}
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(targs, total_steps, clock))
    state: dict[str, Any] = {
        "step": 0,
        "epoch": 0,
        "batches_in_epoch": 0,
        "eval_history": [],
        "tokens": 0,
        "train_seconds": 0.0,
    }
    if resume_dir is not None:
        state = json.loads((resume_dir / STATE_FILE).read_text())
        if (resume_dir / "optimizer.pt").is_file():
            optimizer.load_state_dict(
                torch.load(resume_dir / "optimizer.pt", map_location="cpu", weights_only=True)
            )
        scheduler.load_state_dict(
            torch.load(resume_dir / "scheduler.pt", map_location="cpu", weights_only=True)
        )
        if "rng" in state:
            random.setstate(_tuplify(state["rng"]["python"]))
            np.random.set_state(_np_state(state["rng"]["numpy"]))
            torch.set_rng_state(torch.tensor(state["rng"]["torch"], dtype=torch.uint8))
        if is_main:
            tqdm.write(f"[finetune] resumed from {resume_dir} at step {state['step']}")
    start_step = state["step"]
    model, optimizer = accelerator.prepare(model, optimizer)

    config_dump = {
        "model": dataclasses.asdict(margs),
        "data": dataclasses.asdict(dargs),
        "train": dataclasses.asdict(targs),
        "total_steps": total_steps,
        "train_examples": len(encoded),
        "skipped_too_long": too_long,
        "eval_examples": len(eval_encoded),
        "world_size": accelerator.num_processes,
    }
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "training_config.json").write_text(json.dumps(config_dump, indent=2))
        shutil.copyfile(Path(dargs.data_dir) / "manifest.json", out / ADAPTER_DATA_MANIFEST)

    log_path = out / "train_log.jsonl"

    def log(event: dict[str, Any]) -> None:
        if is_main:
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(event) + "\n")

    def run_eval() -> None:
        if not eval_batches:
            return
        loss = _eval_loss(model, eval_batches, accelerator)
        entry = {"step": state["step"], "eval_loss": loss}
        if listwise_eval:  # the loss mixes in end-of-turn tokens; the ranking is what the adapter is for
            entry.update(_eval_listwise(model, tokenizer, listwise_eval, targs.eval_batch_size))
        state["eval_history"].append(entry)
        log({"event": "eval", **entry})
        if show:
            extra = "".join(
                f", dev {task} NDCG@10 {entry[f'{task}_ndcg@10']:.3f}"
                for task in LETTER_TASKS
                if f"{task}_ndcg@10" in entry
            )
            tqdm.write(f"[finetune] step {state['step']}: eval loss {loss:.4f}{extra}")

    fsdp = accelerator.distributed_type == DistributedType.FSDP

    def save_checkpoint() -> None:
        accelerator.wait_for_everyone()
        final = out / "checkpoints" / f"{CHECKPOINT_PREFIX}{state['step']:06d}"
        unwrapped = accelerator.unwrap_model(model)
        # Under FSDP gathering the full state dict is a collective: every rank takes part.
        adapter_sd = get_peft_model_state_dict(unwrapped, accelerator.get_state_dict(model)) if fsdp else None

        def write(tmp: Path) -> None:
            unwrapped.save_pretrained(str(tmp / "adapter"), state_dict=adapter_sd)
            if not fsdp:  # FSDP optimizer state is sharded per rank: a resume restarts AdamW moments
                torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
            full = dict(state)
            full["rng"] = {
                "python": random.getstate(),
                "numpy": _np_state_json(np.random.get_state()),
                "torch": torch.get_rng_state().tolist(),
            }
            (tmp / STATE_FILE).write_text(json.dumps(full))  # last: marks the checkpoint complete

        if is_main:
            _atomic_dir(final, write)
            for old in list_checkpoints(out)[: -targs.keep_last]:
                shutil.rmtree(old, ignore_errors=True)
            log({"event": "checkpoint", "step": state["step"], "path": str(final)})
        accelerator.wait_for_everyone()

    # --- loop -----------------------------------------------------------------------------------------
    if not state["eval_history"] or state["eval_history"][-1]["step"] != state["step"]:
        run_eval()
    bar = tqdm(total=total_steps, initial=state["step"], desc="training", disable=not show)
    running, n_running = 0.0, 0
    step_tokens, step_loss, step_micro = 0, 0.0, 0  # this process, since the last optimizer step
    t_loop = time.perf_counter()
    tokens_at_start = state["tokens"]
    seconds_before = float(state.get("train_seconds", 0.0))  # earlier runs of a resumed job
    while state["step"] < total_steps:
        loader = accelerator.prepare_data_loader(loader_for(state["epoch"]), device_placement=True)
        if state["batches_in_epoch"]:
            loader = accelerator.skip_first_batches(loader, state["batches_in_epoch"])
        for batch in loader:
            with accelerator.accumulate(model):
                loss_sum, n_tok = completion_loss(
                    model, batch, dargs.distill_weight, dargs.distill_temperature
                )
                loss = loss_sum / max(n_tok, 1)
                accelerator.backward(loss)
                if accelerator.sync_gradients and targs.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(params, targs.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            state["batches_in_epoch"] += 1
            step_tokens += int(batch["attention_mask"].sum())
            step_loss += float(loss.detach())
            step_micro += 1
            if not accelerator.sync_gradients:
                continue
            # One collective per optimizer step: job-wide tokens and loss, and the time-budget
            # flag, so every rank stops at the same step (a rank that stopped alone would leave
            # the others waiting in the next gradient all-reduce forever).
            elapsed = time.perf_counter() - t_loop
            if targs.lr_clock == "time":  # the budget is the schedule's length: count resumed time too
                elapsed += seconds_before
            own_over_time = targs.max_train_seconds > 0 and elapsed > targs.max_train_seconds
            tokens_all, loss_all, over_all, elapsed_all = _sum_over_processes(
                accelerator, (step_tokens, step_loss, float(own_over_time), elapsed)
            )
            clock["seconds"] = elapsed_all / accelerator.num_processes  # the same on every rank
            state["train_seconds"] = seconds_before + time.perf_counter() - t_loop
            state["tokens"] += int(tokens_all)
            running += loss_all / accelerator.num_processes
            n_running += step_micro
            step_tokens, step_loss, step_micro = 0, 0.0, 0
            over_time = over_all > 0
            scheduler.step()
            state["step"] += 1
            bar.update(1)
            if state["step"] % targs.log_every == 0 or state["step"] == total_steps:
                entry = {
                    "event": "train",
                    "step": state["step"],
                    "loss": running / n_running,
                    "lr": scheduler.get_last_lr()[0],
                }
                log(entry)
                bar.set_postfix(loss=f"{entry['loss']:.4f}", lr=f"{entry['lr']:.2e}")
                running, n_running = 0.0, 0
            if targs.eval_every and state["step"] % targs.eval_every == 0 and state["step"] < total_steps:
                run_eval()
            if targs.save_every and state["step"] % targs.save_every == 0:
                save_checkpoint()
            if over_time and is_main:
                tqdm.write(f"[finetune] max_train_seconds reached at step {state['step']}; stopping")
            if state["step"] >= total_steps or over_time:
                break
        else:
            state["epoch"] += 1
            state["batches_in_epoch"] = 0
            continue
        break
    bar.close()
    run_eval()
    loop_seconds = time.perf_counter() - t_loop

    # --- final artefacts ---------------------------------------------------------------------------
    adapter_dir = out / "adapter"
    unwrapped = accelerator.unwrap_model(model)
    final_sd = get_peft_model_state_dict(unwrapped, accelerator.get_state_dict(model)) if fsdp else None
    if is_main:

        def write_adapter(tmp: Path) -> None:
            unwrapped.save_pretrained(str(tmp), state_dict=final_sd)
            (tmp / "training_config.json").write_text(json.dumps(config_dump, indent=2))
            shutil.copyfile(Path(dargs.data_dir) / "manifest.json", tmp / ADAPTER_DATA_MANIFEST)

        _atomic_dir(adapter_dir, write_adapter)
    if targs.save_every and state["step"] % targs.save_every != 0:
        save_checkpoint()
    hist = state["eval_history"]
    result = TrainResult(
        adapter_dir=str(adapter_dir),
        steps=state["step"],
        start_step=start_step,
        first_eval_loss=hist[0]["eval_loss"] if hist else None,
        last_eval_loss=hist[-1]["eval_loss"] if hist else None,
        eval_history=hist,
        train_examples=len(encoded),
        skipped_too_long=too_long,
        seconds=time.perf_counter() - t_start,
        tokens_per_second=(state["tokens"] - tokens_at_start) / max(loop_seconds, 1e-9),
        tokens=state["tokens"] - tokens_at_start,
        world_size=accelerator.num_processes,
    )
    if is_main:
        (out / "metrics.json").write_text(json.dumps(dataclasses.asdict(result), indent=2))
    accelerator.wait_for_everyone()  # no rank returns before the adapter and metrics.json exist
    return result


def _load_init_adapter(model: Any, path: Path) -> None:
    """Copy a saved adapter's LoRA weights into ``model``; it must cover exactly this model's LoRA
    tensors (same r, target modules and layers), else the run would silently start half at zero."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = path / "adapter_model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"init_adapter {path} is not a saved adapter (no adapter_model.safetensors)")
    state = load_file(str(weights))
    n_own = sum(1 for name, _ in model.named_parameters() if "lora_" in name)
    if len(state) != n_own:
        raise ValueError(
            f"init_adapter {path} has {len(state)} LoRA tensors, this config makes {n_own}: use the same "
            "lora_r, target_modules and lora_layers"
        )
    try:
        result = set_peft_model_state_dict(model, state)
    except RuntimeError as exc:  # shape mismatch (another lora_r)
        raise ValueError(f"init_adapter {path} does not fit this LoRA config: {exc}") from exc
    if getattr(result, "unexpected_keys", None):
        raise ValueError(
            f"init_adapter {path} does not fit this LoRA config (unexpected: {result.unexpected_keys[:3]}); "
            "use the same lora_r, target_modules and lora_layers"
        )


def _tuplify(x: Any) -> Any:
    return tuple(_tuplify(v) for v in x) if isinstance(x, list) else x


def _np_state_json(st: tuple) -> list:
    return [st[0], st[1].tolist(), int(st[2]), int(st[3]), float(st[4])]


def _np_state(st: list) -> tuple:
    return (st[0], np.array(st[1], dtype=np.uint32), st[2], st[3], st[4])


def main(argv: Sequence[str] | None = None) -> TrainResult:
    from accelerate import PartialState

    margs, dargs, targs = parse_train_args(argv)
    result = train(margs, dargs, targs)
    if PartialState().is_main_process:  # under torchrun / accelerate launch: one summary, not N
        print(
            json.dumps({k: v for k, v in dataclasses.asdict(result).items() if k != "eval_history"}, indent=2)
        )
    return result
