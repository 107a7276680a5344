"""Issue #19's listed failures, one test each, through the public ``ShoppingAssistant.chat`` (real
parser over the catalog's vocabulary, real MiniLM index, Chroma, BM25, templates: ``llm=None``)
and ``assistant.privacy.redact``.

The catalog is a slice shaped like the real Amazon Beauty 2014 set (``shared/datasets``): titles
copied from it, OPI as the big nail brand beside its one-item line "OPI NAIL COLOR", skin
"Polishes" under Exfoliators, eyelash curlers beside mascara brushes of a brand named
"Disposables", shower caps beside hair-colouring processing caps and wig caps, rhinestones in both
Nail Art Equipment and Nail Art. The movie catalog has no prices and no brands.

Checked on f7d4e82, the commit the issue was filed against (this file runs there unchanged):
fails there: test_opi_nail_polish_..., test_something_disposable_..., test_something_multi_cap_...,
test_rhinestones_... (both), test_number_words_... (the two English cases),
test_sizes_counts_and_codes_... (all 7), test_sizes_reach_the_search_query_in_a_turn,
test_a_new_shopper_..., test_a_new_chinese_shopper_..., test_reasons_are_in_the_shoppers_language,
test_you_liked_only_..., test_under_15_on_movies_....
passes there (guards that the fixes keep what already worked): the Chinese number words, a real
phone number still redacted, test_you_bought_only_for_the_shoppers_real_history, and
test_compare_the_first_two_movies_... (the "two families" reply was the LLM's; the template reply
already named both movies, and it is what the shopper gets when the LLM's reply fails grounding).
"""

from __future__ import annotations

import re

import pytest

from assistant import ShoppingAssistant
from assistant.privacy import redact
from assistant.understanding.parser import parse
from assistant.understanding.vocabulary import CatalogVocabulary
from retrieval.data.schema import Catalog, Dataset, Interactions, Item

NAIL_POLISH = ("Beauty", "Makeup", "Nails", "Nail Polish")
TOP_COATS = ("Beauty", "Makeup", "Nails", "Top & Base Coats")
SKIN_POLISHES = ("Beauty", "Skin Care", "Face", "Exfoliators & Scrubs", "Polishes")
CURLERS = ("Beauty", "Tools & Accessories", "Makeup Brushes & Tools", "Eyelash Tools", "Curlers")
MASCARA = ("Beauty", "Makeup", "Eyes", "Mascara")
SHOWER_CAPS = ("Beauty", "Bath & Body", "Bathing Accessories", "Shower Caps")
COLOR_CAPS = ("Beauty", "Tools & Accessories", "Hair Coloring Tools", "Caps, Foils & Wraps")
WIGS = ("Beauty", "Hair Care", "Styling Products", "Hair Extensions & Wigs", "Wigs")
NAIL_ART_EQUIPMENT = ("Beauty", "Tools & Accessories", "Nail Tools", "Nail Art Equipment")
NAIL_ART = ("Beauty", "Makeup", "Nails", "Nail Art")
LIPSTICK = ("Beauty", "Makeup", "Lips", "Lipstick")

