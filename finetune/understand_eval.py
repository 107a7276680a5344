"""Understanding evaluation (``python -m finetune evaluate --task understand``): rules vs base LLM
+ constrained decoding vs adapter + constrained decoding, on ONE split of a ``generate --task
understand`` folder (``--split dev`` for every choice; ``--split test`` once per reported number).
Only ``<split>_understand.jsonl`` and ``manifest.json`` are read.

Every prediction is a ``ConstraintUpdate``, compared with the gold through the catalog's
vocabulary, the way the product folds an update in (``llm_fallback``):

* brands -> the catalog brand they match; product types -> the catalog paths they name (a name
  that matches nothing stays as its casefolded text, so it is simply wrong); prices to the cent;
  references as positions; soft terms and the query as bags of words (stop words dropped; Chinese
  by character), since wording is free there.
* A record is scored on the slots its label is trusted on (``meta.scored``: all slots for
  generated records, explicit prices / exact brands / references for WebShop ones).
* Metrics: JSON validity (the output parses and validates; rules are always valid), exact match of
  the whole update (all scored slots), exact match of the hard slots (all but soft terms and
  query), and precision / recall / F1 over slot values, micro over all slots and per slot. Each
  with a 95% bootstrap CI over records (``--bootstrap`` resamples, seeded), and the paired
  difference to the rules on the same resamples.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from assistant.understanding.llm_fallback import _coerce_update
from assistant.understanding.llm_prompt import update_from_parse, update_json
from assistant.understanding.matches import Ambiguous
from assistant.understanding.parser import parse
from assistant.understanding.tokens import normalize
from assistant.understanding.update import ConstraintUpdate
from assistant.understanding.vocabulary import CatalogVocabulary
from finetune.metrics import write_report
from retrieval.files import atomic_write
from retrieval.text import tokenize

__all__ = [
    "HARD_SLOTS",
    "SLOTS",
    "UnderstandScorer",
    "bootstrap_summary",
    "evaluate_understand",
    "score_update",
]

SLOTS = tuple(ConstraintUpdate.model_fields)
HARD_SLOTS = tuple(s for s in SLOTS if s not in ("soft_terms", "query"))
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "for",
        "of",
        "to",
        "with",
        "and",
        "or",
        "in",
        "on",
        "some",
        "any",
        "me",
        "i",
        "my",
        "please",
        "something",
        "that",
        "is",
        "it",
        "its",
        "one",
        "ones",
        "的",
        "了",
        "吗",
        "呢",
        "吧",
        "一",
        "个",
        "款",
        "点",
    ]
)
MAX_NEW_TOKENS = 128  # what ``Understander._json_fallback`` allows the local model


class UnderstandScorer:
    """Canonical slot values of an update in one catalog (see the module doc)."""

    def __init__(self, vocab: CatalogVocabulary):
        self.vocab = vocab
        self._brand_cache: dict[str, str] = {}
        self._cat_cache: dict[str, frozenset] = {}

    def _brand(self, name: str) -> str:
        """The catalog brand a name means, as its family's base key: the parser lists every catalog
        spelling of a family ("OPI", "OPI NAIL COLOR"), and the filter they make is one brand."""
        if name not in self._brand_cache:
            key: str | None = normalize(name)
            if key not in self.vocab.brands:
                m = self.vocab.match_brand(name)
                m = m.union() if isinstance(m, Ambiguous) else m
                key = normalize(m.brand) if m is not None else None  # type: ignore[union-attr]
            if key is None:
                self._brand_cache[name] = f"?{name.casefold()}"
            else:
                toks = key.split()
                base = next(
                    (
                        " ".join(toks[:i])
                        for i in range(1, len(toks) + 1)
                        if " ".join(toks[:i]) in self.vocab.brands
                    ),
                    key,
                )
                self._brand_cache[name] = f"brand:{base}"
        return self._brand_cache[name]

    def _paths(self, name: str) -> frozenset:
        if name not in self._cat_cache:
            m = self.vocab.match_category(name)
            m = m.union() if isinstance(m, Ambiguous) else m
            paths = frozenset(m.paths) if m is not None else frozenset()  # type: ignore[union-attr]
            self._cat_cache[name] = paths or frozenset({("?", name.casefold())})
        return self._cat_cache[name]

    @staticmethod
    def words(texts: Sequence[str]) -> frozenset[str]:
        out = set()
        for t in texts:
            for tok in tokenize(t):
                w = tok.casefold() if isinstance(tok, str) else str(tok).casefold()
                if w and w not in _STOP:
                    out.add(w)
        return frozenset(out)

    def canonical(self, upd: ConstraintUpdate) -> dict[str, frozenset]:
        def num(x: float | None) -> frozenset:
            return frozenset() if x is None else frozenset({round(float(x), 2)})

        return {
            "price_min": num(upd.price_min),
            "price_max": num(upd.price_max),
            "currency": frozenset({upd.currency.upper()}) if upd.currency else frozenset(),
            "relative_price": frozenset({upd.relative_price}) if upd.relative_price else frozenset(),
            "brands_include": frozenset(self._brand(b) for b in upd.brands_include),
            "brands_exclude": frozenset(self._brand(b) for b in upd.brands_exclude),
            "categories_include": frozenset(p for n in upd.categories_include for p in self._paths(n)),
            "categories_exclude": frozenset(p for n in upd.categories_exclude for p in self._paths(n)),
            "exclude_shown": frozenset({True}) if upd.exclude_shown else frozenset(),
            "references": frozenset(upd.references),
            "soft_terms": self.words(upd.soft_terms),
            "query": self.words([upd.query]),
        }


def score_update(
    scorer: UnderstandScorer, pred: ConstraintUpdate | None, gold: ConstraintUpdate, scored: Sequence[str]
) -> dict[str, Any]:
    """One record: per scored slot (tp, fp, fn), exact match (all scored slots / hard ones), validity.
    An invalid prediction counts as the empty update (its gold values are all missed)."""
    valid = pred is not None
    p = scorer.canonical(pred if pred is not None else ConstraintUpdate())
    g = scorer.canonical(gold)
    slots = {s: (len(p[s] & g[s]), len(p[s] - g[s]), len(g[s] - p[s])) for s in scored}
    exact = valid and all(p[s] == g[s] for s in scored)
    exact_hard = valid and all(p[s] == g[s] for s in scored if s in HARD_SLOTS)
    return {"valid": valid, "exact": exact, "exact_hard": exact_hard, "slots": slots}


# ------------------------------------------------------------------------------------------------
# Statistics
# ------------------------------------------------------------------------------------------------


def _f1(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return p, r, f


def _arrays(rows: list[dict]) -> dict[str, np.ndarray]:
    """Per-record columns: valid, exact, exact_hard, and tp/fp/fn per slot (0 where not scored)."""
    cols: dict[str, np.ndarray] = {
        k: np.array([float(r[k]) for r in rows]) for k in ("valid", "exact", "exact_hard")
    }
    for s in SLOTS:
        for j, part in enumerate(("tp", "fp", "fn")):
            cols[f"{s}:{part}"] = np.array([float(r["slots"].get(s, (0, 0, 0))[j]) for r in rows])
    for part in ("tp", "fp", "fn"):
        cols[f"micro:{part}"] = sum(cols[f"{s}:{part}"] for s in SLOTS)
    return cols


def _metrics(cols: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, float]:
    out = {k: float(cols[k][idx].mean()) for k in ("valid", "exact", "exact_hard")}
    for s in ("micro", *SLOTS):
        p, r, f = _f1(*(float(cols[f"{s}:{part}"][idx].sum()) for part in ("tp", "fp", "fn")))
        out[f"{s}_precision"], out[f"{s}_recall"], out[f"{s}_f1"] = p, r, f
    return out


def bootstrap_summary(
    by_system: dict[str, list[dict]],
    n_boot: int = 1000,
    seed: int = 0,
    reference: str = "rules",
    columns: Callable[[list[dict]], dict[str, np.ndarray]] = _arrays,
    metrics: Callable[[dict[str, np.ndarray], np.ndarray], dict[str, float]] = _metrics,
) -> dict[str, Any]:
    """Point estimates, 95% percentile-bootstrap CIs over records, and paired differences to
    ``reference`` (the same resampled records for every system). ``columns`` turns a system's
    rows into arrays, ``metrics`` reads the metrics off the rows at some indices (default: the
    understanding slots; the reply task passes its own)."""
    names = list(by_system)
    n = len(next(iter(by_system.values())))
    cols = {name: columns(rows) for name, rows in by_system.items()}
    full = np.arange(n)
    point = {name: metrics(cols[name], full) for name in names}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(n_boot if n else 0):
        idx = rng.integers(0, n, n)
        for name in names:
            draws[name].append(metrics(cols[name], idx))

    def ci(values: list[float]) -> list[float] | None:
        v = np.array([x for x in values if not math.isnan(x)])
        return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if len(v) else None

    out: dict[str, Any] = {"n": n, "bootstrap": n_boot, "seed": seed, "systems": {}}
    for name in names:
        entry: dict[str, Any] = {}
        for k, v in point[name].items():
            entry[k] = {"value": v, "ci95": ci([d[k] for d in draws[name]])}
            if reference in names and name != reference:
                diffs = [d[k] - r[k] for d, r in zip(draws[name], draws[reference], strict=True)]
                entry[k]["diff_vs_" + reference] = {
                    "value": v - point[reference][k],
                    "ci95": ci(diffs),
                }
        out["systems"][name] = entry
    return out


# ------------------------------------------------------------------------------------------------
# Systems
# ------------------------------------------------------------------------------------------------


def _prompt(rec: dict) -> list[dict[str, str]]:
    return [m for m in rec["messages"] if m["role"] != "assistant"]


def rules_system(vocab: CatalogVocabulary, currency: str | None) -> Any:
    def run(rec: dict) -> tuple[ConstraintUpdate | None, str]:
        parsed = parse(rec["meta"]["message"], vocab, currency)
        upd = update_from_parse(parsed, rec["meta"].get("n_shown", 0))
        return upd, update_json(upd)

    return run


def llm_system(loaded: Any) -> Any:
    from llm.constrained import generate_constrained_json

    schema = ConstraintUpdate.model_json_schema()

    def run(rec: dict) -> tuple[ConstraintUpdate | None, str]:
        raw = generate_constrained_json(loaded, _prompt(rec), schema, max_new_tokens=MAX_NEW_TOKENS)
        return _coerce_update(raw), json.dumps(raw, ensure_ascii=False)

    return run


def _adapter_base(adapter: str | None) -> str | None:
    cfg = Path(adapter) / "training_config.json" if adapter else None
    if cfg is not None and cfg.is_file():
        return json.loads(cfg.read_text()).get("model", {}).get("model")
    return None


def evaluate_understand(cfg: Any) -> dict[str, Any]:
    """Score the systems on ``cfg.split``; write ``<out>/<tag>.json`` + ``.md`` (+ an untracked
    ``-transcripts.md`` with WebShop-derived rows); returns the report."""
    from finetune.data import read_jsonl, task_inputs

    t0 = time.perf_counter()
    data = Path(cfg.data)
    manifest, systems = task_inputs(data, "understand", cfg.systems, ("rules", "base", "adapter"))
    if "adapter" in systems and not cfg.adapter:
        systems.remove("adapter")
    if cfg.adapter and not (Path(cfg.adapter) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{cfg.adapter} is not a PEFT adapter folder (no adapter_config.json)")
    recs = read_jsonl(data / f"{cfg.split}_understand.jsonl")  # the one split this run may read
    if cfg.n_understand:
        recs = _stratified_head(recs, cfg.n_understand)
    runners, base_name = _runners(cfg, systems, manifest)
    rows, outputs, seconds = _run(cfg, runners, recs, UnderstandScorer(runners.vocab))  # type: ignore[attr-defined]
    report: dict[str, Any] = {
        "task": "understand",
        "split": cfg.split,
        "config": asdict(cfg),
        "base_model": base_name if {"base", "adapter"} & set(runners) else None,
        "data_manifest": {
            k: manifest.get(k) for k in ("generator_version", "seed", "source", "counts", "template_ids")
        },
        "split_protocol": manifest.get("split_protocol"),
        "webshop_hand_check": (manifest.get("webshop") or {}).get("hand_check"),
        "protocol": PROTOCOL,
        "n_records": len(recs),
        "seconds_per_system": seconds,
        "all": bootstrap_summary(rows, cfg.bootstrap, cfg.seed) if rows else {},
        "by_source": {},
    }
    for source in sorted({r["meta"]["source"] for r in recs}):
        keep = [i for i, r in enumerate(recs) if r["meta"]["source"] == source]
        report["by_source"][source] = bootstrap_summary(
            {n: [rows[n][i] for i in keep] for n in rows}, cfg.bootstrap, cfg.seed
        )
    report["samples"] = _samples(recs, outputs, "generated", 10)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    out = write_report(report, cfg.out, cfg.tag, to_markdown)
    # Every raw output, for rescoring without decoding again; quotes WebShop text: untracked
    # (.gitignore: reports/*-transcripts.jsonl).
    with open(out / f"{cfg.tag}-transcripts.jsonl", "w", encoding="utf-8") as f:
        for k, rec in enumerate(recs):
            row = {"id": rec["id"], "source": rec["meta"]["source"], "message": rec["meta"]["message"]}
            f.write(json.dumps({**row, **{n: o[k] for n, o in outputs.items()}}, ensure_ascii=False) + "\n")
    webshop_rows = _samples(recs, outputs, "webshop", 10)
    if webshop_rows:  # quotes WebShop text: an untracked file (.gitignore: reports/*-transcripts.md)
        atomic_write(
            out / f"{cfg.tag}-transcripts.md", _sample_table("WebShop rows (local only)", webshop_rows)
        )
    return report


class _Runners(dict):
    """System name -> run(record) -> (update or None, raw text); ``vocab``: the catalog's."""

    vocab: CatalogVocabulary


