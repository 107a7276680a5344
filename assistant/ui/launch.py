"""Chat web UI for the shopping assistant: ``shopping-assistant ui [--dataset NAME_OR_PATH ...]``.

Serves on 127.0.0.1 by default, works offline (no CDN fonts or scripts, no
analytics, no share links) and builds the first dataset's engine before the
URL is printed, so the first message does not wait for indexing.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from assistant.adapters import ADAPTER_HELP
from assistant.ui.engines import DatasetSourceValue, EngineRegistry, dataset_choices, default_factory
from assistant.ui.web import build_app, launch_app
from llm.local_only import LOCAL_ONLY_ENV, local_only
from llm.runtime import configure
from retrieval.data import DEFAULT_DATASET, available_datasets

__all__ = ["create_app", "main", "make_registry", "parse_args"]


def make_registry(
    datasets: Sequence[DatasetSourceValue] | Mapping[str, DatasetSourceValue] | None = None,
    *,
    llm: Any = ...,
    cache_dir: str | Path | None = None,
    threads: int | None = None,
    include_demos: bool = True,
    **engine_options: Any,
) -> EngineRegistry:
    """Engines for the given datasets (first = default), followed by the registered demo datasets.

    ``datasets``: names/paths/``Dataset`` objects, or a ``{label: source}`` mapping.

    ``llm`` left out means the assistant's default LLM; ``llm=None`` is passed through as is.
    """
    if isinstance(datasets, Mapping):
        sources: dict[str, DatasetSourceValue] = dict(datasets)
    else:
        sources = {c.key: c.source for c in dataset_choices(datasets)} if datasets else {}
    if include_demos or not sources:
        demos = [DEFAULT_DATASET, *(n for n in available_datasets() if n != DEFAULT_DATASET)]
        for name in demos:
            if name not in sources and name not in sources.values():
                sources[name] = name
    if llm is not ...:
        engine_options["llm"] = llm
    factory = default_factory(cache_dir=cache_dir, threads=threads, **engine_options)
    return EngineRegistry(dataset_choices(sources), factory)


def create_app(registry: EngineRegistry, **options: Any):
    """The gradio Blocks for ``registry`` (kept separate so tests can launch it in-process)."""
    return build_app(registry, **options)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_args(argv: Sequence[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument(
        "--dataset",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME_OR_PATH",
        help=f"registered dataset names ({', '.join(available_datasets())}) or dataset folders/files; "
        "the first is opened at start, all of them plus the demo datasets appear in the picker",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument(
        "--llm",
        default=None,
        help="chat LLM: registry name, local model dir, openai:MODEL@http://host:port/v1 (any "
        "OpenAI-compatible server), or none (default: the assistant's default)",
    )
    p.add_argument(
        "--llm-url",
        default=os.environ.get("SHOPASSIST_LLM_URL") or None,
        metavar="URL",
        help="serve replies from this OpenAI-compatible base URL (vLLM, llama.cpp, TGI, "
        "python -m llm.openai_server); --llm then names the served model, default the "
        "endpoint's first (default: $SHOPASSIST_LLM_URL)",
    )
    p.add_argument("--adapter", action="append", default=None, metavar="DIR", help=ADAPTER_HELP)
    p.add_argument(
        "--store-url",
        default=None,
        metavar="URL",
        help="Chroma server for the product vectors, http://host:port[?tenant=T&database=D] "
        "(default: $SHOPASSIST_CHROMA_URL, else an embedded Chroma in the cache dir)",
    )
    p.add_argument("--cache-dir", default=None, help="where converted models and indexes are cached")
    p.add_argument("--threads", type=int, default=None, help="torch threads for the LLM")
    p.add_argument("--no-preload", action="store_true", help="build the first engine on the first message")
    p.add_argument(
        "--remote-images",
        action="store_true",
        help="start with the UI's 'photos from the web' switch on (remote image URLs in the catalog "
        "are then loaded by the browser); local image files are always shown; ignored in local-only mode",
    )
    p.add_argument(
        "--local-only",
        action="store_true",
        help=f"guarantee no outbound network (same as {LOCAL_ONLY_ENV}=1): offline model loading, "
        "no telemetry, loopback-only LLM/Chroma URLs and bind address; see docs/privacy.md",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Before the engines load torch; gradio (imported above) reads its analytics switch per call.
    configure(local_only=True if args.local_only else None)
    if local_only() and not _is_loopback(args.host):
        print(f"error: local-only mode serves on loopback only; refusing --host {args.host}", file=sys.stderr)
        return 2
    if not _is_loopback(args.host):
        print(
            f"warning: binding {args.host}: the UI has no authentication; anyone who can reach this "
            "address can use it",
            file=sys.stderr,
        )
    llm_options: dict[str, Any] = {} if args.llm is None else {"llm": args.llm}
    if args.llm_url:
        llm_options["llm_url"] = args.llm_url
    if args.store_url:
        llm_options["store_url"] = args.store_url
    if args.adapter:
        llm_options["adapter"] = args.adapter
    try:
        registry = make_registry(args.dataset, cache_dir=args.cache_dir, threads=args.threads, **llm_options)
        if not args.no_preload:
            print(f"Preparing {registry.default_key!r} (first run builds the index and converts the model)…")
            registry.get(registry.default_key)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.remote_images and local_only():
        print("warning: --remote-images is ignored in local-only mode", file=sys.stderr)
    demo = create_app(registry, remote_images=args.remote_images)
    url = launch_app(demo, args.host, args.port, prevent_thread_lock=True, quiet=True)
    print(f"Shopping assistant running at {url}  (Ctrl+C to stop)", flush=True)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
    return 0
