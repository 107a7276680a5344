"""Scripted dialogues with the simulated shopper over the fixture catalogs: the same replies
(items shown, clarifying questions) every time, so two versions of the simulator can be compared
turn by turn. ``tests/fixtures/bench/describe_dialogues.json`` holds the ``describe`` transcripts
recorded before the plan/voice split; ``python -m tests._shopper_scripts`` rewrites it (only do
that when the describe wording is meant to change)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

from assistant_catalog import make_dataset

from bench.simulator import Simulator
from retrieval.data.schema import Catalog, Item

FIXTURE = Path(__file__).parent / "fixtures" / "bench" / "describe_dialogues.json"
# What the scripted assistant does after each shopper turn: show items, or ask a question.
QUESTIONS = (
    "What's your budget?",
    "Any brand in mind?",
    "What are you shopping for?",
    "Which brand and what price range?",
)


def movie_catalog() -> Catalog:
    """A single-root catalog with release years: the era attribute and the "a ... movie" noun."""
    genres = [("Movies", g) for g in ("Comedy", "Drama", "Action", "Thriller")]
    words = ["funny", "dark", "family", "classic", "space", "love", "war", "crime"]
    items = []
    for n in range(48):
        w1, w2 = words[n % 8], words[(n * 3 + 1) % 8]
        cats = genres[n % 4] if n % 3 else genres[(n + 1) % 4]
        item = Item(
            f"m{n:02d}",
            f"{w1.title()} {w2.title()} Story {n}",
            None,
            cats,
            None,
            reviews=(f"a {w1} {w2} film",),
            attributes={"release_year": 1950 + (n * 7) % 70},
        )
        items.append(item)
    return Catalog(items)


def scripted_replies(catalog: Catalog, target: str, seed: int) -> list[SimpleNamespace | None]:
    """Replies before each shopper turn: None first, then items (never the target) or a question."""
    ids = [i for i in catalog.ids if i != target]
    out: list[SimpleNamespace | None] = [None]
    for t in range(1, 5):
        if (seed + t) % 3 == 0:
            q = QUESTIONS[(seed + t) % len(QUESTIONS)]
            shown = ids[(seed * 7 + t) % len(ids) :][:3] if t % 2 else []
            out.append(
                SimpleNamespace(
                    intent="clarify" if not shown else "recommend",
                    text=q,
                    question=q,
                    items=[SimpleNamespace(item_id=i) for i in shown],
                )
            )
        else:
            start = (seed * 11 + t * 5) % len(ids)
            shown = (ids[start:] + ids[:start])[:5]
            out.append(
                SimpleNamespace(
                    intent="recommend",
                    text="Here you go.",
                    question=None,
                    items=[SimpleNamespace(item_id=i) for i in shown],
                )
            )
    return out


def transcripts(shopper_mode: str = "describe") -> dict[str, list[str]]:
    """Utterances of scripted dialogues: both fixture catalogs, English and Chinese, 30 shoppers each."""
    out: dict[str, list[str]] = {}
    for name, catalog, min_df in (("beauty", make_dataset().catalog, 5), ("movies", movie_catalog(), 3)):
        for lang in ("en", "zh"):
            for seed in range(30):
                sim = Simulator(
                    catalog, seed=seed, language=lang, min_df=min_df, min_df_share=0.05, shopper=shopper_mode
                )
                target = catalog.at((seed * 13) % len(catalog)).item_id
                shopper = sim.shopper(f"u{seed}", [], target)
                said = [shopper.next_turn(r).utterance for r in scripted_replies(catalog, target, seed)]
                out[f"{name}/{lang}/{seed}/{target}"] = said
    return out


if __name__ == "__main__":
    FIXTURE.write_text(json.dumps(transcripts(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {FIXTURE}\n")