_ROWS: list[tuple[str, str | None, tuple[str, ...], float | None]] = [
    *[
        (t, "OPI", NAIL_POLISH, p)
        for t, p in [
            ("OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce", 12.0),
            ("OPI Red Shatter Crackle Nail Polish E55 New", 3.04),
            ("OPI: Lacquer Black Shatter, 0.5 oz", 4.49),
            ("OPI Silver Shatter Nail Polish NL E62", 4.0),
            ("Opi Nail Lacquer, Not So Bora Pink, 0.5 Fluid Ounce", 6.56),
            ("OPI La Collection De France You Don't Know Jacques", 5.51),
            ("OPI Nail Lacquer, DS Reflection, 0.5-Fluid Ounce", 8.29),
            ("OPI Soft Shades Nail Lacquer, Princesses Rule!", 3.75),
            ("Opi Hong Kong Collection Lucky Lucky Lavender Nl H48", 6.85),
        ]
    ],
    ("OPI RAPIDRY TOP COAT .5oz", "OPI NAIL COLOR", TOP_COATS, 6.45),
    ("Seche Vite Dry Fast Top Coat", "Seche", TOP_COATS, 7.5),
    ("China Glaze Nail Polish, Snow Globe, 0.5 Fluid Ounce", "China Glaze", NAIL_POLISH, 4.89),
    ("Kleancolor Nail Lacquer Black 5", "Kleancolor", NAIL_POLISH, 1.5),
    ("Essie Nail Polish, Ballet Slippers", "Essie", NAIL_POLISH, 8.0),
    ("Sally Hansen Hard as Nails Nail Polish, Crystal Clear", "Sally Hansen", NAIL_POLISH, 3.99),
    ("Clarisonic Refining Skin Polish, 6 Ounce", None, SKIN_POLISHES, 21.99),
    ("Laura Mercier Face Polish", "laura mercier", SKIN_POLISHES, 32.0),
    ("Yu-Be Foaming Skin Polish - 7 oz", "YuBe", SKIN_POLISHES, 17.99),
    *[
        (t, b, CURLERS, p)
        for t, b, p in [
            ("E.l.f. Eyelash Curler", "e.l.f. Cosmetics", 4.49),
            ("Tweezerman LTD Deluxe Metal Eyelash Curler", "Tweezerman", 12.34),
            ("Tweezerman Classic Eyelash Curler", "Tweezerman", 11.25),
            ("Panasonic EH2331P Heated Eyelash Crimper", "Panasonic", 23.94),
            ("Sally Hansen Eyelash Curler, Classic, Flirty Eyes 1 eyelash curler", "Sally Hansen", 5.96),
            ("Revlon Cushion Grip Lash Curler", "Revlon", 3.18),
            ("Lovely Lashes Eyelash Curler By Izy Trends - Creates The Perfect Curls", None, 12.5),
            ("Panasonic EH2351AC Heated Eyelash Curling Wand", "Panasonic", 17.81),
            ("Tweezerman Super Curl Eyelash Curler", "Tweezerman", 8.09),
            ("SODIAL(TM) Curling Eyelashes Cute Curl Eyelash Curlers Pink", "SODIAL(TM)", 1.95),
            ("Shiseido Eyelash Curler with Refill Pad", "Shiseido", 19.0),
            ("Eyelash Curler Replacement Refill Pads, Disposable 10 Pack", None, 2.99),
        ]
    ],
    ("Disposable Eyelash Mascara Brushes/Wands 50 pack", "Ultra Cosmetics Store", MASCARA, 2.51),
    ("Deluxe Disposable Curved Mascara Brush, 50 pack", "Disposables", MASCARA, 6.81),
    ("Deluxe Disposable Mascara Wands, 100 pack", "Disposables", MASCARA, 9.5),
    ("Maybelline Lash Sensational Washable Mascara, Blackest Black", "Maybelline", MASCARA, 6.49),
    ("L'Oreal Voluminous Original Mascara, Black", "L'Oreal Paris", MASCARA, 7.99),
    *[
        (t, b, SHOWER_CAPS, p)
        for t, b, p in [
            (
                "Betty Dain Stylish Design Mold Resistant Shower Cap, The Hipster Collection",
                "Betty Dain",
                4.94,
            ),
            ("BelleSha Water Resistant Shower Cap Cheetah", None, 10.01),
            (
                "Betty Dain Stylish Design Mold Resistant Shower Cap, The Fashionista Collection",
                "Betty Dain",
                4.57,
            ),
            ("8-Pack Reusable Disposable Elastic Shower Caps - Full-Size Adult", "Home Goods", 1.28),
            ("Shower Caps Clear (30 count)", "Hair Art", 2.45),
            ("Disposable Shower Caps- 100 Packed", "Betty Dain Colortrak", 9.55),
            (
                "Betty Dain Stylish Design Terry Lined Shower Cap, The Socialite Collection",
                "Betty Dain",
                6.65,
            ),
            ("Spa Sister Bouffant Shower Cap, Pink.", "Spa Sister", 8.89),
            ("Goody Styling Essentials Shower Cap, Multi Pack, 3 Count (Pack of 2)", "Goody", 10.04),
            ("Annie Premium Jumbo Day & Night Cap Black", "Annie", 6.99),
            ("Conair Shower Cap, Multi-Color Print, 2 Count", "Conair", 5.49),
        ]
    ],
    ("Diane Processing Caps, 100-pack", "Diane", COLOR_CAPS, 4.39),
    ("Betty Dain Plastic Processing Caps , 100 ct", "Betty Dain", COLOR_CAPS, 6.1),
    (
        "Soft N Style Pro-Cap Professional Processing Caps, Extra Large, 30-count",
        "Soft 'N Style",
        COLOR_CAPS,
        3.65,
    ),
    ("Frosting Cap with Metal Hook, Multi Use Highlighting Cap", "Diane", COLOR_CAPS, 3.2),
    ("Andre Silhouettes Shampoo Cape, Metallic Black", "Andre", COLOR_CAPS, 9.99),
    ("Cool2day Long Dark Brown Sexy Wave Wig+wig Cap", "cool2day", WIGS, 9.64),
    ("Cool2day Cute Straight Bangs Long Wig+wig Cap", "cool2day", WIGS, 6.0),
    *[
        (t, b, NAIL_ART_EQUIPMENT, p)
        for t, b, p in [
            ("MASH Rhinestones 2400 Piece 12 Color Nail Art Nailart Manicure Wheels", "Evermarket", 1.8),
            (
                "Nail Art MoYou Silver Moon Rhinestone Pack of 1200 Crystal Premium Quality Gems",
                "Evermarket",
                1.62,
            ),
            ("niceEshop(TM) White Wax Rhinestone Picker Pencil/Pen Tool For Nail Art", "niceEshop", 2.09),
            ("BONAMART Premium MASH 100 Pc Nail Art 3d Manicure Design Sticks Rods", "Bonamart", 5.1),
            ("Nail Art Brushes- Professional Sable Nail Art Brush Pen", "World Pride", 1.68),
            ("Dotting 5 X 2 Way Marbleizing Dotting Pen Set for Nail Art Manicure Pedicure", "Dotting", 2.1),
            ("15pcs Nail Art Painting Pen Brush", "Crazy Cart", 2.76),
            ("SHANY 2012 Nail Art Polish Stamp Manicure Image Plates set of 25pcs", "SHANY Cosmetics", 16.99),
            ("SHANY Stamping Nail Art Set (Image Plate Holder, Scraper, Stamper)", "SHANY Cosmetics", 9.08),
            ("3D Nail Art Rhinestones Glitter Wheel with Crystal Picker Tool", "Bonamart", 3.4),
            ("Nail Art Rhinestone Studs Case, 12 Colors, with Tweezers", "World Pride", 4.25),
            ("Nail Art Rhinestones Applicator Dotting Tool Set", "Dotting", 2.99),
        ]
    ],
    *[
        (t, b, NAIL_ART, p)
        for t, b, p in [
            ("World Pride Nail Tape Stripe Decoration Sticker Hologram, Set of 10", "Bonamart", 1.54),
            ("SODIAL(R) 3000 Nail Art Gems Mixed Colours Shapes in Case (Size 2mm)", "SODIAL(TM)", 2.23),
            (
                "1200pcs New Nail Art Rhinestones Glitters Acrylic Tips Decoration Manicure Wheel",
                "extendservice",
                1.11,
            ),
            ("Nail Art 250 Pieces Gold & Silver 5mm Star Metal Studs for Nails", "Fashionwu", 1.36),
            ("28 Color Nail Art Stripe Striping Tape Line DIY Decoration Sticker", "Beauticom", 2.5),
        ]
    ],
    *[
        (t, b, LIPSTICK, p)
        for t, b, p in [
            ("NYX Round Case Lipstick Lip Cream 592 Baby Pink", "NYX", 5.08),
            ("L'oreal Paris Colour Riche Lipstick 0.13 Oz", "L'Oreal Paris", 5.99),
            ("Clinique Almost Lipstick - Black Honey", "Clinique", 8.94),
            ("Revlon Super Lustrous Creme Lipstick, Fire and Ice 720, 0.15 Ounce", "Revlon", 7.5),
            ("Tom Ford Lip Color Lipstick, Cherry Lush", "Tom Ford", 52.0),
            ("Guerlain Rouge G Jewel Lipstick Compact with Mirror", "Guerlain", 310.0),
            ("Clé de Peau Beauté Extra Rich Lipstick Collector Set", "Cle de Peau", 1450.0),
        ]
    ],
]


