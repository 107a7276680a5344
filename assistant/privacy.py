"""PII redaction applied before any user text reaches a log line, a stored transcript or a prompt.

Shoppers paste delivery details into chat ("ship to 12 Oak Street, call me on
+1 415 555 0134"). None of that helps ranking, so it is replaced by typed
placeholders as early as possible; the placeholders keep the sentence readable
for the parser and the LLM.
"""

from __future__ import annotations

import re

from retrieval.text import HAN_CHARS

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")

# International or local phone numbers: 7+ digits with optional separators, an
# optional "+country" prefix and optional "(area)". Prices ("$19.99"), years and
# short numbers never reach 7 digits with these separators, so they are kept.
PHONE = re.compile(
    r"(?<![\w$.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){2,4}(?![\w.])"
)
# Mainland-China mobile numbers written without separators (11 digits, 1[3-9]...).
CN_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")

_STREET_TYPES = (
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|"
    r"terrace|parkway|pkwy|highway|hwy|circle|cir|square|sq"
)
STREET_ADDRESS = re.compile(
    rf"\b\d{{1,6}}[A-Za-z]?\s+(?:[A-Z][\w'-]*\.?\s+){{1,4}}(?:{_STREET_TYPES})\b\.?"
    r"(?:,?\s*(?:apt|apartment|suite|unit|#)\.?\s*\w+)?",
    re.IGNORECASE,
)
# Chinese addresses: "...路12号", "...街88号", optionally preceded by a district/city.
CN_ADDRESS = re.compile(
    rf"(?P<label>(?:地址|住址|寄到|送到)[:：]?\s*)?[{HAN_CHARS}]{{1,12}}(?:路|街|大道|巷|弄)"
    r"\s*\d{1,5}\s*号(?:\s*\d{1,5}\s*室)?"
)

PLACEHOLDERS = {"email": "[EMAIL]", "phone": "[PHONE]", "address": "[ADDRESS]"}


def redact(text: str) -> str:
    """Replace e-mail addresses, phone numbers and street addresses with placeholders."""
    if not text:
        return text
    out = EMAIL.sub(PLACEHOLDERS["email"], text)
    out = STREET_ADDRESS.sub(PLACEHOLDERS["address"], out)
    out = CN_ADDRESS.sub(lambda m: (m.group("label") or "") + PLACEHOLDERS["address"], out)
    out = CN_MOBILE.sub(PLACEHOLDERS["phone"], out)
    out = PHONE.sub(_phone_or_keep, out)
    return out


def _phone_or_keep(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group(0))
    return PLACEHOLDERS["phone"] if digits >= 7 else match.group(0)


def contains_pii(text: str) -> bool:
    return redact(text) != text
