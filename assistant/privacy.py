"""PII redaction applied before any user text reaches a log line, a stored transcript or a prompt;
the local-only switch that guarantees no outbound network.

Shoppers paste delivery details into chat ("ship to 12 Oak Street, call me on
+1 415 555 0134"). None of that helps ranking, so it is replaced by typed
placeholders as early as possible; the placeholders keep the sentence readable
for the parser and the LLM.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import sys
from typing import Any
from urllib.parse import urlparse

import phonenumbers

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
    r"(?P<label>(?:地址|住址|寄到|送到)[:：]?\s*)?[\u4e00-\u9fff]{1,12}(?:路|街|大道|巷|弄)\s*\d{1,5}\s*号(?:\s*\d{1,5}\s*室)?"
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


# ------------------------------------------------------------------------------ local-only mode
# One switch (``SHOPASSIST_LOCAL_ONLY=1`` or ``app.py --local-only``) that guarantees nothing leaves
# the machine: the libraries' own offline/telemetry settings, a refusal of any configured remote
# endpoint (LLM server, Chroma server, UI bind address), and a socket guard that refuses and
# records any non-loopback connection or DNS lookup that slips through anyway.

LOCAL_ONLY_ENV = "SHOPASSIST_LOCAL_ONLY"
# Forced (not setdefault) when local-only is on: a stray HF_HUB_OFFLINE=0 must not win.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",  # chromadb (we also pass anonymized_telemetry=False)
    "GRADIO_ANALYTICS_ENABLED": "False",
    "DO_NOT_TRACK": "1",
}
_TRUE = {"1", "true", "yes", "on"}


class LocalOnlyError(ValueError):
    """A remote endpoint was configured, or a connection attempted, while local-only mode is on."""


# Every refused connection / lookup since the guard was installed ("connect 93.184.216.34:443").
BLOCKED_ATTEMPTS: list[str] = []


def local_only() -> bool:
    """Whether local-only mode is on (``$SHOPASSIST_LOCAL_ONLY`` is 1/true/yes/on)."""
    return os.environ.get(LOCAL_ONLY_ENV, "").strip().lower() in _TRUE


def is_loopback_host(host: str | None) -> bool:
    """``localhost`` (and ``*.localhost``), 127.0.0.0/8, ::1 or the unspecified address; no DNS."""
    if host is None:
        return False
    h = host.strip().strip("[]").rstrip(".").lower()
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def ensure_local_url(url: str | None, what: str = "endpoint") -> str | None:
    """Return ``url`` unchanged; in local-only mode refuse one whose host is not loopback.

    The single check for every configurable remote (OpenAI-compatible LLM URL, Chroma server
    URL, ...). ``None``/empty means "not configured" and passes; a caller whose library falls
    back to a public default when the URL is unset must pass that default instead.
    """
    if not url or not local_only():
        return url
    parsed = urlparse(url if "//" in url else f"//{url}")
    try:
        host = parsed.hostname
    except ValueError:
        host = None
    if parsed.scheme in ("unix", "http+unix") or (parsed.scheme == "file" and not host):
        return url
    if not is_loopback_host(host):
        raise LocalOnlyError(
            f"local-only mode ({LOCAL_ONLY_ENV}=1) refuses the {what} {url!r}: its host {host!r} is not "
            "this machine (use 127.0.0.1, ::1 or localhost, or turn local-only mode off)"
        )
    return url


def enable_local_only(guard: bool = True) -> None:
    """Turn local-only mode on for this process and its children.

    Sets the offline/telemetry variables (before torch/transformers/gradio are imported they
    take effect at import; already-imported huggingface_hub/transformers are switched too) and,
    with ``guard``, installs the socket guard.
    """
    os.environ[LOCAL_ONLY_ENV] = "1"
    os.environ.update(OFFLINE_ENV)
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None and hasattr(hub, "HF_HUB_OFFLINE"):
        hub.HF_HUB_OFFLINE = True
    if guard:
        install_socket_guard()


def apply_local_only_from_env() -> bool:
    """``enable_local_only()`` when ``$SHOPASSIST_LOCAL_ONLY`` asks for it (run at ``import assistant``)."""
    if local_only():
        enable_local_only()
        return True
    return False


def _address_is_local(family: int, address: object) -> bool:
    if family not in (socket.AF_INET, socket.AF_INET6):
        return True  # AF_UNIX, netlink, ...: never leaves the machine
    host = address[0] if isinstance(address, tuple) and address else address
    return is_loopback_host(str(host))


def _refuse(kind: str, target: str) -> None:
    BLOCKED_ATTEMPTS.append(f"{kind} {target}")
    logging.getLogger(__name__).error("local-only mode blocked %s %s", kind, target)
    raise LocalOnlyError(f"local-only mode ({LOCAL_ONLY_ENV}=1) blocked {kind} to {target}")


def install_socket_guard() -> None:
    """Refuse (and record in ``BLOCKED_ATTEMPTS``) non-loopback connects and DNS lookups.

    Python-level: covers everything that opens sockets through the ``socket`` module (urllib,
    requests, httpx, asyncio, gradio, huggingface_hub, chromadb's HTTP client). Idempotent.
    """
    sock_cls = socket.socket
    if getattr(sock_cls.connect, "_local_only_guard", False):
        return
    real_connect, real_connect_ex, real_getaddrinfo = (
        sock_cls.connect,
        sock_cls.connect_ex,
        socket.getaddrinfo,
    )

    def connect(self: socket.socket, address: Any) -> None:
        if not _address_is_local(self.family, address):
            _refuse("connect", repr(address))
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _address_is_local(self.family, address):
            _refuse("connect", repr(address))
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in (None, "") and not is_loopback_host(str(name)) and not _is_ip_literal(str(name)):
            _refuse("DNS lookup", str(name))  # a literal IP needs no lookup; connect() decides
        return real_getaddrinfo(host, *args, **kwargs)

    for fn in (connect, connect_ex, getaddrinfo):
        fn._local_only_guard = True  # type: ignore[attr-defined]
    sock_cls.connect = connect  # type: ignore[method-assign]
    sock_cls.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
        return True
    except ValueError:
        return False
