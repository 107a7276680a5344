"""Real seekers: replay ReDial dialogues (crowd workers, CC BY 4.0) on the MovieLens-100K demo.

    python -m bench.redial --data ../shared/external/redial-dev [--users N] [--llm none|NAME] [--out reports]
    python -m bench.redial --data ../shared/external/redial-dev --quick  # 20 dialogues

Protocol:

* Movies: every ``movieMentions`` name ("Titanic (1997)") is matched to the ML-100K catalog by
  normalised title and year +-1 (``match_title``); an unmatched movie is invisible to every system.
* Targets of a dialogue: the matched movies the recommender suggested and the seeker liked, read
  from the seeker's own answers (``initiatorQuestions``: ``suggested == 1 and liked == 1``), or the
  recommender's answers about the seeker (``respondentQuestions``) when the seeker's form is empty.
* Replay: only the seeker's messages, one by one, ``@<id>`` replaced by the movie's name, as a new
  shopper (no user id) in a fresh session. The recommender's messages are never shown to a system.
* Turn ``t`` is scored when ``R_t`` = targets minus every movie the seeker mentioned in messages
  ``1..t`` (this one included) is non-empty. Recall@5_t = |top5_t & R_t| / |R_t|; NDCG@5_t with
  binary gains and the ideal DCG of min(|R_t|, 5) hits. A dialogue's Recall@5 / NDCG@5 is the mean
  over its scored turns; the headline is the mean over dialogues (each dialogue weighs the same).
  Hit@5 (dialogue level, used for McNemar) = some scored turn shows an element of ``R_t`` in its top 5.
* Systems, on the same dialogues: ``full`` (``ShoppingAssistant.from_dataset("movielens-100k")``,
  template replies unless ``--llm``), ``popularity`` (most-rated ML-100K movies, the seeker's mentioned
  movies removed) and ``mentioned-item-to-item`` (sum of co-occurrence cosines, on binary ML-100K
  ratings, from the seeker's matched mentioned movies so far; popularity order until one is mentioned
  and for ties). ML-100K's duplicate entries (same title and year) count as one movie.
* Paired differences ``full - baseline`` with 95% bootstrap CIs over dialogues and McNemar on Hit@5.

Published ReDial numbers rank ~6.9k movies with a different protocol and are not comparable.
Writes ``redial-movielens-100k.json`` / ``.md`` / ``.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import re
import shlex
import sys
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
from tqdm.auto import tqdm

from assistant.ui.render import on_screen
from bench._report import (
    bar_plot,
    environment,
    fmt,
    markdown_table,
    parse_ranker_weights,
    ranker_weights,
    write_json,
    write_text,
)
from bench.stats import mcnemar, paired_bootstrap
from llm.runtime import configure

DATASET = "movielens-100k"
QUICK_DIALOGUES = 20
SYSTEMS = ("full", "popularity", "mentioned-item-to-item")
# The same replay of `full`, scoring only the pages it sent: a small-talk turn shows nothing new and
# scores 0 there, though the shopper still has the last page in front of them (see ``on_screen``).
NEW_PAGES = "full, new pages only"
REPORTED = ("full", NEW_PAGES, *SYSTEMS[1:])
YEAR_TOLERANCE = 1

# --- title matching -------------------------------------------------------------------------
_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")
_PAREN = re.compile(r"\(([^()]*)\)")
# ML-100K writes "Shining, The" / "Misérables, Les"; ReDial writes "The Shining".
_TRAILING_ARTICLE = re.compile(r"^(.*),\s*(the|a|an|les|la|le|l'|il|el|das|der|die|los|las)$")
_LEADING_ARTICLE = re.compile(r"^(the|a|an) ")


def split_year(name: str) -> tuple[str, int | None]:
    """``"Titanic  (1997)"`` -> ``("Titanic", 1997)``; no trailing ``(yyyy)`` -> year None."""
    name = " ".join(unquote(name).split())
    m = _YEAR.search(name)
    if m:
        return name[: m.start()].strip(), int(m.group(1))
    return name, None


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower().strip()
    m = _TRAILING_ARTICLE.match(text)
    if m:
        text = f"{m.group(2)} {m.group(1)}"
    text = text.replace("&", " and ").replace("'", "").replace("\u2019", "")
    text = re.sub(r"[^0-9a-z]+", " ", text).strip()
    return _LEADING_ARTICLE.sub("", text)


def title_keys(title: str) -> set[str]:
    """Normalised keys of a title without its year: the title without parentheses, and each
    parenthesised alternate title ("Seven (Se7en)" -> {"seven", "se7en"})."""
    keys = {_normalise(_PAREN.sub(" ", title))} | {_normalise(p) for p in _PAREN.findall(title)}
    return {k for k in keys if k}


@dataclasses.dataclass(frozen=True)
class TitleIndex:
    """Catalog titles by normalised key; ``canonical`` folds duplicate entries (same title and year)."""

    by_key: Mapping[str, tuple[tuple[str, int | None], ...]]
    canonical: Mapping[str, str]


def build_title_index(titles: Iterable[tuple[str, str]]) -> TitleIndex:
    """``titles``: ``(item_id, "Title (yyyy)")`` in preference order (the first of duplicates wins)."""
    first: dict[tuple[str, int | None], str] = {}
    canonical: dict[str, str] = {}
    by_key: dict[str, list[tuple[str, int | None]]] = {}
    for item_id, full in titles:
        title, year = split_year(full)
        ident = (_normalise(title), year)
        canonical[item_id] = first.setdefault(ident, item_id)
        if canonical[item_id] != item_id:
            continue
        for key in title_keys(title):
            by_key.setdefault(key, []).append((item_id, year))
    return TitleIndex({k: tuple(v) for k, v in by_key.items()}, canonical)


def match_title(name: str, index: TitleIndex) -> str | None:
    """The catalog id of the movie ``name`` denotes, or None.

    Same normalised title (case, punctuation, accents, "&"/"and", leading or trailing article,
    parenthesised alternate titles) and release year within +-1. With a year, the nearest year
    wins; a tie between different movies, or no year and several candidate movies, is ambiguous
    and matches nothing.
    """
    title, year = split_year(name)
    cands = {c for key in title_keys(title) for c in index.by_key.get(key, ())}
    if year is None:
        return next(iter(cands))[0] if len(cands) == 1 else None
    near = [(abs(y - year) if y is not None else 0, i) for i, y in cands]
    near = [(d, i) for d, i in near if d <= YEAR_TOLERANCE]
    if not near:
        return None
    best = min(d for d, _ in near)
    ids = sorted(i for d, i in near if d == best)
    return ids[0] if len(ids) == 1 else None


# --- dialogues ------------------------------------------------------------------------------
@dataclasses.dataclass
class SeekerTurn:
    text: str  # the seeker's message, "@<id>" replaced by the movie's name
    mentioned: list[str]  # matched movies the seeker mentioned in this or an earlier message
    relevant: list[str]  # targets not yet mentioned by the seeker (empty: turn not scored)


@dataclasses.dataclass
class Case:
    conversation_id: str
    targets: list[str]
    turns: list[SeekerTurn]


def load_dialogues(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    path = Path(folder) / "dialogues.jsonl"
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _questions(dialogue: Mapping[str, Any]) -> Mapping[str, Any]:
    """The seeker's own answers; the recommender's answers about the seeker when those are empty."""
    for key in ("initiatorQuestions", "respondentQuestions"):
        q = dialogue.get(key)
        if isinstance(q, dict) and q:
            return q
    return {}


def prepare_case(dialogue: Mapping[str, Any], index: TitleIndex) -> Case | None:
    """The replayable case of one dialogue, or None when it has no matched suggested-and-liked movie."""
    names = {mid: " ".join(unquote(n).split()) for mid, n in (dialogue.get("movieMentions") or {}).items()}
    matched = {mid: match_title(n, index) for mid, n in names.items()}
    targets = sorted(
        {
            matched[mid]
            for mid, a in _questions(dialogue).items()
            if a.get("suggested") == 1 and a.get("liked") == 1 and matched.get(mid)
        }
    )
    if not targets:
        return None
    seeker = dialogue["initiatorWorkerId"]
    mentioned: list[str] = []
    turns = []
    for msg in dialogue["messages"]:
        if msg["senderWorkerId"] != seeker:
            continue
        ids = re.findall(r"@(\d+)", msg["text"])
        text = re.sub(r"@(\d+)", lambda m: names.get(m.group(1), ""), msg["text"])
        text = " ".join(text.split())
        if not text:
            continue
        for mid in ids:
            if matched.get(mid) and matched[mid] not in mentioned:
                mentioned.append(matched[mid])  # type: ignore[arg-type]
        relevant = [t for t in targets if t not in mentioned]
        turns.append(SeekerTurn(text, list(mentioned), relevant))
    return Case(str(dialogue["conversationId"]), targets, turns)


# --- metrics --------------------------------------------------------------------------------
def recall_at(shown: Sequence[str], relevant: Sequence[str], k: int) -> float:
    return len(set(shown[:k]) & set(relevant)) / len(relevant)


def ndcg_at(shown: Sequence[str], relevant: Sequence[str], k: int) -> float:
    rel = set(relevant)
    dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(shown[:k]) if i in rel)
    ideal = sum(1 / math.log2(r + 2) for r in range(min(len(rel), k)))
    return dcg / ideal


def score_dialogue(case: Case, shown: Sequence[Sequence[str]], k: int) -> dict[str, Any]:
    """Mean Recall@k / NDCG@k over the scored turns, and whether any scored turn hit."""
    rec, ndcg = [], []
    for turn, items in zip(case.turns, shown, strict=True):
        if turn.relevant:
            rec.append(recall_at(items, turn.relevant, k))
            ndcg.append(ndcg_at(items, turn.relevant, k))
    return {
        "recall": float(np.mean(rec)),
        "ndcg": float(np.mean(ndcg)),
        "hit": any(r > 0 for r in rec),
        "turn_recalls": rec,
    }


# --- systems --------------------------------------------------------------------------------
Step = Callable[[str, Sequence[str]], list[str]]  # (seeker message, mentioned so far) -> ids shown


def popularity_order(interactions: Any, catalog_ids: Sequence[str]) -> list[str]:
    """Catalog ids by number of ratings (descending), ties by catalog order."""
    counts = interactions.frame["item_id"].value_counts()
    return sorted(catalog_ids, key=lambda i: -int(counts.get(i, 0)))


def cooccurrence_cosine(
    interactions: Any, catalog_ids: Sequence[str], canonical: Mapping[str, str] | None = None
) -> np.ndarray:
    """Item x item cosine of the binary user-item matrix (who rated what), zero diagonal; rows and
    columns follow ``catalog_ids``; ``canonical`` folds duplicate ids into the listed one."""
    pos = {i: n for n, i in enumerate(catalog_ids)}
    frame = interactions.frame[["user_id", "item_id"]].copy()
    if canonical:
        frame["item_id"] = frame["item_id"].map(lambda i: canonical.get(i, i))
    frame = frame[frame["item_id"].isin(pos)].drop_duplicates()
    users = {u: n for n, u in enumerate(frame["user_id"].unique())}
    x = np.zeros((len(users), len(catalog_ids)), dtype=np.float32)
    x[frame["user_id"].map(users).to_numpy(), frame["item_id"].map(pos).to_numpy()] = 1.0
    co = x.T @ x
    norm = np.sqrt(np.diag(co)).copy()
    norm[norm == 0] = 1.0
    sim = co / norm[:, None] / norm[None, :]
    np.fill_diagonal(sim, 0.0)
    return sim


def popularity_step(order: Sequence[str], k: int) -> Step:
    def step(_text: str, mentioned: Sequence[str]) -> list[str]:
        seen = set(mentioned)
        return [i for i in order if i not in seen][:k]

    return step


def item_to_item_step(sim: np.ndarray, order: Sequence[str], k: int) -> Step:
    """``sim``'s rows and columns follow ``order`` (popularity), so a stable sort breaks ties by it."""
    row = {i: n for n, i in enumerate(order)}
    fallback = popularity_step(order, k)

    def step(text: str, mentioned: Sequence[str]) -> list[str]:
        rows = [row[m] for m in mentioned if m in row]
        if not rows:
            return fallback(text, mentioned)
        scores = sim[rows].sum(axis=0)
        scores[rows] = -np.inf
        return [order[b] for b in np.argsort(-scores, kind="stable")[:k]]

    return step