def _beauty() -> Dataset:
    items = [Item(f"b{i:03d}", t, brand=b, categories=c, price=p) for i, (t, b, c, p) in enumerate(_ROWS)]
    catalog = Catalog(items)
    ids = [it.item_id for it in items]
    seqs = {f"u{u:02d}": [ids[(u * 7 + j * 11) % len(ids)] for j in range(5)] for u in range(30)}
    return Dataset("beauty-slice", catalog, Interactions.from_sequences(seqs), source=__file__)


_MOVIES = [
    ("Toy Story (1995)", "Animation", 1995),
    ("Babe (1995)", "Children's", 1995),
    ("Aladdin (1992)", "Animation", 1992),
    ("The Lion King (1994)", "Animation", 1994),
    ("Home Alone (1990)", "Comedy", 1990),
    ("Groundhog Day (1993)", "Comedy", 1993),
    ("Mrs. Doubtfire (1993)", "Comedy", 1993),
    ("The Silence of the Lambs (1991)", "Thriller", 1991),
    ("Se7en (1995)", "Thriller", 1995),
    ("Fargo (1996)", "Crime", 1996),
    ("Pulp Fiction (1994)", "Crime", 1994),
    ("Schindler's List (1993)", "Drama", 1993),
    ("The Shawshank Redemption (1994)", "Drama", 1994),
    ("Heat (1995)", "Action", 1995),
    ("Braveheart (1995)", "Action", 1995),
    ("Scream (1996)", "Horror", 1996),
]


