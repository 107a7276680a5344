"""Catalog items named in free text, with what the shopper feels about each: ``find_items``.

"I loved Toy Story and The Lion King but hated Scream", "I watched Click (2006)", "something like
the Garnier one", "not the Olay", "我很喜欢Toy Story" -> ``ItemMention``s with a polarity (like /
dislike / neutral) and whether the shopper says they have had the item (``seen``).

Matching (``TitleIndex``, built once per catalog: the title forms of every item and a token ->
items postings list, so a lookup costs a few dict probes per word whatever the catalog size):

* a title is normalised like the vocabulary (case, accents, punctuation, "&" = "and"); a trailing
  year "(1995)" is split off and, when the shopper types one, must agree within a year; MovieLens's
  "Lion King, The" is read as "The Lion King"; a leading article is optional; a parenthesised
  alternate title ("Seven (Se7en)") is a form of its own; CJK titles match character by character.
* a contiguous part of one title only (a partial title: "Wrath of Khan") matches when it has two
  content words, is typed as a name (capitalised, quoted) or follows a mention cue, and no other
  title contains it.
* A form is a *name* only with evidence when it could be ordinary words: a single content word
  ("Click", "Heat", "Speed"), a phrase that other titles also contain ("nail polish"), or two
  lower-case words in text that otherwise uses capitals. Evidence is mention context: quotes, a
  typed year, capitals in mixed-case text (not the first word of a sentence), a cue right before
  ("liked", "seen", "like") or an opinion right after ("was great").
* Items shown in this session are matched first by the words the shopper uses for them: "the
  Garnier one", "that Olay cream", "那个Garnier的" resolve to the one shown item (latest list first)
  whose title and brand contain every content word.

Polarity: the nearest opinion cue before the mention in its clause (clauses end at sentence
punctuation and "but", "however", "但是"...), else the first one after it (also after a cue that
only says the shopper had it: "I bought X and it clumped"); a negator within three words before a
positive cue flips it ("didn't like", "not a big fan of", "不喜欢"). A list shares
its cue ("I loved A, B and C"). Cue words are data (``data/mention_cues.yaml``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

from assistant.understanding import lexicon
from assistant.understanding.tokens import normalize, stem
from assistant.understanding.tokens import tokenize as latin_tokens
from retrieval.text import CJK_CHARS, STOPWORDS

__all__ = ["ItemMention", "Polarity", "TitleIndex", "find_items"]

Polarity = Literal["like", "dislike", "neutral"]

MAX_FORM_TOKENS = 16  # longer titles are found through their parts
MAX_PARTIAL_TOKENS = 8
YEAR_TOLERANCE = 1
GENERIC_TITLES = 3  # a phrase in this many titles is a description, not a name
MAX_DESCRIBED_WORDS = 4
MAX_DESCRIBED_GROUPS = 40  # more titles share the words: a kind of product ("a face cream"), no item
DESCRIBED_SEEDS = 3  # the best sellers a described item stands for
_DETERMINERS = frozenset("the a an my that this your those these their her his our".split())  # noqa: SIM905
_ARTICLES = frozenset("the a an le la les l il el das der die los las".split())  # noqa: SIM905
_TRAILING_ARTICLE = re.compile(r"^(.*?),\s*(the|a|an|les|la|le|l'|il|el|das|der|die|los|las)$", re.I)
_YEAR_IN_TITLE = re.compile(r"\s*\((\d{4})\)\s*$")
_PAREN = re.compile(r"\(([^()]*)\)")
_YEAR_AFTER = re.compile(r"^(?:\.\.\.|…)?\s*\(\s*(\d{4})\s*\)")  # "When Harry Met Sally... (1989)"
_CJK_TOKEN = re.compile(f"[{CJK_CHARS}]")
_CJK_SPLIT = re.compile(f"[{CJK_CHARS}]|[^{CJK_CHARS}]+")
_OPEN_QUOTES = "\"'“‘«《「『"
_CLOSE_QUOTES = "\"'”’»》」』"
_SENTENCE_END = re.compile(r"[.!?;。！？；\n]\s*$")
# Words that stand for "the item" after a shown item's name ("the Garnier one") carry no content.
_NEGATORS = frozenset(
    ["not", "never", "no", "nor", "hardly", "dont", "didnt", "doesnt", "havent", "hasnt", "hadnt", "wasnt", "isnt", "cant", "couldnt", "wouldnt"]
)
_FILLER = frozenset(
    ["one", "ones", "thing", "things", "product", "item", "movie", "film", "show", "book", "the", "that", "this", "those", "these"]
)


@dataclass(frozen=True)
class ItemMention:
    """One catalog item the shopper named; ``item_ids`` are its catalog entries (duplicates of one
    work share a mention), ``how`` says what matched: a full title form, a partial one, or the
    words of an item shown in this session."""

    item_ids: tuple[str, ...]
    start: int
    end: int
    surface: str
    polarity: Polarity = "neutral"
    seen: bool = False  # the shopper says they have had it ("I watched X", "loved X")
    how: Literal["title", "partial", "shown", "described"] = "title"
    cue: tuple[int, int] | None = None  # the opinion's characters ("loved", "was great"), if any


@dataclass(frozen=True)
class _Entry:
    group: int  # one work: same normalised title and year
    year: int | None


@dataclass
class TitleIndex:
    """Title forms of a catalog's items (see the module docstring), built once per catalog."""

    forms: dict[tuple[str, ...], list[_Entry]] = field(default_factory=dict)
    groups: list[tuple[str, ...]] = field(default_factory=list)  # group -> item ids
    main: list[str] = field(default_factory=list)  # group -> " normalised title " for partials
    postings: dict[str, list[int]] = field(default_factory=dict)  # token -> groups
    words: dict[str, frozenset[str]] = field(default_factory=dict)  # item id -> title and brand tokens
    stems: dict[str, list[int]] = field(default_factory=dict)  # stem of a title or brand word -> groups
    brand_names: frozenset[tuple[str, ...]] = frozenset()  # every brand, as words

    @classmethod
    def from_items(cls, items: Iterable[tuple[str, str, str | None]]) -> TitleIndex:
        """``items``: ``(item_id, title, brand)`` in catalog order (the first of duplicates leads)."""
        index = cls()
        group_of: dict[tuple[str, int | None], int] = {}
        members: list[list[str]] = []
        items = list(items)
        # A brand is no title: "(L'oreal)" at the end of a product title names its maker, and "not
        # from L'Oreal Paris" must reach the brand reader, not dislike that one product.
        brands = {tuple(_tokens_of(b)) for _, _, b in items if b}
        for item_id, title, brand in items:
            index.words[item_id] = frozenset(_tokens_of(f"{title} {brand or ''}"))
            name, year, forms = _title_forms(title)
            if not forms:
                continue
            key = (name, year)
            if key in group_of:
                members[group_of[key]].append(item_id)
                continue
            g = group_of[key] = len(members)
            members.append([item_id])
            index.main.append(f" {name} ")
            for form in forms:
                if form not in brands:
                    index.forms.setdefault(form, []).append(_Entry(g, year))
            for tok in set(name.split()):
                index.postings.setdefault(tok, []).append(g)
            for tok in {stem(t) for t in (*name.split(), *_tokens_of(brand or ""))}:
                index.stems.setdefault(tok, []).append(g)
        index.groups = [tuple(m) for m in members]
        index.brand_names = frozenset(brands)
        return index

    def described(self, words: Sequence[str]) -> list[int]:
        """Groups whose title and brand words include every one of ``words`` (by stem), in index
        order."""
        posts = [self.stems.get(stem(w)) for w in words]
        if not all(posts):
            return []
        common = set.intersection(*(set(p) for p in posts))  # type: ignore[arg-type]
        return sorted(common)

    def containing(self, phrase: tuple[str, ...], limit: int = GENERIC_TITLES) -> list[int]:
        """Groups whose title contains ``phrase`` as contiguous words (at most ``limit``)."""
        posts = [self.postings.get(t) for t in phrase]
        if not all(posts):
            return []
        rarest = min(posts, key=len)  # type: ignore[arg-type]
        needle = f" {' '.join(phrase)} "
        out = []
        for g in rarest:  # type: ignore[union-attr]
            if needle in self.main[g]:
                out.append(g)
                if len(out) >= limit:
                    break
        return out


