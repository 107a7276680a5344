"""Real requests: the beauty and personal-care WebShop instructions as single-turn requests on Beauty.

    python -m bench.webshop --data ../shared/external/webshop --catalog ../shared/datasets/amazon-beauty-2014
    python -m bench.webshop --data ... --catalog ... --quick          # 20 requests, template replies

Protocol:

* Requests: the unique instructions of ``human_goals.json`` (crowd-written, WebShop, MIT; Yao et al.
  NeurIPS 2022) that name a product type the Beauty 2014 catalog stocks (``BEAUTY_TERMS``, a hand
  list after the catalog's leaf categories: hair care and styling tools, makeup, nails, skin care,
  bath and body, fragrance, beauty tools) and no word of ``EXCLUDE_TERMS`` (pets, printers, food...);
  matched as whole words on the lower-cased text with hyphens read as spaces. Deodorants, razors
  and oral care are personal care the catalog does not stock, so they are not selected.
* Each request is one new shopper's first message in a fresh session (no user id).
* ``answered``: at least 3 items shown. ``constraints``: the request's hard constraints, parsed by
  the bench's own rule set (``parse_hard_constraints``, not the product's parser): a price ceiling
  or floor written with a currency word or sign, a required brand ("<brand> brand", "by <brand>",
  "from <brand>") or an excluded one ("not <brand>", "no <brand>", "other than <brand>"), brands
  from the catalog's brand list that name at most 0.1% of all instructions (a brand named without
  such a cue is not a constraint: catalog brands like "buff", "mink" or "shea" are plain words, and
  "<brand> impression perfume" asks for another maker's copy of that scent); satisfied when every
  shown item (top 5) meets every one (price
  unknown fails a price bound; an item breaks "not X" when its brand field or title names X, meets
  "X brand" when either does); requests with nothing shown fail. Only requests with at least one
  checkable constraint count.
* ``judged precision@5``: 60 requests sampled with seed 0 were judged by hand item by item against
  the rubric in ``tests/fixtures/bench/webshop_judgments.json`` (items a run shows that are not in
  that file are unjudged and reported as such; precision counts a missing 5th item as not relevant).
* Systems on the same requests: ``full`` (``ShoppingAssistant.from_dataset(<catalog>)``, template
  replies), ``keyword+popularity`` (request words matched against titles: most distinct words
  first, then popularity) and ``popularity`` (the most-bought items).

Writes ``webshop-<catalog>.json`` / ``.md`` / ``.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import re
import shlex
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from bench._report import bar_plot, environment, fmt, markdown_table, slug, write_json, write_text
from bench.stats import mcnemar, paired_bootstrap
from llm.runtime import configure
from retrieval.lexical import tokenize

QUICK_REQUESTS = 20
JUDGED_REQUESTS = 60
SYSTEMS = ("full", "keyword+popularity", "popularity")
JUDGMENTS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "bench" / "webshop_judgments.json"

# Product types the Beauty 2014 catalog stocks, in the words people use for them.
BEAUTY_TERMS = (
    # hair care, styling products and tools
    "shampoo", "shampoos", "conditioner", "conditioners", "hair mask", "hair oil", "hair serum",
    "hair spray", "hairspray", "hair gel", "hair dye", "hair color", "hair colour", "henna",
    "hair extension", "hair extensions", "hairpiece", "hair topper", "hair toppers", "hair fibers",
    "wig", "wigs", "lace front",
    "hair dryer", "blow dryer", "flat iron", "curling iron", "curling wand", "hair straightener",
    "hair brush", "hairbrush", "hair comb", "hair clip", "hair clips", "claw clip", "hair tie",
    "hair ties", "scrunchie", "scrunchies", "headband", "headbands", "hair pins", "bobby pins",
    "hair rollers", "curlers", "hair cutting kit", "hair clipper", "hair clippers", "dry shampoo",
    "leave in conditioner", "leave in treatment", "pomade", "hair wax",
    "hair treatment", "hair treatments", "hair growth", "hair loss", "scalp",
    # makeup
    "makeup", "make up", "cosmetic", "cosmetics", "foundation", "concealer", "blush", "bronzer",
    "highlighter", "face primer", "makeup primer", "face powder", "setting powder", "loose powder",
    "pressed powder", "setting spray", "mascara", "eyeliner", "eye liner", "eyeshadow",
    "eye shadow", "eyebrow", "eyebrows", "brow pencil", "brow gel", "eyelashes", "eyelash",
    "lashes", "lipstick", "lipsticks", "lip gloss", "lip balm", "lip liner", "lip stain",
    "lip tint", "lip plumper", "lip care", "lip lacquer", "body paint", "color corrector",
    "makeup brush", "makeup brushes", "brush set", "makeup sponge",
    "beauty blender", "makeup remover", "makeup bag", "cosmetic bag", "makeup mirror",
    # nails
    "nail polish", "nail lacquer", "gel polish", "nail art", "nail file", "nail clipper",
    "nail clippers", "press on nails", "fake nails", "false nails", "acrylic nails", "nail tips",
    "nail dryer", "nail lamp", "cuticle", "top coat", "base coat", "manicure", "pedicure",
    # fragrance
    "perfume", "cologne", "fragrance", "eau de parfum", "eau de toilette", "body spray", "body mist",
    # skin care, bath and body
    "skin care", "skincare", "moisturizer", "moisturiser", "moisturizing cream", "face cream",
    "eye cream", "night cream", "day cream", "serum", "toner", "face wash", "facial cleanser",
    "cleanser", "facial mask", "sheet mask", "clay mask", "mud mask", "peel off mask",
    "sunscreen", "sun screen", "sunblock", "self tanner", "tanning", "body lotion", "lotion",
    "body butter", "body wash", "shower gel", "bubble bath", "bath bomb", "bath bombs",
    "bath salt", "bath salts", "body scrub", "exfoliator", "exfoliating", "face scrub",
    "hand cream", "hand soap", "bar soap", "soap", "essential oil", "essential oils",
    "anti aging", "wrinkle", "wrinkles", "dark circles", "acne", "loofah", "shower cap",
    "body brush", "body scrubber", "cleansing water", "micellar water", "face cream", "skin cream",
)
EXCLUDE_TERMS = (
    "dog", "dogs", "puppy", "cat food", "pet", "pets", "printer", "cartridge", "laptop",
    "keyboard", "protein", "snack", "snacks", "cookies", "ice cream", "cream cheese", "sour cream",
    "seasoning", "sauce", "car", "truck", "phone", "iphone", "samsung", "guitar", "furniture",
    "sofa", "curtain", "curtains", "rug", "carpet", "mattress", "box spring", "bed", "chair",
    "stool", "table", "bedspread", "bedspreads",
)  # fmt: skip
_BEAUTY_RE = re.compile(
    r"\b(?:" + "|".join(re.escape(t) for t in sorted(BEAUTY_TERMS, key=len, reverse=True)) + r")\b"
)
_EXCLUDE_RE = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in EXCLUDE_TERMS) + r")\b")


def _plain(text: str) -> str:
    return " ".join(text.lower().replace("-", " ").split())


def is_beauty_request(text: str) -> bool:
    """The selection rule: a ``BEAUTY_TERMS`` product type and no ``EXCLUDE_TERMS`` word."""
    plain = _plain(text)
    return bool(_BEAUTY_RE.search(plain)) and not _EXCLUDE_RE.search(plain)


def request_hash(text: str) -> str:
    """Identifies a request without storing it: sha256 of the whitespace-normalised text, 16 hex."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Request:
    index: int  # position of its first occurrence in human_goals.json
    text: str

    @property
    def hash(self) -> str:
        return request_hash(self.text)


