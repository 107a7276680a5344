"""Multi-turn constraint revision (EN and ZH), references, topic changes and JSON persistence."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.dialogue_state import CHEAPER_FACTOR, DialogueState
from assistant.understanding.parser import parse
from assistant.understanding.utterance import ParsedUtterance
from assistant.understanding.vocabulary import CatalogVocabulary
from retrieval.data.schema import Catalog, Item
from retrieval.filters import Constraints

LIPSTICK = ("Beauty", "Makeup", "Lips", "Lipstick")
NAIL_POLISH = ("Beauty", "Makeup", "Nails", "Nail Polish")
FACE_MOIST = ("Beauty", "Skin Care", "Face", "Creams & Moisturizers")
BODY_MOIST = ("Beauty", "Skin Care", "Body", "Moisturizers")

ROWS = [
    ("n1", "OPI Nail Lacquer", "OPI", NAIL_POLISH, 9.5),
    ("n2", "OPI Infinite Shine", "OPI", NAIL_POLISH, 12.0),
    ("n3", "Essie Polish", "Essie", NAIL_POLISH, 8.0),
    ("n4", "China Glaze Polish", "China Glaze", NAIL_POLISH, 6.0),
    ("n5", "Essie Gel Couture", "Essie", NAIL_POLISH, 11.0),
    ("m1", "Olay Regenerist", "Olay", FACE_MOIST, 24.0),
    ("m2", "Nivea Creme", "Nivea", BODY_MOIST, 7.0),
    ("m3", "Nivea Men Lotion", "Nivea Men", FACE_MOIST, 9.0),
    ("l1", "SuperStay", "Maybelline", LIPSTICK, 7.5),
    ("l2", "Colour Riche", "L'Oreal Paris", LIPSTICK, 9.0),
    ("l3", "Super Lustrous", "Revlon", LIPSTICK, 8.0),
    ("l4", "Rouge", "L'Oreal Paris", LIPSTICK, 150.0),
]
CATALOG = Catalog(Item(i, t, brand=b, categories=c, price=p) for i, t, b, c, p in ROWS)
PRICE = {i: p for i, *_, p in ROWS}


@pytest.fixture(scope="module")
def vocab() -> CatalogVocabulary:
    return CatalogVocabulary.from_catalog(CATALOG)


def say(
    state: DialogueState, text: str, vocab: CatalogVocabulary, currency: str = "USD", **kw
) -> DialogueState:
    return state.apply(parse(text, vocab, currency=currency), **kw)


def show(state: DialogueState, ids: list[str]) -> DialogueState:
    return state.record_shown(ids, [PRICE[i] for i in ids])


def matching(state: DialogueState) -> set[str]:
    return {it.item_id for it in CATALOG if state.constraints.matches(it)}


def test_english_multi_turn_revision(vocab):
    s = say(DialogueState(), "nail polish under $20", vocab)
    assert s.constraints.categories == (NAIL_POLISH,) and s.constraints.price_max == 20
    assert matching(s) == {"n1", "n2", "n3", "n4", "n5"}
    s = show(s, ["n1", "n2", "n3"])

    s = say(s, "not OPI", vocab)
    assert s.constraints.brands_out == ("OPI",) and s.constraints.price_max == 20  # accumulates
    assert matching(s) == {"n3", "n4", "n5"}

    s = show(s, ["n3", "n5", "n4"])
    s = say(s, "cheaper", vocab)
    # "cheaper" after a page: cheaper than everything on it (the cheapest of 8, 11, 6), not a
    # share of the median that would also drop items the shopper still accepts
    assert s.constraints.price_max == pytest.approx(6.0)
    assert s.price_origin == "relative" and any("cheaper than everything" in n for n in s.info)
    assert matching(s) == {"n4"}

    s = say(s, "under 30", vocab)  # a new bound replaces the old one
    assert s.constraints.price_max == 30 and s.price_origin == "explicit"

    s = show(s, ["n3", "n5"])
    s = say(s, "something else", vocab)
    assert set(s.constraints.exclude_items) == {"n3", "n5"}
    assert matching(s) == {"n4"}

    s = say(s, "only Essie", vocab)  # naming a brand: brands_in, exclusions of it lifted
    assert s.constraints.brands_in == ("Essie",)
    s = say(s, "or OPI", vocab)
    assert set(s.constraints.brands_in) == {"Essie", "OPI"} and "OPI" not in s.constraints.brands_out
    s = say(s, "at least 10", vocab)
    assert (s.constraints.price_min, s.constraints.price_max) == (10, 30)
    s = say(s, "under 5", vocab)  # a ceiling below the floor: newest statement wins
    assert (s.constraints.price_min, s.constraints.price_max) == (None, 5)


def test_chinese_multi_turn_revision(vocab):
    s = say(DialogueState(), "200元以内的口红", vocab, currency="CNY")
    assert s.language == "zh" and s.currency_seen == "CNY"
    assert s.constraints.categories == (LIPSTICK,) and s.constraints.price_max == 200
    s = show(s, ["l1", "l2", "l3"])
    s = say(s, "不要欧莱雅", vocab, currency="CNY")
    assert s.constraints.brands_out == ("L'Oreal Paris",)
    assert matching(s) == {"l1", "l3"}
    s = say(s, "便宜一点", vocab, currency="CNY")
    assert s.constraints.price_max == pytest.approx(min(p for p in s.last_shown_prices if p is not None))
    assert "都便宜" in s.info[0]
    s = say(s, "换一个", vocab, currency="CNY")
    assert set(s.constraints.exclude_items) == {"l1", "l2", "l3"}
    s = say(s, "第二个", vocab, currency="CNY")
    assert s.referenced == ("l2",) and s.clarification is None
    s = say(s, "贵一点的", vocab, currency="CNY")
    top = max(p for p in s.last_shown_prices if p is not None)  # pricier than everything shown
    assert s.constraints.price_min == pytest.approx(top) and s.constraints.price_max is None


def test_currency_mismatch_is_surfaced_not_converted(vocab):
    s = say(DialogueState(), "200元以内的口红", vocab, currency="USD")
    assert s.constraints.price_max == 200 and s.currency_seen == "CNY"
    assert any("USD" in n for n in s.info)


def test_topic_change_keeps_shopper_preferences(vocab):
    s = say(DialogueState(), "OPI nail polish under $20, not Essie", vocab)
    s = show(s, ["n1", "n2"])
    s = say(s, "cheaper", vocab)
    assert s.price_origin == "relative"
    s = say(s, "under $25", vocab)
    s = say(s, "moisturizer", vocab)
    c = s.constraints
    assert s.topic_changed
    assert set(c.categories) == {BODY_MOIST, FACE_MOIST}
    assert c.brands_in == ()  # OPI makes no moisturizer
    assert c.brands_out == ("Essie",) and c.price_max == 25  # dislikes and budget persist
    assert s.query == "moisturizer"
    # A refinement inside the topic is not a topic change.
    s2 = say(s, "face moisturizer", vocab)
    assert not s2.topic_changed and s2.constraints.categories == (FACE_MOIST,)
    # Relative bounds belong to the old category's prices and are dropped on a topic change.
    r = show(say(DialogueState(), "nail polish", vocab), ["n1", "n2"])
    r = say(r, "cheaper", vocab)
    assert r.constraints.price_max is not None
    assert say(r, "lipstick", vocab).constraints.price_max is None


def test_weak_category_narrows_current_topic(vocab):
    s = say(DialogueState(), "moisturizer", vocab)
    s = say(s, "for the face", vocab)
    assert s.constraints.categories == (FACE_MOIST,)
    assert say(DialogueState(), "for the face", vocab).constraints.categories == ()


def test_category_negation_and_only(vocab):
    s = say(DialogueState(), "lipstick or nail polish", vocab)
    assert set(s.constraints.categories) == {LIPSTICK, NAIL_POLISH}
    s = say(s, "no nail polish", vocab)
    assert s.constraints.categories == (LIPSTICK,) and s.constraints.categories_out == (NAIL_POLISH,)
    s = say(s, "only nail polish", vocab)
    assert s.constraints.categories == (NAIL_POLISH,) and s.constraints.categories_out == ()


def test_references_resolve_against_last_shown(vocab):
    s = show(say(DialogueState(), "lipstick", vocab), ["l1", "l2", "l3"])
    assert say(s, "the second one", vocab).referenced == ("l2",)
    assert say(s, "#3", vocab).referenced == ("l3",)
    assert say(s, "the first two", vocab).referenced == ("l1", "l2")
    assert say(s, "the last one", vocab).referenced == ("l3",)
    assert say(s, "the cheapest one", vocab).referenced == ("l1",)
    assert say(s, "最贵的那个", vocab).referenced == ("l2",)
    # "that one" needs a focus (or a single shown item).
    amb = say(s, "that one", vocab)
    assert amb.referenced == () and amb.clarification == "Which one do you mean (1-3)?"
    focused = say(say(s, "the second one", vocab), "is that one any good?", vocab)
    assert focused.referenced == ("l2",)


def test_out_of_range_and_unshown_references_ask(vocab):
    s = show(say(DialogueState(), "lipstick", vocab), ["l1", "l2", "l3"])
    bad = say(s, "the fifth one", vocab)
    assert bad.referenced == ()
    assert bad.clarification == "I only showed 3 items. Which one do you mean (1-3)?"
    assert "3" in say(s, "第五个", vocab).clarification and say(s, "第五个", vocab).language == "zh"
    nothing = say(DialogueState(), "the second one", vocab)
    assert nothing.clarification is not None and nothing.referenced == ()
    # The bad reference changed nothing else.
    assert bad.constraints == s.constraints


def test_feedback_likes_and_dislikes(vocab):
    s = show(say(DialogueState(), "lipstick", vocab), ["l1", "l2", "l3"])
    s = say(s, "I like the first one", vocab)
    assert s.liked == ("l1",)
    s = say(s, "not the second one", vocab)
    assert s.disliked == ("l2",) and "l2" in s.constraints.exclude_items
    s = s.with_feedback("l1", liked=False)
    assert s.liked == () and s.disliked == ("l2", "l1")


def test_absurd_price_asks_and_keeps_constraints(vocab):
    s = say(DialogueState(), "lipstick under $20", vocab)
    s2 = say(s, "under -5", vocab)
    assert s2.constraints == s.constraints
    assert s2.clarification is not None and "negative" in s2.clarification
    s3 = say(s, "under 1e309 not Revlon", vocab)
    assert s3.constraints.price_max == 20 and s3.constraints.brands_out == ("Revlon",)
    assert s3.clarification is not None


def test_relative_price_without_shown_prices(vocab):
    s = say(DialogueState(), "cheap lipstick", vocab)
    assert s.constraints.price_max is None and s.price_preference == "low"
    # a standing wish stays a wish even with the category's prices at hand; "cheaper" becomes a bound
    s = say(DialogueState(), "cheap lipstick", vocab, reference_prices=[7.5, 9.0, 8.0, 150.0])
    assert s.constraints.price_max is None and s.price_preference == "low"
    s = say(DialogueState(), "a cheaper lipstick", vocab, reference_prices=[7.5, 9.0, 8.0, 150.0])
    assert s.constraints.price_max == pytest.approx(CHEAPER_FACTOR * 8.5)


def test_apply_is_pure_and_record_shown_validates(vocab):
    s = say(DialogueState(), "lipstick under $20", vocab)
    before = s.to_json()
    say(s, "not Revlon, cheaper, the second one", vocab)
    assert s.to_json() == before
    with pytest.raises(ValueError, match="2 prices for 3"):
        s.record_shown(["l1", "l2", "l3"], [1.0, 2.0])
    assert s.record_shown(["l1"], [float("nan")]).last_shown_prices == (None,)


def test_query_accumulates_within_topic(vocab):
    s = say(DialogueState(), "red lipstick", vocab)
    s = say(s, "matte finish", vocab)
    assert s.query == "red lipstick matte finish"
    s = say(s, "cheaper", vocab)
    assert s.query == "red lipstick matte finish"
    assert say(s, "nail polish", vocab).query == "nail polish"


def test_release_years_are_read_kept_across_topics_and_replaced(vocab):
    """The conversation bench's MovieLens shopper says "Released in the 1990s": a decade or a
    year becomes ``years``; it is not a price ("1990s" is glued to letters, "released in 1995")."""
    s = say(DialogueState(), "a lipstick from the 1990s", vocab)
    assert s.years == (1990, 1999) and not s.constraints.has_price
    s = say(s, "nail polish", vocab)  # topic change: the decade describes the shopper, kept
    assert s.years == (1990, 1999)
    s = say(s, "released in 1995", vocab)
    assert s.years == (1995, 1995) and not s.constraints.has_price
    for text, years in [("the '80s", (1980, 1989)), ("the 00s", (2000, 2009)), ("90年代的", (1990, 1999)),
                        ("It came out in the 1970s.", (1970, 1979))]:  # fmt: skip
        assert parse(text, vocab).years == years, text
    assert parse("from 2000 to 3000 dollars", vocab).years is None
    assert DialogueState.from_json(s.to_json()) == s
    with pytest.raises(ValueError):
        DialogueState.from_json('{"years": [1999, 1990]}')


def test_json_round_trip_after_long_session(vocab):
    s = DialogueState()
    for text in ["200元以内的口红", "不要欧莱雅", "the second one", "I like the first one", "something else",
                 "OPI or Essie nail polish", "cheaper", "under -5"]:  # fmt: skip
        s = show(say(s, text, vocab), ["l1", "l2", "l3"])
    s = s.mark_clarified()
    restored = DialogueState.from_json(s.to_json())
    assert restored == s
    assert json.loads(s.to_json())["constraints"]["categories"] == [list(p) for p in s.constraints.categories]
    assert DialogueState.from_json(DialogueState().to_json()) == DialogueState()


@pytest.mark.parametrize(
    "bad",
    ["not json", "[]", '{"version": 99}', '{"constraints": {"price_max": -1}}', '{"language": "fr"}',
     '{"turns": [{"intent": "x"}]}', '{"constraints": {"colour": "red"}}'],
)  # fmt: skip
def test_from_json_rejects_bad_input_clearly(bad):
    with pytest.raises(ValueError):
        DialogueState.from_json(bad)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.sampled_from(["lipstick", "nail polish under $20", "not OPI", "cheaper", "more expensive", "换一个",
                         "the second one", "第五个", "only Essie", "also Revlon", "200元以内", "under 0", "moisturizer",
                         "I like that one", "between 5 and 10", "at least 100", "for the face", "no lipstick"]),
        min_size=1, max_size=12,
    )
)  # fmt: skip
def test_any_turn_sequence_keeps_valid_constraints_and_round_trips(vocab, turns):
    s = DialogueState()
    for i, text in enumerate(turns):
        s = say(s, text, vocab)
        c = s.constraints
        assert isinstance(c, Constraints)
        if c.price_min is not None and c.price_max is not None:
            assert c.price_min <= c.price_max
        assert not ({b.casefold() for b in c.brands_in} & {b.casefold() for b in c.brands_out})
        s = show(s, [ROWS[(i + k) % len(ROWS)][0] for k in range(3)])
    assert DialogueState.from_json(s.to_json()) == s


def test_a_kind_among_the_wanted_ones_narrows_and_keeps_the_others_as_leanings() -> None:
    romance, comedy, thriller = ("Movies", "Romance"), ("Movies", "Comedy"), ("Movies", "Thriller")
    s = DialogueState().apply(ParsedUtterance("a date night movie", soft_categories=(romance, comedy)))
    s = s.apply(ParsedUtterance("something with a bit of comedy", categories_in=(comedy,)))
    assert s.constraints.categories == (comedy,) and romance in s.soft_categories
    s = s.apply(ParsedUtterance("a thriller instead", categories_in=(thriller,)))
    assert s.constraints.categories == (thriller,) and not s.soft_categories
