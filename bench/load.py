"""Load test: N concurrent chat sessions for T seconds against the Python API, the web UI or the HTTP API.

``python -m bench.load [--users N[,N...]] [--seconds T] [--target api|http|http-api] [--out DIR]``

* ``api``: N threads share one ``ShoppingAssistant`` (the way the web UI shares one engine),
  each a shopper with its own session running a short scripted conversation in a loop.
* ``http``: the gradio app is served in-process on 127.0.0.1 (never another host) and N
  ``gradio_client`` clients call its ``/chat`` endpoint.
* ``http-api``: the JSON API (``assistant.http_api``) is served by uvicorn in-process on
  127.0.0.1 and N ``httpx`` clients ``POST /v1/chat``.

Bounded: at most ``MAX_USERS`` users and ``MAX_SECONDS`` seconds per level; every worker
stops at the deadline and the run ends by itself. Reports throughput (turns/s), p50/p95/p99
latency and errors per level into ``<out>/load-<target>-<dataset>.{json,md}``, one section per
``--llm`` (``none``: template replies); the highest level with 0 errors is the measured capacity.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import environment, markdown_table, slug, write_json, write_text
from llm.runtime import configure

MAX_USERS = 256
MAX_SECONDS = 600.0
SCRIPT = [
    "a moisturizer under $40, not Olay",
    "make it under $25",
    "compare the first two",
    "tell me more about the second one",
    "something else",
    "a shampoo and conditioner bundle under $60",
]
# Targets: how long one turn may take before it counts as an error (a user would give up).
TURN_TIMEOUT_S = 30.0


@dataclass
class LevelResult:
    users: int
    seconds: float
    turns: int
    errors: int
    throughput: float  # completed turns per second
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    error_kinds: dict[str, int] = field(default_factory=dict)


def _percentiles(lat: Sequence[float]) -> tuple[float | None, ...]:
    if not lat:
        return (None, None, None, None)
    a = np.asarray(lat) * 1000
    return tuple(round(float(x), 1) for x in (*np.percentile(a, [50, 95, 99]), a.max()))


def run_level(turn: Callable[[int, int, str], Any], users: int, seconds: float) -> LevelResult:
    """``users`` threads call ``turn(user, k, message)`` in a loop until the deadline."""
    lat: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    start = threading.Barrier(users + 1)
    deadline = [0.0]

    def worker(u: int) -> None:
        start.wait()
        k = 0
        while time.perf_counter() < deadline[0]:
            msg = SCRIPT[k % len(SCRIPT)]
            t0 = time.perf_counter()
            try:
                turn(u, k, msg)
                dt = time.perf_counter() - t0
                with lock:
                    if dt > TURN_TIMEOUT_S:
                        errors["timeout"] = errors.get("timeout", 0) + 1
                    else:
                        lat.append(dt)
            except Exception as e:  # counted, never fatal: the point is to see them
                with lock:
                    key = type(e).__name__
                    errors[key] = errors.get(key, 0) + 1
                    if errors[key] == 1:
                        traceback.print_exc(limit=3, file=sys.stderr)
            k += 1

    threads = [threading.Thread(target=worker, args=(u,), daemon=True) for u in range(users)]
    for t in threads:
        t.start()
    t_begin = time.perf_counter()
    deadline[0] = t_begin + seconds
    start.wait()
    for t in threads:
        t.join(timeout=seconds + TURN_TIMEOUT_S + 30)
    elapsed = time.perf_counter() - t_begin
    n_err = sum(errors.values())
    p50, p95, p99, mx = _percentiles(lat)
    return LevelResult(
        users, round(elapsed, 2), len(lat), n_err, round(len(lat) / elapsed, 2), p50, p95, p99, mx, errors
    )


def _api_turn(bot: Any, run_id: str) -> Callable[[int, int, str], Any]:
    def turn(u: int, k: int, msg: str) -> Any:
        # A new session every script loop keeps conversations short, like real shoppers.
        sid = f"load-{run_id}-{u}-{k // len(SCRIPT)}"
        reply = bot.chat(msg, session_id=sid, user_id=f"load-user-{u}")
        if not reply.text:
            raise RuntimeError("empty reply")
        return reply

    return turn


def _http_turn(url: str) -> tuple[Callable[[int, int, str], Any], Callable[[], None]]:
    from gradio_client import Client

    clients: dict[tuple[int, int], Any] = {}
    lock = threading.Lock()

    def turn(u: int, k: int, msg: str) -> Any:
        key = (u, k // len(SCRIPT))  # a new browser session per script loop
        with lock:
            c = clients.get(key)
        if c is None:
            c = Client(url, verbose=False, download_files=False)
            with lock:
                clients[key] = c
        out = c.predict(msg, api_name="/chat")
        chat = out[0]
        if not chat or not chat[-1].get("content"):
            raise RuntimeError("empty reply")
        return out

    def close() -> None:
        for c in clients.values():
            with contextlib.suppress(Exception):
                c.close()

    return turn, close


def _http_api_turn(url: str, run_id: str) -> tuple[Callable[[int, int, str], Any], Callable[[], None]]:
    import httpx

    client = httpx.Client(base_url=url, timeout=TURN_TIMEOUT_S * 2)

    def turn(u: int, k: int, msg: str) -> Any:
        body = {
            "message": msg,
            "session_id": f"load-{run_id}-{u}-{k // len(SCRIPT)}",
            "user_id": f"load-user-{u}",
        }
        r = client.post("/v1/chat", json=body)
        r.raise_for_status()
        if not r.json().get("text"):
            raise RuntimeError("empty reply")
        return r

    return turn, client.close


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    p.add_argument("--users", default="1,2,4,8,16", help="comma-separated concurrency levels (each <= 256)")
    p.add_argument("--seconds", type=float, default=20.0, help="duration of each level (<= 600)")
    p.add_argument("--target", choices=["api", "http", "http-api"], default="api")
    p.add_argument(
        "--dataset", default="beauty-fixture", help="'beauty-fixture' (synthetic) or a dataset name/path"
    )
    p.add_argument(
        "--llm",
        default="none",
        help="chat LLM name or 'none' (template replies); a comma list runs each, one report (none,qwen2.5-coder-0.5b)",
    )
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--out", default="reports")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    args = p.parse_args(argv)
    levels = [int(x) for x in str(args.users).split(",") if x.strip()]
    if not levels or any(n < 1 or n > MAX_USERS for n in levels):
        p.error(f"--users must be between 1 and {MAX_USERS}")
    if not 0 < args.seconds <= MAX_SECONDS:
        p.error(f"--seconds must be in (0, {MAX_SECONDS:g}]")
    configure()
    if args.dataset == "beauty-fixture":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from assistant_catalog import make_dataset

        dataset: Any = make_dataset()
    else:
        dataset = args.dataset
    llms = [x.strip() for x in str(args.llm).split(",") if x.strip()]
    if not llms:
        p.error("--llm needs a model name or 'none'")
    runs = [_measure(args, dataset, name, levels) for name in llms]
    name = slug(runs[0]["dataset"])
    report = {
        "bench": "load",
        "target": args.target,
        "dataset": runs[0]["dataset"],
        "seconds_per_level": args.seconds,
        "script": SCRIPT,
        "turn_timeout_s": TURN_TIMEOUT_S,
        "runs": runs,
        "environment": environment(),
    }
    out = Path(args.out)
    write_json(out / f"load-{args.target}-{name}.json", report)
    cols = ["users", "turns", "errors", "throughput", "p50_ms", "p95_ms", "p99_ms", "max_ms"]
    md = [
        f"# Load test: {args.target} on {runs[0]['dataset']}\n",
        f"- command: `python -m bench.load {' '.join(sys.argv[1:] if argv is None else argv)}`",
        f"- each level: N concurrent shoppers loop over a {len(SCRIPT)}-turn script for {args.seconds:g} s "
        f"(new session per loop; a turn over {TURN_TIMEOUT_S:g} s counts as an error); the replies' "
        "LLM per section, the same script and levels for each",
        f"- machine: {environment().get('cpu_count')} CPUs, torch threads {args.threads}\n",
    ]
    for run in runs:
        md += [
            f"## Replies: {'templates (llm=none)' if run['llm'].lower() == 'none' else run['llm']}\n",
            f"Setup (index, model) {run['setup_s']} s.\n",
            markdown_table(run["levels"], cols, digits=2),
            f"\n**Capacity with 0 errors: {run['capacity_users_zero_errors']} concurrent users**; peak "
            f"throughput {run['peak_throughput']} turns/s at {run['peak_users']} users.\n",
        ]
    md.append(
        "Latency grows with N because turns share the CPU (GIL + BLAS); errors, not latency, define "
        "capacity here.\n"
    )
    write_text(out / f"load-{args.target}-{name}.md", "\n".join(md))
    print(f"wrote {out / f'load-{args.target}-{name}.md'}")
    return 0


def _measure(args: argparse.Namespace, dataset: Any, llm_name: str, levels: Sequence[int]) -> dict[str, Any]:
    """Every level against one assistant whose replies come from ``llm_name`` ('none': templates)."""
    from assistant import ShoppingAssistant

    llm = None if llm_name.lower() == "none" else llm_name
    t0 = time.perf_counter()
    bot = ShoppingAssistant.from_dataset(
        dataset, llm=llm, cache_dir=args.cache_dir, threads=args.threads, show_progress=True
    )
    setup_s = time.perf_counter() - t0
    run_id = str(int(time.time()))
    close: Callable[[], None] = lambda: None  # noqa: E731
    server = None
    if args.target == "api":
        turn = _api_turn(bot, run_id)
    elif args.target == "http-api":
        from assistant.http_api import create_api
        from assistant.http_api import serving as serving_api

        server = serving_api(create_api(bot), "127.0.0.1", _free_port())
        turn, close = _http_api_turn(server.__enter__(), run_id)
    else:
        from assistant.ui.engines import DatasetChoice, EngineRegistry
        from assistant.ui.web import build_app, serving

        registry = EngineRegistry([DatasetChoice("load", "load", bot.dataset)], lambda _src: bot)
        server = serving(build_app(registry), "127.0.0.1", _free_port())
        turn, close = _http_turn(server.__enter__())
    results = []
    try:
        for n in levels:
            res = run_level(turn, n, args.seconds)
            results.append(res)
            print(
                f"llm={llm_name} users={n:4d} turns={res.turns:6d} errors={res.errors:4d} "
                f"thr={res.throughput:7.2f}/s p50={res.p50_ms}ms p95={res.p95_ms}ms p99={res.p99_ms}ms",
                flush=True,
            )
    finally:
        close()
        if server is not None:
            server.__exit__(None, None, None)
        dataset_name = bot.dataset.name
        bot.close()
    clean = [r.users for r in results if r.errors == 0 and r.turns > 0]
    best = max(results, key=lambda r: r.throughput)
    return {
        "llm": llm_name,
        "dataset": dataset_name,
        "setup_s": round(setup_s, 1),
        "levels": [asdict(r) for r in results],
        "capacity_users_zero_errors": max(clean) if clean else 0,
        "peak_throughput": best.throughput,
        "peak_users": best.users,
    }


if __name__ == "__main__":
    sys.exit(main())
