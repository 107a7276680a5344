"""Understanding data: (dialogue state, shopper message) -> the ``ConstraintUpdate`` JSON, per
catalog (``python -m finetune generate --task understand``).

Split protocol (``UNDERSTAND_PROTOCOL`` below is written verbatim into ``manifest.json``):

* Generated inputs: phrasing templates (``finetune.understand_templates``) filled with this
  catalog's vocabulary (``CatalogVocabulary``: real brands, category nodes and their English /
  Chinese aliases, the price patterns' amounts). Labels are exact by construction (the generator
  filled the slots); a product-type label is the set of catalog nodes its surface names, and a
  surface is used only when that set is non-empty.
* Every main template and every sub-phrase pattern (price, reference, soft wish) has an id; the
  ids are shuffled with the seed within (language, kind) and dealt to train/dev/test (3:1:1), so
  a template id appears in exactly one split and dev/test phrasings are never trained on. Catalog
  values (brands, categories, titles in the dialogue state) are shared: the test is of phrasing.
* Test records are generated first, then dev, then train; a dev/train record whose message
  equals a test message (or a train one a dev message) is dropped and counted.
* WebShop instructions (``--webshop``, MIT) are extra inputs: deduplicated, kept when the rules
  find this catalog's product type or brand in them, and dealt to one split each by a seeded
  hash of the text. Labels come from the rules only where they are confident: a price only from
  an explicit "lower/less than N dollars" / "under|below $N" phrase (an instruction with any other
  dollar amount is skipped), a brand only when a catalog brand's exact name is in the text and
  the rules read it (not when the text says "impression of"/"inspired by": a perfume clone
  names the brand it imitates); product types and the query are the rules' reading (training targets only,
  never scored; no soft terms: the rules split them into single words), and ``meta.scored``
  lists the slots evaluation scores on these records (price, currency, brands, references,
  exclude_shown).
* Evaluation selects on dev; test is read once per reported number (``finetune evaluate
  --task understand --split test``).
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.understanding import lexicon
from assistant.understanding.llm_prompt import (
    MAX_SHOWN,
    UnderstandContext,
    understand_messages,
    update_json,
)
from assistant.understanding.matches import Ambiguous
from assistant.understanding.update import ConstraintUpdate
from assistant.understanding.vocabulary import CatalogVocabulary
from finetune.understand_templates import (
    DIGITS_CNY,
    DIGITS_USD,
    NUMBER_WORDS_EN,
    NUMBER_WORDS_ZH,
    PRICE_PATTERNS,
    RANGES_CNY,
    RANGES_USD,
    REF_PATTERNS,
    SOFT_WISHES,
    TEMPLATES,
    PricePattern,
    RefPattern,
    Template,
)
from finetune.understand_webshop import (
    WEBSHOP_SCORED,
    WebShopLabeller,
    norm_text,
    webshop_instructions,
    webshop_splits,
)
from retrieval.data.schema import Dataset
from retrieval.fingerprint import dataset_fingerprint

__all__ = [
    "ALL_SLOTS",
    "SPLITS",
    "UNDERSTAND_PROTOCOL",
    "UnderstandBuilder",
    "assign_splits",
    "generate_understand",
    "webshop_instructions",
]

UNDERSTAND_VERSION = "1.0"
UNDERSTAND_PROTOCOL = __doc__.split("Split protocol", 1)[1].split("\n\n", 1)[1].strip()  # type: ignore[union-attr]
SPLITS = ("train", "dev", "test")
ALL_SLOTS = tuple(ConstraintUpdate.model_fields)
_MAX_STR = 32  # llm.constrained bounds every string and list: a label must fit the grammar
_MAX_ITEMS = 3


def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    return np.random.default_rng([seed] + [zlib.crc32(str(k).encode()) for k in keys])


def assign_splits(ids_by_group: dict[str, list[str]], seed: int) -> dict[str, str]:
    """Each id -> one split: shuffled with the seed within its group, dealt 3:1:1 (a group of
    three or more gets at least one id in each split)."""
    out: dict[str, str] = {}
    for group in sorted(ids_by_group):
        ids = sorted(ids_by_group[group])
        order = _rng(seed, "split", group).permutation(len(ids))
        ids = [ids[i] for i in order]
        n = len(ids)
        n_test = max(1, round(n / 5)) if n >= 3 else 0
        n_dev = max(1, round(n / 5)) if n >= 3 else 0
        for k, i in enumerate(ids):
            out[i] = "test" if k < n_test else "dev" if k < n_test + n_dev else "train"
    return out


def template_splits(seed: int) -> dict[str, str]:
    groups: dict[str, list[str]] = defaultdict(list)
    for t in TEMPLATES:
        groups[f"{t.lang}:{t.kind}"].append(t.id)
    for p in PRICE_PATTERNS:
        groups[f"{p.lang}:price-{p.op}"].append(p.id)
    for r in REF_PATTERNS:
        groups[f"{r.lang}:ref"].append(r.id)
    for s in SOFT_WISHES:
        groups[f"{s.lang}:soft"].append(s.id)
    return assign_splits(groups, seed)


# ------------------------------------------------------------------------------------------------
# Catalog slots
# ------------------------------------------------------------------------------------------------


def _paths(vocab: CatalogVocabulary, name: str) -> tuple[tuple[str, ...], ...]:
    m = vocab.match_category(name)
    if m is None or getattr(m, "how", "exact") == "fuzzy":
        return ()
    m = m.union() if isinstance(m, Ambiguous) else m
    return tuple(sorted(set(m.paths)))  # type: ignore[union-attr]


def _names(paths: Sequence[tuple[str, ...]]) -> list[str]:
    return list(dict.fromkeys(p[-1] for p in paths))


class CatalogSlots:
    """The fillers one catalog offers: (surface, label names) for product types per language,
    brand display names, titles for the dialogue state."""

    def __init__(self, ds: Dataset, vocab: CatalogVocabulary):
        self.vocab = vocab
        self.currency = ds.currency if ds.catalog.has_prices else None
        self.has_prices = ds.catalog.has_prices
        self.cats: dict[str, list[tuple[str, list[str]]]] = {"en": [], "zh": []}
        seen: set[str] = set()
        depth_ok = {p[-1] for p in ds.catalog.category_paths() if len(p) >= 3}
        for name in vocab.category_names:
            if name not in depth_ok or len(name) > 24:
                continue
            self._add("en", name.lower(), seen)
        for alias in lexicon.aliases("vocabulary", "category_aliases_en"):
            self._add("en", alias, seen)
        for alias in lexicon.aliases("vocabulary", "category_aliases_zh"):
            self._add("zh", alias, seen)
        counts = Counter(it.brand for it in ds.catalog if it.brand and it.brand.strip())
        brands = []
        for b, n in counts.most_common():
            if n < 3 or len(b) > 24 or not re.fullmatch(r"[A-Za-z0-9][\w '&.-]*", b):
                continue
            m = vocab.match_brand(b)
            if m is None or isinstance(m, Ambiguous) or m.how != "exact":
                continue
            brands.append(b)
            if len(brands) >= 300:
                break
        self.brands = brands
        zh_brands: dict[str, list[str]] = defaultdict(list)
        for alias, targets in lexicon.aliases("vocabulary", "brand_aliases_zh").items():
            for t in targets:
                if t in set(brands):
                    zh_brands[t].append(alias)
                    break
        self.zh_brands = dict(zh_brands)
        self.titles = [it.title for it in ds.catalog if it.title and len(it.title) > 8]
        known = set(brands)
        self._makers: dict[str, Counter[str]] = defaultdict(Counter)
        for it in ds.catalog:
            if it.brand in known and it.categories:
                self._makers[it.categories[-1]][it.brand] += 1

    def brands_of(self, names: Sequence[str]) -> list[str]:
        """Catalog brands with items under these node names (most items first)."""
        c: Counter[str] = Counter()
        for n in names:
            c.update(self._makers.get(n, Counter()))
        return [b for b, _ in c.most_common(30)]

    def _add(self, lang: str, surface: str, seen: set[str]) -> None:
        key = f"{lang}:{surface}"
        if key in seen:
            return
        paths = _paths(self.vocab, surface)
        names = _names(paths)
        # The label names must stand for exactly the nodes the surface names (exact labels).
        if not paths or len(names) > _MAX_ITEMS or any(len(n) > _MAX_STR for n in names):
            return
        back = tuple(sorted({p for n in names for p in _paths(self.vocab, n)}))
        if back != paths:
            return
        seen.add(key)
        self.cats[lang].append((surface, names))


# ------------------------------------------------------------------------------------------------
# Records
# ------------------------------------------------------------------------------------------------


@dataclass
class _Draft:
    """A record being filled: the message so far, its label, query words, slot values, ids."""

    text: str
    label: dict[str, Any]
    query: list[str]
    slots: dict[str, Any]
    ids: list[str]
    n_shown: int = 0


class UnderstandBuilder:
    """Builds generated and WebShop records for one catalog."""

    def __init__(self, ds: Dataset, seed: int, zh_fraction: float = 0.35):
        self.ds = ds
        self.seed = seed
        self.zh_fraction = zh_fraction
        self.vocab = CatalogVocabulary.from_catalog(ds.catalog)
        self.slots = CatalogSlots(ds, self.vocab)
        self.splits = template_splits(seed)
        self.skipped: Counter[str] = Counter()
        self.labeller = WebShopLabeller(ds, self.vocab, self.slots.currency, self.skipped)
        self.by_split: dict[str, dict[str, list[Any]]] = {s: defaultdict(list) for s in SPLITS}
        for t in TEMPLATES:
            self.by_split[self.splits[t.id]][f"t:{t.lang}"].append(t)
        for p in PRICE_PATTERNS:
            self.by_split[self.splits[p.id]][f"p:{p.lang}"].append(p)
        for r in REF_PATTERNS:
            self.by_split[self.splits[r.id]][f"r:{r.lang}"].append(r)
        for s in SOFT_WISHES:
            self.by_split[self.splits[s.id]][f"s:{s.lang}"].append(s)

    # --- generated --------------------------------------------------------------------------------
    def generated(self, split: str, n: int, avoid: set[str]) -> list[dict]:
        out: list[dict] = []
        rng = _rng(self.seed, "understand", split)
        tries = 0
        while len(out) < n and tries < n * 30:
            tries += 1
            lang = "zh" if rng.random() < self.zh_fraction else "en"
            pool = self.by_split[split][f"t:{lang}"]
            if not pool:
                continue
            template = pool[int(rng.integers(len(pool)))]
            rec = self._fill(template, split, rng)
            if rec is None:
                continue
            key = norm_text(rec["meta"]["message"])
            if key in avoid:
                self.skipped[f"{split}_duplicate_or_heldout_message"] += 1
                continue
            avoid.add(key)
            out.append(rec)
        return out

    def _pick(self, rng: np.random.Generator, seq: Sequence[Any]) -> Any:
        return seq[int(rng.integers(len(seq)))]

    def _fill(self, t: Template, split: str, rng: np.random.Generator) -> dict | None:
        s, lang = self.slots, t.lang
        d = _Draft(t.text, dict(t.flags), [], {}, [t.id])
        if ("{brand}" in d.text or "{brand_out}" in d.text) and not s.brands:
            return None
        cat_pick = self._pick(rng, s.cats[lang]) if "{cat}" in d.text and s.cats[lang] else None
        if not (
            self._fill_brands(d, lang, rng, cat_pick)
            and self._fill_soft_and_types(d, split, lang, rng, cat_pick)
            and self._fill_price_and_ref(d, split, lang, rng)
        ):
            return None
        if t.kind in ("relative", "reference", "rejection"):
            d.n_shown = d.n_shown or int(rng.integers(3, MAX_SHOWN + 1))
        elif rng.random() < 0.5:
            d.n_shown = int(rng.integers(2, MAX_SHOWN + 1))
        q = " ".join(d.query)
        if q:
            if len(q) > _MAX_STR:
                self.skipped["query_too_long"] += 1
                return None
            d.label["query"] = q
        context = self._context(rng, d.n_shown)
        return self._record(d.text, d.label, split, context, "generated", d.ids, lang, d.slots)

    def _fill_brands(self, d: _Draft, lang: str, rng: np.random.Generator, cat_pick: Any) -> bool:
        """``{brand}`` (mostly a maker of the picked product type) and ``{brand_out}``; in Chinese
        sometimes by the brand's Chinese name (the label keeps the catalog spelling)."""
        s = self.slots
        for slot, field_name in (("{brand}", "brands_include"), ("{brand_out}", "brands_exclude")):
            if slot not in d.text:
                continue
            if slot == "{brand}":
                makers = s.brands_of(cat_pick[1]) if cat_pick else []
                b = self._pick(rng, makers) if makers and rng.random() < 0.8 else self._pick(rng, s.brands)
            else:
                b = self._pick(rng, s.brands)
                if b in d.label.get("brands_include", []):
                    return False
            said = b
            if lang == "zh" and b in s.zh_brands and rng.random() < 0.5:
                said = self._pick(rng, s.zh_brands[b])
            d.text = d.text.replace(slot, said)
            d.label[field_name] = [b]
            if slot == "{brand}":
                d.query.append(said)
            d.slots[slot.strip("{}")] = b
        return True

    def _fill_soft_and_types(
        self, d: _Draft, split: str, lang: str, rng: np.random.Generator, cat_pick: Any
    ) -> bool:
        s = self.slots
        if "{soft}" in d.text:
            pool = self.by_split[split][f"s:{lang}"]
            if not pool:
                return False
            w = self._pick(rng, pool)
            d.text = d.text.replace("{soft}", w.text)
            d.label["soft_terms"] = [w.term]
            d.query.append(w.term)
            d.ids.append(w.id)
        for slot, field_name in (("{cat}", "categories_include"), ("{cat_out}", "categories_exclude")):
            if slot in d.text:
                if not s.cats[lang]:
                    return False
                surface, names = cat_pick if slot == "{cat}" and cat_pick else self._pick(rng, s.cats[lang])
                if field_name == "categories_exclude" and names == d.label.get("categories_include"):
                    return False
                d.text = d.text.replace(slot, surface)
                d.label[field_name] = names
                if field_name == "categories_include":
                    d.query.append(surface)
                d.slots[slot.strip("{}")] = surface
        return True

    def _fill_price_and_ref(self, d: _Draft, split: str, lang: str, rng: np.random.Generator) -> bool:
        if "{price}" in d.text:
            pool = self.by_split[split][f"p:{lang}"]
            if not self.slots.has_prices or not pool:
                return False
            p: PricePattern = self._pick(rng, pool)
            phrase, fields = self._price(p, lang, rng)
            d.text = d.text.replace("{price}", phrase)
            d.label.update(fields)
            d.ids.append(p.id)
        if "{ref}" in d.text:
            pool = self.by_split[split][f"r:{lang}"]
            if not pool:
                return False
            r: RefPattern = self._pick(rng, pool)
            k = self._pick(rng, sorted(r.forms))
            d.n_shown = int(rng.integers(max(3, k), MAX_SHOWN + 1))
            d.text = d.text.replace("{ref}", r.forms[k])
            d.label["references"] = (
                [d.n_shown] if r.kind == "last" else list(range(1, k + 1)) if r.kind == "first_n" else [k]
            )
            d.ids.append(r.id)
        return True

    def _price(self, p: PricePattern, lang: str, rng: np.random.Generator) -> tuple[str, dict[str, Any]]:
        cny = p.currency == "CNY"
        if p.op == "range":
            lo, hi = self._pick(rng, RANGES_CNY if cny else RANGES_USD)
            return p.text.format(lo=lo, hi=hi), {
                "price_min": float(lo),
                "price_max": float(hi),
                **({"currency": p.currency} if p.currency else {}),
            }
        if p.words:
            table = NUMBER_WORDS_ZH if lang == "zh" else NUMBER_WORDS_EN
            n = self._pick(rng, sorted(table))
            phrase = p.text.format(w=table[n])
        else:
            n = self._pick(rng, DIGITS_CNY if cny else DIGITS_USD)
            phrase = p.text.format(n=n)
        key = "price_max" if p.op == "max" else "price_min"
        return phrase, {key: float(n), **({"currency": p.currency} if p.currency else {})}

    def _context(self, rng: np.random.Generator, n_shown: int) -> UnderstandContext:
        s = self.slots
        cats: tuple[str, ...] = ()
        if s.cats["en"] and rng.random() < 0.5:
            cats = tuple(self._pick(rng, s.cats["en"])[1][:1])
        brands = (self._pick(rng, s.brands),) if s.brands and rng.random() < 0.25 else ()
        hi = float(self._pick(rng, DIGITS_USD)) if s.has_prices and rng.random() < 0.3 else None
        shown: tuple[str, ...] = ()
        if n_shown and s.titles:
            idx = rng.choice(len(s.titles), size=n_shown, replace=False)
            shown = tuple(s.titles[int(i)] for i in idx)
        return UnderstandContext(categories=cats, brands=brands, price_max=hi, shown=shown)

    def _record(
        self,
        message: str,
        label: dict[str, Any],
        split: str,
        context: UnderstandContext,
        source: str,
        template_ids: list[str],
        lang: str,
        slots: dict[str, Any],
        scored: Sequence[str] = ALL_SLOTS,
    ) -> dict | None:
        try:
            target = update_json(ConstraintUpdate.model_validate(label))
        except ValueError:
            self.skipped["label_invalid"] += 1
            return None
        return {
            "task": "understand",
            "split": split,
            "messages": [
                *understand_messages(message, self.slots.currency, context),
                {"role": "assistant", "content": target},
            ],
            "meta": {
                "source": source,
                "template": template_ids[0],
                "template_ids": template_ids,
                "lang": lang,
                "slots": slots,
                "message": message,
                "n_shown": len(context.shown),
                "gold": json.loads(target),
                "scored": list(scored),
            },
        }

    # --- WebShop ----------------------------------------------------------------------------------
    def webshop(self, instructions: Sequence[str], split_of: dict[str, str]) -> dict[str, list[dict]]:
        """Records for the instructions of this catalog's domain, by split (labels: see the protocol)."""
        out: dict[str, list[dict]] = {s: [] for s in SPLITS}
        for text in instructions:
            split = split_of.get(norm_text(text))
            if split is None:
                continue
            label = self.labeller.label(text)
            if label is None:
                continue
            rng = _rng(self.seed, "webshop-context", text)
            context = self._context(rng, 0)
            rec = self._record(text, label, split, context, "webshop", ["webshop"], "en", {}, WEBSHOP_SCORED)
            if rec is not None:
                out[split].append(rec)
        return out


