"""Report writing shared by every bench: atomic JSON/markdown, markdown tables, bar plots, resource meters.

Benches build a plain dict of results and call these helpers, so every report
has the same shape: ``<bench>-<dataset>.json`` (machine-readable), ``.md``
(human table with the protocol printed beside the numbers) and ``.png``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import platform
import re
import resource
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.files import atomic_write


def slug(text: str) -> str:
    """File-name-safe dataset/bench name."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-").lower()
    if not s:
        raise ValueError(f"cannot make a file name from {text!r}")
    return s


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _jsonable(obj.item())
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    path = Path(path)
    atomic_write(path, (json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n").encode())
    return path


def write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    atomic_write(path, text.encode())
    return path


def fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], digits: int = 4) -> str:
    """GitHub table; ``columns`` picks and orders the keys, missing values print as '–'."""
    head = "| " + " | ".join(columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(fmt(r.get(c), digits) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def bar_plot(
    path: str | Path,
    series: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str],
    title: str,
    references: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """Grouped bars: one group per metric, one bar per system (``series`` = system -> metric -> value).

    ``references`` (published numbers) are drawn hatched so they are never mistaken for our runs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(series) + list(references or {})
    n = max(len(systems), 1)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(metrics) + 0.35 * n), 4.2))
    for j, name in enumerate(systems):
        ref = name not in series
        values = (references or {}).get(name, {}) if ref else series[name]
        xs = [i + (j - (n - 1) / 2) * width for i in range(len(metrics))]
        ys = [float(values.get(m) or 0.0) for m in metrics]
        ax.bar(
            xs,
            ys,
            width,
            label=name + (" (published)" if ref else ""),
            hatch="//" if ref else None,
            alpha=0.55 if ref else 1.0,
        )
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels(metrics)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write a matplotlib figure as PNG atomically (a crash never leaves half a plot) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    path = Path(path)
    atomic_write(path, buf.getvalue())
    return path


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Measurement:
    seconds: float = 0.0
    peak_rss_delta_mb: float | None = None  # peak resident memory above the starting RSS
    cpu_seconds: float = 0.0  # user+sys CPU of this process (wall >> cpu/threads means contention)


@contextmanager
def measure(interval: float = 0.05) -> Iterator[Measurement]:
    """Wall time, CPU time and peak RSS growth of the block.

    RSS is sampled from /proc/self/statm every ``interval`` s by a thread (this
    sees torch/numpy buffers, which tracemalloc misses); elsewhere it falls back
    to ``ru_maxrss`` growth, which is 0 when the block did not raise the
    process's lifetime peak.
    """
    m = Measurement()
    start_rss = _rss_bytes()
    peak = [start_rss or 0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            r = _rss_bytes()
            if r is not None and r > peak[0]:
                peak[0] = r

    thread = threading.Thread(target=sample, daemon=True) if start_rss is not None else None
    if thread:
        thread.start()
    maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    try:
        yield m
    finally:
        m.seconds = time.perf_counter() - t0
        m.cpu_seconds = time.process_time() - cpu0
        stop.set()
        if thread:
            thread.join()
            end = _rss_bytes() or 0
            m.peak_rss_delta_mb = (max(peak[0], end) - start_rss) / 2**20
        else:
            m.peak_rss_delta_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss0) / 1024


def environment() -> dict[str, Any]:
    """Where the numbers were measured (CPU count and load matter on a shared box)."""
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    with suppress(OSError):
        env["load_average_1m_5m_15m"] = list(os.getloadavg())
    try:
        import torch

        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return env


# --- ranker weights on the command line ------------------------------------------------------
def parse_ranker_weights(text: str) -> dict[str, float]:
    """A ``--ranker`` value, 'name=value,...' -> {name: value}; names are checked by ``RankerWeights``."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise SystemExit(f"--ranker wants name=number pairs, got {part!r}") from None
        if not sep:
            raise SystemExit(f"--ranker wants name=number pairs, got {part!r}")
    if out:
        try:
            ranker_weights(out)
        except TypeError as e:
            raise SystemExit(f"--ranker: {e}") from None
    return out


def ranker_weights(changed: dict[str, float]) -> dict[str, Any]:
    """Every ranker weight the assistants run with: the defaults with ``changed`` applied. The
    ranker is imported here, not at module level: it pulls in the torch-based scorers, and
    importing a bench module loads no torch (tests/test_runtime.py)."""
    from retrieval.ranker import RankerWeights

    return dataclasses.asdict(RankerWeights(**changed))
