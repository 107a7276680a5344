"""Leakage-safe fine-tuning data from real purchase histories.

Split protocol (``SPLIT_PROTOCOL`` below is written verbatim into ``manifest.json``):

* ``retrieval.data.leave_one_out`` per user: last event = test, second-last = valid,
  the rest = train. Users with < 3 events are never targets.
* Evaluated users are shuffled with the seed and partitioned into three DISJOINT pools:
  ``test`` (held-out evaluation), ``dev`` (eval loss during training) and ``train``.
* train / dev examples: history = the user's TRAIN items, target = their VALID item.
  A training user's test item never appears anywhere.
* test examples: history = TRAIN + VALID items, target = the TEST item, for test-pool
  users only (never trained on, not even their earlier positions).
* Candidate retrievers are fitted on ``split.train`` only (no valid/test event of anyone).
* Examples whose target is already in the shown history (a re-buy), or whose rendered
  title is contained in a shown title, are skipped (counted in the manifest): the prompt must
  not contain the answer. Item ids are never rendered.
* The re-buy warm-up task (train/dev pools only) answers with a shown TRAIN purchase by
  design; its negatives exclude the user's valid and test items.
* The lexical teacher (``--teacher``) is fitted on the train pool's listwise examples only;
  it labels train/dev records, never a test record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from finetune.arguments import LISTWISE_PROTOCOLS, GenerateConfig
from finetune.metrics import ranking_metrics, target_rank
from finetune.records import RecordBuilder, _rng
from finetune.teacher import LexicalTeacher
from llm.listwise import LETTERS
from retrieval.data.registry import load_dataset
from retrieval.data.schema import Dataset
from retrieval.files import atomic_dir
from retrieval.fingerprint import dataset_fingerprint

GENERATOR_VERSION = "2.0"
"""2.0: listwise letters after the titles; optional teacher log-probs on train/dev listwise records."""
SPLIT_PROTOCOL = __doc__.split("Split protocol", 1)[1].split("\n\n", 1)[1].strip()  # type: ignore[union-attr]

TASKS = ("listwise", "rebuy", "sft", "chat")
"""Task names; ``train_<task>.jsonl`` / ``dev_<task>.jsonl`` hold them."""

TEST_FILES = (
    *(f"test_listwise_{p}" for p in LISTWISE_PROTOCOLS),
    "test_sft",
)


def _protocols(cfg: GenerateConfig, k: int) -> str:
    if cfg.train_protocol == "mixed":
        return "retrieved" if k % 2 == 0 else "random"
    return cfg.train_protocol


def generate(cfg: GenerateConfig, dataset: Dataset | None = None) -> dict[str, Any]:
    """Write every JSONL file + ``manifest.json`` into ``cfg.out`` (atomically); returns the manifest."""
    out = Path(cfg.out)
    if out.exists() and any(out.iterdir()) and not cfg.overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass --overwrite to replace it")
    ds = dataset if dataset is not None else load_dataset(cfg.data)
    gen = RecordBuilder(cfg, ds)
    pools = gen.partition()
    if not pools["train"]:
        raise ValueError(
            f"dataset {ds.name!r} has no training users after holding out {len(pools['test'])} test and "
            f"{len(pools['dev'])} dev users (users need >= 3 events); lower --test-users/--dev-users"
        )
    files = _build_files(cfg, gen, pools)
    teacher, teacher_info = _attach_teacher(cfg, files)
    # Every example with a target already passed check_example in RecordBuilder._clean.
    for name, records in files.items():
        for k, rec in enumerate(records):
            rec["id"] = f"{name}-{k:06d}"

    manifest = {
        "generator_version": GENERATOR_VERSION,
        "seed": cfg.seed,
        "config": asdict(cfg),
        "source": {
            "data": str(cfg.data),
            "name": ds.name,
            "summary": ds.summary(),
            "fingerprint_sha256": dataset_fingerprint(ds),
        },
        "split_protocol": SPLIT_PROTOCOL,
        "candidate_source": gen.source.name,
        "users": {part: len(rows) for part, rows in pools.items()},
        "counts": {name: len(records) for name, records in files.items()},
        "skipped": dict(sorted(gen.skipped.items())),
        "teacher": teacher_info,
        "files": {},
    }
    _write_folder(out, files, manifest, teacher)
    return manifest


def _build_files(cfg: GenerateConfig, gen: RecordBuilder, pools: dict[str, list]) -> dict[str, list[dict]]:
    """Every record, by output file stem, in the order they are written."""
    files: dict[str, list[dict]] = {f"train_{t}": [] for t in TASKS}
    files.update({f"dev_{t}": [] for t in ("listwise", "rebuy", "sft")})
    files.update({name: [] for name in TEST_FILES})

    for part in ("train", "dev"):
        for k, (user, hist, target) in enumerate(tqdm(pools[part], desc=f"{part} examples", leave=False)):
            rec = gen.listwise(user, hist, target, _protocols(cfg, k), part)
            if rec is not None:
                files[f"{part}_listwise"].append(rec)
            if _rng(cfg.seed, "sft-pick", user).random() < cfg.sft_fraction:
                rec = gen.sft(user, hist, target, part)
                if rec is not None:
                    files[f"{part}_sft"].append(rec)
    # Re-buy warm-up: seeded choice of training-pool users (dev: a few dev users for its eval).
    for part, n in (("train", cfg.rebuy), ("dev", min(32, cfg.rebuy // 10))):
        rows = pools[part]
        order = _rng(cfg.seed, "rebuy-pick", part).permutation(len(rows))
        for i in order:
            if len(files[f"{part}_rebuy"]) >= n:
                break
            user, hist, later = rows[int(i)]
            rec = gen.rebuy_example(user, hist, later, part)
            if rec is not None:
                files[f"{part}_rebuy"].append(rec)
    for user, hist, target in tqdm(pools["test"], desc="test examples", leave=False):
        for protocol in LISTWISE_PROTOCOLS:
            rec = gen.listwise(user, hist, target, protocol, "test")
            if rec is not None:
                files[f"test_listwise_{protocol}"].append(rec)
        rec = gen.sft(user, hist, target, "test")
        if rec is not None:
            files["test_sft"].append(rec)
    if cfg.chat:
        files["train_chat"] = gen.chat()
    return files


def _write_folder(out: Path, files: dict[str, list[dict]], manifest: dict[str, Any], teacher: Any) -> None:
    """The JSONL files, the teacher and ``manifest.json`` (with their hashes), written as one
    ``atomic_dir``: a crash never leaves a half-written data folder."""

    def write(tmp: Path) -> None:
        for name, records in files.items():
            path = tmp / f"{name}.jsonl"
            _write_jsonl(path, records)
            manifest["files"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        if teacher is not None:
            teacher.save(tmp / TEACHER_FILE)
            manifest["files"][TEACHER_FILE] = hashlib.sha256((tmp / TEACHER_FILE).read_bytes()).hexdigest()
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))

    atomic_dir(out, write)


TEACHER_FILE = "teacher.json"


def _attach_teacher(cfg: GenerateConfig, files: dict[str, list[dict]]) -> tuple[Any, dict[str, Any] | None]:
    """Fit the teacher on the TRAIN listwise records only and label train + dev records with its
    letter log-probs. Test records are never read by it and never labelled."""
    if cfg.teacher == "none" or len(files["train_listwise"]) < 20:
        return None, None
    teacher = LexicalTeacher.fit(files["train_listwise"])
    for name in ("train_listwise", "dev_listwise"):
        for rec in files[name]:
            rec["meta"]["teacher_logprobs"] = [round(float(v), 4) for v in teacher.log_probs(rec)]
    dev = files["dev_listwise"]
    ranks = [target_rank(teacher.scores(r), LETTERS.index(r["meta"]["target_letter"])) for r in dev]
    return teacher, {
        "kind": cfg.teacher,
        "file": TEACHER_FILE,
        "fitted_on": teacher.fitted_on,
        "train_loss": teacher.train_loss,
        "dev_ndcg@10": round(ranking_metrics(ranks)["ndcg@10"], 4) if dev else None,
    }


def _write_jsonl(path: Path, records: Iterable[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of one generated file; a clear error when the file is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (run `python -m finetune generate` first)")
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc})") from exc
    return out


def read_manifest(data_dir: str | Path) -> dict[str, Any]:
    path = Path(data_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {data_dir} is not a generated data folder")
    return json.loads(path.read_text())


def task_inputs(
    data: str | Path, task: str, systems: str, known: Sequence[str]
) -> tuple[dict[str, Any], list[str]]:
    """An evaluation's data folder manifest (checked to be ``task``'s) and its systems to score
    (a comma list, checked against ``known``)."""
    manifest = read_manifest(Path(data))
    if manifest.get("task") != task:
        raise ValueError(f"{data} is not a {task} data folder (generate --task {task})")
    wanted = [s.strip() for s in systems.split(",") if s.strip()]
    if not wanted or set(wanted) - set(known):
        raise ValueError(f"systems must be a subset of {','.join(known)}; got {systems!r}")
    return manifest, wanted
