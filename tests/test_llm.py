"""LocalChatModel on the real tiny SmolLM2: generation, streaming, stops, chains, JSON, scoring."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import numpy as np
import pytest
import torch
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel

from llm.chat_model import STREAM_THREAD_NAME, LoadedLLM, LocalChatModel, get_loaded_llm
from llm.choices import score_choices, score_choices_batch
from llm.json_output import extract_json_block, parse_json_output
from llm.messages import to_chat_dicts

QUESTION = "What is the capital of France?"


class ShoeQuery(BaseModel):
    category: str
    max_price: float | None = None


# -- plain generation ----------------------------------------------------------------------------


def test_invoke_answers_and_reports_tokens(tiny_chat_model):
    reply = tiny_chat_model.invoke(QUESTION)
    assert isinstance(reply, AIMessage)
    assert "Paris" in reply.content  # real converted weights, not noise
    meta = reply.response_metadata
    chat = to_chat_dicts([HumanMessage(QUESTION)])
    tok = tiny_chat_model.tokenizer
    expected_prompt = len(
        tok.apply_chat_template(chat, tokenize=True, add_generation_prompt=True)["input_ids"]
    )
    assert meta["prompt_tokens"] == expected_prompt
    assert 0 < meta["completion_tokens"] <= 20
    assert meta["finish_reason"] in {"stop", "length"}
    assert reply.usage_metadata == {
        "input_tokens": meta["prompt_tokens"],
        "output_tokens": meta["completion_tokens"],
        "total_tokens": meta["prompt_tokens"] + meta["completion_tokens"],
    }


def test_max_new_tokens_and_length_finish(tiny_chat_model):
    reply = tiny_chat_model.invoke("Write a long poem about the sea.", max_new_tokens=3)
    assert reply.response_metadata["completion_tokens"] == 3
    assert reply.response_metadata["finish_reason"] == "length"
    assert reply.content


def test_stream_takes_max_new_tokens_per_call(tiny_chat_model):
    """Regression: `stream(..., max_new_tokens=N)` raised "TypeError: _gen_kwargs() got multiple
    values for argument 'max_new_tokens'" (the assistant worked around it by copying the model)."""
    prompt = "Write a long poem about the sea."
    for stream in (
        tiny_chat_model.stream(prompt, max_new_tokens=3),
        tiny_chat_model.bind(max_new_tokens=3).stream(prompt),
    ):
        chunks = list(stream)
        assert chunks[-1].usage_metadata["output_tokens"] == 3
        assert chunks[-1].response_metadata["finish_reason"] == "length"
        assert "".join(c.content for c in chunks) == tiny_chat_model.invoke(prompt, max_new_tokens=3).content


def test_stream_concatenation_equals_invoke(tiny_chat_model):
    messages = [
        SystemMessage("You are a concise shopping assistant."),
        HumanMessage("Suggest a gift for a runner."),
    ]
    full = tiny_chat_model.invoke(messages)
    chunks = list(tiny_chat_model.stream(messages))
    text_chunks = [c.content for c in chunks if c.content]
    assert len(text_chunks) > 1  # really streamed, not one blob
    assert "".join(c.content for c in chunks) == full.content
    last = chunks[-1]
    assert last.usage_metadata["output_tokens"] == full.response_metadata["completion_tokens"]
    assert last.response_metadata["finish_reason"] == full.response_metadata["finish_reason"]


def test_stop_strings_cut_invoke_and_stream_identically(tiny_chat_model):
    prompt = "List five fruits, one per line."
    full = tiny_chat_model.invoke(prompt, max_new_tokens=16).content
    words = [w for w in full.split() if len(w) > 2]
    assert len(words) >= 2, full
    stop = words[1]
    expected = full[: full.find(stop)]
    cut = tiny_chat_model.invoke(prompt, max_new_tokens=16, stop=[stop])
    assert cut.content == expected
    assert cut.response_metadata["finish_reason"] == "stop"
    streamed = "".join(c.content for c in tiny_chat_model.stream(prompt, max_new_tokens=16, stop=[stop]))
    assert streamed == expected


def test_abandoned_stream_does_not_block_the_model(tiny_chat_model):
    stream = tiny_chat_model.stream("Tell me a very long story about a cat.", max_new_tokens=60)
    first = next(iter(stream))
    assert first.content
    stream.close()  # consumer walks away mid-generation
    assert tiny_chat_model.invoke(QUESTION, max_new_tokens=5).content


def _invoke_then_set(model: LocalChatModel, done: threading.Event) -> None:
    if model.invoke(QUESTION, max_new_tokens=3).content is not None:
        done.set()