def _tokens_of(text: str) -> list[str]:
    """The words ``_tokenize`` reads from ``text``, without spans (fast, for indexing titles)."""
    out: list[str] = []
    for w in normalize(text).split():
        out.extend(_CJK_SPLIT.findall(w) if _CJK_TOKEN.search(w) else (w,))
    return out


def _title_forms(title: str) -> tuple[str, int | None, list[tuple[str, ...]]]:
    """(normalised main title, year, forms without a leading article)."""
    title = " ".join(title.split())
    m = _YEAR_IN_TITLE.search(title)
    year = int(m.group(1)) if m else None
    if m:
        title = title[: m.start()]
    parts = [_PAREN.sub(" ", title), *_PAREN.findall(title)]
    forms: list[tuple[str, ...]] = []
    main = ""
    for n, part in enumerate(parts):
        part = part.strip()
        t = _TRAILING_ARTICLE.match(part)
        if t:
            part = f"{t.group(2)} {t.group(1)}"
        toks = _tokens_of(part)
        if n == 0:
            main = " ".join(toks)
        while toks and toks[0] in _ARTICLES and len(toks) > 1:
            toks = toks[1:]
        if toks and len(toks) <= MAX_FORM_TOKENS:
            forms.append(tuple(toks))
        head = _tokens_of(part.split(",")[0])  # a product's name before its sizes and variants
        if len([w for w in head if w not in STOPWORDS]) >= 3 and len(head) < len(toks):
            forms.append(tuple(head[:MAX_FORM_TOKENS]))
    return main, year, list(dict.fromkeys(forms))


