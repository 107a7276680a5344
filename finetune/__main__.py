"""``python -m finetune {generate,train,evaluate,toydata}``: one entry point per pipeline stage."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from llm.runtime import configure

USAGE = """usage: python -m finetune <command> [options]

commands:
  generate   leakage-safe SFT / listwise / constraint data from real histories (JSONL + manifest)
  train      LoRA fine-tuning (--config finetune/configs/cpu-tiny.yaml, any field overridable)
  evaluate   base vs adapter on held-out users: listwise NDCG@10/Recall@5, JSON validity, error rates
  toydata    write a small synthetic shop (shared JSONL format) for smoke runs

`python -m finetune <command> --help` lists the options of a command.
"""


def _dataclass_parser(cls: type, prog: str) -> argparse.ArgumentParser:
    """argparse flags (``--snake_case`` and ``--kebab-case``) from a dataclass with help metadata."""
    parser = argparse.ArgumentParser(prog=prog, description=(cls.__doc__ or "").strip())
    for f in dataclasses.fields(cls):
        flags = [f"--{f.name}"] + ([f"--{f.name.replace('_', '-')}"] if "_" in f.name else [])
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        kwargs: dict[str, Any] = {"help": f.metadata.get("help", ""), "dest": f.name}
        typ = str(f.type)
        if typ == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
            kwargs["default"] = f.default
        else:
            kwargs["type"] = int if typ.startswith("int") else float if typ.startswith("float") else str
            kwargs["required"] = required
            if not required:
                kwargs["default"] = f.default
        parser.add_argument(*flags, **kwargs)
    return parser


def _generate(argv: Sequence[str]) -> None:
    from finetune.data import GenerateConfig, generate

    args = _dataclass_parser(GenerateConfig, "python -m finetune generate").parse_args(argv)
    manifest = generate(GenerateConfig(**vars(args)))
    print(json.dumps({k: manifest[k] for k in ("counts", "users", "skipped", "candidate_source")}, indent=2))
    print(f"wrote {args.out}")


def _evaluate(argv: Sequence[str]) -> None:
    from finetune.evaluate import EvalConfig, evaluate

    args = _dataclass_parser(EvalConfig, "python -m finetune evaluate").parse_args(argv)
    report = evaluate(EvalConfig(**vars(args)))
    print(report["markdown_path"])


def _toydata(argv: Sequence[str]) -> None:
    from finetune.toydata import write_toy_dataset

    parser = argparse.ArgumentParser(prog="python -m finetune toydata")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_toy_dataset(args.out, seed=args.seed))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    configure()  # before a command imports torch: the OpenMP policy is read when torch loads
    try:
        if command == "generate":
            _generate(rest)
        elif command == "train":
            from finetune.train import main as train_main

            train_main(rest)
        elif command == "evaluate":
            _evaluate(rest)
        elif command == "toydata":
            _toydata(rest)
        else:
            print(f"unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
            return 2
    except (FileNotFoundError, FileExistsError, ValueError, KeyError) as exc:
        # Bad input (paths, configs, data): one clear line, no traceback. FINETUNE_DEBUG=1 re-raises.
        if os.environ.get("FINETUNE_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
