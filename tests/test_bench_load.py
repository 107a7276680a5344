"""The load bench at the documented capacity (docs/limits.md): 0 errors, bounded time.

``python -m bench.load`` runs as a real subprocess: N shopper threads on the Python API (one
shared ``ShoppingAssistant``), and N ``gradio_client`` browsers against the app served on
127.0.0.1. Slow: each level runs for a few seconds at the documented concurrency, which
saturates a small CPU for the duration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _servers import die_with_parent

REPO = Path(__file__).resolve().parents[1]

# The documented capacity (docs/limits.md, "Load"): template replies (llm=None).
API_USERS = 256
HTTP_USERS = 16


def run_load(tmp_path: Path, target: str, users: int, seconds: float, llm: str = "none") -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable, "-m", "bench.load", "--target", target, "--users", str(users), "--llm", llm,
        "--seconds", str(seconds), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=540, preexec_fn=die_with_parent()
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "out" / f"load-{target}-beauty-fixture.json").read_text())


def check_level(report: dict, users: int) -> None:
    (run,) = report["runs"]
    (level,) = run["levels"]
    assert level["users"] == users
    assert level["errors"] == 0, f"errors at the documented capacity: {level['error_kinds']}"
    assert level["turns"] >= users, "every shopper completed at least one turn"
    assert run["capacity_users_zero_errors"] == users
    assert level["p50_ms"] <= level["p95_ms"] <= level["p99_ms"] <= level["max_ms"]
    assert level["max_ms"] <= report["turn_timeout_s"] * 1000


@pytest.mark.slow
def test_api_load_at_documented_capacity_has_no_errors(tmp_path) -> None:
    report = run_load(tmp_path, "api", API_USERS, 10)
    check_level(report, API_USERS)


@pytest.mark.slow
def test_http_load_through_the_app_at_documented_capacity_has_no_errors(tmp_path) -> None:
    report = run_load(tmp_path, "http", HTTP_USERS, 10)
    check_level(report, HTTP_USERS)
    md = (tmp_path / "out" / "load-http-beauty-fixture.md").read_text()
    assert f"Capacity with 0 errors: {HTTP_USERS} concurrent users" in md


@pytest.mark.slow
def test_http_api_load_at_documented_capacity_has_no_errors(tmp_path) -> None:
    report = run_load(tmp_path, "http-api", HTTP_USERS, 5)
    check_level(report, HTTP_USERS)


@pytest.mark.slow
def test_http_api_load_reports_template_and_llm_replies_side_by_side(tmp_path) -> None:
    report = run_load(tmp_path, "http-api", 2, 3, llm="none,smollm2-135m")
    assert [r["llm"] for r in report["runs"]] == ["none", "smollm2-135m"]
    for run in report["runs"]:
        (level,) = run["levels"]
        assert level["users"] == 2 and level["turns"] >= 1
    md = (tmp_path / "out" / "load-http-api-beauty-fixture.md").read_text()
    assert "## Replies: templates (llm=none)" in md and "## Replies: smollm2-135m" in md