def select_requests(goals: Sequence[str]) -> list[Request]:
    """Unique selected instructions, in file order."""
    seen: set[str] = set()
    out = []
    for i, text in enumerate(goals):
        key = " ".join(text.split())
        if key and key not in seen and is_beauty_request(key):
            out.append(Request(i, key))
        seen.add(key)
    return out


def load_goals(folder: str | os.PathLike[str]) -> list[str]:
    with (Path(folder) / "human_goals.json").open(encoding="utf-8") as f:
        goals = json.load(f)
    if not isinstance(goals, list) or not all(isinstance(g, str) for g in goals):
        raise SystemExit(f"{folder}/human_goals.json: expected a JSON list of strings")
    return goals


def judged_sample(requests: Sequence[Request], n: int = JUDGED_REQUESTS, seed: int = 0) -> list[Request]:
    """The requests judged by hand: ``n`` of the selected ones, seeded, in file order."""
    keep = sorted(random.Random(seed).sample(range(len(requests)), min(n, len(requests))))
    return [requests[i] for i in keep]


# --- hard constraints -----------------------------------------------------------------------
_NUM = r"(\d+(?:\.\d+)?)"
_MONEY = rf"(?:\$\s*{_NUM}|{_NUM}\s*(?:dollars?|usd|bucks)\b)"
_CEILING = re.compile(
    r"\b(?:under|below|less than|lower than|cheaper than|no more than|not more than|at most|up to|"
    rf"max(?:imum)?(?: of)?|within|budget(?: of| is)?)\s*{_MONEY}|{_MONEY}\s*(?:or less|or under|max)\b"
)
_FLOOR = re.compile(rf"\b(?<!no )(?<!not )(?:over|above|more than|at least|minimum(?: of)?)\s*{_MONEY}")
_NEGATION = re.compile(
    r"\b(?:not|no|except|other than|anything but|without|avoid)\s+(?:from\s+|by\s+|the\s+)?$"
)
_BRAND_BEFORE = re.compile(r"\b(?:brand|brand of|brand is|brand name|by|from|made by|make)\s+$")
MAX_BRAND_DF = 0.001  # a catalog brand that names more of all instructions than this is a common word


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower().replace("&", " and ")).split())


