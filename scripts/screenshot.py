"""Refresh ``docs/screenshot.png``: the README's first command's demo (MovieLens-100K, the default
LLM) in headless Chromium, after a short conversation a new user might have.

    .venv/bin/python scripts/screenshot.py [--out docs/screenshot.png] [--llm NAME|none]

Needs Chromium at /usr/bin/chromium and playwright (``scripts/setup.sh --dev``). The page is
served on 127.0.0.1 only; nothing is fetched from elsewhere.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from assistant.ui.launch import create_app, make_registry
from assistant.ui.web import serving
from llm.runtime import configure

CHROMIUM = Path("/usr/bin/chromium")
TURNS = ("a funny movie for a family night, something from the 90s", "more like the second one")
TURN_TIMEOUT_MS = 120_000


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/screenshot.png")
    ap.add_argument("--llm", default=None, help="model name or 'none' (default: the assistant's default LLM)")
    a = ap.parse_args(argv)
    configure()
    from playwright.sync_api import sync_playwright

    llm_kw = {} if a.llm is None else {"llm": None if a.llm.lower() == "none" else a.llm}
    registry = make_registry(show_progress=True, **llm_kw)
    registry.get(registry.default_key)  # build the index and load the LLM before the page opens
    with serving(create_app(registry), "127.0.0.1", _free_port()) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#sa-msg textarea", timeout=60_000)
        for text in TURNS:
            page.fill("#sa-msg textarea", text)
            page.keyboard.press("Enter")
            page.wait_for_timeout(300)
            page.wait_for_function("!document.querySelector('.generating, .pending')", timeout=TURN_TIMEOUT_MS)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=a.out, full_page=True)
        browser.close()
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
