"""Training examples as the LoRA loop consumes them: the data folder's records read and shuffled,
each tokenized with completion-only labels (the prompt exactly as the evaluator and the reranker
tokenize it, so the verbalizer letters match), left-padded batches, the per-epoch order, and the
loss (next-token NLL on answers, or one cross-entropy over the candidate letters, optionally
mixed with a teacher's letter distribution)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from finetune.arguments import DataArguments
from finetune.data import read_jsonl, read_manifest
from llm.choices import choice_token_ids
from llm.listwise import LETTERS

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