def _runners(cfg: Any, systems: list[str], manifest: dict[str, Any]) -> tuple[_Runners, str]:
    from retrieval.data.registry import load_dataset

    ds = load_dataset(cfg.catalog or manifest["source"]["data"])
    vocab = CatalogVocabulary.from_catalog(ds.catalog)
    runners = _Runners()
    runners.vocab = vocab
    base_name = cfg.base or _adapter_base(cfg.adapter) or "smollm2-135m"
    if "rules" in systems:
        runners["rules"] = rules_system(vocab, manifest["source"].get("currency"))
    if "base" in systems or "adapter" in systems:
        import torch

        from llm.chat_model import get_loaded_llm

        torch.set_num_threads(cfg.threads)
        if "base" in systems:
            runners["base"] = llm_system(get_loaded_llm(base_name, threads=cfg.threads, dtype=_dtype(cfg)))
        if "adapter" in systems:
            runners["adapter"] = llm_system(
                get_loaded_llm(base_name, adapter=cfg.adapter, threads=cfg.threads, dtype=_dtype(cfg))
            )
    return runners, base_name


def _run(
    cfg: Any, runners: dict[str, Any], recs: list[dict], scorer: UnderstandScorer
) -> tuple[dict[str, list[dict]], dict[str, list[str]], dict[str, float]]:
    """Every system on every record: scored rows, raw outputs, seconds per system."""
    rows: dict[str, list[dict]] = {name: [] for name in runners}
    outputs: dict[str, list[str]] = {name: [] for name in runners}
    seconds: dict[str, float] = {}
    for name, run in runners.items():
        t = time.perf_counter()
        for rec in tqdm(recs, desc=f"understand/{name}", disable=not cfg.progress):
            gold = ConstraintUpdate.model_validate(rec["meta"]["gold"])
            pred, text = run(rec)
            rows[name].append(score_update(scorer, pred, gold, rec["meta"]["scored"]))
            outputs[name].append(text)
        seconds[name] = round(time.perf_counter() - t, 1)
    return rows, outputs, seconds


