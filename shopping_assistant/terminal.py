"""``shopping-assistant chat``: a terminal REPL over the Python API, reply text streamed, cards as a table.

Lines starting with ``/`` are commands (``/like N``, ``/dislike N``, ``/new``, ``/quit``); anything
else is a shopper turn passed to ``ShoppingAssistant.stream`` unchanged.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from assistant.adapters import ADAPTER_HELP
from assistant.reply import DoneEvent, ItemsEvent, RecommendedItem, TextDelta, TextReset
from retrieval.data import DEFAULT_DATASET
from retrieval.text import format_money

__all__ = ["cards_table", "main", "run_repl"]

HELP = "commands: /like N, /dislike N (N = row of the last table), /new (new conversation), /quit"


def _cut(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def cards_table(items: Sequence[RecommendedItem], currency: str | None = "USD") -> str:
    """The cards as a fixed-width text table: row, title, price, brand, first reason."""
    if not items:
        return ""
    rows = [("#", "title", "price", "brand", "why")]
    for n, it in enumerate(items, 1):
        price = "" if it.price is None else format_money(it.price, currency)
        rows.append(
            (str(n), _cut(it.title, 44), price, _cut(it.brand or "", 16), _cut("; ".join(it.reasons), 48))
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_repl(
    bot: Any,
    read: Callable[[str], str],
    out: TextIO,
    user_id: str | None = None,
    session_id: str | None = None,
) -> int:
    """Read lines with ``read`` until EOF or ``/quit``; returns the number of turns run."""
    session = session_id or f"cli-{uuid.uuid4().hex[:12]}"
    shown: list[RecommendedItem] = []
    turns = 0
    print(HELP, file=out)
    while True:
        try:
            line = read("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print(file=out)
            return turns
        if not line:
            continue
        if line in ("/quit", "/exit"):
            return turns
        if line == "/new":
            session, shown = f"cli-{uuid.uuid4().hex[:12]}", []
            print("(new conversation)", file=out)
            continue
        if line.split()[0] in ("/like", "/dislike"):
            _feedback(bot, line, shown, session, user_id, out)
            continue
        if line.startswith("/"):
            print(HELP, file=out)
            continue
        shown = _turn(bot, line, session, user_id, out) or shown
        turns += 1


def _turn(bot: Any, line: str, session: str, user_id: str | None, out: TextIO) -> list[RecommendedItem]:
    items: list[RecommendedItem] = []
    print("assistant> ", end="", file=out, flush=True)
    try:
        for event in bot.stream(line, session_id=session, user_id=user_id):
            if isinstance(event, ItemsEvent):
                items = list(event.items)
            elif isinstance(event, TextDelta):
                print(event.text, end="", file=out, flush=True)
            elif isinstance(event, TextReset):
                # The streamed text failed the grounding check; the checked text replaces it.
                print(f"\n(revised) {event.text}", end="", file=out, flush=True)
            elif isinstance(event, DoneEvent):
                items = list(event.reply.items)
    except (ValueError, TypeError) as exc:
        print(f"\nerror: {exc}", file=out)
        return []
    print(file=out)
    if items:
        print(cards_table(items, bot.currency), file=out, flush=True)
    return items


def _feedback(
    bot: Any, line: str, shown: Sequence[RecommendedItem], session: str, user_id: str | None, out: TextIO
) -> None:
    verb, _, arg = line.partition(" ")
    if not arg.strip().isdigit() or not 1 <= int(arg) <= len(shown):
        print(f"usage: {verb} N with N between 1 and {len(shown)} (a row of the last table)", file=out)
        return
    item = shown[int(arg) - 1]
    bot.feedback(session, item.item_id, liked=verb == "/like", user_id=user_id)
    print(f"noted: {'liked' if verb == '/like' else 'not for me'}: {item.title}", file=out)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default=DEFAULT_DATASET, metavar="NAME_OR_PATH")
    p.add_argument("--llm", default=None, help="chat LLM name/dir/openai:MODEL@URL, or none (templates)")
    p.add_argument("--adapter", action="append", default=None, metavar="DIR", help=ADAPTER_HELP)
    p.add_argument("--user", default=None, help="shopper id (personalises with their history)")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    from llm.runtime import configure

    configure()
    from assistant.shopping_assistant import open_for_command

    bot = open_for_command(
        args.dataset, cache_dir=args.cache_dir, threads=args.threads, llm=args.llm, adapter=args.adapter
    )
    if bot is None:
        return 2
    try:
        run_repl(bot, input, sys.stdout, user_id=args.user)
    finally:
        bot.close()
    return 0
