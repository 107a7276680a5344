"""Base model vs LoRA adapter, side by side, on the held-out part of a generated data folder.

* listwise ranking (``test_listwise_{retrieved,random,recalled}.jsonl``: 1 target + 19
  negatives from a CF retriever's top items, uniformly random, or LlamaRec's retriever top 20
  for the users whose target it recalled; see ``finetune.arguments.LISTWISE_PROTOCOLS``): NDCG@10, Recall@5, MRR from the letter
  verbalizer (one forward pass per prompt), with standard errors and a paired difference;
* conversational replies (``test_sft.jsonl``): RecLM-eval style error rates over the items a
  reply recommends (``**bold**`` names and ``[X]`` labels): not among the candidates, already
  in the shown history, named twice; plus how often the pick is the true next item.

Understanding (``--task understand``: rules vs base vs adapter on one split of a ``generate
--task understand`` folder) is ``finetune.understand_eval``.

One process loads the base once as a ``PeftModel``; the base rows run under
``disable_adapter()``, so both columns see identical weights, prompts and decoding.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from finetune.arguments import EvalConfig, eval_protocols
from finetune.card import record_metrics
from finetune.data import TEACHER_FILE, read_jsonl, read_manifest
from finetune.metrics import random_ranking_baseline, ranking_metrics, target_rank, write_report
from finetune.teacher import LexicalTeacher
from llm.listwise import LETTERS, parse_listwise_prompt
from llm.messages import encode_chat
from llm.models import load_llm
from llm.registry import DEFAULT_LLM
from llm.reranker import LLMReranker
from retrieval.text import tokenize


def title_overlap_scores(record: dict[str, Any]) -> np.ndarray:
    """Reference ranker read off the prompt: words each candidate title shares with the shown
    history titles (summed over them), ties broken by a fixed per-example order. It tells what
    a protocol rewards: "retrieved" negatives are the history's nearest neighbours, so there the
    true next item is usually LESS similar to the history than the negatives."""
    shown, candidates = parse_listwise_prompt(record["messages"][1]["content"])
    words = lambda t: set(tokenize(t))  # noqa: E731
    history = [words(t) for t in shown]
    titles = [t for _, t in candidates]
    scores = np.array([sum(len(words(t) & h) for h in history) for t in titles], dtype=float)
    tie_break = np.random.default_rng(zlib.crc32(str(record.get("id", "")).encode())).random(len(titles))
    return scores + 1e-3 * tie_break


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold().rstrip(".")


def _same_title(a: str, b: str) -> bool:
    a, b = _norm(a).removesuffix("..."), _norm(b).removesuffix("...")
    if not a or not b:
        return False
    if len(a) >= 20 and len(b) >= 20 and (a.startswith(b) or b.startswith(a)):
        return True
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.85


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LABEL = re.compile(r"\[([A-T])\]")


def reply_errors(reply: str, candidates: list[str], history: list[str]) -> dict[str, Any]:
    """Items a reply recommends, matched to the candidate / history titles (RecLM-eval errors)."""
    named: list[tuple[str, int | None]] = []  # (kind, candidate index)
    for span in _BOLD.findall(reply):
        k = next((i for i, t in enumerate(candidates) if _same_title(span, t)), None)
        if k is not None:
            named.append(("candidate", k))
        elif any(_same_title(span, h) for h in history):
            named.append(("history", None))
        else:
            named.append(("unknown", None))
    bold_idx = {k for kind, k in named if kind == "candidate"}
    for label in _LABEL.findall(reply):
        k = LETTERS.index(label)
        if k >= len(candidates):
            named.append(("unknown", None))
        elif k not in bold_idx:  # "**Title** [C]" names one item, not two
            named.append(("candidate", k))
    picks = [k for kind, k in named if kind == "candidate"]
    return {
        "named": len(named),
        "candidate_error": any(kind == "unknown" for kind, _ in named),
        "history_error": any(kind == "history" for kind, _ in named),
        "duplicate_error": len(picks) != len(set(picks)) or _has_duplicate_bold(reply),
        "first_pick": picks[0] if picks else None,
    }


def _has_duplicate_bold(reply: str) -> bool:
    spans = [_norm(s) for s in _BOLD.findall(reply)]
    return len(spans) != len(set(spans))


# --------------------------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------------------------


class _Models:
    """One PeftModel (or plain base); ``variant("base")`` disables the adapter."""

    def __init__(self, cfg: EvalConfig):
        self.base_name = cfg.base or _adapter_base(cfg.adapter) or DEFAULT_LLM
        self.model, self.tokenizer = load_llm(
            self.base_name, adapter=cfg.adapter, threads=cfg.threads, merge_adapter=False, dtype=cfg.dtype
        )
        self.names = ["base", "adapter"] if cfg.adapter else ["base"]

    @contextlib.contextmanager
    def variant(self, name: str) -> Iterator[None]:
        """``base``: adapter disabled. ``adapter``: LoRA merged into the weights for the duration
        (an unmerged LoRA costs ~1.5x per forward on a CPU), then the exact base weights are put
        back (unmerging in bf16 would leave rounding drift in the base column)."""
        if not hasattr(self.model, "disable_adapter"):
            yield
        elif name == "base":
            with self.model.disable_adapter():
                yield
        else:
            import torch

            layers = [m for m in self.model.modules() if hasattr(m, "base_layer") and hasattr(m, "merge")]
            saved = [m.base_layer.weight.detach().clone() for m in layers]
            self.model.merge_adapter()
            try:
                yield
            finally:
                self.model.unmerge_adapter()
                with torch.no_grad():
                    for m, w in zip(layers, saved, strict=True):
                        m.base_layer.weight.copy_(w)


def _adapter_base(adapter: str | None) -> str | None:
    if not adapter:
        return None
    cfg = Path(adapter) / "training_config.json"
    if cfg.is_file():
        return json.loads(cfg.read_text()).get("model", {}).get("model")
    return None


def _generate(models: _Models, messages: list[dict[str, str]], max_new_tokens: int) -> str:
    import torch

    tok = models.tokenizer
    ids = encode_chat(tok, messages)
    with torch.inference_mode():
        out = models.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
        )
    return tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Run every evaluation, write ``<out>/<tag>.json`` and ``.md``; returns the report."""
    if cfg.task == "understand":
        from finetune.understand_eval import evaluate_understand

        report = evaluate_understand(cfg)
        if cfg.adapter:
            record_metrics(cfg.adapter, report, cfg.tag)
        return report
    import torch

    t0 = time.perf_counter()
    data = Path(cfg.data)
    manifest = read_manifest(data)
    if cfg.adapter and not (Path(cfg.adapter) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{cfg.adapter} is not a PEFT adapter folder (no adapter_config.json)")
    torch.set_num_threads(cfg.threads)
    models = _Models(cfg)
    reranker = LLMReranker(
        model=models.model,
        tokenizer=models.tokenizer,
        batch_size=cfg.batch_size,
        permutations=cfg.permutations,
    )
    report: dict[str, Any] = {
        "config": asdict(cfg),
        "base_model": models.base_name,
        "data_manifest": {
            k: manifest.get(k) for k in ("generator_version", "seed", "source", "candidate_source")
        },
        "split_protocol": manifest.get("split_protocol"),
        "listwise": _listwise_report(cfg, data, models, reranker),
        "replies": _replies_report(cfg, data, models),
    }
    report["seconds"] = round(time.perf_counter() - t0, 1)
    write_report(report, cfg.out, cfg.tag, to_markdown)
    if cfg.adapter:
        record_metrics(cfg.adapter, report, cfg.tag)
    return report


def _listwise_report(cfg: EvalConfig, data: Path, models: _Models, reranker: Any) -> dict[str, Any]:
    """Per protocol: base (and adapter) ranking metrics, the reference rankers, the paired diff."""
    show = cfg.progress
    result: dict[str, Any] = {}
    teacher = _load_teacher(data)
    for protocol in eval_protocols(cfg.protocols):
        recs = read_jsonl(data / f"test_listwise_{protocol}.jsonl")[: cfg.max_users]
        if not recs:
            continue
        n_cands = len(recs[0]["meta"]["candidate_ids"])
        entry: dict[str, Any] = {"random_baseline": random_ranking_baseline(n_cands), "n_candidates": n_cands}
        entry["title_overlap"] = ranking_metrics(
            [target_rank(title_overlap_scores(r), LETTERS.index(r["meta"]["target_letter"])) for r in recs]
        )
        if teacher is not None:  # the distillation teacher: what the adapter was pushed towards
            entry["teacher"] = ranking_metrics(
                [target_rank(teacher.scores(r), LETTERS.index(r["meta"]["target_letter"])) for r in recs]
            )
        ranks: dict[str, list[int]] = {}
        for name in models.names:
            with models.variant(name):
                rs = []
                for start in tqdm(
                    range(0, len(recs), cfg.batch_size), desc=f"listwise/{protocol}/{name}", disable=not show
                ):
                    chunk = recs[start : start + cfg.batch_size]
                    scores = _score_records(reranker, chunk)
                    for rec, s in zip(chunk, scores, strict=True):
                        rs.append(target_rank(s, LETTERS.index(rec["meta"]["target_letter"])))
                ranks[name] = rs
                entry[name] = ranking_metrics(rs)
        if "adapter" in ranks:
            entry["paired_ndcg@10_diff"] = _paired_diff(ranks["base"], ranks["adapter"])
        result[protocol] = entry
    return result


def _replies_report(cfg: EvalConfig, data: Path, models: _Models) -> dict[str, Any]:
    """Per model: error rates of generated conversational replies (RecLM-eval style)."""
    show = cfg.progress
    result: dict[str, Any] = {}
    srecs = read_jsonl(data / "test_sft.jsonl")[: cfg.n_generate] if cfg.n_generate else []
    for name in models.names if srecs else []:
        with models.variant(name):
            rows = []
            for rec in tqdm(srecs, desc=f"replies/{name}", disable=not show):
                text = _generate(models, rec["messages"][:-1], cfg.max_new_tokens)
                cands, hist = _card_titles(rec)
                err = reply_errors(text, cands, hist)
                err["hit"] = (
                    err["first_pick"] is not None
                    and LETTERS[err["first_pick"]] == rec["meta"]["target_letter"]
                )
                err["reply"] = text
                rows.append(err)
        result[name] = _reply_summary(rows)
    return result


def _load_teacher(data: Path) -> Any:
    """The data folder's fitted teacher (``generate --teacher lexical``), or None."""
    path = data / TEACHER_FILE
    return LexicalTeacher.load(path) if path.is_file() else None


def _score_records(reranker: Any, recs: list[dict]) -> list[np.ndarray]:
    """Scores in candidate order for stored prompts (exactly the messages the data holds)."""
    out: list[np.ndarray | None] = [None] * len(recs)
    by_n: dict[int, list[int]] = {}
    for i, rec in enumerate(recs):
        by_n.setdefault(len(rec["meta"]["candidate_ids"]), []).append(i)
    for n, idx in by_n.items():
        prompts = [[m for m in recs[i]["messages"] if m["role"] != "assistant"] for i in idx]
        for i, row in zip(idx, reranker.score_messages(prompts, n), strict=True):
            out[i] = row
    return [o for o in out if o is not None]


def _card_titles(rec: dict) -> tuple[list[str], list[str]]:
    """Candidate titles (by label order) and shown history titles, read back from the context."""
    cands, hist = [], []
    for line in rec["messages"][0]["content"].splitlines():
        m = re.match(r"\[([A-T])\] (.*?)(?: \| |$)", line)
        if m:
            cands.append(m.group(2))
        elif line.startswith("- ") and line != "- (none)":
            hist.append(line[2:])
    return cands, hist


def _paired_diff(base: list[int], adapter: list[int]) -> dict[str, float]:
    f = lambda r: np.where(np.asarray(r) <= 10, 1 / np.log2(np.asarray(r, dtype=float) + 1), 0.0)  # noqa: E731
    d = f(adapter) - f(base)
    se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")
    return {"mean": float(d.mean()), "se": se, "z": float(d.mean() / se) if se and se > 0 else float("nan")}


def _reply_summary(rows: list[dict]) -> dict[str, Any]:
    return {
        "n": len(rows),
        "no_recommendation_rate": float(np.mean([r["named"] == 0 for r in rows])),
        "candidate_error_rate": float(np.mean([r["candidate_error"] for r in rows])),
        "history_error_rate": float(np.mean([r["history_error"] for r in rows])),
        "duplicate_error_rate": float(np.mean([r["duplicate_error"] for r in rows])),
        "target_hit_rate": float(np.mean([r["hit"] for r in rows])),
        "examples": [r["reply"] for r in rows[:3]],
    }


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.{digits}f}"
    return str(x)