def _movies() -> Dataset:
    items = [
        Item(f"m{i:02d}", t, categories=("Movies", g), attributes={"release_year": y})
        for i, (t, g, y) in enumerate(_MOVIES)
    ]
    ids = [it.item_id for it in items]
    seqs = {f"v{u:02d}": [ids[(u * 3 + j * 5) % len(ids)] for j in range(4)] for u in range(20)}
    return Dataset(
        "movies-slice", Catalog(items), Interactions.from_sequences(seqs), currency=None, source=__file__
    )


@pytest.fixture(scope="module")
def beauty(tmp_path_factory) -> ShoppingAssistant:
    return ShoppingAssistant.from_dataset(
        _beauty(), llm=None, cache_dir=tmp_path_factory.mktemp("beauty"), show_progress=False
    )


@pytest.fixture(scope="module")
def movies(tmp_path_factory) -> ShoppingAssistant:
    return ShoppingAssistant.from_dataset(
        _movies(), llm=None, cache_dir=tmp_path_factory.mktemp("movies"), show_progress=False
    )


def _browse(bot: ShoppingAssistant, text: str, session_id: str, answer: str = "just show me some"):
    """``text``, then ``answer`` if the assistant asked its one clarifying question instead."""
    r = bot.chat(text, session_id=session_id)
    return bot.chat(answer, session_id=session_id) if r.intent == "clarify" else r


def _paths(bot: ShoppingAssistant, reply) -> set[tuple[str, ...]]:
    return {bot.catalog[it.item_id].categories for it in reply.items}


# 1 -----------------------------------------------------------------------------------------------
def test_opi_nail_polish_is_the_opi_family_in_nail_polish(beauty):
    """'OPI' was read as the one-item line 'OPI NAIL COLOR' and 'polish' as skin Polishes: no items."""
    r = beauty.chat("Show me some OPI nail polish", session_id="opi")
    assert "OPI" in r.constraints.brands_in
    assert r.constraints.categories == (NAIL_POLISH,)
    assert r.items and all(it.brand == "OPI" for it in r.items)
    assert _paths(beauty, r) == {NAIL_POLISH}


# 2 -----------------------------------------------------------------------------------------------
def test_something_disposable_after_eyelash_curlers_is_no_brand_filter(beauty):
    """'disposable' became the brand filter 'Disposables' (mascara brushes): zero items."""
    r1 = _browse(beauty, "I'm looking for an eyelash curler", "curler")
    assert r1.items and _paths(beauty, r1) == {CURLERS}
    r2 = beauty.chat("not these; I want something disposable", session_id="curler")
    assert not r2.constraints.brands_in
    assert r2.constraints.categories == (CURLERS,)
    assert r2.items and _paths(beauty, r2) == {CURLERS}
    assert not {it.item_id for it in r2.items} & {it.item_id for it in r1.items}


# 3 -----------------------------------------------------------------------------------------------
def test_something_multi_cap_after_shower_caps_keeps_shower_caps(beauty):
    """'multi cap' switched the category to hair-colouring caps."""
    r1 = _browse(beauty, "I'm looking for shower caps", "caps")
    assert r1.items and _paths(beauty, r1) == {SHOWER_CAPS}
    r2 = beauty.chat("not these; something multi cap", session_id="caps")
    assert r2.constraints.categories == (SHOWER_CAPS,)
    assert r2.items and _paths(beauty, r2) == {SHOWER_CAPS}


@pytest.mark.parametrize("text", ["rhinestones for nail art", "nail art rhinestones"])
def test_rhinestones_while_nail_art_equipment_is_shown_keeps_it(beauty, text):
    """'rhinestones for nail art' switched Nail Art Equipment to Nail Art: restating the type in
    force ("nail art" is part of its name) names no new one."""
    r1 = _browse(beauty, "I need nail art equipment", f"gems-{text}")
    assert r1.constraints.categories == (NAIL_ART_EQUIPMENT,) and r1.items
    r2 = beauty.chat(text, session_id=f"gems-{text}")
    assert r2.constraints.categories == (NAIL_ART_EQUIPMENT,)
    assert r2.items and _paths(beauty, r2) == {NAIL_ART_EQUIPMENT}


# 4 -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "ceiling"),
    [
        ("a lipstick under two hundred fifty dollars", 250.0),
        ("a lipstick under one thousand two hundred dollars", 1200.0),
        ("两百五十块以内的口红", 250.0),
        ("一千二百元以下的口红", 1200.0),
    ],
)
def test_number_words_are_price_ceilings(beauty, text, ceiling):
    """'two hundred fifty dollars' became an around-band of $37.50-62.50 (fifty, the last word)."""
    r = beauty.chat(text, session_id=f"price-{ceiling}-{len(text)}")
    assert r.constraints.price_max == ceiling and r.constraints.price_min is None
    assert r.items and all(it.price is not None and it.price <= ceiling for it in r.items)


