"""Ranking benchmark: every scorer side by side on one leave-one-out split, full ranking.

    python -m bench.ranking --data /work/shared/datasets/amazon-beauty-2014 --out reports/
    python -m bench.ranking --data movielens-100k --quick

Writes ``ranking-<dataset>.json`` / ``.md`` / ``.png`` into ``--out``. Hyper-parameters
are selected on the validation split only (SASRec early stopping, fused weights);
the test split is scored once, at the end.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench._report import bar_plot, environment, markdown_table, measure, slug, write_json, write_text
from llm.runtime import configure
from retrieval.data.registry import load_dataset
from retrieval.data.schema import Catalog, Dataset
from retrieval.data.splits import leave_one_out
from retrieval.metrics import ListContext, evaluate_full_ranking

if TYPE_CHECKING:
    from retrieval.scorers import Scorer

ACCURACY = ("recall@5", "recall@10", "ndcg@5", "ndcg@10", "mrr")
BEYOND = ("coverage@10", "ild@10", "novelty@10", "popularity@10")
DEFAULT_SCORERS = ("mostpop", "itemknn", "ease", "sasrec", "fused")

# Defaults chosen on the Beauty VALID split (see the report's "selection" notes).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "mostpop": {},
    "itemknn": {"k": 100, "shrink": 10.0, "recency_decay": 0.5},
    "ease": {"lambda_": 100.0, "recency_decay": 0.5},
    "sasrec": {
        "max_len": 50,
        "hidden": 64,
        "n_layers": 2,
        "n_heads": 1,
        "dropout": 0.3,
        "lr": 5e-3,
        "loss": "sampled",
        "n_negatives": 512,
        "negative_alpha": 0.75,
        "max_batch_positions": 1024,
        "eval_every": 2,
        "patience": 3,
        "epochs": 200,
        "max_train_seconds": 780.0,
    },
}
QUICK_PARAMS: dict[str, dict[str, Any]] = {
    "sasrec": {"epochs": 2, "hidden": 32, "max_len": 20, "eval_every": 1, "max_train_seconds": 60.0},
}
# Fused = these components (those that were run), z-normalised, weights tuned on valid.
FUSED_COMPONENTS = ("sasrec", "ease", "itemknn")

# Leave-one-out, full ranking, Beauty (S3-Rec/P5 split); copied from /work/shared/datasets/README.md.
PUBLISHED_BEAUTY: dict[str, dict[str, Any]] = {
    "MostPop": {
        "recall@5": 0.0080,
        "ndcg@5": 0.0044,
        "recall@10": 0.0152,
        "ndcg@10": 0.0068,
        "source": "S3-Rec repo all_rank.PNG",
    },
    "SASRec (BCE)": {
        "recall@5": 0.0387,
        "ndcg@5": 0.0249,
        "recall@10": 0.0605,
        "ndcg@10": 0.0318,
        "source": "S3-Rec all_rank.PNG; TIGER Table 1",
    },
    "S3-Rec": {
        "recall@5": 0.0387,
        "ndcg@5": 0.0244,
        "recall@10": 0.0647,
        "ndcg@10": 0.0327,
        "source": "S3-Rec all_rank.PNG",
    },
    "TIGER": {
        "recall@5": 0.0454,
        "ndcg@5": 0.0321,
        "recall@10": 0.0648,
        "ndcg@10": 0.0384,
        "source": "TIGER Table 1",
    },
    "DuoRec": {
        "recall@5": 0.0559,
        "ndcg@5": 0.0340,
        "recall@10": 0.0825,
        "ndcg@10": 0.0425,
        "source": "MCLRec Table 3",
    },
    "HSTU (re-run)": {"recall@10": 0.0788, "ndcg@10": 0.0439, "source": "eSASRec README"},
    "eSASRec": {"recall@10": 0.0921, "ndcg@10": 0.0531, "source": "eSASRec README"},
    "LlamaRec": {
        "recall@5": 0.0648,
        "ndcg@5": 0.0450,
        "recall@10": 0.0971,
        "ndcg@10": 0.0554,
        "source": "LlamaRec Table 1 (22,332-user variant)",
    },
}


def _parse_set(values: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--set sasrec.lr=0.001`` -> {"sasrec": {"lr": 0.001}} (values parsed as JSON when possible)."""
    out: dict[str, dict[str, Any]] = {}
    for v in values:
        key, sep, raw = v.partition("=")
        scorer, dot, param = key.partition(".")
        if not sep or not dot or not param:
            raise SystemExit(f"--set expects scorer.param=value, got {v!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(scorer, {})[param] = value
    return out


def category_vectors(catalog: Catalog) -> np.ndarray:
    """L2-normalised multi-hot vectors of each item's category-path prefixes (for ILD)."""
    index: dict[tuple[str, ...], int] = {}
    rows, cols = [], []
    for r, item in enumerate(catalog):
        for depth in range(1, len(item.categories) + 1):
            c = index.setdefault(item.categories[:depth], len(index))
            rows.append(r)
            cols.append(c)
    v = np.zeros((len(catalog), max(len(index), 1)), dtype=np.float32)
    v[rows, cols] = 1.0
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


TEXT_CACHE_DIR = Path(".cache/ranking")


def _text_cache_path(catalog: Catalog, cache_dir: str | Path = TEXT_CACHE_DIR) -> Path:
    import hashlib

    texts = [it.text(max_reviews=0) for it in catalog]
    key = hashlib.sha1("\x00".join(texts).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"minilm-{key}.npy"


def item_text_embeddings(catalog: Catalog, cache_dir: str | Path | None = TEXT_CACHE_DIR) -> np.ndarray:
    """MiniLM embeddings of each item's card text (title, brand, category, description), cached by content."""
    from retrieval.embedders import MiniLMEmbedder

    texts = [it.text(max_reviews=0) for it in catalog]
    path = _text_cache_path(catalog, cache_dir) if cache_dir else None
    if path is not None and path.exists():
        return np.load(path)
    vectors = np.asarray(MiniLMEmbedder().encode(texts, batch_size=128, show_progress=True), dtype=np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors


def _subsample_users(dataset: Dataset, n_users: int, seed: int) -> Dataset:
    users = dataset.interactions.users
    if len(users) <= n_users:
        return dataset
    rng = np.random.default_rng(seed)
    keep = set(np.asarray(users)[rng.choice(len(users), n_users, replace=False)].tolist())
    inter = dataset.interactions.subset(dataset.interactions.frame["user_id"].isin(keep).to_numpy())
    return Dataset(
        dataset.name, dataset.catalog, inter, dataset.description, dataset.currency, dataset.source
    )


def run(
    data: str,
    out: str | Path = "reports",
    scorers: Sequence[str] = DEFAULT_SCORERS,
    quick: bool = False,
    seed: int = 0,
    threads: int | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
    text: bool = False,
    llm_rerank: str | Sequence[str] | None = None,
    rerank_users: int = 200,
    rerank_scorer: str | None = None,
    tag: str | None = None,
) -> dict[str, Any]:
    """Run the benchmark and write the reports; returns the JSON payload.

    ``tag``: reports go to ``ranking-<dataset>-<tag>.*``, so a variant run (no text side input,
    other scorers) does not replace the dataset's main report.

    ``llm_rerank`` (model names/dirs or LoRA adapter dirs): also report CF-only vs CF+LLM on
    ``rerank_users`` seeded test users, the LLM reordering ``rerank_scorer``'s top-20 (default:
    fused, else the last scorer run); see ``llm.reranker.evaluate_rerank``.
    """
    # torch (also under retrieval.scorers) loads here, after main's configure() set the OpenMP policy.
    import torch

    from retrieval.scorers import SCORERS, FusedScorer

    unknown = [s for s in scorers if s not in SCORERS]
    if unknown:
        raise SystemExit(f"unknown scorers {unknown}; known: {sorted(SCORERS)}")
    if threads:
        torch.set_num_threads(threads)
    np.random.seed(seed)
    torch.manual_seed(seed)
    dataset = load_dataset(data)
    name = slug(dataset.name or Path(data).name)
    if quick:
        dataset = _subsample_users(dataset, 300, seed)
    split = leave_one_out(dataset.interactions)
    catalog = dataset.catalog
    valid = [(h, t) for _, h, t in split.histories("valid")]
    test_rows = [
        ([catalog.index_of(i) for i in h], catalog.index_of(t)) for _, h, t in split.histories("test")
    ]
    train_seqs = split.train.sequences()
    popularity = np.zeros(len(catalog), dtype=np.float64)
    for items in train_seqs.values():
        for i in items:
            popularity[catalog.index_of(i)] += 1
    ctx = ListContext(len(catalog), popularity, len(train_seqs), category_vectors(catalog))
    rebuy = float(np.mean([t in h for h, t in test_rows])) if test_rows else 0.0

    results: dict[str, dict[str, Any]] = {}
    fitted: dict[str, Scorer] = {}
    for sname in scorers:
        params = dict(DEFAULT_PARAMS.get(sname, {}))
        if quick:
            params.update(QUICK_PARAMS.get(sname, {}))
        if sname == "sasrec":
            params.update({"seed": seed, "threads": threads, "verbose": progress})
            if text:
                cached = _text_cache_path(catalog).exists()
                with measure() as m_text:
                    params["item_text_embeddings"] = item_text_embeddings(catalog)
                text_embedding = {
                    "seconds": round(m_text.seconds, 2),
                    "cpu_seconds": round(m_text.cpu_seconds, 2),
                    "cached": cached,
                }
        params.update((overrides or {}).get(sname, {}))
        if sname == "fused":
            parts = [fitted[c] for c in FUSED_COMPONENTS if c in fitted]
            if len(parts) < 2:
                print("[ranking] skipping fused: needs at least two of", FUSED_COMPONENTS)
                continue
            valid_rows = [([catalog.index_of(i) for i in h], catalog.index_of(t)) for h, t in valid]
            with measure() as m:
                scorer: Scorer = FusedScorer.from_fitted(parts, validation=valid_rows, seed=seed, **params)
            train_seconds = m.seconds + sum(results[p.name]["train_seconds"] for p in parts)
            train_cpu_seconds = m.cpu_seconds + sum(results[p.name]["train_cpu_seconds"] for p in parts)
            extra = {
                "weights": dict(zip(scorer.components, scorer.weights or [], strict=True)),
                "tune_seconds": m.seconds,
            }
        else:
            scorer = SCORERS[sname](**params)
            print(f"[ranking] {name}: fitting {sname} ...", flush=True)
            with measure() as m:
                scorer.fit(split.train, catalog, validation=valid)
            train_seconds = m.seconds
            train_cpu_seconds = m.cpu_seconds
            extra = {}
            if sname == "sasrec":
                extra["training_log"] = getattr(scorer, "history_", [])
                if text:
                    # The side input is part of training cost: count it unless it came from the cache.
                    extra["text_embedding"] = text_embedding
                    if not text_embedding["cached"]:
                        train_seconds += text_embedding["seconds"]
                        train_cpu_seconds += text_embedding["cpu_seconds"]
        fitted[sname] = scorer
        test = evaluate_full_ranking(
            scorer,
            test_rows,
            ctx,
            (*ACCURACY, *BEYOND),
            True,
            progress=progress,
            desc=f"test {sname}",
            unmasked_metrics=ACCURACY,
        )
        valid_ndcg = None
        if sname == "sasrec":
            evals = [h["valid_ndcg@10"] for h in extra["training_log"] if "valid_ndcg@10" in h]
            valid_ndcg = max(evals) if evals else None
        elif sname == "fused":
            valid_ndcg = max((r["valid_ndcg@10"] for r in scorer.tuning_log), default=None)
        results[sname] = {
            **test.metrics,
            "train_seconds": round(train_seconds, 2),
            "train_cpu_seconds": round(train_cpu_seconds, 2),
            "peak_rss_delta_mb": None if m.peak_rss_delta_mb is None else round(m.peak_rss_delta_mb, 1),
            "test_unmasked": test.unmasked,
            "valid_ndcg@10": valid_ndcg,
            "params": scorer.get_params()
            if sname != "fused"
            else {"components": scorer.get_params()["components"]},
            **extra,
        }
        print(
            f"[ranking] {name} {sname}: ndcg@10={test.metrics['ndcg@10']:.4f} recall@10={test.metrics['recall@10']:.4f} "
            f"train={train_seconds:.0f}s",
            flush=True,
        )

    rerank_models = [llm_rerank] if isinstance(llm_rerank, str) else list(llm_rerank or [])
    reranked = [
        _llm_rerank(m, fitted, test_rows, catalog, rerank_users, rerank_scorer, seed, threads)
        for m in rerank_models
    ] or None

    protocol = {
        "split": "leave-one-out per user (last event = test, second-last = valid, rest = train; "
        "users with < 3 events only train)",
        "ranking": "full: every catalog item is scored (no sampled negatives)",
        "mask_history": "top-level metrics mask the user's history items (train+valid) before ranking, as in "
        "the S3-Rec full-sort code; 'test_unmasked' ranks everything",
        "ties": "pessimistic: the target ranks below every other item with an equal score",
        "selection": "SASRec epochs by valid NDCG@10 (early stopping); fused weights by valid NDCG@10; "
        "test scored once",
        "ild": "1 - mean pairwise cosine of L2-normalised multi-hot category-path-prefix vectors",
        "novelty": "mean -log2((count+1)/(n_train_users+1)) of the recommended items",
        "popularity": "mean training-popularity percentile of recommended items (1 = most popular)",
        "memory": "peak RSS growth during fit, sampled every 50 ms from /proc/self/statm",
        "train_seconds": "wall-clock fit time (fused = its components + weight tuning; with --text, SASRec "
        "includes the MiniLM item-text embedding unless it came from the cache); the CPU may be shared "
        "(see environment.load_average); train_cpu_seconds (same scope, user+sys CPU of the process) does not "
        "grow with contention: on an idle box the wall time lies between cpu/threads and cpu (the fit never "
        "waits on I/O)",
        "test_users": len(test_rows),
        "test_target_in_history_rate": rebuy,
        "quick": quick,
        "sasrec_text_side_input": text,
        "seed": seed,
    }
    published = PUBLISHED_BEAUTY if "beauty" in name else {}
    payload = {
        "dataset": name,
        "summary": dataset.summary(),
        "split": split.summary(),
        "protocol": protocol,
        "scorers": results,
        "published_full_ranking": published,
        "llm_rerank": reranked,
        "environment": environment(),
        "command": "python -m bench.ranking --data "
        + str(data)
        + (" --quick" if quick else "")
        + (f" --scorers {' '.join(scorers)}" if list(scorers) != list(DEFAULT_SCORERS) else "")
        + (f" --threads {threads}" if threads else "")
        + (" --text" if text else "")
        + (f" --llm-rerank {' '.join(rerank_models)} --rerank-users {rerank_users}" if rerank_models else "")
        + (f" --tag {tag}" if tag else ""),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    out = Path(out)
    stem = f"ranking-{name}" + (f"-{slug(tag)}" if tag else "")
    payload["report_stem"] = stem
    write_json(out / f"{stem}.json", payload)
    write_text(out / f"{stem}.md", _markdown(payload))
    series = {
        k: {m: v[m] for m in ("recall@5", "recall@10", "ndcg@5", "ndcg@10")} for k, v in results.items()
    }
    bar_plot(
        out / f"{stem}.png",
        series,
        ["recall@5", "recall@10", "ndcg@5", "ndcg@10"],
        f"{name}: leave-one-out, full ranking, history masked",
        references={
            k: {m: v.get(m) for m in ("recall@5", "recall@10", "ndcg@5", "ndcg@10")}
            for k, v in published.items()
            if k in ("SASRec (BCE)", "DuoRec", "eSASRec", "LlamaRec")
        },
    )
    return payload


def _llm_rerank(
    model_or_adapter: str,
    fitted: dict[str, Scorer],
    test_rows: list[tuple[list[int], int]],
    catalog: Catalog,
    n_users: int,
    scorer_name: str | None,
    seed: int,
    threads: int | None,
) -> dict[str, Any]:
    """CF-only vs CF+LLM (listwise verbalizer over the CF top-20) on the same seeded test users."""
    from llm.models import default_quantize
    from llm.reranker import LLMReranker, evaluate_rerank

    name = scorer_name or ("fused" if "fused" in fitted else list(fitted)[-1])
    if name not in fitted:
        raise SystemExit(f"--rerank-scorer {name!r} was not run; ran {sorted(fitted)}")
    path = Path(model_or_adapter).expanduser()
    adapter, base = None, model_or_adapter
    if (path / "adapter_config.json").is_file():
        adapter = str(path)
        base = json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"]
    quantize = default_quantize()
    reranker = LLMReranker(base, adapter_dir=adapter, threads=threads, quantize=quantize)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(test_rows), min(n_users, len(test_rows)), replace=False))
    print(f"[ranking] LLM re-ranking {name}'s top-20 for {len(pick)} test users with {model_or_adapter} ...")
    with measure() as m:
        out = evaluate_rerank(fitted[name], [test_rows[i] for i in pick], catalog, reranker, progress=True)
    out.update(
        scorer=name,
        model=str(base),
        adapter=adapter,
        quantize=quantize,
        seed=seed,
        seconds=round(m.seconds, 1),
        sample="test users drawn with numpy default_rng(seed) without replacement",
    )
    print(
        f"[ranking] {name}: NDCG@10 {out['cf']['ndcg@10']:.4f} -> CF+LLM {out['cf+llm']['ndcg@10']:.4f} "
        f"(paired diff {out['ndcg@10_diff']:+.4f} ± {out['ndcg@10_diff_se'] or 0:.4f}, {len(pick)} users)"
    )
    return out


def _markdown(p: dict[str, Any]) -> str:
    rows = [{"scorer": k, **v} for k, v in p["scorers"].items()]
    cols = [
        "scorer",
        "recall@5",
        "ndcg@5",
        "recall@10",
        "ndcg@10",
        "mrr",
        "train_seconds",
        "train_cpu_seconds",
        "peak_rss_delta_mb",
    ]
    beyond = ["scorer", "coverage@10", "ild@10", "novelty@10", "popularity@10"]
    unmasked = [{"scorer": k, **v["test_unmasked"]} for k, v in p["scorers"].items()]
    pr = p["protocol"]
    lines = [
        f"# Ranking benchmark: {p['dataset']}",
        "",
        f"Data: {p['summary']['users']} users, {p['summary']['items']} items, {p['summary']['interactions']} interactions; "
        f"{pr['test_users']} test users. Command: `{p['command']}` ({p['created']}).",
        "",
        "**Protocol:** "
        + "; ".join(f"{k}: {pr[k]}" for k in ("split", "ranking", "mask_history", "ties", "selection")),
        "",
        "## Test split, full ranking, history masked",
        "",
        markdown_table(rows, cols),
        "",
        "## Beyond accuracy (top-10 lists, test)",
        "",
        markdown_table(rows, beyond),
        f"\nILD: {pr['ild']}. Novelty: {pr['novelty']}. Popularity: {pr['popularity']}.",
        "",
        "## Test split, full ranking, nothing masked",
        "",
        markdown_table(unmasked, ["scorer", "recall@5", "ndcg@5", "recall@10", "ndcg@10", "mrr"]),
        f"\nShare of test targets already in the user's history: {pr['test_target_in_history_rate']:.4f}.",
        "",
        "## Validation NDCG@10 used for selection (SASRec best epoch; fused tuning subsample)",
        "",
        markdown_table(rows, ["scorer", "valid_ndcg@10"]),
    ]
    fused = p["scorers"].get("fused")
    if fused:
        lines += ["", f"Fused weights (tuned on valid): {fused.get('weights')}"]
    if p["published_full_ranking"]:
        pub = [{"method": k, **v} for k, v in p["published_full_ranking"].items()]
        lines += [
            "",
            "## Published, same split (leave-one-out, full ranking; from /work/shared/datasets/README.md)",
            "",
            markdown_table(pub, ["method", "recall@5", "ndcg@5", "recall@10", "ndcg@10", "source"]),
            "\nRe-runs of one method on this split differ by up to 2x across papers; masking conventions "
            "of the published code may differ (see protocol).",
        ]
    for rr in p.get("llm_rerank") or []:
        rows_rr = [{"ranking": k, **rr[k]} for k in ("cf", "cf+llm")]
        lines += [
            "",
            f"## CF-only vs CF+LLM re-ranking ({rr['users']} seeded test users, history masked)",
            "",
            f"The LLM (`{rr['model']}`{', adapter `' + rr['adapter'] + '`' if rr['adapter'] else ''}, "
            f"{rr['quantize'] or 'full precision'}) reorders {rr['scorer']}'s top-{rr['top']} with one listwise "
            "prompt per user (letters A-T, verbalizer); the rest keeps CF order.",
            "",
            markdown_table(rows_rr, ["ranking", "recall@5", "ndcg@5", "recall@10", "ndcg@10"]),
            f"\nPaired NDCG@10 difference {rr['ndcg@10_diff']:+.4f} ± {rr['ndcg@10_diff_se'] or 0:.4f} (s.e.); "
            f"target in the top-{rr['top']}: {rr['target_in_top_rate']:.3f}; moved up {rr['target_moved_up']}, "
            f"down {rr['target_moved_down']}; LLM {rr['llm_seconds_per_user']} s per user.",
        ]
    env = p["environment"]
    lines += [
        "",
        f"Timing: {pr['train_seconds']}. Memory: {pr['memory']}. Environment: {env.get('cpu_count')} CPUs, "
        f"torch threads {env.get('torch_threads')}, load average at the end {env.get('load_average_1m_5m_15m')}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="registered dataset name or a dataset folder/file")
    ap.add_argument("--out", default="reports", help="output folder (default: reports/)")
    ap.add_argument("--quick", action="store_true", help="300 users, tiny SASRec: smoke test")
    ap.add_argument(
        "--scorers", nargs="+", default=list(DEFAULT_SCORERS), help=f"default: {' '.join(DEFAULT_SCORERS)}"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument(
        "--set", action="append", default=[], metavar="SCORER.PARAM=VALUE", help="override a hyper-parameter"
    )
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument(
        "--text", action="store_true", help="give SASRec MiniLM item-text embeddings as a side input (cached)"
    )
    ap.add_argument(
        "--llm-rerank",
        default=None,
        nargs="+",
        metavar="MODEL_OR_ADAPTER",
        help="also report CF-only vs CF+LLM listwise re-ranking of the top-20 (model names/dirs or LoRA adapters; "
        "each on the same users)",
    )
    ap.add_argument("--rerank-users", type=int, default=200, help="seeded test users for --llm-rerank")
    ap.add_argument(
        "--rerank-scorer", default=None, help="whose top-20 to re-rank (default: fused, else the last)"
    )
    ap.add_argument(
        "--tag", default=None, help="report name suffix: ranking-<dataset>-<tag>.* (default: ranking-<dataset>.*)"
    )
    args = ap.parse_args(argv)
    configure()
    if args.rerank_users < 1:
        raise SystemExit("--rerank-users must be >= 1")
    if not args.data:
        raise SystemExit("--data must not be empty")
    payload = run(
        args.data,
        args.out,
        args.scorers,
        args.quick,
        args.seed,
        args.threads,
        _parse_set(args.set),
        progress=not args.no_progress,
        text=args.text,
        llm_rerank=args.llm_rerank,
        rerank_users=args.rerank_users,
        rerank_scorer=args.rerank_scorer,
        tag=args.tag,
    )
    print(f"[ranking] wrote {Path(args.out) / payload['report_stem']}.{{json,md,png}}")


if __name__ == "__main__":
    main()
