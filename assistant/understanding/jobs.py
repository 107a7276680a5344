"""A job to be done names the tool for it: "something to take off gel nail polish" is a Nail Polish
Remover, "to sharpen my pencils" a Pencil Sharpener, "for curling my lashes" an Eyelash Curler.

Catalogs name many tools for what they do (an agent noun: Remover, Sharpener, Opener, Holder,
Dryer, Conditioner; or the action itself: Hair Removal, Curling Irons, Waxing). A shopper who
states the job ("to ..." / "for ...ing" / "that can ...", then a verb and what it acts on) names
the node whose name holds the verb's agent noun; the object words pick among such nodes ("remove"
+ "nail polish" -> Nail Polish Remover, not Makeup Remover or Cuticle Removers). The object's own
category mention ("nail polish") is no filter then: the shopper wants what acts on it. Verbs are
read off the catalog's own node names, so nothing is listed per catalog; a few phrasal verbs say
the same as one ("take off", "get rid of" = remove).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.understanding.matches import CategoryMatch, Mention, drop_descendants
from assistant.understanding.tokens import normalize, stem
from assistant.understanding.vocabulary import CatalogVocabulary
from retrieval.lexical import STOPWORDS

__all__ = ["job_tools"]

# Phrasal verbs that mean one verb a tool is named for.
_REMOVE = (
    "take off",
    "get off",
    "get rid of",
    "take out",
    "taking off",
    "getting off",
    "getting rid of",
    "taking out",
)
_SYNONYMS = dict.fromkeys(_REMOVE, "remove")
_INTRO = r"(?:\bto|\bthat\s+(?:can|will|would|could|helps?(?:\s+(?:me|you))?)|\bhelps?\s+(?:me\s+)?)"
# After "for" only a gerund is a job ("for drying my hair"); "for dry hair" says what it suits.
_JOB = re.compile(
    rf"(?:{_INTRO}\s+(?:\w+ly\s+)?(?P<verb>take\s+off|get\s+off|get\s+rid\s+of|take\s+out|[a-z]{{3,}})"
    r"|\bfor\s+(?P<gerund>taking\s+off|getting\s+off|getting\s+rid\s+of|taking\s+out|[a-z]{3,}ing))\b"
    r"(?P<object>(?:\s+(?!(?:and|or|but|with|under|below|over|that|which|because|so|please|for)\b)"
    r"[a-z][\w'-]*){0,6})",
    re.I,
)
_MIN_VERB = 3


@dataclass(frozen=True)
class _Tools:
    """Per-vocabulary index: a verb -> the node names (and paths) named for doing it."""

    by_verb: dict[str, tuple[str, ...]]


_CACHE: dict[int, tuple[CatalogVocabulary, _Tools]] = {}


def _verbs_of(word: str) -> set[str]:
    """Verbs an agent or action noun may come from: remover -> remove, sharpener -> sharpen,
    trimmer -> trim, laminator -> laminate, curling -> curl, shaving -> shave, removal -> remove."""
    w = stem(word.casefold())
    out: set[str] = set()
    for suffix in ("er", "or", "ing", "al"):
        if w.endswith(suffix) and len(w) - len(suffix) >= _MIN_VERB:
            base = w[: -len(suffix)]
            out |= {base, base + "e"}
            if len(base) > _MIN_VERB and base[-1] == base[-2]:
                out.add(base[:-1])  # trimmer -> trim, shredder -> shred
    return out


def _tools(vocab: CatalogVocabulary) -> _Tools:
    hit = _CACHE.get(id(vocab))
    if hit is not None and hit[0] is vocab:
        return hit[1]
    by_verb: dict[str, list[str]] = {}
    for name in vocab.nodes:
        for word in normalize(name).split():
            for verb in _verbs_of(word):
                by_verb.setdefault(verb, []).append(name)
    tools = _Tools({v: tuple(dict.fromkeys(ns)) for v, ns in by_verb.items()})
    if len(_CACHE) > 16:
        _CACHE.clear()
    _CACHE[id(vocab)] = (vocab, tools)
    return tools


def _base_verb(verb: str) -> list[str]:
    v = " ".join(verb.casefold().split())
    v = _SYNONYMS.get(v, v)
    forms = [v]
    for suffix in ("ing", "es", "s"):
        if v.endswith(suffix) and len(v) - len(suffix) >= _MIN_VERB:
            base = v[: -len(suffix)]
            forms += [base, base + "e"]
            if base[-1] == base[-2]:
                forms.append(base[:-1])
    return forms


def _node_words(vocab: CatalogVocabulary, name: str) -> set[str]:
    """The words of a node's name and its parent's, over every path so named."""
    return {stem(w) for p in vocab.nodes[name] for w in normalize(" ".join(p[-2:])).split()}


def _names(word: str, node_words: set[str]) -> bool:
    """Does an object word name a node word ("lashes" in "Eyelash", "pencils" in "Pencil")?"""
    return word in node_words or (len(word) >= 4 and any(n.endswith(word) for n in node_words))


def _words(text: str) -> set[str]:
    return {stem(w) for w in normalize(text).split() if w not in STOPWORDS}


def job_tools(vocab: CatalogVocabulary, text: str, mentions: list[Mention]) -> list[Mention]:
    """``mentions`` with each stated job read as the tool for it (a category mention over the job's
    span, which replaces the category mentions inside it); unchanged where no node is named for
    the job or the object cannot choose among several."""
    tools = _tools(vocab)
    if not tools.by_verb:
        return mentions
    out = list(mentions)
    for m in _JOB.finditer(text):
        verb = m["verb"] or m["gerund"]
        names = next((tools.by_verb[v] for v in _base_verb(verb) if v in tools.by_verb), ())
        if not names:
            continue
        obj = _words(m["object"])
        scored = [(sum(_names(w, _node_words(vocab, n)) for w in obj), n) for n in names]
        best = max(s for s, _ in scored)
        chosen = [n for s, n in scored if s == best]
        start, end = m.start("verb") if m["verb"] else m.start("gerund"), m.end()
        # What the job acts on is no product type asked for ("to organize the papers on my desk"
        # wants no Paper), whether or not a tool is chosen; its words stay in the query.
        out = [x for x in out if not (isinstance(x.resolved, CategoryMatch) and start <= x.start < end)]
        if best == 0 and (obj or len(chosen) > 1):
            continue  # "to trim my beard" when only nail trimmers are named: not this tool
        paths = drop_descendants(p for n in chosen for p in vocab.nodes[n])
        out.append(Mention(start, end, CategoryMatch(" / ".join(chosen), paths, text[start:end], "job")))
    return sorted(out, key=lambda x: x.start)
