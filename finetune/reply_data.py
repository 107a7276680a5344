"""Reply data: the product's reply prompt for a shopper's request -> one grounded sentence that
says why *this* item suits *this* shopper (``python -m finetune generate --task reply``).

Split protocol (``REPLY_PROTOCOL`` below is written verbatim into ``manifest.json``):

* Requests are the understanding task's first-turn phrasings (``finetune.understand_templates``:
  requests, brands, budgets, soft wishes, negations; EN + ZH) filled from this catalog's
  vocabulary by ``finetune.understand.UnderstandBuilder``, with the same template split: every
  phrasing template and sub-phrase id is dealt to exactly one of train/dev/test (3:1:1, seeded),
  so dev/test phrasings are never trained on. Test requests are drawn first, then dev, then
  train; a later request equal to an earlier one is dropped and counted, so a test request's text
  never appears in train/dev.
* Each request runs through the product itself: ``ShoppingAssistant.understand`` then
  ``router.plan`` (retrieval, CF, ranking, diversity, explanations, the ``recommend`` prompt).
  The record's prompt is the plan's messages, exactly what the reply LLM is sent. A share of
  the requests (``--reply-user-fraction``) comes from a real shopper of the dataset, so the
  explanations may cite their purchase history.
* The target is one sentence (the product's recommend prompt asks for one) composed from the
  top card's facts by EN/ZH phrasings (``TARGET_OPENERS`` and the clauses of ``_clauses``): the
  shopper's stated needs (budget, brand, words of the request found in the title), a purchase
  the explanation cites, price, brand, rating. Every target must pass the product's checks
  (``ReplyGenerator.check``: the catalog grounding checker plus prompt echo) and must not read
  as a copied card (``card_copy``); a failing target is dropped and counted. Target phrasings are
  shared by all splits: evaluation never compares with them (it scores the product's checks and a
  pairwise judgement), they only teach the form.
* Training reads ``train_reply.jsonl`` (and ``dev_reply.jsonl`` for its eval loss); evaluation
  selects on dev; test is read once per reported number (``evaluate --task reply --split test``).
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from assistant.generation.guard import card_copy
from assistant.plan import Plan
from assistant.reply import RecommendedItem
from assistant.shopping_assistant import ShoppingAssistant
from assistant.understanding_stage import UnderstoodTurn
from finetune.data import _write_folder
from finetune.understand import SPLITS, UnderstandBuilder
from llm.messages import to_chat_dicts
from retrieval.data.registry import load_dataset
from retrieval.data.schema import Dataset
from retrieval.fingerprint import dataset_fingerprint
from retrieval.hybrid import GENERIC_WORDS
from retrieval.lexical import tokenize
from retrieval.text import format_money

__all__ = ["FIRST_TURN_KINDS", "REPLY_PROTOCOL", "ReplyBuilder", "compose_target", "generate_reply"]

REPLY_VERSION = "1.0"
REPLY_PROTOCOL = __doc__.split("Split protocol", 1)[1].split("\n\n", 1)[1].strip()  # type: ignore[union-attr]
FIRST_TURN_KINDS = ("request", "brand", "price", "soft", "negation")
"""Understanding-template kinds that read as a first message (the others react to a shown list)."""

TARGET_OPENERS: dict[str, tuple[str, ...]] = {
    "en": (
        "I'd go with {title}",
        "Try {title}",
        "{title} is your best match",
        "For you I'd pick {title}",
        "Have a look at {title}",
        "My pick for you is {title}",
        "You'll probably like {title}",
    ),
    "zh": (
        "推荐你试试{title}",
        "我会给你选{title}",
        "{title}最适合你",
        "可以看看{title}",
        "首选{title}",
    ),
}
TARGET_JOINERS: dict[str, tuple[str, ...]] = {
    "en": (": ", ", since ", " because ", " - "),
    "zh": ("：", "，因为", "，"),
}


@dataclass(frozen=True)
class ReplyFacts:
    """What a target may say about the top card, each already formatted (None: not known)."""

    title: str
    brand: str | None
    price: str | None
    rating: str | None
    budget: str | None  # the shopper's upper price, when the item is within it
    brand_asked: bool
    words: tuple[str, ...]  # words of the request that the title contains
    history: str | None  # the explanation's "like X you bought", when it is in the prompt


def reply_facts(turn: UnderstoodTurn, plan: Plan, currency: str | None) -> ReplyFacts:
    """The top card's facts and the shopper's needs it meets, read from the turn and its plan."""
    top: RecommendedItem = plan.items[0]
    c = turn.constraints
    money = (lambda x: format_money(x, currency, trim_cents=True)) if currency is not None else None
    price = money(top.price) if money and top.price is not None else None
    budget = (
        money(c.price_max)
        if money and c.price_max is not None and top.price is not None and top.price <= c.price_max
        else None
    )
    title_words = set(tokenize(top.title))
    words = tuple(
        w
        for w in dict.fromkeys(tokenize(turn.message))
        if w in title_words and w not in GENERIC_WORDS and len(w) > 3
    )[:2]
    prompt = "\n".join(m["content"] for m in to_chat_dicts(plan.messages or []))
    marker = "you bought" if turn.lang == "en" else "你买过"
    history = next((r for r in top.reasons if marker in r and r in prompt), None)
    asked = {b.casefold() for b in c.brands_in}
    return ReplyFacts(
        title=top.title,
        brand=top.brand or None,
        price=price,
        rating=f"{top.rating:.1f}" if top.rating is not None else None,
        budget=budget,
        brand_asked=bool(top.brand) and (top.brand or "").casefold() in asked,
        words=words,
        history=history,
    )


def _clauses(f: ReplyFacts, lang: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(needs, facts): (clause id, clause) pairs; needs speak to what this shopper said or did."""
    needs: list[tuple[str, str]] = []
    facts: list[tuple[str, str]] = []
    if lang == "zh":
        if f.budget and f.price:
            needs.append(("zh-budget", f"售价{f.price}，在你{f.budget}的预算内"))
        if f.brand_asked and f.brand:
            needs.append(("zh-brand-asked", f"正是你要的{f.brand}"))
        if f.history:
            needs.append(("zh-history", f"{f.history}"))
        if f.price and not f.budget:
            facts.append(("zh-price", f"售价{f.price}"))
        if f.brand and not f.brand_asked:
            facts.append(("zh-brand", f"来自{f.brand}"))
        if f.rating:
            facts.append(("zh-rating", f"评分{f.rating}分（满分5分）"))
        return needs, facts
    if f.budget and f.price:
        needs.append(("en-budget", f"at {f.price} it stays within your {f.budget} budget"))
    if f.brand_asked and f.brand:
        needs.append(("en-brand-asked", f"it is from {f.brand}, the brand you asked for"))
    if f.words:
        said = " and ".join(f'"{w}"' for w in f.words)
        needs.append(("en-words", f"it is exactly the {said} you asked for"))
    if f.history:
        needs.append(("en-history", f"it is {f.history}"))
    if f.price and not f.budget:
        facts.append(("en-price", f"it costs {f.price}"))
    if f.brand and not f.brand_asked:
        facts.append(("en-brand", f"it is made by {f.brand}"))
    if f.rating:
        facts.append(("en-rating", f"shoppers rate it {f.rating} out of 5"))
    return needs, facts


