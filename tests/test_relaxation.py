"""Filters that match nothing: the least certain one is loosened, and the reply says so.

A brand the shop has nowhere in the category asked for, or a budget below every item of it, used
to leave an empty page (and every later turn too, since the state keeps the filter). Now the
recommend planner loosens one group of filters at a time (the brand, a price from "cheaper", the
years, a stated price, last the category) until something matches, and the reply opens with a
sentence, in the shopper's language, about what it let go. What the shopper ruled out ("not X",
disliked or shown items) is never loosened.

Through the public ``ShoppingAssistant.chat`` (real parser, MiniLM index, Chroma, BM25, template
replies) over a small beauty catalog; ``relax`` itself on a ``FilterIndex``."""

from __future__ import annotations

import pytest

from assistant import ShoppingAssistant
from assistant.planning.relax import relax
from retrieval.data.schema import Catalog, Dataset, Interactions, Item
from retrieval.filters import Constraints, FilterIndex

LIPSTICK = ("Beauty", "Makeup", "Lips", "Lipstick")
EYESHADOW = ("Beauty", "Makeup", "Eyes", "Eyeshadow")
NAIL_POLISH = ("Beauty", "Makeup", "Nails", "Nail Polish")
NAIL_TOOLS = ("Beauty", "Tools & Accessories", "Nail Tools", "Nail Files")

_ROWS: list[tuple[str, str, tuple[str, ...], float]] = [
    (
        "SHANY Cosmetics Masterpiece 7 Layers 130 Colors Eyeshadow Palette",
        "SHANY Cosmetics",
        EYESHADOW,
        29.99,
    ),
    ("SHANY Cosmetics Bold Nudes Eyeshadow Palette, 12 Colors", "SHANY Cosmetics", EYESHADOW, 12.5),
    ("Urban Decay Naked Eyeshadow Palette", "Urban Decay", EYESHADOW, 54.0),
    ("Maybelline Color Sensational Creamy Matte Lipstick, Divine Wine", "Maybelline", LIPSTICK, 6.49),
    ("Revlon Super Lustrous Lipstick, Certainly Red", "Revlon", LIPSTICK, 8.99),
    ("L'Oreal Paris Colour Riche Lipstick, Fairest Nude", "L'Oreal Paris", LIPSTICK, 9.99),
    ("NYX Professional Makeup Soft Matte Lip Cream Lipstick, Stockholm", "NYX", LIPSTICK, 5.99),
    ("Covergirl Exhibitionist Lipstick, Hot Passion", "COVERGIRL", LIPSTICK, 7.49),
    ("MAC Matte Lipstick, Ruby Woo", "MAC", LIPSTICK, 19.0),
    ("Burt's Bees 100% Natural Moisturizing Lipstick, Blush Basin", "Burt's Bees", LIPSTICK, 4.38),
    ("e.l.f. Moisturizing Lipstick, Ravishing Rose", "e.l.f.", LIPSTICK, 3.0),
    ("Essie Nail Polish, Ballet Slippers Pink", "Essie", NAIL_POLISH, 7.0),
    ("OPI Nail Lacquer, Big Apple Red", "OPI", NAIL_POLISH, 8.5),
    ("Sally Hansen Hard as Nails Color, Red Carpet", "Sally Hansen", NAIL_POLISH, 3.99),
    ("Revlon Compact Emery Boards Nail File, 10 Count", "Revlon", NAIL_TOOLS, 1.49),
    ("Trim Nail File Emery Board, 12 Pack", "Trim", NAIL_TOOLS, 1.2),
]


def _shop() -> Dataset:
    items = [Item(f"r{i:03d}", t, brand=b, categories=c, price=p) for i, (t, b, c, p) in enumerate(_ROWS)]
    ids = [it.item_id for it in items]
    seqs = {f"u{u:02d}": [ids[u % len(ids)], ids[(u * 7 + 3) % len(ids)]] for u in range(30)}
    return Dataset("relaxation-slice", Catalog(items), Interactions.from_sequences(seqs), source=__file__)


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> ShoppingAssistant:
    return ShoppingAssistant.from_dataset(
        _shop(), llm=None, cache_dir=tmp_path_factory.mktemp("relaxation"), show_progress=False
    )


def _lipsticks(limit: float | None = None) -> list[float]:
    return sorted(p for _, _, c, p in _ROWS if c == LIPSTICK and (limit is None or p <= limit))


def test_a_brand_with_nothing_in_the_category_and_budget_shows_the_category_without_it(shop):
    r = shop.chat("I'd like a lipstick from kinda shany, no more than 25", session_id="shany")
    assert not r.constraints.brands_in  # the filters the cards satisfy...
    assert shop.sessions.open("shany").state.constraints.brands_in == ("SHANY Cosmetics",)  # ...and the words
    assert r.items
    assert all(LIPSTICK[-1] in it.categories and it.price <= 25 for it in r.items)
    assert all(it.brand != "SHANY Cosmetics" for it in r.items)
    assert r.meta["relaxed"] == ["brands_in"]
    assert r.text.startswith(
        "Nothing from SHANY Cosmetics matched in Lipstick under $25, so here are the closest without that brand."
    )
    assert "from SHANY Cosmetics)" not in r.text  # the items' summary names the filters it kept
    # The state keeps the shopper's words; the next turn relaxes again, since it still must.
    r2 = shop.chat("something in red", session_id="shany")
    assert r2.items and all(it.brand != "SHANY Cosmetics" for it in r2.items)
    assert r2.meta["relaxed"] == ["brands_in"] and "Nothing from SHANY Cosmetics" in r2.text


