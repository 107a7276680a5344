"""The record builders of ``finetune.data.generate``: one leakage-checked example record per call
(listwise and re-buy letter prompts, conversational SFT, generic chat), and
``check_example``, the leakage check every listwise and SFT record passes before it is written."""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from finetune.arguments import GenerateConfig
from finetune.candidates import CandidateSampler, make_candidate_source
from finetune.templates import (
    GENERIC_CHAT,
    REPLY_OPENERS,
    REQUEST_TEMPLATES,
    price_band,
    price_phrase,
)
from llm.listwise import (
    CANDIDATES_HEADER,
    LETTERS,
    SYSTEM_SHOPPER,
    format_price,
    listwise_messages,
    parse_listwise_prompt,
    render_card,
    short_title,
)
from retrieval.data import leave_one_out
from retrieval.data.schema import Catalog, Dataset, Item
from retrieval.filters import Constraints


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


class RecordBuilder:
    """Builds one example record at a time (listwise, re-buy, SFT, chat) for ``generate``."""

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