def compose_target(f: ReplyFacts, lang: str, rng: np.random.Generator) -> tuple[str, list[str]]:
    """One sentence: an opener naming the title, then one or two reasons (a need first when the
    shopper stated one). Returns (sentence, the phrasing ids used)."""
    needs, facts = _clauses(f, lang)
    order = [int(i) for i in rng.permutation(len(needs))] if needs else []
    picked = [needs[i] for i in order[:2]]
    if len(picked) < 2 and facts:
        k = 2 - len(picked) if rng.random() < 0.6 or not picked else 0
        picked += [facts[int(i)] for i in rng.permutation(len(facts))[:k]]
    openers, joiners = TARGET_OPENERS[lang], TARGET_JOINERS[lang]
    o, j = int(rng.integers(len(openers))), int(rng.integers(len(joiners)))
    ids = [f"{lang}-open-{o}"] + [cid for cid, _ in picked]
    head = openers[o].format(title=f.title)
    if not picked:
        return head + ("。" if lang == "zh" else "."), ids
    if lang == "zh":
        return head + joiners[j] + "，".join(c for _, c in picked) + "。", ids
    return head + joiners[j] + " and ".join(c for _, c in picked) + ".", ids


def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    return np.random.default_rng([seed] + [zlib.crc32(str(k).encode()) for k in keys])