def _tokenize(text: str) -> list[tuple[str, int, int, str]]:
    """(normalised token, start, end, raw) for Latin words and single CJK characters, in order."""
    out = [(t.norm, t.start, t.end, t.raw) for t in latin_tokens(text)]
    out += [(normalize(m.group()), m.start(), m.end(), m.group()) for m in _CJK_TOKEN.finditer(text)]
    return sorted(out, key=lambda t: (t[1], t[2]))


def _content(toks: Sequence[str]) -> list[str]:
    return [t for t in toks if t not in STOPWORDS and t not in _ARTICLES]


# --- cues -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Cue:
    start: int
    end: int
    polarity: Polarity
    seen: bool
    after: bool  # an opinion said after the item ("X was great")
    near: bool = False  # an exclusion ("not", "except") governs only the words right after it


@lru_cache(maxsize=1)
def _cue_patterns() -> tuple[tuple[re.Pattern[str], Polarity, bool, bool], ...]:
    """(pattern, polarity, seen, after) from ``data/mention_cues.yaml``."""
    out = []
    for key, pol, seen, after in (
        ("question", "neutral", False, False),
        ("dislike_before", "dislike", True, False),
        ("exclude_before", "dislike", False, False),
        ("like_before", "like", True, False),
        ("similar_before", "like", False, False),
        ("seen_before", "neutral", True, False),
        ("like_after", "like", True, True),
        ("dislike_after", "dislike", True, True),
    ):
        out.append((lexicon.cue("mention_cues", key), pol, seen, after))
    return tuple(out)  # type: ignore[return-value]


def _negated(text: str, start: int) -> bool:
    """A negator within three words before ``start`` ("didn't really like", "没看过", "不喜欢")."""
    window = text[max(0, start - 40) : start]
    if re.search(r"[不没別别]$|没有$", window.rstrip()):
        return True
    tail = re.split(r"[,.;!?，。！？；]", window)[-1]
    words = re.findall(r"[\w'’]+", tail.casefold())[-3:]
    return any(w in _NEGATORS or w.endswith(("n't", "n’t")) for w in words)


def _cues(text: str) -> list[_Cue]:
    found: list[_Cue] = []
    for pat, pol, seen, after in _cue_patterns():
        for m in pat.finditer(text):
            p, s = pol, seen
            if not after and pol in ("like", "neutral") and seen and _negated(text, m.start()):
                p, s = ("dislike" if pol == "like" else "neutral"), False
            elif after and pol == "like" and re.search(r"\bnot\b|n['’]?t\b", m.group(), re.I):
                p = "dislike"
            found.append(
                _Cue(m.start(), m.end(), p, s, after, near=not after and pol == "dislike" and not seen)
            )
    return found


def _clauses(text: str) -> list[int]:
    """Start offsets of clauses: sentence punctuation and contrast words end one."""
    return [0, *(m.end() for m in lexicon.cue("mention_cues", "clause_break").finditer(text))]


