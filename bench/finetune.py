"""Fine-tuning benchmark: generate -> LoRA train -> base vs adapter, one timed run, one report.

    python -m bench.finetune --data ../shared/datasets/amazon-beauty-2014 --work /tmp/ft-bench
    python -m bench.finetune --quick --work /tmp/ft-quick          # toy shop, a few steps (smoke)
    python -m bench.finetune --task understand --data <catalog> --work /tmp/ftu [--webshop DIR]

``--task understand`` is ``bench.finetune_understand`` (generate -> train -> rules vs base vs
adapter on the dev split).

The acceptance shape of issue #5: the whole pipeline on a CPU within ``--budget-s`` (30 min by
default), the adapter against its own base on held-out users under each listwise protocol.
Writes ``finetune-<dataset>-<model>.json`` / ``.md`` / ``.png`` (training curve + NDCG@10 per
protocol) into ``--out``. Training options come from ``--config`` (a ``finetune train`` YAML);
anything after ``--`` is passed to ``finetune train`` as overrides.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._report import environment, save_figure, slug, write_json, write_text
from bench.finetune_understand import UNDERSTAND_CONFIG, run_understand, summary_lines, train_sections
from llm.runtime import configure

DEFAULT_CONFIG = "finetune/configs/cpu-smollm2-beauty.yaml"
QUICK_CONFIG = "finetune/configs/cpu-tiny.yaml"


def _generate_config(args: argparse.Namespace, data: str, out: Path) -> Any:
    from finetune.data import GenerateConfig

    if args.quick:
        return GenerateConfig(
            data=data, out=str(out), seed=args.seed, test_users=20, dev_users=6, n_candidates=20,
            max_history=4, title_chars=32, sft_fraction=0.0,
            rebuy=40, chat=False, candidates="cooccurrence", overwrite=True,
        )  # fmt: skip
    return GenerateConfig(
        data=data, out=str(out), seed=args.seed, users=args.train_users, test_users=args.test_users,
        dev_users=args.dev_users, max_history=args.max_history, title_chars=args.title_chars,
        sft_fraction=0.0, rebuy=args.rebuy, chat=False,
        train_protocol=args.train_protocol, teacher="lexical", overwrite=True,
    )  # fmt: skip


def run(args: argparse.Namespace, train_overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Every stage in this process, timed; returns the report (also written to ``args.out``)."""
    from finetune.data import generate
    from finetune.evaluate import EvalConfig, evaluate
    from finetune.toydata import write_toy_dataset
    from finetune.train import parse_train_args, train

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = args.data
    if args.quick:
        data = str(write_toy_dataset(work / "toy-shop", seed=args.seed))
    stages: dict[str, float] = {}
    t0 = time.perf_counter()

    gcfg = _generate_config(args, data, work / "data")
    t = time.perf_counter()
    manifest = generate(gcfg)
    stages["generate"] = time.perf_counter() - t

    config = args.config or (QUICK_CONFIG if args.quick else DEFAULT_CONFIG)
    argv = ["--config", config, "--data_dir", str(work / "data"), "--output_dir", str(work / "run")]
    argv += ["--threads", str(args.threads), "--seed", str(args.seed)]
    if args.quick:
        quick = {
            "tasks": "listwise,rebuy", "curriculum": "rebuy:2", "max_steps": 3,
            "batch_size": 2, "save_every": 0, "eval_every": 0, "eval_examples": 6, "distill_weight": 0.5,
        }  # fmt: skip
        argv += [x for key, value in quick.items() for x in (f"--{key}", str(value))]
    argv += [*train_overrides, "--resume", "false"]
    margs, dargs, targs = parse_train_args(argv)
    t = time.perf_counter()
    result = train(margs, dargs, targs)
    stages["train"] = time.perf_counter() - t

    ecfg = EvalConfig(
        data=str(work / "data"), adapter=result.adapter_dir, out=str(work / "eval"), tag="eval",
        max_users=args.eval_users, protocols=args.protocols, n_generate=0,
        threads=args.threads, dtype=margs.dtype, progress=not args.no_progress,
    )  # fmt: skip
    t = time.perf_counter()
    ev = evaluate(ecfg)
    stages["evaluate"] = time.perf_counter() - t
    total = time.perf_counter() - t0

    train_log = [
        json.loads(line)
        for line in (Path(targs.output_dir) / "train_log.jsonl").read_text().splitlines()
        if line
    ]
    report: dict[str, Any] = {
        "bench": "finetune",
        "dataset": Path(data).name if not args.quick else "toy-shop",
        "model": margs.model,
        "protocol": {
            "split": manifest["split_protocol"],
            "users": manifest["users"],
            "counts": {k: v for k, v in manifest["counts"].items() if v},
            "candidate_source": manifest["candidate_source"],
            "teacher": manifest.get("teacher"),
            "eval_users_per_protocol": args.eval_users,
            "ranking": "letter log-probs at the answer position (one forward pass), ties count against the target",
            "significance": "paired difference adapter - base over the same users, mean +- standard error",
        },
        "generate_config": {k: v for k, v in vars(gcfg).items() if k not in ("out", "overwrite")},
        **train_sections(margs, dargs, targs, config, result),
        "listwise": ev["listwise"],
        "seconds": {**{k: round(v, 1) for k, v in stages.items()}, "total": round(total, 1)},
        "budget_s": args.budget_s,
        "within_budget": total <= args.budget_s,
        "environment": environment(),
    }
    out = Path(args.out)
    stem = f"finetune-{slug(report['dataset'])}-{slug(margs.model)}" + ("-quick" if args.quick else "")
    write_json(out / f"{stem}.json", report)
    write_text(out / f"{stem}.md", to_markdown(report, f"{stem}.png"))
    _plot(out / f"{stem}.png", report, train_log)
    report["paths"] = {"json": str(out / f"{stem}.json"), "markdown": str(out / f"{stem}.md")}
    return report