def assistant_step(
    bot: Any, session_id: str, canonical: Mapping[str, str], pages: list[list[str]] | None = None
) -> Step:
    """The assistant as a new shopper in a fresh session; duplicate catalog entries folded.

    The step returns what is on screen (``on_screen``); ``pages`` collects the pages it sent.
    """
    screen: list[str] = []

    def step(text: str, _mentioned: Sequence[str]) -> list[str]:
        nonlocal screen
        reply = bot.chat(text, session_id=session_id)
        page = list(dict.fromkeys(canonical.get(it.item_id, it.item_id) for it in reply.items))
        if pages is not None:
            pages.append(page)
        screen = on_screen(screen, page, reply.intent)
        return screen

    return step


# --- the run --------------------------------------------------------------------------------
@dataclasses.dataclass
class RedialConfig:
    data: str = "../shared/external/redial-dev"
    users: int | None = None  # dialogues to replay (seeded sample of the eligible ones); None: all
    llm: str | None = None
    seed: int = 0
    k: int = 5
    out: str = "reports"
    cache_dir: str | None = None
    threads: int | None = None
    transcripts_in_md: int = 10
    show_progress: bool = True
    command: str | None = None
    ranker: dict[str, float] = dataclasses.field(
        default_factory=dict
    )  # ranker weights changed from the defaults

    def __post_init__(self) -> None:
        if self.users is not None and self.users < 1:
            raise ValueError(f"--users must be positive, got {self.users}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")


