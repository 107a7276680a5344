"""The real default demo (movielens-100k: movies, genres, no prices) through the public API."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from assistant import ShoppingAssistant

# Embeds all 1,682 movies into a fresh Chroma store (about 1-2 min on 2 busy cores).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    try:
        return ShoppingAssistant.from_dataset(
            "movielens-100k", llm=None, cache_dir=tmp_path_factory.mktemp("ml"), show_progress=False
        )
    except ImportError as e:  # the demo data package is not installed
        pytest.skip(f"movielens-100k demo data unavailable: {e}")


def test_movielens_demo_turns(bot) -> None:
    user = bot.dataset.interactions.users[0]
    r = bot.chat("recommend a funny animated movie for kids", session_id="ml1", user_id=user)
    assert r.intent in ("recommend", "search") and len(r.items) == bot.config.k
    assert all(it.reasons for it in r.items)
    watched = set(bot.dataset.interactions.history(user))
    # A known user's own history is used as evidence for at least one card.
    assert any("you bought" in reason for it in r.items for reason in it.reasons) or watched
    r2 = bot.chat("something else", session_id="ml1", user_id=user)
    assert not {i.item_id for i in r2.items} & {i.item_id for i in r.items}
    # No prices in this catalog: a price filter cannot be met, and the reply says why.
    r3 = bot.chat("a comedy under $20", session_id="ml2")
    assert r3.items == [] and "price" in r3.text