@dataclasses.dataclass(frozen=True)
class HardConstraints:
    max_price: float | None = None
    min_price: float | None = None
    brands: tuple[str, ...] = ()  # normalised; an item must be one of them
    not_brands: tuple[str, ...] = ()

    @property
    def checkable(self) -> bool:
        return any((self.max_price is not None, self.min_price is not None, self.brands, self.not_brands))


def brand_vocabulary(
    catalog_brands: Iterable[str], goals: Sequence[str], max_df: float = MAX_BRAND_DF
) -> set[str]:
    """Normalised catalog brands (>= 3 characters) that name at most ``max_df`` of all instructions
    as a whole phrase: "simple", "natural" or "color" are brands here and everyday words there."""
    brands = {_words(b) for b in catalog_brands}
    brands = {b for b in brands if len(b) >= 3}
    docs = [f" {_words(g)} " for g in dict.fromkeys(goals)]
    limit = max_df * len(docs)
    return {b for b in brands if sum(f" {b} " in d for d in docs) <= limit}


def parse_hard_constraints(text: str, brands: Iterable[str] = ()) -> HardConstraints:
    """The bench's own rules for the hard constraints a request states (see the module docstring)."""
    plain = text.lower()
    ceilings = [float(a or b or c or d) for a, b, c, d in _CEILING.findall(plain)]
    floors = [float(a or b) for a, b in _FLOOR.findall(plain)]
    words = f" {_words(text)} "
    wanted: list[str] = []
    excluded: list[str] = []
    taken: list[tuple[int, int]] = []
    for brand in sorted(brands, key=len, reverse=True):  # longest first: "viktor and rolf" before "rolf"
        for m in re.finditer(rf"(?<= ){re.escape(brand)}(?= )", words):
            before, after = words[: m.start()], words[m.end() :]
            if any(s < m.end() and m.start() < e for s, e in taken) or after.startswith(" impression"):
                continue  # "<brand> impression perfume" asks for a dupe of that brand's scent
            if _NEGATION.search(before):
                excluded.append(brand)
            elif _BRAND_BEFORE.search(before) or after.startswith(" brand "):
                wanted.append(brand)
            else:
                continue  # a catalog brand's name said without a brand cue: too often a plain word
            taken.append((m.start(), m.end()))
    return HardConstraints(
        max_price=min(ceilings) if ceilings else None,
        min_price=max(floors) if floors else None,
        brands=tuple(dict.fromkeys(wanted)),
        not_brands=tuple(dict.fromkeys(excluded)),
    )


