"""Leakage-safe fine-tuning data from real purchase histories.

Split protocol (``SPLIT_PROTOCOL`` below is written verbatim into ``manifest.json``):

* ``retrieval.data.leave_one_out`` per user: last event = test, second-last = valid,
  the rest = train. Users with < 3 events are never targets.
* Evaluated users are shuffled with the seed and partitioned into three DISJOINT pools:
  ``test`` (held-out evaluation), ``dev`` (eval loss during training) and ``train``.
* train / dev examples: history = the user's TRAIN items, target = their VALID item.
  A training user's test item never appears anywhere.
* test examples: history = TRAIN + VALID items, target = the TEST item, for test-pool
  users only (never trained on, not even their earlier positions).
* Candidate retrievers are fitted on ``split.train`` only (no valid/test event of anyone).
* Examples whose target is already in the shown history (a re-buy), or whose rendered
  title is contained in a shown title, are skipped (counted in the manifest): the prompt must
  not contain the answer. Item ids are never rendered.
* The re-buy warm-up task (train/dev pools only) answers with a shown TRAIN purchase by
  design; its negatives exclude the user's valid and test items.
* The lexical teacher (``--teacher``) is fitted on the train pool's listwise examples only;
  it labels train/dev records, never a test record.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from finetune.candidates import CandidateSampler, make_candidate_source
from finetune.metrics import ranking_metrics, target_rank
from finetune.teacher import LexicalTeacher
from finetune.templates import (
    CONSTRAINT_TEMPLATES_EN,
    CONSTRAINT_TEMPLATES_ZH,
    GENERIC_CHAT,
    PRICE_BANDS,
    REPLY_OPENERS,
    REQUEST_TEMPLATES,
    STOCK_EN,
    STOCK_ZH,
    price_band,
    price_phrase,
)
from llm.listwise import (
    CANDIDATES_HEADER,
    LETTERS,
    SYSTEM_SHOPPER,
    constraint_messages,
    format_price,
    listwise_messages,
    parse_listwise_prompt,
    render_card,
    short_title,
)
from retrieval.data import leave_one_out
from retrieval.data.registry import load_dataset
from retrieval.data.schema import Catalog, Dataset, Item
from retrieval.filters import Constraints
from retrieval.fingerprint import dataset_fingerprint

GENERATOR_VERSION = "2.0"
"""2.0: listwise letters after the titles; optional teacher log-probs on train/dev listwise records."""
SPLIT_PROTOCOL = __doc__.split("Split protocol", 1)[1].split("\n\n", 1)[1].strip()  # type: ignore[union-attr]

TASKS = ("listwise", "rebuy", "sft", "constraints", "chat")
"""Task names; ``train_<task>.jsonl`` / ``dev_<task>.jsonl`` hold them."""

LISTWISE_PROTOCOLS = ("retrieved", "random", "recalled")
"""How the 19 negatives of a listwise prompt are drawn: "retrieved", the retriever's top items
other than the target (so the target is often the one the retriever missed); "random", uniform
over the catalog; "recalled", LlamaRec's: the retriever's top 20 for users whose target is among
them (the other 19 are its other picks), a small share of users."""

TEST_FILES = (
    *(f"test_listwise_{p}" for p in LISTWISE_PROTOCOLS),
    "test_sft",
    "test_constraints",
)


@dataclass
class GenerateConfig:
    """Options of ``python -m finetune generate`` (every field is a CLI flag)."""

    data: str = field(
        metadata={"help": "dataset folder or registered name (see retrieval.data.load_dataset)"}
    )
    out: str = field(metadata={"help": "output folder (must not exist or be empty unless --overwrite)"})
    seed: int = field(default=0, metadata={"help": "seed of every random choice"})
    users: int | None = field(default=None, metadata={"help": "cap on training users (default: all)"})
    dev_users: int = field(default=64, metadata={"help": "users whose valid item is the dev (eval-loss) set"})
    test_users: int = field(default=200, metadata={"help": "held-out users for evaluation (test item)"})
    n_candidates: int = field(default=20, metadata={"help": "listwise candidates per prompt (<= 20, A-T)"})
    sft_candidates: int = field(default=6, metadata={"help": "candidate cards per conversational example"})
    max_history: int = field(
        default=10, metadata={"help": "most recent purchases shown in a listwise prompt"}
    )
    sft_history: int = field(
        default=3, metadata={"help": "recent purchases shown to the conversational model"}
    )
    candidates: str = field(
        default="auto", metadata={"help": "retriever: auto | cooccurrence | a retrieval.scorers name"}
    )
    train_protocol: str = field(
        default="random",
        metadata={
            "help": "negatives of training prompts: retrieved | random | recalled | mixed "
            "(retrieved and random alternating); see LISTWISE_PROTOCOLS. random by default: its "
            "signal (history matching) is the one a small causal LM learns (finetune/README.md, Status)"
        },
    )
    rebuy: int = field(
        default=1000,
        metadata={
            "help": "re-buy warm-up examples (training-pool users): a listwise prompt whose answer "
            "repeats one of the shown purchases (the most recent one half the time) among 19 random "
            "items. A first curriculum stage on them teaches a small model to tie a line's title to "
            "its letter, which the noisy next-purchase labels alone do not (finetune/README.md)"
        },
    )
    sft_fraction: float = field(
        default=0.5, metadata={"help": "share of train/dev users with an SFT example"}
    )
    constraint_train: int = field(default=400, metadata={"help": "constraint-extraction training examples"})
    constraint_test: int = field(default=100, metadata={"help": "held-out constraint-extraction examples"})
    zh_fraction: float = field(default=0.3, metadata={"help": "share of constraint utterances in Chinese"})
    chat: bool = field(default=True, metadata={"help": "include the templated generic chat turns"})
    title_chars: int = field(default=60, metadata={"help": "rendered title length cap"})
    teacher: str = field(
        default="lexical",
        metadata={
            "help": "lexical: fit finetune.teacher.LexicalTeacher on the train listwise examples and "
            "write its letter log-probs (meta.teacher_logprobs) into train/dev listwise records, for "
            "`train --distill_weight`; none: hard labels only"
        },
    )
    overwrite: bool = field(default=False, metadata={"help": "replace an existing non-empty --out"})

    def __post_init__(self) -> None:
        if not 1 <= self.n_candidates <= len(LETTERS):
            raise ValueError(f"n_candidates must be in 1..{len(LETTERS)}, got {self.n_candidates}")
        if not 2 <= self.sft_candidates <= len(LETTERS):
            raise ValueError(f"sft_candidates must be in 2..{len(LETTERS)}, got {self.sft_candidates}")
        if self.train_protocol not in (*LISTWISE_PROTOCOLS, "mixed"):
            raise ValueError(
                f"train_protocol must be retrieved|random|recalled|mixed, got {self.train_protocol!r}"
            )
        if self.teacher not in ("lexical", "none"):
            raise ValueError(f"teacher must be lexical|none, got {self.teacher!r}")
        for name in ("dev_users", "test_users", "constraint_train", "constraint_test", "rebuy"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent stream per (seed, keys): one example's draws never shift another's."""
    words = [seed] + [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(words)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _id_pattern(item_id: str) -> re.Pattern[str] | None:
    """Ids that could be confused with numbers in titles/prices are never rendered at all;
    only distinctive ids (containing a letter, >= 4 chars) are searched for literally."""
    if len(item_id) < 4 or not re.search(r"[A-Za-z]", item_id):
        return None
    return re.compile(rf"(?<![\w]){re.escape(item_id)}(?![\w])", re.IGNORECASE)


def check_example(record: dict[str, Any], catalog: Catalog, title_chars: int = 60) -> list[str]:
    """Leakage problems of one generated example (empty list = clean).

    * the target id never appears in any prompt message;
    * listwise: the target title is absent from the history part and present exactly once
      among the candidates, under the answer letter;
    * sft: the shopper's request never contains the target title; the context shows it
      exactly once (as a candidate card).
    """
    task = record["task"]
    meta = record.get("meta", {})
    target = meta.get("target_id")
    if target is None:
        return []
    problems = []
    prompt_msgs = (
        record["messages"][:-1] if record["messages"][-1]["role"] == "assistant" else record["messages"]
    )
    prompt = "\n".join(m["content"] for m in prompt_msgs)
    pat = _id_pattern(target)
    if pat is not None and pat.search(prompt):
        problems.append(f"target id {target!r} appears in the prompt")
    title = _norm(short_title(catalog[target].title, title_chars))
    if task == "rebuy":  # the answer is a shown purchase by design; it must be there exactly once
        shown, cands = parse_listwise_prompt(prompt_msgs[-1]["content"])
        if title not in {_norm(t) for t in shown}:
            problems.append("re-bought title is not among the shown purchases")
        hits = [letter for letter, t in cands if _norm(t) == title]
        if hits != [meta["target_letter"]]:
            problems.append(
                "re-bought title is not exactly once among the candidates, under the answer letter"
            )
    elif task == "listwise":
        user = prompt_msgs[-1]["content"]
        head = user.partition(CANDIDATES_HEADER)[0]
        if title in _norm(head):
            problems.append("target title appears in the history")
        hits = [letter for letter, t in parse_listwise_prompt(user)[1] if _norm(t) == title]
        if len(hits) != 1:
            problems.append(f"target title appears {len(hits)} times among candidates")
        elif hits[0] != meta["target_letter"]:
            problems.append("answer letter does not label the target")
    elif task == "sft":
        request = "\n".join(m["content"] for m in prompt_msgs if m["role"] == "user")
        if title in _norm(request):
            problems.append("target title appears in the shopper request")
        context = _norm(prompt_msgs[0]["content"])
        if context.count(title) != 1:
            problems.append(f"target title appears {context.count(title)} times in the context")
    return problems


# --------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------


class _Generator:
    def __init__(self, cfg: GenerateConfig, ds: Dataset):
        self.cfg = cfg
        self.ds = ds
        self.catalog = ds.catalog
        self.skipped: Counter[str] = Counter()
        self.split = leave_one_out(ds.interactions)
        self.source = make_candidate_source(cfg.candidates, self.split.train, self.catalog)
        self.sampler = CandidateSampler(self.catalog, self.source)
        self.future: dict[str, list[str]] = {}
        self._titles = {it.item_id: _norm(short_title(it.title, cfg.title_chars)) for it in self.catalog}

    # --- users ------------------------------------------------------------------------------
    def partition(self) -> dict[str, list[tuple[str, list[str], str]]]:
        """Disjoint user pools; each row is (user, history, target) under the pool's protocol."""
        valid = {u: (h, t) for u, h, t in self.split.histories("valid")}
        test = {u: (h, t) for u, h, t in self.split.histories("test")}
        self.future = {u: [t] for u, (_, t) in test.items()}
        users = sorted(u for u in valid if u in test and valid[u][0])
        order = _rng(self.cfg.seed, "partition").permutation(len(users))
        users = [users[i] for i in order]
        n_test = min(self.cfg.test_users, len(users))
        n_dev = min(self.cfg.dev_users, len(users) - n_test)
        pools = {
            "test": users[:n_test],
            "dev": users[n_test : n_test + n_dev],
            "train": users[n_test + n_dev :],
        }
        if self.cfg.users is not None:
            pools["train"] = pools["train"][: self.cfg.users]
        return {
            "test": [(u, *test[u]) for u in pools["test"]],
            "dev": [(u, *valid[u]) for u in pools["dev"]],
            "train": [(u, *valid[u]) for u in pools["train"]],
        }

    # --- candidates ----------------------------------------------------------------------------
    def _negatives(
        self,
        protocol: str,
        history: Sequence[str],
        target: str,
        n: int,
        rng: np.random.Generator,
        keep: Any = None,
        future: Sequence[str] = (),
    ) -> list[str]:
        """``n`` negatives whose rendered titles are distinct from each other, the target and
        the shown history (a duplicate title would make the answer ambiguous or leak it)."""
        target_title = self._titles[target]
        banned = {target_title} | {self._titles[h] for h in history if h in self._titles}
        picked: list[str] = []
        forbidden: set[str] = set(future)  # the user's later items never appear, not even as negatives
        for attempt in range(4):
            want = (n - len(picked)) * 2 + 5
            proto = protocol if attempt == 0 else "random"
            for iid in self.sampler.negatives(proto, history, target, want, rng, forbidden | set(picked)):
                forbidden.add(iid)
                t = self._titles[iid]
                # A negative whose title contains the target's would show the target's title twice.
                if t in banned or target_title in t or (keep is not None and not keep(self.catalog[iid])):
                    continue
                banned.add(t)
                picked.append(iid)
                if len(picked) == n:
                    return picked
        raise ValueError(f"could not draw {n} negatives with distinct titles for target {target!r}")

    def _recalled(
        self, history: Sequence[str], target: str, n: int, future: Sequence[str] = ()
    ) -> list[str] | None:
        """LlamaRec's protocol: the retriever's top ``n`` for this history, only when the target
        is among them (else None, counted); the negatives are its other picks, in rank order,
        skipping title clashes (the next retrieved items fill in)."""
        exclude = set(history) | set(future)
        ranked = self.source.top(history, 2 * n + 5, exclude)
        if target not in ranked[:n]:
            self.skipped["recalled_target_not_retrieved"] += 1
            return None
        target_title = self._titles[target]
        banned = {target_title} | {self._titles[h] for h in history if h in self._titles}
        negs: list[str] = []
        for iid in ranked:
            t = self._titles[iid]
            if iid == target or t in banned or target_title in t:
                continue
            banned.add(t)
            negs.append(iid)
            if len(negs) == n - 1:
                return negs
        self.skipped["recalled_too_few_distinct"] += 1
        return None

    def _usable(self, history: Sequence[str], target: str, shown: int) -> bool:
        if target in history:
            self.skipped["target_in_history"] += 1
            return False
        shown_titles = [self._titles[h] for h in list(history)[-shown:]] if shown > 0 else []
        # Substring, not equality: a short target title ("nail polish") inside a longer history
        # title ("nail polish remover") would still leak it (and fails check_example).
        if any(self._titles[target] in t for t in shown_titles):
            self.skipped["target_title_in_history"] += 1
            return False
        return True

    def _clean(self, record: dict) -> dict | None:
        """Skip (and count) an example whose rendered text would still give the target away,
        e.g. its title inside a card's brand or a longer title. Every listwise and SFT example
        passes through here: this is the leakage check of what ``generate`` writes."""
        if check_example(record, self.catalog, self.cfg.title_chars):
            self.skipped[f"{record['task']}_title_collision"] += 1
            return None
        return record

    # --- listwise ---------------------------------------------------------------------------------
    def listwise(self, user: str, history: list[str], target: str, protocol: str, part: str) -> dict | None:
        cfg = self.cfg
        if not self._usable(history, target, cfg.max_history):
            return None
        rng = _rng(cfg.seed, "listwise", part, protocol, user)
        future = self.future.get(user, []) if part != "test" else []
        if protocol == "recalled":
            negs = self._recalled(history, target, cfg.n_candidates, future=future)
            if negs is None:
                return None
        else:
            negs = self._negatives(protocol, history, target, cfg.n_candidates - 1, rng, future=future)
        return self._letter_record("listwise", protocol, user, history, target, negs, rng, part)

    def rebuy_example(self, user: str, history: list[str], later: str, part: str) -> dict | None:
        """Warm-up prompt: the answer is one of the shown purchases (a re-buy), the other 19 are
        random; built from the user's train items only (``history``): ``later`` (the held-out
        valid item) and the test item are kept out of the negatives too."""
        cfg = self.cfg
        shown = history[-cfg.max_history :] if cfg.max_history > 0 else []
        distinct = list(dict.fromkeys(self._titles[h] for h in shown))
        if len(shown) < 1 or len(distinct) < len(shown):  # an ambiguous answer: two shown titles alike
            self.skipped["rebuy_too_short_or_duplicate_titles"] += 1
            return None
        rng = _rng(cfg.seed, "rebuy", part, user)
        target = shown[-1] if rng.random() < 0.5 else shown[int(rng.integers(len(shown)))]
        others = [h for h in history if h != target]
        future = [later, *self.future.get(user, [])]  # the valid and test items never appear
        negs = self._negatives("random", others, target, cfg.n_candidates - 1, rng, future=future)
        return self._letter_record("rebuy", "random", user, history, target, negs, rng, part)

    def _letter_record(
        self,
        task: str,
        protocol: str,
        user: str,
        history: list[str],
        target: str,
        negs: list[str],
        rng: np.random.Generator,
        part: str,
    ) -> dict | None:
        """A letter-answer prompt (listwise / rebuy): target and negatives shuffled, letter answer."""
        cfg = self.cfg
        cands = [target, *negs]
        cands = [cands[i] for i in rng.permutation(len(cands))]
        letter = LETTERS[cands.index(target)]
        msgs = listwise_messages(
            [self.catalog[h].title for h in history],
            [self.catalog[c].title for c in cands],
            max_history=cfg.max_history,
            max_chars=cfg.title_chars,
        )
        msgs.append({"role": "assistant", "content": letter})
        return self._clean(
            {
                "task": task,
                "split": part,
                "protocol": protocol,
                "messages": msgs,
                "meta": {
                    "user_id": user,
                    "target_id": target,
                    "target_letter": letter,
                    "candidate_ids": cands,
                    "history_ids": history,
                },
            }
        )

    # --- conversational SFT -------------------------------------------------------------------------
    def sft(self, user: str, history: list[str], target: str, part: str) -> dict | None:
        cfg = self.cfg
        item = self.catalog[target]
        if not item.categories:
            self.skipped["sft_no_category"] += 1
            return None
        if not self._usable(history, target, cfg.sft_history):
            return None
        rng = _rng(cfg.seed, "sft", part, user)
        # The request names the target's category and maybe brand / price band: never its title.
        path = item.categories
        depth = len(path) if len(path) <= 1 else int(rng.integers(max(2, len(path) - 1), len(path) + 1))
        cat_path = path[:depth]
        cat_noun = cat_path[-1].lower()
        use_brand = bool(item.brand) and rng.random() < 0.5
        phrase = None
        if item.price is not None and rng.random() < 0.6:
            lo, hi = price_band(item.price)
            phrase = price_phrase(lo, hi, int(rng.integers(3)))
        wanted = Constraints(
            categories=(cat_path,),
            brands_in=(item.brand,) if use_brand and item.brand else (),
            price_min=phrase.price_min if phrase else None,
            price_max=phrase.price_max if phrase else None,
        )
        if not wanted.matches(item):  # e.g. a boundary price; the request must be true of the target
            self.skipped["sft_request_mismatch"] += 1
            return None
        template = REQUEST_TEMPLATES[int(rng.integers(len(REQUEST_TEMPLATES)))]
        request = template.format(
            cat=cat_noun,
            brand_part=f" from {item.brand}" if wanted.brands_in else "",
            price_part=f" {phrase.en}" if phrase else "",
        )
        # Negatives fail at least one requested constraint, so the target is the unique match.
        n_neg = cfg.sft_candidates - 1
        n_ret = n_neg // 2
        future = self.future.get(user, []) if part != "test" else []
        unmatched = lambda it: not wanted.matches(it)  # noqa: E731
        negs = self._negatives("retrieved", history, target, n_ret, rng, keep=unmatched, future=future)
        negs += self._negatives(
            "random", [*history, *negs], target, n_neg - n_ret, rng, keep=unmatched, future=future
        )
        cands = [target, *negs]
        cands = [cands[i] for i in rng.permutation(len(cands))]
        label = LETTERS[cands.index(target)]
        recent = history[-cfg.sft_history :] if cfg.sft_history > 0 else []
        context = [SYSTEM_SHOPPER, "", "Shopper's recent purchases:"]
        context += [f"- {short_title(self.catalog[h].title, cfg.title_chars)}" for h in recent] or [
            "- (none)"
        ]
        context += ["", "Candidate products:"]
        context += [render_card(self.catalog[c], LETTERS[k], cfg.title_chars) for k, c in enumerate(cands)]
        reply = self._reply(item, label, wanted, phrase.en if phrase else None, recent, rng)
        return self._clean(
            {
                "task": "sft",
                "split": part,
                "messages": [
                    {"role": "system", "content": "\n".join(context)},
                    {"role": "user", "content": request},
                    {"role": "assistant", "content": reply},
                ],
                "meta": {
                    "user_id": user,
                    "target_id": target,
                    "target_letter": label,
                    "candidate_ids": cands,
                    "history_ids": history,
                    "shown_history_ids": recent,
                    "request_constraints": _compact(wanted.to_dict()),
                },
            }
        )

    def _reply(
        self,
        item: Item,
        label: str,
        wanted: Constraints,
        price_words: str | None,
        recent: Sequence[str],
        rng: np.random.Generator,
    ) -> str:
        """A grounded reply: every reason is a fact from the target's card or the history."""
        title = short_title(item.title, self.cfg.title_chars)
        opener = REPLY_OPENERS[int(rng.integers(len(REPLY_OPENERS)))].format(title=title, label=label)
        reasons = [
            f"It is in {' > '.join(item.categories[1:] or item.categories)}, the kind of product you asked for."
        ]
        if wanted.brands_in:
            reasons.append(f"It is made by {item.brand}, as you wanted.")
        elif item.brand:
            reasons.append(f"It is from {item.brand}.")
        price = format_price(item.price)
        if price and price_words:
            reasons.append(f"At {price} it fits your budget ({price_words}).")
        elif price:
            reasons.append(f"It costs {price}.")
        for h in reversed(list(recent)):
            prev = self.catalog[h]
            if item.brand and prev.brand and prev.brand.casefold() == item.brand.casefold():
                reasons.append(
                    f"You recently bought {short_title(prev.title, self.cfg.title_chars)}, also from {item.brand}."
                )
                break
            if prev.categories and prev.categories[-1] == item.categories[-1]:
                reasons.append(
                    f"You recently bought {short_title(prev.title, self.cfg.title_chars)}, "
                    f"another {item.categories[-1].lower()} product."
                )
                break
        reasons.append("The other candidates do not match everything you asked for.")
        return opener + " " + " ".join(reasons)

    # --- constraint extraction ---------------------------------------------------------------------------
    def _category_names(self) -> list[tuple[str, tuple[str, ...]]]:
        """(name, path) for category levels >= 2 whose name is unique in the catalog."""
        paths: dict[str, set[tuple[str, ...]]] = {}
        for p in self.catalog.category_paths():
            if len(p) >= 2:
                paths.setdefault(p[-1].casefold(), set()).add(p)
        return sorted((next(iter(v))[-1], next(iter(v))) for v in paths.values() if len(v) == 1)

    def constraints(self, n: int, part: str, avoid: set[str]) -> list[dict]:
        cfg = self.cfg
        cats = self._category_names()
        brands = [it.brand for it in self.catalog if it.brand]
        if not cats and not brands and not self.catalog.has_prices:
            self.skipped["constraints_no_attributes"] += n
            return []
        out: list[dict] = []
        seen = set(avoid)
        rng = _rng(cfg.seed, "constraints", part)
        attempts = 0
        while len(out) < n and attempts < n * 50:
            attempts += 1
            zh = rng.random() < cfg.zh_fraction
            templates = CONSTRAINT_TEMPLATES_ZH if zh else CONSTRAINT_TEMPLATES_EN
            template = templates[int(rng.integers(len(templates)))]
            slots: dict[str, str] = {}
            fields: dict[str, Any] = {}
            if "{cat}" in template:
                if not cats:
                    continue
                name, path = cats[int(rng.integers(len(cats)))]
                slots["cat"] = name if zh else name.lower()
                fields["categories"] = (path,)
            if "{brand}" in template:
                if not brands:
                    continue
                b = brands[int(rng.integers(len(brands)))]
                slots["brand"] = b
                fields["brands_in"] = (b,)
            if "{brand_out}" in template:
                if not brands:
                    continue
                b = brands[int(rng.integers(len(brands)))]
                if b.casefold() in {x.casefold() for x in fields.get("brands_in", ())}:
                    continue
                slots["brand_out"] = b
                fields["brands_out"] = (b,)
            if "{price}" in template:
                if not self.catalog.has_prices:
                    continue
                lo, hi = PRICE_BANDS[int(rng.integers(len(PRICE_BANDS)))]
                ph = price_phrase(lo, hi, int(rng.integers(3)))
                slots["price"] = ph.zh if zh else ph.en
                fields["price_min"], fields["price_max"] = ph.price_min, ph.price_max
            if "{stock}" in template:
                stock = STOCK_ZH if zh else STOCK_EN
                slots["stock"] = stock[int(rng.integers(len(stock)))]
                fields["in_stock"] = True
            utterance = template.format(**slots)
            if utterance in seen:
                continue
            seen.add(utterance)
            gold = _compact(Constraints(**fields).to_dict())
            out.append(
                {
                    "task": "constraints",
                    "split": part,
                    "lang": "zh" if zh else "en",
                    "messages": [
                        *constraint_messages(utterance),
                        {"role": "assistant", "content": json.dumps(gold, ensure_ascii=False)},
                    ],
                    "meta": {"gold": gold, "template": template},
                }
            )
        return out

    def chat(self) -> list[dict]:
        return [
            {
                "task": "chat",
                "split": "train",
                "messages": [
                    {"role": "system", "content": SYSTEM_SHOPPER},
                    {"role": "user", "content": q},
                    {"role": "assistant", "content": a},
                ],
                "meta": {},
            }
            for q, a in GENERIC_CHAT
        ]


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    """``Constraints.to_dict()`` without unconstrained fields (``Constraints.from_dict`` reads it back)."""
    return {k: v for k, v in d.items() if v is not None and v != []}


def _protocols(cfg: GenerateConfig, k: int) -> str:
    if cfg.train_protocol == "mixed":
        return "retrieved" if k % 2 == 0 else "random"
    return cfg.train_protocol


def generate(cfg: GenerateConfig, dataset: Dataset | None = None) -> dict[str, Any]:
    """Write every JSONL file + ``manifest.json`` into ``cfg.out`` (atomically); returns the manifest."""
    out = Path(cfg.out)
    if out.exists() and any(out.iterdir()) and not cfg.overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass --overwrite to replace it")
    ds = dataset if dataset is not None else load_dataset(cfg.data)
    gen = _Generator(cfg, ds)
    pools = gen.partition()
    if not pools["train"]:
        raise ValueError(
            f"dataset {ds.name!r} has no training users after holding out {len(pools['test'])} test and "
            f"{len(pools['dev'])} dev users (users need >= 3 events); lower --test-users/--dev-users"
        )
    files: dict[str, list[dict]] = {f"train_{t}": [] for t in TASKS}
    files.update({f"dev_{t}": [] for t in ("listwise", "rebuy", "sft", "constraints")})
    files.update({name: [] for name in TEST_FILES})

    for part in ("train", "dev"):
        for k, (user, hist, target) in enumerate(tqdm(pools[part], desc=f"{part} examples", leave=False)):
            rec = gen.listwise(user, hist, target, _protocols(cfg, k), part)
            if rec is not None:
                files[f"{part}_listwise"].append(rec)
            if _rng(cfg.seed, "sft-pick", user).random() < cfg.sft_fraction:
                rec = gen.sft(user, hist, target, part)
                if rec is not None:
                    files[f"{part}_sft"].append(rec)
    # Re-buy warm-up: seeded choice of training-pool users (dev: a few dev users for its eval).
    for part, n in (("train", cfg.rebuy), ("dev", min(32, cfg.rebuy // 10))):
        rows = pools[part]
        order = _rng(cfg.seed, "rebuy-pick", part).permutation(len(rows))
        for i in order:
            if len(files[f"{part}_rebuy"]) >= n:
                break
            user, hist, later = rows[int(i)]
            rec = gen.rebuy_example(user, hist, later, part)
            if rec is not None:
                files[f"{part}_rebuy"].append(rec)
    for user, hist, target in tqdm(pools["test"], desc="test examples", leave=False):
        for protocol in LISTWISE_PROTOCOLS:
            rec = gen.listwise(user, hist, target, protocol, "test")
            if rec is not None:
                files[f"test_listwise_{protocol}"].append(rec)
        rec = gen.sft(user, hist, target, "test")
        if rec is not None:
            files["test_sft"].append(rec)
    files["test_constraints"] = gen.constraints(cfg.constraint_test, "test", set())
    test_utts = {r["messages"][1]["content"] for r in files["test_constraints"]}
    n_dev_c = min(32, cfg.constraint_train // 10)
    files["dev_constraints"] = gen.constraints(n_dev_c, "dev", test_utts)
    dev_utts = {r["messages"][1]["content"] for r in files["dev_constraints"]}
    files["train_constraints"] = gen.constraints(cfg.constraint_train, "train", test_utts | dev_utts)
    if cfg.chat:
        files["train_chat"] = gen.chat()

    teacher, teacher_info = _attach_teacher(cfg, files)
    # Every example with a target already passed check_example in _Generator._clean.
    for name, records in files.items():
        for k, rec in enumerate(records):
            rec["id"] = f"{name}-{k:06d}"

    manifest = {
        "generator_version": GENERATOR_VERSION,
        "seed": cfg.seed,
        "config": asdict(cfg),
        "source": {
            "data": str(cfg.data),
            "name": ds.name,
            "summary": ds.summary(),
            "fingerprint_sha256": dataset_fingerprint(ds),
        },
        "split_protocol": SPLIT_PROTOCOL,
        "candidate_source": gen.source.name,
        "users": {part: len(rows) for part, rows in pools.items()},
        "counts": {name: len(records) for name, records in files.items()},
        "skipped": dict(sorted(gen.skipped.items())),
        "teacher": teacher_info,
        "files": {},
    }
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name, records in files.items():
            path = tmp / f"{name}.jsonl"
            _write_jsonl(path, records)
            manifest["files"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        if teacher is not None:
            teacher.save(tmp / TEACHER_FILE)
            manifest["files"][TEACHER_FILE] = hashlib.sha256((tmp / TEACHER_FILE).read_bytes()).hexdigest()
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


TEACHER_FILE = "teacher.json"


def _attach_teacher(cfg: GenerateConfig, files: dict[str, list[dict]]) -> tuple[Any, dict[str, Any] | None]:
    """Fit the teacher on the TRAIN listwise records only and label train + dev records with its
    letter log-probs. Test records are never read by it and never labelled."""
    if cfg.teacher == "none" or len(files["train_listwise"]) < 20:
        return None, None

    teacher = LexicalTeacher.fit(files["train_listwise"])
    for name in ("train_listwise", "dev_listwise"):
        for rec in files[name]:
            rec["meta"]["teacher_logprobs"] = [round(float(v), 4) for v in teacher.log_probs(rec)]
    dev = files["dev_listwise"]
    ranks = [target_rank(teacher.scores(r), LETTERS.index(r["meta"]["target_letter"])) for r in dev]
    return teacher, {
        "kind": cfg.teacher,
        "file": TEACHER_FILE,
        "fitted_on": teacher.fitted_on,
        "train_loss": teacher.train_loss,
        "dev_ndcg@10": round(ranking_metrics(ranks)["ndcg@10"], 4) if dev else None,
    }


def _write_jsonl(path: Path, records: Iterable[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of one generated file; a clear error when the file is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (run `python -m finetune generate` first)")
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc})") from exc
    return out


def read_manifest(data_dir: str | Path) -> dict[str, Any]:
    path = Path(data_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {data_dir} is not a generated data folder")
    return json.loads(path.read_text())