def _row(name: str, m: dict[str, Any]) -> str:
    return (
        f"| {name} | {m['n']} | {m['ndcg@10']:.4f} ± {m['ndcg@10_se']:.3f} | "
        f"{m['recall@5']:.4f} ± {m['recall@5_se']:.3f} | {m['recall@1']:.4f} |"
    )


def to_markdown(report: dict[str, Any], png: str) -> str:
    s = report["seconds"]
    p = report["protocol"]
    lines = [
        f"# Fine-tuning bench: {report['dataset']}, {report['model']}",
        "",
        f"One run, one process: generate {s['generate']:.0f} s + train {s['train']:.0f} s + evaluate "
        f"{s['evaluate']:.0f} s = **{s['total']:.0f} s** (budget {report['budget_s']:.0f} s: "
        f"{'within' if report['within_budget'] else 'OVER'}). {report['train']['steps']} optimizer steps, "
        f"{report['train']['examples_seen']} examples, {report['train']['tokens_per_second']:.0f} tokens/s.",
        "",
        f"Protocol: {p['split']}",
        f"Users: {p['users']}; candidate source {p['candidate_source']}; ranking by {p['ranking']}; "
        f"{p['significance']}. Teacher: {p['teacher']}.",
        "",
        "| protocol / model | n | NDCG@10 (± se) | Recall@5 (± se) | Recall@1 |",
        "|---|---|---|---|---|",
    ]
    for protocol, entry in report["listwise"].items():
        for name, label in (
            ("base", "base"),
            ("adapter", "**adapter**"),
            ("teacher", "lexical teacher (reference, no LLM)"),
            ("title_overlap", "title-word overlap (reference, no LLM)"),
        ):
            if name in entry:
                lines.append(_row(f"{protocol} / {label}", entry[name]))
        d = entry.get("paired_ndcg@10_diff")
        if d:
            lines.append(
                f"| {protocol} / adapter − base (paired) | {entry['adapter']['n']} | "
                f"**{d['mean']:+.4f} ± {d['se']:.3f}** (z={d['z']:.2f}) | | |"
            )
        lines.append(
            f"| {protocol} / random order (expected) | - | {entry['random_baseline']['ndcg@10']:.4f} | | |"
        )
    c = report["train_config"]
    lines += [
        "",
        f"Training: `{c['config_file']}`; {report['generate_config']['train_protocol']} candidates; LoRA r={c['model']['lora_r']} on {c['model']['target_modules']} "
        f"({c['model']['lora_layers']}), tasks {c['data']['tasks']}, curriculum {c['data']['curriculum'] or 'none'}, "
        f"distill weight {c['data']['distill_weight']} at T={c['data']['distill_temperature']}, "
        f"lr {c['train']['learning_rate']}, batch {c['train']['batch_size']}, "
        f"{c['train']['max_train_seconds']:.0f} s budget, dtype {c['model']['dtype']}, {c['train']['threads']} threads.",
        "",
        f"Environment: {report['environment']}",
        "",
        f"![training curve and NDCG@10 per protocol]({png})",
        "",
    ]
    return "\n".join(lines)


