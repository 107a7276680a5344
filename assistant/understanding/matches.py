"""What a vocabulary lookup returns: brand and category matches, ambiguities, mentions in text."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Ambiguous",
    "BrandMatch",
    "CatEntry",
    "CategoryMatch",
    "MatchHow",
    "Mention",
    "drop_descendants",
    "match_score",
    "path_related",
    "path_under",
]

MatchHow = Literal["exact", "alias", "token", "fuzzy", "job"]  # job: a tool named for its job (jobs.py)


@dataclass(frozen=True)
class CatEntry:
    """An indexed category form: the node names it stands for and their paths (any-of)."""

    names: tuple[str, ...]
    paths: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class BrandMatch:
    """One brand, with every catalog spelling of it (filters compare exact strings)."""

    brand: str
    spellings: tuple[str, ...]
    surface: str = ""
    how: MatchHow = "exact"
    score: float = 100.0

    @property
    def kind(self) -> Literal["brand"]:
        return "brand"


@dataclass(frozen=True)
class CategoryMatch:
    """A named node and every catalog path it stands for (any-of)."""

    name: str
    paths: tuple[tuple[str, ...], ...]
    surface: str = ""
    how: MatchHow = "exact"
    score: float = 100.0
    weak: bool = False

    @property
    def kind(self) -> Literal["category"]:
        return "category"


@dataclass(frozen=True)
class Ambiguous:
    """Several readings of one phrase; ``question`` is a ready clarifying question."""

    surface: str
    candidates: tuple[BrandMatch, ...] | tuple[CategoryMatch, ...]
    question: str
    question_zh: str

    @property
    def kind(self) -> str:
        return self.candidates[0].kind

    def union(self) -> BrandMatch | CategoryMatch:
        """The reading a filter uses when nobody asks: all candidates at once."""
        first = self.candidates[0]
        if isinstance(first, BrandMatch):
            spellings = tuple(dict.fromkeys(s for c in self.candidates for s in c.spellings))  # type: ignore[union-attr]
            return BrandMatch(first.brand, spellings, self.surface, first.how, first.score)
        paths = tuple(dict.fromkeys(p for c in self.candidates for p in c.paths))  # type: ignore[union-attr]
        return CategoryMatch(first.name, paths, self.surface, first.how, first.score)


@dataclass(frozen=True)
class Mention:
    """A brand or category found in an utterance, with its character span."""

    start: int
    end: int
    match: BrandMatch | CategoryMatch | Ambiguous

    @property
    def kind(self) -> str:
        return self.match.kind

    @property
    def resolved(self) -> BrandMatch | CategoryMatch:
        m = self.match
        return m.union() if isinstance(m, Ambiguous) else m


def match_score(m: BrandMatch | CategoryMatch | Ambiguous | None) -> float:
    """The match's score (an ambiguity's best candidate); -1 for no match."""
    if m is None:
        return -1.0
    return m.candidates[0].score if isinstance(m, Ambiguous) else m.score


def path_under(p: tuple[str, ...], q: tuple[str, ...]) -> bool:
    """``p`` equals or lies below ``q``."""
    return p[: len(q)] == q


def path_related(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """One path equals or lies below the other."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def drop_descendants(paths: Iterable[tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    """Unique paths without those under another listed path (any-of filters need only the top)."""
    uniq = sorted(set(paths), key=lambda p: (len(p), p))
    kept: list[tuple[str, ...]] = []
    for p in uniq:
        if not any(path_under(p, k) for k in kept):
            kept.append(p)
    return tuple(kept)