def satisfies(item: Any, c: HardConstraints) -> bool:
    """Whether one shown item (``price``, ``brand``, ``title``) meets every constraint of ``c``."""
    price = getattr(item, "price", None)
    if c.max_price is not None and (price is None or price > c.max_price):
        return False
    if c.min_price is not None and (price is None or price < c.min_price):
        return False
    names = f" {_words(item.brand or '')} {_words(item.title)} "
    if c.brands and not any(f" {b} " in names for b in c.brands):
        return False
    return not any(f" {b} " in names for b in c.not_brands)


# --- systems --------------------------------------------------------------------------------
Shown = list[Any]  # items with item_id, title, price, brand
System = Callable[[Request], Shown]


def popularity_ids(dataset: Any) -> list[str]:
    """Catalog ids by number of interactions (descending), ties by catalog order."""
    counts = dataset.interactions.frame["item_id"].value_counts()
    return sorted(dataset.catalog.ids, key=lambda i: -int(counts.get(i, 0)))


def popularity_system(catalog: Any, order: Sequence[str], k: int) -> System:
    top = [catalog[i] for i in order[:k]]
    return lambda _req: list(top)


def keyword_popularity_system(catalog: Any, order: Sequence[str], k: int) -> System:
    """Request words matched against titles: most distinct matched words first, then popularity."""
    rank = {i: n for n, i in enumerate(order)}
    postings: dict[str, list[str]] = {}
    for item in catalog:
        for tok in set(tokenize(item.title)):
            postings.setdefault(tok, []).append(item.item_id)

    def system(req: Request) -> Shown:
        hits: dict[str, int] = {}
        for tok in set(tokenize(req.text)):
            for i in postings.get(tok, ()):
                hits[i] = hits.get(i, 0) + 1
        best = sorted(hits, key=lambda i: (-hits[i], rank[i]))[:k]
        return [catalog[i] for i in best]

    return system


def assistant_system(bot: Any, nonce: str, k: int) -> System:
    """The assistant, each request a new shopper's first message in a fresh session."""
    return lambda req: list(bot.chat(req.text, session_id=f"webshop-{nonce}-{req.index}").items[:k])


# --- judgments ------------------------------------------------------------------------------
def load_judgments(path: str | os.PathLike[str] = JUDGMENTS) -> dict[str, Any]:
    """The hand judgments: header (rubric, judge, date) and ``requests`` [{index, hash, items}]."""
    with Path(path).open(encoding="utf-8") as f:
        data = json.load(f)
    for r in data["requests"]:
        for it in r["items"]:
            if it["relevant"] not in (0, 1):
                raise ValueError(f"request {r['index']}: relevant must be 0 or 1, got {it['relevant']!r}")
    return data


