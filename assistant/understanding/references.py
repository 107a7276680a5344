"""References to the last shown list: "the second one", "#3", "the first two", "最便宜的那个",
and like/dislike feedback said next to them ("I like the first one")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Literal

from assistant.understanding import lexicon
from assistant.understanding.numbers import cn_number
from assistant.understanding.spans import overlaps, take
from assistant.understanding.utterance import Reference
from retrieval.text import sentence_ends

__all__ = ["extract_references", "feedback"]

_ITEM_NOUN = r"(?:one|ones|item|items|product|products|option|options|pick|picks|choice|result|suggestion)"


# Selectors that need no ordinal words, tried first.
_SELECTORS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "first_n",
        re.compile(
            r"\b(?:the\s+)?(?:first|top)\s+(?P<n>two|three|four|five|[2-5])\b(?:\s+" + _ITEM_NOUN + r")?",
            re.I,
        ),
    ),
    (
        "last_n",
        re.compile(
            r"\b(?:the\s+)?last\s+(?P<n>two|three|four|five|[2-5])\b(?:\s+" + _ITEM_NOUN + r")?", re.I
        ),
    ),
    (
        "cheapest",
        re.compile(
            r"\b(?:the\s+)?cheapest\s+(?:one|of\s+(?:them|these|those))\b|最便宜的(?:那|这)?(?:个|款|件|一个|一款)",
            re.I,
        ),
    ),
    (
        "priciest",
        re.compile(
            r"\b(?:the\s+)?(?:most\s+expensive|priciest)\s+(?:one|of\s+(?:them|these|those))\b|最贵的(?:那|这)?(?:个|款|件|一个|一款)",
            re.I,
        ),
    ),
    (
        "last",
        re.compile(
            r"\b(?:the\s+)?(?:last|final)\s+"
            + _ITEM_NOUN
            + r"\b|\bthe\s+last\b(?!\s+(?:time|day|week|month|year))|最后(?:一)?(?:个|款|件)",
            re.I,
        ),
    ),
)


def _ordinals() -> Mapping[str, int]:
    return lexicon.numbers("numbers", "ordinals")


@cache
def _ref_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """(kind, pattern) in the order they are tried; built on first use from the ordinal table."""
    ord_re = "|".join(sorted(_ordinals(), key=len, reverse=True))
    return (
        *_SELECTORS,
        ("index", re.compile(r"\b(?:the\s+)?(?P<o>" + ord_re + r")\s+" + _ITEM_NOUN + r"\b", re.I)),
        (
            "index",
            re.compile(r"\bthe\s+(?P<o>" + ord_re + r")\b(?!\s+(?:time|day|week|month|year|place))", re.I),
        ),
        (
            "index",
            re.compile(
                r"(?:#|\bnumber\s*|\bno\.\s*|\bitem\s*|\boption\s*|\bproduct\s*|\bpick\s*)(?P<d>\d{1,2})\b",
                re.I,
            ),
        ),
        (
            "index",
            re.compile(
                r"第\s*(?P<z>[一二两三四五六七八九十]|\d{1,2})\s*(?:个|款|件|种|项|条|部|样)?(?!次|天|名)"
            ),
        ),
        ("first_n", re.compile(r"前\s*(?P<n>[两二三四五]|[2-5])\s*(?:个|款|件|种|样)")),
        ("last_n", re.compile(r"后\s*(?P<n>[两二三四五]|[2-5])\s*(?:个|款|件|种|样)")),
        (
            "all",
            re.compile(
                r"\b(?:all\s+of\s+(?:them|these|those)|all\s+(?:three|four|five)|each\s+of\s+them)\b|全部|都",
                re.I,
            ),
        ),
        (
            "index",
            re.compile(
                r"\b(?:and|or|vs\.?|versus|&)\s+(?:the\s+)?(?P<o>"
                + ord_re
                + r")\b(?!\s+(?:time|day|week|month|year))",
                re.I,
            ),
        ),
        # "something for both of us", "we both like comedies", "something we can both enjoy": the
        # people, not two items
        (
            "both",
            re.compile(
                r"(?<!\bwe\s)(?<!\bi\s)(?<!\bwe\scan\s)(?<!\bwe\scould\s)(?<!\bwe\swould\s)(?<!\bwe\swill\s)"
                r"(?<!\bwe'd\s)(?<!\bwe'll\s)\bboth(?!\s+of\s+(?:us|you)\b)(?:\s+of\s+(?:them|these|those))?\b"
                r"|两个都|这两个|那两个|两款",
                re.I,
            ),
        ),
        (
            "this",
            re.compile(
                r"\b(?:that|this|the)\s+(?:one|item|product|thing)\b|\bthat\s+(?:lipstick|polish|cream)\b|这个|那个|这款|那款|这件|那件|它",
                re.I,
            ),
        ),
    )


def _ref_from_match(kind: str, m: re.Match[str]) -> Reference | None:
    d = m.groupdict()
    surface = m.group().strip()
    if kind == "index":
        if d.get("o"):
            return Reference("index", (_ordinals()[d["o"].lower()],), surface=surface)
        if d.get("d"):
            k = int(d["d"])
            return Reference("index", (k - 1,), surface=surface) if k >= 1 else None
        z = d.get("z")
        k = int(z) if z and z.isdigit() else int(cn_number(z) or 0) if z else 0
        return Reference("index", (k - 1,), surface=surface) if k >= 1 else None
    if kind in ("first_n", "last_n"):
        n = lexicon.numbers("numbers", "counts").get(d["n"].lower(), 0)
        if kind == "first_n":
            return Reference("index", tuple(range(n)), n, surface)
        return Reference("last_n", (), n, surface)
    if kind == "last":
        return Reference("last_n", (), 1, surface)
    if kind == "both":
        return Reference("index", (0, 1), 2, surface)
    return Reference(kind, (), 0, surface)  # type: ignore[arg-type]


def extract_references(text: str, taken: bytearray) -> list[Reference]:
    """References to the last shown list, in text order; several positions merge into one."""
    refs: list[tuple[int, Reference]] = []
    for kind, pat in _ref_patterns():
        for m in pat.finditer(text):
            a, b = m.span()
            if overlaps(taken, a, b):
                continue
            if kind == "all" and m.group() == "都" and not re.search(r"都(?:不|要|喜欢|比较|看)", text):
                continue
            if kind == "all" and text.startswith(("不是", "不行", "不太行", "不喜欢"), b):
                continue  # "这些都不是/不行" rejects the page (a control phrase), it asks nothing about it
            ref = _ref_from_match(kind, m)
            if ref is None:
                continue
            take(taken, a, b)
            refs.append((a, ref))
    refs.sort(key=lambda t: t[0])
    out = [r for _, r in refs]
    # "the first and the third" -> one reference to positions (0, 2).
    idx = [r for r in out if r.kind == "index"]
    if len(idx) > 1:
        positions = tuple(dict.fromkeys(p for r in idx for p in r.positions))
        merged = Reference("index", positions, len(positions), " + ".join(r.surface for r in idx))
        out = [merged] + [r for r in out if r.kind != "index"]
    return out


def feedback(
    text: str, refs: list[Reference], neg_cues: list[tuple[int, int]]
) -> Literal["like", "dislike"] | None:
    """A like/dislike cue in a sentence that names a reference ("I like the first one", "not the
    second one"); a cue in another sentence is about something else ("更像第一个那样的。不要太贵。":
    a budget wish, not a dislike of the first item), and "not too X" / "不要太X" is a degree."""
    if not refs:
        return None
    spans = _reference_sentences(text, refs)
    scope = " ".join(_DEGREE.sub(" ", text[a:b]) for a, b in spans)
    if lexicon.cue("parser_cues", "dislike").search(scope) or any(
        a <= s < b and not _DEGREE.match(text, s) for s, _ in neg_cues for a, b in spans
    ):
        return "dislike"
    if lexicon.cue("parser_cues", "like").search(scope):
        return "like"
    return None


_DEGREE = re.compile(
    r"(?:not|nothing)\s+(?:too|so|that|overly)|(?:不要|别|不能|不用)\s*(?:太|那么|这么|过于)", re.I
)


def _reference_sentences(text: str, refs: list[Reference]) -> list[tuple[int, int]]:
    """The sentences of ``text`` that hold a reference's words (all of it when none is found)."""
    starts = [0, *sentence_ends(text)]
    bounds = [(a, b) for a, b in zip(starts, [*starts[1:], len(text)], strict=True) if b > a]
    found: list[tuple[int, int]] = []
    for surface in (part for r in refs for part in r.surface.split(" + ")):
        at = text.find(surface) if surface else -1
        found += [(a, b) for a, b in bounds if a <= at < b and (a, b) not in found]
    return found or [(0, len(text))]
