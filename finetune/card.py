"""The adapter's model card: ``README.md`` in the adapter folder.

``finetune train`` writes it (base model, LoRA settings, task, the data manifest's source, counts,
seed and split rule, the command, the training run, the training data's licence);
``finetune evaluate`` puts its metrics into the card's metrics section, one subsection per report
(a re-run of the same report replaces its subsection), with the values formatted from the report
itself, so the card never holds a number its report does not.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from finetune.arguments import DataArguments, ModelArguments, TrainArguments
from llm.listwise import ADAPTER_DATA_MANIFEST
from retrieval.files import atomic_write

__all__ = ["CARD_FILE", "card_metric_rows", "record_metrics", "training_data_licence", "write_card"]

CARD_FILE = "README.md"
_METRICS_HEADING = "## Metrics"
_NO_METRICS = "_No evaluation yet: `python -m finetune evaluate --adapter <this folder> ...` fills this in._"
_SECTION = re.compile(r"<!-- report: (?P<tag>[^>]*?) -->\n.*?<!-- end report -->\n", re.S)

WEBSHOP_LICENCE = "MIT (princeton-nlp/WebShop): redistributable with its notice"
_CATALOG_LICENCES = (
    (
        "amazon",
        "Amazon review data (McAuley et al.), research use only: NOT redistributable. The records "
        "carry its brand / category names and product titles, so neither the data nor this adapter "
        "may be redistributed",
    ),
    (
        "movielens",
        "MovieLens (GroupLens): no redistribution without permission. The records carry its titles "
        "and genres, so neither the data nor this adapter may be redistributed",
    ),
    ("toy", "synthetic (`finetune toydata` / test fixtures): this project's licence"),
    ("fixture", "synthetic (`finetune toydata` / test fixtures): this project's licence"),
)


def training_data_licence(manifest: dict[str, Any]) -> list[str]:
    """One line per source of the training records, with its licence."""
    source = manifest.get("source") or {}
    name = str(source.get("name") or source.get("data") or "unknown")
    catalog = next(
        (text for key, text in _CATALOG_LICENCES if key in name.lower()),
        "unknown: check the catalog's own licence before redistributing this adapter",
    )
    if manifest.get("task") == "understand":
        lines = [
            f"Generated text: this project's phrasing templates filled with the vocabulary of catalog "
            f"`{name}` (brands, category names, prices) and dialogue states holding its product titles. "
            f"Catalog licence: {catalog}."
        ]
    else:
        lines = [f"Purchase histories and item text of `{name}`. Licence: {catalog}."]
    if manifest.get("webshop"):
        lines.append(f"WebShop instructions ({manifest['webshop'].get('folder')}): {WEBSHOP_LICENCE}.")
    return lines


def train_command(margs: ModelArguments, dargs: DataArguments, targs: TrainArguments) -> str:
    """The ``python -m finetune train`` command line that reproduces this run (every option
    whose value differs from its default, required ones included)."""
    parts = ["python -m finetune train"]
    for obj in (margs, dargs, targs):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            has_default = f.default is not dataclasses.MISSING
            if has_default and value == f.default:
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            parts.append(f"--{f.name} {_quote(text)}")
    return " ".join(parts)


def _quote(text: str) -> str:
    return text if text and re.fullmatch(r"[\w.,:/=+@-]+", text) else json.dumps(text)


def write_card(
    adapter_dir: str | Path,
    margs: ModelArguments,
    dargs: DataArguments,
    targs: TrainArguments,
    result: Any,
) -> Path:
    """Write ``<adapter_dir>/README.md`` from the run's arguments, its ``TrainResult`` and the data
    manifest copied beside the adapter; returns the card's path."""
    adapter_dir = Path(adapter_dir)
    manifest_path = adapter_dir / ADAPTER_DATA_MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    weights = adapter_dir / "adapter_model.safetensors"
    size = f"{weights.stat().st_size / 1e6:.2f} MB" if weights.is_file() else "-"
    source = manifest.get("source") or {}
    seen = result.steps * targs.batch_size * targs.grad_accum * max(result.world_size, 1)
    lines = [
        f"# LoRA adapter: `{dargs.tasks}` on `{margs.model}`",
        "",
        f"- base model: `{margs.model}` (dtype {margs.dtype}); load with "
        f"`llm.models.load_llm('{margs.model}', adapter=<this folder>)`",
        f"- task: `{dargs.tasks}` (data task `{manifest.get('task', 'recommend')}`)",
        f"- LoRA: r={margs.lora_r}, alpha={margs.lora_alpha}, dropout={margs.lora_dropout}, modules "
        f"`{margs.target_modules}`, layers `{margs.lora_layers}`; weights {size}",
        "",
        "## Data",
        "",
        f"- folder: `{dargs.data_dir}` (its `manifest.json` is `{ADAPTER_DATA_MANIFEST}` here)",
        f"- source: `{source.get('name')}` from `{source.get('data')}`, fingerprint "
        f"`{str(source.get('fingerprint_sha256', ''))[:16]}`",
        f"- generator version {manifest.get('generator_version')}, seed {manifest.get('seed')}",
        f"- records: {json.dumps(manifest.get('counts', {}))}",
        f"- by source: {json.dumps(manifest.get('counts_by_source', {}))}"
        if manifest.get("counts_by_source")
        else "",
        "",
        "Split rule:",
        "",
        str(manifest.get("split_protocol", "-")).strip(),
        "",
        "## Licence of the training data",
        "",
        *[f"- {line}" for line in training_data_licence(manifest)],
        "",
        "## Training",
        "",
        "```",
        train_command(margs, dargs, targs),
        "```",
        "",
        f"- {result.steps} optimizer steps ({seen} examples of {result.train_examples} training records, "
        f"{result.skipped_too_long} skipped as too long), {result.seconds:.0f} s, "
        f"{result.tokens_per_second:.0f} tokens/s, {result.world_size} process(es), seed {targs.seed}",
        f"- eval loss (dev, {dargs.eval_examples} examples): {_num(result.first_eval_loss)} -> "
        f"{_num(result.last_eval_loss)}",
        "- full configuration: `training_config.json`",
        "",
        _METRICS_HEADING,
        "",
        _NO_METRICS,
        "",
    ]
    path = adapter_dir / CARD_FILE
    atomic_write(path, "\n".join(lines))
    return path