def test_stream_collected_by_the_gc_inside_its_own_worker_does_not_deadlock(tiny_llm):
    """Regression (the CI hang of tests/test_openai_backend.py): a stream abandoned inside a
    reference cycle is closed by the cyclic GC in whichever thread collects, often the generate
    worker itself mid forward pass. Its cleanup used to wait for the worker's stop signal, so the
    worker waited for itself, held the model lock forever, and every later request timed out."""
    private = LoadedLLM(model=tiny_llm.model, tokenizer=tiny_llm.tokenizer, path=tiny_llm.path)
    model = LocalChatModel.from_loaded(private, max_new_tokens=60)  # own lock: a hang stays here

    class Cycle:
        pass

    collected_in: list[str] = []
    threshold = gc.get_threshold()
    try:
        for _ in range(5):  # until the worker (not this thread) is the one that collects
            holder = Cycle()
            holder.self = holder
            holder.stream = model.stream("Tell me a very long story about a cat.")
            assert next(holder.stream).content  # generating now, under the lock
            weakref.finalize(holder, lambda: collected_in.append(threading.current_thread().name))
            gc.disable()
            del holder  # only the cycle keeps the generator alive
            gc.set_threshold(1)
            gc.enable()  # the next allocation in any thread collects; this one only sleeps
            time.sleep(2.0)
            gc.set_threshold(*threshold)
            done = threading.Event()
            threading.Thread(target=_invoke_then_set, args=(model, done), daemon=True).start()
            assert done.wait(60), f"model lock never released; stream closed in {collected_in[-1:]}"
            if collected_in and collected_in[-1] == STREAM_THREAD_NAME:
                break
    finally:
        gc.set_threshold(*threshold)
        gc.enable()
    assert collected_in and collected_in[-1] == STREAM_THREAD_NAME, collected_in  # the case ran


def test_sampling_is_seeded(tiny_chat_model):
    hot = tiny_chat_model.model_copy(update={"temperature": 1.2, "seed": 7})
    a = hot.invoke("Name a color.", max_new_tokens=6).content
    b = hot.invoke("Name a color.", max_new_tokens=6).content
    assert a == b
    outs = {a} | {hot.invoke("Name a color.", max_new_tokens=6, seed=s).content for s in (1, 2)}
    assert len(outs) > 1  # different seeds really sample differently


def test_langchain_chain_composition(tiny_chat_model):
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You answer geography questions in one sentence."),
            ("human", "What is the capital of {country}?"),
        ]
    )
    chain = prompt | tiny_chat_model | StrOutputParser()
    out = chain.invoke({"country": "France"})
    assert isinstance(out, str) and out
    direct = tiny_chat_model.invoke(prompt.invoke({"country": "France"}).to_messages()).content
    assert out == direct


def test_models_are_shared_per_process(tiny_llm, tiny_llm_dir):
    a = LocalChatModel(model_name=str(tiny_llm_dir), threads=1)
    b = LocalChatModel(model_name=str(tiny_llm_dir), threads=1, max_new_tokens=5)
    assert a.loaded is b.loaded is get_loaded_llm(str(tiny_llm_dir)) is tiny_llm


def test_concurrent_calls_are_serialised_and_correct(tiny_chat_model):
    prompts = [QUESTION, "Name a fruit."]
    sequential = [tiny_chat_model.invoke(p, max_new_tokens=5).content for p in prompts]
    results: dict[int, str] = {}

    def worker(i: int) -> None:
        results[i] = tiny_chat_model.invoke(prompts[i], max_new_tokens=5).content

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [results[i] for i in range(len(prompts))] == sequential


def test_to_chat_dicts_roles():
    chat = to_chat_dicts([SystemMessage("s"), HumanMessage("u"), AIMessage("a"), ("human", "u2")])
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert to_chat_dicts("hi") == [{"role": "user", "content": "hi"}]
    assert to_chat_dicts([{"role": "user", "content": [{"type": "text", "text": "x"}]}])[0]["content"] == "x"
    with pytest.raises(ValueError, match="only text"):
        to_chat_dicts([HumanMessage(content=[{"type": "image_url", "image_url": {"url": "x"}}])])


# -- JSON ----------------------------------------------------------------------------------------


def test_generate_json_returns_valid_object_or_none(tiny_chat_model):
    out = tiny_chat_model.generate_json(
        "I want running shoes under 80 dollars. Give the product category and max price.",
        ShoeQuery,
        max_new_tokens=40,
    )
    assert out is None or isinstance(out, ShoeQuery)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"category": "shoes", "max_price": 80}', ShoeQuery(category="shoes", max_price=80)),
        ('Sure! ```json\n{"category": "shoes",}\n``` hope it helps', ShoeQuery(category="shoes")),
        ("{'category': 'shoes', 'max_price': None}", ShoeQuery(category="shoes")),
        ('{category: "socks", max_price: 5,}', ShoeQuery(category="socks", max_price=5)),
        ('{"category": "hat", "max_price": 12.5', ShoeQuery(category="hat", max_price=12.5)),  # truncated
        ('{"category": "sho', ShoeQuery(category="sho")),  # truncated inside a string
        (
            'text {"category": "a {b}", "max_price": 1} {"category": "second"}',
            ShoeQuery(category="a {b}", max_price=1),
        ),
        ("no json at all", None),
        ('{"max_price": 3}', None),  # schema violation: category missing
        ('{"category": ["not", "a", "string"]}', None),
        ("[1, 2, 3]", None),
    ],
)
def test_parse_json_output_repairs_or_rejects(text, expected):
    assert parse_json_output(text, ShoeQuery) == expected


