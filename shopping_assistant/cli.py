"""``shopping-assistant {ui,chat,serve,finetune,bench,data} ...``: the one console command.

Each subcommand hands its remaining arguments to the existing entry point (the UI launcher, the
HTTP server, ``python -m finetune``, ``python -m bench.<name>``), so options and help are theirs;
this module only dispatches, and imports a subcommand's code only when it runs (``--help`` stays
fast and loads no torch).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["BENCHMARKS", "main"]

PROG = "shopping-assistant"
# python -m bench.<name> entry points (each module has main(argv)).
BENCHMARKS = {
    "chat": "chat latency: where a turn's time goes, which LLM settings make it fast",
    "compare_runs": "one system across two conversation runs on the same shoppers (before/after a change)",
    "conversation": "a simulated shopper looks for its held-out item, turn by turn",
    "finetune": "generate -> LoRA train -> base vs adapter, one timed run",
    "load": "concurrent shoppers against the Python API, the web UI or the HTTP API",
    "ranking": "every scorer side by side on one leave-one-out split",
    "redial": "replay ReDial dialogues on the MovieLens-100K demo",
    "retrieval": "retrieval latency and build throughput",
    "scale": "build and query cost of retrieval at 100k..1M items",
    "webshop": "WebShop instructions as single-turn requests on Beauty",
}


def _run_ui(argv: list[str]) -> int:
    from assistant.ui.launch import main as ui_main

    return ui_main(argv, prog=f"{PROG} ui")


def _run_chat(argv: list[str]) -> int:
    from shopping_assistant.terminal import main as chat_main

    return chat_main(argv, prog=f"{PROG} chat")


def _run_serve(argv: list[str]) -> int:
    from assistant.http_api import main as serve_main

    return serve_main(argv, prog=f"{PROG} serve")


def _run_finetune(argv: list[str]) -> int:
    from finetune.__main__ import main as finetune_main

    return finetune_main(argv)


def _run_bench(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        lines = "\n".join(f"  {name:<13} {text}" for name, text in BENCHMARKS.items())
        print(f"usage: {PROG} bench NAME [options]  (options: {PROG} bench NAME --help)\n\n{lines}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"bench.{argv[0]}")
    return int(module.main(argv[1:]) or 0)


def _sha256_pair(text: str) -> tuple[str, str]:
    name, sep, digest = text.partition("=")
    if not sep or not name or not digest:
        raise argparse.ArgumentTypeError(f"expected FILE=HEX, got {text!r}")
    return name, digest


def _run_data(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=f"{PROG} data", description="the datasets the assistant can open")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="registered dataset names with a description")
    fetch = sub.add_parser(
        "fetch",
        help="download a public Amazon review dump (online) and convert it into a catalog folder",
        description="Download a category's review + metadata dumps (resumable, size/gzip/sha256 "
        "checked) and write a catalog folder that --dataset opens. The data's licence and terms "
        "of use are yours to respect.",
    )
    fetch.add_argument("source", help="amazon-2023 or amazon-2014")
    fetch.add_argument("category", help="e.g. All_Beauty (2023), Beauty (2014); a typo lists the names")
    fetch.add_argument("--out", type=Path, help="catalog folder to write (default: in the cache)")
    fetch.add_argument(
        "--download-dir", type=Path, help="where the raw dumps are kept (default: in the cache)"
    )
    fetch.add_argument("--k-core", type=int, default=0, help="keep users and items with >= N interactions")
    fetch.add_argument("--max-reviews", type=int, default=20, help="review texts kept per item (default 20)")
    fetch.add_argument("--base-url", help="another host or mirror with the same file layout")
    fetch.add_argument(
        "--sha256",
        type=_sha256_pair,
        action="append",
        default=[],
        metavar="FILE=HEX",
        help="expected sha256 of a downloaded file (repeatable)",
    )
    fetch.add_argument("--retries", type=int, default=4, help="attempts after a connection error")
    fetch.add_argument("--force", action="store_true", help="download again even if already downloaded")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.action == "fetch":
        return _fetch(args)
    from retrieval.data import DEFAULT_DATASET, available_datasets

    for name, text in available_datasets().items():
        mark = " (default)" if name == DEFAULT_DATASET else ""
        print(f"{name}{mark}\n    {text}")
    print(
        "Any dataset folder or file (tables, Amazon 2014/2023 dumps, shared JSONL) works as --dataset PATH."
    )
    print(f"Online: '{PROG} data fetch amazon-2023 All_Beauty --k-core 5' downloads a real priced shop.")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from retrieval.data.fetch import FetchConfig, FetchError, fetch_dataset

    try:
        config = FetchConfig(
            source=args.source,
            category=args.category,
            out=args.out,
            download_dir=args.download_dir,
            base_url=args.base_url,
            k_core=args.k_core,
            max_reviews=args.max_reviews,
            sha256=dict(args.sha256),
            retries=args.retries,
            progress=not args.no_progress,
            force=args.force,
        )
        result = fetch_dataset(config, log=lambda line: print(line, file=sys.stderr))
    except (ValueError, FetchError) as exc:  # DataValidationError is a ValueError
        print(f"{PROG} data fetch: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    print(f"open it: {PROG} ui --dataset {result.out}")
    return 0


COMMANDS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "ui": ("the chat web UI (gradio) on 127.0.0.1:7860", _run_ui),
    "chat": ("chat in the terminal: streamed replies, cards as a table", _run_chat),
    "serve": ("the HTTP JSON API (FastAPI): /v1/chat, /v1/chat/stream, /docs", _run_serve),
    "finetune": ("LoRA data generation, training, evaluation (python -m finetune)", _run_finetune),
    "bench": ("run a benchmark: bench NAME [options]", _run_bench),
    "data": ("datasets: data list, data fetch SOURCE CATEGORY (download a real shop)", _run_data),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Conversational shopping assistant: local LLM, hybrid retrieval, personal ranking.",
        epilog=f"'{PROG} COMMAND --help' shows a command's options.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (text, _run) in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        p.parse_args(args or ["--help"])
        return 2
    return COMMANDS[args[0]][1](args[1:])