# 5 -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "do you have it in size 10 12 14 16",
        "memory options 128 256 512",
        "my order number is 1123456789 and it never came",
        "order 112-3456789-0123456 arrived broken",
        "UPC 012345678905 please",
        "ISBN 978-0-306-40615-7",
        "the 978 0306 40615 7 edition",
    ],
)
def test_sizes_counts_and_codes_are_not_redacted_as_phones(text):
    assert redact(text) == text


@pytest.mark.parametrize(
    "text", ["call me on 415-555-0134", "my cell is (212) 555-0199", "手机 139 1234 5678"]
)
def test_a_phone_number_with_context_is_still_redacted(text):
    assert "[PHONE]" in redact(text) and not re.search(r"\d{3}.?\d{4}\b", redact(text))


def test_sizes_reach_the_search_query_in_a_turn(beauty):
    r = beauty.chat("a lipstick in shades 10 12 14 16 under $60", session_id="sizes")
    assert "[PHONE]" not in r.meta["query"] and "12 14" in r.meta["query"], r.meta["query"]
    assert r.items


# 6 -----------------------------------------------------------------------------------------------
_CLAIMS = re.compile(r"you (?:saw|bought|liked|viewed)|你(?:看过|买过|喜欢|浏览)")


def _reasons(reply) -> list[str]:
    return [reason for it in reply.items for reason in it.reasons]


def test_a_new_shopper_is_never_told_they_saw_or_bought_what_was_only_shown(beauty):
    """A new shopper's cards said 'like X you saw' for items that were only shown earlier."""
    _browse(beauty, "I'm looking for an eyelash curler", "new-en")
    r2 = beauty.chat("show me more eyelash curlers", session_id="new-en")
    reasons = _reasons(r2)
    assert r2.items and not [x for x in reasons if _CLAIMS.search(x)], reasons
    assert any("shown earlier" in x for x in reasons), reasons


def test_a_new_chinese_shopper_gets_shown_earlier_in_chinese(beauty):
    _browse(beauty, "我想要睫毛夹 eyelash curler", "new-zh", answer="随便看看")
    r2 = beauty.chat("再给我看看别的睫毛夹 eyelash curler", session_id="new-zh")
    reasons = _reasons(r2)
    assert r2.language == "zh" and r2.items
    assert not [x for x in reasons if _CLAIMS.search(x)], reasons
    assert any("之前推荐过" in x for x in reasons), reasons


def test_reasons_are_in_the_shoppers_language(beauty):
    """A Chinese turn's cards gave English reasons ("under $250", "in Lipstick")."""
    r = _browse(beauty, "两百五十块以内的口红", "zh-reasons", answer="随便看看")
    reasons = _reasons(r)
    assert r.language == "zh" and reasons
    assert all(re.search(r"[\u4e00-\u9fff]", x) for x in reasons), reasons  # the frame is Chinese
    assert "$250 以内" in reasons


def test_you_liked_only_for_what_the_shopper_liked(beauty):
    r1 = _browse(beauty, "I'm looking for an eyelash curler", "liked")
    liked = r1.items[0]
    r2 = beauty.chat("I like the first one, show me more like it", session_id="liked")
    reasons = _reasons(r2)
    assert r2.items
    for x in reasons:
        if "you liked" in x:
            assert liked.title[:20] in x, x
        assert not re.search(r"you (?:saw|bought)", x), x


def test_you_bought_only_for_the_shoppers_real_history(beauty):
    user = "u03"
    bought = set(beauty.dataset.interactions.history(user))
    r = beauty.chat("I'm looking for an eyelash curler", session_id="known", user_id=user)
    titles = {beauty.catalog[i].title for i in bought}
    for x in _reasons(r):
        m = re.match(r"like (.+) you bought$", x)
        if m:
            assert any(t.startswith(m.group(1).rstrip("…")) for t in titles), x
        assert "you saw" not in x and "shown earlier" not in x


# 7 -----------------------------------------------------------------------------------------------
def test_compare_the_first_two_movies_names_the_two_movies(movies):
    """The reply was 'Shopper compares the first two movies from the two families.'"""
    r1 = _browse(movies, "recommend a comedy", "cmp")
    assert len(r1.items) >= 2
    r2 = movies.chat("compare the first two", session_id="cmp")
    assert r2.intent == "compare" and r2.comparison is not None
    assert r2.comparison.item_ids == [it.item_id for it in r1.items[:2]]
    assert all(it.title in r2.text for it in r1.items[:2]), r2.text
    assert "famil" not in r2.text.casefold()


# 8 -----------------------------------------------------------------------------------------------
def test_under_15_on_movies_notes_no_prices_and_asks_no_brand_question(movies):
    """'under $15' gave the 'no prices' note (right) and then the brand/colour question again."""
    _browse(movies, "recommend a comedy", "np")
    r = movies.chat("under $15", session_id="np")
    assert "no prices" in r.text, r.text  # said to the shopper, not only logged in meta
    assert not re.search(r"brand|colou?r|feature", r.text, re.IGNORECASE), r.text


