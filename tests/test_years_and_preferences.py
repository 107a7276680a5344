"""Release-year windows said as ranges, films without a year, newer/older against a window, and a
preference stated against something ("a thriller over a horror") (issue #19, seventh round).

"after 1995", "before the 80s", "2012年以后", "90年代以前" were not read (the page showed any
year); a film without a known year met every year window ("a scary movie from 2015" showed
"Untitled movie 267"); "similar but newer" kept the decade asked for before; "nothing too recent"
leaned to recent films; "I prefer a thriller over a horror" filtered both kinds in.

Parsing on the real MovieLens-100K demo vocabulary; the year window end to end through
``ShoppingAssistant.chat`` over a small film catalog (real MiniLM index, Chroma, BM25)."""

from __future__ import annotations

import pytest

from assistant import ShoppingAssistant
from assistant.understanding.parser import parse
from assistant.understanding.vocabulary import CatalogVocabulary
from assistant.understanding.years import OPEN_FROM, OPEN_TO, year_words
from retrieval.data.schema import Catalog, Dataset, Interactions, Item


@pytest.fixture(scope="module")
def movies(movielens_vocabulary) -> CatalogVocabulary:
    return movielens_vocabulary


@pytest.mark.parametrize(
    ("text", "years"),
    [
        ("any good movies after 1995 with lots of action?", (1996, OPEN_TO)),
        ("something older, before 1980 maybe", (OPEN_FROM, 1979)),
        ("a comedy since 1990", (1990, OPEN_TO)),
        ("anything after the 90s", (2000, OPEN_TO)),
        ("westerns made before the 1960s", (OPEN_FROM, 1959)),
        ("1995 or later please", (1995, OPEN_TO)),
        ("1975 or earlier", (OPEN_FROM, 1975)),
        ("pre-1980 sci-fi", (OPEN_FROM, 1979)),
        ("newer than 1990", (1991, OPEN_TO)),
        ("something between 1990 and 1994", (1990, 1994)),
        ("我想看2012年以后的喜剧", (2012, OPEN_TO)),
        ("要老一点的，90年代以前的", (OPEN_FROM, 1989)),
        ("80年代以后的动作片", (1980, OPEN_TO)),
        ("1990年之前的电影", (OPEN_FROM, 1990)),
        # a negated bound is the window's other side (was read as the bound itself)
        ("nothing older than the 80s", (1980, OPEN_TO)),
        ("I don't want anything from before the 70s", (1970, OPEN_TO)),
        ("no movies made after 2000 please", (OPEN_FROM, 2000)),
        ("不要90年代以前的", (1990, OPEN_TO)),
        ("I want something after 1990", (1991, OPEN_TO)),
    ],
)
def test_year_ranges_are_read(movies, text, years):
    p = parse(text, movies, None)
    assert p.years == years and p.price is None


def test_year_ranges_are_no_prices_and_no_windows_in_a_shop_without_years():
    shop = CatalogVocabulary.build({"Canon": 9}, [("Office Electronics", "Printers")])
    p = parse("a printer between 1500 and 2000", shop, None)
    assert p.years is None and p.price is not None and p.price.high == 2000.0
    assert parse("a printer after 2000 dollars", shop, None).years is None


def test_a_window_said_back_in_both_languages():
    assert year_words((2013, OPEN_TO), "en") == "2013 on"
    assert year_words((OPEN_FROM, 1979), "en") == "up to 1979"
    assert year_words((1990, 1999), "en") == "1990–1999"
    assert year_words((2012, OPEN_TO), "zh") == "2012 年及以后"
    assert year_words((2015, 2015), "zh") == "2015 年"


@pytest.mark.parametrize(
    ("text", "era"),
    [
        ("a romantic comedy, nothing too recent", "older"),
        ("not too new please", "older"),
        ("不要太新的", "older"),
        ("nothing too old", "newer"),
        ("something recent", "newer"),
    ],
)
def test_a_negated_newer_word_leans_older(movies, text, era):
    assert parse(text, movies, None).era == era


@pytest.mark.parametrize(
    ("text", "wanted", "ruled_out"),
    [
        ("a thriller that keeps you guessing, I prefer a thriller over a horror", "Thriller", "Horror"),
        ("I would rather watch a comedy than a drama tonight", "Comedy", "Drama"),
        ("比起恐怖片我更想看喜剧", "Comedy", "Horror"),
        ("我想看喜剧而不是动作片", "Comedy", "Action"),
    ],
)
def test_a_kind_preferred_over_another_rules_the_other_out(movies, text, wanted, ruled_out):
    p = parse(text, movies, None)
    assert [c[-1] for c in p.categories_in] == [wanted]
    assert [c[-1] for c in p.categories_out] == [ruled_out]


def test_over_and_than_without_a_preference_stay_what_they_were(movies):
    p = parse("a comedy over 2 hours long", movies, None)
    assert not p.categories_out
    p = parse("more comedies than dramas in the list is fine", movies, None)
    assert not p.categories_out


_FILMS = [
    ("Alien (1979)", ("Movies", "Horror"), 1979),
    ("Halloween (1978)", ("Movies", "Horror"), 1978),
    ("Scream (1996)", ("Movies", "Horror"), 1996),
    ("Scream 2 (1997)", ("Movies", "Horror"), 1997),
    ("The Blob Returns", ("Movies", "Horror"), None),
    ("Blade Runner (1982)", ("Movies", "Sci-Fi"), 1982),
    ("Back to the Future (1985)", ("Movies", "Sci-Fi"), 1985),
    ("The Terminator (1984)", ("Movies", "Sci-Fi"), 1984),
    ("Aliens (1986)", ("Movies", "Sci-Fi"), 1986),
    ("Gattaca (1997)", ("Movies", "Sci-Fi"), 1997),
    ("Contact (1997)", ("Movies", "Sci-Fi"), 1997),
    ("Twelve Monkeys (1995)", ("Movies", "Sci-Fi"), 1995),
    ("Clueless (1995)", ("Movies", "Comedy"), 1995),
    ("Airplane! (1980)", ("Movies", "Comedy"), 1980),
]