def _plot(path: Path, report: dict[str, Any], train_log: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [e["step"] for e in train_log if e.get("event") == "train"]
    ax1.plot(
        steps, [e["loss"] for e in train_log if e.get("event") == "train"], label="train loss", alpha=0.6
    )
    evals = report["train"]["eval_history"]
    ax1.plot([e["step"] for e in evals], [e["eval_loss"] for e in evals], "o-", label="dev loss")
    ax1.set_xlabel("optimizer step")
    ax1.set_ylabel("loss (uniform over 20 letters = 3.00)")
    twin = ax1.twinx()
    for key, style in (("listwise_ndcg@10", "s--"), ("rebuy_recall@1", "^--")):
        pts = [(e["step"], e[key]) for e in evals if key in e]
        if pts:
            twin.plot(
                *zip(*pts, strict=True),
                style,
                color="tab:green" if "listwise" in key else "tab:red",
                label=f"dev {key}",
            )
    twin.set_ylim(0, 1)
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, fontsize=7)
    ax1.set_title("training")
    protocols = list(report["listwise"])
    names = [
        n
        for n in ("base", "adapter", "teacher", "title_overlap")
        if any(n in report["listwise"][p] for p in protocols)
    ]
    width = 0.8 / max(len(names), 1)
    for j, name in enumerate(names):
        xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(protocols))]
        ys = [report["listwise"][p].get(name, {}).get("ndcg@10", 0.0) for p in protocols]
        es = [report["listwise"][p].get(name, {}).get("ndcg@10_se", 0.0) for p in protocols]
        ax2.bar(xs, ys, width, yerr=es, label=name, alpha=1.0 if name in ("base", "adapter") else 0.5)
    for i, p in enumerate(protocols):
        rb = report["listwise"][p]["random_baseline"]["ndcg@10"]
        ax2.hlines(rb, i - 0.4, i + 0.4, colors="grey", linestyles=":")
    ax2.set_xticks(range(len(protocols)))
    ax2.set_xticklabels(protocols)
    ax2.set_ylabel("held-out NDCG@10 (dotted: random order)")
    ax2.legend(fontsize=7)
    ax2.set_title("base vs adapter")
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> None:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    overrides: list[str] = []
    if "--" in argv:
        k = argv.index("--")
        argv, overrides = argv[:k], argv[k + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--task",
        default="listwise",
        choices=("listwise", "understand"),
        help="listwise: the reranker recipe; understand: the understanding adapter (issue #20), scored on dev",
    )
    ap.add_argument("--data", help="dataset folder or registered name (required unless --quick)")
    ap.add_argument(
        "--quick", action="store_true", help="synthetic toy shop, a few steps and records: smoke test"
    )
    ap.add_argument("--work", required=True, help="scratch folder for the data, the run and the eval")
    ap.add_argument("--out", default="reports", help="report folder (default: reports/)")
    ap.add_argument(
        "--config",
        default=None,
        help=f"finetune train YAML (default: {DEFAULT_CONFIG}; --task understand: {UNDERSTAND_CONFIG})",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-users", type=int, default=3000)
    ap.add_argument("--test-users", type=int, default=3000, help="held-out pool (recalled needs ~3000)")
    ap.add_argument("--dev-users", type=int, default=48)
    ap.add_argument("--max-history", type=int, default=4)
    ap.add_argument("--title-chars", type=int, default=32)
    ap.add_argument("--rebuy", type=int, default=1000, help="re-buy warm-up examples generated")
    ap.add_argument(
        "--train-protocol",
        default="random",
        choices=("retrieved", "random", "recalled", "mixed"),
        help="candidate protocol of the training examples (test examples are made under every protocol); "
        "random: the one whose signal (history matching) a small causal LM learns, see finetune/README.md",
    )
    ap.add_argument("--eval-users", type=int, default=200, help="held-out users per protocol")
    ap.add_argument(
        "--protocols",
        default="retrieved,random",
        help="held-out protocols evaluated (add recalled, ~3.5 more minutes, for LlamaRec's)",
    )
    ap.add_argument(
        "--budget-s",
        type=float,
        default=1800.0,
        help="wall-time target: the whole run (listwise), the training stage (understand)",
    )
    ap.add_argument(
        "--webshop", default=None, help="understand: WebShop folder whose instructions join as inputs"
    )
    ap.add_argument(
        "--data-dir",
        default=None,
        help="understand: an existing `generate --task understand` folder (no generate)",
    )
    ap.add_argument(
        "--eval-records",
        type=int,
        default=0,
        help="understand: dev records scored (stratified head; 0 = all)",
    )
    ap.add_argument("--bootstrap", type=int, default=1000, help="understand: bootstrap resamples for the CIs")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if not args.quick and not args.data and not (args.task == "understand" and args.data_dir):
        ap.error("--data is required unless --quick")
    configure()
    if args.task == "understand":
        print("\n".join(summary_lines(run_understand(args, overrides))))
        return
    report = run(args, overrides)
    s = report["seconds"]
    print(
        f"total {s['total']:.0f} s (generate {s['generate']:.0f} / train {s['train']:.0f} / evaluate {s['evaluate']:.0f})"
    )
    for protocol, entry in report["listwise"].items():
        d = entry.get("paired_ndcg@10_diff", {})
        print(
            f"{protocol}: base {entry['base']['ndcg@10']:.4f} adapter {entry['adapter']['ndcg@10']:.4f} "
            f"diff {d.get('mean', float('nan')):+.4f} ± {d.get('se', float('nan')):.3f}"
        )
    print(report["paths"]["markdown"])


if __name__ == "__main__":
    main()