def _num(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def card_metric_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(system, metric, value) rows of an evaluation report, values formatted to 4 decimals (a
    CI as ``[lo, hi]``): what the card shows, read from the report and nothing else."""
    rows: list[tuple[str, str, str]] = []
    if report.get("task") == "understand":
        for name, m in (report.get("all") or {}).get("systems", {}).items():
            for key in ("valid", "exact", "exact_hard", "micro_f1"):
                entry = m[key]
                ci = entry.get("ci95")
                cell = _num(entry["value"]) + (f" [{_num(ci[0])}, {_num(ci[1])}]" if ci else "")
                rows.append((name, key, cell))
        return rows
    for protocol, entry in (report.get("listwise") or {}).items():
        for name in ("base", "adapter"):
            if name in entry:
                m = entry[name]
                rows.append((name, f"{protocol} ndcg@10", f"{_num(m['ndcg@10'])} ± {_num(m['ndcg@10_se'])}"))
        diff = entry.get("paired_ndcg@10_diff")
        if diff:
            rows.append(
                ("adapter - base", f"{protocol} ndcg@10", f"{diff['mean']:+.4f} ± {_num(diff['se'])}")
            )
    return rows


def record_metrics(adapter_dir: str | Path, report: dict[str, Any], tag: str) -> Path | None:
    """Put ``report``'s metrics into the adapter's card (one subsection per ``tag``, replaced on a
    re-run); None when the folder has no card (an adapter trained before cards were written)."""
    path = Path(adapter_dir) / CARD_FILE
    if not path.is_file():
        return None
    text = path.read_text()
    split = report.get("split") or report.get("config", {}).get("protocols", "")
    n = report.get("n_records") or report.get("config", {}).get("max_users")
    section = "\n".join(
        [
            f"<!-- report: {tag} -->",
            f"### `{tag}`: {report.get('task', 'recommend')}, split {split}, n = {n}",
            "",
            f"Report: `{report.get('json_path', '-')}`. Protocol: {report.get('protocol', '-')}",
            "",
            "| system | metric | value |",
            "|---|---|---|",
            *[f"| {a} | {b} | {c} |" for a, b, c in card_metric_rows(report)],
            "<!-- end report -->",
            "",
        ]
    )
    head, heading, metrics = text.partition(_METRICS_HEADING)
    if not heading:
        head, metrics = text.rstrip("\n") + "\n\n", ""
    metrics = metrics.replace(_NO_METRICS, "")
    sections = {m["tag"]: m.group(0) for m in _SECTION.finditer(metrics)}
    sections[tag] = section
    body = "\n".join(sections.values())
    atomic_write(path, f"{head}{_METRICS_HEADING}\n\n{body}")
    return path