def _polarity(start: int, end: int, cues: list[_Cue], bounds: list[int], text_len: int) -> _Cue | None:
    lo = max(b for b in bounds if b <= start)
    hi = min([b for b in bounds if b > start] + [text_len])
    before = [
        c
        for c in cues
        if not c.after and lo <= c.start and c.end <= start and (not c.near or start - c.end <= 12)
    ]
    after = [c for c in cues if c.start >= end and c.end <= hi]
    first_after = min(after, key=lambda c: c.start) if after else None
    if before:
        cue = max(before, key=lambda c: (c.end, c.end - c.start))
        # "I bought a Maybelline mascara and it clumped", "watched Click, loved it": having had
        # the item says no opinion; one said after it in the clause does.
        if cue.polarity == "neutral" and cue.seen and first_after is not None:
            return replace(first_after, seen=True)
        return cue
    return first_after


# --- evidence that a span is a name -----------------------------------------------------------
def _mixed_case(text: str) -> bool:
    words = re.findall(r"[A-Za-z][A-Za-z']*", text)
    return any(w[0].islower() for w in words) and any(c.isupper() for w in words for c in w)


def _sentence_start(text: str, start: int) -> bool:
    before = text[:start].rstrip(" " + _OPEN_QUOTES)
    return not before or bool(_SENTENCE_END.search(before))


def _quoted(text: str, start: int, end: int) -> bool:
    b = text[:start].rstrip()
    a = text[end:].lstrip()
    return bool(b) and b[-1] in _OPEN_QUOTES and bool(a) and a[0] in _CLOSE_QUOTES


def _capitalised(toks: Sequence[tuple[str, int, int, str]], text: str, mixed: bool) -> bool:
    """Typed as a name: every content word capitalised, in text that also uses lower case; one word
    at the start of a sentence proves nothing."""
    content = [t for t in toks if t[0] not in STOPWORDS and t[0] not in _ARTICLES]
    if not mixed or not content or not all(t[3][:1].isupper() or t[3][:1].isdigit() for t in content):
        return False
    return len(content) >= 2 or not _sentence_start(text, toks[0][1])


def _cue_next_to(start: int, end: int, cues: list[_Cue]) -> bool:
    """An opinion or mention cue right before (a few characters: "the", "movie") or right after."""
    return any(
        (not c.after and 0 <= start - c.end <= 12) or (c.after and 0 <= c.start - end <= 3) for c in cues
    )


# --- the verb ---------------------------------------------------------------------------------
def find_items(
    text: str,
    index: TitleIndex,
    *,
    shown: Sequence[Sequence[str]] = (),
    taken: bytearray | None = None,
) -> tuple[ItemMention, ...]:
    """Catalog items named in ``text`` with their polarity; ``shown``: the lists of item ids this
    session showed, latest first; ``taken``: characters other readers already claimed (skipped)."""
    toks = [t for t in _tokenize(text) if taken is None or not any(taken[t[1] : t[2]])]
    if not toks:
        return ()
    cues = _cues(text)
    mixed = _mixed_case(text)
    found: list[tuple[int, int, tuple[str, ...], str]] = []  # token span, ids, how
    claims: dict[int, tuple[int, int]] = {}  # described items: the brand's characters, by token
    i = 0
    while i < len(toks):
        hit = _shown_at(toks, i, index, shown) or _title_at(toks, i, text, index, cues, mixed)
        if hit is None and (described := _described_at(toks, i, text, index, cues)) is not None:
            hit, claims[i] = described[:3], described[3]
        if hit is None:
            i += 1
            continue
        j, ids, how = hit
        found.append((i, j, ids, how))
        i = j
    bounds = _clauses(text)
    out: list[ItemMention] = []
    for i, j, ids, how in found:
        start, end = claims.get(i, (toks[i][1], toks[j - 1][2]))
        # the leading article is optional in the index ("Die Hard" is found from "Hard"); said, it
        # is part of the name
        if i > 0 and toks[i - 1][0] in _ARTICLES and how == "title" and toks[i - 1][2] >= start - 2:
            start = toks[i - 1][1]
        y = _YEAR_AFTER.match(text[end:]) if how != "described" else None
        if y:
            end += y.end()
        cue = _polarity(start, end, cues, bounds, len(text))
        pol: Polarity = cue.polarity if cue else "neutral"
        span = (cue.start, cue.end) if cue else None
        out.append(ItemMention(ids, start, end, text[start:end], pol, bool(cue and cue.seen), how, span))  # type: ignore[arg-type]
    return tuple(_dedupe(out))


