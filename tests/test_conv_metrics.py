"""Conversational metrics on scripted dialogues, against values computed by hand."""

from __future__ import annotations

import pytest

from assistant.grounding import CatalogMatcher, GroundingChecker
from bench.conv_metrics import (
    Dialogue,
    TurnRecord,
    average_turns,
    clarify_rate,
    constraint_satisfaction,
    count_unsupported_claims,
    error_rates,
    first_hit,
    hit_by_turn,
    hit_rate,
    latency,
    summarize,
    text_rates,
    tokens_per_turn,
)
from retrieval.data.schema import Catalog, Item
from retrieval.filters import Constraints

NAILS = ("Beauty", "Nails")
LIPS = ("Beauty", "Lips")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(
        [
            Item("A", "Acme Glossy Nail Polish", brand="Acme", categories=NAILS, price=10.0),
            Item("B", "Zeta Matte Nail Polish", brand="Zeta", categories=NAILS, price=30.0),
            Item("C", "Acme Velvet Lipstick", brand="Acme", categories=LIPS, price=5.0),
            Item("D", "Acme Shimmer Nail Polish", brand="Acme", categories=NAILS, price=12.0),
        ]
    )


def T(turn, shown, cons=Constraints(), intent="recommend", text="ok", lat=0.0, tokens=None, claims=0):  # noqa: B008
    return TurnRecord(
        turn=turn,
        user_text="...",
        shown=shown,
        intent=intent,
        reply_text=text,
        constraints=cons,
        latency_s=lat,
        tokens=tokens,
        unsupported_claims=claims,
        ungrounded=claims,
    )


@pytest.fixture
def dialogues() -> list[Dialogue]:
    nails = Constraints(categories=(NAILS,))
    d1 = Dialogue("full", "u1", "D", ["C"])
    d1.turns = [
        T(1, ["A", "B", "C"], nails, text="The Zeta one is $99.", lat=0.1, tokens=10, claims=1),
        T(2, ["A", "D"], nails.merged(price_max=15.0), lat=0.2, tokens=20),
    ]
    d2 = Dialogue("full", "u2", "B", ["A"])
    d2.turns = [
        T(1, ["A", "A", "ZZZ"], lat=0.3, tokens=30),
        T(2, ["C"], intent="clarify", text="", lat=0.4),
        T(3, ["D"], lat=0.5, tokens=40),
    ]
    d3 = Dialogue("full", "u3", "A", [])
    d3.turns = [T(1, ["A"], Constraints(brands_in=("Acme",)), lat=0.6, tokens=50)]
    return [d1, d2, d3]


def test_hits_and_average_turns(dialogues: list[Dialogue]) -> None:
    assert [first_hit(d) for d in dialogues] == [2, None, 1]
    assert hit_rate(dialogues, 5, 3) == pytest.approx(2 / 3)
    # AT@5: (2 + (3 + 1) + 1) / 3, the failure counted as max_turns + 1
    assert average_turns(dialogues, 5, 3) == pytest.approx(7 / 3)
    assert hit_by_turn(dialogues, 5, 3) == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    # k matters: D is second in turn 2 of dialogue 1
    assert hit_rate(dialogues, 1, 3) == pytest.approx(1 / 3)
    assert average_turns(dialogues, 1, 3) == pytest.approx((4 + 4 + 1) / 3)
    # max_turns matters: a hit after the limit does not count
    assert hit_rate(dialogues, 5, 1) == pytest.approx(1 / 3)
    assert average_turns(dialogues, 5, 1) == pytest.approx((2 + 2 + 1) / 3)
    with pytest.raises(ValueError):
        hit_rate([], 5, 3)


def test_constraint_satisfaction_against_stated_constraints(dialogues, catalog) -> None:
    cs = constraint_satisfaction(dialogues, catalog)
    # checked items: 3 + 2 + 2 (ZZZ is not in the catalog) + 1 + 1 + 1 = 10; only C (lipstick) fails "nails"
    assert cs["items"] == 10
    assert cs["violations"] == 1
    assert cs["item_rate"] == pytest.approx(0.9)
    assert cs["turn_rate"] == pytest.approx(5 / 6)


