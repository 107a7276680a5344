"""A misspelt free word -> the catalog's spelling: "shampoo for dandruf" also searches "dandruff",
"deodrant" also "deodorant", "a stapller" also "stapler".

``TitleSpelling.from_titles(titles).corrections(query) -> list[str]``

Brands and product types have their own fuzzy match (``vocabulary``); the other words of a
request reach retrieval as typed, and BM25 finds nothing for "dandruf". A word is corrected only
when it is no word of the embedder's vocabulary (``lexicon.known_words``) and no title word, and
one title word that many titles use (``MIN_TITLES``) is within one edit (two for words of
``LONG_WORD`` letters or more) and starts with the same letter; the nearest, then the most used,
wins. The typed word stays in the query beside the correction. Catalogs whose titles are names
(films, books) are not corrected: a title word there is a name, not a description.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from assistant.understanding import lexicon
from assistant.understanding.cues import build_query
from assistant.understanding.tokens import normalize, stem

MIN_LEN = 5  # shorter words are too often something else one edit away
LONG_WORD = 9
MIN_TITLES = 3


@dataclass(frozen=True)
class TitleSpelling:
    counts: dict[str, int] = field(default_factory=dict)  # title word -> titles using it (all words)
    by_first: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_titles(cls, titles: Iterable[str], brands: Iterable[str] | None = None) -> TitleSpelling:
        return cls.from_title_words((normalize(title).split() for title in titles), brands)

    @classmethod
    def from_title_words(
        cls, titles: Iterable[Iterable[str]], brands: Iterable[str | None] | None = None
    ) -> TitleSpelling:
        """From each title's ``tokens.normalize``d words (the caller may hold them already) and,
        optionally, each title's brand: a title's own brand words are no spelling it offers, so
        "pens that don't smear" is no typo of Smead (a misspelt brand has its own fuzzy match),
        while "foam", which titles of every brand say, stays one."""
        counts: Counter[str] = Counter()
        offered: Counter[str] = Counter()
        titles = [list(words) for words in titles]
        owners = list(brands) if brands is not None else [None] * len(titles)
        for words, brand in zip(titles, owners, strict=True):
            counts.update(set(words))  # every title word, so a caller can read how many titles say it
            spellings = {w for w in words if w.isascii() and w.isalpha()}
            offered.update(spellings - set(normalize(brand or "").split()))
        kept = {w: n for w, n in offered.items() if n >= MIN_TITLES and len(w) >= MIN_LEN - 1}
        by_first: dict[str, list[str]] = {}
        for w in sorted(kept, key=lambda w: (-kept[w], w)):
            by_first.setdefault(w[0], []).append(w)
        return cls(dict(counts), by_first)

    def corrections(self, query: str) -> list[str]:
        """The catalog spellings of the misspelt words of ``query``, in order, each once."""
        out: list[str] = []
        for word in query.split():
            key = word.casefold()
            if (
                len(key) < MIN_LEN
                or not (key.isascii() and key.isalpha())
                or key in self.counts
                or any(k in lexicon.known_words() for k in _forms(key))
            ):
                continue
            limit = 2 if len(key) >= LONG_WORD else 1
            near = process.extract(
                key, self.by_first.get(key[0], ()), scorer=Levenshtein.distance, score_cutoff=limit, limit=None
            )
            if near:
                best = min(near, key=lambda m: (m[1], -self.counts[m[0]]))[0]
                # "shampoos": BM25 folds plurals already; "lookin", "somthing": filler is no search word
                if best not in out and stem(best) != stem(key) and build_query(best, bytearray(len(best))):
                    out.append(best)
        return out


_SUFFIXES = ("ing", "ed", "es", "s", "er", "est", "ly", "y")


def _forms(word: str) -> set[str]:
    """``word`` and the base words it may inflect ("swears" -> "swear", "jamming" -> "jam",
    "smudging" -> "smudge"): the embedder's vocabulary holds base words, and an inflected English
    word is no typo of a title word ("swears" is not "shears")."""
    out = {word, stem(word)}
    for suffix in _SUFFIXES:
        base = word[: -len(suffix)]
        if word.endswith(suffix) and len(base) >= 3:
            out |= {base, base + "e"} | ({base[:-1]} if base[-1] == base[-2] else set())
    return out
