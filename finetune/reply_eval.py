"""Reply evaluation (``python -m finetune evaluate --task reply``): the product's own reply path on
one split of a ``generate --task reply`` folder, for the template (``rules``), the base LLM and
an adapter.

Each record's request is understood and planned again by the product (the prompt must equal the
record's; a mismatch is counted), then ``ReplyGenerator.generate`` streams the LLM's reply with
the product's decoding settings, grounding checks, repair and template fallback. Per record and
system: grounding violations of the LLM's first attempt (the product's ``GroundingChecker`` plus
prompt echo), whether the reply was regenerated or fell back to the template, whether it copied a
card line (``card_copy``, the flag ``bench.chat`` counts), length (words, characters) and
language match of the LLM's own text. Means with 95% percentile-bootstrap CIs over records and
paired differences to the base (``understand_eval.bootstrap_summary``). A blind pairwise
judgement (``--judgements``, ids + choices written by a judge with
``finetune/configs/reply-rubric.md``) adds the adapter's preference share with its CI.

The code reads ``<split>_reply.jsonl`` only: dev for every choice, test once per reported number.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from assistant.generation.generate import ReplyGenerator
from assistant.plan import Plan
from assistant.reply import GroundingReport, TextReset
from assistant.shopping_assistant import ShoppingAssistant
from finetune.data import read_jsonl, task_inputs
from finetune.metrics import write_report
from finetune.reply_data import open_product, reply_split_path
from finetune.understand_eval import bootstrap_summary
from llm.messages import to_chat_dicts
from llm.registry import TEST_LLM
from retrieval.data.registry import load_dataset
from retrieval.files import atomic_write
from retrieval.text import detect_language

__all__ = ["REPLY_METRICS", "evaluate_reply", "judge_order", "preference"]

SYSTEMS = ("rules", "base", "adapter")
REPLY_METRICS = (
    "violation",
    "violations",
    "regenerated",
    "fallback",
    "card_copy",
    "words",
    "chars",
    "lang_match",
    "prompt_match",
)
"""Per-record values averaged over records (booleans as 0/1)."""


def run_generation(generator: ReplyGenerator, plan: Plan) -> tuple[str, str, GroundingReport]:
    """The product's reply for ``plan``: (shown text, the LLM's own text before any template
    fallback, grounding report)."""
    gen = generator.generate(plan)
    shown, attempt = "", None
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            text, report = stop.value
            return text, (attempt if attempt is not None else text), report
        if isinstance(ev, TextReset):
            if ev.text == plan.fallback and attempt is None:
                attempt = shown
            shown = ev.text
        else:
            shown += ev.text


def _words(text: str) -> int:
    """Words, counting each CJK character as one (a Chinese reply has no spaces)."""
    return sum(len(w) if any("\u4e00" <= ch <= "\u9fff" for ch in w) else 1 for w in text.split())


def score_case(bot: ShoppingAssistant, rec: dict, system: str) -> dict[str, Any]:
    """One record through the product: the re-planned prompt, the reply and its checks."""
    meta = rec["meta"]
    turn = bot.understand(meta["message"], meta["session_id"], meta["user_id"])
    plan = bot.router.plan(turn)
    prompt = [m for m in rec["messages"] if m["role"] != "assistant"]
    row: dict[str, Any] = {
        "id": rec["id"],
        "prompt_match": float(plan.messages is not None and to_chat_dicts(plan.messages) == prompt),
    }
    if system == "rules" or plan.messages is None:
        text = attempt = plan.fallback
        bad = bot.generator.check(text, plan) if plan.grounding is not None else []
        report = GroundingReport(violations=bad, fallback=True, checked=False)
    else:
        text, attempt, report = run_generation(bot.generator, plan)
    lang = detect_language(attempt).language if attempt.strip() else None
    row.update(
        text=text,
        llm_text=attempt,
        violation=float(bool(report.violations)),
        violations=float(len(report.violations)),
        violation_kinds=sorted({v.kind for v in report.violations}),
        regenerated=float(report.regenerated),
        fallback=float(report.fallback and system != "rules"),
        card_copy=float(bool(plan.meta.get("card_copy"))),
        words=float(_words(attempt)),
        chars=float(len(attempt)),
        lang_match=float(lang == meta["lang"]),
    )
    return row


def _columns(rows: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.array([r[k] for r in rows], dtype=float) for k in REPLY_METRICS}


def _means(cols: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, float]:
    return {k: float(cols[k][idx].mean()) if len(idx) else math.nan for k in REPLY_METRICS}


# ------------------------------------------------------------------------------------------------
# Blind pairwise judgement
# ------------------------------------------------------------------------------------------------


def judge_order(record_id: str, seed: int) -> tuple[str, str]:
    """(system shown as A, system shown as B) for one record: a seeded coin per id."""
    coin = np.random.default_rng([seed, zlib.crc32(record_id.encode())]).random()
    return ("adapter", "base") if coin < 0.5 else ("base", "adapter")


def preference(judgements: dict[str, Any], n_boot: int, seed: int) -> dict[str, Any]:
    """The adapter's preference share over judged pairs (a tie counts half) with a 95% bootstrap CI."""
    order_seed = int(judgements["order_seed"])
    scores, wins = [], {"adapter": 0, "base": 0, "tie": 0}
    for j in judgements["pairs"]:
        a, b = judge_order(j["id"], order_seed)
        choice = j["choice"]
        if choice not in ("A", "B", "tie"):
            raise ValueError(f"judgement {j['id']}: choice must be A, B or tie, got {choice!r}")
        winner = "tie" if choice == "tie" else a if choice == "A" else b
        wins[winner] += 1
        scores.append(0.5 if winner == "tie" else float(winner == "adapter"))
    x = np.array(scores)
    rng = np.random.default_rng(seed)
    boots = [float(x[rng.integers(0, len(x), len(x))].mean()) for _ in range(n_boot)] if len(x) else []
    return {
        "n": len(x),
        "judge": judgements.get("judge"),
        "rubric": judgements.get("rubric"),
        "adapter_share": float(x.mean()) if len(x) else None,
        "ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))] if boots else None,
        "counts": wins,
    }