PROTOCOL = (
    "one split of a `generate --task understand` folder; every record scored on its trusted slots "
    "(generated: all 12; WebShop: prices, currency, brands, references, exclude_shown); slot values "
    "compared through the catalog vocabulary (brands -> catalog brand family, product types -> catalog "
    "paths, soft terms / query -> bags of words); an invalid LLM output counts as the empty update; "
    "LLMs decode greedily under the ConstraintUpdate JSON grammar (llguidance, "
    f"{MAX_NEW_TOKENS} new tokens, as the product's JSON fallback); 95% CI = percentile bootstrap "
    "over records, paired differences on the same resamples"
)


def _dtype(cfg: Any) -> Any:
    return None if cfg.dtype == "auto" else cfg.dtype


def _stratified_head(recs: list[dict], n: int) -> list[dict]:
    """The first records of each source in proportion (generated first in the file, WebShop after)."""
    by: dict[str, list[dict]] = {}
    for r in recs:
        by.setdefault(r["meta"]["source"], []).append(r)
    out: list[dict] = []
    for _, rs in sorted(by.items()):
        out += rs[: max(1, round(n * len(rs) / len(recs)))]
    return out


def _samples(recs: list[dict], outputs: dict[str, list[str]], source: str, k: int) -> list[dict]:
    picked = [i for i, r in enumerate(recs) if r["meta"]["source"] == source]
    step = max(1, len(picked) // k) if picked else 1
    return [
        {
            "id": recs[i]["id"],
            "template": recs[i]["meta"]["template"],
            "message": recs[i]["meta"]["message"],
            "gold": recs[i]["messages"][-1]["content"],
            **{name: outs[i] for name, outs in outputs.items()},
        }
        for i in picked[::step][:k]
    ]


def _fmt(x: float | None, d: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def _cell(entry: dict[str, Any]) -> str:
    ci = entry.get("ci95")
    return f"{_fmt(entry['value'])} [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else _fmt(entry["value"])


def _diff(entry: dict[str, Any]) -> str:
    d = entry.get("diff_vs_rules")
    return _cell(d) if d else "-"


def _summary_table(summary: dict[str, Any], title: str) -> list[str]:
    lines = [
        f"### {title} (n = {summary.get('n', 0)})",
        "",
        "| system | JSON valid | exact match | exact (hard slots) | slot micro P | slot micro R | slot micro F1 | EM − rules (paired) | F1 − rules (paired) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in summary.get("systems", {}).items():
        lines.append(
            f"| {name} | {_cell(m['valid'])} | {_cell(m['exact'])} | {_cell(m['exact_hard'])} | "
            f"{_fmt(m['micro_precision']['value'])} | {_fmt(m['micro_recall']['value'])} | {_cell(m['micro_f1'])} | "
            f"{_diff(m['exact'])} | {_diff(m['micro_f1'])} |"
        )
    return lines


def _slot_table(summary: dict[str, Any]) -> list[str]:
    names = list(summary.get("systems", {}))
    lines = [
        "| slot | " + " | ".join(f"{n} F1 [95% CI]" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for s in SLOTS:
        cells = [_cell(summary["systems"][n][f"{s}_f1"]) for n in names]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return lines


def _sample_table(title: str, rows: list[dict]) -> str:
    if not rows:
        return ""
    systems = [k for k in rows[0] if k not in ("id", "template", "message", "gold")]
    lines = [f"## {title}", ""]
    for r in rows:
        lines.append(f"- `{r['id']}` ({r['template']}): {r['message']}")
        lines.append(f"  - gold: `{r['gold']}`")
        for s in systems:
            lines.append(f"  - {s}: `{r[s]}`")
    return "\n".join(lines) + "\n"


def to_markdown(report: dict[str, Any]) -> str:
    src = (report.get("data_manifest") or {}).get("source") or {}
    hc = report.get("webshop_hand_check") or {}
    rounds = hc.get("rounds") or []
    lines = [
        f"# Understanding: rules vs base LLM vs adapter ({report['split']} split)",
        "",
        f"- data: `{report['config']['data']}` (catalog `{src.get('name')}`, fingerprint "
        f"`{str(src.get('fingerprint_sha256', ''))[:12]}`, generator seed {report['data_manifest'].get('seed')})",
        f"- split: **{report['split']}**; {report['n_records']} records; phrasing templates of this split never occur in "
        "train (split by template id and by WebShop request; see the manifest's split protocol)",
        f"- base model: `{report.get('base_model') or '-'}`; adapter: `{report['config'].get('adapter') or '-'}`",
        f"- protocol: {report['protocol']}",
        f"- bootstrap: {report['config']['bootstrap']} resamples, seed {report['config']['seed']}; wall: "
        f"{report.get('seconds')} s ({report.get('seconds_per_system')})",
    ]
    if rounds:
        last = rounds[-1]
        lines.append(
            f"- WebShop labels: hand-checked ({hc.get('checked_by')}): last round {last['checked']} records, "
            f"{last['disagreements']} disagreements (all rounds in the manifest)"
        )
    lines += ["", "## All records", "", *_summary_table(report["all"], "all")]
    lines += ["", "Per-slot F1 (all records):", "", *_slot_table(report["all"])]
    for source, summary in report.get("by_source", {}).items():
        lines += ["", f"## {source} records", "", *_summary_table(summary, source)]
    lines += ["", _sample_table("Sample rows (generated records only)", report.get("samples", []))]
    return "\n".join(lines) + "\n"
