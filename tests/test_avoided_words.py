"""A plain word the shopper rules out ranks items that carry it down (issue #19: words as evidence):
"sticky notes, not yellow" showed yellow notes second, because a negated word only left the query.
Now it is an avoided word of the topic: an item whose name carries it scores -1 on the preference
signal (as an avoided kind does), unless its name says it is free of it ("Paraben-Free Lotion"
answers "without parabens"). A penalty, never a filter; the word said again as a wish lifts it.
"""

from __future__ import annotations

import pytest

from assistant.dialogue_state import DialogueState
from assistant.understanding.parser import parse
from assistant.understanding.vocabulary import CatalogVocabulary
from retrieval.data.schema import Catalog, Item
from retrieval.hybrid import Candidate
from retrieval.ranker import FusedRanker, RankerWeights

NOTES = ("Office Products", "Office & School Supplies", "Paper", "Self-Stick Notes")
LOTIONS = ("Beauty", "Skin Care", "Body", "Lotions")

_CATALOG = Catalog(
    [
        Item("y1", "Post-it Notes, 3 x 3 Inches, Canary Yellow, 12 Pads", "Post-it", NOTES),
        Item("y2", "Avery Sticky Notes, Yellow, 4 x 6 Inches", "Avery", NOTES),
        Item("p1", "Post-it Super Sticky Notes, 4 x 6 Inches, Pink and Blue", "Post-it", NOTES),
        Item("p2", "Avery Lay Flat Sticky Notes, 4 x 6 Inches, Bright Colors", "Avery", NOTES),
        Item("l1", "Paraben-Free Daily Lotion, 16 oz", "Acme", LOTIONS),
        Item("l2", "Classic Lotion with Parabens, 16 oz", "Acme", LOTIONS),
    ]
)


@pytest.fixture(scope="module")
def vocab() -> CatalogVocabulary:
    return CatalogVocabulary.from_catalog(_CATALOG)


def _rank(ids: list[str], avoided: tuple[str, ...]) -> list[str]:
    """Rank equally relevant candidates (ties keep the retrieval order)."""
    cands = [Candidate(i, 1.0 / 61, dense_rank=r) for r, i in enumerate(ids, 1)]
    return [r.item_id for r in FusedRanker(_CATALOG, RankerWeights()).rank(cands, avoided_words=avoided)]


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("looking for sticky notes, the big ones, not yellow", "yellow"),
        ("nothing plastic please", "plastic"),
        ("a body lotion without parabens", "parabens"),
        ("I don't want glitter", "glitter"),
        ("想要便利贴，不要黄色的", "yellow"),  # a curated Chinese word is avoided by its English word
    ],
)
def test_a_negated_word_is_avoided_and_leaves_the_query(vocab, text, word):
    p = parse(text, vocab)
    assert word in p.avoided_words and word not in p.query.split() and "黄色" not in p.query


def test_an_item_carrying_an_avoided_word_ranks_below_the_others():
    ids = ["y1", "y2", "p1", "p2"]  # the yellow ones retrieved first
    assert _rank(ids, ())[:2] == ["y1", "y2"]
    assert _rank(ids, ("yellow",))[-2:] == ["y1", "y2"]


def test_an_item_free_of_the_avoided_word_is_not_penalised():
    assert _rank(["l2", "l1"], ("parabens",)) == ["l1", "l2"]


def test_the_avoided_word_holds_for_the_topic_until_wished_again(vocab):
    state = DialogueState().apply(parse("sticky notes please, not yellow", vocab))
    assert state.avoided_words == ("yellow",)
    state = state.apply(parse("bigger ones", vocab))
    assert state.avoided_words == ("yellow",)
    assert DialogueState.from_json(state.to_json()).avoided_words == ("yellow",)
    state = state.apply(parse("actually yellow is fine, bright yellow", vocab))
    assert state.avoided_words == ()


def test_a_negated_kind_word_that_is_no_filter_is_avoided():
    """ "laser, not inkjet" (printers shown): "inkjet" is a part of the name of a node of labels,
    whose titles are not most of those that say it, so no filter; it was dropped and nothing
    else happened, and inkjet printers stayed on the page."""
    printers, labels = ("Office", "Printers"), ("Office", "Labels", "Printer Labels: Laser & Inkjet")
    rows = [Item(f"i{n}", f"Acme Inkjet Printer {n}", "Acme", printers) for n in range(6)]
    rows += [Item(f"z{n}", f"Zeta Laser Printer {n}", "Zeta", printers) for n in range(6)]
    rows += [Item(f"l{n}", f"Avery Labels {n}", "Avery", labels) for n in range(3)]
    p = parse("laser, not inkjet", CatalogVocabulary.from_catalog(Catalog(rows)))
    assert p.categories_in == () and p.categories_out == ()
    assert p.avoided_words == ("inkjet",)
    assert "inkjet" not in p.query.casefold()
