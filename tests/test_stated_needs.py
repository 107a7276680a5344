"""What a shopper says they need, in their own words (issue #19: understand the words).

A job to be done names the tool for it: "something to take off
gel nail polish" is a Nail Polish Remover, not nail polish; "to sharpen my pencils" a Pencil
Sharpener. The verbs come from the catalog's own node names (Remover, Sharpener, Dryer, Curlers,
Moisturizers); the words after the verb choose among the nodes named for the same job.

What the shopper already has is not what they ask for: "I already have a printer, I need ink"
rules printers out for the request. How people ask ("hook me up with", "I'm after") is no part of
what they ask for.

Parser checks over small catalogs shaped like Amazon Beauty and Office 2014 (their node names),
and one conversation through the public ``ShoppingAssistant.chat`` (real MiniLM, Chroma, BM25)."""

from __future__ import annotations

import pytest

from assistant import ShoppingAssistant
from assistant.understanding.parser import parse
from assistant.understanding.vocabulary import CatalogVocabulary
from retrieval.data.schema import Catalog, Dataset, Interactions, Item

NAIL_POLISH = ("Beauty", "Makeup", "Nails", "Nail Polish")
POLISH_REMOVER = ("Beauty", "Makeup", "Nails", "Nail Polish Remover")
MAKEUP_REMOVER = ("Beauty", "Makeup", "Makeup Remover", "Eyes")
CUTICLE = ("Beauty", "Skin Care", "Hands & Nails", "Cuticle Care", "Cuticle Removers")
DRYERS = ("Beauty", "Hair Care", "Styling Tools", "Hair Dryers")
SHAMPOOS = ("Beauty", "Hair Care", "Shampoos")
LASH_CURLERS = ("Beauty", "Tools & Accessories", "Makeup Brushes & Tools", "Eyelash Tools", "Curlers")
TRIMMERS = ("Beauty", "Tools & Accessories", "Nail Tools", "Clippers & Trimmers")
FACE_CREAMS = ("Beauty", "Skin Care", "Face", "Creams & Moisturizers")
FOUNDATION = ("Beauty", "Makeup", "Face", "Foundation")
PRIMERS = ("Beauty", "Makeup", "Face", "Foundation Primers")
IRONS = ("Beauty", "Hair Care", "Styling Tools", "Irons", "Flattening Irons")
SHARPENERS = ("Office & School Supplies", "Writing & Correction Supplies", "Pencil Sharpeners")
PENCILS = ("Office & School Supplies", "Writing & Correction Supplies", "Pencils")
STAPLE_REMOVERS = ("Office & School Supplies", "Staplers & Punches", "Staple Removers")
STAPLERS = ("Office & School Supplies", "Staplers & Punches", "Staplers")

