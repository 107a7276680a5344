"""``python -m bench.finetune --quick``: the whole fine-tuning pipeline (generate -> train ->
base vs adapter) on the toy shop with the tiny LLM, and the report it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.finetune import main


def test_quick_pipeline_writes_a_consistent_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "reports"
    main(
        [
            "--quick", "--work", str(tmp_path / "work"), "--out", str(out), "--eval-users", "8",
            "--protocols", "retrieved,random", "--no-progress",
        ]
    )  # fmt: skip
    stem = "finetune-toy-shop-smollm2-135m-quick"
    report = json.loads((out / f"{stem}.json").read_text())
    assert (out / f"{stem}.png").stat().st_size > 10_000  # a real figure, not an empty canvas
    md = (out / f"{stem}.md").read_text()
    assert set(report["listwise"]) == {"retrieved", "random"}
    # The bench reports what the evaluator wrote, not numbers of its own.
    ev = json.loads((tmp_path / "work" / "eval" / "eval.json").read_text())
    for protocol, entry in report["listwise"].items():
        for name in ("base", "adapter", "teacher"):
            assert entry[name]["n"] == 8
            assert entry[name]["ndcg@10"] == ev["listwise"][protocol][name]["ndcg@10"]
        assert f"{entry['adapter']['ndcg@10']:.4f}" in md
    s = report["seconds"]
    assert s["total"] >= s["generate"] + s["train"] + s["evaluate"] - 0.2 > 0  # each rounded to 0.1 s
    assert report["within_budget"] == (s["total"] <= report["budget_s"])
    assert report["train"]["steps"] == 3 and report["train_config"]["data"]["curriculum"] == "rebuy:2"
    log = (tmp_path / "work" / "run" / "train_log.jsonl").read_text()
    assert '"event": "train"' in log
    assert "Protocol:" in md and "paired" in md
    assert f"{report['generate_config']['train_protocol']} candidates" in md
    assert "total" in capsys.readouterr().out


def test_needs_data_unless_quick(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--work", str(tmp_path)])
