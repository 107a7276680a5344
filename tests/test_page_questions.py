"""Superlative questions about the page on show ("which of these is the cheapest", "哪个最新"): the
reply names the item that wins on the attribute asked and its value, the page stays as it was, a
catalog without the attribute is said so, and "cheaper", compare and details still work after.

Through the public ``ShoppingAssistant.chat`` (real parser, MiniLM index, Chroma, BM25, template
replies) over small catalogs shaped like the two demo datasets (films: release years, ratings, no
prices; dresses: ratings, no prices or years) and the priced beauty fixture of ``conftest``."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from assistant import ShoppingAssistant
from assistant.sessions import SessionStore
from assistant.understanding.superlatives import Superlative, page_superlative
from retrieval.data.schema import Catalog, Dataset, Interactions, Item

# Small catalogs shaped like the two demos (building the demos' indexes took ~100 s of the
# default run): films with release years, MovieLens-style ratings and genres, no prices; dresses
# with ratings and no prices or years. Popularity comes from the interactions below.
_FILMS: list[tuple[str, str, int, float]] = [
    ("Blade Runner (1982)", "Sci-Fi", 1982, 4.1),
    ("Back to the Future (1985)", "Sci-Fi", 1985, 3.8),
    ("The Terminator (1984)", "Sci-Fi", 1984, 3.9),
    ("Aliens (1986)", "Sci-Fi", 1986, 4.0),
    ("Return of the Jedi (1983)", "Sci-Fi", 1983, 4.0),
    ("Brazil (1985)", "Sci-Fi", 1985, 3.9),
    ("Gattaca (1997)", "Sci-Fi", 1997, 3.7),
    ("Groundhog Day (1993)", "Comedy", 1993, 3.6),
    ("Clueless (1995)", "Comedy", 1995, 3.5),
    ("The Birdcage (1996)", "Comedy", 1996, 3.4),
    ("Mrs. Doubtfire (1993)", "Comedy", 1993, 3.2),
    ("Dave (1993)", "Comedy", 1993, 3.6),
    ("Airplane! (1980)", "Comedy", 1980, 3.8),
]
_DRESSES: list[tuple[str, float]] = [
    ("Flowy summer dress with floral print", 4.3),
    ("Linen summer dress, sleeveless", 4.1),
    ("Casual summer maxi dress", 4.3),
    ("Cotton sundress for summer days", 3.9),
    ("Wrap dress, light fabric, summer", 4.0),
    ("Knit sweater dress for winter", 4.5),
    ("Denim jacket, cropped", 4.2),
]


def _shop(name: str, items: list[Item]) -> Dataset:
    ids = [it.item_id for it in items]
    seqs = {f"u{u:02d}": [ids[(u * j + j) % len(ids)] for j in range(1, 4)] for u in range(30)}
    return Dataset(name, Catalog(items), Interactions.from_sequences(seqs), currency=None, source=__file__)


@pytest.fixture(scope="module")
def movies(tmp_path_factory) -> ShoppingAssistant:
    items = [
        Item(
            f"m{i:02d}", t, categories=("Movies", g), rating=r, attributes={"release_year": y, "genres": [g]}
        )
        for i, (t, g, y, r) in enumerate(_FILMS)
    ]
    return ShoppingAssistant.from_dataset(
        _shop("films-slice", items), llm=None, cache_dir=tmp_path_factory.mktemp("films"), show_progress=False
    )


@pytest.fixture(scope="module")
def clothing(tmp_path_factory) -> ShoppingAssistant:
    items = [
        Item(
            f"c{i:02d}",
            t,
            categories=("Clothing", "Dresses" if "dress" in t.lower() else "Jackets"),
            rating=r,
        )
        for i, (t, r) in enumerate(_DRESSES)
    ]
    return ShoppingAssistant.from_dataset(
        _shop("dresses-slice", items),
        llm=None,
        cache_dir=tmp_path_factory.mktemp("dresses"),
        show_progress=False,
    )


@pytest.fixture(scope="module")
def beauty(beauty_index, tmp_path_factory) -> ShoppingAssistant:
    """The priced beauty fixture (conftest's shared index), for prices."""
    return ShoppingAssistant(beauty_index, None, SessionStore(tmp_path_factory.mktemp("page-q-sessions")))


def _ids(reply) -> list[str]:
    return [it.item_id for it in reply.items]


def _winners(bot: ShoppingAssistant, ids: list[str], value, highest: bool) -> list[str]:
    """The ids of ``ids`` with the best known ``value(item)``."""
    known = {i: v for i in ids if (v := value(bot.catalog[i])) is not None}
    best = (max if highest else min)(known.values())
    return [i for i, v in known.items() if v == best]


def _year(item: Item) -> int | None:
    return item.attributes.get("release_year")


def _asks_about_the_page(bot: ShoppingAssistant, sid: str, page: list[str], message: str):
    r = bot.chat(message, session_id=sid)
    assert r.intent == "compare", (message, r.intent, r.text)
    assert _ids(r) == page, message  # the same page, in the same order
    return r


# ---------------------------------------------------------------- reading the question
@pytest.mark.parametrize(
    ("text", "attribute", "highest"),
    [
        ("which of these is the cheapest", "price", False),
        ("which one is the newest?", "year", True),
        ("what's the most popular of those", "popularity", True),
        ("which is the best rated", "rating", True),
        ("the cheapest one?", "price", False),
        ("which of the ones you showed is the least expensive?", "price", False),
        ("priciest?", "price", True),
        ("哪个最便宜", "price", False),
        ("这几个里面哪个最新", "year", True),
        ("哪一款最受欢迎", "popularity", True),
        ("评分最高的是哪个", "rating", True),
        ("最早的是哪部？", "year", False),
    ],
)
def test_a_superlative_about_the_page_is_read(text: str, attribute: str, highest: bool) -> None:
    asked = page_superlative(text)
    assert asked is not None and (asked.attribute, asked.highest) == (attribute, highest)


@pytest.mark.parametrize(
    "text",
    [
        "what's the cheapest moisturizer",  # no page pointed at: a search for low prices
        "cheapest",
        "newest please",
        "show me the newest ones",
        "is the cheapest one vegan?",  # a question about that item: details
        "the cheapest lipstick you have",
        "你们店里最便宜的是哪个",
        "最新的电影有哪些",
        "something cheaper",
        "which is better, the first or the second",
        "compare the first two",
    ],
)
def test_other_turns_are_no_page_superlative(text: str) -> None:
    assert page_superlative(text) is None


# ---------------------------------------------------------------- movies: years, popularity, ratings
def test_which_of_these_is_the_newest_names_it_and_keeps_the_page(movies) -> None:
    sid = "ml-newest"
    first = movies.chat("a sci-fi film from the 80s", session_id=sid)
    page = _ids(first)
    assert len(page) >= 3
    r = _asks_about_the_page(movies, sid, page, "which of these is the newest?")
    winners = _winners(movies, page, _year, highest=True)
    assert all(movies.catalog[i].title in r.text for i in winners)
    assert str(_year(movies.catalog[winners[0]])) in r.text
    assert r.constraints == first.constraints  # a question, not a new wish ("newest" is no era lean)
    r = _asks_about_the_page(movies, sid, page, "which one is the oldest")
    assert all(movies.catalog[i].title in r.text for i in _winners(movies, page, _year, highest=False))


def test_most_popular_and_best_rated_in_english_and_chinese(movies) -> None:
    sid = "ml-popular"
    page = _ids(movies.chat("a sci-fi film from the 80s", session_id=sid))
    r = _asks_about_the_page(movies, sid, page, "what's the most popular of those")
    top = _winners(movies, page, lambda it: movies.index.item_count(it.item_id), highest=True)
    assert movies.catalog[top[0]].title in r.text and str(movies.index.item_count(top[0])) in r.text
    assert "shoppers" in r.text
    r = _asks_about_the_page(movies, sid, page, "哪一款最受欢迎")
    assert movies.catalog[top[0]].title in r.text and f"第{page.index(top[0]) + 1}个" in r.text
    assert r.language == "zh" and "位顾客" in r.text
    r = _asks_about_the_page(movies, sid, page, "这几个里面哪个最新")
    newest = _winners(movies, page, _year, highest=True)
    assert movies.catalog[newest[0]].title in r.text and "年上映" in r.text
    r = _asks_about_the_page(movies, sid, page, "which is the best rated")
    best = _winners(movies, page, lambda it: round(it.rating, 1), highest=True)
    assert all(movies.catalog[i].title in r.text for i in best)


def test_a_movie_catalog_says_it_has_no_prices(movies) -> None:
    sid = "ml-prices"
    page = _ids(movies.chat("a comedy from the 90s", session_id=sid))
    r = _asks_about_the_page(movies, sid, page, "which of these is the cheapest?")
    assert "no prices" in r.text and "$" not in r.text
    r = _asks_about_the_page(movies, sid, page, "哪个最便宜")
    assert "没有价格信息" in r.text


def test_which_of_the_first_three_asks_about_those_three(movies) -> None:
    sid = "ml-first-three"
    page = _ids(movies.chat("a sci-fi film from the 80s", session_id=sid))
    r = _asks_about_the_page(movies, sid, page, "which of the first three is the newest?")
    winners = _winners(movies, page[:3], _year, highest=True)
    assert all(movies.catalog[i].title in r.text for i in winners)
    assert all(movies.catalog[i].title not in r.text for i in page[3:])


# ---------------------------------------------------------------- clothing: ratings, no prices or years
def test_clothing_best_rated_ties_are_named_and_missing_attributes_are_said(clothing) -> None:
    sid = "cl-rated"
    page = _ids(clothing.chat("a summer dress", session_id=sid))
    assert len(page) >= 3
    r = _asks_about_the_page(clothing, sid, page, "which is the best rated?")
    best = _winners(clothing, page, lambda it: round(it.rating, 1), highest=True)
    assert all(clothing.catalog[i].title in r.text for i in best)
    assert ("tie for" in r.text) == (len(best) > 1)
    r = _asks_about_the_page(clothing, sid, page, "which one is the newest?")
    assert "no release years" in r.text
    r = _asks_about_the_page(clothing, sid, page, "the cheapest one?")  # before: "which one do you mean?"
    assert "no prices" in r.text
    r = _asks_about_the_page(clothing, sid, page, "哪个评分最高")
    assert r.language == "zh" and "评分最高" in r.text


def test_details_still_work_after_a_page_question(clothing) -> None:
    sid = "cl-details"
    page = _ids(clothing.chat("a summer dress", session_id=sid))
    _asks_about_the_page(clothing, sid, page, "which is the best rated?")
    r = clothing.chat("is the second one machine washable?", session_id=sid)
    assert r.intent == "details" and _ids(r) == [page[1]]


# ---------------------------------------------------------------- prices (the beauty fixture)
def test_cheapest_and_priciest_of_the_page_in_english_and_chinese(beauty) -> None:
    sid = "bf-prices"
    page = _ids(beauty.chat("a moisturizer", session_id=sid))
    price = lambda it: it.price  # noqa: E731
    cheapest = _winners(beauty, page, price, highest=False)[0]
    priciest = _winners(beauty, page, price, highest=True)[0]
    r = _asks_about_the_page(beauty, sid, page, "which of these is the cheapest?")
    assert beauty.catalog[cheapest].title in r.text and f"${beauty.catalog[cheapest].price:.2f}" in r.text
    assert f"(#{page.index(cheapest) + 1})" in r.text
    r = _asks_about_the_page(beauty, sid, page, "the cheapest one?")
    assert beauty.catalog[cheapest].title in r.text
    r = _asks_about_the_page(beauty, sid, page, "最贵的是哪个？")
    assert beauty.catalog[priciest].title in r.text and "最贵" in r.text
    r = _asks_about_the_page(beauty, sid, page, "which is the newest?")
    assert "no release years" in r.text


def test_cheaper_after_a_page_question_is_below_the_page(beauty) -> None:
    sid = "bf-cheaper"
    page = _ids(beauty.chat("a moisturizer", session_id=sid))
    floor = min(beauty.catalog[i].price for i in page)
    _asks_about_the_page(beauty, sid, page, "哪个最便宜")
    r = beauty.chat("something cheaper", session_id=sid)
    assert r.intent == "recommend" and r.items
    assert all(it.price is not None and it.price <= floor for it in r.items)


def test_compare_after_a_page_question_compares_the_page(beauty) -> None:
    sid = "bf-compare"
    page = _ids(beauty.chat("a moisturizer", session_id=sid))
    _asks_about_the_page(beauty, sid, page, "which one is the most expensive")
    r = beauty.chat("compare the first two", session_id=sid)
    assert r.intent == "compare" and _ids(r) == page[:2] and r.comparison is not None
    r = beauty.chat("which is better, the first or the second", session_id=sid)
    assert r.intent == "compare" and _ids(r) == page[:2]


def test_show_me_the_cheapest_one_points_at_it(beauty) -> None:
    sid = "bf-show"
    page = _ids(beauty.chat("a moisturizer", session_id=sid))
    cheapest = _winners(beauty, page, lambda it: it.price, highest=False)[0]
    r = _asks_about_the_page(beauty, sid, page, "show me the cheapest one")
    assert beauty.catalog[cheapest].title in r.text


def test_with_nothing_shown_the_cheapest_is_a_search_then_a_page_question(beauty) -> None:
    sid = "bf-search-first"
    first = beauty.chat("what's the cheapest moisturizer", session_id=sid)
    assert first.intent in ("recommend", "search") and first.items
    assert all("Moisturizers" in it.categories for it in first.items)
    page = _ids(first)
    r = _asks_about_the_page(beauty, sid, page, "which of these is the cheapest")
    cheapest = _winners(beauty, page, lambda it: it.price, highest=False)[0]
    assert beauty.catalog[cheapest].title in r.text


def test_ties_and_items_without_a_price_are_said_honestly(beauty) -> None:
    page = [
        Item("x1", "Plain Balm", price=None),
        Item("x2", "Rose Balm", price=7.0),
        Item("x3", "Mint Balm", price=7.0),
        Item("x4", "Shea Balm", price=9.5),
    ]
    planner = beauty.router.superlative
    cheapest = Superlative("price", False)
    en = planner.answer(cheapest, page)
    assert (
        en
        == "Rose Balm (#2) and Mint Balm (#3) tie for cheapest (at $7). No prices listed for Plain Balm (#1)."
    )
    zh = planner.answer(cheapest, page, lang="zh")
    assert (
        "Rose Balm（第2个）和Mint Balm（第3个）" in zh
        and "并列最便宜" in zh
        and "Plain Balm（第1个） 没有价格信息" in zh
    )
    only = planner.answer(Superlative("price", True), page, page[:2])
    assert (
        only
        == "Rose Balm (#2) is the only one of these with prices listed, at $7. No prices listed for Plain Balm (#1)."
    )
    assert "no prices for any of these" in planner.answer(cheapest, page, page[:1])