def select_cases(
    dialogues: Sequence[Mapping[str, Any]], index: TitleIndex, n: int | None, seed: int
) -> list[Case]:
    """Eligible cases (a matched target and a scored turn), a seeded sample of ``n`` in file order."""
    cases = [c for c in (prepare_case(d, index) for d in dialogues) if c and any(t.relevant for t in c.turns)]
    if n is not None and n < len(cases):
        keep = sorted(random.Random(seed).sample(range(len(cases)), n))
        cases = [cases[i] for i in keep]
    return cases


def run(cfg: RedialConfig) -> dict[str, Any]:
    from assistant.shopping_assistant import ShoppingAssistant
    from retrieval.data.registry import load_dataset
    from retrieval.ranker import RankerWeights

    t0 = time.perf_counter()
    folder = Path(cfg.data)
    if not (folder / "dialogues.jsonl").is_file():
        raise SystemExit(f"no ReDial dialogues at {folder}/dialogues.jsonl")
    dataset = load_dataset(DATASET)
    catalog = dataset.catalog
    order_all = popularity_order(dataset.interactions, catalog.ids)
    index = build_title_index((i, catalog[i].title) for i in order_all)  # most-rated duplicate wins
    order = [i for i in order_all if index.canonical[i] == i]
    dialogues = load_dialogues(folder)
    cases = select_cases(dialogues, index, cfg.users, cfg.seed)
    if not cases:
        raise SystemExit(f"no dialogue in {folder} has a matched suggested-and-liked movie")
    mention_names = {n for d in dialogues for n in (d.get("movieMentions") or {}).values()}
    matched_names = sum(match_title(n, index) is not None for n in mention_names)

    bot = ShoppingAssistant.from_dataset(
        dataset,
        llm=cfg.llm,
        cache_dir=cfg.cache_dir,
        threads=cfg.threads,
        show_progress=cfg.show_progress,
        ranker_weights=RankerWeights(**cfg.ranker) if cfg.ranker else None,
    )
    sim = cooccurrence_cosine(dataset.interactions, order, index.canonical)
    nonce = uuid.uuid4().hex[:8]  # sessions persist on disk: a re-run must not resume an old one
    shown: dict[str, list[list[list[str]]]] = {s: [] for s in REPORTED}
    makers: dict[str, Callable[[Case], Step]] = {
        "full": lambda c: assistant_step(
            bot, f"redial-{nonce}-{c.conversation_id}", index.canonical, shown[NEW_PAGES][-1]
        ),
        "popularity": lambda c: popularity_step(order, cfg.k),
        "mentioned-item-to-item": lambda c: item_to_item_step(sim, order, cfg.k),
    }
    latency: list[float] = []
    for case in tqdm(cases, desc="redial dialogues", disable=not cfg.show_progress, file=sys.stderr):
        shown[NEW_PAGES].append([])  # filled by the `full` step
        for name in SYSTEMS:
            step = makers[name](case)
            lists = []
            for turn in case.turns:
                t = time.perf_counter()
                lists.append(step(turn.text, turn.mentioned))
                if name == "full":
                    latency.append(time.perf_counter() - t)
            shown[name].append(lists)
    bot.close()
    scores = {
        s: [score_dialogue(c, lst, cfg.k) for c, lst in zip(cases, shown[s], strict=True)] for s in REPORTED
    }
    report = _report(cfg, dialogues, cases, scores, len(mention_names), matched_names, latency, t0)
    write_reports(cfg, report, cases, shown, catalog)
    return report


