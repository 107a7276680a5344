"""Text from ``../shared/external`` (ReDial dialogues and movie names, WebShop instructions) stays
there: no tracked file quotes it. Skips where the shared folder is absent (a fresh clone elsewhere).

Compared as word 6-grams: a tracked file "quotes" an external text when every 6-gram of that text
(at least 6 words) occurs in the tracked files' 6-grams.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = REPO.parent / "shared" / "external"
N = 6
_WORD = re.compile(r"\w+")


def _grams(text: str) -> list[tuple[str, ...]]:
    words = _WORD.findall(text.casefold())
    return [tuple(words[i : i + N]) for i in range(len(words) - N + 1)]


def _external_texts() -> list[str]:
    texts: list[str] = []
    goals = EXTERNAL / "webshop" / "human_goals.json"
    if goals.is_file():
        texts += [g for g in json.loads(goals.read_text(encoding="utf-8")) if isinstance(g, str)]
    dialogues = EXTERNAL / "redial-dev" / "dialogues.jsonl"
    if dialogues.is_file():
        for line in dialogues.read_text(encoding="utf-8").splitlines():
            texts += [str(m.get("text", "")) for m in json.loads(line).get("messages", [])]
    return [t for t in texts if len(_WORD.findall(t)) >= N]


def test_no_tracked_file_quotes_the_external_texts() -> None:
    texts = _external_texts()
    if not texts:
        pytest.skip(f"no external texts under {EXTERNAL}")
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    grams: dict[tuple[str, ...], str] = {}
    for name in tracked.stdout.split():
        path = REPO / name
        if path.suffix in {".png", ".gguf", ".ico"} or not path.is_file():
            continue
        for g in _grams(path.read_text(encoding="utf-8", errors="ignore")):
            grams.setdefault(g, name)
    quoted = [(grams[_grams(t)[0]], t[:60]) for t in texts if all(g in grams for g in _grams(t))]
    assert not quoted, quoted[:5]


def test_no_tracked_file_lists_the_redial_movie_names() -> None:
    movies = EXTERNAL / "redial-dev" / "movies_with_mentions.csv"
    if not movies.is_file():
        pytest.skip(f"no ReDial movie list under {EXTERNAL}")
    with movies.open(encoding="utf-8", newline="") as f:
        # ReDial's own spelling (two spaces before the year) marks a name copied from its file.
        names = {row["movieName"] for row in csv.DictReader(f) if "  (" in row["movieName"]}
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    copied = []
    for name in tracked.stdout.split():
        path = REPO / name
        if path.suffix in {".png", ".gguf", ".ico"} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        if "  (" in text:
            found = [n for n in names if n in text]
            if len(found) > 2:  # a docstring's example or two is no copy of the list
                copied.append((name, len(found)))
    assert not copied, copied
