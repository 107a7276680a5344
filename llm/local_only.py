"""Local-only mode: one switch (``SHOPASSIST_LOCAL_ONLY=1``, ``app.py --local-only``,
``llm.runtime.configure(local_only=True)``) that guarantees nothing leaves the machine.

It forces the libraries' own offline/telemetry settings, refuses any configured remote endpoint
(LLM server, Chroma server, UI bind address: ``ensure_local_url``, the one check they all call),
and installs a socket guard that refuses and records any non-loopback connection or DNS lookup
that slips through anyway.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "BLOCKED_ATTEMPTS",
    "LOCAL_ONLY_ENV",
    "OFFLINE_ENV",
    "LocalOnlyError",
    "enable_local_only",
    "ensure_local_url",
    "install_socket_guard",
    "is_loopback_host",
    "local_only",
]

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