def _pairs_markdown(recs: list[dict], rows: dict[str, list[dict]], seed: int) -> str:
    """The blind pairs for a judge: request, the prompt's best-match line, A and B (order seeded)."""
    lines = [f"# Blind pairs (order seed {seed}): judge with finetune/configs/reply-rubric.md", ""]
    for k, rec in enumerate(recs):
        a, b = judge_order(rec["id"], seed)
        user = rec["messages"][1]["content"]
        best = next((ln for ln in user.splitlines() if ln.startswith(("Best match:", "最佳匹配："))), "")
        lines += [
            f"## {rec['id']} ({rec['meta']['lang']})",
            f"- request: {rec['meta']['message']}",
            f"- {best}",
            f"- A: {rows[a][k]['text']}",
            f"- B: {rows[b][k]['text']}",
            "",
        ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# evaluate --task reply
# ------------------------------------------------------------------------------------------------


def _base_model(cfg: Any) -> str:
    if cfg.base:
        return str(cfg.base)
    conf = Path(cfg.adapter) / "training_config.json" if cfg.adapter else None
    if conf is not None and conf.is_file():
        return str(json.loads(conf.read_text()).get("model", {}).get("model") or TEST_LLM)
    return TEST_LLM


def _run_systems(cfg: Any, systems: list[str], recs: list[dict], catalog: Any) -> tuple[dict, dict]:
    rows: dict[str, list[dict]] = {}
    seconds: dict[str, float] = {}
    base = _base_model(cfg)
    for name in systems:
        options: dict[str, Any] = {"llm": None if name == "rules" else base}
        if name == "adapter":
            options["adapter"] = cfg.adapter
        bot = open_product(catalog, cfg.cache_dir, cfg.threads, **options)
        t = time.perf_counter()
        rows[name] = [
            score_case(bot, rec, name) for rec in tqdm(recs, desc=f"reply/{name}", disable=not cfg.progress)
        ]
        seconds[name] = round(time.perf_counter() - t, 1)
        bot.close()
    return rows, seconds


def evaluate_reply(cfg: Any) -> dict[str, Any]:
    """Score the systems on ``cfg.split``; write ``<out>/<tag>.{json,md}``, the untracked
    ``<tag>-transcripts.jsonl`` (every reply) and ``<tag>-pairs-transcripts.md`` (blind pairs)."""
    t0 = time.perf_counter()
    data = Path(cfg.data)
    manifest, systems = task_inputs(data, "reply", cfg.systems, SYSTEMS)
    if "adapter" in systems and not cfg.adapter:
        raise ValueError("system adapter needs --adapter")
    recs = read_jsonl(reply_split_path(data, cfg.split))
    recs = recs[: cfg.n_understand] if cfg.n_understand else recs
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    transcripts = out / f"{cfg.tag}-transcripts.jsonl"
    rows, seconds = _saved_rows(cfg, transcripts, systems, recs) if cfg.reuse_outputs else ({}, {})
    missing = [s for s in systems if s not in rows]
    if missing:
        catalog = load_dataset(cfg.catalog or manifest["source"]["data"])
        new_rows, new_seconds = _run_systems(cfg, missing, recs, catalog)
        rows.update(new_rows)
        seconds.update(new_seconds)
    rows = {s: rows[s] for s in systems}
    saved = {"rows": rows, "seconds": seconds, "adapter": cfg.adapter}
    atomic_write(transcripts, json.dumps(saved, ensure_ascii=False))
    reference = "base" if "base" in rows else systems[0]
    summary = bootstrap_summary(rows, cfg.bootstrap, cfg.seed, reference, _columns, _means)
    report: dict[str, Any] = {
        "task": "reply",
        "split": cfg.split,
        "n_records": len(recs),
        "base_model": _base_model(cfg),
        "config": {k: v for k, v in vars(cfg).items()},
        "data_manifest": {k: manifest.get(k) for k in ("seed", "source", "counts", "generator_version")},
        "protocol": PROTOCOL,
        "summary": summary,
        "violation_kinds": {s: _kinds(rows[s]) for s in rows},
        "seconds_per_system": seconds,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if {"base", "adapter"} <= set(rows):
        atomic_write(out / f"{cfg.tag}-pairs-transcripts.md", _pairs_markdown(recs, rows, cfg.seed))
    if cfg.judgements:
        judged = json.loads(Path(cfg.judgements).read_text())
        if judged.get("split") != cfg.split:
            raise ValueError(f"{cfg.judgements} judges the {judged.get('split')} split, not {cfg.split}")
        report["preference"] = preference(judged, cfg.bootstrap, cfg.seed)
        report["samples"] = _samples(recs, rows, judged)
    write_report(report, out, cfg.tag, to_markdown)
    return report


def _saved_rows(cfg: Any, path: Path, systems: list[str], recs: list[dict]) -> tuple[dict, dict]:
    """The replies an earlier run of this tag wrote, for the systems asked for and the same records
    (an adapter's only when it was the same adapter); the others run again."""
    if not path.is_file():
        return {}, {}
    saved = json.loads(path.read_text())
    ids = [r["id"] for r in recs]
    keep = [
        s
        for s in systems
        if s in saved["rows"]
        and [r["id"] for r in saved["rows"][s]] == ids
        and (s != "adapter" or saved.get("adapter") == cfg.adapter)
    ]
    return {s: saved["rows"][s] for s in keep}, {s: saved["seconds"][s] for s in keep}


def _kinds(rows: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        for k in r["violation_kinds"]:
            out[k] = out.get(k, 0) + 1
    return out


def _samples(recs: list[dict], rows: dict[str, list[dict]], judged: dict[str, Any], k: int = 5) -> list[dict]:
    """About ``k`` judged pairs spread over the file, with both replies and the verdict."""
    by_id = {j["id"]: j for j in judged["pairs"]}
    picked = [i for i, r in enumerate(recs) if r["id"] in by_id]
    step = max(1, len(picked) // k)
    out = []
    for i in picked[::step][:k]:
        a, b = judge_order(recs[i]["id"], int(judged["order_seed"]))
        choice = by_id[recs[i]["id"]]["choice"]
        out.append(
            {
                "id": recs[i]["id"],
                "request": recs[i]["meta"]["message"],
                "base": rows["base"][i]["text"],
                "adapter": rows["adapter"][i]["text"],
                "preferred": "tie" if choice == "tie" else a if choice == "A" else b,
                "note": by_id[recs[i]["id"]].get("note", ""),
            }
        )
    return out


PROTOCOL = (
    "one split of a `generate --task reply` folder; each request understood and planned again by the "
    "product (prompt compared with the record's), the reply streamed by the product's ReplyGenerator "
    "(its decoding settings, sentence cap, grounding check, one repair, template fallback); `violation` = "
    "the LLM's first attempt had a grounding violation (GroundingChecker + prompt echo), `fallback` = the "
    "shopper saw the template instead; `card_copy` = the reply copied a prompt card line (bench.chat's "
    "flag); words (a CJK character counts as one), characters and language match are of the LLM's own "
    "text (rules: the template); 95% CI = percentile bootstrap over records, paired differences to the "
    "base on the same resamples"
)


def _fmt(x: float | None, d: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def _cell(entry: dict[str, Any], d: int = 3) -> str:
    ci = entry.get("ci95")
    return (
        f"{_fmt(entry['value'], d)} [{_fmt(ci[0], d)}, {_fmt(ci[1], d)}]" if ci else _fmt(entry["value"], d)
    )


def to_markdown(report: dict[str, Any]) -> str:
    src = (report.get("data_manifest") or {}).get("source") or {}
    s = report["summary"]
    lines = [
        f"# Reply: template vs base LLM vs adapter ({report['split']} split)",
        "",
        f"- data: `{report['config']['data']}` (catalog `{src.get('name')}`, fingerprint "
        f"`{str(src.get('fingerprint_sha256', ''))[:12]}`, generator seed {report['data_manifest'].get('seed')})",
        f"- split: **{report['split']}**; {report['n_records']} records (request phrasings of this split never occur in train)",
        f"- base model: `{report['base_model']}`; adapter: `{report['config'].get('adapter') or '-'}`",
        f"- protocol: {report['protocol']}",
        f"- bootstrap: {report['config']['bootstrap']} resamples, seed {report['config']['seed']}; wall: "
        f"{report['seconds']} s ({report['seconds_per_system']})",
        "",
        "| system | violation rate | fallback | regenerated | card copy | words | chars | language match | prompt = record |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in s["systems"].items():
        lines.append(
            f"| {name} | {_cell(m['violation'])} | {_cell(m['fallback'])} | {_cell(m['regenerated'])} | "
            f"{_cell(m['card_copy'])} | {_cell(m['words'], 1)} | {_cell(m['chars'], 0)} | {_cell(m['lang_match'])} | "
            f"{_fmt(m['prompt_match']['value'])} |"
        )
    ref = next(
        (
            k.removeprefix("diff_vs_")
            for m in s["systems"].values()
            for k in m["violation"]
            if k.startswith("diff_vs_")
        ),
        None,
    )
    if ref:
        lines += [
            "",
            f"Paired differences to {ref} (same resamples):",
            "",
            "| system | violation rate | card copy | words | language match |",
            "|---|---|---|---|---|",
        ]
        for name, m in s["systems"].items():
            key = f"diff_vs_{ref}"
            if key in m["violation"]:
                lines.append(
                    f"| {name} − {ref} | {_cell(m['violation'][key])} | {_cell(m['card_copy'][key])} | "
                    f"{_cell(m['words'][key], 1)} | {_cell(m['lang_match'][key])} |"
                )
    lines += ["", f"Violation kinds (records): {json.dumps(report['violation_kinds'])}"]
    pref = report.get("preference")
    if pref:
        ci = pref["ci95"] or [math.nan, math.nan]
        lines += [
            "",
            "## Blind pairwise judgement (base vs adapter)",
            "",
            f"- judge: {pref['judge']}; rubric: `{pref['rubric']}`; A/B order: a seeded coin per record",
            f"- adapter preferred in **{_fmt(pref['adapter_share'])}** [{_fmt(ci[0])}, {_fmt(ci[1])}] of {pref['n']} pairs "
            f"(a tie counts half); counts {pref['counts']}",
            "",
        ]
        for r in report.get("samples", []):
            lines += [
                f"- `{r['id']}`: {r['request']}",
                f"  - base: {r['base']}",
                f"  - adapter: {r['adapter']}",
                f"  - preferred: **{r['preferred']}**" + (f" ({r['note']})" if r["note"] else ""),
            ]
    return "\n".join(lines) + "\n"