def test_family_night_holds_through_more_like_and_yields_to_not_a_comedy(movies):
    # "funny" was a hard Comedy filter and the everyday words' preferences lasted one turn:
    # "more like the second one" after "a funny movie for a family night" showed crime and action.
    first = movies.chat("a funny movie for a family night", session_id="fam")
    state = movies.session("fam").state
    assert not first.constraints.categories  # funny / family night are preferences, not filters
    family = {"Children's", "Animation", "Comedy"}
    assert {p[-1] for p in state.soft_categories} == family
    again = movies.chat("more like the second one", session_id="fam")
    assert {p[-1] for p in movies.session("fam").state.soft_categories} == family
    shown = {it.item_id for it in first.items}
    left = [it.item_id for it in movies.catalog if it.categories[-1] in family and it.item_id not in shown]
    genres = [movies.catalog[it.item_id].categories[-1] for it in again.items]
    assert left and all(g in family for g in genres[: len(left)]), genres  # the family films left lead
    darker = movies.chat("something darker, not a comedy", session_id="fam")
    leaves = {p[-1] for p in movies.session("fam").state.soft_categories}
    assert "Comedy" not in leaves and {"Drama", "Thriller"} & leaves
    # A new mood none of whose kinds was wanted is a new direction: the family kinds yield
    # (the page showed The Lion King and Beauty and the Beast for "something darker").
    assert not leaves & family
    dark = {"Drama", "Thriller", "Crime", "Horror", "Film-Noir", "Mystery"}
    kinds = [{*movies.catalog[it.item_id].attributes.get("genres", ()), it.categories[-1]} for it in darker.items]
    assert darker.items and all(k & dark and not k & family for k in kinds), kinds


# The describe bench's shoppers (lead) --------------------------------------------------------------
# fails on c7fcf27 (and f7d4e82): each of the four below (refinements re-showed the page; "more like the n-th"
# dropped the words said with it; "under about $15" was a $11.25-18.75 band; "nothing too
# expensive" was a bound at 0.8x the median shown; "too cheap" read as "cheap").


def test_a_refinement_shows_new_items_not_the_same_page(beauty):
    first = _browse(beauty, "show me nail polish", "fresh")
    again = beauty.chat("closer to the first one", session_id="fresh")
    more = beauty.chat("closer to the first one", session_id="fresh")
    pages = [{it.item_id for it in r.items} for r in (first, again, more)]
    assert all(pages) and not pages[0] & pages[1] and not (pages[0] | pages[1]) & pages[2]


def test_more_like_the_nth_keeps_the_words_said_with_it(beauty):
    first = _browse(beauty, "show me nail polish", "like-nth")
    beauty.chat("more like the first one, something shimmer", session_id="like-nth")
    state = beauty.session("like-nth").state
    assert "shimmer" in state.query and state.anchors == (first.items[0].item_id,)


@pytest.mark.parametrize(
    "text",
    [
        "closer to the first one, something shimmer",
        "along the lines of the first one, ideally shimmer",
        "in the style of the first one, maybe something shimmer",
        "更像第一个那样的，要shimmer的",
    ],
)
def test_nearness_to_a_shown_item_anchors_it_and_keeps_the_words(beauty, text):
    # "Closer to the first one" read as a question about the first item: its words were dropped
    # and nothing anchored the next page (the describe bench's most common reaction).
    first = _browse(beauty, "show me nail polish", f"near-{text}")
    beauty.chat(text, session_id=f"near-{text}")
    state = beauty.session(f"near-{text}").state
    assert state.anchors == (first.items[0].item_id,)
    assert state.query.split()[-1] == "shimmer", state.query


@pytest.mark.parametrize(
    "text", ["这些都不是。", "不是这些。", "not quite, other options please", "not really what I wanted"]
)
def test_rejecting_the_page_shows_other_items_and_adds_no_words(beauty, text):
    first = _browse(beauty, "show me nail polish", f"reject-{text}")
    again = beauty.chat(text, session_id=f"reject-{text}")
    assert again.items and not {it.item_id for it in first.items} & {it.item_id for it in again.items}
    assert beauty.session(f"reject-{text}").state.query == "nail polish"


@pytest.mark.parametrize(
    ("text", "ceiling"),
    [("under about $15", 15.0), ("no more than roughly $15", 15.0), ("my budget is about $15", 15.0),
     ("预算大约15美元", 15.0), ("大概15美元以内", 15.0)],
)  # fmt: skip
def test_a_hedged_bound_keeps_its_side(text, ceiling):
    vocab = CatalogVocabulary.from_catalog(_beauty().catalog)
    p = parse(text, vocab, "USD")
    assert p.price is not None and (p.price.low, p.price.high) == (None, ceiling)


