"""The argument dataclasses of ``python -m finetune`` (generate, evaluate, train): every field is a
CLI option (``finetune.config``) and a YAML key; each instance checks itself in ``__post_init__``
(``Literal`` fields against their values, ranges, cross-field rules), so a bad value fails with a
ValueError naming the field before any data or model is loaded."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, get_args

from finetune.config import check_literals
from llm.listwise import LETTERS

ListwiseProtocol = Literal["retrieved", "random", "recalled"]
LISTWISE_PROTOCOLS: tuple[str, ...] = get_args(ListwiseProtocol)
"""How the 19 negatives of a listwise prompt are drawn: "retrieved", the retriever's top items
other than the target (so the target is often the one the retriever missed); "random", uniform
over the catalog; "recalled", LlamaRec's: the retriever's top 20 for users whose target is among
them (the other 19 are its other picks), a small share of users."""

TrainProtocol = Literal["retrieved", "random", "recalled", "mixed"]
"""Negatives of training prompts: a listwise protocol, or mixed (retrieved and random alternating)."""

GenerateTask = Literal["recommend", "understand", "reply"]
"""What ``finetune generate`` builds: the recommendation tasks, the understanding task or the
reply task (finetune/reply_data.py)."""

Dtype = Literal["auto", "float32", "fp32", "float16", "fp16", "bfloat16", "bf16"]
"""Base weight dtypes ``llm.models.parse_dtype`` reads (auto: fp32 on CPU, bf16 on CUDA)."""


@dataclass
class GenerateConfig:
    """Options of ``python -m finetune generate`` (every field is a CLI flag)."""

    data: str = field(
        metadata={"help": "dataset folder or registered name (see retrieval.data.load_dataset)"}
    )
    out: str = field(metadata={"help": "output folder (must not exist or be empty unless --overwrite)"})
    seed: int = field(default=0, metadata={"help": "seed of every random choice"})
    task: GenerateTask = field(
        default="recommend",
        metadata={
            "help": "recommend: listwise / re-buy / SFT / chat records from purchase histories; "
            "understand: (dialogue state, message) -> ConstraintUpdate JSON from the catalog's "
            "vocabulary and phrasing templates, split by template (finetune/understand.py)"
        },
    )
    understand_train: int = field(default=1500, metadata={"help": "understand: generated train records"})
    understand_dev: int = field(default=200, metadata={"help": "understand: generated dev records"})
    understand_test: int = field(default=300, metadata={"help": "understand: generated test records"})
    webshop: str | None = field(
        default=None,
        metadata={"help": "understand: WebShop folder (human_goals.json) whose instructions join as inputs"},
    )
    webshop_train: int = field(default=400, metadata={"help": "understand: cap on WebShop train records"})
    webshop_dev: int = field(default=60, metadata={"help": "understand: cap on WebShop dev records"})
    webshop_test: int = field(default=100, metadata={"help": "understand: cap on WebShop test records"})
    reply_train: int = field(default=1200, metadata={"help": "reply: train records"})
    reply_dev: int = field(default=100, metadata={"help": "reply: dev records"})
    reply_test: int = field(default=200, metadata={"help": "reply: test records"})
    reply_user_fraction: float = field(
        default=0.4, metadata={"help": "reply: share of requests from a real shopper (history in the prompt)"}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "reply: the product's index cache folder"})
    threads: int = field(default=1, metadata={"help": "reply: torch CPU threads of the product's index"})
    users: int | None = field(default=None, metadata={"help": "cap on training users (default: all)"})
    dev_users: int = field(default=64, metadata={"help": "users whose valid item is the dev (eval-loss) set"})
    test_users: int = field(default=200, metadata={"help": "held-out users for evaluation (test item)"})
    n_candidates: int = field(default=20, metadata={"help": "listwise candidates per prompt (<= 20, A-T)"})
    sft_candidates: int = field(default=6, metadata={"help": "candidate cards per conversational example"})
    max_history: int = field(
        default=10, metadata={"help": "most recent purchases shown in a listwise prompt"}
    )
    sft_history: int = field(
        default=3, metadata={"help": "recent purchases shown to the conversational model"}
    )
    candidates: str = field(
        default="auto", metadata={"help": "retriever: auto | cooccurrence | a retrieval.scorers name"}
    )
    train_protocol: TrainProtocol = field(
        default="random",
        metadata={
            "help": "negatives of training prompts: retrieved | random | recalled | mixed "
            "(retrieved and random alternating); see LISTWISE_PROTOCOLS. random by default: its "
            "signal (history matching) is the one a small causal LM learns (finetune/README.md, Status)"
        },
    )
    rebuy: int = field(
        default=1000,
        metadata={
            "help": "re-buy warm-up examples (training-pool users): a listwise prompt whose answer "
            "repeats one of the shown purchases (the most recent one half the time) among 19 random "
            "items. A first curriculum stage on them teaches a small model to tie a line's title to "
            "its letter, which the noisy next-purchase labels alone do not (finetune/README.md)"
        },
    )
    sft_fraction: float = field(
        default=0.5, metadata={"help": "share of train/dev users with an SFT example"}
    )
    zh_fraction: float = field(
        default=0.3, metadata={"help": "understand: share of generated messages in Chinese"}
    )
    chat: bool = field(default=True, metadata={"help": "include the templated generic chat turns"})
    title_chars: int = field(default=60, metadata={"help": "rendered title length cap"})
    teacher: Literal["lexical", "none"] = field(
        default="lexical",
        metadata={
            "help": "lexical: fit finetune.teacher.LexicalTeacher on the train listwise examples and "
            "write its letter log-probs (meta.teacher_logprobs) into train/dev listwise records, for "
            "`train --distill_weight`; none: hard labels only"
        },
    )
    overwrite: bool = field(default=False, metadata={"help": "replace an existing non-empty --out"})

    def __post_init__(self) -> None:
        check_literals(self)
        if not 1 <= self.n_candidates <= len(LETTERS):
            raise ValueError(f"n_candidates must be in 1..{len(LETTERS)}, got {self.n_candidates}")
        if not 2 <= self.sft_candidates <= len(LETTERS):
            raise ValueError(f"sft_candidates must be in 2..{len(LETTERS)}, got {self.sft_candidates}")
        if not 0.0 <= self.reply_user_fraction <= 1.0:
            raise ValueError(f"reply_user_fraction must be in [0, 1], got {self.reply_user_fraction}")
        names = ("understand_train", "understand_dev", "understand_test", "webshop_train", "webshop_dev")
        for name in (
            "dev_users",
            "test_users",
            "rebuy",
            *names,
            "webshop_test",
            "reply_train",
            "reply_dev",
            "reply_test",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


@dataclass
class EvalConfig:
    """Options of ``python -m finetune evaluate``."""

    data: str = field(metadata={"help": "generated data folder (test_*.jsonl + manifest.json)"})
    task: GenerateTask = field(
        default="recommend",
        metadata={
            "help": "recommend: listwise / reply evaluation of test_*.jsonl; understand: "
            "rules vs base vs adapter on <split>_understand.jsonl (finetune/understand_eval.py)"
        },
    )
    split: Literal["dev", "test"] = field(
        default="dev",
        metadata={
            "help": "understand: the split scored (dev for every choice; test once per reported number)"
        },
    )
    systems: str = field(
        default="rules,base,adapter",
        metadata={"help": "understand: comma-separated systems (adapter only with --adapter)"},
    )
    n_understand: int = field(
        default=0, metadata={"help": "understand / reply: first N records of the split (0 = all)"}
    )
    judgements: str | None = field(
        default=None,
        metadata={"help": "reply: blind pairwise judgements (JSON of ids + choices) to score"},
    )
    reuse_outputs: bool = field(
        default=False,
        metadata={
            "help": "reply: reuse the replies <out>/<tag>-transcripts.jsonl holds for the same records "
            "(an adapter's only for the same adapter) and generate only the missing systems"
        },
    )
    cache_dir: str | None = field(default=None, metadata={"help": "reply: the product's index cache folder"})
    bootstrap: int = field(default=1000, metadata={"help": "understand: bootstrap resamples for the 95% CIs"})
    seed: int = field(default=0, metadata={"help": "understand: bootstrap seed"})
    catalog: str | None = field(
        default=None, metadata={"help": "understand: catalog folder (default: the manifest's source)"}
    )
    adapter: str | None = field(
        default=None, metadata={"help": "LoRA adapter folder; omit to evaluate the base only"}
    )
    base: str | None = field(
        default=None,
        metadata={"help": "base LLM (default: the adapter's training model, else the default LLM)"},
    )
    out: str = field(default="reports", metadata={"help": "folder for the JSON + markdown report"})
    tag: str = field(default="finetune-eval", metadata={"help": "report file stem"})
    max_users: int = field(default=100, metadata={"help": "listwise examples per protocol (first N)"})
    protocols: str = field(
        default=",".join(LISTWISE_PROTOCOLS),
        metadata={
            "help": f"comma-separated listwise candidate protocols to score ({', '.join(LISTWISE_PROTOCOLS)})"
        },
    )
    n_generate: int = field(
        default=10, metadata={"help": "conversational replies generated for error rates (0 = skip)"}
    )
    max_new_tokens: int = field(default=96, metadata={"help": "generation cap for replies / JSON"})
    batch_size: int = field(default=4, metadata={"help": "listwise scoring batch size"})
    permutations: int = field(
        default=1, metadata={"help": "cyclic candidate shifts averaged (position-bias mitigation)"}
    )
    threads: int = field(default=2, metadata={"help": "torch CPU threads"})
    dtype: Dtype = field(
        default="auto",
        metadata={
            "help": "weight dtype: auto (fp32 on CPU), float32, bfloat16 (~2x faster on CPUs with bf16 units)"
        },
    )
    progress: bool = field(default=True, metadata={"help": "show tqdm progress"})

    def __post_init__(self) -> None:
        check_literals(self)
        eval_protocols(self.protocols)  # a typo fails before the model loads
        for name in ("batch_size", "permutations", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_users", "n_generate", "n_understand", "bootstrap"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def eval_protocols(spec: str) -> list[str]:
    """``EvalConfig.protocols`` as a list; an unknown or empty spec is a ValueError."""
    names = [p.strip() for p in spec.split(",") if p.strip()]
    unknown = [p for p in names if p not in LISTWISE_PROTOCOLS]
    if unknown or not names:
        raise ValueError(
            f"protocols must be a comma-separated subset of {list(LISTWISE_PROTOCOLS)}, got {spec!r}"
        )
    return names


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
    dtype: Dtype = field(
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

    def __post_init__(self) -> None:
        check_literals(self)
        if self.lora_r < 1:
            raise ValueError("lora_r must be >= 1")
        lora_top_k(self.lora_layers)  # the form; the bound needs the model's layer count


@dataclass
class DataArguments:
    data_dir: str = field(metadata={"help": "folder written by `python -m finetune generate`"})
    tasks: str = field(
        default="listwise,sft,chat",
        metadata={"help": "comma-separated tasks to train on (train_<task>.jsonl files)"},
    )
    max_train_examples: int | None = field(
        default=None, metadata={"help": "cap on the shuffled training mix (default: all)"}
    )
    max_seq_len: int = field(default=1024, metadata={"help": "longer examples are skipped (and counted)"})
    listwise_loss: Literal["verbalizer", "lm"] = field(
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
    eval_source: Literal["dev", "train"] = field(
        default="dev",
        metadata={"help": "dev (held-out dev users) or train (first train examples: overfit check)"},
    )

    def __post_init__(self) -> None:
        check_literals(self)
        if not self.data_dir:
            raise ValueError("data_dir is required (a folder from `python -m finetune generate`)")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight must be in [0, 1], got {self.distill_weight}")
        if self.distill_temperature <= 0:
            raise ValueError(f"distill_temperature must be > 0, got {self.distill_temperature}")
        if self.distill_weight > 0 and self.listwise_loss != "verbalizer":
            raise ValueError("distill_weight needs listwise_loss=verbalizer (the teacher scores letters)")
        parse_curriculum(self.curriculum, self.tasks)


@dataclass
class TrainArguments:
    output_dir: str = field(metadata={"help": "run folder: checkpoints/, adapter/, logs"})
    seed: int = field(default=0, metadata={"help": "seed for data order, LoRA init and dropout"})
    learning_rate: float = field(default=2e-4, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    lr_scheduler: Literal["linear", "cosine", "constant"] = field(
        default="linear", metadata={"help": "linear | cosine | constant (after warmup)"}
    )
    warmup_steps: int = field(default=0, metadata={"help": "linear warmup optimizer steps"})
    lr_clock: Literal["steps", "time"] = field(
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
    mixed_precision: Literal["no", "bf16", "fp16"] = field(
        default="no", metadata={"help": "accelerate mixed precision: no | bf16 | fp16"}
    )
    resume: bool = field(default=False, metadata={"help": "continue from the latest complete checkpoint"})
    resume_from: str | None = field(default=None, metadata={"help": "continue from this checkpoint folder"})
    progress: bool = field(default=True, metadata={"help": "show tqdm progress"})

    def __post_init__(self) -> None:
        check_literals(self)
        if not self.output_dir:
            raise ValueError("output_dir is required")
        if self.lr_clock == "time" and self.max_train_seconds <= 0:
            raise ValueError("lr_clock=time needs max_train_seconds > 0 (the length of the schedule)")
        for name in ("batch_size", "grad_accum", "keep_last", "threads", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


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


def lora_top_k(spec: str) -> int | None:
    """K of a ``lora_layers`` "topK" (K >= 1), None for "all"; anything else is an error."""
    if spec == "all":
        return None
    match = re.fullmatch(r"top([1-9]\d*)", spec)
    if not match:
        raise ValueError(f"lora_layers must be 'all' or topK (e.g. top8), got {spec!r}")
    return int(match.group(1))


def lora_layer_indices(spec: str, n_layers: int) -> list[int] | None:
    """``lora_layers`` as peft's ``layers_to_transform``: None for "all", else the last K."""
    k = lora_top_k(spec)
    if k is None:
        return None
    if k > n_layers:
        raise ValueError(f"lora_layers must be 'all' or topK with 1 <= K <= {n_layers}, got {spec!r}")
    return list(range(n_layers - k, n_layers))


@dataclass
class ToyDataConfig:
    """Options of ``python -m finetune toydata``: a small synthetic shop for smoke runs."""

    out: str = field(metadata={"help": "folder to write the shop into (shared JSONL format)"})
    seed: int = field(default=0, metadata={"help": "seed of the synthetic catalog and histories"})
