"""Process set-up (``llm.runtime.configure``): what it sets, what it leaves to the user, that it is
idempotent, and that importing the packages or the entry modules sets nothing and loads no torch
(so each entry point's ``configure()`` call runs before torch reads the OpenMP policy)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llm.runtime import OFFLINE, OPENMP, TELEMETRY_OFF, configure

REPO = Path(__file__).resolve().parents[1]
SWITCHES = {**OPENMP, **OFFLINE, **TELEMETRY_OFF}
ENTRY_MODULES = [
    "app",
    "llm.openai_server",
    "finetune.__main__",
    "bench.chat",
    "bench.conversation",
    "bench.finetune",
    "bench.load",
    "bench.ranking",
    "bench.retrieval",
    "bench.scale",
]


def _run(code: str, **env: str) -> dict:
    """``code`` in a fresh interpreter without any of the switches (or local-only) in its
    environment, plus ``env``; its last stdout line parsed as JSON."""
    base = {k: v for k, v in os.environ.items() if k not in SWITCHES and k != "SHOPASSIST_LOCAL_ONLY"}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env=base | {"PYTHONPATH": str(REPO)} | env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def clean_env(monkeypatch):
    """None of the switches set; whatever configure() writes is restored afterwards."""
    for key in SWITCHES:
        monkeypatch.setenv(key, "placeholder")  # registers the key for restoring
        monkeypatch.delenv(key)
    monkeypatch.delenv("SHOPASSIST_LOCAL_ONLY", raising=False)
    return monkeypatch


def test_configure_sets_what_it_says_and_is_idempotent(clean_env) -> None:
    first = configure()
    assert first.env_set == SWITCHES
    assert {k: os.environ[k] for k in SWITCHES} == SWITCHES
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False" and not first.local_only
    again = configure()
    assert again.env_set == {} and {k: os.environ[k] for k in SWITCHES} == SWITCHES


def test_configure_keeps_the_users_explicit_values(clean_env) -> None:
    clean_env.setenv("OMP_WAIT_POLICY", "ACTIVE")
    clean_env.setenv("HF_HUB_OFFLINE", "0")
    clean_env.setenv("GRADIO_ANALYTICS_ENABLED", "True")
    got = configure()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE" and os.environ["HF_HUB_OFFLINE"] == "0"
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "True"
    assert set(got.env_set) == set(SWITCHES) - {"OMP_WAIT_POLICY", "HF_HUB_OFFLINE", "GRADIO_ANALYTICS_ENABLED"}


def test_configure_online_with_telemetry_sets_only_the_openmp_policy(clean_env) -> None:
    assert configure(offline=False, telemetry=True).env_set == OPENMP
    assert not any(k in os.environ for k in {**OFFLINE, **TELEMETRY_OFF})


def test_configure_before_torch_sets_the_policy_torch_then_loads_with() -> None:
    got = _run(
        """
        import json, os, sys
        from llm.runtime import configure
        s = configure(threads=1)
        import torch
        print(json.dumps({"in_time": s.openmp_in_time, "threads": s.threads, "torch": torch.get_num_threads(),
                          "omp": os.environ.get("OMP_WAIT_POLICY")}))
        """
    )
    assert got == {"in_time": True, "threads": 1, "torch": 1, "omp": "PASSIVE"}


def test_configure_after_torch_says_the_policy_came_too_late() -> None:
    got = _run(
        """
        import json, logging, sys
        import torch
        from llm.runtime import configure
        logging.basicConfig(stream=sys.stderr)
        print(json.dumps({"in_time": configure().openmp_in_time}))
        """
    )
    assert got == {"in_time": False}


def test_an_already_imported_hub_is_switched_offline() -> None:
    got = _run(
        """
        import json
        import huggingface_hub.constants as hub
        before = hub.HF_HUB_OFFLINE
        from llm.runtime import configure
        configure()
        print(json.dumps({"before": before, "after": hub.HF_HUB_OFFLINE}))
        """
    )
    assert got == {"before": False, "after": True}


def test_local_only_from_the_environment_forces_its_switches_and_guards_sockets() -> None:
    got = _run(
        """
        import json, os, socket
        from llm.runtime import configure
        s = configure()
        print(json.dumps({"local_only": s.local_only, "offline": os.environ["HF_HUB_OFFLINE"],
                          "guard": getattr(socket.socket.connect, "_local_only_guard", False)}))
        """,
        SHOPASSIST_LOCAL_ONLY="1",
        HF_HUB_OFFLINE="0",  # a stray setting local-only mode must override
    )
    assert got == {"local_only": True, "offline": "1", "guard": True}


def test_importing_the_packages_and_entry_modules_sets_nothing_and_loads_no_torch() -> None:
    got = _run(
        f"""
        import importlib, json, os, socket, sys
        before = dict(os.environ)
        for name in ["assistant", "retrieval", "finetune", "llm", "prompts", "bench", "assistant.ui.web",
                     *{ENTRY_MODULES!r}]:
            importlib.import_module(name)
        after = dict(os.environ)
        print(json.dumps({{"changed": sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)),
                          "torch": "torch" in sys.modules,
                          "guard": getattr(socket.socket.connect, "_local_only_guard", False)}}))
        """,
        SHOPASSIST_LOCAL_ONLY="1",  # even asked for, nothing happens before configure()
    )
    assert got == {"changed": [], "torch": False, "guard": False}
