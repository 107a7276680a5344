"""bench.compare_runs: pairs one system's shoppers across two transcript files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.compare_runs import compare, load_first_hits, main


def _write(path: Path, hits: dict[str, int | None], system: str = "full") -> Path:
    rows = [
        {"system": system, "user_id": u, "target_id": f"t{u}", "first_hit": h, "turns": []}
        for u, h in hits.items()
    ]
    rows.append({"system": "other", "user_id": "x", "target_id": "y", "first_hit": 1, "turns": []})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_paired_difference_and_report(tmp_path: Path) -> None:
    before = _write(tmp_path / "b.jsonl", {"1": None, "2": 3, "3": None, "4": 1})
    after = _write(tmp_path / "a.jsonl", {"1": 2, "2": 3, "3": 5, "4": 1})
    r = compare(load_first_hits(before, "full"), load_first_hits(after, "full"), max_turns=5)
    assert (r["shoppers"], r["hit_before"], r["hit_after"]) == (4, 0.5, 1.0)
    assert r["hit_diff"]["diff"] == pytest.approx(0.5) and r["hit_diff"]["lo"] <= 0.5 <= r["hit_diff"]["hi"]
    # turns: before (6 + 3 + 6 + 1) / 4, after (2 + 3 + 5 + 1) / 4
    assert r["at_diff"]["diff"] == pytest.approx(11 / 4 - 16 / 4)
    assert (r["mcnemar"]["after_only"], r["mcnemar"]["before_only"]) == (2, 0)
    assert main(["--before", str(before), "--after", str(after), "--out", str(tmp_path / "cmp")]) == 0
    md = (tmp_path / "cmp.md").read_text()
    assert "+0.500" in md and "the same 4 simulated shoppers" in md
    assert json.loads((tmp_path / "cmp.json").read_text())["hit_after"] == 1.0


def test_unpaired_runs_and_a_missing_system_are_refused(tmp_path: Path) -> None:
    before = _write(tmp_path / "b.jsonl", {"1": 1, "2": None})
    after = _write(tmp_path / "a.jsonl", {"1": 1, "3": None})
    with pytest.raises(SystemExit, match="different shoppers"):
        compare(load_first_hits(before, "full"), load_first_hits(after, "full"), max_turns=5)
    with pytest.raises(SystemExit, match="no dialogues of system"):
        load_first_hits(before, "retrieval-only")
