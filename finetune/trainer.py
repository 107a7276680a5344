"""The LoRA training loop as an object: ``Trainer(margs, dargs, targs).setup().run()``.

A plain torch loop around ``accelerate.Accelerator`` rather than transformers' ``Trainer`` /
``SFTTrainer``, because:

* loss masking is our own (only the final assistant turn is trained; the prompt is tokenized
  exactly as the evaluator and the reranker tokenize it, so the verbalizer letters match);
* checkpoints must be atomic (tmp dir + rename), tiny (adapter + optimizer only, never the
  0.5B base weights) and resume at the exact micro-batch: a short loop is easier to make
  and test that way than Trainer's callbacks;
* the same loop runs on a CPU, one GPU, DDP or FSDP; ``Accelerator`` does the device
  placement, gradient accumulation and distributed wrapping.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from finetune.arguments import (
    DataArguments,
    ModelArguments,
    TrainArguments,
    lora_layer_indices,
    parse_curriculum,
)
from finetune.checkpoints import (
    CHECKPOINT_PREFIX,
    STATE_FILE,
    TrainState,
    list_checkpoints,
    restore_rng,
)
from finetune.encoding import (
    LETTER_TASKS,
    EncodedExample,
    collate,
    completion_loss,
    encode_record,
    epoch_order,
    load_training_records,
)
from finetune.metrics import ranking_metrics, target_rank
from llm.listwise import ADAPTER_DATA_MANIFEST, LETTERS
from llm.models import load_llm
from llm.reranker import LLMReranker
from retrieval.files import atomic_dir


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


@dataclass
class BudgetClock:
    """Training wall time so far (job-wide, summed over resumes under ``lr_clock=time``): the
    loop sets it before each scheduler step; a time-clocked lr schedule decays over it."""

    seconds: float = 0.0


class Trainer:
    """One LoRA training run (or its resumption) of ``model`` on a generated data folder.

    ``setup()`` builds the accelerator, the LoRA model, the encoded data, the optimizer and the
    lr schedule, and restores a checkpoint when resuming; ``run()`` trains until ``max_steps``
    (or the epochs, or the time budget), evaluating on the dev set every ``eval_every`` steps and
    checkpointing every ``save_every``, then saves the adapter and returns the ``TrainResult``.
    """

    # Set by setup(): the run's components.
    accelerator: Any
    model: Any
    """The peft model (wrapped by the accelerator after setup)."""
    tokenizer: Any
    optimizer: Any
    scheduler: Any
    params: list[Any]
    """The trainable (LoRA) parameters, clipped together."""
    # Set by setup(): the data.
    encoded: list[EncodedExample]
    encoded_tasks: list[str | None]
    too_long: int
    eval_batches: list[dict[str, Any]]
    listwise_eval: list[dict[str, Any]]
    """Dev records ranked at each eval (letter tasks; empty unless ``eval_listwise``)."""
    total_steps: int
    curriculum: list[tuple[str, int]]

    def __init__(self, margs: ModelArguments, dargs: DataArguments, targs: TrainArguments):
        self.margs, self.dargs, self.targs = margs, dargs, targs
        self.out = Path(targs.output_dir)
        self.state = TrainState()
        self.clock = BudgetClock()
        self.start_step = 0
        self.t_start = time.perf_counter()

    # --- setup -------------------------------------------------------------------------------------
    def setup(self) -> Trainer:
        import torch
        from accelerate import Accelerator
        from accelerate.utils import DistributedType, set_seed

        targs = self.targs
        self.accelerator = Accelerator(
            gradient_accumulation_steps=targs.grad_accum, mixed_precision=targs.mixed_precision
        )
        if self.accelerator.device.type == "cpu":
            torch.set_num_threads(targs.threads)
        set_seed(targs.seed)
        self.is_main = self.accelerator.is_main_process
        self.show = targs.progress and self.is_main
        self.fsdp = self.accelerator.distributed_type == DistributedType.FSDP
        resume_dir = self._resume_dir()
        self._load_model(resume_dir)
        self._load_data()
        self._build_optimizer()
        if resume_dir is not None:
            self._restore(resume_dir)
        self.start_step = self.state.step
        self.model, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
        self._write_config()
        return self

    def _resume_dir(self) -> Path | None:
        targs, out = self.targs, self.out
        if targs.resume_from:
            resume_dir = Path(targs.resume_from)
            if not (resume_dir / STATE_FILE).is_file():
                raise FileNotFoundError(f"{resume_dir} is not a complete checkpoint (no {STATE_FILE})")
            return resume_dir
        if targs.resume:
            ckpts = list_checkpoints(out)
            if ckpts:
                return ckpts[-1]
            if self.is_main:
                tqdm.write(f"[finetune] --resume: no checkpoint in {out / 'checkpoints'}, starting fresh")
        elif list_checkpoints(out):
            raise FileExistsError(
                f"{out} already has checkpoints; pass --resume to continue or choose another output_dir"
            )
        return None

    def _load_model(self, resume_dir: Path | None) -> None:
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
        from safetensors.torch import load_file

        margs = self.margs
        model, self.tokenizer = load_llm(margs.model, dtype=margs.dtype, threads=self.targs.threads)
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
            set_peft_model_state_dict(
                model, load_file(str(resume_dir / "adapter" / "adapter_model.safetensors"))
            )
        self.model = model

    def _load_data(self) -> None:
        dargs, targs, tokenizer = self.dargs, self.targs, self.tokenizer
        train_recs, eval_recs = load_training_records(dargs, targs.seed)
        self.encoded, self.encoded_tasks = [], []
        self.too_long = 0
        distill = dargs.distill_weight > 0
        for rec in tqdm(train_recs, desc="tokenizing", disable=not self.show, leave=False):
            ex = encode_record(tokenizer, rec, dargs.listwise_loss, distill)
            if len(ex.ids) > dargs.max_seq_len:
                self.too_long += 1
                continue
            self.encoded.append(ex)
            self.encoded_tasks.append(rec.get("task"))
        if not self.encoded:
            raise ValueError(f"every training example is longer than max_seq_len={dargs.max_seq_len}")
        # Dev records are scored with the hard label only: the eval loss must not depend on the teacher.
        eval_pairs = [(r, encode_record(tokenizer, r, dargs.listwise_loss)) for r in eval_recs]
        eval_pairs = [(r, e) for r, e in eval_pairs if len(e.ids) <= dargs.max_seq_len]
        eval_encoded = [e for _, e in eval_pairs]
        self.n_eval = len(eval_encoded)
        self.listwise_eval = (
            [r for r, _ in eval_pairs if r["task"] in LETTER_TASKS] if dargs.eval_listwise else []
        )
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else tokenizer.eos_token_id
        self.eval_batches = [
            collate(eval_encoded[i : i + targs.eval_batch_size], self.pad_id)
            for i in range(0, len(eval_encoded), targs.eval_batch_size)
        ]
        micro_per_epoch = math.ceil(len(self.encoded) / (targs.batch_size * self.accelerator.num_processes))
        steps_per_epoch = max(1, math.ceil(micro_per_epoch / targs.grad_accum))
        self.total_steps = (
            targs.max_steps if targs.max_steps > 0 else math.ceil(targs.num_epochs * steps_per_epoch)
        )
        self.curriculum = parse_curriculum(dargs.curriculum, dargs.tasks)

    def _build_optimizer(self) -> None:
        import torch

        targs = self.targs
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.params, lr=targs.learning_rate, weight_decay=targs.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_lambda(targs, self.total_steps, self.clock)
        )

    def _write_config(self) -> None:
        self.config_dump = {
            "model": dataclasses.asdict(self.margs),
            "data": dataclasses.asdict(self.dargs),
            "train": dataclasses.asdict(self.targs),
            "total_steps": self.total_steps,
            "train_examples": len(self.encoded),
            "skipped_too_long": self.too_long,
            "eval_examples": self.n_eval,
            "world_size": self.accelerator.num_processes,
        }
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "training_config.json").write_text(json.dumps(self.config_dump, indent=2))
            shutil.copyfile(Path(self.dargs.data_dir) / "manifest.json", self.out / ADAPTER_DATA_MANIFEST)

    # --- checkpoint / resume ------------------------------------------------------------------------
    def _restore(self, resume_dir: Path) -> None:
        import torch

        raw = json.loads((resume_dir / STATE_FILE).read_text())
        self.state = TrainState.from_dict(raw)
        if (resume_dir / "optimizer.pt").is_file():
            self.optimizer.load_state_dict(
                torch.load(resume_dir / "optimizer.pt", map_location="cpu", weights_only=True)
            )
        self.scheduler.load_state_dict(
            torch.load(resume_dir / "scheduler.pt", map_location="cpu", weights_only=True)
        )
        restore_rng(raw)
        if self.is_main:
            tqdm.write(f"[finetune] resumed from {resume_dir} at step {self.state.step}")

    def save_checkpoint(self) -> None:
        """``checkpoints/checkpoint-NNNNNN`` (adapter, optimizer, scheduler, state + RNGs), written
        atomically by the main process; older ones beyond ``keep_last`` are removed."""
        import torch
        from peft import get_peft_model_state_dict

        accelerator, model = self.accelerator, self.model
        accelerator.wait_for_everyone()
        final = self.out / "checkpoints" / f"{CHECKPOINT_PREFIX}{self.state.step:06d}"
        unwrapped = accelerator.unwrap_model(model)
        # Under FSDP gathering the full state dict is a collective: every rank takes part.
        adapter_sd = (
            get_peft_model_state_dict(unwrapped, accelerator.get_state_dict(model)) if self.fsdp else None
        )

        def write(tmp: Path) -> None:
            unwrapped.save_pretrained(str(tmp / "adapter"), state_dict=adapter_sd)
            if not self.fsdp:  # FSDP optimizer state is sharded per rank: a resume restarts AdamW moments
                torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(self.scheduler.state_dict(), tmp / "scheduler.pt")
            # Last: the state file marks the checkpoint complete.
            (tmp / STATE_FILE).write_text(json.dumps(self.state.to_dict()))

        if self.is_main:
            atomic_dir(final, write)
            for old in list_checkpoints(self.out)[: -self.targs.keep_last]:
                shutil.rmtree(old, ignore_errors=True)
            self.log({"event": "checkpoint", "step": self.state.step, "path": str(final)})
        accelerator.wait_for_everyone()

    # --- logging / evaluation ----------------------------------------------------------------------
    def log(self, event: dict[str, Any]) -> None:
        if self.is_main:
            with open(self.out / "train_log.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(event) + "\n")

    def evaluate(self) -> None:
        """Eval loss on the fixed dev set (and the dev listwise ranking), logged at this step."""
        if not self.eval_batches:
            return
        loss = _eval_loss(self.model, self.eval_batches, self.accelerator)
        entry = {"step": self.state.step, "eval_loss": loss}
        if self.listwise_eval:  # the loss mixes in end-of-turn tokens; the ranking is what the adapter is for
            entry.update(
                _eval_listwise(self.model, self.tokenizer, self.listwise_eval, self.targs.eval_batch_size)
            )
        self.state.eval_history.append(entry)
        self.log({"event": "eval", **entry})
        if self.show:
            extra = "".join(
                f", dev {task} NDCG@10 {entry[f'{task}_ndcg@10']:.3f}"
                for task in LETTER_TASKS
                if f"{task}_ndcg@10" in entry
            )
            tqdm.write(f"[finetune] step {self.state.step}: eval loss {loss:.4f}{extra}")

    # --- the loop -------------------------------------------------------------------------------------
    def _loader(self, epoch: int) -> Any:
        import torch

        order = epoch_order(self.encoded_tasks, self.targs.seed, epoch, self.curriculum)
        data = [self.encoded[i] for i in order]
        pad_id = self.pad_id
        return torch.utils.data.DataLoader(
            data, batch_size=self.targs.batch_size, shuffle=False, collate_fn=lambda b: collate(b, pad_id)
        )

    def run(self) -> TrainResult:
        """Train to the end (steps, epochs or time budget), then save the adapter and the result."""
        state = self.state
        if not state.eval_history or state.eval_history[-1]["step"] != state.step:
            self.evaluate()
        self.bar = tqdm(total=self.total_steps, initial=state.step, desc="training", disable=not self.show)
        self.running, self.n_running = 0.0, 0
        # This process's tokens, loss and micro-batches since the last optimizer step.
        self.step_tokens, self.step_loss, self.step_micro = 0, 0.0, 0
        self.t_loop = time.perf_counter()
        self.tokens_at_start = state.tokens
        self.seconds_before = float(state.train_seconds)  # earlier runs of a resumed job
        stop = False
        while state.step < self.total_steps and not stop:
            loader = self.accelerator.prepare_data_loader(self._loader(state.epoch), device_placement=True)
            if state.batches_in_epoch:
                loader = self.accelerator.skip_first_batches(loader, state.batches_in_epoch)
            for batch in loader:
                stop = self.train_step(batch)
                if stop:
                    break
            else:
                state.epoch += 1
                state.batches_in_epoch = 0
        self.bar.close()
        self.evaluate()
        loop_seconds = time.perf_counter() - self.t_loop
        adapter_dir = self.save_adapter()
        if self.targs.save_every and state.step % self.targs.save_every != 0:
            self.save_checkpoint()
        return self._result(adapter_dir, loop_seconds)

    def train_step(self, batch: dict[str, Any]) -> bool:
        """One micro-batch (forward, backward, and the optimizer step when the accumulation is
        complete); returns True when training must stop (last step or time budget spent)."""
        accelerator, targs = self.accelerator, self.targs
        with accelerator.accumulate(self.model):
            loss_sum, n_tok = completion_loss(
                self.model, batch, self.dargs.distill_weight, self.dargs.distill_temperature
            )
            loss = loss_sum / max(n_tok, 1)
            accelerator.backward(loss)
            if accelerator.sync_gradients and targs.max_grad_norm > 0:
                accelerator.clip_grad_norm_(self.params, targs.max_grad_norm)
            self.optimizer.step()
            self.optimizer.zero_grad()
        self.state.batches_in_epoch += 1
        self.step_tokens += int(batch["attention_mask"].sum())
        self.step_loss += float(loss.detach())
        self.step_micro += 1
        if not accelerator.sync_gradients:
            return False
        return self._optimizer_step_done()

    def _optimizer_step_done(self) -> bool:
        accelerator, targs, state = self.accelerator, self.targs, self.state
        # One collective per optimizer step: job-wide tokens and loss, and the time-budget
        # flag, so every rank stops at the same step (a rank that stopped alone would leave
        # the others waiting in the next gradient all-reduce forever).
        elapsed = time.perf_counter() - self.t_loop
        if targs.lr_clock == "time":  # the budget is the schedule's length: count resumed time too
            elapsed += self.seconds_before
        own_over_time = targs.max_train_seconds > 0 and elapsed > targs.max_train_seconds
        tokens_all, loss_all, over_all, elapsed_all = _sum_over_processes(
            accelerator, (self.step_tokens, self.step_loss, float(own_over_time), elapsed)
        )
        self.clock.seconds = elapsed_all / accelerator.num_processes  # the same on every rank
        state.train_seconds = self.seconds_before + time.perf_counter() - self.t_loop
        state.tokens += int(tokens_all)
        self.running += loss_all / accelerator.num_processes
        self.n_running += self.step_micro
        self.step_tokens, self.step_loss, self.step_micro = 0, 0.0, 0
        over_time = over_all > 0
        self.scheduler.step()
        state.step += 1
        self.bar.update(1)
        if state.step % targs.log_every == 0 or state.step == self.total_steps:
            entry = {
                "event": "train",
                "step": state.step,
                "loss": self.running / self.n_running,
                "lr": self.scheduler.get_last_lr()[0],
            }
            self.log(entry)
            self.bar.set_postfix(loss=f"{entry['loss']:.4f}", lr=f"{entry['lr']:.2e}")
            self.running, self.n_running = 0.0, 0
        if targs.eval_every and state.step % targs.eval_every == 0 and state.step < self.total_steps:
            self.evaluate()
        if targs.save_every and state.step % targs.save_every == 0:
            self.save_checkpoint()
        if over_time and self.is_main:
            tqdm.write(f"[finetune] max_train_seconds reached at step {state.step}; stopping")
        return state.step >= self.total_steps or over_time

    # --- final artefacts -----------------------------------------------------------------------------
    def save_adapter(self) -> Path:
        """``adapter/`` (LoRA weights + training config + data manifest), written atomically."""
        from peft import get_peft_model_state_dict

        accelerator, model = self.accelerator, self.model
        adapter_dir = self.out / "adapter"
        unwrapped = accelerator.unwrap_model(model)
        final_sd = (
            get_peft_model_state_dict(unwrapped, accelerator.get_state_dict(model)) if self.fsdp else None
        )
        if self.is_main:

            def write_adapter(tmp: Path) -> None:
                unwrapped.save_pretrained(str(tmp), state_dict=final_sd)
                (tmp / "training_config.json").write_text(json.dumps(self.config_dump, indent=2))
                shutil.copyfile(Path(self.dargs.data_dir) / "manifest.json", tmp / ADAPTER_DATA_MANIFEST)

            atomic_dir(adapter_dir, write_adapter)
        return adapter_dir

    def _result(self, adapter_dir: Path, loop_seconds: float) -> TrainResult:
        state = self.state
        hist = state.eval_history
        result = TrainResult(
            adapter_dir=str(adapter_dir),
            steps=state.step,
            start_step=self.start_step,
            first_eval_loss=hist[0]["eval_loss"] if hist else None,
            last_eval_loss=hist[-1]["eval_loss"] if hist else None,
            eval_history=hist,
            train_examples=len(self.encoded),
            skipped_too_long=self.too_long,
            seconds=time.perf_counter() - self.t_start,
            tokens_per_second=(state.tokens - self.tokens_at_start) / max(loop_seconds, 1e-9),
            tokens=state.tokens - self.tokens_at_start,
            world_size=self.accelerator.num_processes,
        )
        if self.is_main:
            (self.out / "metrics.json").write_text(json.dumps(dataclasses.asdict(result), indent=2))
        self.accelerator.wait_for_everyone()  # no rank returns before the adapter and metrics.json exist
        return result


def _lr_lambda(targs: TrainArguments, total: int, clock: BudgetClock | None = None) -> Any:
    """LR multiplier per step; with ``lr_clock=time`` the decay reads ``clock.seconds`` (the
    training time so far, set by the loop before each scheduler step) instead of the step."""

    def f(step: int) -> float:
        if targs.warmup_steps and step < targs.warmup_steps:
            return (step + 1) / targs.warmup_steps
        if targs.lr_scheduler == "constant":
            return 1.0
        if targs.lr_clock == "time" and clock is not None:
            progress = clock.seconds / targs.max_train_seconds
        else:
            progress = (step - targs.warmup_steps) / max(1, total - targs.warmup_steps)
        progress = min(max(progress, 0.0), 1.0)
        if targs.lr_scheduler == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        return max(0.0, 1.0 - progress)

    return f



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