def judged_precision(
    shown: Mapping[str, Sequence[str]], judgments: Mapping[str, Mapping[str, int]], k: int
) -> dict[str, Any]:
    """Precision@k over the judged requests (request hash -> shown ids), a missing item counting 0;
    items not in the judgments are unjudged: counted, and precision over the judged ones beside."""
    per_request, judged_rel, judged_n, unjudged = [], 0, 0, 0
    for h, ids in shown.items():
        labels = judgments.get(h)
        if labels is None:
            continue
        rel = 0
        for i in ids[:k]:
            if i in labels:
                judged_n += 1
                rel += labels[i]
            else:
                unjudged += 1
        judged_rel += rel
        per_request.append(rel / k)
    # With unjudged items shown it is no judged precision: only the judged-items share stands.
    # The CI of a mean is that of its difference from zero (one bootstrap implementation: bench.stats).
    ci = paired_bootstrap(per_request, [0.0] * len(per_request)) if per_request and not unjudged else None
    return {
        f"precision@{k}": float(np.mean(per_request)) if ci is not None else None,
        f"precision@{k}_95ci": None if ci is None else [ci.lo, ci.hi],
        "judged_requests": len(per_request),
        "judged_items_shown": judged_n,
        "unjudged_items_shown": unjudged,
        "precision_over_judged_items": judged_rel / judged_n if judged_n else None,
    }


# --- the run --------------------------------------------------------------------------------
@dataclasses.dataclass
class WebShopConfig:
    data: str = "../shared/external/webshop"
    catalog: str = "../shared/datasets/amazon-beauty-2014"
    requests: int | None = None  # seeded sample of the selected requests; None: all
    llm: str | None = None
    seed: int = 0
    k: int = 5
    judgments: str | None = str(JUDGMENTS)
    out: str = "reports"
    cache_dir: str | None = None
    threads: int | None = None
    samples_in_md: int = 10
    show_progress: bool = True
    command: str | None = None

    def __post_init__(self) -> None:
        if self.requests is not None and self.requests < 1:
            raise ValueError(f"--requests must be positive, got {self.requests}")
        if self.k < 3:
            raise ValueError(f"k must be >= 3 (answered = >= 3 items shown), got {self.k}")


def bench_requests(selected: Sequence[Request], n: int | None, seed: int) -> list[Request]:
    """The judged sample first, so a small run still scores it, then a seeded sample of the rest."""
    judged = judged_sample(selected, seed=seed)
    if n is None:
        return list(selected)
    if n <= len(judged):
        return judged[:n]
    ids = {r.index for r in judged}
    rest = [r for r in selected if r.index not in ids]
    extra = random.Random(seed).sample(rest, min(n - len(judged), len(rest)))
    return sorted([*judged, *extra], key=lambda r: r.index)


def run(cfg: WebShopConfig) -> dict[str, Any]:
    from assistant.shopping_assistant import ShoppingAssistant
    from retrieval.data.registry import load_dataset

    t0 = time.perf_counter()
    if not (Path(cfg.data) / "human_goals.json").is_file():
        raise SystemExit(f"no WebShop instructions at {cfg.data}/human_goals.json")
    goals = load_goals(cfg.data)
    selected = select_requests(goals)
    requests = bench_requests(selected, cfg.requests, cfg.seed)
    dataset = load_dataset(cfg.catalog)
    catalog = dataset.catalog
    brands = brand_vocabulary({it.brand for it in catalog if it.brand}, goals)
    constraints = {r.index: parse_hard_constraints(r.text, brands) for r in requests}
    order = popularity_ids(dataset)
    bot = ShoppingAssistant.from_dataset(
        dataset, llm=cfg.llm, cache_dir=cfg.cache_dir, threads=cfg.threads, show_progress=cfg.show_progress
    )
    nonce = uuid.uuid4().hex[:8]  # sessions persist on disk: a re-run must not resume an old one
    systems: dict[str, System] = {
        "full": assistant_system(bot, nonce, cfg.k),
        "keyword+popularity": keyword_popularity_system(catalog, order, cfg.k),
        "popularity": popularity_system(catalog, order, cfg.k),
    }
    shown: dict[str, list[Shown]] = {s: [] for s in SYSTEMS}
    for req in tqdm(requests, desc="webshop requests", disable=not cfg.show_progress, file=sys.stderr):
        for name in SYSTEMS:
            shown[name].append(systems[name](req)[: cfg.k])
    bot.close()
    judgments = None
    if cfg.judgments and Path(cfg.judgments).is_file():
        judgments = load_judgments(cfg.judgments)
    report = _report(cfg, len(goals), selected, requests, constraints, shown, judgments, t0)
    write_reports(cfg, report, requests, constraints, shown, dataset.name)
    return report


