"""Conversational benchmark: a simulated shopper looks for its held-out item, turn by turn.

    python -m bench.conversation --data movielens-100k --users 300 --max-turns 5 --seed 0
    python -m bench.conversation --quick                     # <= 5 min on 2 cores
    python -m bench.conversation --data /work/shared/datasets/amazon-beauty-2014 --llm none

Protocol (InteRecAgent-style user simulation): leave-one-out split; for each sampled test user
the systems are built on train+valid only and know the user's history; the simulator
(``bench.simulator``) knows the test item and talks about it without naming it. ``--shopper
describe`` (the default, the headline): the product type in everyday words, then attribute words
many products share, reactions to what is shown, a budget phrase, the brand only when asked.
``--shopper free``: the same plan, said the way people chat (``bench.voice``).
``--shopper facets``: the exact leaf category, price band, brand and "not brand X" (a filter
alone does well there). Success = the target is among the top-``k`` items shown in a turn.

Every system talks to the same shoppers (same seeds): the no-ML baselines of ``bench.baselines``
(``filter+popularity``, ``filter+random``, ``keyword+popularity``), ``cf-only`` (top-k of the CF
scorer over the history, blind to the dialogue), ``retrieval-only`` (the assistant with no CF
scorer), ``full`` (the assistant as shipped) and ``full+adapter`` (with ``--adapter``). Paired
differences (``full`` minus each other system) come with 95% bootstrap CIs over shoppers and
McNemar's test on hits (``bench.stats``).

Writes ``conversation-<dataset>[-<shopper>].json`` / ``.md`` / ``.png`` and ``-transcripts.jsonl``
into ``--out`` (the facets mode keeps the old file names with a ``-facets`` suffix).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from bench._report import (
    environment,
    fmt,
    markdown_table,
    parse_ranker_weights,
    ranker_weights,
    slug,
    write_json,
    write_text,
)
from bench.baselines import BASELINES, BaselineRequest, Baselines, popularity_counts
from bench.conv_metrics import Dialogue, TurnRecord, count_unsupported_claims, first_hit, summarize
from bench.simulator import SHOPPER_MODES, DescribeShopper, SimulatedShopper, Simulator, llm_rewriter
from bench.stats import bootstrap_mean, mcnemar, paired_bootstrap
from llm.runtime import configure
from retrieval.data.schema import Dataset, Interactions
from retrieval.data.splits import leave_one_out

QUICK_DATA = "movielens-100k"
QUICK_USERS = 30
# Quick mode runs the whole product, tiny LLM included (smollm2-135m writes the full system's
# replies: ~1 s a turn with the 32-token prose budget); --llm none scores ranking only.
QUICK_LLM = "smollm2-135m"
SYSTEMS = (*BASELINES, "cf-only", "retrieval-only", "full", "full+adapter")
# What each system does, printed in every report beside its numbers.
SYSTEM_PROTOCOL = {
    "filter+popularity": "catalog filtered by the hard constraints the shopper stated so far (the "
    "simulator's own record: a perfect parser), minus history and items already shown, by training "
    "popularity",
    "filter+random": "the same filter, seeded random order (one permutation per shopper)",
    "keyword+popularity": "no filter: the shopper's words so far (product type included, filler and stop "
    "words dropped) matched against titles and category names by token overlap, then training popularity; "
    "history and shown items dropped",
    "cf-only": "top-k of the CF scorer over the shopper's history, blind to the dialogue",
    "retrieval-only": "the assistant with no CF scorer",
    "full": "the assistant as shipped",
    "full+adapter": "the assistant with the --adapter LoRA on its LLM",
}
SHOPPER_PROTOCOL = {
    "describe": "names the product type in everyday words (leaf category or its parent), then 1-2 attribute "
    "words a turn from the target's title/description/reviews that at least max(min_df, share x catalog) "
    "items share (never its brand or a rare word), reacts to what is shown (cheaper / more premium / more "
    "like the n-th one / not these), a budget only as a generous round phrase, the brand only when asked "
    "and then only half the time",
    "free": "the describe shopper's plan (same facts, same seeds: type, attribute words, era, budget, brand "
    "when asked, reactions) said in free chat words by bench.voice: openers and gift stories, questions or "
    "statements, hedges, chit-chat, run-ons, lower case, budgets as '$20' / 'twenty bucks max' / "
    "'不超过二十块', and a rare typo in a filler word (never in a fact)",
    "facets": "states the exact leaf category, the price band holding the price, the brand and a 'not brand "
    "X' from its history, release decade; at most 2 facets a turn",
}
TABLE_COLUMNS = (
    "system",
    "hit@5",
    "at@5",
    "constraint_satisfaction",
    "out_of_catalogue_rate",
    "duplicate_rate",
    "already_bought_rate",
    "unsupported_claim_rate",
    "clarify_rate",
    "latency_p50_s",
    "latency_p95_s",
    "tokens_per_turn",
)


@dataclasses.dataclass
class SystemUnderTest:
    """One system: an assistant (or None for the dialogue-blind CF baseline) and how to count tokens."""

    name: str
    assistant: Any | None = None
    scorer: Any | None = None
    tokenizer: Any | None = None
    llm: str | None = None
    baselines: Baselines | None = None  # set for the no-ML baselines

    @property
    def token_unit(self) -> str:
        if self.assistant is None:
            return "none (no text)"
        return f"tokenizer:{self.llm}" if self.tokenizer is not None else "words (whitespace)"


@dataclasses.dataclass
class ConversationConfig:
    data: str | Dataset = QUICK_DATA  # registry name, folder/file path, or a loaded Dataset
    users: int = 300
    max_turns: int = 5
    seed: int = 0
    k: int = 5
    llm: str | None = "qwen2.5-coder-0.5b"
    baseline_llm: str = "none"  # "same": retrieval-only also generates text with --llm
    adapter: str | None = None
    embedder: str = "minilm"
    scorer: str = "auto"
    understand_llm: bool = False  # AssistantConfig.understand_llm of the LLM systems
    sim_llm: str | None = None
    sim_language: str = "en"
    shopper: str = "describe"  # "describe" (headline), "free" (its plan in free chat words) or "facets"
    systems: tuple[str, ...] = SYSTEMS
    cache_dir: str | None = None
    threads: int | None = None
    out: str = "reports"
    transcripts_in_md: int = 10  # sampled dialogues per system in the markdown report
    n_boot: int = 2000
    show_progress: bool = True
    command: str | None = None  # the command line that made the report (written into it)
    checkpoint_s: float | None = 300.0  # rewrite the reports every so often during a long run
    # Ranker weights that differ from the shipped defaults (tuning on dev shoppers), e.g.
    # {"words": 1.0}; the report records them.
    ranker: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.shopper not in SHOPPER_MODES:
            raise ValueError(f"shopper must be one of {list(SHOPPER_MODES)}, got {self.shopper!r}")
        if self.shopper == "free" and self.sim_llm:
            raise ValueError("--sim-llm rephrases templates; the free shopper has its own voice")
        unknown = [s for s in self.systems if s not in SYSTEMS]
        if unknown:
            raise ValueError(f"unknown systems {unknown}; choose from {list(SYSTEMS)}")


# --- data -----------------------------------------------------------------------------------
def evaluation_split(dataset: Dataset) -> tuple[Dataset, list[tuple[str, list[str], str]]]:
    """The dataset the systems may see (train + valid) and every ``(user, history, target)``."""
    split = leave_one_out(dataset.interactions)
    seen = Interactions(pd.concat([split.train.frame, split.valid.frame], ignore_index=True))
    visible = Dataset(
        name=f"{dataset.name}-loo",
        catalog=dataset.catalog,
        interactions=seen,
        description=dataset.description,
        currency=dataset.currency,
        source=dataset.source,
    )
    rows = [(u, h, t) for u, h, t in split.histories("test") if t in dataset.catalog]
    return visible, rows


def sample_users(
    rows: Sequence[tuple[str, list[str], str]], n: int, seed: int
) -> list[tuple[str, list[str], str]]:
    """``n`` test rows, seeded, in a stable order (all of them when ``n`` >= len)."""
    if n <= 0:
        raise ValueError(f"--users must be positive, got {n}")
    if not rows:
        raise ValueError("the leave-one-out split has no test users (every user needs >= 3 events)")
    picked = sorted(random.Random(seed).sample(range(len(rows)), min(n, len(rows))))
    return [rows[i] for i in picked]


# --- systems --------------------------------------------------------------------------------
def build_systems(cfg: ConversationConfig, visible: Dataset, sessions: Path) -> list[SystemUnderTest]:
    """Every system of ``cfg.systems`` over the dataset the systems may see, in ``SYSTEMS`` order.

    The assistants come from the public ``ShoppingAssistant.from_dataset`` (one index cache, so
    ``retrieval-only`` reuses the ``full`` system's store and differs only in having no CF scorer).
    Each assistant keeps its sessions and chat events in its own folder under ``sessions`` (one per
    run): a signed-in shopper's likes in chat join their history, so a shared store would let one
    system (or an earlier run) change the histories the next one ranks with.
    """
    from assistant.shopping_assistant import ShoppingAssistant
    from retrieval.ranker import RankerWeights

    wanted = set(cfg.systems)

    def assistant(llm: str | None, name: str, **kw: Any) -> Any:
        return ShoppingAssistant.from_dataset(
            visible,
            llm=llm,
            embedder=cfg.embedder,
            cache_dir=cfg.cache_dir,
            sessions_dir=str(sessions / name),
            threads=cfg.threads,
            show_progress=cfg.show_progress,
            understand_llm=cfg.understand_llm and llm is not None,
            ranker_weights=RankerWeights(**cfg.ranker) if cfg.ranker else None,
            **kw,
        )

    def wrap(name: str, bot: Any, llm: str | None) -> SystemUnderTest:
        tok = getattr(bot.llm, "tokenizer", None) if bot.llm is not None else None
        label = None if bot.llm is None else str(getattr(bot.llm, "model_name", llm))
        return SystemUnderTest(name, bot, bot.index.scorer, tok, label)

    built: dict[str, SystemUnderTest] = {}
    if "full" in wanted or "cf-only" in wanted:
        full = assistant(cfg.llm if "full" in wanted else None, "full", scorer=cfg.scorer)
        if "full" in wanted:
            built["full"] = wrap("full", full, cfg.llm)
        if "cf-only" in wanted:
            if full.index.scorer is None:
                raise SystemExit("cf-only needs a CF scorer; pass --scorer auto|itemknn|ease|...")
            built["cf-only"] = SystemUnderTest("cf-only", None, full.index.scorer)
            if "full" not in wanted:
                full.close()
    if "retrieval-only" in wanted:
        # No collaborative scorer: the ranker's CF signal is NaN -> contributes 0.
        llm = cfg.llm if cfg.baseline_llm == "same" else None
        built["retrieval-only"] = wrap("retrieval-only", assistant(llm, "retrieval-only", scorer=None), llm)
    if "full+adapter" in wanted and cfg.adapter is not None:
        if not cfg.llm:
            raise SystemExit("--adapter needs an --llm to attach to")
        bot = assistant(cfg.llm, "full-adapter", scorer=cfg.scorer, adapter=cfg.adapter)
        built["full+adapter"] = wrap("full+adapter", bot, cfg.llm)
    if wanted & set(BASELINES):
        base = Baselines(visible.catalog, popularity_counts(visible.interactions), seed=cfg.seed)
        for name in BASELINES:
            built[name] = SystemUnderTest(name, baselines=base)
    return [built[n] for n in SYSTEMS if n in built and n in wanted]


def _profiles_first(systems: Sequence[SystemUnderTest], users: Sequence[tuple[str, list[str], str]]) -> None:
    """Give every sampled shopper its profile vector before any dialogue.

    The assistant stores a known user's profile after their first turn, in the index cache,
    so without this the first system to meet a user (and a first run) would start without it
    and later ones (and re-runs) with it: results would depend on system order and cache state.
    """
    from assistant.config import AssistantConfig

    store = next((s.assistant.index.users for s in systems if s.assistant is not None), None)
    if store is None:
        return
    for user_id, history, _ in users:
        if history and store.vector(user_id) is None:
            store.update(user_id, history[-AssistantConfig().profile_history :])


# --- one dialogue ---------------------------------------------------------------------------
def _count_tokens(system: SystemUnderTest, text: str) -> int | None:
    if system.assistant is None:
        return None
    if system.tokenizer is not None:
        return len(system.tokenizer.encode(text, add_special_tokens=False))
    return len(text.split())


def run_dialogue(
    system: SystemUnderTest,
    shopper: SimulatedShopper | DescribeShopper,
    user_id: str,
    history: list[str],
    target_id: str,
    *,
    max_turns: int,
    k: int,
    checker: Any,
    session_id: str,
) -> Dialogue:
    """Talk until the target is shown in the top ``k`` or ``max_turns`` turns have passed."""
    catalog = checker.catalog
    dialogue = Dialogue(system.name, user_id, target_id, list(history))
    past = [catalog[i] for i in history if i in catalog]
    reply: Any = None
    said_so_far: list[str] = []
    shown_so_far: list[str] = []
    for turn_no in range(1, max_turns + 1):
        said = shopper.next_turn(reply)
        said_so_far.append(said.utterance)
        t0 = time.perf_counter()
        if system.baselines is not None:
            req = BaselineRequest(user_id, said_so_far, said.constraints, history, shown_so_far, k)
            ids = system.baselines.recommend(system.name, req)
            reply = SimpleNamespace(
                intent="recommend", text="", items=[SimpleNamespace(item_id=i) for i in ids]
            )
        elif system.assistant is None:
            recs = system.scorer.recommend(list(history), n=k, filter_already_seen=True)
            reply = SimpleNamespace(
                intent="recommend", text="", items=[SimpleNamespace(item_id=i) for i, _ in recs]
            )
        else:
            reply = system.assistant.chat(said.utterance, session_id=session_id, user_id=user_id)
        latency = time.perf_counter() - t0
        shown = [it.item_id for it in reply.items]
        shown_so_far += [i for i in shown[:k] if i not in shown_so_far]
        claims, ungrounded = count_unsupported_claims(
            checker,
            reply.text,
            [catalog[i] for i in shown if i in catalog],
            said.utterance,
            said.constraints,
            history_items=past,
        )
        dialogue.turns.append(
            TurnRecord(
                turn=turn_no,
                user_text=said.utterance,
                shown=shown,
                intent=reply.intent,
                reply_text=reply.text,
                constraints=said.constraints,
                facets=list(said.facets),
                latency_s=latency,
                tokens=_count_tokens(system, reply.text),
                unsupported_claims=claims,
                ungrounded=ungrounded,
            )
        )
        if shopper.succeeded(shown, k):
            break
    return dialogue


# --- the run --------------------------------------------------------------------------------
def run(cfg: ConversationConfig) -> dict[str, Any]:
    """Run every system over the sampled users and write the reports; returns the JSON report."""
    from assistant.grounding import CatalogMatcher, GroundingChecker
    from retrieval.data.registry import load_dataset

    if cfg.max_turns < 1:
        raise SystemExit(f"--max-turns must be >= 1, got {cfg.max_turns}")
    t_start = time.perf_counter()
    dataset = cfg.data if isinstance(cfg.data, Dataset) else load_dataset(cfg.data)
    visible, rows = evaluation_split(dataset)
    users = sample_users(rows, cfg.users, cfg.seed)
    catalog = dataset.catalog
    rewriter = None
    if cfg.sim_llm:
        from assistant.shopping_assistant import resolve_chat_model

        rewriter = llm_rewriter(resolve_chat_model(cfg.sim_llm, threads=cfg.threads, cache_dir=cfg.cache_dir))
    sim = Simulator(
        catalog,
        seed=cfg.seed,
        language=cfg.sim_language,  # type: ignore[arg-type]
        rewriter=rewriter,
        shopper=cfg.shopper,  # type: ignore[arg-type]
        k=cfg.k,
    )
    checker = GroundingChecker(catalog, CatalogMatcher(catalog))
    run_id = f"{int(time.time())}-{os.getpid()}"
    sessions = tempfile.TemporaryDirectory(prefix="conversation-sessions-")  # this run's, removed at the end
    t_build = time.perf_counter()
    systems = build_systems(cfg, visible, Path(sessions.name))
    _profiles_first(systems, users)
    build_s = time.perf_counter() - t_build
    dialogues: dict[str, list[Dialogue]] = {s.name: [] for s in systems}
    t_dialogues = t_checkpoint = time.perf_counter()
    bar = tqdm(users, desc=f"conversations {dataset.name}", disable=not cfg.show_progress, file=sys.stderr)
    for user_id, history, target_id in bar:
        for s in systems:
            shopper = sim.shopper(user_id, history, target_id)  # same seed for every system
            dialogues[s.name].append(
                run_dialogue(
                    s,
                    shopper,
                    user_id,
                    history,
                    target_id,
                    max_turns=cfg.max_turns,
                    k=cfg.k,
                    checker=checker,
                    session_id=f"conv-{run_id}-{slug(s.name)}-{cfg.seed}-{user_id}",
                )
            )
        bar.set_postfix(
            {n: f"{sum(first_hit(d, cfg.k) is not None for d in ds)}" for n, ds in dialogues.items()}
        )
        done = len(dialogues[systems[0].name]) if systems else 0
        if cfg.checkpoint_s and time.perf_counter() - t_checkpoint >= cfg.checkpoint_s and done < len(users):
            # A valid report over the users finished so far: a long run cut short keeps it.
            elapsed = time.perf_counter() - t_dialogues
            _finish(cfg, dataset, done, len(users), sim, systems, dialogues, build_s, elapsed, t_start)
            t_checkpoint = time.perf_counter()
    dialogue_s = time.perf_counter() - t_dialogues
    for s in systems:
        if s.assistant is not None:
            s.assistant.close()
    sessions.cleanup()
    return _finish(
        cfg, dataset, len(users), len(users), sim, systems, dialogues, build_s, dialogue_s, t_start
    )


def _finish(
    cfg: ConversationConfig,
    dataset: Dataset,
    done: int,
    planned: int,
    sim: Simulator,
    systems: Sequence[SystemUnderTest],
    dialogues: dict[str, list[Dialogue]],
    build_s: float,
    dialogue_s: float,
    t_start: float,
) -> dict[str, Any]:
    """Summarise the dialogues so far and write the reports (``done`` < ``planned``: a checkpoint)."""
    catalog = dataset.catalog
    results = {s.name: summarize(dialogues[s.name], catalog, cfg.k, cfg.max_turns) for s in systems}
    for s in systems:
        results[s.name]["tokens_unit"] = s.token_unit
        results[s.name]["llm"] = s.llm
        results[s.name]["does"] = SYSTEM_PROTOCOL[s.name]
        results[s.name].update(_confidence(dialogues[s.name], cfg))
    report = {
        "bench": "conversation",
        "protocol": {
            "dataset": dataset.name,
            "data": dataset.source or dataset.name if isinstance(cfg.data, Dataset) else str(cfg.data),
            "split": "leave-one-out; systems see train+valid; target = test item",
            "users": done,
            "users_planned": planned,
            "partial": done < planned,
            "seed": cfg.seed,
            "max_turns": cfg.max_turns,
            "k": cfg.k,
            "success": f"target id among the top {cfg.k} items shown in a turn",
            "llm": cfg.llm or "none",
            "baseline_llm": cfg.llm if cfg.baseline_llm == "same" and cfg.llm else "none",
            "adapter": cfg.adapter,
            "embedder": cfg.embedder,
            "scorer": cfg.scorer,
            "ranker_weights": ranker_weights(cfg.ranker),
            "shopper": cfg.shopper,
            "simulator": {
                "mode": sim.mode,
                "shopper": cfg.shopper,
                "language": cfg.sim_language,
                "sim_llm": cfg.sim_llm,
                "does": SHOPPER_PROTOCOL[cfg.shopper],
                "max_facets_per_turn": sim.max_facets_per_turn,
                "facets": "category level, price band, brand / not-brand-from-history, release decade",
                "min_df": sim.vocab.min_df if sim.vocab is not None else None,
                "ground_truth": "constraints the simulator stated (not the assistant's parse)",
            },
            "systems": {s.name: SYSTEM_PROTOCOL[s.name] for s in systems},
            "statistics": f"paired bootstrap over shoppers ({cfg.n_boot} resamples, seed {cfg.seed}, 95% "
            "percentile CI) of the difference in hit@k and AT@k; McNemar's test on per-shopper hits (exact "
            "binomial when b + c < 25, else chi-square with continuity correction)",
            "at@k": f"mean turn of first hit; failure = max_turns+1 = {cfg.max_turns + 1}",
            "command": cfg.command,
        },
        "systems": results,
        "comparisons": _comparisons(dialogues, cfg),
        "timing": {"build_s": build_s, "dialogues_s": dialogue_s, "total_s": time.perf_counter() - t_start},
        "environment": environment(),
    }
    write_reports(report, dialogues, cfg, catalog)
    return report


# --- statistics -----------------------------------------------------------------------------
def _outcomes(ds: Sequence[Dialogue], cfg: ConversationConfig) -> tuple[list[bool], list[int]]:
    """Per shopper: hit within max_turns, and the turn of the first hit (max_turns + 1 on a miss)."""
    firsts = [first_hit(d, cfg.k, cfg.max_turns) for d in ds]
    return [f is not None for f in firsts], [f or cfg.max_turns + 1 for f in firsts]


def _confidence(ds: Sequence[Dialogue], cfg: ConversationConfig) -> dict[str, Any]:
    """95% bootstrap CIs of one system's hit@k, AT@k and hit@k after each turn."""
    hits, turns = _outcomes(ds, cfg)
    k = cfg.k
    by_turn = [
        bootstrap_mean([h and t <= n for h, t in zip(hits, turns, strict=True)], cfg.n_boot, cfg.seed)
        for n in range(1, cfg.max_turns + 1)
    ]
    return {
        f"hit@{k}_ci": list(bootstrap_mean(hits, cfg.n_boot, cfg.seed)[1:]),
        f"at@{k}_ci": list(bootstrap_mean(turns, cfg.n_boot, cfg.seed)[1:]),
        f"hit@{k}_by_turn_ci": [[lo, hi] for _, lo, hi in by_turn],
    }


def _comparisons(dialogues: dict[str, list[Dialogue]], cfg: ConversationConfig) -> list[dict[str, Any]]:
    """``full`` (and ``full+adapter``) minus every other system, paired over the same shoppers."""
    pairs = [("full", b) for b in dialogues if b != "full"] if "full" in dialogues else []
    if "full+adapter" in dialogues:
        pairs = [("full+adapter", b) for b in dialogues if b not in ("full+adapter",)] + [
            p for p in pairs if p[1] != "full+adapter"
        ]
    out = []
    for a, b in pairs:
        hits_a, turns_a = _outcomes(dialogues[a], cfg)
        hits_b, turns_b = _outcomes(dialogues[b], cfg)
        out.append(
            {
                "a": a,
                "b": b,
                f"hit@{cfg.k}": paired_bootstrap(hits_a, hits_b, cfg.n_boot, cfg.seed).to_dict(),
                f"at@{cfg.k}": paired_bootstrap(turns_a, turns_b, cfg.n_boot, cfg.seed).to_dict(),
                "mcnemar": mcnemar(hits_a, hits_b).to_dict(),
            }
        )
    return out


# --- reports --------------------------------------------------------------------------------
def _plot(path: Path, results: dict[str, dict[str, Any]], k: int, max_turns: int, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench._report import save_figure

    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    turns = list(range(1, max_turns + 1))
    for name, r in results.items():
        (line,) = ax.plot(turns, r[f"hit@{k}_by_turn"], marker="o", label=name)
        ci = r.get(f"hit@{k}_by_turn_ci")
        if ci:
            ax.fill_between(turns, [c[0] for c in ci], [c[1] for c in ci], color=line.get_color(), alpha=0.12)
    ax.set_xlabel("turn")
    ax.set_ylabel(f"Hit@{k} (cumulative, 95% CI)")
    ax.set_xticks(turns)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def _transcript_md(d: Dialogue, catalog: Any, k: int) -> str:
    target = catalog[d.target_id]
    hit = first_hit(d, k)
    lines = [
        f"**user {d.user_id}**, target `{d.target_id}` ({target.title}; {' > '.join(target.categories)}"
        + (f"; {target.brand}" if target.brand else "")
        + (f"; ${target.price:g}" if target.price is not None else "")
        + f") - {'hit at turn ' + str(hit) if hit else 'miss'}",
        "",
    ]
    for t in d.turns:
        shown = ", ".join(
            ("**" if i == d.target_id else "")
            + f"{catalog[i].title[:40]}"
            + ("**" if i == d.target_id else "")
            if i in catalog
            else f"?{i}"
            for i in t.shown[:k]
        )
        lines.append(f"{t.turn}. shopper: {t.user_text}  ")
        reply = t.reply_text.replace("\n", " ")
        lines.append(f"   assistant ({t.intent}): {reply[:240]}{'…' if len(reply) > 240 else ''}  ")
        lines.append(f"   shown: {shown or '(nothing)'}")
    return "\n".join(lines)


def report_name(dataset: str, cfg: ConversationConfig) -> str:
    """``conversation-<dataset>`` for the headline (describe, English); other modes get a suffix."""
    suffix = ("" if cfg.shopper == "describe" else f"-{cfg.shopper}") + (
        "" if cfg.sim_language == "en" else f"-{cfg.sim_language}"
    )
    return f"conversation-{slug(dataset)}{suffix}"


def _ci(pair: Sequence[float] | None) -> str:
    return f"[{pair[0]:.3f}, {pair[1]:.3f}]" if pair else "–"


def _comparison_rows(report: dict[str, Any], k: int) -> list[dict[str, Any]]:
    rows = []
    for c in report.get("comparisons", []):
        h, t, m = c[f"hit@{k}"], c[f"at@{k}"], c["mcnemar"]
        rows.append(
            {
                "comparison": f"{c['a']} − {c['b']}",
                f"Δhit@{k}": f"{h['diff']:+.3f} {_ci((h['lo'], h['hi']))}",
                f"ΔAT@{k}": f"{t['diff']:+.2f} [{t['lo']:+.2f}, {t['hi']:+.2f}]",
                "McNemar b / c": f"{m['b']} / {m['c']}",
                "p": f"{m['p_value']:.3g} ({m['method']})",
            }
        )
    return rows


def _protocol_md(report: dict[str, Any], cfg: ConversationConfig) -> list[str]:
    p = report["protocol"]
    k, mt = cfg.k, cfg.max_turns
    sim = p["simulator"]
    results = report["systems"]
    return [
        *([f"- command: `{p['command']}`"] if p.get("command") else []),
        f"- split: {p['split']}; users: {p['users']} (seed {p['seed']}); k: {k}; max turns: {mt}; "
        f"success: {p['success']}",
        *(
            [
                f"- **partial report**: {p['users']} of {p['users_planned']} users done (checkpoint of a longer run)"
            ]
            if p.get("partial")
            else []
        ),
        f"- shopper: **{sim['shopper']}** ({sim['language']}, {sim['mode']}"
        + (f", min document frequency {sim['min_df']}" if sim.get("min_df") else "")
        + f"): {sim['does']}; never names the target (leak-checked)",
        f"- LLM: {p['llm']} (retrieval-only baseline: {p['baseline_llm']}); adapter: {p['adapter'] or '-'}; "
        f"embedder {p['embedder']}; CF scorer {p['scorer']}",
        "- ranker weights: "
        + ", ".join(
            f"{n} {v}" for n, v in (p.get("ranker_weights") or {}).items() if isinstance(v, int | float)
        ),
        "- systems (same shoppers, same seeds):",
        *(f"  - `{name}`: {does}" for name, does in p["systems"].items()),
        f"- AT@{k}: {p['at@k']}; constraint satisfaction is checked against {sim['ground_truth']}",
        f"- statistics: {p['statistics']}",
        "- tokens per turn: " + "; ".join(f"{s}: {r['tokens_unit']}" for s, r in results.items()),
        f"- wall time: build {report['timing']['build_s']:.0f} s, dialogues {report['timing']['dialogues_s']:.0f} s "
        f"on {report['environment'].get('cpu_count')} CPUs (load {report['environment'].get('load_average_1m_5m_15m')})",
    ]


def write_reports(
    report: dict[str, Any], dialogues: dict[str, list[Dialogue]], cfg: ConversationConfig, catalog: Any
) -> dict[str, Path]:
    out = Path(cfg.out)
    p = report["protocol"]
    base = out / report_name(p["dataset"], cfg)
    k, mt = cfg.k, cfg.max_turns
    results = report["systems"]
    cols = [c.replace("@5", f"@{k}") for c in TABLE_COLUMNS]
    rows = [
        {
            "system": s,
            **{c: r.get(c) for c in cols[1:]},
            f"hit@{k}": f"{r[f'hit@{k}']:.3f} {_ci(r.get(f'hit@{k}_ci'))}",
            f"at@{k}": f"{r[f'at@{k}']:.2f} {_ci(r.get(f'at@{k}_ci'))}",
        }
        for s, r in results.items()
    ]
    by_turn = [
        {"system": s, **{f"t{t}": r[f"hit@{k}_by_turn"][t - 1] for t in range(1, mt + 1)}}
        for s, r in results.items()
    ]
    comp = _comparison_rows(report, k)
    md = [
        f"# Conversational benchmark: {p['dataset']} ({p['simulator']['shopper']} shoppers)",
        "",
        "## Protocol",
        "",
        *_protocol_md(report, cfg),
        "",
        "## Results",
        "",
        f"Per system, with 95% bootstrap CIs over the {p['users']} shoppers:",
        "",
        markdown_table(rows, cols, digits=3),
        "",
        f"Paired differences ({p['users']} shoppers, {p['simulator']['shopper']} mode; ΔAT < 0 = fewer turns):",
        "",
        markdown_table(comp, list(comp[0]), digits=3) if comp else "(no `full` system in this run)",
        "",
        f"Hit@{k} by turn (cumulative):",
        "",
        markdown_table(by_turn, ["system", *[f"t{t}" for t in range(1, mt + 1)]], digits=3),
        "",
        f"![Hit@{k} by turn]({base.name}.png)",
        "",
        f"## Sample transcripts ({cfg.transcripts_in_md} shoppers per system, seeded sample, the same shoppers "
        "for every system)",
        "",
    ]
    n_users = len(next(iter(dialogues.values()), []))
    picked = sorted(random.Random(cfg.seed).sample(range(n_users), min(cfg.transcripts_in_md, n_users)))
    for name, ds in dialogues.items():
        md += [f"### {name}", ""]
        for i in picked:
            md += [_transcript_md(ds[i], catalog, k), ""]
    paths = {
        "json": write_json(base.with_suffix(".json"), report),
        "md": write_text(base.with_suffix(".md"), "\n".join(md) + "\n"),
        "transcripts": write_text(
            out / f"{base.name}-transcripts.jsonl",
            "".join(
                json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for s in dialogues.values() for d in s
            ),
        ),
    }
    title = f"{p['dataset']}: Hit@{k} by turn ({p['users']} {p['simulator']['shopper']} shoppers, seed {p['seed']})"
    _plot(base.with_suffix(".png"), results, k, mt, title)
    paths["png"] = base.with_suffix(".png")
    return paths


# --- CLI ------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> ConversationConfig:
    ap = argparse.ArgumentParser(prog="python -m bench.conversation", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="dataset name or folder (quick: movielens-100k)")
    ap.add_argument("--users", type=int, default=None, help="test users to simulate (default 300; quick 30)")
    ap.add_argument("--max-turns", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=5, help="success = target in the top k shown")
    ap.add_argument(
        "--llm",
        default=None,
        help="model name/path or 'none' (default qwen2.5-coder-0.5b; quick: smollm2-135m)",
    )
    ap.add_argument(
        "--baseline-llm",
        choices=("none", "same"),
        default="none",
        help="retrieval-only baseline replies: templates (none) or the same --llm",
    )
    ap.add_argument("--adapter", default=None, help="LoRA adapter dir: adds the full+adapter system")
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--scorer", default="auto", help="CF scorer of the full system and the cf-only baseline")
    ap.add_argument(
        "--understand-llm",
        choices=("on", "off"),
        default="off",
        help="the understanding LLM (constrained JSON)",
    )
    ap.add_argument("--sim-llm", default=None, help="LLM that rephrases the simulator's template utterances")
    ap.add_argument("--sim-language", choices=("en", "zh"), default="en")
    ap.add_argument(
        "--shopper",
        choices=SHOPPER_MODES,
        default="describe",
        help="describe (default, the headline): everyday words, no brand/price band unless asked; "
        "free: the describe plan in free chat words; facets: exact leaf category, price band, brand",
    )
    ap.add_argument(
        "--transcripts", type=int, default=10, help="sampled dialogues per system in the markdown"
    )
    ap.add_argument(
        "--systems", default=",".join(SYSTEMS), help="comma-separated subset of " + ",".join(SYSTEMS)
    )
    ap.add_argument(
        "--ranker",
        default="",
        help="ranker weights to change, e.g. 'words=1,popularity=0.3' (tune on a dev seed, not seed 0)",
    )
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default="reports")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="30 users, movielens-100k, tiny LLM (smollm2-135m) unless --llm is given: <= 5 min on 2 cores",
    )
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument(
        "--checkpoint-s",
        type=float,
        default=300.0,
        help="rewrite the reports over the users done so far every this many seconds (0: only at the end)",
    )
    a = ap.parse_args(argv)
    llm = a.llm if a.llm is not None else (QUICK_LLM if a.quick else "qwen2.5-coder-0.5b")
    return ConversationConfig(
        data=a.data or QUICK_DATA,
        users=a.users or (QUICK_USERS if a.quick else 300),
        max_turns=a.max_turns,
        seed=a.seed,
        k=a.k,
        llm=None if llm.lower() == "none" else llm,
        baseline_llm=a.baseline_llm,
        adapter=a.adapter,
        embedder=a.embedder,
        scorer=a.scorer,
        understand_llm=a.understand_llm == "on",
        sim_llm=a.sim_llm,
        sim_language=a.sim_language,
        shopper=a.shopper,
        transcripts_in_md=a.transcripts,
        systems=tuple(s.strip() for s in a.systems.split(",") if s.strip()),
        cache_dir=a.cache_dir,
        threads=a.threads,
        out=a.out,
        show_progress=not a.no_progress,
        checkpoint_s=a.checkpoint_s or None,
        ranker=parse_ranker_weights(a.ranker),
    )


def main(argv: Sequence[str] | None = None) -> int:
    configure()
    cfg = parse_args(argv)
    args = sys.argv[1:] if argv is None else list(argv)
    cfg.command = " ".join(["python -m bench.conversation", *(shlex.quote(a) for a in args)])
    report = run(cfg)
    cols = (
        f"hit@{cfg.k}",
        f"at@{cfg.k}",
        "constraint_satisfaction",
        "out_of_catalogue_rate",
        "latency_p50_s",
    )
    for name, r in report["systems"].items():
        print(f"{name:>18}: " + "  ".join(f"{c}={fmt(r.get(c), 3)}" for c in cols))
    for c in report["comparisons"]:
        h, m = c[f"hit@{cfg.k}"], c["mcnemar"]
        print(
            f"{c['a']} - {c['b']}: hit@{cfg.k} {h['diff']:+.3f} [{h['lo']:+.3f}, {h['hi']:+.3f}], "
            f"McNemar p={m['p_value']:.3g}"
        )
    print(f"reports in {cfg.out}/{report_name(report['protocol']['dataset'], cfg)}.*")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
