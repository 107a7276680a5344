"""Clarifying questions go with the items, never instead of them, and fit the catalog.

A new shopper whose first message has anything searchable (WebShop-style requests: a product
type plus attributes, sizes, colours or a budget) gets at least three items; a bare product type
gets items and at most one short question naming facets that split the candidates; a request
with nothing to search ("recommend something", "推荐一下") gets what most shoppers have and the
catalog's opening question after them (asked once), a greeting ("hi") the question alone. A
catalog of titles (movies: no brands, prices or colours) never asks about brand, colour or budget.
The phrasings below were written for these tests in the style of crowd-written shopping
requests; none is copied from a data set.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from assistant_catalog import make_dataset

from assistant import ShoppingAssistant
from assistant.index import AssistantIndex
from assistant.sessions import SessionStore
from bench.simulator import Simulator
from retrieval.data.schema import Catalog, Dataset, Interactions, Item

COLD_REQUESTS = [
    "i am looking for a volumizing shampoo that is safe for color treated hair",
    "i need a waterproof mascara that doesn't clump, in black please",
    "find me a fragrance free face cream for sensitive skin, about 1.7 ounces",
    "i want a long wear matte lipstick in a nude shade",
    "can you get me a gentle foaming cleanser that removes makeup, less than 30 dollars",
    "i'd like a leave-in conditioner for frizzy curly hair, a pack of two",
    "i need something to keep my dry skin soft all day",
    "looking for a night cream with no parabens that is good for aging skin",
    "我想要一款适合敏感肌的洁面乳",
]
EMPTY = ["", "hi", "help me shop", "recommend something", "what do you have?", "推荐一下"]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "reliability-cache"
    return AssistantIndex.build_or_load(make_dataset(), cache_dir=cache, show_progress=False)


@pytest.fixture(scope="module")
def bot(index, tmp_path_factory):
    b = ShoppingAssistant(index, None, SessionStore(tmp_path_factory.mktemp("clarify-sessions")))
    yield b
    b.close()


@pytest.mark.parametrize("message", COLD_REQUESTS)
def test_cold_requests_with_content_get_items(bot, message) -> None:
    reply = bot.chat(message, session_id=f"cold-{hash(message)}")
    assert reply.intent in ("recommend", "search"), (message, reply.text)
    assert len(reply.items) >= 3, (message, reply.text)


def test_bare_type_gets_items_and_one_question_after_them(bot) -> None:
    reply = bot.chat("lipstick", session_id="bare-type")
    assert reply.intent in ("recommend", "search") and len(reply.items) >= 3
    assert reply.question is not None and reply.text.endswith(reply.question)
    assert reply.question.count("?") == 1
    assert any(w in reply.question for w in ("budget", "brand")), reply.question
    again = bot.chat("lipstick", session_id="bare-type")  # once per topic
    assert again.question is None and again.items
    known = bot.dataset.interactions.users[0]
    assert bot.chat("lipstick", session_id="known", user_id=known).question is None


def test_nothing_to_search_gets_popular_items_and_the_opening_question(bot) -> None:
    for message in EMPTY:
        reply = bot.chat(message, session_id=f"empty-{hash(message)}")
        assert reply.text.strip(), message
        if reply.intent in ("clarify", "smalltalk"):  # "", "hi": no request, nothing shown
            assert reply.items == [], message
        else:  # a request for recommendations gets some, with the question after them
            assert reply.intent in ("recommend", "search") and len(reply.items) >= 3, message
            assert reply.question and reply.text.endswith(reply.question), message
    assert bot.chat("hi", session_id="hello").items == []
    reply = bot.chat("recommend something", session_id="empty-then-type")
    assert reply.items and reply.question is not None
    assert "budget" in reply.question and "brand" in reply.question
    popular = sorted(bot.catalog.ids, key=lambda i: -bot.index.item_count(i))[:3]
    assert set(popular) & {it.item_id for it in reply.items}  # what most shoppers have, not title words
    again = bot.chat("what else do you have?", session_id="empty-then-type")
    assert again.question is None and again.items  # asked once per topic


def _movies() -> Dataset:
    genres = ["Drama", "Comedy", "Action", "Thriller"]
    words = ["Red", "Blue", "Black", "White", "Night", "River", "City", "Summer"]
    items = [
        Item(
            f"m{i}",
            f"{words[i % len(words)]} {['Road', 'Heat', 'Sky', 'Rain', 'Song'][i % 5]} ({1950 + 5 * i})",
            categories=("Movies", genres[i % len(genres)]),
            description=f"A {genres[i % len(genres)].lower()} film. Released {1950 + 5 * i}.",
            attributes={"release_year": 1950 + 5 * i},
        )
        for i in range(10)
    ]
    rows = [
        {"user_id": f"u{u}", "item_id": f"m{(u + j) % 10}", "timestamp": 1000 + 10 * u + j, "rating": 4.0}
        for u in range(6)
        for j in range(3)
    ]
    catalog = Catalog(items)
    return Dataset("movies-fixture", catalog, Interactions.from_records(rows, catalog), currency=None)


def test_a_movie_catalog_never_asks_about_brand_colour_or_budget(tmp_path) -> None:
    ds = _movies()
    index = AssistantIndex.build_or_load(ds, cache_dir=tmp_path / "cache", show_progress=False)
    bot = ShoppingAssistant(index, None, SessionStore(tmp_path / "sessions"))
    try:
        asked = []
        for n, message in enumerate(["a movie", "recommend something", "something to watch tonight", "一部电影"]):
            reply = bot.chat(message, session_id=f"mv{n}")
            if reply.question:
                asked.append(reply.question)
        assert asked, "a vague first request on a cold catalog should ask something"
        for q in asked:
            assert not any(w in q.lower() for w in ("brand", "colour", "color", "budget", "品牌", "颜色", "预算")), q
        assert any(w in " ".join(asked) for w in ("kind", "decade", "类型", "年代"))
    finally:
        bot.close()


def test_simulated_shopper_reacts_to_items_and_answers_the_question(bot) -> None:
    """A reply with items and a question: the describe shopper both reacts and answers."""
    shopper = Simulator(bot.catalog, seed=0).shopper("u1", [], "B400")
    shopper.next_turn(None)
    shown = [SimpleNamespace(item_id=i) for i in ("B401", "B402", "B403")]
    question = "Do you have a budget or a brand in mind? That would narrow these down."
    said = shopper.next_turn(SimpleNamespace(intent="recommend", text="Here. " + question, items=shown,
                                             question=question))
    assert said.answered_clarify and "reaction" in said.facets, said