def test_error_rates(dialogues, catalog) -> None:
    er = error_rates(dialogues, catalog)
    # 11 shown items: ZZZ out of catalogue, the second A a duplicate, C (u1) and A, A (u2) already bought
    assert er["out_of_catalogue_rate"] == pytest.approx(1 / 11)
    assert er["duplicate_rate"] == pytest.approx(1 / 11)
    assert er["already_bought_rate"] == pytest.approx(3 / 11)


def test_text_behaviour_and_cost(dialogues) -> None:
    assert text_rates(dialogues)["unsupported_claim_rate"] == pytest.approx(
        1 / 5
    )  # the empty reply is skipped
    assert clarify_rate(dialogues) == pytest.approx(1 / 6)
    lat = latency(dialogues)
    assert lat["latency_p50_s"] == pytest.approx(0.35)
    assert lat["latency_p95_s"] == pytest.approx(0.575)
    assert tokens_per_turn(dialogues) == pytest.approx(30.0)


def test_summarize_has_report_keys(dialogues, catalog) -> None:
    s = summarize(dialogues, catalog, k=5, max_turns=3)
    assert s["hit@5"] == pytest.approx(2 / 3) and s["at@5"] == pytest.approx(7 / 3)
    assert s["hit@5_by_turn"][-1] == s["hit@5"]
    assert s["constraint_satisfaction"] == pytest.approx(0.9)
    assert s["turns"] == 6 and s["dialogues"] == 3 and s["turns_per_dialogue"] == pytest.approx(2.0)
    d = dialogues[0].to_dict()
    assert d["first_hit"] == 2 and d["turns"][1]["constraints"] == {
        "price_max": 15.0,
        "categories": [list(NAILS)],
    }


def test_unsupported_claims_use_the_grounding_checker(catalog) -> None:
    checker = GroundingChecker(catalog, CatalogMatcher(catalog))
    shown = [catalog["A"], catalog["D"]]
    assert count_unsupported_claims(checker, "The glossy one costs $10.", shown, "nails", Constraints()) == (
        0,
        0,
    )
    claims, total = count_unsupported_claims(
        checker, "The glossy one costs $99.", shown, "nails", Constraints()
    )
    assert claims == 1 and total >= 1
    claims, _ = count_unsupported_claims(checker, "Zeta makes great ones too.", shown, "nails", Constraints())
    assert claims == 1  # a brand of no shown item
    # The shopper's own budget may be repeated.
    said = Constraints(price_max=15.0)
    assert count_unsupported_claims(checker, "All of these are under $15.", shown, "under $15", said)[0] == 0
    assert count_unsupported_claims(checker, "", shown, "x", said) == (0, 0)


def test_quoted_titles_history_and_category_names_are_not_claims() -> None:
    """Template replies quote shown titles and the shopper's own past items; a title may name
    another brand and a category may share a brand's name. None of that is a claim; a wrong
    price in the reply's own words still is."""
    cat = Catalog(
        [
            Item("A", "Acme Nail Polish for Zeta lamps", brand="Acme", categories=NAILS, price=10.0),
            Item("B", "Zeta Matte Nail Polish", brand="Zeta", categories=NAILS, price=30.0),
            Item("C", "Nails Velvet Lipstick", brand="Nails", categories=LIPS, price=5.0),
            Item("H", "Victoria's Secret Body Mist", brand="Victoria's Secret", categories=LIPS, price=9.0),
            Item("S", "Secret Deodorant", brand="Secret", categories=LIPS, price=4.0),
        ]
    )
    checker = GroundingChecker(cat, CatalogMatcher(cat))
    shown, past = [cat["A"]], [cat["H"]]
    text = "Here is Acme Nail Polish for Zeta lamps (in Nails), like Victoria's Secret Body Mist you bought."
    assert count_unsupported_claims(checker, text, shown, "nails", Constraints(), history_items=past)[0] == 0
    cut = "Try Acme Nail Polish for Zeta lamps, like Victoria's Secret Body… you bought."
    assert count_unsupported_claims(checker, cut, shown, "nails", Constraints(), history_items=past)[0] == 0
    said = Constraints(brands_out=("Victoria's Secret",))
    assert count_unsupported_claims(checker, "Nothing by Victoria's Secret here.", shown, "x", said)[0] == 0
    assert count_unsupported_claims(checker, "It costs $99.", shown, "nails", Constraints())[0] == 1
    assert count_unsupported_claims(checker, "Zeta makes it.", shown, "nails", Constraints())[0] == 1
