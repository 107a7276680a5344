"""The LLM listwise re-ranker as a switchable stage of the assistant (issue #5, item 4).

Real components: the synthetic Beauty fixture, MiniLM + Chroma in a tmp dir, the tiny
smollm2-135m model scoring letters A-T in one forward pass (llm.reranker.LLMReranker).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from assistant_catalog import make_dataset

from assistant import ShoppingAssistant
from assistant.index import AssistantIndex
from assistant.sessions import SessionStore
from retrieval.filters import Constraints
from retrieval.ranker import Feedback

TINY = "smollm2-135m"


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return AssistantIndex.build_or_load(
        make_dataset(), cache_dir=tmp_path_factory.mktemp("cache"), show_progress=False
    )


@pytest.fixture(scope="module")
def reranker():
    from llm.chat_model import LocalChatModel
    from llm.reranker import LLMReranker

    return LLMReranker.from_chat_model(LocalChatModel(model_name=TINY, threads=1))


def _shopper(bot: ShoppingAssistant) -> str:
    users = sorted(bot.dataset.interactions.users, key=lambda u: -len(bot.history(u)))
    return users[0]


def _fused(bot: ShoppingAssistant, user: str, query: str):
    """The fused ranking the recommend path re-ranks, for the same user and query."""
    hist = bot.history(user)
    cands = bot.index.retriever.search(query, Constraints(), k=50)
    return hist, bot.router.recommend.ranker.rank(
        cands,
        user_or_history=hist,
        scorer=bot.index.scorer,
        popularity=bot.index.popularity,
        feedback=Feedback(),
    )


def test_rerank_follows_the_llm_scores_and_keeps_contributions_honest(index, tmp_path, reranker) -> None:
    bot = ShoppingAssistant(index, None, SessionStore(tmp_path / "s"), reranker=reranker)
    user = _shopper(bot)
    hist, ranked = _fused(bot, user, "moisturizer")
    assert len(ranked) >= 20
    top = [r.item_id for r in ranked[:20]]
    scores = reranker.rerank(hist, top, bot.catalog)
    again = reranker.rerank(hist, top, bot.catalog)
    np.testing.assert_array_equal(scores, again)  # deterministic: one forward pass, letter logits
    out, moves = bot.router.recommend._llm_rerank(ranked, hist)
    expected = [top[j] for j in np.argsort(-scores, kind="stable")]
    assert [r.item_id for r in out[:20]] == expected
    assert [r.item_id for r in out[20:]] == [r.item_id for r in ranked[20:]]  # below the top-20: untouched
    assert expected != top, "the tiny model should reorder something, or this test proves little"
    old = {r.item_id: r for r in ranked}
    for r in out[:20]:
        assert r.score == pytest.approx(sum(r.contributions.values()), abs=1e-9)
        rest = {k: v for k, v in r.contributions.items() if k != "llm_rerank"}
        assert rest == old[r.item_id].contributions
        assert r.score == pytest.approx(old[r.item_id].score + r.contributions["llm_rerank"], abs=1e-9)
    # Scores keep their values (the slots), so diversity sees the same scale.
    assert sorted(r.score for r in out[:20]) == pytest.approx(sorted(r.score for r in ranked[:20]))
    assert moves[expected[0]][1] == 0


def test_chat_turn_with_rerank_names_it_in_reasons_and_meets_constraints(index, tmp_path, reranker) -> None:
    on = ShoppingAssistant(index, None, SessionStore(tmp_path / "on"), reranker=reranker)
    off = ShoppingAssistant(index, None, SessionStore(tmp_path / "off"))
    user = _shopper(on)
    msg = "a moisturizer under $45, not Olay"
    r_on = on.chat(msg, session_id="r1", user_id=user)
    r_off = off.chat(msg, session_id="r1", user_id=user)
    assert r_on.intent == r_off.intent == "recommend"
    assert r_on.meta["timings"]["rerank_s"] > 0 and "rerank_s" not in r_off.meta["timings"]
    for reply in (r_on, r_off):
        for it in reply.items:
            item = on.catalog[it.item_id]
            assert reply.constraints.matches(item)
            assert item.price <= 45 and item.brand != "Olay"
    assert all("llm_rerank" in it.contributions for it in r_on.items)
    assert not any("llm_rerank" in it.contributions for it in r_off.items)
    reasons = [r for it in r_on.items for r in it.reasons if "re-ranker" in r]
    assert reasons, [it.reasons for it in r_on.items]
    for it in r_on.items:  # a re-ranker reason only where it moved the item up (or kept it first)
        said = [r for r in it.reasons if "re-ranker" in r]
        if said and "kept it first" not in said[0]:
            assert it.contributions["llm_rerank"] >= 0
    # Off (the default) is the old ranking: a second assistant without the stage agrees exactly.
    off2 = ShoppingAssistant(index, None, SessionStore(tmp_path / "off2"))
    again = off2.chat(msg, session_id="r1", user_id=user)
    assert [i.item_id for i in again.items] == [i.item_id for i in r_off.items]


def test_rerank_is_skipped_without_history_and_bad_settings_are_refused(index, tmp_path, reranker) -> None:
    bot = ShoppingAssistant(index, None, SessionStore(tmp_path / "c"), reranker=reranker)
    cold = bot.chat("a shampoo under $50", session_id="cold")
    assert "rerank_s" not in cold.meta["timings"]  # a first turn without a user: nothing to go on
    with pytest.raises(ValueError, match="rerank_top"):
        ShoppingAssistant(index, None, SessionStore(tmp_path / "x"), reranker=reranker, rerank_top=25)
    with pytest.raises(TypeError, match="rerank"):
        ShoppingAssistant(index, None, SessionStore(tmp_path / "y"), reranker=object())


def test_from_dataset_switch(tmp_path) -> None:
    ds = make_dataset()
    with pytest.raises(ValueError, match="rerank must be None or 'llm'"):
        ShoppingAssistant.from_dataset(ds, llm=None, cache_dir=tmp_path, show_progress=False, rerank="gpt")
    bot = ShoppingAssistant.from_dataset(
        ds, llm=TINY, cache_dir=tmp_path, show_progress=False, threads=1, rerank="llm"
    )
    reranker = bot.router.recommend.reranker
    assert reranker is not None and reranker.model is bot.llm.loaded.model  # shared weights
    plain = ShoppingAssistant.from_dataset(ds, llm=None, cache_dir=tmp_path, show_progress=False)
    assert plain.router.recommend.reranker is None
    with pytest.raises(ValueError, match="not a LoRA adapter"):
        ShoppingAssistant.from_dataset(
            ds, llm=TINY, cache_dir=tmp_path, show_progress=False, rerank="llm", reranker_adapter=tmp_path
        )


def test_rerank_reason_is_on_the_card_not_in_the_llm_prompt(index, tmp_path, reranker) -> None:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    seen: list[str] = []

    class Recorder(BaseCallbackHandler):
        def on_chat_model_start(self, serialized, messages, **kw):
            seen.extend(m.content for batch in messages for m in batch)

    llm = FakeListChatModel(responses=["Here are a few options."], callbacks=[Recorder()])
    bot = ShoppingAssistant(index, llm, SessionStore(tmp_path / "p"), reranker=reranker)
    reply = bot.chat("a moisturizer under $45", session_id="p1", user_id=_shopper(bot))
    assert any("re-ranker" in r for it in reply.items for r in it.reasons)
    assert seen and not any("re-ranker" in s for s in seen)