def _dedupe(mentions: list[ItemMention]) -> list[ItemMention]:
    """One mention per item: the last thing said about it wins ("I liked X... actually X was bad")."""
    last: dict[tuple[str, ...], ItemMention] = {}
    for m in mentions:
        last.pop(m.item_ids, None)
        last[m.item_ids] = m
    return list(last.values())


def _title_at(
    toks: list[tuple[str, int, int, str]],
    i: int,
    text: str,
    index: TitleIndex,
    cues: list[_Cue],
    mixed: bool,
) -> tuple[int, tuple[str, ...], str] | None:
    """The longest title form (else partial title) starting at token ``i`` with the evidence it
    needs: (end token, item ids, how)."""
    norms = [t[0] for t in toks]
    # A title that starts with a small word ("What About Bob?", "It Happened One Night") is a name
    # only with its year typed after it; otherwise "it", "what" would start names everywhere.
    small = norms[i] in _ARTICLES or norms[i] in STOPWORDS
    for j in range(min(len(toks), i + MAX_FORM_TOKENS), i, -1):
        entries = index.forms.get(tuple(norms[i:j]))
        if not entries or (small and not _YEAR_AFTER.match(text[toks[j - 1][2] :].lstrip("?!.,"))):
            continue
        group = _pick_year(entries, text, toks[j - 1][2])
        if group is None:
            continue
        if _is_name(toks, i, j, text, index, cues, mixed, exact=True):
            return j, index.groups[group], "title"
    if small:
        return None
    for j in range(min(len(toks), i + MAX_PARTIAL_TOKENS), i + 1, -1):
        phrase = tuple(norms[i:j])
        if norms[j - 1] in STOPWORDS or len(_content(phrase)) < 2 or len(" ".join(phrase)) < 8:
            continue
        groups = index.containing(phrase, limit=2)
        if len(groups) == 1 and _is_name(toks, i, j, text, index, cues, mixed, exact=False):
            return j, index.groups[groups[0]], "partial"
    return None


def _described_at(
    toks: list[tuple[str, int, int, str]], i: int, text: str, index: TitleIndex, cues: list[_Cue]
) -> tuple[int, tuple[str, ...], str, tuple[int, int]] | None:
    """ "something like the Cetaphil cleanser", "I love my Olay night cream", "I bought a Maybelline
    mascara": a brand and words of its titles, said right after a liking, likeness or having-had
    cue, stand for that brand's best sellers with those words (index order is popularity order):
    the seeds of "like X", not a brand filter. Only
    the brand's characters are claimed (the last item of the result), so "cleanser" is still read as
    the product type. (end token, item ids, how, claimed span)"""
    start = toks[i][1]
    complaint = any(c.after and c.polarity == "dislike" and c.start > start for c in cues)
    if not any(
        (c.polarity == "like" or c.seen)
        and not c.after
        and 0 <= start - c.end <= 8
        and all(w in _DETERMINERS for w in text[c.end : start].casefold().split())
        for c in cues
    ):
        return None
    j = i
    while j < len(toks) and j - i < MAX_DESCRIBED_WORDS:
        if (
            toks[j][0] in STOPWORDS
            or toks[j][0] in _FILLER
            or (j > i and text[toks[j - 1][2] : toks[j][1]].strip())
        ):
            break
        j += 1
    while j - i >= 2:
        words = [t[0] for t in toks[i:j]]
        # The brand leads; a brand alone ("a fan of Tom Ford", "I prefer Swingline GBC", whose
        # first word is a brand too) is the brand reader's.
        n = max((k for k in range(1, len(words) + 1) if tuple(words[:k]) in index.brand_names), default=0)
        groups = index.described(words) if 0 < n < len(words) else []
        # Many of the brand's items fit ("a Maybelline mascara"): a kind, which stays the brand
        # reader's, unless it is a complaint ("... and it clumped"): then it names what the
        # shopper had, most likely a best seller, and asks for other brands' too.
        if len(groups) > MAX_DESCRIBED_GROUPS and complaint:
            groups = groups[:DESCRIBED_SEEDS]
        if 1 <= len(groups) <= MAX_DESCRIBED_GROUPS:
            ids = tuple(x for g in groups[:DESCRIBED_SEEDS] for x in index.groups[g])
            return j, ids, "described", (toks[i][1], toks[i + n - 1][2])
        j -= 1
    return None


