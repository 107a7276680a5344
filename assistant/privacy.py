"""PII redaction applied before any user text reaches a log line, a stored transcript or a prompt.

Shoppers paste delivery details into chat ("ship to 12 Oak Street, call me on
+1 415 555 0134"). None of that helps ranking, so it is replaced by typed
placeholders as early as possible; the placeholders keep the sentence readable
for the parser and the LLM.
"""

from __future__ import annotations

import re

import phonenumbers

from retrieval.text import HAN_CHARS

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")

# Phone numbers are found by ``phonenumbers`` (libphonenumber's metadata: a number must be a valid
# number of one of ``PHONE_REGIONS``, or carry its own "+country" prefix), so sizes ("10 12 14 16"),
# counts ("128 256 512"), order numbers, UPCs and ISBN parts are kept. A run of 7+ digits right
# after a contact word ("call me 5550134", "电话 5550134") is redacted even when no region knows it.
PHONE_REGIONS = ("US", "CN", "GB")
_CONTACT_RE = re.compile(
    r"(?:\b(?:call|phone|tel|telephone|mobile|cell|text|sms|whatsapp|wechat|fax|contact|reach)\b"
    r"|电话|手机|联系|微信|致电)[^\d+(]{0,20}(?P<num>\+?\(?\d[\d\s().-]{5,}\d)",
    re.IGNORECASE,
)
# A number named as something else ("order 4155550134", "UPC ...", "model ...") is not a phone.
_NOT_PHONE_BEFORE = re.compile(
    r"(?:\b(?:order|sku|upc|ean|isbn|model|part|item|serial|tracking|size|sizes|asin|ref|no)\b\.?|#"
    r"|订单|型号|编号)\s*[:：]?\s*$",
    re.IGNORECASE,
)

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
    return _redact_phones(out)


def _redact_phones(text: str) -> str:
    spans: list[tuple[int, int]] = []
    for region in PHONE_REGIONS:
        for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            own_prefix = m.raw_string.lstrip("(").startswith("+")
            if own_prefix or not _NOT_PHONE_BEFORE.search(text[max(0, m.start - 12) : m.start]):
                spans.append((m.start, m.end))
    for m in _CONTACT_RE.finditer(text):
        named_else = _NOT_PHONE_BEFORE.search(text[max(0, m.start("num") - 12) : m.start("num")])
        if sum(ch.isdigit() for ch in m.group("num")) >= 7 and not named_else:
            spans.append(m.span("num"))
    out, last = [], 0
    for a, b in sorted(spans):
        if a < last:  # overlapping hits from several regions: the first one covers it
            continue
        out.append(text[last:a] + PLACEHOLDERS["phone"])
        last = b
    return "".join(out) + text[last:]


def contains_pii(text: str) -> bool:
    return redact(text) != text