class ReplyBuilder:
    """Requests (the understanding builder's first-turn phrasings) -> the product's plan -> records."""

    def __init__(
        self, ds: Dataset, bot: ShoppingAssistant, seed: int, zh_fraction: float, user_fraction: float
    ):
        self.ds, self.bot, self.seed, self.user_fraction = ds, bot, seed, user_fraction
        self.requests = UnderstandBuilder(ds, seed, zh_fraction)
        for pools in self.requests.by_split.values():  # first turns only: no shown list to react to
            for key in [k for k in pools if k.startswith("t:")]:
                pools[key] = [t for t in pools[key] if t.kind in FIRST_TURN_KINDS]
        self.users = sorted(ds.interactions.users) if user_fraction > 0 else []
        self.skipped: Counter[str] = Counter()

    def records(self, split: str, n: int, avoid: set[str], progress: bool = True) -> list[dict]:
        """Up to ``n`` records of ``split``; ``avoid`` holds the requests of the splits drawn before."""
        rng = _rng(self.seed, "reply", split)
        out: list[dict] = []
        bar = tqdm(total=n, desc=f"reply {split}", disable=not progress)
        tries, empty = 0, 0
        while len(out) < n and tries < n * 4 and empty < 5:  # 5 empty draws: the phrasings are used up
            batch = self.requests.generated(split, min(32, n - len(out)), avoid)
            tries += max(len(batch), 1)
            empty = 0 if batch else empty + 1
            if not batch:
                self.skipped[f"{split}_no_new_request"] += 1
                continue
            for req in batch:
                rec = self._record(req, split, rng)
                if rec is not None:
                    out.append(rec)
                    bar.update(1)
        bar.close()
        self.skipped.update({f"understand:{k}": v for k, v in self.requests.skipped.items()})
        self.requests.skipped.clear()
        return out[:n]

    def _record(self, req: dict, split: str, rng: np.random.Generator) -> dict | None:
        meta = req["meta"]
        user = (
            self.users[int(rng.integers(len(self.users)))]
            if self.users and rng.random() < self.user_fraction
            else None
        )
        session = f"reply-{split}-{zlib.crc32(meta['message'].encode()):08x}"
        turn = self.bot.understand(meta["message"], session, user)
        plan = self.bot.router.plan(turn)
        if plan.messages is None or not plan.items or plan.intent not in ("recommend", "search"):
            self.skipped[f"{split}_no_llm_prompt:{plan.intent}"] += 1
            return None
        facts = reply_facts(turn, plan, self.bot.currency)
        target, ids = compose_target(facts, turn.lang, rng)
        bad = self.bot.generator.check(target, plan)
        if bad or card_copy(target, plan.card_lines):
            kind = bad[0].kind if bad else "card_copy"
            self.skipped[f"{split}_target_failed_check:{kind}"] += 1
            return None
        return {
            "task": "reply",
            "split": split,
            "messages": [*to_chat_dicts(plan.messages), {"role": "assistant", "content": target}],
            "meta": {
                "lang": turn.lang,
                "request_lang": meta["lang"],
                "message": meta["message"],
                "template": meta["template"],
                "template_ids": meta["template_ids"],
                "target_ids": ids,
                "user_id": user,
                "session_id": session,
                "item_ids": [it.item_id for it in plan.items],
                "history_cited": facts.history is not None,
            },
        }


def open_product(
    data: str | Dataset, cache_dir: str | None, threads: int, **options: Any
) -> ShoppingAssistant:
    """The product over ``data`` as the reply data and evaluation use it (``options``: e.g. llm,
    adapter); the index is built once into ``cache_dir`` and loaded from there after."""
    return ShoppingAssistant.from_dataset(data, cache_dir=cache_dir, threads=threads, **options)


def generate_reply(cfg: Any, dataset: Dataset | None = None) -> dict[str, Any]:
    """Write ``{train,dev,test}_reply.jsonl`` + ``manifest.json`` into ``cfg.out``."""
    out = Path(cfg.out)
    if out.exists() and any(out.iterdir()) and not cfg.overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass --overwrite to replace it")
    ds = dataset if dataset is not None else load_dataset(cfg.data)
    bot = open_product(ds, cfg.cache_dir, cfg.threads, llm=None)
    b = ReplyBuilder(ds, bot, cfg.seed, cfg.zh_fraction, cfg.reply_user_fraction)
    counts = {"test": cfg.reply_test, "dev": cfg.reply_dev, "train": cfg.reply_train}
    files: dict[str, list[dict]] = {}
    avoid: set[str] = set()
    for split in ("test", "dev", "train"):  # held-out first: later splits skip their requests
        files[f"{split}_reply"] = b.records(split, counts[split], avoid)
    for name, records in files.items():
        for k, rec in enumerate(records):
            rec["id"] = f"{name}-{k:06d}"
    manifest = {
        "task": "reply",
        "generator_version": REPLY_VERSION,
        "seed": cfg.seed,
        "config": asdict(cfg),
        "source": {"data": str(cfg.data), "name": ds.name, "fingerprint_sha256": dataset_fingerprint(ds)},
        "split_protocol": REPLY_PROTOCOL,
        "template_ids": {
            s: sorted({i for r in files[f"{s}_reply"] for i in r["meta"]["template_ids"]}) for s in SPLITS
        },
        "counts": {name: len(r) for name, r in files.items()},
        "counts_by_lang": {
            name: dict(Counter(r["meta"]["lang"] for r in recs)) for name, recs in files.items()
        },
        "history_cited": {
            name: sum(r["meta"]["history_cited"] for r in recs) for name, recs in files.items()
        },
        "skipped": dict(sorted(b.skipped.items())),
        "files": {},
    }
    _write_folder(out, files, manifest, None)
    return manifest


def reply_split_path(data: str | Path, split: str) -> Path:
    """The one file of ``split`` that training (train/dev) or evaluation (dev or test) reads."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return Path(data) / f"{split}_reply.jsonl"


def requests_of(records: Sequence[dict]) -> set[str]:
    """The request texts of ``records`` (for the leakage check)."""
    return {r["meta"]["message"] for r in records}