def test_price_words_against_the_page_and_as_a_wish(beauty):
    def shown_prices() -> list[float]:
        return [p for p in beauty.session("price-words").state.last_shown_prices if p is not None]

    _browse(beauty, "show me nail polish", "price-words")
    wish = beauty.chat("nothing too expensive, please", session_id="price-words")
    assert (
        wish.constraints.price_max is None and beauty.session("price-words").state.price_preference == "low"
    )
    page = shown_prices()
    cheaper = beauty.chat("too expensive, something cheaper", session_id="price-words")
    assert cheaper.constraints.price_max == pytest.approx(min(page))  # cheaper than the whole page
    page = shown_prices()
    pricier = beauty.chat("these look too cheap; something more premium", session_id="price-words")
    assert pricier.constraints.price_min == pytest.approx(max(page))  # "too cheap" is no wish for cheap


# Chinese shoppers who mix English product words into a Chinese sentence (the zh describe bench
# lost 8 points to keyword matching on these: the product type switched, the anchor was dropped).
@pytest.mark.parametrize("text", ["最好是polish的。", "想要polish的。", "要polish的", "最好polish"])
def test_a_chinese_wish_for_a_quality_keeps_the_product_type(beauty, text):
    """ "最好是X的" / "要X的" describe the wanted item; X naming another category is no new type."""
    first = _browse(beauty, "推荐一些shower caps。", f"zh-wish-{text}")
    assert first.constraints.categories == (SHOWER_CAPS,)
    r = beauty.chat(text, session_id=f"zh-wish-{text}")
    assert r.constraints.categories == (SHOWER_CAPS,)
    assert "polish" in beauty.session(f"zh-wish-{text}").state.query
    assert r.items and _paths(beauty, r) == {SHOWER_CAPS}


def test_a_kind_named_in_chinese_with_lei_de_is_still_a_filter():
    vocab = CatalogVocabulary.from_catalog(_beauty().catalog)
    assert parse("是口红类的。", vocab, "USD").categories_in == (LIPSTICK,)


@pytest.mark.parametrize(
    "text",
    [
        "更像第一个那样的。不要太贵。",
        "更像第一个那样的，别太贵",
        "closer to the first one. nothing too pricey",
    ],
)
def test_a_degree_wish_beside_a_reference_is_no_dislike(beauty, text):
    """ "不要太贵" (not too expensive) in the next sentence disliked the first item: no anchor."""
    first = _browse(beauty, "show me nail polish", f"degree-{text}")
    beauty.chat(text, session_id=f"degree-{text}")
    state = beauty.session(f"degree-{text}").state
    assert state.anchors == (first.items[0].item_id,)


@pytest.mark.parametrize(("text", "feedback"), [("不要第一个", "dislike"), ("我不喜欢第二个", "dislike"),
    ("not the second one, something cheaper", "dislike"), ("第二个不错", "like"),
    ("The second one. Cheaper ones please, I don't like brown.", None)])  # fmt: skip
def test_feedback_is_read_in_the_sentence_of_the_reference(text, feedback):
    vocab = CatalogVocabulary.from_catalog(_beauty().catalog)
    assert parse(text, vocab, "USD").feedback == feedback


def test_a_chinese_sentence_around_english_words_gets_chinese_reasons(beauty):
    r = beauty.chat("推荐一些shower caps。", session_id="zh-frame")
    assert r.language == "zh" and r.items
    assert all(re.search(r"[\u4e00-\u9fff]", " ".join(it.reasons)) for it in r.items)


def test_words_a_card_says_come_from_its_own_text_not_its_category(beauty):
    """A card in Shower Caps whose title has no "shower" was said to say "shower"."""
    r = _browse(beauty, "I need shower caps, something terry", "says")
    for it in r.items:
        item = beauty.catalog[it.item_id]
        for reason in it.reasons:
            if reason.startswith("says "):
                for word in re.findall(r'"([^"]+)"', reason):
                    assert (
                        word.casefold()
                        in f"{item.title} {item.description or ''} {' '.join(item.reviews)}".casefold()
                    )


# Negated words: "nothing too scary" searched for "scary"; "不要太恐怖的电影" was a hard Horror filter.
@pytest.mark.parametrize(
    ("text", "absent"),
    [("a movie that is not too violent", "violent"), ("something not too old", "old"),
     ("a comedy that isn't too silly", "silly"), ("nothing too dark or violent", "violent")],
)  # fmt: skip
def test_a_negated_word_never_reaches_the_query(text, absent):
    vocab = CatalogVocabulary.from_catalog(_movies().catalog)
    p = parse(text, vocab, None)
    assert absent not in p.query.split() and absent not in p.preferences