# ------------------------------------------------------------------------------------------------
# generate --task understand
# ------------------------------------------------------------------------------------------------

HAND_CHECK_FILE = Path(__file__).parent / "configs" / "understand-webshop-check.json"
"""The record of the hand check of WebShop labels (counts, disagreements, who checked), copied
into the manifest; it names checked records by a hash of their text, never by the text."""


def generate_understand(cfg: Any, dataset: Dataset | None = None) -> dict[str, Any]:
    """Write ``{train,dev,test}_understand.jsonl`` + ``manifest.json`` into ``cfg.out``."""
    from finetune.data import _write_folder
    from retrieval.data.registry import load_dataset

    out = Path(cfg.out)
    if out.exists() and any(out.iterdir()) and not cfg.overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass --overwrite to replace it")
    ds = dataset if dataset is not None else load_dataset(cfg.data)
    b = UnderstandBuilder(ds, cfg.seed, cfg.zh_fraction)
    counts = {"test": cfg.understand_test, "dev": cfg.understand_dev, "train": cfg.understand_train}
    files: dict[str, list[dict]] = {}
    avoid: set[str] = set()
    for split in ("test", "dev", "train"):  # held-out first: later splits skip their messages
        files[f"{split}_understand"] = b.generated(split, counts[split], avoid)
    webshop_info: dict[str, Any] | None = None
    if cfg.webshop:
        instructions = webshop_instructions(cfg.webshop)
        split_of = webshop_splits(instructions, cfg.seed)
        ws = b.webshop(instructions, split_of)
        caps = {"test": cfg.webshop_test, "dev": cfg.webshop_dev, "train": cfg.webshop_train}
        for split in SPLITS:
            recs = ws[split][: caps[split]]
            files[f"{split}_understand"] += recs
        webshop_info = {
            "folder": str(cfg.webshop),
            "licence": "MIT (princeton-nlp/WebShop)",
            "instructions_unique": len(instructions),
            "records": {s: min(len(ws[s]), caps[s]) for s in SPLITS},
            "available": {s: len(ws[s]) for s in SPLITS},
            "scored_slots": list(WEBSHOP_SCORED),
            "hand_check": json.loads(HAND_CHECK_FILE.read_text()) if HAND_CHECK_FILE.is_file() else None,
        }
    for name, records in files.items():
        for k, rec in enumerate(records):
            rec["id"] = f"{name}-{k:06d}"
    split_ids = {
        s: sorted({i for r in files[f"{s}_understand"] for i in r["meta"]["template_ids"]} - {"webshop"})
        for s in SPLITS
    }
    manifest = {
        "task": "understand",
        "generator_version": UNDERSTAND_VERSION,
        "seed": cfg.seed,
        "config": asdict(cfg),
        "source": {
            "data": str(cfg.data),
            "name": ds.name,
            "currency": b.slots.currency,
            "fingerprint_sha256": dataset_fingerprint(ds),
            "brands": len(b.slots.brands),
            "category_surfaces": {k: len(v) for k, v in b.slots.cats.items()},
        },
        "split_protocol": UNDERSTAND_PROTOCOL,
        "template_ids": split_ids,
        "counts": {name: len(r) for name, r in files.items()},
        "counts_by_source": {
            name: dict(Counter(r["meta"]["source"] for r in recs)) for name, recs in files.items()
        },
        "counts_by_lang": {
            name: dict(Counter(r["meta"]["lang"] for r in recs)) for name, recs in files.items()
        },
        "skipped": dict(sorted(b.skipped.items())),
        "webshop": webshop_info,
        "files": {},
    }
    _write_folder(out, files, manifest, None)
    return manifest
