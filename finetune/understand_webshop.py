"""WebShop instructions as extra inputs of the understanding task: which ones join (this
catalog's domain), which split each goes to (by request), and their labels, taken from the rules
only where the rules are confident (see ``finetune.understand``'s split protocol)."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.understanding.llm_prompt import update_from_parse
from assistant.understanding.parser import parse
from assistant.understanding.vocabulary import CatalogVocabulary
from retrieval.data.schema import Dataset

__all__ = ["WEBSHOP_SCORED", "WebShopLabeller", "norm_text", "webshop_instructions", "webshop_splits"]

WEBSHOP_SCORED = (
    "price_min",
    "price_max",
    "currency",
    "brands_include",
    "brands_exclude",
    "exclude_shown",
    "references",
)
"""Slots a WebShop record's label is trusted on (explicit price phrases, exact catalog brands;
a one-shot instruction rejects no page and points at no shown item)."""
_MAX_STR = 32  # llm.constrained's bounds: a label must fit the grammar
_MAX_ITEMS = 3


def norm_text(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _names(paths: Sequence[tuple[str, ...]]) -> list[str]:
    return list(dict.fromkeys(p[-1] for p in paths))


class WebShopLabeller:
    """Confident labels of WebShop instructions in one catalog; skips are counted in ``skipped``."""

    def __init__(self, ds: Dataset, vocab: CatalogVocabulary, currency: str | None, skipped: Counter[str]):
        self.ds = ds
        self.vocab = vocab
        self.currency = currency
        self.skipped = skipped
        self._word_brand: dict[str, bool] = {}

    def label(self, text: str) -> dict[str, Any] | None:
        """The confident label of one instruction, or None (not this catalog's domain, or a price
        the rules cannot be trusted on); counted in ``skipped``."""
        parsed = parse(text, self.vocab, self.currency)
        if not parsed.categories_in:
            self.skipped["webshop_other_domain"] += 1
            return None
        label: dict[str, Any] = {}
        explicit = _EXPLICIT_PRICE.search(text)
        dollars = _ANY_DOLLARS.findall(text)
        if explicit and len(dollars) == 1:
            label["price_max"] = float(explicit.group(1))
            label["currency"] = "USD"
        elif dollars or (parsed.price is not None):
            self.skipped["webshop_unclear_price"] += 1
            return None
        brands = [
            b
            for b in update_from_parse(parsed).brands_include
            if re.search(rf"(?<!\w){re.escape(b)}(?!\w)", text, re.IGNORECASE) and self._brandlike(b)
        ]
        if brands and not _IMITATION.search(text):
            label["brands_include"] = brands[:_MAX_ITEMS]
        names = _names(parsed.categories_in)
        if names and len(names) <= _MAX_ITEMS and all(len(n) <= _MAX_STR for n in names):
            label["categories_include"] = names
        query = _cut(parsed.query, _MAX_STR)
        if query:
            label["query"] = query
        return label

    def _brandlike(self, brand: str) -> bool:
        """A multi-word brand name, or a single word the catalog uses mostly as this brand's name
        (its own items outnumber 5:1 the other brands' titles that contain the word: "Revlon"
        yes, "Macadamia" or "Omega" no)."""
        if len(brand.split()) > 1:
            return True
        if brand not in self._word_brand:
            pat = re.compile(rf"(?<!\w){re.escape(brand.casefold())}(?!\w)")
            own = sum(1 for it in self.ds.catalog if (it.brand or "").casefold() == brand.casefold())
            other = sum(
                1
                for it in self.ds.catalog
                if it.title
                and (it.brand or "").casefold() != brand.casefold()
                and pat.search(it.title.casefold())
            )
            self._word_brand[brand] = own >= 5 * max(other, 1) or (own >= 1 and other == 0)
        return self._word_brand[brand]


# "dior ambre nuit impression perfume": the brand names the scent imitated, not the maker
# (found in the first hand check: 6 of 17 brand labels).
_IMITATION = re.compile(r"\b(?:impressions?|inspired by|dupes?|alternative to|version of)\b", re.I)
_EXPLICIT_PRICE = re.compile(
    r"(?:(?:lower|less) than|under|below)\s+\$?\s?(\d+(?:\.\d{1,2})?)\s*(?:dollars|usd|\$)?", re.I
)
_ANY_DOLLARS = re.compile(r"\$\s?\d|\d+(?:\.\d+)?\s*(?:dollars|usd|bucks)\b", re.I)


def _cut(text: str, n: int) -> str:
    words, out = text.split(), ""
    for w in words:
        nxt = f"{out} {w}".strip()
        if len(nxt) > n:
            break
        out = nxt
    return out


def webshop_instructions(folder: str | Path) -> list[str]:
    """The unique WebShop instructions (``human_goals.json``), whitespace-normalised, in file order."""
    data = json.loads((Path(folder) / "human_goals.json").read_text())
    seen: set[str] = set()
    out = []
    for s in data:
        if not isinstance(s, str):
            continue
        text = " ".join(s.split())
        if text and norm_text(text) not in seen:
            seen.add(norm_text(text))
            out.append(text)
    return out


def webshop_splits(instructions: Sequence[str], seed: int) -> dict[str, str]:
    """Each instruction (normalised) -> one split, by a seeded hash (3:1:1)."""
    out = {}
    for text in instructions:
        h = int(hashlib.sha256(f"{seed}:{norm_text(text)}".encode()).hexdigest()[:8], 16) % 5
        out[norm_text(text)] = "test" if h == 0 else "dev" if h == 1 else "train"
    return out
