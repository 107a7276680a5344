"""Category names typed in full ("Creams, Gels & Lotions", "hair care shampoos") and how several
category mentions combine ("face" + "moisturizer" refines; "lipstick and nail polish" is any-of)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from assistant.understanding.matches import CategoryMatch, Mention, drop_descendants
from assistant.understanding.tokens import normalize, stem, stem_phrase
from assistant.understanding.vocabulary import TITLE_MIN_SHARE, CatalogVocabulary
from retrieval.text import LATIN_WORD, STOPWORDS

__all__ = [
    "exact_category_names",
    "modified_elsewhere",
    "names_current_type",
    "refine_categories",
    "restated_types",
]

_WORD_BEFORE = re.compile(r"([A-Za-z][\w'-]*)[\s-]*$")
_QUALITY_END = frozenset(["free", "less", "proof", "resistant", "safe", "friendly"])  # "oil free", "smudge proof"


def modified_elsewhere(vocab: CatalogVocabulary, text: str, m: Mention) -> bool:
    """Is the kind said with a word that moves it out of its nodes? "a hair mask": 57% of the
    titles that say mask sit under the face and eye masks "mask" names, 9% of those that say hair
    and mask (hair treatments, conditioners). Only where the kind's word alone names its nodes and
    the pair's share is under a quarter of it; "oil free foundation" is a foundation ("free" ends
    a quality), "a red lipstick", "a face mask" stay where they are."""
    word = _WORD_BEFORE.search(text[max(0, m.start - 30) : m.start])
    if word is None or not isinstance(m.resolved, CategoryMatch):
        return False
    if (modifier := word.group(1).casefold()) in STOPWORDS or modifier in _QUALITY_END:
        return False
    alone = vocab.title_share(m.resolved.surface, m.resolved.paths)
    pair = vocab.title_share(f"{modifier} {m.resolved.surface}", m.resolved.paths)
    return alone is not None and pair is not None and alone >= TITLE_MIN_SHARE and pair < alone / 4


@dataclass(frozen=True)
class _Tree:
    """Per-vocabulary lookups for exact category names (built once per vocabulary)."""

    by_key: dict[str, tuple[tuple[str, ...], ...]]  # stemmed name / "parent name" -> paths
    leaves: frozenset[tuple[str, ...]]
    listed: tuple[tuple[re.Pattern[str], str, tuple[tuple[str, ...], ...]], ...]  # names with "," or "/"


_TREES: dict[int, tuple[CatalogVocabulary, _Tree]] = {}


def _name_key(text: str) -> str:
    return stem_phrase(normalize(text))


def _spelled(name: str) -> str:
    return re.escape(name).replace(r"\&", r"(?:&|and)")


def _tree(vocab: CatalogVocabulary) -> _Tree:
    hit = _TREES.get(id(vocab))
    if hit is not None and hit[0] is vocab:
        return hit[1]
    paths = {p for ps in vocab.nodes.values() for p in ps}
    by_key: dict[str, list[tuple[str, ...]]] = {}
    for p in paths:
        by_key.setdefault(_name_key(p[-1]), []).append(p)
        if len(p) >= 2:
            by_key.setdefault(_name_key(f"{p[-2]} {p[-1]}"), []).append(p)
    parents = {p[:-1] for p in paths}
    listed = tuple(
        (re.compile(rf"(?<!{LATIN_WORD}){_spelled(name)}(?!{LATIN_WORD})", re.I), name, ps)
        for name, ps in vocab.nodes.items()
        if re.search(r"[,/]", name)
    )
    tree = _Tree({k: tuple(sorted(v)) for k, v in by_key.items()}, frozenset(paths - parents), listed)
    if len(_TREES) > 16:
        _TREES.clear()
    _TREES[id(vocab)] = (vocab, tree)
    return tree


def exact_category_names(vocab: CatalogVocabulary, text: str, mentions: list[Mention]) -> list[Mention]:
    """Read a category name typed in full as exactly that node.

    * A node name with a list separator ("Creams, Gels & Lotions") typed verbatim is one
      mention (the vocabulary splits mentions at commas).
    * A phrase equal to a node's full name, or its parent's name + its name, keeps only the
      nodes so named when it would otherwise also take nodes matched by one part of a longer
      name: their ancestors ("wigs" is the node Wigs, not "Hair Extensions & Wigs") always,
      other nodes when the phrase has several words ("hair care shampoos" is not "Shampoo &
      Conditioner Sets"); a one-word phrase keeps its wider reading ("moisturizer").
    * A generic word alone ("washes", "fluids") still refines a stronger mention, but when the
      utterance has no strong category and the word is the full name of leaf nodes only (a
      product type, unlike "face" or "body"), it names those nodes - a filter only when the
      catalog's titles agree (``CatalogVocabulary.category_confident``: "washes" is not).
    """
    tree = _tree(vocab)
    out: list[Mention] = []
    taken: list[tuple[int, int]] = []
    for pat, name, paths in tree.listed:
        for m in pat.finditer(text):
            taken.append(m.span())
            out.append(Mention(m.start(), m.end(), CategoryMatch(name, paths, m.group(), "exact", 100.0)))
    for m in mentions:
        if any(a < m.end and m.start < b for a, b in taken):
            continue
        r = m.resolved
        if isinstance(r, CategoryMatch):
            surface = text[m.start : m.end].strip(" .")
            exact = tree.by_key.get(_name_key(surface), ())
            if exact:
                others = [p for p in r.paths if p not in exact]
                below = [e for e in exact if any(e[: len(p)] == p for p in r.paths)]
                several_words = len(normalize(surface).split()) > 1
                if r.weak:
                    if exact and all(e in tree.leaves for e in exact):
                        m = Mention(m.start, m.end, replace(r, paths=exact, weak=True))
                elif below and (several_words or all(any(e[: len(o)] == o for e in below) for o in others)):
                    m = Mention(m.start, m.end, replace(r, paths=tuple(below)))
        out.append(m)
    if not any(isinstance(m.resolved, CategoryMatch) and not m.resolved.weak for m in out):
        out = [
            Mention(m.start, m.end, replace(m.resolved, weak=False))
            if isinstance(m.resolved, CategoryMatch)
            and m.resolved.weak
            and tree.by_key.get(_name_key(text[m.start : m.end].strip(" ."))) == m.resolved.paths
            and all(p in tree.leaves for p in m.resolved.paths)
            else m
            for m in out
        ]
    return sorted(out, key=lambda m: m.start)


def refine_categories(strong: list[CategoryMatch], weak: list[CategoryMatch]) -> tuple[tuple[str, ...], ...]:
    """Combine mentions: a path under another mention's path refines it ("face" + "moisturizer")."""
    if not strong:
        return ()
    groups = [m.paths for m in strong] + [m.paths for m in weak]
    result: list[tuple[str, ...]] = list(groups[0])
    for paths in groups[1:]:
        deeper = [p for p in paths if any(p[: len(q)] == q for q in result)]
        shallower = [q for q in result if any(q[: len(p)] == p for p in paths)]
        if deeper:
            result = deeper
        elif shallower:
            result = shallower
        elif paths in [m.paths for m in strong]:
            result = result + list(paths)  # "lipstick and nail polish": any-of
    return drop_descendants(result)


def names_current_type(current: tuple[tuple[str, ...], ...], mentions: list[Mention], text: str) -> bool:
    """Do the category words of a refinement only restate the product type in force?
    (``restated_types`` is not empty.)"""
    return bool(restated_types(current, mentions, text))


def restated_types(
    current: tuple[tuple[str, ...], ...], mentions: list[Mention], text: str
) -> tuple[tuple[str, ...], ...]:
    """The product types in force that a refinement's category words only restate; () when it
    names a new type.

    "rhinestones for nail art" while Nail Art Equipment is shown names no new type: every word
    of each category mention is a word of a current path ("nail art" in "Nail Art Equipment"),
    so the dialogue keeps Nail Art Equipment instead of switching to the node Nail Art, wherever
    that node sits in the tree. A mention with a word of its own ("lipstick" while nail polish is
    shown) is a new type. With several types in force the words pick those whose names hold them
    all ("face moisturizer" after "moisturizer" keeps only the face one).
    """
    cats = [m for m in mentions if isinstance(m.resolved, CategoryMatch) and not m.resolved.weak]
    if not current or not cats:
        return ()
    words = [{stem(w) for name in path for w in normalize(name).split()} for path in current]
    said = [set(stem_phrase(normalize(text[m.start : m.end])).split()) for m in cats]
    return tuple(path for path, ws in zip(current, words, strict=True) if all(s <= ws for s in said))