def test_a_budget_below_every_item_of_a_category_shows_its_cheapest_and_says_so(shop):
    r = shop.chat("a lipstick under $2", session_id="cheap")
    fifth = _lipsticks()[4]
    assert r.constraints.price_max == fifth and r.constraints.categories == (LIPSTICK,)
    assert r.items
    assert all(LIPSTICK[-1] in it.categories for it in r.items)  # never the $1.49 nail files
    assert all(it.price <= fifth for it in r.items)  # the cheapest lipsticks, not the $19 one
    assert r.meta["relaxed"] == ["price"]
    assert r.text.startswith(
        f"Nothing in Lipstick is under $2, so I widened the budget to under ${fifth:.2f}."
    )


def test_an_excluded_brand_is_never_relaxed_even_for_a_narrow_page(shop):
    r = shop.chat("lipstick under $5, not e.l.f., not Burt's Bees", session_id="not-x")
    assert "e.l.f." in r.constraints.brands_out  # (Burt's Bees reads as its one lipstick, excluded)
    assert r.items
    assert not {it.brand for it in r.items} & {"e.l.f.", "Burt's Bees"}
    assert all(LIPSTICK[-1] in it.categories for it in r.items)
    assert r.meta["relaxed"] == ["price"]  # the budget was loosened, the ruled-out brands were not
    # Every lipstick but the two excluded ones: still never them.
    r2 = shop.chat("any other lipstick? not e.l.f. or Burt's Bees", session_id="not-x")
    assert not {it.brand for it in r2.items} & {"e.l.f.", "Burt's Bees"}


def test_the_note_is_in_chinese_for_a_chinese_message(shop):
    r = shop.chat("我想要 SHANY 的口红，25美元以内", session_id="zh")
    assert r.language == "zh"
    assert shop.sessions.open("zh").state.constraints.brands_in == ("SHANY Cosmetics",)
    assert r.items and all(it.brand != "SHANY Cosmetics" and it.price <= 25 for it in r.items)
    assert r.meta["relaxed"] == ["brands_in"]
    assert (
        "没有找到符合条件的 SHANY Cosmetics 商品（类别 Lipstick，不超过 $25），以下是去掉该品牌限制后最接近的选择。"
        in r.text
    )


# ---------------------------------------------------------------- relax() on its own
@pytest.fixture(scope="module")
def index() -> FilterIndex:
    return FilterIndex(_shop().catalog)


def _relax(index: FilterIndex, c: Constraints, **kw):
    return relax(
        c,
        lambda x: bool(index.mask(x).any()),
        prices=lambda x: index.price[index.mask(x) & index.has_price].tolist(),
        **kw,
    )


def test_relax_leaves_constraints_that_match_alone(index):
    c = Constraints(categories=(LIPSTICK,), price_max=10.0)
    assert _relax(index, c) == (c, [])


def test_relax_drops_the_brand_before_the_price_and_the_price_before_the_category(index):
    c = Constraints(brands_in=("SHANY Cosmetics",), categories=(LIPSTICK,), price_max=25.0)
    assert _relax(index, c) == (c.merged(brands_in=()), ["brands_in"])
    # A brand with nothing in the category, and a budget below every lipstick: both, in order.
    c = Constraints(brands_in=("SHANY Cosmetics",), categories=(LIPSTICK,), price_max=2.0)
    out, dropped = _relax(index, c)
    assert dropped == ["brands_in", "price"]
    assert out.categories == (LIPSTICK,) and out.price_max == _lipsticks()[4]
    # A ruled-out brand covering the whole category: the category goes last, brands_out stays.
    every = tuple({b for _, b, cat, _ in _ROWS if cat == NAIL_POLISH})
    c = Constraints(brands_out=every, categories=(NAIL_POLISH,), price_max=2.0)
    out, dropped = _relax(index, c)
    assert dropped == ["price", "categories"]
    assert out.brands_out == every and not out.categories


def test_relax_drops_a_relative_price_before_the_years_and_the_years_before_a_stated_price(index):
    lipsticks = [f"r{i:03d}" for i, row in enumerate(_ROWS) if row[2] == LIPSTICK]
    c = Constraints(categories=(LIPSTICK,), price_max=2.0)
    # The years rule out every lipstick but the $19 one; the price came from "cheaper".
    years_out = [i for i in lipsticks if i != "r008"]
    out, dropped = _relax(index, c, relative_price=True, years_out=years_out)
    assert dropped == ["price_relative"]
    assert out.price_max == 19.0 and set(years_out) <= set(out.exclude_items)
    # The same price said outright: the years go first.
    out, dropped = _relax(index, c, years_out=years_out)
    assert dropped == ["years", "price"]
    assert not set(years_out) & set(out.exclude_items)


def test_relax_never_loosens_what_was_ruled_out(index):
    shown = tuple(f"r{i:03d}" for i, row in enumerate(_ROWS) if row[2] == NAIL_TOOLS)
    c = Constraints(categories=(NAIL_TOOLS,), exclude_items=shown, brands_out=("Essie",))
    out, dropped = _relax(index, c)
    assert dropped == ["categories"]
    assert out.exclude_items == shown and out.brands_out == ("Essie",)
    # Nothing left even with every loosenable filter gone: nothing relaxed.
    everything = tuple(f"r{i:03d}" for i in range(len(_ROWS)))
    c = Constraints(brands_in=("OPI",), exclude_items=everything)
    assert _relax(index, c) == (c, [])