_ROWS = [
    ("OPI Nail Lacquer, Big Apple Red", "OPI", NAIL_POLISH),
    ("Essie Nail Polish, Ballet Slippers", "Essie", NAIL_POLISH),
    ("Harmony Gelish Soak Off Gel Polish, Passion", "Harmony", NAIL_POLISH),
    ("Sally Hansen Insta-Dri Nail Color, Rapid Red", "Sally Hansen", NAIL_POLISH),
    ("Onyx Professional Acetone Nail Polish Remover, 16 oz", "Onyx", POLISH_REMOVER),
    ("Cutex Ultra-Powerful Nail Polish Remover", "Cutex", POLISH_REMOVER),
    ("Gel Polish Remover Wraps, Soak Off Foil Clips", None, POLISH_REMOVER),
    ("Neutrogena Oil-Free Eye Makeup Remover", "Neutrogena", MAKEUP_REMOVER),
    ("Maybelline Expert Eyes Makeup Remover", "Maybelline", MAKEUP_REMOVER),
    ("Sally Hansen Instant Cuticle Remover", "Sally Hansen", CUTICLE),
    ("Conair 1875 Watt Cord-Keeper Hair Dryer", "Conair", DRYERS),
    ("Revlon Ionic Hair Dryer, Black", "Revlon", DRYERS),
    ("Pantene Pro-V Shampoo for Dry Hair", "Pantene", SHAMPOOS),
    ("Suave Moisturizing Shampoo for Dry Hair", "Suave", SHAMPOOS),
    ("Shu Uemura Eyelash Curler", "Shu Uemura", LASH_CURLERS),
    ("Tweezerman Classic Lash Curler", "Tweezerman", LASH_CURLERS),
    ("Tweezerman Toenail Clipper and Trimmer", "Tweezerman", TRIMMERS),
    ("Olay Active Hydrating Face Moisturizer Cream", "Olay", FACE_CREAMS),
    ("CeraVe Facial Moisturizing Lotion PM", "CeraVe", FACE_CREAMS),
    ("Maybelline Fit Me Matte Foundation, Natural Beige", "Maybelline", FOUNDATION),
    ("Revlon ColorStay Foundation, Buff", "Revlon", FOUNDATION),
    ("Smashbox Photo Finish Foundation Primer", "Smashbox", PRIMERS),
    ("e.l.f. Mineral Infused Face Primer", "e.l.f.", PRIMERS),
    ("Remington Ceramic Flat Iron, 1 Inch", "Remington", IRONS),
    ("CHI Original Ceramic Hair Straightening Flat Iron", "CHI", IRONS),
]
_OFFICE_ROWS = [
    ("X-ACTO Electric Pencil Sharpener", "X-ACTO", SHARPENERS),
    ("Staedtler Handheld Pencil Sharpener, 2 Holes", "Staedtler", SHARPENERS),
    ("Ticonderoga Wood-Cased Pencils, #2 HB, 24 Count", "Ticonderoga", PENCILS),
    ("Swingline Staple Remover, Black", "Swingline", STAPLE_REMOVERS),
    ("Swingline Stapler, Desktop, 20 Sheet Capacity", "Swingline", STAPLERS),
    ("Bostitch Office Stapler, Full Strip", "Bostitch", STAPLERS),
]


def _catalog(rows) -> Catalog:
    return Catalog(
        Item(f"i{i:02d}", t, brand=b, categories=c, price=5.0 + i) for i, (t, b, c) in enumerate(rows)
    )


@pytest.fixture(scope="module")
def beauty_vocab() -> CatalogVocabulary:
    return CatalogVocabulary.from_catalog(_catalog(_ROWS))


@pytest.fixture(scope="module")
def office_vocab() -> CatalogVocabulary:
    return CatalogVocabulary.from_catalog(_catalog(_OFFICE_ROWS))


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("something to take off gel nail polish at home", {POLISH_REMOVER}),
        ("I need something for removing my eye makeup", {MAKEUP_REMOVER[:-1]}),
        ("anything good for taking off nail polish?", {POLISH_REMOVER}),
        ("what can I use to get rid of old nail polish?", {POLISH_REMOVER}),
        ("a tool to curl my lashes", {LASH_CURLERS}),
        ("something to dry my hair fast", {DRYERS}),
        ("something to moisturize my face", {FACE_CREAMS}),
    ],
)
def test_a_job_names_the_tool_for_it(beauty_vocab, text, wanted):
    p = parse(text, beauty_vocab)
    assert set(p.categories_in) == wanted, p.categories_in


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("something to sharpen my pencils", {SHARPENERS}),
        ("a thing to take out staples", {STAPLE_REMOVERS}),
    ],
)
def test_a_job_names_the_tool_in_an_office_catalog(office_vocab, text, wanted):
    assert set(parse(text, office_vocab).categories_in) == wanted


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("shampoo for dry hair", SHAMPOOS),  # "for dry hair" says what it suits, no job
        ("I love this nail polish, want to try a new one", NAIL_POLISH),  # "try" names no tool
        ("pencils please, I have to sharpen them myself anyway", PENCILS),  # the job names no object
    ],
)
def test_words_that_state_no_job_keep_their_product_type(beauty_vocab, office_vocab, text, kept):
    vocab = office_vocab if kept[0].startswith("Office") else beauty_vocab
    assert kept in parse(text, vocab).categories_in


def test_a_job_on_something_no_tool_of_that_name_is_for_guesses_nothing(beauty_vocab):
    """Only nail trimmers are named for trimming: "to trim my beard" is not a filter on them."""
    assert TRIMMERS not in parse("a thing that can trim my beard", beauty_vocab).categories_in


