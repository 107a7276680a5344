"""The ``shopping-assistant`` console command: dispatch, ``data list``, ``bench`` and the terminal chat.

The wheel test (slow) builds the package, installs it into a fresh venv and runs the installed
command: ``--help`` and a ``ui`` start that answers HTTP.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import pytest
from _servers import ServerProcess, die_with_parent, free_port
from assistant_catalog import make_dataset

from assistant import ShoppingAssistant
from retrieval.data import available_datasets
from shopping_assistant.cli import BENCHMARKS, COMMANDS, main
from shopping_assistant.terminal import cards_table, run_repl

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_every_command(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in ("ui", "chat", "serve", "finetune", "bench", "data"):
        assert name in COMMANDS and f"    {name} " in out


def test_data_list_names_every_registered_dataset(capsys) -> None:
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in available_datasets():
        assert name in out


def test_bench_names_are_real_entry_points(capsys) -> None:
    assert main(["bench", "nope"]) == 2
    assert "conversation" in capsys.readouterr().out
    for name in BENCHMARKS:
        assert (REPO / "bench" / f"{name}.py").read_text().count("\ndef main(") == 1, name


def test_bench_and_finetune_delegate_to_their_modules(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "load", "--help"])
    assert exit_.value.code == 0
    assert "--target" in capsys.readouterr().out
    assert main(["finetune", "--help"]) == 0
    assert "toydata" in capsys.readouterr().out


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    b = ShoppingAssistant.from_dataset(
        make_dataset(), llm=None, cache_dir=tmp_path_factory.mktemp("cache"), show_progress=False
    )
    yield b
    b.close()


def test_terminal_chat_streams_text_prints_cards_and_takes_feedback(bot) -> None:
    lines = iter(["a moisturizer under $30", "/like 1", "/like 99", "cheaper", "/quit", "never read"])
    out = io.StringIO()
    turns = run_repl(bot, lambda _prompt: next(lines), out, user_id="cli-u1", session_id="cli-s1")
    text = out.getvalue()
    assert turns == 2
    record = bot.session("cli-s1")
    assert record is not None and [t.role for t in record.transcript].count("user") == 2
    (first,) = record.liked
    assert f"liked: {bot.catalog[first].title}" in text
    assert "usage: /like N" in text
    header = next(line for line in text.splitlines() if line.startswith("#  title"))
    assert "price" in header and "why" in header
    assert bot.catalog[first].title[:40] in text


def test_cards_table_aligns_columns_and_cuts_long_text(bot) -> None:
    items = bot.chat("a moisturizer under $30", session_id="tbl").items
    table = cards_table(items, "USD").splitlines()
    assert len(table) == len(items) + 2
    assert len({line.index("$") for line in table[2:]}) == 1, "price column aligned"
    assert cards_table([], "USD") == ""


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, preexec_fn=die_with_parent(), **kw)


@pytest.mark.slow
def test_wheel_installs_a_working_console_command(tmp_path) -> None:
    """Non-editable install: the wheel alone must start the UI (app.py is not in it)."""
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("shopping_assistant-*.whl")
    # Offline: the fresh venv sees the project's dependencies through .venv's site-packages.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, system_site_packages=True)
    py = env_dir / "bin" / "python"
    site = _run([sys.executable, "-c", "import site; print(site.getsitepackages()[0])"]).stdout.strip()
    (
        Path(_run([str(py), "-c", "import site; print(site.getsitepackages()[0])"]).stdout.strip())
        / "deps.pth"
    ).write_text(site + "\n")
    inst = _run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], timeout=300)
    assert inst.returncode == 0, inst.stderr[-3000:]
    exe = env_dir / "bin" / "shopping-assistant"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    helped = _run([str(exe), "--help"], cwd=tmp_path, env=env, timeout=120)
    assert helped.returncode == 0 and "serve" in helped.stdout, helped.stderr
    where = _run([str(py), "-c", "import assistant; print(assistant.__file__)"], cwd=tmp_path, env=env)
    assert str(env_dir) in where.stdout, "the installed package, not the checkout, is tested"
    port = free_port()
    server = ServerProcess(
        [
            str(exe),
            "ui",
            "--port",
            str(port),
            "--llm",
            "none",
            "--no-preload",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        f"http://127.0.0.1:{port}/",
        tmp_path / "ui.log",
        env={"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": ""},
    )
    try:
        server.start(timeout=240)
        page = httpx.get(f"http://127.0.0.1:{port}/config", timeout=30)
        assert page.status_code == 200 and "components" in page.json(), "a gradio app answers"
    finally:
        server.stop()


@pytest.mark.parametrize("command", ["chat", "serve"])
def test_a_dataset_that_cannot_be_opened_exits_2_with_the_reason(command, tmp_path, capsys) -> None:
    missing = tmp_path / "no-such-shop"
    assert main([command, "--dataset", str(missing), "--llm", "none", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no-such-shop" in err
