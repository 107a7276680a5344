"""The understanding stage's word lists and alias tables (assistant/understanding/data/*.yaml)."""

import fnmatch
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from assistant.understanding import lexicon

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "assistant" / "understanding" / "data"


def test_every_data_file_is_shipped_as_package_data() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = globs["assistant.understanding"]
    files = sorted(DATA.glob("*.yaml"))
    assert files
    for f in files:
        assert any(fnmatch.fnmatch(f"data/{f.name}", g) for g in shipped), f.name


def test_yaml_keeps_words_that_look_like_booleans() -> None:
    common = lexicon.words("vocabulary", "common_words")
    assert {"no", "yes", "on", "off"} <= common
    assert lexicon.numbers("numbers", "counts")["2"] == 2


def test_alias_targets_keep_their_order() -> None:
    assert lexicon.aliases("vocabulary", "category_aliases_en")["sunscreen"] == ("Sunscreens", "Skin Protection")
    assert lexicon.aliases("vocabulary", "brand_aliases_zh")["欧莱雅"] == ("L'Oreal Paris", "L'Oreal")


@pytest.mark.parametrize(
    ("name", "key", "text"),
    [
        ("intent_cues", "compare", "Compare the first two"),
        ("intent_cues", "compare", "这两个哪个好"),
        ("intent_cues", "smalltalk", "thanks!"),
        ("parser_cues", "negation", "nothing by OPI"),
        ("parser_cues", "lower_price", "something less expensive"),
        ("parser_cues", "lower_price", "便宜一点"),
    ],
)
def test_cues_match_their_phrases(name: str, key: str, text: str) -> None:
    assert lexicon.cue(name, key).search(text)


def test_importing_the_parser_reads_no_data_file() -> None:
    code = (
        "from assistant.understanding import intents, parser, lexicon\n"
        "assert lexicon._table.cache_info().currsize == 0, lexicon._table.cache_info()\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