def test_parabens_the_shopper_does_not_want_are_not_searched_for():
    vocab = CatalogVocabulary.from_catalog(_beauty().catalog)
    p = parse("a lipstick without parabens or sulfates", vocab, "USD")
    assert p.categories_in == (LIPSTICK,)
    assert not {"parabens", "sulfates", "without"} & set(p.query.split())


@pytest.mark.parametrize("text", ["不要太恐怖的电影", "nothing too scary please", "a movie, not too scary"])
def test_not_too_scary_spares_horror_without_ruling_it_out(movies, text):
    vocab = CatalogVocabulary.from_catalog(_movies().catalog)
    p = parse(text, vocab, None)
    assert ("Movies", "Horror") in p.avoided_categories
    assert ("Movies", "Horror") not in p.categories_in and ("Movies", "Horror") not in p.categories_out
    r = _browse(movies, text, f"spare-{text}")
    assert r.items and "Horror" not in {movies.catalog[it.item_id].categories[-1] for it in r.items}
    assert not r.constraints.categories_out


def test_not_a_horror_movie_still_rules_horror_out():
    vocab = CatalogVocabulary.from_catalog(_movies().catalog)
    assert parse("not a horror movie", vocab, None).categories_out == (("Movies", "Horror"),)
    assert parse("不要恐怖片", vocab, None).categories_out == (("Movies", "Horror"),)


# Chinese wishes reach an English catalog: "正红色" matched nothing, "比较油" (rather oily) was
# a request to compare, "有没有" (is there) negated what followed it.
def test_a_chinese_colour_wish_is_searched_as_red(beauty):
    r = beauty.chat("送女朋友的口红，颜色要正红色的", session_id="zh-red")
    assert r.intent in ("recommend", "search") and r.constraints.categories == (LIPSTICK,)
    assert "red" in beauty.session("zh-red").state.query.split()
    assert r.items  # (the fixture has no red lipstick; the ranker's words signal reads "red")


@pytest.mark.parametrize(
    ("text", "english"),
    [
        ("我皮肤比较油，想找一款控油的口红", "oil"),
        ("有没有适合敏感肌的口红", "sensitive"),
        ("想要哑光的口红", "matte"),
    ],
)
def test_chinese_attribute_words_are_searched_in_english(text, english):
    vocab = CatalogVocabulary.from_catalog(_beauty().catalog)
    p = parse(text, vocab, "USD")
    assert english in p.query.split() and p.categories_in == (LIPSTICK,)


@pytest.mark.parametrize("text", ["我皮肤比较油，想找一款控油的洗面奶", "这款比较便宜吗"])
def test_bijiao_as_rather_is_no_comparison(beauty, text):
    assert beauty.chat(text, session_id=f"bijiao-{text}").intent != "compare"


def test_bijiao_before_the_items_compares(beauty):
    _browse(beauty, "show me nail polish", "bijiao-yes")
    assert beauty.chat("比较一下前两个", session_id="bijiao-yes").intent == "compare"


@pytest.mark.parametrize(
    "text", ["hmm, I'm not sure", "I'm sorry, but I can't assist with that.", "show me nail polish"]
)
def test_a_turn_that_changes_nothing_shows_the_next_items_not_the_same_page(beauty, text):
    first = _browse(beauty, "show me nail polish", f"same-{text}")
    again = beauty.chat(text, session_id=f"same-{text}")
    before, after = {it.item_id for it in first.items}, {it.item_id for it in again.items}
    assert after and len(before & after) < max(1, len(before) - 1)


def test_untranslated_chinese_leaves_the_query_of_an_english_catalog(movies):
    r = movies.chat("给我推荐几部适合一家人看的轻松电影", session_id="zh-query")
    assert r.items and r.language == "zh"
    assert not re.search(r"[\u4e00-\u9fff]", r.meta["query"])
    assert ("Movies", "Comedy") in movies.session("zh-query").state.soft_categories


# Found by the understanding dataset (#20): a negation's list ran on into a product type, and
# "实惠点的" (more affordable) was no reaction to the page.
def test_a_negated_brand_list_stops_at_a_product_type():
    vocab = CatalogVocabulary.from_catalog(_beauty().catalog)
    p = parse("不想要OPI,口红", vocab, "USD")
    assert "OPI" in p.brands_out and p.categories_in == (LIPSTICK,) and not p.categories_out
    both = parse("not OPI, Revlon or Clinique", vocab, "USD")
    assert {"OPI", "Revlon", "Clinique"} <= set(both.brands_out)


@pytest.mark.parametrize("text", ["有没有实惠点的", "更实惠一些的", "more affordable ones"])
def test_more_affordable_is_cheaper_than_the_page(text):
    vocab = CatalogVocabulary.from_catalog(_beauty().catalog)
    assert parse(text, vocab, "USD").relative_price == "lower"
