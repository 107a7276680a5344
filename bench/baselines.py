"""No-ML baselines for the conversation bench: what a filter or a keyword match alone achieves.

Each baseline reads what a turn-by-turn system may know (the shopper's utterances so far, the
constraints the shopper stated so far, the shopper's history, the items already shown) and
returns the ``k`` item ids to show:

* ``filter+popularity``: catalog items that satisfy the stated hard constraints
  (``retrieval.filters.Constraints.matches``), minus the shopper's history and every item
  already shown in this dialogue, in descending training popularity (interaction count in the
  systems' train+valid split; ties: catalog order).
* ``filter+random``: the same candidates in a seeded random order (one permutation of the
  catalog per dialogue, from ``(seed, user_id)``).
* ``keyword+popularity``: no filter; every non-filler word the shopper said so far (the product
  type included) is matched by token overlap against each item's title and category names (so
  a product type the titles leave out, "drama", still matches); items with more distinct
  matching words first, then popularity; history and shown items dropped.

The "stated constraints" are the simulator's own record of what the shopper said
(``SimTurn.constraints``), not a parse of the text: the filter baselines are given a perfect
parser, which makes them an upper bound for what filtering alone can do.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from retrieval.data.schema import Catalog, Interactions
from retrieval.filters import Constraints
from retrieval.lexical import STOPWORDS
from retrieval.text import tokenize

BASELINES = ("filter+popularity", "filter+random", "keyword+popularity")
# Conversational words a shopper uses around the product words ("I'm looking for ..., something
# cheaper"); a 30-line keyword system would drop them too. Content words are never listed here.
_FILLER_WORDS = """
    im looking look want wanted need needs would like please show me some something anything
    can could you recommend find get give other options option different ones one more less else
    not no these those them too very really quite much bit little cheaper premium expensive pricey
    price priced cost costs budget about around under over below above dollars dollar usd second
    first third fourth fifth next none kind sort type maybe also just again instead rather good nice
    what which shopping buy buying idea ideas prefer preferably should thats its
"""
FILLER = frozenset(_FILLER_WORDS.split())


def popularity_counts(interactions: Interactions) -> dict[str, int]:
    """Training popularity: events per item in the interactions the systems see."""
    counts = interactions.frame["item_id"].astype(str).value_counts()
    return {str(i): int(c) for i, c in counts.items()}


def content_words(text: str) -> list[str]:
    """The words of an utterance a keyword matcher uses: not stop words, filler or bare numbers."""
    return [
        t
        for t in tokenize(text)
        if t not in STOPWORDS and t not in FILLER and not t.isdigit() and not (len(t) == 1 and t.isascii())
    ]


@dataclass
class BaselineRequest:
    """What a baseline may know at one turn of one dialogue."""

    user_id: str
    utterances: Sequence[str]  # everything the shopper said so far, this turn last
    stated: Constraints  # the hard constraints the shopper stated so far (the simulator's record)
    history: Sequence[str] = ()
    shown: Sequence[str] = ()  # every item shown earlier in this dialogue
    k: int = 5


@dataclass
class Baselines:
    """The three baselines over one catalog and one popularity count (built once per run)."""

    catalog: Catalog
    popularity: dict[str, int]
    seed: int = 0
    _pop: np.ndarray = field(init=False, repr=False)
    _pop_order: list[int] = field(init=False, repr=False)
    _postings: dict[str, list[int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        pops = np.array([self.popularity.get(it.item_id, 0) for it in self.catalog], dtype=float)
        self._pop = pops
        self._pop_order = [int(i) for i in np.argsort(-pops, kind="stable")]
        postings: dict[str, list[int]] = defaultdict(list)
        for row, it in enumerate(self.catalog):
            for tok in set(tokenize(" ".join([it.title, *it.categories]))):
                postings[tok].append(row)
        self._postings = dict(postings)

    def recommend(self, name: str, req: BaselineRequest) -> list[str]:
        """The ``req.k`` ids baseline ``name`` shows for this turn."""
        if name == "filter+popularity":
            return self._filtered(self._pop_order, req)
        if name == "filter+random":
            rng = np.random.default_rng(zlib.crc32(f"{self.seed}:{req.user_id}".encode()))
            return self._filtered([int(i) for i in rng.permutation(len(self.catalog))], req)
        if name == "keyword+popularity":
            return self._keyword(req)
        raise ValueError(f"unknown baseline {name!r}; choose from {list(BASELINES)}")

    def _filtered(self, order: Sequence[int], req: BaselineRequest) -> list[str]:
        drop = {*req.history, *req.shown}
        out: list[str] = []
        for row in order:
            it = self.catalog.at(row)
            if it.item_id not in drop and req.stated.matches(it):
                out.append(it.item_id)
                if len(out) == req.k:
                    break
        return out

    def _keyword(self, req: BaselineRequest) -> list[str]:
        words = {w for u in req.utterances for w in content_words(u)}
        overlap = np.zeros(len(self.catalog), dtype=float)
        for w in words:
            for row in self._postings.get(w, ()):
                overlap[row] += 1.0
        # Overlap first, popularity second, catalog order last (lexsort: last key is primary).
        order = np.lexsort((np.arange(len(self.catalog)), -self._pop, -overlap))
        drop = {*req.history, *req.shown}
        out: list[str] = []
        for row in order:
            iid = self.catalog.at(int(row)).item_id
            if iid not in drop:
                out.append(iid)
                if len(out) == req.k:
                    break
        return out
