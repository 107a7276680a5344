"""``python -m finetune {generate,train,evaluate,toydata}``: one entry point per pipeline stage.

Each command is its argument dataclasses (``finetune.arguments``) and a function of their
instances; ``finetune.config`` generates its options, ``--config file.yaml`` included."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from finetune.arguments import EvalConfig, GenerateConfig, ToyDataConfig
from finetune.config import parse_dataclasses
from finetune.data import generate
from finetune.evaluate import evaluate
from finetune.toydata import write_toy_dataset
from finetune.train import ARG_CLASSES, train
from llm.runtime import configure


@dataclass(frozen=True)
class Command:
    summary: str
    classes: tuple[type, ...]
    run: Callable[..., None]
    """Called with one instance of each of ``classes``."""


def _generate(cfg: GenerateConfig) -> None:
    if cfg.task == "understand":
        from finetune.understand import generate_understand

        manifest = generate_understand(cfg)
        print(json.dumps({k: manifest[k] for k in ("counts", "counts_by_source", "skipped")}, indent=2))
        print(f"wrote {cfg.out}")
        return
    if cfg.task == "reply":
        from finetune.reply_data import generate_reply  # heavy (the product, torch): after configure()

        manifest = generate_reply(cfg)
        print(json.dumps({k: manifest[k] for k in ("counts", "counts_by_lang", "skipped")}, indent=2))
        print(f"wrote {cfg.out}")
        return
    manifest = generate(cfg)
    print(json.dumps({k: manifest[k] for k in ("counts", "users", "skipped", "candidate_source")}, indent=2))
    print(f"wrote {cfg.out}")


def _train(*args: Any) -> None:
    from accelerate import PartialState  # heavy (torch): only the train command needs it

    result = train(*args)
    if PartialState().is_main_process:  # under torchrun / accelerate launch: one summary, not N
        summary = {k: v for k, v in dataclasses.asdict(result).items() if k != "eval_history"}
        print(json.dumps(summary, indent=2))


def _evaluate(cfg: EvalConfig) -> None:
    if cfg.task == "reply":
        from finetune.reply_eval import evaluate_reply  # heavy (the product, torch): after configure()

        print(evaluate_reply(cfg)["markdown_path"])
        return
    print(evaluate(cfg)["markdown_path"])


def _toydata(cfg: ToyDataConfig) -> None:
    print(write_toy_dataset(cfg.out, seed=cfg.seed))


COMMANDS = {
    "generate": Command(
        "leakage-safe SFT / listwise data from real histories, or --task understand (JSONL + manifest)",
        (GenerateConfig,),
        _generate,
    ),
    "train": Command(
        "LoRA fine-tuning (--config finetune/configs/cpu-tiny.yaml, any field overridable)",
        ARG_CLASSES,
        _train,
    ),
    "evaluate": Command(
        "base vs adapter on held-out users (NDCG@10, reply errors), or --task understand: rules/base/adapter",
        (EvalConfig,),
        _evaluate,
    ),
    "toydata": Command(
        "write a small synthetic shop (shared JSONL format) for smoke runs", (ToyDataConfig,), _toydata
    ),
}

USAGE = (
    "usage: python -m finetune <command> [options]\n\ncommands:\n"
    + "".join(f"  {name:<10} {c.summary}\n" for name, c in COMMANDS.items())
    + "\n`python -m finetune <command> --help` lists the options of a command.\n"
)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    name, rest = argv[0], argv[1:]
    command = COMMANDS.get(name)
    if command is None:
        print(f"unknown command {name!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    configure()  # before a command imports torch: the OpenMP policy is read when torch loads
    try:
        command.run(*parse_dataclasses(command.classes, rest, f"python -m finetune {name}"))
    except (FileNotFoundError, FileExistsError, ValueError, KeyError) as exc:
        # Bad input (paths, configs, data): one clear line, no traceback. FINETUNE_DEBUG=1 re-raises.
        if os.environ.get("FINETUNE_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