def test_parse_json_output_with_json_schema_dict():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert parse_json_output('{"n": 3,}', schema) == {"n": 3}
    assert parse_json_output('{"n": "three"}', schema) is None


def test_extract_json_block():
    assert extract_json_block('a {"x": "}"} b') == '{"x": "}"}'
    assert extract_json_block('{"x": [1, 2') == '{"x": [1, 2]}'
    assert extract_json_block("none") is None


# -- choice scoring ------------------------------------------------------------------------------

LETTERS = [chr(ord("A") + i) for i in range(20)]


def test_score_choices_shape_and_agrees_with_forward(tiny_llm, tiny_chat_model):
    prompt = "Question: which letter comes first in the alphabet? Options: A, B, C.\nAnswer:"
    scores = tiny_chat_model.score_choices(prompt, LETTERS)
    assert scores.shape == (20,) and scores.dtype == np.float32
    assert np.all(np.isfinite(scores)) and np.all(scores <= 0)
    tok, model = tiny_llm.tokenizer, tiny_llm.model
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        logp = torch.log_softmax(model(ids).logits[0, -1].float(), -1)
    letter_ids = [tok.encode(c, add_special_tokens=False)[0] for c in LETTERS]
    np.testing.assert_allclose(scores, logp[letter_ids].numpy(), atol=1e-4)


def test_score_choices_batch_left_padding_matches_single(tiny_llm):
    tok, model = tiny_llm.tokenizer, tiny_llm.model
    prompts = ["Answer:", "The best option for a marathon runner is option", [HumanMessage("Pick A or B.")]]
    batch = score_choices_batch(model, tok, prompts, ["A", "B", "C"], batch_size=3)
    assert batch.shape == (3, 3)
    single = np.stack([score_choices(model, tok, p, ["A", "B", "C"]) for p in prompts])
    np.testing.assert_allclose(batch, single, atol=1e-3)


def test_score_choices_of_a_bf16_model_do_not_tie(tiny_llm_dir, tiny_llm):
    """bf16 logits are coarse: letter scores of a flat distribution tie (ranking ties count
    against the target in evaluation). The choices' logits are recomputed in float32 from the
    head's input: 20 distinct scores, close to the float32 model's."""
    from llm.models import load_llm

    model16, tok = load_llm(str(tiny_llm_dir), dtype="bfloat16", threads=2)
    prompts = [
        "Pick the product the shopper buys next. Candidates: "
        + ", ".join(f"({c}) item {i}" for i, c in enumerate(LETTERS))
        + f". History: item {k}.\nAnswer:"
        for k in (3, 11, 17)
    ]
    fine = score_choices_batch(model16, tok, prompts, list(LETTERS))
    exact = score_choices_batch(tiny_llm.model, tok, prompts, list(LETTERS))
    ids = [tok.encode(c, add_special_tokens=False)[0] for c in LETTERS]
    coarse = []
    with torch.inference_mode():
        for p in prompts:
            x = tok(p, add_special_tokens=False, return_tensors="pt")["input_ids"]
            coarse.append(model16(x).logits[0, -1, ids].tolist())
    assert sum(20 - len(set(row)) for row in coarse) > 0  # the raw bf16 logits do tie here
    assert all(len(set(row.tolist())) == 20 for row in fine)
    np.testing.assert_allclose(fine, exact, atol=0.5)
    for a, b in zip(fine, exact, strict=True):
        assert np.corrcoef(a, b)[0, 1] > 0.9


def test_score_choices_rejects_bad_choices(tiny_llm):
    tok, model = tiny_llm.tokenizer, tiny_llm.model
    with pytest.raises(ValueError, match="one token"):
        score_choices(model, tok, "Answer:", ["A", "definitely not one token"])
    with pytest.raises(ValueError, match="empty"):
        score_choices(model, tok, "Answer:", [])
    with pytest.raises(ValueError, match="duplicate"):
        score_choices(model, tok, "Answer:", ["A", "A"])


def test_json_closed_detects_end_of_first_object():
    from llm.json_output import json_closed

    assert not json_closed('{"a": "}"')
    assert json_closed('{"a": "}"}')
    assert json_closed('{"a": [1, {"b": 2}]} trailing')
    assert not json_closed('{"a": [1, {"b": 2}]')