def to_markdown(report: dict[str, Any]) -> str:
    lines = _markdown_header(report) + _markdown_listwise(report)
    if report["replies"]:
        lines += _markdown_replies(report)
    return "\n".join(lines) + "\n"


def _markdown_header(report: dict[str, Any]) -> list[str]:
    src = report["data_manifest"].get("source") or {}
    return [
        "# Fine-tuning evaluation",
        "",
        f"- base model: `{report['base_model']}`; adapter: `{report['config'].get('adapter') or '-'}`",
        f"- data: `{report['config']['data']}` (source `{src.get('name')}`, fingerprint "
        f"`{str(src.get('fingerprint_sha256', ''))[:12]}`, candidates from "
        f"`{report['data_manifest'].get('candidate_source')}`)",
        f"- held-out protocol: test-pool users never trained on; history = train+valid, target = test item; "
        f"1 target + {next(iter(report['listwise'].values()), {}).get('n_candidates', 20) - 1} negatives; "
        "letter-verbalizer scores, ties count against the target",
        f"- wall time: {report.get('seconds')} s",
        "",
    ]


def _markdown_listwise(report: dict[str, Any]) -> list[str]:
    names = [n for n in ("base", "adapter") if any(n in v for v in report["listwise"].values())] or ["base"]
    lines = [
        "## Listwise ranking (held-out users)",
        "",
        "Protocols: **retrieved** = the retriever's top items other than the target (the target is "
        "often the item it missed, so similarity to the history can be an anti-signal); **random** = "
        "uniform catalog negatives; **recalled** = LlamaRec's: the retriever's own top 20, for the "
        "users whose target it recalled (a small share of the test users).",
        "",
        "| protocol | model | n | NDCG@10 (± se) | Recall@5 (± se) | Recall@1 | MRR |",
        "|---|---|---|---|---|---|---|",
    ]
    for protocol, entry in report["listwise"].items():
        for name in names:
            m = entry.get(name)
            if m:
                lines.append(
                    f"| {protocol} | {name} | {m['n']} | {_fmt(m['ndcg@10'])} ± {_fmt(m['ndcg@10_se'], 3)} | "
                    f"{_fmt(m['recall@5'])} ± {_fmt(m['recall@5_se'], 3)} | {_fmt(m['recall@1'])} | {_fmt(m['mrr'])} |"
                )
        references = (
            ("title_overlap", "title-word overlap with history (reference, no LLM)"),
            ("teacher", "lexical teacher the adapter was distilled from (reference, no LLM)"),
        )
        for key, label in references:
            to = entry.get(key)
            if to:
                lines.append(
                    f"| {protocol} | {label} | {to['n']} | "
                    f"{_fmt(to['ndcg@10'])} ± {_fmt(to['ndcg@10_se'], 3)} | {_fmt(to['recall@5'])} ± "
                    f"{_fmt(to['recall@5_se'], 3)} | {_fmt(to['recall@1'])} | {_fmt(to['mrr'])} |"
                )
        rb = entry["random_baseline"]
        lines.append(
            f"| {protocol} | random order (expected) | - | {_fmt(rb['ndcg@10'])} | {_fmt(rb['recall@5'])} | - | {_fmt(rb['mrr'])} |"
        )
        if "paired_ndcg@10_diff" in entry:
            d = entry["paired_ndcg@10_diff"]
            lines.append(
                f"| {protocol} | adapter − base (paired) | - | {_fmt(d['mean'])} ± {_fmt(d['se'], 3)} (z={_fmt(d['z'], 2)}) | | | |"
            )
    return lines


def _markdown_replies(report: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Conversational replies (RecLM-eval style error rates)",
        "",
        "| model | n | no recommendation | not a candidate | in history | duplicate | picks true next item |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in report["replies"].items():
        lines.append(
            f"| {name} | {m['n']} | {_fmt(m['no_recommendation_rate'], 3)} | {_fmt(m['candidate_error_rate'], 3)} | "
            f"{_fmt(m['history_error_rate'], 3)} | {_fmt(m['duplicate_error_rate'], 3)} | {_fmt(m['target_hit_rate'], 3)} |"
        )
    return lines
