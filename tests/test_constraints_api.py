"""The public constraint API (``set_constraints`` / ``get_constraints`` / ``clear_constraints``)
that the UI's chips and budget field use: typed, validated against the catalog, persisted, and
honoured by the next chat turn. Real index (MiniLM, Chroma in a tmp dir), template replies."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from assistant_catalog import make_dataset

from assistant import ShoppingAssistant
from assistant.index import AssistantIndex
from assistant.sessions import SessionOwnershipError, SessionStore
from assistant.ui.engines import set_session_constraints
from retrieval.filters import Constraints


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return AssistantIndex.build_or_load(
        make_dataset(), cache_dir=tmp_path_factory.mktemp("cache"), show_progress=False
    )


def bot_at(index, root) -> ShoppingAssistant:
    return ShoppingAssistant(index, None, SessionStore(root))


def test_set_get_clear_and_next_turn_honours_them(index, tmp_path) -> None:
    bot = bot_at(index, tmp_path / "s")
    assert bot.get_constraints("c1") == Constraints()
    r1 = bot.chat("a moisturizer under $40", session_id="c1")
    assert r1.constraints.price_max == 40
    # Keyword changes apply on top of the current constraints; brands get the catalog's spelling.
    got = bot.set_constraints("c1", price_max=15, brands_out=["olay"])
    assert got.price_max == 15 and got.brands_out == ("Olay",)
    assert got.categories == r1.constraints.categories  # untouched fields stay
    assert bot.get_constraints("c1") == got
    r2 = bot.chat("show me more", session_id="c1")
    assert r2.constraints.price_max == 15 and "Olay" in r2.constraints.brands_out
    assert r2.items, "the fixture has moisturizers under $15"
    for it in r2.items:
        item = bot.catalog[it.item_id]
        assert item.price is not None and item.price <= 15 and item.brand != "Olay"
    # Removing the budget (the chip's x) lifts it for the next turn.
    assert bot.set_constraints("c1", price_max=None).price_max is None
    r3 = bot.chat("more please", session_id="c1")
    assert r3.constraints.price_max is None and r3.constraints.brands_out == ("Olay",)
    # A whole Constraints replaces everything; clear empties it.
    whole = Constraints(categories=(("Beauty", "Hair Care"),), price_min=5.0, price_max=30.0)
    assert bot.set_constraints("c1", whole) == whole
    r4 = bot.chat("something nice", session_id="c1")
    assert r4.items and all(
        bot.catalog[i.item_id].categories[:2] == ("Beauty", "Hair Care")
        and 5 <= bot.catalog[i.item_id].price <= 30
        for i in r4.items
    )
    assert bot.clear_constraints("c1") == Constraints()
    assert bot.get_constraints("c1") == Constraints()


def test_persists_across_reinstantiation_and_ui_engine_uses_it(index, tmp_path) -> None:
    bot = bot_at(index, tmp_path / "p")
    applied = set_session_constraints(
        bot, "ui", Constraints(price_max=22.0, brands_in=("burt's bees",)), "u9"
    )
    assert applied.brands_in == ("Burt's Bees",) and applied.price_max == 22
    bot.close()
    again = bot_at(index, tmp_path / "p")
    assert again.get_constraints("ui") == applied
    reply = again.chat("a shampoo", session_id="ui", user_id="u9")
    assert all(it.brand == "Burt's Bees" and it.price <= 22 for it in reply.items)
    assert reply.items and reply.constraints.price_max == 22
    # The session belongs to u9: another user cannot rewrite its filters.
    with pytest.raises(SessionOwnershipError):
        again.set_constraints("ui", price_max=5, user_id="someone-else")
    assert again.get_constraints("ui") == reply.constraints


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"price_max": -3}, "price_max must be"),
        ({"price_max": "cheap"}, "price_max must be a number"),
        ({"price_max": True}, "price_max must be a number"),
        ({"price_min": 30, "price_max": 10}, "price_min 30"),
        ({"brands_out": ["Nonexistent Brand Co"]}, "is not a brand in this catalog"),
        ({"categories": ["Garden > Tools"]}, "is not a category path"),
        ({"exclude_items": ["no-such-item"]}, "unknown item ids"),
        ({"colour": "red"}, "unknown constraint fields ['colour']"),
        ({"in_stock": "yes"}, "in_stock must be"),
    ],
)
def test_invalid_values_give_a_clear_error_and_save_nothing(index, tmp_path, kwargs, message) -> None:
    bot = bot_at(index, tmp_path / "v")
    before = bot.set_constraints("bad", price_max=20)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        bot.set_constraints("bad", **kwargs)
    assert bot.get_constraints("bad") == before


def test_string_forms_are_read_as_one_value(index, tmp_path) -> None:
    bot = bot_at(index, tmp_path / "f")
    got = bot.set_constraints("f", brands_out="Revlon", categories="Beauty > Makeup", price_max="$12.50")
    assert got.brands_out == ("Revlon",)
    assert got.categories == (("Beauty", "Makeup"),)
    assert got.price_max == 12.5
    with pytest.raises(ValueError, match="unknown constraint fields"):
        bot.set_constraints("f", {"price_cap": 3})


def test_excluding_adds_ids_once_in_order_and_keeps_the_rest() -> None:
    c = Constraints(price_max=20.0, brands_in=("OPI",), exclude_items=("a", "b"))
    out = c.excluding(["b", "c", "a", "d", "c"])
    assert out.exclude_items == ("a", "b", "c", "d")
    assert out.merged(exclude_items=()) == c.merged(exclude_items=())  # nothing else changes
    assert c.excluding(["a"]) is c and c.exclude_items == ("a", "b")
