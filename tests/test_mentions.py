"""Catalog items named in free text (assistant.understanding.mentions) and their effect on a turn."""

from __future__ import annotations

from assistant.dialogue_state import DialogueState
from assistant.understanding.mentions import TitleIndex, find_items
from assistant.understanding.parser import parse
from assistant.understanding.vocabulary import CatalogVocabulary
from retrieval.data.schema import Catalog, Item

TITLES = [
    ("1", "Toy Story (1995)"),
    ("2", "Lion King, The (1994)"),
    ("3", "Scream (1996)"),
    ("4", "Heat (1995)"),
    ("5", "Star Trek: The Wrath of Khan (1982)"),
    ("6", "Fan, The (1996)"),
    ("7", "Fargo (1996)"),
    ("8", "Click (2006)"),
    ("9", "Home Alone (1990)"),
]
INDEX = TitleIndex.from_items((i, t, None) for i, t in TITLES)


def _found(text: str) -> list[tuple[str, str]]:
    return [(m.item_ids[0], m.polarity) for m in find_items(text, INDEX)]


def test_likes_and_dislikes_in_one_sentence() -> None:
    assert _found("I loved Toy Story and The Lion King but hated Scream") == [
        ("1", "like"),
        ("2", "like"),
        ("3", "dislike"),
    ]


def test_common_word_title_needs_mention_context() -> None:
    assert _found("I want a movie with some heat and a click") == []
    assert _found("I liked Click") == [("8", "like")]
    assert _found("Heat was great") == [("4", "like")]
    assert _found("i watched Click (2006)") == [("8", "neutral")]


def test_negation_scope_and_cue_words_are_no_titles() -> None:
    assert _found("not a big fan of Fargo") == [("7", "dislike")]
    assert _found("i didn't like toy story") == [("1", "dislike")]


def test_partial_title_and_year_mismatch() -> None:
    assert _found("I loved wrath of khan") == [("5", "like")]
    assert _found("I loved Heat (2013)") == []
    assert _found("I want to watch home alone with the kids") == []


def test_chinese_cues() -> None:
    assert _found("我很喜欢Toy Story但是讨厌Scream") == [("1", "like"), ("3", "dislike")]


def test_parsed_mentions_become_likes_and_exclusions() -> None:
    catalog = Catalog([Item(i, t, categories=("Movies",)) for i, t in TITLES])
    vocab = CatalogVocabulary.from_catalog(catalog)
    parsed = parse("I loved Toy Story but hated Scream", vocab, None, titles=INDEX)
    assert "toy" not in parsed.query.lower()
    state = DialogueState().apply(parsed, intent="recommend")
    assert state.liked == ("1",) and state.disliked == ("3",)
    assert {"1", "3"} <= set(state.constraints.exclude_items)


def test_a_brand_in_a_title_is_no_title_form() -> None:
    # "(L'oreal)" closing a product title made "not from L'Oreal" a dislike of that one product,
    # and the rest of the brand ("Paris") then read as the brand Paris Hilton.
    index = TitleIndex.from_items(
        [
            ("a", "Sublime Bronze Self Tanning Lotion, 6.7 Oz., (L'oreal)", "L'Oreal Paris"),
            ("b", "HydraFresh Toner", "L'Oreal"),
            ("c", "Seven (Se7en)", None),
        ]
    )
    assert find_items("not from L'Oreal, please", index) == ()
    assert find_items("Not from L'Oreal Paris", index) == ()
    assert [m.item_ids for m in find_items("I loved Se7en", index)] == [("c",)]
