"""One shared ``ShoppingAssistant`` per dataset, built lazily and at most once.

The engine (index, scorers, LLM) is expensive and stateless per shopper: sessions
are isolated by ``session_id`` inside it, so every browser session can share it.
Nothing here holds per-user state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.data import load_dataset
from retrieval.data.schema import Dataset
from retrieval.filters import Constraints

if TYPE_CHECKING:
    from assistant.shopping_assistant import ShoppingAssistant

DatasetSourceValue = str | Path | Dataset
EngineFactory = Callable[[DatasetSourceValue], "ShoppingAssistant"]


@dataclass(frozen=True)
class DatasetChoice:
    """One entry of the dataset picker: ``key`` is the dropdown value, ``source`` what gets loaded."""

    key: str
    label: str
    source: DatasetSourceValue


def dataset_choices(
    sources: Sequence[DatasetSourceValue] | Mapping[str, DatasetSourceValue],
) -> list[DatasetChoice]:
    """Picker entries for registered names, dataset paths and in-memory ``Dataset`` objects.

    Keys are unique: two folders with the same name get ``name (2)``.
    """
    items = list(sources.items()) if isinstance(sources, Mapping) else [(None, s) for s in sources]
    out: list[DatasetChoice] = []
    seen: set[str] = set()
    for key, source in items:
        if isinstance(source, Dataset):
            label = key or source.name
        elif isinstance(source, Path) or (isinstance(source, str) and ("/" in source or "\\" in source)):
            path = Path(source).expanduser()
            label = key or f"{path.name or str(path)} (folder)"
            source = path
        else:
            label = key or str(source)
        unique, n = label, 2
        while unique in seen:
            unique, n = f"{label} ({n})", n + 1
        seen.add(unique)
        out.append(DatasetChoice(key=unique, label=unique, source=source))
    if not out:
        raise ValueError("the app needs at least one dataset (a registered name or a dataset path)")
    return out


def default_factory(
    cache_dir: str | Path | None = None, threads: int | None = None, **options: Any
) -> EngineFactory:
    """Builds engines with ``ShoppingAssistant.from_dataset`` and the app's LLM/cache settings.

    ``options`` (e.g. ``llm=``) are passed only when given, so the assistant's defaults apply.
    """

    def build(source: DatasetSourceValue) -> ShoppingAssistant:
        # lazy: the assistant loads torch, and app.main must call llm.runtime.configure() first
        from assistant.shopping_assistant import ShoppingAssistant

        return ShoppingAssistant.from_dataset(source, cache_dir=cache_dir, threads=threads, **options)

    return build


class EngineRegistry:
    """Lazily builds and caches one engine per dataset choice (thread-safe, once per key).

    A failed build is not cached: the next request retries, so a transient
    problem (a locked cache dir) does not stick for the server's lifetime.
    """

    def __init__(self, choices: Sequence[DatasetChoice], factory: EngineFactory):
        self.choices = {c.key: c for c in choices}
        self.default_key = choices[0].key
        self._factory = factory
        self._engines: dict[str, ShoppingAssistant] = {}
        self._datasets: dict[str, Dataset] = {}
        self._locks = {key: threading.Lock() for key in self.choices}

    def _choice(self, key: str) -> DatasetChoice:
        try:
            return self.choices[key]
        except KeyError:
            raise ValueError(f"unknown dataset {key!r}; choose one of {sorted(self.choices)}") from None

    def is_loaded(self, key: str) -> bool:
        return key in self._engines

    def get(self, key: str) -> ShoppingAssistant:
        choice = self._choice(key)
        engine = self._engines.get(key)
        if engine is not None:
            return engine
        with self._locks[key]:
            engine = self._engines.get(key)
            if engine is None:
                engine = self._factory(choice.source)
                self._engines[key] = engine
        return engine

    def dataset(self, key: str) -> Dataset:
        """The dataset behind ``key`` (the engine's own copy when it exposes one)."""
        if key in self._datasets:
            return self._datasets[key]
        engine = self.get(key)
        ds = getattr(engine, "dataset", None)
        if not isinstance(ds, Dataset):
            source = self._choice(key).source
            ds = source if isinstance(source, Dataset) else load_dataset(source)
        self._datasets[key] = ds
        return ds


def set_session_constraints(
    engine: ShoppingAssistant, session_id: str, constraints: Constraints, user_id: str | None = None
) -> Constraints:
    """Replace the constraints in force for one session (the UI's removable chips / budget field).

    A thin call to the assistant's public ``set_constraints``: it validates against the catalog,
    persists in the session store under the session's lock, and returns what is now in force
    (brands spelled as the catalog spells them). Bad values raise ``ValueError``.
    """
    return engine.set_constraints(session_id, constraints, user_id=user_id)
