"""Paired comparison of one system across two runs of ``bench.conversation`` on the same shoppers
(before/after a change: same data, seed, shopper mode and user count), from the runs' transcripts.

    python -m bench.compare_runs --before OLD-transcripts.jsonl --after NEW-transcripts.jsonl \\
        [--system full] [--label-before c7fcf27] [--label-after HEAD] --out reports/NAME

Writes ``NAME.json`` and ``NAME.md``: Hit@k and turns-to-hit of each run with the paired
bootstrap CI of the difference (after - before) and McNemar's test, over the shoppers both runs
played (a shopper in only one run is an error: the runs would not be paired).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._report import markdown_table, write_json, write_text
from bench.stats import mcnemar, paired_bootstrap


def load_first_hits(path: str | Path, system: str) -> dict[tuple[str, str], int | None]:
    """(user id, target id) -> turn of the first hit (None: never) for ``system`` in a transcripts file."""
    out: dict[tuple[str, str], int | None] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("system") == system:
            out[(str(row["user_id"]), str(row["target_id"]))] = row.get("first_hit")
    if not out:
        raise SystemExit(f"no dialogues of system {system!r} in {path}")
    return out


def compare(
    before: dict[tuple[str, str], int | None], after: dict[tuple[str, str], int | None], max_turns: int
) -> dict[str, Any]:
    if set(before) != set(after):
        only = sorted(set(before) ^ set(after))[:5]
        raise SystemExit(f"the runs played different shoppers (e.g. {only}): not paired")
    keys = sorted(before)
    hit_b = [before[k] is not None for k in keys]
    hit_a = [after[k] is not None for k in keys]
    at_b = [float(before[k] or max_turns + 1) for k in keys]
    at_a = [float(after[k] or max_turns + 1) for k in keys]
    d_hit = paired_bootstrap([float(x) for x in hit_a], [float(x) for x in hit_b])
    d_at = paired_bootstrap(at_a, at_b)
    m = mcnemar(hit_a, hit_b)
    n = len(keys)
    return {
        "shoppers": n,
        "hit_before": sum(hit_b) / n,
        "hit_after": sum(hit_a) / n,
        "at_before": sum(at_b) / n,
        "at_after": sum(at_a) / n,
        "hit_diff": {"diff": d_hit.diff, "lo": d_hit.lo, "hi": d_hit.hi},
        "at_diff": {"diff": d_at.diff, "lo": d_at.lo, "hi": d_at.hi},
        "mcnemar": {"after_only": m.b, "before_only": m.c, "p_value": m.p_value, "test": m.method},
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="transcripts JSONL of the earlier run")
    ap.add_argument("--after", required=True, help="transcripts JSONL of the later run")
    ap.add_argument("--system", default="full")
    ap.add_argument("--label-before", default="before")
    ap.add_argument("--label-after", default="after")
    ap.add_argument("--max-turns", type=int, default=5, help="the runs' --max-turns (a miss counts max+1)")
    ap.add_argument("--title", default="Paired comparison of two conversation-bench runs")
    ap.add_argument("--out", required=True, help="report path without extension")
    a = ap.parse_args(argv)
    result = compare(load_first_hits(a.before, a.system), load_first_hits(a.after, a.system), a.max_turns)
    report = {
        "bench": "compare_runs",
        "command": " ".join(["python -m bench.compare_runs", *(sys.argv[1:] if argv is None else argv)]),
        "system": a.system,
        "before": {"label": a.label_before, "transcripts": a.before},
        "after": {"label": a.label_after, "transcripts": a.after},
        **result,
    }
    out = Path(a.out)
    write_json(out.with_suffix(".json"), report)
    h, t, mc = result["hit_diff"], result["at_diff"], result["mcnemar"]
    cols = ["run", "Hit@5", "turns to hit"]

    def row(*values: str) -> dict[str, str]:
        return dict(zip(cols, values, strict=True))

    rows = [
        row(f"`{a.system}` at {a.label_before}", f"{result['hit_before']:.3f}", f"{result['at_before']:.2f}"),
        row(f"`{a.system}` at {a.label_after}", f"{result['hit_after']:.3f}", f"{result['at_after']:.2f}"),
        row(
            "after − before",
            f"{h['diff']:+.3f} [{h['lo']:+.3f}, {h['hi']:+.3f}]",
            f"{t['diff']:+.2f} [{t['lo']:+.2f}, {t['hi']:+.2f}]",
        ),
    ]
    md = [
        f"# {a.title}",
        "",
        "## Protocol",
        "",
        f"- command: `{report['command']}`",
        f"- the same {result['shoppers']} simulated shoppers (user, target) in both runs; system `{a.system}`",
        f"- before: {a.label_before} (`{a.before}`); after: {a.label_after} (`{a.after}`)",
        "- statistics: paired bootstrap over shoppers (2000 resamples, seed 0, 95% percentile CI); "
        f"McNemar on per-shopper hits; a miss counts {a.max_turns + 1} turns",
        "",
        "## Results",
        "",
        markdown_table(rows, cols),
        "",
        f"McNemar: {mc['after_only']} shoppers hit only after, {mc['before_only']} only before, "
        f"p = {mc['p_value']:.3g} ({mc['test']}).",
        "",
    ]
    write_text(out.with_suffix(".md"), "\n".join(md))
    print(
        f"{a.system}: {result['hit_before']:.3f} -> {result['hit_after']:.3f}, diff {h['diff']:+.3f} "
        f"[{h['lo']:+.3f}, {h['hi']:+.3f}]; reports in {out}.*"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