def _summary(scores: Sequence[Mapping[str, Any]], k: int) -> dict[str, Any]:
    turns = [r for s in scores for r in s["turn_recalls"]]
    return {
        f"recall@{k}": float(np.mean([s["recall"] for s in scores])) if scores else float("nan"),
        f"ndcg@{k}": float(np.mean([s["ndcg"] for s in scores])) if scores else float("nan"),
        f"hit@{k}": float(np.mean([s["hit"] for s in scores])) if scores else float("nan"),
        f"turn_recall@{k}": float(np.mean(turns)) if turns else float("nan"),
        "dialogues": len(scores),
        "scored_turns": len(turns),
    }


def _report(
    cfg: RedialConfig,
    dialogues: Sequence[Any],
    cases: Sequence[Case],
    scores: Mapping[str, Sequence[Mapping[str, Any]]],
    n_names: int,
    n_matched: int,
    latency: Sequence[float],
    t0: float,
) -> dict[str, Any]:
    k = cfg.k
    comparisons = {}
    pairs = [("full", b) for b in SYSTEMS[1:]] + [(NEW_PAGES, SYSTEMS[1])]
    for system, base in pairs:
        a, b = scores[system], scores[base]
        comparisons[f"{system} - {base}"] = {
            f"recall@{k}": dataclasses.asdict(
                paired_bootstrap([s["recall"] for s in a], [s["recall"] for s in b], seed=cfg.seed)
            ),
            f"ndcg@{k}": dataclasses.asdict(
                paired_bootstrap([s["ndcg"] for s in a], [s["ndcg"] for s in b], seed=cfg.seed)
            ),
            f"mcnemar_hit@{k}": dataclasses.asdict(mcnemar([s["hit"] for s in a], [s["hit"] for s in b])),
        }
    return {
        "bench": "redial",
        "protocol": {
            "data": str(cfg.data),
            "catalog": f"{DATASET} (1,682 movies; duplicate entries folded)",
            "dialogues_in_file": len(dialogues),
            "dialogues_scored": len(cases),
            "sample": (
                "all eligible dialogues" if cfg.users is None else f"{cfg.users} eligible, seed {cfg.seed}"
            ),
            "mention_names": n_names,
            "mention_names_matched": n_matched,
            "matching": (
                "normalised title (case, punctuation, accents, articles, alternate titles) and year +-1"
            ),
            "targets": (
                "matched movies with suggested=1 and liked=1 (seeker's answers; recommender's if empty)"
            ),
            "ranker_weights": ranker_weights(cfg.ranker),
            "replay": "seeker messages only, @id -> movie name, new shopper, fresh session per dialogue",
            "screen": (
                "a turn scores the page on screen after it: small talk that sends no page leaves the last "
                f"page on screen, as the chat UI does; `{NEW_PAGES}` scores only the pages sent"
            ),
            "scored_turn": "targets not mentioned by the seeker in this or an earlier message remain",
            "metrics": (
                f"Recall@{k}/NDCG@{k}: mean over scored turns per dialogue, then mean over dialogues; "
                f"Hit@{k}: any scored turn shows a remaining target in its top {k}; "
                f"turn_recall@{k}: mean over all scored turns pooled"
            ),
            "ci": "95% paired bootstrap over dialogues (2000 resamples); McNemar exact on Hit",
            "llm": cfg.llm or "none (template replies)",
            "k": k,
            "seed": cfg.seed,
            "command": cfg.command,
        },
        "systems": {s: _summary(scores[s], k) for s in REPORTED},
        "comparisons": comparisons,
        "latency_full_p50_s": float(np.median(latency)) if latency else None,
        "timing_s": time.perf_counter() - t0,
        "environment": environment(),
    }