def _per_request(
    requests: Sequence[Request], constraints: Mapping[int, HardConstraints], items: Sequence[Shown]
) -> tuple[list[bool], list[bool]]:
    """Answered (>= 3 items) for every request; constraint satisfied for the checkable ones."""
    answered = [len(s) >= 3 for s in items]
    ok = [
        bool(s) and all(satisfies(it, constraints[r.index]) for it in s)
        for r, s in zip(requests, items, strict=True)
        if constraints[r.index].checkable
    ]
    return answered, ok


def _report(
    cfg: WebShopConfig,
    n_goals: int,
    selected: Sequence[Request],
    requests: Sequence[Request],
    constraints: Mapping[int, HardConstraints],
    shown: Mapping[str, Sequence[Shown]],
    judgments: Mapping[str, Any] | None,
    t0: float,
) -> dict[str, Any]:
    k = cfg.k
    labels = (
        {r["hash"]: {it["item_id"]: it["relevant"] for it in r["items"]} for r in judgments["requests"]}
        if judgments
        else {}
    )
    per = {s: _per_request(requests, constraints, shown[s]) for s in SYSTEMS}
    results = {}
    for s in SYSTEMS:
        answered, ok = per[s]
        ids = {r.hash: [it.item_id for it in items] for r, items in zip(requests, shown[s], strict=True)}
        results[s] = {
            "answered_share": float(np.mean(answered)),
            "constraints_satisfied_share": float(np.mean(ok)) if ok else None,
            "requests": len(requests),
            "requests_with_checkable_constraint": len(ok),
            "mean_items_shown": float(np.mean([len(x) for x in shown[s]])),
            "judged": judged_precision(ids, labels, k) if labels else None,
        }
    comparisons = {}
    for base in SYSTEMS[1:]:
        (a_ans, a_ok), (b_ans, b_ok) = per["full"], per[base]
        comparisons[f"full - {base}"] = {
            "answered_share": dataclasses.asdict(paired_bootstrap(a_ans, b_ans, seed=cfg.seed)),
            "mcnemar_answered": dataclasses.asdict(mcnemar(a_ans, b_ans)),
            # None when no request in the run states a checkable constraint
            "constraints_satisfied_share": dataclasses.asdict(paired_bootstrap(a_ok, b_ok, seed=cfg.seed))
            if a_ok
            else None,
            "mcnemar_constraints": dataclasses.asdict(mcnemar(a_ok, b_ok)) if a_ok else None,
        }
    return {
        "bench": "webshop",
        "protocol": {
            "data": str(cfg.data),
            "catalog": str(cfg.catalog),
            "instructions_in_file": n_goals,
            "selected": len(selected),
            "selection": (
                "unique instructions naming a Beauty product type (BEAUTY_TERMS) and no EXCLUDE_TERMS word"
            ),
            "requests_run": len(requests),
            "sample": (
                "all selected"
                if cfg.requests is None
                else f"{cfg.requests} (judged sample first, seed {cfg.seed})"
            ),
            "turns": "one: the request as a new shopper's first message, fresh session",
            "answered": "at least 3 items shown",
            "constraints": (
                "bench's own parser: price ceiling/floor with a currency word or sign, brand with a cue "
                "('X brand', 'by X', 'brand of X') or 'not X'; every shown item must meet all; "
                "nothing shown fails"
            ),
            "judged_precision": (
                f"precision@{k} on {JUDGED_REQUESTS} requests (seed {cfg.seed}) judged by hand item by item; "
                "missing items count as not relevant; items not in the judgments are unjudged (counted)"
            ),
            "judgments": None
            if not judgments
            else {key: judgments.get(key) for key in ("judge", "date", "rubric", "system_judged")},
            "ci": "95% paired bootstrap over requests (2000 resamples); McNemar exact",
            "llm": cfg.llm or "none (template replies)",
            "k": k,
            "seed": cfg.seed,
            "command": cfg.command,
        },
        "systems": results,
        "comparisons": comparisons,
        "timing_s": time.perf_counter() - t0,
        "environment": environment(),
    }


