"""Issue #19: words are evidence; hard filters only from confident evidence.

A brand filters only with brand context or an unambiguous name, a category only from a phrase the
catalog's titles tie to it, a typo repair never; everything else is a soft preference kept in the
query. Number words in both languages reach the price grammar; clarifying questions ask only
about facets the catalog has. The real-data tests run on the shared Amazon Beauty set when present.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.dialogue_state import DialogueState
from assistant.understanding.categories import names_current_type
from assistant.understanding.facets import CatalogFacets
from assistant.understanding.intents import classify_intent, needs_clarification
from assistant.understanding.parser import parse
from assistant.understanding.vocabulary import CatalogVocabulary
from retrieval.data.registry import load_dataset
from retrieval.data.schema import Catalog, Item

REAL = Path("/work/shared/datasets/amazon-beauty-2014/items.jsonl.gz")
NAIL_POLISH = ("Beauty", "Makeup", "Nails", "Nail Polish")
CURLERS = ("Beauty", "Tools & Accessories", "Makeup Brushes & Tools", "Eyelash Tools", "Curlers")
SHOWER_CAPS = ("Beauty", "Bath & Body", "Bathing Accessories", "Shower Caps")


def turn(state: DialogueState, text: str, vocab: CatalogVocabulary) -> tuple[DialogueState, object]:
    parsed = parse(text, vocab)
    return state.apply(parsed, intent=classify_intent(text, parsed).intent), parsed


# --- real Amazon Beauty ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def beauty() -> CatalogVocabulary:
    if not REAL.exists():
        pytest.skip("shared Amazon Beauty dataset not present")
    return CatalogVocabulary.from_catalog(load_dataset(REAL.parent).catalog)  # the product's own loader


def test_brand_then_product_type_is_that_brand_and_that_type(beauty):
    """ "OPI nail polish": the brand OPI (not its rare line "OPI NAIL COLOR" alone) and Nail Polish
    (not Exfoliators > Polishes, which owns 1 % of the titles that say "polish")."""
    p = parse("Show me some OPI nail polish", beauty)
    assert "OPI" in p.brands_in
    assert p.categories_in == (NAIL_POLISH,)


@pytest.mark.parametrize(
    ("text", "brand", "leaf"),
    [
        ("Show me some Revlon lipstick", "Revlon", "Lipstick"),
        ("I need a Neutrogena sunscreen", "Neutrogena", None),
        ("any Maybelline mascara?", "Maybelline", "Mascara"),
        ("essie nail polish please", "Essie", "Nail Polish"),
    ],
)
def test_other_brands_before_a_product_type(beauty, text, brand, leaf):
    p = parse(text, beauty)
    assert brand in p.brands_in, text
    if leaf is not None:
        assert p.categories_in and all(path[-1] == leaf for path in p.categories_in), text


@pytest.mark.parametrize(
    ("first", "first_leaf", "refinement", "soft"),
    [
        ("I'm looking for an eyelash curler", CURLERS, "not these; I want something disposable", "disposable"),
        ("I'm looking for shower caps", SHOWER_CAPS, "not these; something multi cap", "cap"),
        ("I'm looking for an eyelash curler", CURLERS, "not these; something heated", "heated"),
        ("I'm looking for shower caps", SHOWER_CAPS, "something with a floral print", "floral"),
    ],
)
def test_a_refinement_keeps_the_product_type(beauty, first, first_leaf, refinement, soft):
    """Ordinary words in a refinement are preferences, not a brand ("Disposables") or another
    category ("Caps, Foils & Wraps", "Polishes")."""
    s, _ = turn(DialogueState(), first, beauty)
    assert s.constraints.categories == (first_leaf,)
    s2, p2 = turn(s, refinement, beauty)
    assert p2.brands_in == () and p2.categories_in == ()
    assert s2.constraints.categories == (first_leaf,) and not s2.constraints.brands_in
    assert soft in p2.preferences and soft in p2.query


@pytest.mark.parametrize("word", ["washes", "cap", "foils", "disposable", "rhinestones", "multi"])
def test_words_many_categories_use_are_never_filters(beauty, word):
    p = parse(f"something {word}", beauty)
    assert p.brands_in == () and p.categories_in == (), word
    assert word in p.preferences and word in p.query


def test_typo_repair_is_a_preference_not_a_filter(beauty):
    for typo, brand in (("maybeline", "Maybelline"), ("neutrogina", "Neutrogena"), ("revlonn", "Revlon")):
        p = parse(f"{typo} products", beauty)
        assert p.brands_in == (), typo
        assert brand in p.preferences and brand in p.query, typo


def test_a_brand_that_is_a_plain_word_needs_brand_context(beauty):
    assert parse("a soap for my dove-grey bathroom", beauty).brands_in == ()
    assert parse("body wash by Dove", beauty).brands_in[:1] == ("Dove",)
    assert parse("Dove's body wash", beauty).brands_in[:1] == ("Dove",)
    assert parse("Dove soap", beauty).brands_in[:1] == ("Dove",)  # typed as a name before a type
    assert parse("not Dove", beauty).brands_out[:1] == ("Dove",)  # an exclusion stays a filter


# --- the same principle on a small catalog built for it ------------------------------------------
HAIR_CAPS = ("Home", "Hair Tools", "Hair Caps")
BOTTLES = ("Home", "Kitchen", "Bottles")
CLEANSERS = ("Home", "Bath", "Cleansers")


def _home_catalog() -> Catalog:
    rows = []
    for i in range(12):  # "cap" is mostly a bottle word here, "gentle" a plain title word
        rows.append(Item(f"b{i}", f"Steel Water Bottle with Cap {i}", brand="Aqua", categories=BOTTLES, price=9.0))
        rows.append(Item(f"c{i}", f"Gentle Foaming Cleanser {i}", brand="Purex", categories=CLEANSERS, price=5.0))
    rows.append(Item("h1", "Satin Sleep Cap", brand="Nightly", categories=HAIR_CAPS, price=7.0))
    rows.append(Item("h2", "Bamboo Hair Cap", brand="Nightly", categories=HAIR_CAPS, price=8.0))
    rows.append(Item("g1", "Soft Hand Soap", brand="Gentle", categories=CLEANSERS, price=4.0))
    return Catalog(rows)


def test_title_evidence_decides_category_filters():
    v = CatalogVocabulary.from_catalog(_home_catalog())
    assert parse("a cap", v).categories_in == ()  # titles say "cap" means bottles here
    assert "cap" in parse("a cap", v).preferences
    assert parse("hair caps", v).categories_in == (HAIR_CAPS,)  # the node's full name still filters
    assert parse("bottles", v).categories_in == (BOTTLES,)


def test_brand_named_like_a_plain_word_needs_context():
    v = CatalogVocabulary.from_catalog(_home_catalog())
    assert parse("something Gentle please", v).brands_in == ()
    assert parse("cleansers from Gentle", v).brands_in == ("Gentle",)
    assert parse("Gentle brand cleansers", v).brands_in == ("Gentle",)
    assert parse("Purex cleansers", v).brands_in == ("Purex",)  # not a plain word: no context needed


def test_a_brand_word_the_titles_use_in_another_form_is_a_plain_word():
    """ "gray roots" filtered to the one-item brand Roots Of Nature: titles say "root" far more
    often than that brand has items, so "roots" alone is no brand."""
    rows = [Item(f"r{i}", f"Gray Root Touch Up {i}", brand="Touchup", categories=CLEANSERS) for i in range(8)]
    rows.append(Item("n1", "Roots Of Nature Coil Cream", brand="Roots Of Nature", categories=CLEANSERS))
    brush = [Item(f"t{i}", f"Tangle Teezer {i}", brand="Tangle Teezer", categories=HAIR_CAPS) for i in range(5)]
    rows += brush
    rows.append(Item("f1", "Girl Designs Comb", brand="Funny Girl Designs", categories=HAIR_CAPS))
    v = CatalogVocabulary.from_catalog(Catalog(rows))
    assert parse("something for the gray roots between salon visits", v).brands_in == ()
    assert parse("a tangle brush", v).brands_in == ("Tangle Teezer",)  # a word only the brand uses
    # The first word of a one-item brand, typed as a plain word, is no brand; with its capital it is.
    assert parse("a funny gift for my sister", v).brands_in == ()
    assert parse("something from Funny please", v).brands_in == ("Funny Girl Designs",)


@pytest.mark.parametrize(
    "text",
    [
        "something simple for everyday",
        "the nude lipstick everyone on tiktok uses",
        "i enjoy a good face mask",
        "a travel case with a focus on organization",
    ],
)
def test_an_everyday_english_word_typed_plainly_is_no_brand(text):
    """Beauty has brands called Simple, Everyone, Enjoy and Focus; "something simple" filtered to
    one of them. A word of everyday English needs its capital or brand context, as "Dove" does."""
    rows = [
        Item(f"{b}{i}", f"{b} Product {i}", brand=b, categories=CLEANSERS)
        for b in ("Simple", "Everyone", "Enjoy", "Focus", "Neutrogena")
        for i in range(6)
    ]
    v = CatalogVocabulary.from_catalog(Catalog(rows))
    assert parse(text, v).brands_in == ()
    assert parse("cleansers from Simple", v).brands_in == ("Simple",)
    assert parse("neutrogena cleansers", v).brands_in == ("Neutrogena",)  # a name, not a word


def test_everyday_words_in_a_row_that_make_a_brand_name_are_that_brand():
    """WebShop requests: "a cologne by perry ellis", "i want seventh generation, body wash" name
    their brands in lower case; one such word alone ("my living room") names none."""
    rows = [
        Item(f"{b}{i}", f"{b} Item {i}", brand=b, categories=CLEANSERS)
        for b in ("Perry Ellis", "Seventh Generation", "Living Proof")
        for i in range(6)
    ]
    v = CatalogVocabulary.from_catalog(Catalog(rows))
    assert parse("a long lasting cologne by perry ellis", v).brands_in == ("Perry Ellis",)
    assert parse("i want seventh generation, body wash for sensitive skin", v).brands_in == ("Seventh Generation",)
    assert parse("a throw pillow cover for my living room", v).brands_in == ()


def test_a_node_of_one_item_is_no_filter_for_a_plain_word():
    """Office's "Cables & Accessories" holds one untitled item: "my desk is a mess of cables" was
    filtered to it. Two items are still a kind ("hair caps" above)."""
    rows = [Item(f"c{i}", f"Wire Clip {i}", brand="Clipco", categories=("Home", "Clips")) for i in range(5)]
    rows.append(Item("x", "Untitled", categories=("Home", "Cables & Accessories")))
    v = CatalogVocabulary.from_catalog(Catalog(rows))
    p = parse("my desk is a mess of cables, anything to tidy it up?", v)
    assert p.categories_in == ()
    assert "cables" in p.query
    assert parse("clips", v).categories_in == (("Home", "Clips"),)


# --- number words before the price grammar ------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "high"),
    [
        ("a lipstick under two hundred fifty dollars", 250.0),
        ("under one thousand two hundred dollars", 1200.0),
        ("less than a hundred bucks", 100.0),
        ("no more than three hundred and fifty euros", 350.0),
        ("under twenty-five dollars", 25.0),
        ("below one thousand five hundred", 1500.0),
        ("口红不超过二百五十元", 250.0),
        ("一千二以内", 1200.0),
        ("两百块以下的面霜", 200.0),
        ("预算一万二", 12000.0),
    ],
)
def test_number_words_are_ceilings(text, high):
    v = CatalogVocabulary.from_catalog(_home_catalog())
    p = parse(text, v)
    assert p.price is not None and p.price.op == "max" and p.price.high == high, text


@pytest.mark.parametrize(("text", "high"), [("a $40 serum", 40.0), ("三十五块的口红", 35.0), ("a 20 euro gift", 20.0)])
def test_a_bare_amount_with_a_unit_is_a_ceiling(text, high):
    p = parse(text, CatalogVocabulary.from_catalog(_home_catalog()))
    assert p.price is not None and (p.price.op, p.price.high) == ("max", high), text


@pytest.mark.parametrize("text", ["about two hundred fifty dollars", "around $40", "三十五块左右"])
def test_about_is_still_a_band(text):
    p = parse(text, CatalogVocabulary.from_catalog(_home_catalog()))
    assert p.price is not None and p.price.op == "around", text


# --- clarifying questions fit the catalog -------------------------------------------------------
def _movies() -> Catalog:
    try:
        from retrieval.data.movielens import load_movielens_100k
    except ImportError as e:  # pragma: no cover - the demo package is a dependency
        pytest.skip(str(e))
    try:
        return load_movielens_100k().catalog
    except ImportError as e:
        pytest.skip(f"movielens-100k demo data unavailable: {e}")


@pytest.mark.parametrize("text", ["a movie", "recommend something", "a comedy", "something from the 90s"])
def test_movie_questions_never_ask_about_brand_or_colour(text):
    cat = _movies()
    v = CatalogVocabulary.from_catalog(cat)
    assert not v.facets.has_brands and not v.facets.has_prices and v.facets.has_years
    s, p = turn(DialogueState(), text, v)
    ask = needs_clarification(s, p, user_known=False, facets=v.facets)
    assert not {"brand", "colour", "price"} & set(ask), ask
    movies = list(cat)[:40]
    after_items = v.facets.question(v.facets.splitting(movies, ask), "en", movies)
    for q in (after_items, v.facets.opening_question("en", ask_budget=True)):
        if q is not None:
            assert not any(w in q.lower() for w in ("brand", "colour", "color", "budget")), q


def test_facets_are_read_from_the_items():
    books = Catalog(
        Item(f"k{i}", f"Book {i}", categories=("Books", g), attributes={"release_year": 1970 + 10 * i})
        for i, g in enumerate(["Poetry", "Poetry", "History", "Travel", "Poetry"])
    )
    f = CatalogFacets.from_catalog(books)
    assert (f.has_brands, f.has_prices, f.has_years) == (False, False, True) and f.kinds[0] == "Poetry"
    assert f.available == ("kind", "decade")
    q = f.opening_question("en", ask_budget=True)
    assert "Poetry" in q and "decade" in q and "brand" not in q and "budget" not in q
    zh = f.question(f.splitting(list(books), ("kind", "decade")), "zh", list(books))
    assert zh is not None and "年代" in zh and "品牌" not in zh
    v = CatalogVocabulary.from_catalog(_home_catalog())
    assert v.facets.has_brands and v.facets.has_prices
    s, p = turn(DialogueState(), "bottles under $20", v)
    assert "price" not in needs_clarification(s, p, user_known=False, facets=v.facets)


def test_restating_the_current_type_is_no_new_type(beauty):
    """ "rhinestones for nail art" while Nail Art Equipment is in force names no new product type
    (the dialogue keeps it); "a lipstick" does."""
    current = parse("nail art equipment", beauty).categories_in
    assert current and current[0][-1] == "Nail Art Equipment"
    for text, same in (("rhinestones for nail art", True), ("nail art rhinestones", True), ("a lipstick", False)):
        p = parse(text, beauty)
        assert names_current_type(current, list(p.mentions), p.text) is same, text
    caps = parse("shower caps", beauty).categories_in
    p = parse("multi shower caps", beauty)
    assert names_current_type(caps, list(p.mentions), p.text)


def _nails_catalog() -> Catalog:
    polish = ("Shop", "Nails", "Nail Polish")
    scrubs = ("Shop", "Skin", "Polishes")
    rows = [Item(f"a{i}", f"Acme Quick Dry Nail Polish {i}", brand="Acme", categories=polish, price=8.0)
            for i in range(10)]  # fmt: skip
    rows.append(Item("n1", "Nail Color Red", brand="ACME NAIL COLOR", categories=polish, price=7.0))
    rows += [Item(f"z{i}", f"Zest Nail Polish Shade {i}", brand="Zest", categories=polish, price=6.0) for i in range(8)]
    rows.append(Item("s1", "Sugar Face Polish", brand="Glow", categories=scrubs, price=12.0))
    return Catalog(rows)


@pytest.mark.parametrize("text", ["acme nail polish", "Show me some Acme nail polish", "Zest nail polish"])
def test_a_brand_then_its_product_type_is_not_the_brands_rare_line(text):
    """The generalised OPI case: the first words of a rare line ("ACME NAIL COLOR") that start
    with a whole brand are that brand; "polish" keeps its catalog meaning (nail polish)."""
    v = CatalogVocabulary.from_catalog(_nails_catalog())
    p = parse(text, v)
    brand = "Zest" if "Zest" in text else "Acme"
    assert p.brands_in[:1] == (brand,) and p.categories_in == (("Shop", "Nails", "Nail Polish"),), text


def test_full_genre_names_still_filter_movies():
    v = CatalogVocabulary.from_catalog(_movies())
    assert parse("war movies", v).categories_in == (("Movies", "War"),)
    assert parse("a thriller from the 90s", v).categories_in == (("Movies", "Thriller"),)


def test_a_typo_in_a_product_type_is_a_preference_with_the_catalog_spelling(beauty):
    p = parse("a lipstik", beauty)
    assert p.categories_in == ()
    assert "Lipstick" in p.preferences and "Lipstick" in p.query


@pytest.mark.parametrize(
    "text",
    [
        "not these; I want something disposable",
        "a gentle shampoo for curly hair under $20",
        "maybeline waterproof mascara",
        "something multi cap, not OPI",
        "口红 不要太贵",
        "Dove soap for sensitive skin",
    ],
)
def test_every_soft_preference_reaches_the_query(beauty, text):
    p = parse(text, beauty)
    words = set(p.query.casefold().split())
    for pref in p.preferences:
        assert all(w in words or w in p.query.casefold() for w in pref.casefold().split()), (text, pref)


def test_soft_brands_and_types_are_carried_for_ranking(beauty):
    p = parse("maybeline mascara", beauty)
    assert "Maybelline" in p.soft_brands and not p.brands_in
    p = parse("a lipstik", beauty)
    assert p.soft_categories and all(path[-1] == "Lipstick" for path in p.soft_categories)
    assert parse("something multi cap", beauty).soft_categories == ()  # the titles say "cap" is no type


def test_a_chinese_question_names_the_kinds_in_chinese() -> None:
    # It asked "您有偏好的类型（例如Drama、Action或Comedy）吗" on the movie demo.
    movies = Catalog(
        [
            Item(f"m{i}", f"Film {i} (199{i % 10})", categories=("Movies", genre))
            for i, genre in enumerate(["Drama", "Comedy", "Action", "Drama", "Comedy", "Horror"] * 3)
        ]
    )
    facets = CatalogFacets.from_catalog(movies)
    zh = facets.question(("kind",), "zh", list(movies))
    assert zh is not None and "喜剧" in zh and "剧情" in zh and "Comedy" not in zh
    en = facets.question(("kind",), "en", list(movies))
    assert en is not None and "Comedy" in en
