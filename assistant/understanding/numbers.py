"""Numbers as shoppers write them: digits ("1,000", "19.99", "2k"), English words ("twenty five")
and Chinese numerals ("两百五"); the word tables are in ``data/numbers.yaml``."""

from __future__ import annotations

import math
import re

from assistant.understanding import lexicon

__all__ = ["CNNUM", "NUMBER", "WORDNUM", "cn_number", "fmt", "to_number"]

_DATA = "numbers"  # data/numbers.yaml

_SMALL = (
    r"(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[- ](?:one|two|three|four|five|six|"
    r"seven|eight|nine))?|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|ten|"
    r"one|two|three|four|five|six|seven|eight|nine)(?![a-z])"
)
_SCALE = r"(?:hundred|thousand)(?![a-z])"
_TERM = rf"(?:(?:a|{_SMALL})[\s-]+{_SCALE})"
# An English number phrase: "twenty-five", "a hundred", "two hundred fifty", "one thousand two hundred
# and fifty"; after a scale word come only further terms, so "one two" stays two numbers.
WORDNUM = rf"(?:{_TERM}(?:(?:\s+and)?[\s-]+(?:{_TERM}|{_SMALL}|{_SCALE}))*|{_SMALL}|{_SCALE})"
CNNUM = r"[零一二两三四五六七八九十百千万]+"
NUMBER = r"[-−]?\s?\d+(?:,\d{3})*(?:\.\d+)?(?:e[+-]?\d+)?"


def to_number(raw: str, mul: str | None) -> float | None:
    """Value of a matched amount (digits, English or Chinese words) times its multiplier ("k", "千")."""
    raw = raw.strip().replace("−", "-")
    compact = raw.replace(" ", "")
    value: float | None
    if re.fullmatch(r"-?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?", compact, re.I):
        try:
            value = float(compact.replace(",", ""))
        except (ValueError, OverflowError):
            return None
    elif re.fullmatch(CNNUM, raw):
        value = cn_number(raw)
    else:
        value = _word_number(raw.lower())
    if value is None:
        return None
    factor = lexicon.numbers(_DATA, "multipliers").get((mul or "").strip(), 1)
    try:
        return value * factor
    except OverflowError:
        return math.inf


def _word_number(raw: str) -> float | None:
    """Value of an English number phrase: scales multiply what precedes them ("two hundred fifty")."""
    values = lexicon.numbers(_DATA, "word_values")
    total, current = 0, 0
    for w in re.split(r"[\s-]+", raw):
        if w == "and":
            continue
        if w not in values:
            return None
        v = values[w]
        if v == 1000:
            total += max(current, 1) * v
            current = 0
        elif v == 100:
            current = max(current, 1) * v
        else:
            current += v
    value = total + current
    return float(value) if value else None


def cn_number(raw: str) -> float | None:
    """Value of a Chinese numeral ("两百五" = 250, "一千二" = 1200, "一万二" = 12000, "3千" handled by the multiplier); None if not one."""
    digits, units = lexicon.numbers(_DATA, "cn_digits"), lexicon.numbers(_DATA, "cn_units")
    total, section, digit = 0, 0, None
    for ch in raw:
        if ch in digits:
            digit = digits[ch] if digit is None else digit * 10 + digits[ch]
        elif ch in units:
            unit = units[ch]
            if unit == 10000:
                total += (section + (digit or 0)) * unit
                section, digit = 0, None
            else:
                section += (1 if digit is None else digit) * unit
                digit = None
        else:
            return None
    rest = digit or 0
    # "两百五" = 250: a trailing digit after a unit scales to the next lower unit.
    if digit is not None and raw[-1] in digits and len(raw) >= 2 and raw[-2] in "百千万":
        rest = digit * units[raw[-2]] // 10
    value = total + section + rest
    return float(value) if value or raw in ("零",) else None


def fmt(x: float) -> str:
    """A number as a message shows it ("20", "19.99")."""
    return f"{x:g}" if abs(x) < 1e15 else f"{x:.3g}"