# --- reports --------------------------------------------------------------------------------
def _ci(d: Mapping[str, Any] | None) -> str:
    if not d:
        return "–"
    return f"{d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}] (n={d['n']})"


def _with_ci(judged: Mapping[str, Any], k: int) -> str:
    p, ci = judged.get(f"precision@{k}"), judged.get(f"precision@{k}_95ci")
    if p is None:
        return "– (unjudged items shown)"
    return f"{p:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] (n={judged['judged_requests']})"


def _item(it: Any) -> str:
    price = f"${it.price:g}" if it.price is not None else "no price"
    return f"{it.title[:60]} ({it.brand or 'no brand'}; {price})"


def write_reports(
    cfg: WebShopConfig,
    report: Mapping[str, Any],
    requests: Sequence[Request],
    constraints: Mapping[int, HardConstraints],
    shown: Mapping[str, Sequence[Shown]],
    dataset_name: str,
) -> dict[str, Path]:
    k = cfg.k
    p = report["protocol"]
    base = Path(cfg.out) / f"webshop-{slug(dataset_name)}"
    rows = []
    for s, r in report["systems"].items():
        j = r["judged"] or {}
        rows.append(
            {
                "system": s,
                "answered (>= 3 items)": r["answered_share"],
                "all hard constraints met": r["constraints_satisfied_share"],
                "checkable requests": r["requests_with_checkable_constraint"],
                f"judged precision@{k} [95% CI]": _with_ci(j, k) if s == "full" else "–",
                "judged / unjudged items shown on the judged requests": (
                    f"{j.get('judged_items_shown')} / {j.get('unjudged_items_shown')}"
                )
                if j
                else "–",
                "precision over judged items": j.get("precision_over_judged_items"),
            }
        )
    comp = [
        {
            "comparison": name,
            "Δ answered [95% CI]": _ci(c["answered_share"]),
            "McNemar answered b / c / p": f"{c['mcnemar_answered']['b']} / {c['mcnemar_answered']['c']} / "
            f"{c['mcnemar_answered']['p_value']:.3g}",
            "Δ constraints met [95% CI]": _ci(c["constraints_satisfied_share"]),
        }
        for name, c in report["comparisons"].items()
    ]
    j = p.get("judgments") or {}
    md = [
        f"# WebShop beauty requests on {dataset_name}",
        "",
        "## Protocol",
        "",
        *([f"- command: `{p['command']}`"] if p.get("command") else []),
        f"- data: {p['data']}/human_goals.json (WebShop, MIT, Yao et al. NeurIPS 2022): "
        f"{p['instructions_in_file']} instructions, {p['selected']} selected ({p['selection']}); "
        f"run: {p['requests_run']} ({p['sample']})",
        f"- catalog: {p['catalog']}; LLM: {p['llm']}; {p['turns']}",
        f"- answered: {p['answered']}; constraints: {p['constraints']}",
        f"- judged precision: {p['judged_precision']}",
        f"- judge: {j.get('judge', 'no judgments file')} ({j.get('date', '–')}); judged system: "
        f"{j.get('system_judged', '–')}",
        f"- rubric: {j.get('rubric', '–')}",
        "- baselines' judged precision is not reported: their items were not judged; the table gives "
        "how many of the items they show happen to be judged and the precision over those only",
        f"- differences: {p['ci']}; b = requests only `full` succeeds, c = only the baseline",
        f"- wall time {report['timing_s']:.0f} s on {report['environment'].get('cpu_count')} CPUs "
        f"(load {report['environment'].get('load_average_1m_5m_15m')})",
        "",
        f"## Results ({p['requests_run']} requests, k = {k})",
        "",
        markdown_table(rows, list(rows[0]), digits=3),
        "",
        "Paired differences over the same requests:",
        "",
        markdown_table(comp, list(comp[0]), digits=3),
        "",
        f"![answered / constraints met]({base.name}.png)",
        "",
        f"## Sample requests ({cfg.samples_in_md}, seed {cfg.seed})",
        "",
        f"In `{base.name}-transcripts.md`, written beside this report and kept out of git: they quote "
        "the WebShop instructions, which stay with the WebShop files (`../shared`, never copied into "
        "the repository). The command above regenerates them.",
    ]
    sample_md = [f"# WebShop sample requests ({cfg.samples_in_md}, seed {cfg.seed}; WebShop text, MIT)", ""]
    pick = sorted(random.Random(cfg.seed).sample(range(len(requests)), min(cfg.samples_in_md, len(requests))))
    for i in pick:
        c = constraints[requests[i].index]
        note = f"  \n  constraints: {c}" if c.checkable else ""
        sample_md.append(f"**#{requests[i].index}** {requests[i].text}{note}")
        sample_md += [f"- {s}: " + ("; ".join(_item(it) for it in shown[s][i]) or "(nothing)") for s in SYSTEMS]
        sample_md.append("")
    paths = {
        "json": write_json(base.with_suffix(".json"), report),
        "md": write_text(base.with_suffix(".md"), "\n".join(md) + "\n"),
        "transcripts": write_text(base.parent / f"{base.name}-transcripts.md", "\n".join(sample_md) + "\n"),
    }
    series = {
        s: {"answered": r["answered_share"], "constraints met": r["constraints_satisfied_share"] or 0.0}
        for s, r in report["systems"].items()
    }
    paths["png"] = bar_plot(
        base.with_suffix(".png"),
        series,
        ["answered", "constraints met"],
        f"WebShop beauty requests on {dataset_name} ({p['requests_run']})",
    )
    return paths


