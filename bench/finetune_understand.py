"""``python -m bench.finetune --task understand``: the understanding adapter (issue #20) in one
timed run: ``finetune generate --task understand`` -> ``finetune train`` (LoRA, CPU recipe) ->
``finetune evaluate --task understand --split dev`` (rules vs base vs adapter), one report.

Selection happens here, so only the **dev** split is scored: the run opens the generated folder's
``train_understand.jsonl`` (training), ``dev_understand.jsonl`` (eval loss and the scored split)
and ``manifest.json``, never ``test_understand.jsonl``; a test number comes from an explicit
``python -m finetune evaluate --task understand --split test`` once the recipe is fixed.

Writes ``finetune-understand-<dataset>-<model>.json`` / ``.md`` / ``.png`` into ``--out``; the
markdown embeds the evaluator's own report (``finetune.understand_eval.to_markdown``), so every
number is the evaluator's.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._report import environment, save_figure, slug, write_json, write_text

UNDERSTAND_CONFIG = "finetune/configs/cpu-smollm2-understand.yaml"
QUICK_TRAIN = {
    "max_steps": 2, "batch_size": 2, "eval_examples": 4, "eval_every": 0, "save_every": 0,
    "max_train_seconds": 120, "warmup_steps": 0,
}  # fmt: skip
"""A smoke run: two optimizer steps of the same recipe."""


def _generate_config(args: argparse.Namespace, data: str, out: Path) -> Any:
    from finetune.arguments import GenerateConfig

    sizes = (
        {"understand_train": 16, "understand_dev": 6, "understand_test": 6, "webshop_train": 4,
         "webshop_dev": 2, "webshop_test": 2}
        if args.quick
        else {}
    )  # fmt: skip
    return GenerateConfig(
        data=data, out=str(out), seed=args.seed, task="understand", webshop=args.webshop,
        overwrite=True, **sizes,
    )  # fmt: skip


def _train_argv(args: argparse.Namespace, config: str, data_dir: Path, run_dir: Path) -> list[str]:
    argv = ["--config", config, "--data_dir", str(data_dir), "--output_dir", str(run_dir)]
    argv += [
        "--threads",
        str(args.threads),
        "--seed",
        str(args.seed),
        "--progress",
        str(not args.no_progress).lower(),
    ]
    if args.quick:
        argv += [x for key, value in QUICK_TRAIN.items() for x in (f"--{key}", str(value))]
    return argv


def run_understand(args: argparse.Namespace, train_overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Every stage in this process, timed; returns the report (also written to ``args.out``)."""
    from finetune.arguments import EvalConfig
    from finetune.data import read_manifest
    from finetune.evaluate import evaluate
    from finetune.toydata import write_toy_dataset
    from finetune.train import parse_train_args, train
    from finetune.understand import generate_understand

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    if args.data_dir:  # an existing generated folder: no generate stage
        data_dir = Path(args.data_dir)
        manifest = read_manifest(data_dir)
        if manifest.get("task") != "understand":
            raise SystemExit(f"{data_dir} is not a `finetune generate --task understand` folder")
        data = manifest["source"]["data"]
    else:
        data = str(write_toy_dataset(work / "toy-shop", seed=args.seed)) if args.quick else args.data
        data_dir = work / "data"
        t = time.perf_counter()
        manifest = generate_understand(_generate_config(args, data, data_dir))
        stages["generate"] = time.perf_counter() - t

    config = args.config or UNDERSTAND_CONFIG
    argv = [*_train_argv(args, config, data_dir, work / "run"), *train_overrides, "--resume", "false"]
    margs, dargs, targs = parse_train_args(argv)
    if dargs.tasks != "understand":
        raise SystemExit(f"{config} trains tasks {dargs.tasks!r}; the understanding bench needs 'understand'")
    t = time.perf_counter()
    result = train(margs, dargs, targs)
    stages["train"] = time.perf_counter() - t

    ecfg = EvalConfig(
        data=str(data_dir), task="understand", split="dev", adapter=result.adapter_dir,
        catalog=data, out=str(work / "eval"), tag="understand-dev", n_understand=args.eval_records,
        bootstrap=args.bootstrap, seed=args.seed, threads=args.threads, dtype=margs.dtype,
        progress=not args.no_progress,
    )  # fmt: skip
    t = time.perf_counter()
    ev = evaluate(ecfg)
    stages["evaluate"] = time.perf_counter() - t
    total = time.perf_counter() - t0

    dataset = "toy-shop" if args.quick and not args.data_dir else manifest["source"]["name"]
    report: dict[str, Any] = {
        "bench": "finetune-understand",
        "bench_args": {**vars(args), "train_overrides": list(train_overrides)},
        "dataset": dataset,
        "model": margs.model,
        "protocol": {
            "split": manifest["split_protocol"],
            "scored_split": "dev (selection); the test split is not opened by this bench",
            "evaluation": ev["protocol"],
            "records_scored": ev["n_records"],
        },
        "data_manifest": {k: manifest.get(k) for k in ("generator_version", "seed", "source", "counts")},
        **train_sections(margs, dargs, targs, config, result),
        "evaluation": ev,
        "seconds": {**{k: round(v, 1) for k, v in stages.items()}, "total": round(total, 1)},
        "train_budget_s": args.budget_s,
        "train_within_budget": stages["train"] <= args.budget_s,
        "environment": environment(),
    }
    out = Path(args.out)
    stem = f"finetune-understand-{slug(dataset)}-{slug(margs.model)}" + ("-quick" if args.quick else "")
    write_json(out / f"{stem}.json", report)
    write_text(out / f"{stem}.md", to_markdown(report, f"{stem}.png"))
    _plot(out / f"{stem}.png", report, Path(targs.output_dir) / "train_log.jsonl")
    report["paths"] = {"json": str(out / f"{stem}.json"), "markdown": str(out / f"{stem}.md")}
    return report