def test_the_assistant_shows_removers_for_a_removal_job(tmp_path):
    items = list(_catalog(_ROWS))
    seqs = {f"u{u:02d}": [items[u % 4].item_id, items[(u * 5 + 3) % len(items)].item_id] for u in range(30)}
    data = Dataset("jobs-slice", Catalog(items), Interactions.from_sequences(seqs), source=__file__)
    bot = ShoppingAssistant.from_dataset(data, llm=None, cache_dir=tmp_path, show_progress=False)
    reply = bot.chat("something to take off gel nail polish at home", session_id="s")
    assert reply.items and all(it.categories[-1] == "Nail Polish Remover" for it in reply.items)
    assert reply.items[0].title.startswith("Gel Polish Remover")


@pytest.mark.parametrize(
    ("text", "had", "wanted"),
    [
        ("I already have a foundation I like, I need a primer", FOUNDATION, PRIMERS),
        ("I already own a hair dryer, looking for a flat iron", DRYERS, IRONS),
        ("我已经有一个粉底了，想要一个妆前乳", FOUNDATION, PRIMERS),
    ],
)
def test_what_the_shopper_already_has_is_ruled_out(beauty_vocab, text, had, wanted):
    p = parse(text, beauty_vocab)
    assert had in p.categories_out and had not in p.categories_in
    assert wanted in p.categories_in or wanted[-1].split()[-1].casefold().rstrip("s") in p.query.casefold()


@pytest.mark.parametrize(
    "text",
    ["I already have this foundation and want another shade", "I already own a foundation and love it"],
)
def test_having_one_is_no_exclusion_when_the_shopper_wants_that_kind(beauty_vocab, text):
    p = parse(text, beauty_vocab)
    assert FOUNDATION in p.categories_in and not p.categories_out


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("hook me up with a nice lip balm", "lip balm"),
        ("I'm after a decent eyelash curler", "decent eyelash curler"),
        ("do you carry any nail polish remover", "nail polish remover"),
        ("my hair is thinning, what helps?", "hair thinning"),
    ],
)
def test_chat_phrases_around_a_request_leave_the_query(beauty_vocab, text, query):
    """ "hook me up with", "I'm after", "do you carry", "what helps" are how people ask, not what
    they want ("after" and "carry" are words of After Sun lotions and carrying cases)."""
    assert parse(text, beauty_vocab).query == query


def test_a_kind_named_while_reacting_to_the_page_steers_among_the_shown_kind(tmp_path):
    """ "the 2nd one's close but no. oh and eraser", said of dry-erase markers, wants marker kits
    with an eraser (a few marker titles say so), not the Erasers node; the same words said as a
    new request switch the type."""
    markers = ("Office Products", "Office & School Supplies", "Markers & Highlighters", "Erasable Markers")
    erasers = ("Office Products", "Office & School Supplies", "Erasers")
    rows = [(f"Expo Low Odor Dry Erase Markers, Chisel Tip, {n} Pack", "Expo", markers) for n in range(2, 34)]
    rows += [
        (f"Quartet Dry Erase Marker Kit {n}, 4 Markers and 1 Eraser", "Quartet", markers) for n in range(3)
    ]
    rows += [(f"Paper Mate Pink Pearl Eraser, {n} Pack", "Paper Mate", erasers) for n in range(1, 9)]
    items = list(_catalog(rows))
    seqs = {f"u{u:02d}": [items[u % 7].item_id, items[(u * 5 + 3) % len(items)].item_id] for u in range(30)}
    data = Dataset("markers-slice", Catalog(items), Interactions.from_sequences(seqs), source=__file__)
    bot = ShoppingAssistant.from_dataset(data, llm=None, cache_dir=tmp_path, show_progress=False)
    first = bot.chat("I need dry erase markers", session_id="react").constraints.categories
    assert first and all(markers[: len(p)] == p for p in first)
    r = bot.chat("the 2nd one's close but no. oh and eraser", session_id="react")
    assert r.constraints.categories == first
    assert r.items[0].title.startswith("Quartet Dry Erase Marker Kit")
    bot.chat("I need dry erase markers", session_id="new")
    r = bot.chat("oh and erasers too", session_id="new")
    assert erasers in r.constraints.categories