# --- CLI ------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> WebShopConfig:
    ap = argparse.ArgumentParser(prog="python -m bench.webshop", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/external/webshop", help="folder with human_goals.json")
    ap.add_argument("--catalog", default="../shared/datasets/amazon-beauty-2014")
    ap.add_argument(
        "--requests", type=int, default=None, help="requests to run (judged sample first); default all"
    )
    ap.add_argument("--llm", default="none", help="'none' (template replies, default) or a model name/path")
    ap.add_argument("--judgments", default=str(JUDGMENTS), help="hand judgments JSON ('' for none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--out", default="reports")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_REQUESTS} requests, template replies")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    return WebShopConfig(
        data=a.data,
        catalog=a.catalog,
        requests=a.requests if a.requests is not None else (QUICK_REQUESTS if a.quick else None),
        llm=None if a.quick or a.llm.lower() == "none" else a.llm,
        seed=a.seed,
        k=a.k,
        judgments=a.judgments or None,
        out=a.out,
        cache_dir=a.cache_dir,
        threads=a.threads,
        show_progress=not a.no_progress,
    )


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    configure()  # offline model loading and the OpenMP policy, before the assistant loads torch
    args = sys.argv[1:] if argv is None else list(argv)
    cfg.command = " ".join(["python -m bench.webshop", *(shlex.quote(a) for a in args)])
    report = run(cfg)
    for name, r in report["systems"].items():
        j = r["judged"] or {}
        print(
            f"{name:>20}: answered={fmt(r['answered_share'], 3)} "
            f"constraints={fmt(r['constraints_satisfied_share'], 3)} "
            f"(n={r['requests_with_checkable_constraint']})"
            + (f" judged_p@{cfg.k}={fmt(j.get(f'precision@{cfg.k}'), 3)}" if name == "full" and j else "")
        )
    print(f"reports in {cfg.out}/webshop-*")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
