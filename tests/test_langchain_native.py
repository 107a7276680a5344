"""The LangChain-native pieces (issue #21, item 3), on real components: a real index of the beauty
fixture (MiniLM, Chroma, BM25), real sqlite sessions, template replies or the real tiny LLM.

1. ``HybridRetriever.as_retriever`` -> a ``BaseRetriever`` of ``Document``s (facts + scores).
2. ``ShoppingAssistant.as_runnable`` -> a ``Runnable``: invoke / batch / stream / astream.
3. ``search_products`` tool: argument schema generated from ``Constraints``, validated.
4. ``ShoppingAssistant.chat_history`` -> a ``BaseChatMessageHistory`` over the session store.
(LangChain's standard suites on the retriever and the chat model: test_langchain_standard.py.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_core.tools import BaseTool
from pydantic import ValidationError

from assistant import ShoppingAssistant
from assistant.chat_history import SessionChatHistory
from assistant.sessions import SessionOwnershipError, SessionStore
from retrieval.filters import Constraints
from retrieval.search_tool import search_products_tool

QUERY = "a gentle moisturizer for dry skin"


@pytest.fixture
def hybrid(beauty_index):
    return beauty_index.retriever


@pytest.fixture
def bot(beauty_index, tmp_path):
    b = ShoppingAssistant(beauty_index, None, SessionStore(tmp_path / "sessions"))
    yield b
    b.close()


# --- 1. the retriever ------------------------------------------------------------------------------
def test_as_retriever_returns_documents_with_the_items_facts_and_scores(hybrid) -> None:
    retriever = hybrid.as_retriever(k=4)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke(QUERY)
    expected = hybrid.search(QUERY, k=4)
    assert [d.id for d in docs] == [c.item_id for c in expected] and len(docs) == 4
    for doc, cand in zip(docs, expected, strict=True):
        item = hybrid.catalog[cand.item_id]
        assert isinstance(doc, Document)
        assert doc.page_content.startswith(item.title) and f"Price: {item.price:.2f}" in doc.page_content
        meta = doc.metadata
        assert (meta["item_id"], meta["title"], meta["brand"], meta["price"]) == (
            item.item_id,
            item.title,
            item.brand,
            item.price,
        )
        assert meta["categories"] == list(item.categories) and meta["image"] == item.image
        assert meta["relevance"] == pytest.approx(cand.relevance)
        assert (meta["dense_rank"], meta["lexical_rank"], meta["source"]) == (
            cand.dense_rank,
            cand.lexical_rank,
            "hybrid",
        )
        json.dumps(meta)  # plain data, storable anywhere
    assert [d.metadata["relevance"] for d in docs] == sorted(
        (d.metadata["relevance"] for d in docs), reverse=True
    )


def test_retriever_constraints_bound_and_per_call(hybrid) -> None:
    bound = Constraints(price_max=20, brands_out=("Olay",))
    docs = hybrid.as_retriever(constraints=bound, k=10).invoke("moisturizer")
    assert docs and all(bound.matches(hybrid.catalog[d.id]) for d in docs)
    unbound = hybrid.as_retriever(k=10).invoke("moisturizer")
    assert any(not bound.matches(hybrid.catalog[d.id]) for d in unbound)  # the filter did something
    # Per call: k and constraints (its to_dict() form) replace the bound ones.
    per_call = hybrid.as_retriever(constraints=bound).invoke(
        "shampoo", k=2, constraints={"categories": [["Beauty", "Hair Care"]], "price_min": 15}
    )
    assert len(per_call) == 2
    for d in per_call:
        assert d.metadata["categories"][:2] == ["Beauty", "Hair Care"] and d.metadata["price"] >= 15
    with pytest.raises(ValueError, match="unknown constraint fields"):
        hybrid.as_retriever().invoke("shampoo", constraints={"colour": "red"})
    with pytest.raises(ValidationError):
        hybrid.as_retriever(k=0)


def test_retriever_composes_in_a_chain(hybrid) -> None:
    chain = hybrid.as_retriever(k=3) | RunnableLambda(lambda docs: [d.metadata["item_id"] for d in docs])
    assert chain.invoke(QUERY) == [c.item_id for c in hybrid.search(QUERY, k=3)]
    assert asyncio.run(chain.ainvoke(QUERY)) == chain.invoke(QUERY)


# --- 2. the runnable -------------------------------------------------------------------------------
def test_runnable_invoke_returns_the_reply_as_json_and_keeps_the_session(bot) -> None:
    runnable = bot.as_runnable()
    assert isinstance(runnable, Runnable)
    first = runnable.invoke({"message": "a moisturizer under $40", "session_id": "r1"})
    json.dumps(first)
    assert first["session_id"] == "r1" and first["intent"] == "recommend" and first["items"]
    assert first["constraints"]["price_max"] == 40
    assert all(it["price"] <= 40 for it in first["items"])
    second = runnable.invoke({"message": "cheaper", "session_id": "r1"})
    cheapest_before = min(it["price"] for it in first["items"])
    assert second["items"] and all(it["price"] < cheapest_before for it in second["items"])
    assert len(bot.session("r1").transcript) == 4  # both turns persisted in one session
    schema = runnable.get_input_jsonschema()
    assert {"type": "string"} in schema["anyOf"]


def test_runnable_session_ids_for_plain_strings_and_config(bot) -> None:
    runnable = bot.as_runnable()
    a, b = runnable.invoke("shampoo"), runnable.invoke("shampoo")
    assert a["session_id"] != b["session_id"]  # a plain string is a conversation of its own
    via_config = runnable.invoke("lipstick", config={"configurable": {"session_id": "cfg-1"}})
    assert via_config["session_id"] == "cfg-1" and bot.session("cfg-1") is not None
    with pytest.raises(ValidationError, match="message"):
        runnable.invoke({"session_id": "x"})
    with pytest.raises(ValidationError, match="colour"):
        runnable.invoke({"message": "hi", "colour": "red"})
    with pytest.raises(TypeError, match="input must be"):
        runnable.invoke(42)


def test_runnable_batch_keeps_order_and_sessions_apart(bot) -> None:
    outs = bot.as_runnable().batch(
        [
            {"message": "a shampoo", "session_id": "b1"},
            {"message": "a lipstick", "session_id": "b2"},
            {"message": "a conditioner", "session_id": "b3"},
        ]
    )
    assert [o["session_id"] for o in outs] == ["b1", "b2", "b3"]
    for out, leaf in zip(outs, ("Shampoo", "Lipstick", "Conditioner"), strict=True):
        assert out["items"] and all(leaf in it["categories"] for it in out["items"])
    assert all(len(bot.session(s).transcript) == 2 for s in ("b1", "b2", "b3"))


def _text_of(events: list[dict]) -> str:
    text = ""
    for e in events:
        if e["type"] == "text":
            text += e["text"]
        elif e["type"] == "reset":
            text = e["text"]
    return text


def test_runnable_stream_yields_the_turns_events(bot) -> None:
    events = list(bot.as_runnable().stream({"message": "a moisturizer under $40", "session_id": "st"}))
    types = [e["type"] for e in events]
    assert types[0] == "items" and types[-1] == "done" and "text" in types
    reply = events[-1]["reply"]
    assert [it["item_id"] for it in events[0]["items"]] == [it["item_id"] for it in reply["items"]]
    assert _text_of(events) == reply["text"] == bot.session("st").transcript[-1].text
    json.dumps(events)

    async def collect() -> list[dict]:
        return [e async for e in bot.as_runnable().astream({"message": "cheaper", "session_id": "st"})]

    a_events = asyncio.run(collect())
    assert a_events[0]["type"] == "items" and a_events[-1]["type"] == "done"
    assert _text_of(a_events) == a_events[-1]["reply"]["text"]
    assert len(bot.session("st").transcript) == 4


def test_runnable_streams_the_llms_text_in_pieces(beauty_index, tiny_chat_model, tmp_path) -> None:
    llm_bot = ShoppingAssistant(
        beauty_index, tiny_chat_model, SessionStore(tmp_path / "s"), max_new_tokens=20
    )
    try:
        events = list(
            llm_bot.as_runnable().stream({"message": "a moisturizer for dry skin", "session_id": "l"})
        )
    finally:
        llm_bot.close()
    reply = events[-1]["reply"]
    assert reply["meta"]["llm"] is not None  # the LLM wrote this reply (or its repair/template)
    assert sum(e["type"] == "text" for e in events) > 1
    assert _text_of(events) == reply["text"]


# --- 3. the search_products tool -------------------------------------------------------------------
def test_tool_schema_is_generated_from_constraints(hybrid) -> None:
    tool = search_products_tool(hybrid)
    assert isinstance(tool, BaseTool) and tool.name == "search_products"
    schema = tool.tool_call_schema.model_json_schema()
    fields = {f.name for f in dataclasses.fields(Constraints)}
    assert set(schema["properties"]) == {"query", "k"} | fields
    assert schema["required"] == ["query"]
    assert schema["properties"]["categories"]["items"]["items"]["type"] == "string"
    assert {"type": "number"} in schema["properties"]["price_max"]["anyOf"]


def test_tool_results_satisfy_every_filter(hybrid) -> None:
    tool = search_products_tool(hybrid)
    args = {
        "query": "shampoo",
        "k": 4,
        "price_max": 15,
        "brands_out": ["Maybelline"],
        "categories": [["Beauty", "Hair Care"]],
        "in_stock": True,
    }
    out = tool.invoke(args)
    want = Constraints(
        price_max=15, brands_out=("Maybelline",), categories=(("Beauty", "Hair Care"),), in_stock=True
    )
    assert [r["item_id"] for r in out] == [c.item_id for c in hybrid.search("shampoo", want, 4)]
    assert out and all(want.matches(hybrid.catalog[r["item_id"]]) for r in out)
    assert set(out[0]) >= {"item_id", "title", "price", "brand"}
    # As a model's tool call: a ToolMessage answering that call.
    msg = tool.invoke({"name": "search_products", "args": args, "id": "call-1", "type": "tool_call"})
    assert isinstance(msg, ToolMessage) and msg.tool_call_id == "call-1" and out[0]["item_id"] in msg.text


@pytest.mark.parametrize(
    ("args", "names"),
    [
        ({"query": "x", "price_min": 50, "price_max": 5}, "price_min 50.0 is above price_max 5.0"),
        ({"query": "x", "price_max": -1}, "price_max must be a number >= 0"),
        ({"query": "x", "price_max": "cheap"}, "price_max"),
        ({"query": "x", "k": 0}, "k"),
        ({"query": "x", "colour": "red"}, "colour"),
        ({"k": 3}, "query"),
        ({"query": "x", "categories": [[]]}, "categories paths must have 1..6 levels"),
    ],
)
def test_tool_rejects_invalid_arguments_clearly(hybrid, args, names) -> None:
    with pytest.raises(ValidationError, match=names):
        search_products_tool(hybrid).invoke(args)


def test_assistant_tool_checks_brands_against_the_catalog(bot) -> None:
    tool = bot.search_tool()
    out = tool.invoke({"query": "lipstick", "brands_in": ["revlon"], "k": 3})  # catalog spelling: Revlon
    assert out and all(r["brand"] == "Revlon" for r in out)
    with pytest.raises(ValueError, match="'Chanel' is not a brand in this catalog"):
        tool.invoke({"query": "lipstick", "brands_in": ["Chanel"]})


# --- 4. the chat message history -------------------------------------------------------------------
def test_history_messages_are_the_sessions_turns(bot) -> None:
    r1 = bot.chat("a moisturizer under $40", session_id="h1")
    bot.chat("cheaper", session_id="h1")
    history = bot.chat_history("h1")
    assert isinstance(history, BaseChatMessageHistory)
    msgs = history.messages
    assert [type(m) for m in msgs] == [HumanMessage, AIMessage, HumanMessage, AIMessage]
    assert [m.content for m in msgs] == [t.text for t in bot.session("h1").transcript]
    assert msgs[0].content == "a moisturizer under $40" and msgs[1].content == r1.text
    assert msgs[1].additional_kwargs["item_ids"] == [it.item_id for it in r1.items]
    assert bot.chat_history("never-used").messages == []


def test_history_add_messages_persists_and_clear_empties_one_session(bot, tmp_path) -> None:
    bot.chat("a shampoo", session_id="other")
    history = bot.chat_history("h2")
    history.add_messages([HumanMessage("hello, email me at jane.doe@example.com"), AIMessage("Hi!")])
    history.add_user_message("a lipstick")
    # A new store over the same directory (another process, a restart) sees them, redacted.
    again = SessionChatHistory(SessionStore(tmp_path / "sessions"), "h2")
    texts = [m.content for m in again.messages]
    assert len(texts) == 3 and texts[1:] == ["Hi!", "a lipstick"]
    assert "jane.doe@example.com" not in texts[0] and texts[0].startswith("hello, email me at")
    # The assistant continues the conversation the history holds.
    bot.chat("under $20", session_id="h2")
    assert len(history.messages) == 5
    with pytest.raises(ValueError, match="shopper and assistant turns only"):
        history.add_messages([HumanMessage("ok"), SystemMessage("you are a pirate")])
    assert len(history.messages) == 5  # all or nothing
    history.clear()
    assert history.messages == [] and again.messages == []
    assert bot.get_constraints("h2") == Constraints()  # the conversation's state went with it
    assert len(bot.chat_history("other").messages) == 2  # other sessions untouched


def test_history_respects_session_ownership(bot) -> None:
    bot.chat("a shampoo", session_id="owned", user_id="u1")
    assert len(bot.chat_history("owned", user_id="u1").messages) == 2
    with pytest.raises(SessionOwnershipError):
        _ = bot.chat_history("owned", user_id="u2").messages
    with pytest.raises(SessionOwnershipError):
        bot.chat_history("owned", user_id="u2").add_user_message("let me in")
    bot.chat_history("owned", user_id="u1").clear()
    with pytest.raises(SessionOwnershipError):  # still u1's after clear
        bot.chat_history("owned", user_id="u2").add_user_message("now?")
    with pytest.raises(ValueError, match="session_id"):
        bot.chat_history("")


def test_history_plugs_into_runnable_with_message_history(bot) -> None:
    def answer(messages: list) -> AIMessage:
        return AIMessage(f"I have seen {len(messages)} messages")

    chain = RunnableWithMessageHistory(RunnableLambda(answer), lambda sid: bot.chat_history(sid))
    config = {"configurable": {"session_id": "rw"}}
    assert chain.invoke([HumanMessage("hi")], config=config).content == "I have seen 1 messages"
    assert chain.invoke([HumanMessage("again")], config=config).content == "I have seen 3 messages"
    assert [t.role for t in bot.session("rw").transcript] == ["user", "assistant", "user", "assistant"]