def _films() -> Dataset:
    items = [
        Item(f"f{i:02d}", t, categories=c, attributes={} if y is None else {"release_year": y})
        for i, (t, c, y) in enumerate(_FILMS)
    ]
    ids = [it.item_id for it in items]
    seqs = {f"u{u:02d}": [ids[u % len(ids)], ids[(u * 5 + 2) % len(ids)]] for u in range(30)}
    return Dataset("films-slice", Catalog(items), Interactions.from_sequences(seqs), source=__file__)


@pytest.fixture(scope="module")
def films(tmp_path_factory) -> ShoppingAssistant:
    return ShoppingAssistant.from_dataset(
        _films(), llm=None, cache_dir=tmp_path_factory.mktemp("films"), show_progress=False
    )


def _year(bot: ShoppingAssistant, item_id: str) -> int | None:
    return bot.dataset.catalog[item_id].attributes.get("release_year")


def test_a_film_without_a_year_meets_no_year_window_and_an_empty_window_is_said(films):
    r = films.chat("a horror film from 2015", session_id="y1")
    assert r.items and r.meta["relaxed"] == ["years"]  # not "The Blob Returns" alone, as if from 2015
    assert r.text.startswith("Nothing in Horror is from 2015")


def test_an_open_window_keeps_the_films_inside_it(films):
    r = films.chat("sci-fi after 1990", session_id="y2")
    assert r.items and all((_year(films, it.item_id) or 0) > 1990 for it in r.items)
    r = films.chat("科幻片，1985年以前的", session_id="y3")
    assert r.items and all((_year(films, it.item_id) or 9999) <= 1985 for it in r.items)


def test_newer_moves_past_the_decade_in_force(films):
    r = films.chat("a sci-fi film from the 80s", session_id="y4")
    assert r.items and all(1980 <= (_year(films, it.item_id) or 0) <= 1989 for it in r.items)
    r = films.chat("the second one is great, anything similar but newer?", session_id="y4")
    assert films.sessions.open("y4").state.years is None
    assert any((_year(films, it.item_id) or 0) >= 1990 for it in r.items)


@pytest.mark.parametrize(
    ("text", "kinds", "left"),
    [
        ("something for date night", {"Romance", "Comedy"}, ""),
        ("a movie based on a true story", {"Drama", "War", "Documentary"}, "based"),
        ("a twist ending that messes with your head", {"Mystery", "Thriller"}, ""),
        ("I'm into superhero stuff", {"Action", "Adventure", "Sci-Fi", "Fantasy"}, ""),
        ("我想看真人真事改编的", {"Drama", "War", "Documentary"}, ""),
    ],
)
def test_everyday_words_for_films_are_kinds_not_title_words(movies, text, kinds, left):
    """Film titles are names: "date night" searched as words finds *Twelfth Night*, "a true story"
    *Toy Story*. In a catalog of titled works the everyday words that found kinds leave the query,
    and the kinds' names are searched instead."""
    p = parse(text, movies, None)
    assert kinds <= {c[-1] for c in p.soft_categories} and kinds <= set(p.query.split())
    assert not {"night", "true", "story", "twist", "head", "superhero"} & set(p.query.split())
    assert left in p.query


def test_everyday_words_stay_searched_where_titles_describe_the_goods():
    shop = CatalogVocabulary.build(
        {"Cetaphil": 9},
        [("Beauty", "Skin Care", "Face", "Cleansers"), ("Beauty", "Skin Care", "Face", "Moisturizers")],
    )
    p = parse("a cleanser for oily skin", shop, None)
    assert "oily" in p.query.split()


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("loved Clueless (1995), Heat (1995) and Freddy vs. Jason (2003)", "recommend"),
        ("Show Me Love (1998) was great", "recommend"),
        ("compare Toy Story (1995) vs Heat (1995)", "compare"),
        ("Toy Story vs Heat", "compare"),
    ],
)
def test_cue_words_inside_a_titled_work_are_its_name(text, intent):
    """ "vs." in "Freddy vs. Jason (2003)" is no request to compare, "Show Me" no search."""
    from assistant.understanding.intents import classify_intent

    assert classify_intent(text).intent == intent


def test_chinese_dollar_slang_is_a_price_and_chat_spelling_is_no_brand():
    """ "20刀以内" (刀: colloquial dollars) was no price, its "20" matched "20 Ounce" titles; "a gud
    shampoo" (chat spelling of good) was a filter on the brand Gud."""
    shop = CatalogVocabulary.build(
        {"Gud": 3, "Suave": 9},
        [("Beauty", "Hair Care", "Shampoos"), ("Beauty", "Skin Care", "Face", "Creams & Moisturizers")],
    )
    p = parse("我想要一个moisturizer，20刀以内", shop, None)
    assert p.price is not None and (p.price.op, p.price.high, p.price.currency) == ("max", 20.0, "USD")
    p = parse("need a gud shampoo for oily hair", shop, None)
    assert not p.brands_in and "gud" not in p.query.split()
    assert parse("something by Gud", shop, None).brands_in == ("Gud",)