def to_markdown(report: dict[str, Any], png: str) -> str:
    from finetune.understand_eval import to_markdown as eval_markdown

    s, tr = report["seconds"], report["train"]
    c = report["train_config"]
    stage_text = " + ".join(f"{k} {v:.0f} s" for k, v in s.items() if k != "total")
    lines = [
        f"# Understanding fine-tuning bench: {report['dataset']}, {report['model']}",
        "",
        f"One run, one process: {stage_text} = **{s['total']:.0f} s**. Training "
        f"{s['train']:.0f} s against a {report['train_budget_s']:.0f} s budget "
        f"({'within' if report['train_within_budget'] else 'OVER'}): {tr['steps']} optimizer steps, "
        f"{tr['examples_seen']} examples of {tr['train_records']} training records, eval loss "
        f"{_loss(tr['first_eval_loss'])} -> {_loss(tr['last_eval_loss'])}, {tr['tokens_per_second']:.0f} tokens/s.",
        "",
        f"Scored split: **{report['protocol']['scored_split']}**; {report['protocol']['records_scored']} records.",
        "",
        f"Bench arguments: `{json.dumps(report.get('bench_args', {}), sort_keys=True)}`",
        "",
        f"Training: `{c['config_file']}`; LoRA r={c['model']['lora_r']} alpha={c['model']['lora_alpha']} on "
        f"{c['model']['target_modules']} ({c['model']['lora_layers']}), lr {c['train']['learning_rate']}, "
        f"batch {c['train']['batch_size']}, {c['train']['max_train_seconds']:.0f} s training budget, "
        f"dtype {c['model']['dtype']}, {c['train']['threads']} threads, seed {c['train']['seed']}.",
        "",
        "Split protocol (the generator's manifest):",
        "",
        report["protocol"]["split"].strip(),
        "",
        f"Environment: {report['environment']}",
        "",
        f"![training curve and dev scores]({png})",
        "",
        "## The evaluator's report (dev split)",
        "",
        eval_markdown(report["evaluation"]).replace("\n# ", "\n### ").removeprefix("# "),
    ]
    return "\n".join(lines)


def _loss(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _plot(path: Path, report: dict[str, Any], log_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = [json.loads(line) for line in log_path.read_text().splitlines() if line]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    train = [e for e in log if e.get("event") == "train"]
    ax1.plot([e["step"] for e in train], [e["loss"] for e in train], label="train loss", alpha=0.6)
    evals = report["train"]["eval_history"]
    ax1.plot([e["step"] for e in evals], [e["eval_loss"] for e in evals], "o-", label="dev loss")
    ax1.set_xlabel("optimizer step")
    ax1.set_ylabel("loss (answer tokens)")
    ax1.legend(fontsize=7)
    ax1.set_title("training")
    systems = report["evaluation"]["all"].get("systems", {})
    metrics = ("exact", "exact_hard", "micro_f1")
    width = 0.8 / max(len(systems), 1)
    for j, (name, m) in enumerate(systems.items()):
        xs = [i + (j - (len(systems) - 1) / 2) * width for i in range(len(metrics))]
        ys = [m[k]["value"] for k in metrics]
        cis = [m[k]["ci95"] or [y, y] for k, y in zip(metrics, ys, strict=True)]
        err = [
            [y - lo for y, (lo, _) in zip(ys, cis, strict=True)],
            [hi - y for y, (_, hi) in zip(ys, cis, strict=True)],
        ]
        ax2.bar(xs, ys, width, yerr=err, label=name)
    ax2.set_xticks(range(len(metrics)))
    ax2.set_xticklabels(["exact match", "exact (hard slots)", "slot micro F1"])
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("dev split, 95% bootstrap CI")
    ax2.legend(fontsize=7)
    ax2.set_title("rules vs base vs adapter (dev)")
    save_figure(fig, path)


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The console summary of a run: stage times and each system's dev exact match / F1."""
    s = report["seconds"]
    lines = [" / ".join(f"{k} {v:.0f} s" for k, v in s.items())]
    for name, m in report["evaluation"]["all"].get("systems", {}).items():
        lines.append(
            f"{name}: exact {m['exact']['value']:.3f} slot micro F1 {m['micro_f1']['value']:.3f} (dev)"
        )
    return [*lines, report["paths"]["markdown"]]


def train_sections(margs: Any, dargs: Any, targs: Any, config: str | None, result: Any) -> dict[str, Any]:
    """The report's ``train_config`` and ``train`` sections, for either fine-tuning bench."""
    return {
        "train_config": {
            "model": vars(margs),
            "data": vars(dargs),
            "train": vars(targs),
            "config_file": config,
        },
        "train": {
            "steps": result.steps,
            "examples_seen": result.steps * targs.batch_size * targs.grad_accum,
            "train_records": result.train_examples,
            "first_eval_loss": result.first_eval_loss,
            "last_eval_loss": result.last_eval_loss,
            "tokens_per_second": result.tokens_per_second,
            "eval_history": result.eval_history,
            "adapter_dir": result.adapter_dir,
        },
    }
