from __future__ import annotations

import pytest
from assistant_catalog import make_catalog

from assistant.grounding import CatalogMatcher, GroundingChecker, GroundingContext, describe


@pytest.fixture(scope="module")
def catalog():
    return make_catalog()


@pytest.fixture(scope="module")
def checker(catalog):
    return GroundingChecker(catalog, CatalogMatcher(catalog))


@pytest.fixture()
def ctx(catalog):
    cands = [catalog["B001"], catalog["B002"], catalog["B009"]]
    return GroundingContext(
        cands, query="a moisturizer under $40, not Olay", allowed_prices=[40], allowed_brands=["Olay"]
    )


def kinds(violations):
    return sorted({v.kind for v in violations})


def test_faithful_reply_passes(checker, ctx) -> None:
    a, b, _ = ctx.candidates
    text = f"Try the {a.title} (${a.price:.2f}) or the {b.brand} night cream at ${b.price:.2f}. All are under $40 and none are Olay."
    assert checker.check(text, ctx) == []


def test_paraphrased_candidate_title_passes(checker, ctx) -> None:
    a = ctx.candidates[0]
    short = " ".join(a.title.split()[:4])  # "Neutrogena Oil-Free Face Cream"
    assert checker.check(f"I'd pick the {short}.", ctx) == []


def test_catalog_product_that_was_not_a_candidate_is_caught(checker, ctx, catalog) -> None:
    other = catalog["B005"]
    assert other not in ctx.candidates
    v = checker.check(f"You could also try the {other.title}.", ctx)
    assert kinds(v) == ["non_candidate_product"]
    assert "B005" in v[0].detail


@pytest.mark.parametrize(
    "text",
    [
        "You will love the Radiance Glow Night Cream Supreme.",
        'I recommend "Hydra Boost Face Cream" for dry skin.',
    ],
)
def test_made_up_product_is_caught(checker, ctx, text) -> None:
    assert kinds(checker.check(text, ctx)) == ["unknown_product"]


def test_candidate_brand_glued_to_another_items_name_is_caught(checker, ctx) -> None:
    # Neutrogena is a candidate's brand; "Daily Hydrating Moisturizer" is Olay's (not shown).
    v = checker.check("Neutrogena Daily Hydrating Moisturizer is a good pick.", ctx)
    assert v and set(kinds(v)) <= {"unknown_product", "non_candidate_product"}


def test_wrong_price_is_caught(checker, ctx) -> None:
    a = ctx.candidates[0]
    v = checker.check(f"The {a.title} costs only $3.50.", ctx)
    assert kinds(v) == ["price_mismatch"]
    # Rounded prices and the shopper's own budget are fine.
    assert checker.check(f"The {a.title} is about ${round(a.price)}, under your $40 budget.", ctx) == []


def test_brand_of_no_candidate_is_caught(checker, ctx) -> None:
    assert kinds(checker.check("Maybelline makes a nice one too.", ctx)) == ["brand_mismatch"]
    # The brand the shopper excluded may be named ("not Olay").
    assert checker.check("None of these are from Olay.", ctx) == []


def test_ids_must_be_candidates(checker, ctx) -> None:
    assert checker.check("Have a look at [id=B001].", ctx) == []
    v = checker.check("Have a look at [id=B005] and [id=ZZZ9].", ctx)
    assert [x.text for x in v] == ["B005", "ZZZ9"]
    assert all(x.kind == "unknown_id" for x in v)


def test_generic_sentences_and_query_echo_are_not_flagged(checker, ctx) -> None:
    assert checker.check("Here are some great moisturizers for dry skin.", ctx) == []
    assert checker.check("Looking for a moisturizer under $40? Here you go!", ctx) == []


def test_chinese_reply(checker, ctx) -> None:
    a = ctx.candidates[0]
    assert checker.check(f"推荐 {a.title}，价格 {a.price:.2f} 元。", ctx) == []
    assert kinds(checker.check(f"推荐 {a.title}，价格 1.00 元。", ctx)) == ["price_mismatch"]


def test_describe_lists_problems(checker, ctx) -> None:
    v = checker.check("Maybelline makes a nice one.", ctx)
    assert "brand mismatch" in describe(v) and "Maybelline" in describe(v)
    assert describe([]) == "none"


def test_made_up_dated_title_is_caught_in_a_catalog_of_dated_titles() -> None:
    """Movie-style catalogs: "The Dark Knight (1994)" is a product claim even though its words
    are rare in the titles (the product-word gate alone let it through)."""
    from retrieval.data.schema import Catalog, Item

    titles = ["Heat (1995)", "Quiz Show (1994)", "Batman Forever (1995)", "Clerks (1994)", "Casino (1995)"]
    movies = Catalog([Item(item_id=str(i), title=t, categories=("Drama",)) for i, t in enumerate(titles)])
    checker = GroundingChecker(movies)
    ctx = GroundingContext([movies["1"], movies["4"]], query="a good drama")
    made_up = checker.check("You might enjoy The Dark Knight (1994), a gripping crime drama.", ctx)
    assert kinds(made_up) == ["unknown_product"]
    assert checker.check("You might enjoy Quiz Show (1994), a gripping drama.", ctx) == []
    assert checker.check("Casino (1995) came out in 1995.", ctx) == []
    shown_elsewhere = checker.check("Try Batman Forever (1995) instead.", ctx)
    assert kinds(shown_elsewhere) == ["non_candidate_product"]
    # Without dated titles the gate stays: a rare capitalised phrase is not judged a product.
    plain = Catalog([Item(item_id=str(i), title=t.split(" (")[0]) for i, t in enumerate(titles)])
    assert (
        GroundingChecker(plain).check("Enjoy The Dark Knight 1994 edition.", GroundingContext([plain["1"]]))
        == []
    )
