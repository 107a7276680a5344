""" "More like the first one" / "like the NYX crayon" reaches the items like it wherever they are in the catalog (issue #19):
the words said so far retrieve a pool from one corner of a large category, and the items like the
one pointed at joined the ranking only if they were in that pool. The anchor's nearest items under
the same filters now join it (``AssistantConfig.anchor_pool``), and pointing at an item weighs
more than the words' pool order (``RankerWeights.feedback``).

Through the public ``ShoppingAssistant.chat`` (real MiniLM, Chroma, BM25) with a retrieval pool of
four and no collaborative candidates, so that the category is "large" against the pool."""

from __future__ import annotations

from assistant import ShoppingAssistant
from retrieval.data.schema import Catalog, Dataset, Interactions, Item

LIPSTICK = ("Beauty", "Makeup", "Lips", "Lipstick")


def _bot(tmp_path, anchor_pool: int) -> ShoppingAssistant:
    rows = [(f"Revlon Super Lustrous Lipstick, Shade {n}", "Revlon") for n in range(6)]
    rows += [(f"NYX Velvet Matte Lipstick Crayon, Color {n}", "NYX") for n in range(6)]
    rows += [(f"Burt's Bees Tinted Lip Balm Lipstick, Tint {n}", "Burt's Bees") for n in range(6)]
    items = [
        Item(f"l{i:02d}", t, brand=b, categories=LIPSTICK, price=5.0 + i) for i, (t, b) in enumerate(rows)
    ]
    # The Revlon line sells best, so a plain "lipstick" page is Revlon.
    seqs = {f"u{u:02d}": [items[u % 6].item_id, items[(u * 7) % len(items)].item_id] for u in range(40)}
    data = Dataset("lipstick-slice", Catalog(items), Interactions.from_sequences(seqs), source=__file__)
    return ShoppingAssistant.from_dataset(
        data,
        llm=None,
        cache_dir=tmp_path,
        show_progress=False,
        retrieve_pool=4,
        cf_pool=0,
        anchor_pool=anchor_pool,
    )


def _nyx_after_pointing(bot: ShoppingAssistant) -> int:
    """Show lipsticks, point at a NYX one; how many of the next page are NYX crayons."""
    first = bot.chat("I need a lipstick", session_id="s")
    assert all(it.brand == "Revlon" for it in first.items)  # the best sellers fill the words' pool
    r = bot.chat("more like the NYX Velvet Matte Lipstick Crayon, Color 3 please", session_id="s")
    return sum(it.brand == "NYX" for it in r.items)


def test_pointing_at_an_item_brings_its_look_alikes_from_outside_the_pool(tmp_path):
    assert _nyx_after_pointing(_bot(tmp_path, anchor_pool=50)) >= 2


def test_without_the_anchor_pool_only_the_words_pool_is_ranked(tmp_path):
    assert _nyx_after_pointing(_bot(tmp_path, anchor_pool=0)) == 0