# --- reports --------------------------------------------------------------------------------
def _ci(d: Mapping[str, Any]) -> str:
    return f"{d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"


def _transcript(case: Case, shown: Mapping[str, Sequence[Sequence[str]]], catalog: Any, k: int) -> list[str]:
    def names(ids: Iterable[str], relevant: Sequence[str]) -> str:
        out = [(f"**{catalog[i].title[:38]}**" if i in relevant else catalog[i].title[:38]) for i in ids]
        return "; ".join(out) or "(nothing)"

    lines = [f"**dialogue {case.conversation_id}**: targets {names(case.targets, case.targets)}", ""]
    for n, turn in enumerate(case.turns):
        mark = "" if turn.relevant else " (not scored: every target already mentioned)"
        lines.append(f"{n + 1}. seeker: {turn.text}{mark}  ")
        for s in REPORTED:
            lines.append(f"   {s}: {names(shown[s][n][:k], turn.relevant)}  ")
    return [*lines, ""]


def write_reports(
    cfg: RedialConfig,
    report: Mapping[str, Any],
    cases: Sequence[Case],
    shown: Mapping[str, Sequence[Sequence[Sequence[str]]]],
    catalog: Any,
) -> dict[str, Path]:
    k = cfg.k
    p = report["protocol"]
    base = Path(cfg.out) / f"redial-{DATASET}"
    n = p["dialogues_scored"]
    cols = [f"recall@{k}", f"ndcg@{k}", f"hit@{k}", f"turn_recall@{k}", "dialogues", "scored_turns"]
    rows = [{"system": s, **r} for s, r in report["systems"].items()]
    comp = [
        {
            "comparison": name,
            f"Δ recall@{k} [95% CI]": _ci(c[f"recall@{k}"]),
            f"Δ ndcg@{k} [95% CI]": _ci(c[f"ndcg@{k}"]),
            "McNemar b / c / p": "{b} / {c} / {p_value:.3g}".format(**c[f"mcnemar_hit@{k}"]),
        }
        for name, c in report["comparisons"].items()
    ]
    sample = sorted(random.Random(cfg.seed).sample(range(len(cases)), min(cfg.transcripts_in_md, len(cases))))
    md = [
        "# ReDial seekers replayed on MovieLens-100K",
        "",
        "## Protocol",
        "",
        *([f"- command: `{p['command']}`"] if p.get("command") else []),
        f"- data: {p['data']} (ReDial test split, even conversation ids; CC BY 4.0, Li et al. NeurIPS 2018)",
        f"- catalog: {p['catalog']}; distinct movie names in these dialogues matched to it: "
        f"{p['mention_names_matched']} of {p['mention_names']} ({p['matching']})",
        f"- dialogues: {n} scored of {p['dialogues_in_file']} ({p['sample']}); targets: {p['targets']}",
        f"- replay: {p['replay']}; LLM: {p['llm']}",
        "- ranker weights: "
        + ", ".join(f"{n} {v}" for n, v in p["ranker_weights"].items() if isinstance(v, int | float)),
        f"- a turn is scored when {p['scored_turn']}; {p['screen']}",
        f"- metrics: {p['metrics']}",
        f"- differences: {p['ci']}; b = dialogues only `full` hits, c = only the baseline hits",
        f"- Hit@{k} counts any scored turn, so a system whose list changes from turn to turn gets more "
        "tries than `popularity`, whose list barely moves: read it beside the per-turn means",
        "- not comparable with published ReDial numbers (they rank ~6.9k movies with a different protocol)",
        f"- wall time {report['timing_s']:.0f} s on {report['environment'].get('cpu_count')} CPUs "
        f"(load {report['environment'].get('load_average_1m_5m_15m')}); full p50 latency "
        f"{fmt(report['latency_full_p50_s'], 3)} s per turn",
        "",
        f"## Results ({n} dialogues, k = {k}, {p['llm']})",
        "",
        markdown_table(rows, ["system", *cols], digits=3),
        "",
        f"Paired differences over the same {n} dialogues:",
        "",
        markdown_table(comp, list(comp[0]) if comp else ["comparison"], digits=3),
        "",
        f"![Recall@{k} / NDCG@{k} / Hit@{k}]({base.name}.png)",
        "",
        f"## Sample transcripts ({len(sample)} dialogues, seed {cfg.seed})",
        "",
        f"In `{base.name}-transcripts.md`, written beside this report and kept out of git: they quote "
        "the seekers' messages, which stay with the ReDial files (`../shared`, never copied into the "
        "repository). The command above regenerates them.",
    ]
    sample_md = [
        f"# ReDial sample transcripts ({len(sample)} dialogues, seed {cfg.seed}; remaining targets in bold)",
        "",
    ]
    for i in sample:
        sample_md += _transcript(cases[i], {s: shown[s][i] for s in REPORTED}, catalog, k)
    paths = {
        "json": write_json(base.with_suffix(".json"), report),
        "md": write_text(base.with_suffix(".md"), "\n".join(md) + "\n"),
        "transcripts": write_text(base.parent / f"{base.name}-transcripts.md", "\n".join(sample_md) + "\n"),
    }
    series = {s: {m: r[m] for m in cols[:3]} for s, r in report["systems"].items()}
    paths["png"] = bar_plot(
        base.with_suffix(".png"), series, cols[:3], f"ReDial seekers on ML-100K ({n} dialogues, {p['llm']})"
    )
    return paths


