"""Chat latency benchmark: where a turn's time goes, and which LLM settings make it fast.

    python -m bench.chat --data movielens-100k --out reports/

Runs a fixed, seeded script of multi-turn sessions (recommend with constraints -> revise ->
compare -> details) through ``ShoppingAssistant.stream`` once per VARIANT of the LLM settings,
and reports p50/p95 per stage: parse/state, retrieval, CF scoring + fusion, prompt build,
LLM prefill (time to first token), LLM decode, grounding check, repair, total turn; plus
tokens in/out per turn and decode tokens/s. Variants run side by side in one process,
interleaved turn by turn (rotating which goes first), so a shared, busy machine slows them all
alike: compare ratios vs the baseline, and read absolute numbers with the recorded load average.

Writes ``chat-<dataset>.json`` + ``.md`` + ``.png`` (stacked stage bars) with the protocol.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from bench._report import (
    environment,
    markdown_table,
    save_figure,
    slug,
    write_json,
    write_text,
)
from llm.runtime import configure

TARGET_FIRST_TOKEN_P50_S = 1.0
TARGET_TURN_P50_S = 3.0
TURNS_PER_SESSION = 4


@dataclass(frozen=True)
class Variant:
    """One set of LLM settings. The baseline is the product as it was before this bench."""

    name: str
    quantize: str | None = None
    threads: int | None = None  # None: the run's --threads
    prefix_cache: bool = False
    max_new_tokens: int = 72
    max_sentences: int | None = None
    prompt_version: int | None = 1  # None: the newest version of each template
    llm_cards: int | None = None  # candidate cards in the prompt (None: all shown cards)
    prose_guard: bool = False  # stop a reply that copies a card line, use the template
    rerank: str | None = None  # "llm": listwise LLM re-ranking of the fused top-20
    help: str = ""


# The prompt cards are the product's one format in every variant; the full/compact card ablation is a
# report (docs/latency.md), no longer live code.
BASELINE = Variant("baseline", help="fp32, v1 prompts, no prefix cache, 72 new tokens, no sentence cap")
# The product default before this round of changes (docs/latency.md, first idle run: turn p50 3.51 s).
DEFAULT_V1 = Variant(
    "default-v1",
    quantize="int8",
    prefix_cache=True,
    max_new_tokens=48,
    max_sentences=2,
    help="the previous product default: int8, prefix cache, v1 prompts (5 cards), 48 tokens, 2 sentences",
)
DEFAULT = replace(
    DEFAULT_V1,
    name="default",
    max_new_tokens=40,
    prompt_version=None,
    llm_cards=3,
    prose_guard=True,
    help="the product default: default-v1 + prompt v2 (recommend: one best match in words + 2 other titles, "
    "one sentence; bundle/repair: '|' cards without ids), 40 tokens with a whole-sentence stop, prose guard",
)
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        BASELINE,
        replace(BASELINE, name="int8", quantize="int8", help="torch dynamic int8 on every nn.Linear"),
        replace(BASELINE, name="threads1", threads=1, help="1 torch thread instead of the run's --threads"),
        replace(BASELINE, name="prefix-cache", prefix_cache=True, help="system-prompt KV cache reused"),
        replace(BASELINE, name="tokens48", max_new_tokens=48, help="max_new_tokens 48"),
        replace(BASELINE, name="sentences2", max_sentences=2, help="stop after 2 sentences"),
        DEFAULT_V1,
        replace(
            DEFAULT_V1, name="v1+prompt-v2", prompt_version=None, help="default-v1 + prompt v2 and its cards"
        ),
        replace(
            DEFAULT_V1, name="v1+cards3", llm_cards=3, help="default-v1 + only the top 3 cards in the prompt"
        ),
        replace(DEFAULT_V1, name="v1+tokens32", max_new_tokens=32, help="default-v1 + 32 new tokens"),
        replace(DEFAULT_V1, name="v1+guard", prose_guard=True, help="default-v1 + prose guard"),
        DEFAULT,
        replace(DEFAULT, name="default-threads1", threads=1, help="the product default on 1 torch thread"),
        replace(
            DEFAULT, name="llm-rerank", rerank="llm", help="the product default + LLM listwise re-ranking"
        ),
    ]
}
DEFAULT_VARIANTS = ["baseline", "default-v1", "default"]

# Stage -> how to read it from Reply.meta["timings"] (seconds).
STAGES = {
    "parse_state": lambda t: t.get("understand_s", 0.0),
    "retrieval": lambda t: t.get("retrieve_s", 0.0),
    "cf_fusion": lambda t: max(t.get("rank_s", 0.0) - t.get("rerank_s", 0.0), 0.0),
    "llm_rerank": lambda t: t.get("rerank_s", 0.0),
    "prompt": lambda t: max(t.get("plan_s", 0.0) - t.get("retrieve_s", 0.0) - t.get("rank_s", 0.0), 0.0),
    "llm_prefill": lambda t: t.get("llm_prefill_s", 0.0),
    "llm_decode": lambda t: t.get("llm_decode_s", 0.0),
    "grounding": lambda t: t.get("grounding_s", 0.0),
    "repair": lambda t: t.get("repair_s", 0.0),
    "first_token": lambda t: t.get("first_token_s", 0.0),
    "turn": lambda t: t.get("total_s", 0.0),
}
STACKED = [
    "parse_state",
    "retrieval",
    "cf_fusion",
    "llm_rerank",
    "prompt",
    "llm_prefill",
    "llm_decode",
    "grounding",
    "repair",
]


@dataclass
class ScriptTurn:
    session: int
    message: str
    kind: str  # recommend | revise | compare | details


@dataclass
class TurnResult:
    variant: str
    session: int
    turn: int
    kind: str
    message: str
    intent: str
    used_llm: bool
    timings: dict[str, Any]
    cpu_s: float
    text: str
    violations: int
    regenerated: bool
    fallback: bool
    load_1m: float | None = None
    violation_details: list[str] = field(default_factory=list)  # "kind: text", to judge them by eye
    card_copy: bool = False  # the LLM's reply copied a prompt card line (before any prose guard)
    copy_shown: bool = False  # the text the shopper got still reads as a copied card line


@dataclass
class ChatBenchConfig:
    data: Any = "movielens-100k"  # registry name, path, or a Dataset
    llm: str = "qwen2.5-coder-0.5b"
    turns: int = 4
    threads: int = 2
    variants: Sequence[str | Variant] = field(default_factory=lambda: list(DEFAULT_VARIANTS))
    out: Path | None = Path("reports")
    seed: int = 0
    cache_dir: str | None = None
    warmup: bool = True
    show_progress: bool = True
    log: Path | None = None  # JSON line per turn, appended as the run goes


# ---------------------------------------------------------------------------- the script
def make_script(catalog: Any, turns: int, seed: int) -> list[ScriptTurn]:
    """Seeded sessions of 4 turns built from the catalog's own categories/brands/prices."""
    if turns < 1:
        raise ValueError(f"turns must be >= 1, got {turns}")
    rng = random.Random(seed)
    items = [catalog.at(i) for i in range(len(catalog))]
    leaves = Counter(it.categories[-1] for it in items if len(it.categories) >= 2)
    common = [c for c, n in leaves.most_common(12) if n >= 3] or [c for c, _ in leaves.most_common(4)]
    if len(common) < 2:
        raise ValueError("the catalog needs at least two leaf categories with items for the chat script")
    brands = [b for b, n in Counter(it.brand for it in items if it.brand).most_common(8) if n >= 2]
    roots = Counter(it.categories[0] for it in items if it.categories)
    root = roots.most_common(1)[0][0].lower() if roots else "product"
    noun = root[:-1] if root.endswith("s") and len(root) > 3 else "product"
    out: list[ScriptTurn] = []
    for s in range(math.ceil(turns / TURNS_PER_SESSION)):
        cat, other, third = rng.sample(common, 3) if len(common) >= 3 else (*common[:2], common[0])
        first = f"recommend a good {cat.lower()} {noun}"
        if catalog.has_prices:
            prices = sorted(it.price for it in items if it.price and it.categories[-1:] == (cat,))
            cap = max(5, round(prices[len(prices) // 2] * 1.3)) if prices else 50
            first = f"I need a {cat.lower()} under ${cap}"
            revise = f"make it under ${max(3, round(cap * 0.7))}"
        else:
            revise = f"actually something more {third.lower()}"
        first += f", not {rng.choice(brands)}" if brands else f", nothing {other.lower()}"
        out += [
            ScriptTurn(s, first, "recommend"),
            ScriptTurn(s, revise, "revise"),
            ScriptTurn(s, "compare the first two", "compare"),
            ScriptTurn(s, "tell me more about the first one", "details"),
        ]
    return out[:turns]


# ---------------------------------------------------------------------------- running
def _resolve_variants(names: Sequence[str | Variant]) -> list[Variant]:
    out = []
    for v in names:
        if isinstance(v, Variant):
            out.append(v)
        elif v in VARIANTS:
            out.append(VARIANTS[v])
        else:
            raise ValueError(f"unknown variant {v!r}; choose from {sorted(VARIANTS)}")
    if not out:
        raise ValueError("no variants to run")
    names_ = [v.name for v in out]
    if len(set(names_)) != len(names_):
        raise ValueError(f"duplicate variant names {names_}")
    return out


def _build_bots(cfg: ChatBenchConfig, variants: list[Variant], session_root: Path) -> tuple[Any, dict]:
    from assistant.config import AssistantConfig
    from assistant.index import AssistantIndex
    from assistant.sessions import SessionStore
    from assistant.shopping_assistant import ShoppingAssistant
    from llm.chat_model import LocalChatModel
    from retrieval.data.schema import Dataset

    if isinstance(cfg.data, Dataset):
        ds = cfg.data
    else:
        from retrieval.data.registry import load_dataset

        ds = load_dataset(cfg.data)
    index = AssistantIndex.build_or_load(ds, cache_dir=cfg.cache_dir, show_progress=cfg.show_progress)
    index.embedder.encode_query("warm up")
    bots = {}
    for v in variants:
        llm = LocalChatModel(
            model_name=cfg.llm,
            threads=v.threads or cfg.threads,
            cache_dir=cfg.cache_dir,
            quantize=v.quantize,
            prefix_cache=v.prefix_cache,
            max_new_tokens=v.max_new_tokens,
            max_sentences=v.max_sentences,
        )
        _ = llm.loaded  # load (and quantise) before timing anything
        reranker = None
        if v.rerank == "llm":
            from llm.reranker import LLMReranker

            reranker = LLMReranker.from_chat_model(llm)
        config = AssistantConfig(
            max_new_tokens=v.max_new_tokens,
            max_sentences=v.max_sentences,
            prompt_version=v.prompt_version,
            llm_cards=v.llm_cards,
            prose_guard=v.prose_guard,
        )
        bot = ShoppingAssistant(
            index, llm, SessionStore(session_root / slug(v.name)), config, reranker=reranker
        )
        if v.prefix_cache:
            bot.warm_up()
        bots[v.name] = bot
    return ds, bots


def _run_turn(bot: Any, v: Variant, st: ScriptTurn, idx: int, threads: int, tag: str) -> TurnResult:
    import torch

    from assistant.reply import DoneEvent

    torch.set_num_threads(v.threads or threads)
    c0 = time.process_time()
    reply = None
    for ev in bot.stream(st.message, session_id=f"{tag}-s{st.session}"):
        if isinstance(ev, DoneEvent):
            reply = ev.reply
    assert reply is not None
    return TurnResult(
        variant=v.name,
        session=st.session,
        turn=idx,
        kind=st.kind,
        message=st.message,
        intent=reply.intent,
        used_llm=reply.meta.get("llm") is not None,
        timings=dict(reply.meta["timings"]),
        cpu_s=round(time.process_time() - c0, 4),
        text=reply.text,
        violations=len(reply.grounding.violations),
        regenerated=reply.grounding.regenerated,
        fallback=reply.grounding.fallback,
        load_1m=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        violation_details=[f"{v.kind}: {v.text}" for v in reply.grounding.violations],
        card_copy=bool(reply.meta.get("card_copy")),
        copy_shown=bool(reply.meta.get("card_copy")) and not reply.grounding.fallback,
    )


def _pct(xs: Sequence[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return float(s[lo] + (s[hi] - s[lo]) * (k - lo))


def summarise(results: list[TurnResult], variants: list[Variant], baseline: str) -> dict[str, dict]:
    """Per variant: `<stage>_p50/_p95` (seconds, over turns that called the LLM), tokens, quality."""
    out: dict[str, dict] = {}
    for v in variants:
        rows = [r for r in results if r.variant == v.name]
        llm_rows = [r for r in rows if r.used_llm]
        s: dict[str, Any] = {"turns": len(rows), "llm_turns": len(llm_rows)}
        for stage, get in STAGES.items():
            xs = [float(get(r.timings)) for r in llm_rows]
            s[f"{stage}_p50"] = _pct(xs, 50)
            s[f"{stage}_p95"] = _pct(xs, 95)
        s["cpu_p50"] = _pct([r.cpu_s for r in llm_rows], 50)
        tin = [r.timings.get("llm_prompt_tokens") for r in llm_rows]
        tout = [r.timings.get("llm_completion_tokens") for r in llm_rows]
        s["tokens_in_mean"] = statistics.fmean(t for t in tin if t) if any(tin) else None
        s["tokens_out_mean"] = statistics.fmean(t for t in tout if t) if any(tout) else None
        rates = [
            (r.timings["llm_completion_tokens"] - 1) / r.timings["llm_decode_s"]
            for r in llm_rows
            if r.timings.get("llm_calls") == 1
            and (r.timings.get("llm_completion_tokens") or 0) > 1
            and r.timings.get("llm_decode_s", 0) > 0
        ]
        s["decode_tokens_per_s"] = _pct(rates, 50)
        pre = [
            r.timings["llm_prompt_tokens"] / r.timings["llm_prefill_s"]
            for r in llm_rows
            if r.timings.get("llm_calls") == 1
            and r.timings.get("llm_prompt_tokens")
            and r.timings.get("llm_prefill_s", 0) > 0
        ]
        s["prefill_tokens_per_s"] = _pct(pre, 50)
        s["card_copy_rate"] = (
            round(sum(r.card_copy for r in llm_rows) / len(llm_rows), 3) if llm_rows else None
        )
        s["copy_shown_rate"] = (
            round(sum(r.copy_shown for r in llm_rows) / len(llm_rows), 3) if llm_rows else None
        )
        s["all_turns_p50"] = _pct([float(r.timings.get("total_s", 0.0)) for r in rows], 50)
        s["rerank_p50"] = _pct(
            [float(r.timings.get("rerank_s", 0.0)) for r in rows if "rerank_s" in r.timings], 50
        )
        s["violations"] = sum(r.violations for r in rows)
        s["regenerations"] = sum(r.regenerated for r in rows)
        s["fallbacks"] = sum(r.fallback for r in rows)
        s["settings"] = {k: val for k, val in asdict(v).items() if k != "name"}
        out[v.name] = s
    base = out.get(baseline)
    for s in out.values():
        for key in ("first_token_p50", "turn_p50", "llm_prefill_p50", "llm_decode_p50", "cpu_p50"):
            b, x = (base or {}).get(key), s.get(key)
            s[f"{key}_ratio"] = round(x / b, 3) if b and x is not None else None
    return out


def run(cfg: ChatBenchConfig) -> dict[str, Any]:
    """Run the bench; writes the reports when ``cfg.out`` is set; returns the JSON dict."""
    import torch

    variants = _resolve_variants(cfg.variants)
    if cfg.threads < 1:
        raise ValueError(f"threads must be >= 1, got {cfg.threads}")
    torch.set_num_threads(cfg.threads)
    load_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as tmp:
        t0 = time.perf_counter()
        ds, bots = _build_bots(cfg, variants, Path(tmp))
        setup_s = time.perf_counter() - t0
        script = make_script(ds.catalog, cfg.turns, cfg.seed)
        if cfg.warmup:  # first-call costs (kernels, allocator) are not what a shopper waits for
            for v in variants:
                torch.set_num_threads(v.threads or cfg.threads)
                bots[v.name].llm.invoke("Say hi.", max_new_tokens=2)
        results: list[TurnResult] = []
        bar = tqdm(total=len(script) * len(variants), desc="chat bench turns", disable=not cfg.show_progress)
        for i, st in enumerate(script):
            order = variants[i % len(variants) :] + variants[: i % len(variants)]
            for v in order:
                r = _run_turn(bots[v.name], v, st, i, cfg.threads, "bench")
                results.append(r)
                t = r.timings
                bar.set_postfix_str(
                    f"{v.name}: first {t.get('first_token_s', 0):.1f}s turn {t.get('total_s', 0):.1f}s "
                    f"in/out {t.get('llm_prompt_tokens')}/{t.get('llm_completion_tokens')} load {r.load_1m:.1f}",
                    refresh=False,
                )
                bar.update(1)
                if cfg.log is not None:  # one line per turn, so a long run can be watched (and is not lost)
                    with open(cfg.log, "a", encoding="utf-8") as f:
                        f.write(json.dumps(asdict(r), ensure_ascii=False) + "\n")
        bar.close()
        for bot in bots.values():
            bot.close()
    summary = summarise(results, variants, variants[0].name)
    report = {
        "bench": "chat",
        "dataset": ds.name,
        "protocol": {
            "command": " ".join([Path(sys.executable).name, "-m", "bench.chat", *sys.argv[1:]])
            if sys.argv and sys.argv[0].endswith("chat.py")
            else None,
            "llm": cfg.llm,
            "dtype": "float32 weights; int8 variants: torch dynamic int8 Linear (fp32 activations)",
            "threads": cfg.threads,
            "turns_per_variant": len(script),
            "sessions": len({t.session for t in script}),
            "seed": cfg.seed,
            "warmup": "one 2-token generation per variant" if cfg.warmup else "none",
            "order": "interleaved: each scripted turn runs on every variant, rotating the first",
            "percentiles_over": "turns that called the LLM (template-only turns are counted apart)",
            "baseline": variants[0].name,
            "load_average_start": load_start,
            "load_average_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "setup_s": round(setup_s, 2),
            "wall_s": round(time.perf_counter() - t_start, 2),
            "git_commit": _git_commit(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "environment": environment(),
            "targets": {"first_token_p50_s": TARGET_FIRST_TOKEN_P50_S, "turn_p50_s": TARGET_TURN_P50_S},
        },
        "script": [asdict(t) for t in script],
        "variants": summary,
        "turns": [asdict(r) for r in results],
    }
    if cfg.out is not None:
        write_reports(report, Path(cfg.out))
    return report


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


# ---------------------------------------------------------------------------- reports
def summary_table(report: dict[str, Any]) -> str:
    rows = []
    for name, s in report["variants"].items():
        rows.append({"variant": name, **s})
    cols = [
        "variant",
        "first_token_p50",
        "first_token_p95",
        "turn_p50",
        "turn_p95",
        "first_token_p50_ratio",
        "turn_p50_ratio",
        "cpu_p50",
        "tokens_in_mean",
        "tokens_out_mean",
        "decode_tokens_per_s",
        "card_copy_rate",
        "copy_shown_rate",
        "all_turns_p50",
        "violations",
        "regenerations",
        "fallbacks",
    ]
    return markdown_table(rows, cols, digits=2)


def stage_table(report: dict[str, Any]) -> str:
    rows = []
    for name, s in report["variants"].items():
        row = {"variant": name}
        for st in STACKED:
            row[st] = f"{s[f'{st}_p50'] or 0:.3f} / {s[f'{st}_p95'] or 0:.3f}"
        rows.append(row)
    return markdown_table(rows, ["variant", *STACKED])


def write_reports(report: dict[str, Any], out: Path) -> dict[str, Path]:
    base = out / f"chat-{slug(report['dataset'])}"
    p = report["protocol"]
    load = p["load_average_start"]
    lines = [
        f"# Chat latency: {report['dataset']}",
        "",
        f"LLM `{p['llm']}` ({p['dtype']}), {p['threads']} torch threads, {p['turns_per_variant']} turns "
        f"per variant ({p['sessions']} sessions; recommend -> revise -> compare -> details), seed {p['seed']}, "
        f"warm-up: {p['warmup']}. Machine: {p['environment'].get('cpu_count')} CPUs, "
        f"{p['environment'].get('platform')}; load average at start {load} and end {p['load_average_end']} "
        "(a shared box inflates absolute times; variants are interleaved turn by turn, so compare ratios). "
        f"Order: {p['order']}. Percentiles over {p['percentiles_over']}. Commit {p['git_commit']}.",
        "",
        f"Targets (idle 2-core box, product default): first token p50 <= {TARGET_FIRST_TOKEN_P50_S} s, "
        f"turn p50 <= {TARGET_TURN_P50_S} s.",
        "",
        "## Summary (seconds; ratios vs the baseline; cpu = process CPU seconds per turn, less load-sensitive)",
        "",
        summary_table(report),
        "",
        "## Stages, p50 / p95 seconds",
        "",
        stage_table(report),
        "",
        "## Variants",
        "",
        *[f"- **{n}**: {s['settings']['help']}" for n, s in report["variants"].items()],
        "",
        "## Replies (first session, for checking quality by eye)",
        "",
    ]
    for name in report["variants"]:
        lines.append(f"### {name}")
        for r in report["turns"]:
            if r["variant"] == name and r["session"] == 0:
                flag = " (template fallback)" if r["fallback"] else ""
                lines.append(f"- *{r['message']}* -> {r['text']}{flag}")
        lines.append("")
    paths = {
        "json": write_json(base.with_suffix(".json"), report),
        "md": write_text(base.with_suffix(".md"), "\n".join(lines) + "\n"),
    }
    paths["png"] = stacked_plot(base.with_suffix(".png"), report)
    return paths


def stacked_plot(path: Path, report: dict[str, Any]) -> Path:

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["variants"])
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names)), 4.2))
    bottom = [0.0] * len(names)
    for st in STACKED:
        vals = [report["variants"][n][f"{st}_p50"] or 0.0 for n in names]
        ax.bar(names, vals, bottom=bottom, label=st)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    load = report["protocol"]["load_average_start"]
    ax.set_ylabel("seconds (p50 per stage)")
    ax.set_title(
        f"Chat turn stages, {report['dataset']} (load avg {load[0] if load else '?':.1f})", fontsize=9
    )
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


# ---------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.chat", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="movielens-100k", help="dataset registry name or folder")
    ap.add_argument("--llm", default="qwen2.5-coder-0.5b", help="LLM registry name or local HF dir")
    ap.add_argument(
        "--turns",
        type=int,
        default=4,
        help="scripted turns per variant (sessions of 4; 4 keeps a run < 10 min)",
    )
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the threads1 variant uses 1)")
    ap.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, help=f"from {DEFAULT_VARIANTS}")
    ap.add_argument("--out", type=Path, default=Path("reports"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--log", type=Path, default=None, help="append one JSON line per turn here")
    a = ap.parse_args(argv)
    configure()  # before torch loads: the OpenMP policy 2-thread generation needs on a busy box
    cfg = ChatBenchConfig(
        data=a.data,
        llm=a.llm,
        turns=a.turns,
        threads=a.threads,
        variants=a.variants,
        out=a.out,
        seed=a.seed,
        cache_dir=a.cache_dir,
        log=a.log,
    )
    report = run(cfg)
    print(summary_table(report))
    print()
    print(stage_table(report))
    print(
        f"\nload average at start {report['protocol']['load_average_start']}; wrote {cfg.out}/chat-*.json/.md/.png"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