def _pick_year(entries: list[_Entry], text: str, end: int) -> int | None:
    """The work a form names: the typed year (+-1) decides between remakes; no year and several
    works is ambiguous (None)."""
    m = _YEAR_AFTER.match(text[end:])
    if m:
        year = int(m.group(1))
        near = [
            (abs(e.year - year), e.group)
            for e in entries
            if e.year is not None and abs(e.year - year) <= YEAR_TOLERANCE
        ]
        near += [(0, e.group) for e in entries if e.year is None]
        if not near:
            return None
        best = min(d for d, _ in near)
        groups = {g for d, g in near if d == best}
        return groups.pop() if len(groups) == 1 else None
    groups = {e.group for e in entries}
    return groups.pop() if len(groups) == 1 else None


def _is_name(
    toks: list[tuple[str, int, int, str]],
    i: int,
    j: int,
    text: str,
    index: TitleIndex,
    cues: list[_Cue],
    mixed: bool,
    *,
    exact: bool,
) -> bool:
    """Evidence that tokens ``i:j`` name a title (see the module docstring)."""
    phrase = tuple(t[0] for t in toks[i:j])
    start, end = toks[i][1], toks[j - 1][2]
    content = [t for t in toks[i:j] if t[0] not in STOPWORDS and t[0] not in _ARTICLES]
    if all(any(c.start <= t[1] and t[2] <= c.end for c in cues) for t in content):
        return False  # "not a big fan of": a cue's own words are no title ("The Fan")
    if not any(c.isalpha() for t in phrase for c in t):
        return False  # "50", "5 0": a size or variant in brackets, never a name
    typed = _quoted(text, start, end) or bool(_YEAR_AFTER.match(text[end:]))
    if exact and len(content) == 1 and len(index.containing(phrase, limit=GENERIC_TITLES)) >= GENERIC_TITLES:
        # One word many titles use ("red", a variant in brackets) names an item only as typed:
        # "any color except red" is no dislike of the one product whose title ends in "(Red)".
        return typed or _capitalised(toks[i:j], text, mixed)
    evidence = typed or _capitalised(toks[i:j], text, mixed) or _cue_next_to(start, end, cues)
    if evidence or not exact:
        return evidence
    cjk = all(_CJK_TOKEN.fullmatch(t) for t in phrase)
    if len(content) < (3 if cjk else 2):
        return False
    if len(index.containing(phrase, limit=GENERIC_TITLES)) >= GENERIC_TITLES:
        return False
    typed_lower = all(t[3][:1].islower() for t in toks[i:j])
    return not (mixed and typed_lower and len(content) == 2)


def _shown_at(
    toks: list[tuple[str, int, int, str]], i: int, index: TitleIndex, shown: Sequence[Sequence[str]]
) -> tuple[int, tuple[str, ...], str] | None:
    """ "the Garnier one", "that Olay cream", "那个Garnier的": content words after a determiner that
    only one shown item's title and brand contain (the latest list first, then everything shown)."""
    if not shown or i == 0 or toks[i - 1][0] not in ("the", "that", "this", "个", "款", "瓶", "支"):
        return None
    norms = [t[0] for t in toks]
    tiers = [list(shown[0]), list(dict.fromkeys(x for lst in shown for x in lst))]
    for j in range(min(len(toks), i + 3), i, -1):
        words = [w for w in norms[i:j] if w not in _FILLER and w not in STOPWORDS]
        if not words or norms[j - 1] not in words:
            continue
        for tier in tiers:
            have = [s for s in tier if all(w in index.words.get(s, ()) for w in words)]
            if len(have) == 1:
                while j < len(toks) and norms[j] in _FILLER - {"the", "that", "this"}:
                    j += 1
                return j, (have[0],), "shown"
            if have:
                break  # several shown items fit: ambiguous, no guess
    return None