# --- CLI ------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> RedialConfig:
    ap = argparse.ArgumentParser(prog="python -m bench.redial", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/external/redial-dev", help="folder with dialogues.jsonl")
    ap.add_argument("--users", type=int, default=None, help="dialogues (seekers) to replay; default all")
    ap.add_argument("--llm", default="none", help="'none' (template replies, default) or a model name/path")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--out", default="reports")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_DIALOGUES} dialogues, template replies")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument(
        "--ranker",
        default="",
        help="ranker weights to change, e.g. 'popularity=0.8' (tune on the dev dialogues)",
    )
    a = ap.parse_args(argv)
    return RedialConfig(
        data=a.data,
        users=a.users if a.users is not None else (QUICK_DIALOGUES if a.quick else None),
        llm=None if a.quick or a.llm.lower() == "none" else a.llm,
        seed=a.seed,
        k=a.k,
        out=a.out,
        cache_dir=a.cache_dir,
        threads=a.threads,
        show_progress=not a.no_progress,
        ranker=parse_ranker_weights(a.ranker),
    )


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    configure()  # offline model loading and the OpenMP policy, before the assistant loads torch
    args = sys.argv[1:] if argv is None else list(argv)
    cfg.command = " ".join(["python -m bench.redial", *(shlex.quote(a) for a in args)])
    report = run(cfg)
    for name, r in report["systems"].items():
        print(f"{name:>24}: " + "  ".join(f"{m}={fmt(v, 3)}" for m, v in r.items()))
    print(f"reports in {cfg.out}/redial-{DATASET}.*")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
