"""Normalised tokens of the catalog vocabulary: both the catalog's names and the shopper's words
go through ``normalize`` and ``stem``, so only their consistency matters."""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from retrieval.text import CJK_CHARS
from retrieval.text import normalize as fold

__all__ = ["TOKEN_RE", "Token", "normalize", "stem", "stem_phrase", "tokenize"]

# Latin/Greek/Cyrillic words with inner apostrophes or dots ("l'oreal", "e.l.f."); CJK is matched
# separately by substring because it has no word boundaries. A lone "&"/"+" is a token too
# ("and"/"plus", as ``normalize`` spells it in names), so "Tools & Accessories", "Free & Clear"
# or "AT&T" typed with the ampersand matches the indexed "tools and accessories".
TOKEN_RE = re.compile(
    r"[0-9A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF]+"
    r"(?:['’.][0-9A-Za-z\u00C0-\u024F]+)*\.?|[&+]"
)
_STRIP_RE = re.compile(r"['’.`´]")
_SPLIT_RE = re.compile(r"[^0-9a-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff" + CJK_CHARS + r"]+")

_STEM_KEEP = ("ss", "us", "is", "ous")


def normalize(text: str) -> str:
    """``retrieval.text.normalize`` (NFKC, case-folded), then accent-free and punctuation-light: the
    form used on both sides of every match."""
    text = unicodedata.normalize("NFKD", fold(html.unescape(text)))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("&", " and ").replace("+", " plus ")
    text = _STRIP_RE.sub("", text)
    return " ".join(_SPLIT_RE.sub(" ", text).split())


def stem(word: str) -> str:
    """Crude singular form; only consistency matters, as both sides go through it."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(_STEM_KEEP):
        return word[:-1]
    return word


def stem_phrase(normalized: str) -> str:
    """``stem`` applied to every word of a normalised phrase."""
    return " ".join(stem(w) for w in normalized.split())


@dataclass
class Token:
    """One normalised word of an utterance with its stem and character span."""

    norm: str
    stem: str
    start: int
    end: int
    raw: str


def tokenize(text: str) -> list[Token]:
    """Latin-script words of ``text`` (CJK is matched by substring elsewhere), normalised and stemmed."""
    out = []
    for m in TOKEN_RE.finditer(text):
        norm = normalize(m.group())
        for part in norm.split() or ():
            out.append(Token(part, stem(part), m.start(), m.end(), m.group()))
    return out
