"""Text primitives shared by every layer: tokens, stop words, sentences, CJK, language, money.

Tokens (``tokenize``): case-folded runs of letters and digits (``_`` separates), a number with
its decimals kept whole ("4.5", "1.7" of "1.7oz"); each CJK character (kana, Han, Hangul) is a
token of its own, since CJK has no spaces and there is no word segmenter. BM25 indexes
``words`` instead: NFKC-normalised runs where "4.5" is "4", "5" and a CJK run stays whole so the
index can add character bigrams (its analyser, and so ranking, is fixed by recorded benches).

Sentences: ``.``/``!``/``?`` end a sentence when whitespace follows (so "4.5" and "$3.50" stay
whole), except after an abbreviation ("e.g.", "i.e.", "vs.") and after a list marker (1-2 digits
that open the text, a line or follow another sentence: "1. Title"); "It costs $3. Then" ends at
"$3.". CJK 。！？ end a sentence at once. Closing quotes/brackets stay with their sentence.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

Language = Literal["en", "zh"]

# Character classes for use inside [...]: kana, CJK ext. A, unified Han, Hangul, compatibility Han.
HAN_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_CHARS = "\u3040-\u30ff" + HAN_CHARS + "\uac00-\ud7af"
CJK_RE = re.compile(f"[{CJK_CHARS}]")
HAN_RE = re.compile(f"[{HAN_CHARS}]")
# A word character that is not CJK: the edge of a Latin word. Chinese text runs into Latin words
# without a space ("想要wrinkles的"), where ``\b`` sees no edge; use (?<!LATIN_WORD)...(?!LATIN_WORD).
LATIN_WORD = rf"[^\W{CJK_CHARS}]"
_RUN_RE = re.compile(rf"[{CJK_CHARS}]+|[^\W{CJK_CHARS}]+")
_TOKEN_RE = re.compile(rf"[0-9]+(?:\.[0-9]+)?|[{CJK_CHARS}]|[^\W_{CJK_CHARS}]+")

# Function words (EN + ZH). BM25 drops them from queries and documents, so a change here changes
# ranking: add words to the narrower lists below instead.
STOPWORDS = frozenset(
    """a an and are as at be but by for from has have i in is it its me my of on or our so some than
    that the their them then there these they this to too us was we were what which with you your
    的 了 和 与 或 是 在 我 你 他 她 它 我们 你们 他们 这 那 这个 那个 吗 呢 吧 啊 也 都 就 很""".split()  # noqa: SIM905
)
# Request verbs of a shopping query ("show me ...", "I need ..."): no product meaning.
QUERY_FILLER_WORDS = frozenset(
    "want need looking show find give get please 想 要 想要 需要 找 推荐 请".split()  # noqa: SIM905
)
# Pack sizes and units in product titles.
UNIT_WORDS = frozenset("oz ml fl g lb x pack set count pcs piece pieces".split())  # noqa: SIM905
# Quantifiers, negation, modals, comparisons and common foreign articles: never name a product,
# but kept out of STOPWORDS so BM25 still matches "not tested", "under eye".
MINOR_WORDS = frozenset(
    """about all also any can each into just more most new no not one only out over such those three
    two under up very will would de el et la le les und""".split()  # noqa: SIM905
)


def normalize(text: str) -> str:
    """NFKC (full-width forms -> ASCII) and case folding: the form tokens are compared in."""
    return unicodedata.normalize("NFKC", text).casefold()


def words(text: str) -> list[str]:
    """BM25 word runs of ``text`` as given: CJK runs whole, other scripts split on non-word chars."""
    return _RUN_RE.findall(text)


def tokenize(text: str, *, fold: bool = True) -> list[str]:
    """Word tokens of ``text`` (module docstring), case-folded unless ``fold`` is False."""
    return _TOKEN_RE.findall(text.casefold() if fold else text)


def has_cjk(text: str) -> bool:
    return CJK_RE.search(text) is not None


@dataclass(frozen=True)
class DetectedLanguage:
    language: Language
    confident: bool  # False for a bare word or two ("OPI"): the caller may keep the previous language


# Characters that only a Chinese sentence puts around a name: pronouns, request verbs, particles,
# full-width punctuation.
_ZH_FRAME_RE = re.compile(r"[。，！？、；：我你您想要找给请推荐吗呢吧的些个]")


def detect_language(text: str) -> DetectedLanguage:
    """ "zh" when Han characters carry the message (at least half as many as Latin letters: "OPI的指甲油"
    is zh) or make its sentence around English names ("推荐一些travel cases and holders。": a Chinese
    frame word or full-width punctuation), else "en"; confident when that is clear from the text."""
    han = len(HAN_RE.findall(text))
    latin_letters = sum(1 for c in text if c.isascii() and c.isalpha())
    if han and (han >= latin_letters / 2 or (han >= 2 and _ZH_FRAME_RE.search(text))):
        return DetectedLanguage("zh", True)
    en_words = re.findall(r"[A-Za-z]{2,}", text)
    return DetectedLanguage("en", len(en_words) >= 2 or (latin_letters >= 4 and not han))


# --- sentences ----------------------------------------------------------------------------------
_CLOSERS = "\"'”’」』）)\\]"
_END_RE = re.compile(rf"[.!?]+[{_CLOSERS}]*(?=\s|$)|[。！？]+[{_CLOSERS}]*")
ABBREVIATIONS = frozenset("e.g i.e vs approx incl cf mr mrs ms dr".split())  # noqa: SIM905
_WORD_BEFORE_RE = re.compile(r"(?:^|[^\w.])([A-Za-z]+(?:\.[A-Za-z]+)*)$")
_LIST_MARKER_RE = re.compile(r"(?:^|\n|[.!?:;)]\s|\s-\s)\s*\d{1,2}$")


def sentence_ends(text: str, *, at_end: bool = True) -> list[int]:
    """Offsets just past each finished sentence of ``text`` (see the module docstring).

    ``at_end``: the end of ``text`` counts as whitespace, except after "<digit>." (a reply cut
    there may have been "4.5"). Pass False for a stream still growing: a Latin sentence is then
    finished only once whitespace follows it.
    """
    out: list[int] = []
    for m in _END_RE.finditer(text):
        mark = m.group()[0]
        if m.end() == len(text) and mark in ".!?" and not at_end:
            continue
        if mark == "." and m.end() == len(text) and m.start() > 0 and text[m.start() - 1].isdigit():
            continue
        if mark == ".":
            head = text[: m.start()]
            w = _WORD_BEFORE_RE.search(head)
            if w and w.group(1).casefold() in ABBREVIATIONS:
                continue
            if _LIST_MARKER_RE.search(head):
                continue
        out.append(m.end())
    return out


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, stripped, without empty ones; a newline also ends a sentence."""
    out: list[str] = []
    for line in text.split("\n"):
        start = 0
        for end in [*sentence_ends(line), len(line)]:
            piece = line[start:end].strip()
            if piece:
                out.append(piece)
            start = end
    return out


# --- money ----------------------------------------------------------------------------------------
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CNY": "¥", "JPY": "¥", "INR": "₹"}


def format_money(amount: float, currency: str | None = "USD", *, trim_cents: bool = False) -> str:
    """ "$1,234.50"; an unknown currency is written after the amount ("3.00 SEK"), none leaves the
    bare amount. ``trim_cents`` drops ".00" from whole amounts ("$12"), as a sentence says it."""
    value = float(amount)
    number = f"{value:,.0f}" if trim_cents and value.is_integer() else f"{value:,.2f}"
    code = (currency or "").upper()
    symbol = CURRENCY_SYMBOLS.get(code)
    if symbol:
        return f"{symbol}{number}"
    return f"{number} {code}" if code else number
