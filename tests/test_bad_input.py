"""Bad input through every entry point: the Python API, the data loaders, the UI handler, the
fine-tuning CLI. Each one gets a clear message or a sensible answer, never a stack trace.

Real components throughout (MiniLM, Chroma in a tmp dir, sqlite sessions, real files on
disk, a real subprocess for the CLI); template replies (``llm=None``) keep it fast. The
documented limits these tests pin down are in docs/limits.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gzip
import subprocess
import sys
from pathlib import Path

import pytest
from assistant_catalog import make_dataset

from assistant import INTENTS, DoneEvent, ItemsEvent, ShoppingAssistant, TextDelta, TextReset
from assistant.config import MAX_ID_CHARS, AssistantConfig
from assistant.index import AssistantIndex
from assistant.sessions import SessionOwnershipError, SessionStore
from retrieval.data.registry import load_dataset
from retrieval.data.schema import Catalog, Dataset, DataValidationError, Interactions, Item

MAX_MESSAGE_CHARS = AssistantConfig().max_message_chars

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    # One cache for all reliability modules of a pytest session: the first builds, the rest load.
    cache = tmp_path_factory.getbasetemp() / "reliability-cache"
    return AssistantIndex.build_or_load(make_dataset(), cache_dir=cache, show_progress=False)


@pytest.fixture(scope="module")
def bot(index, tmp_path_factory):
    b = ShoppingAssistant(index, None, SessionStore(tmp_path_factory.mktemp("bad-input-sessions")))
    yield b
    b.close()


_counter = iter(range(10**9))


def fresh() -> str:
    return f"bad-{next(_counter)}"


def assert_sane(bot: ShoppingAssistant, reply) -> None:
    """A usable reply: known intent, non-empty text with no traceback, cards from the catalog
    that satisfy the constraints in force."""
    assert reply.intent in INTENTS
    assert isinstance(reply.text, str) and reply.text.strip()
    assert "Traceback" not in reply.text and 'File "' not in reply.text
    for it in reply.items:
        assert it.item_id in bot.catalog
        assert reply.constraints.matches(bot.catalog[it.item_id])


# ---------------------------------------------------------------------------------- messages
# (label, message): everything a browser, a JSON client or a copy-paste can send.
BAD_MESSAGES = [
    ("empty", ""),
    ("space", " "),
    ("whitespace", " \t\n\r\v\f "),
    ("nbsp", "\u00a0\u2003\u3000"),
    ("nul", "\x00"),
    ("controls", "\x00\x01\x02\x1b[31m\x7f"),
    ("ansi-in-query", "\x1b[2J\x1b[H lipstick under $20"),
    ("zero-width", "sham\u200bpoo\u200d under 2\u200c0"),
    ("bidi-override", "\u202eshampoo under $20\u202c"),
    ("rtl-arabic", "مرحبا، أريد شامبو بأقل من 20 دولار"),
    ("rtl-hebrew", "אני רוצה שמפו lipstick under 20"),
    ("emoji-only", "😀😀😀"),
    ("emoji-query", "💄 lipstick 💋 under $25 🙏"),
    ("emoji-zwj", "👩‍👩‍👧‍👦 shampoo for the family"),
    ("flags", "🇺🇸🇨🇳 mascara"),
    ("mixed-zh-en", "我想要 shampoo under 20 美元, not Dove"),
    ("mixed-ja", "シャンプー 2000円以下"),
    ("mixed-ru", "помада lipstick между 10 и 20"),
    ("fullwidth", "ｌｉｐｓｔｉｃｋ ｕｎｄｅｒ ＄２０"),
    ("combining", "li\u0301pstick u\u0308nder $20"),
    ("lone-surrogate", "\ud800 lipstick under 20"),
    ("surrogate-pair", "\ud83d\ude00 mascara"),
    ("private-use", "\ue000\uf8ff shampoo"),
    ("replacement", "\ufffd\ufffd cleanser"),
    ("only-punct", "?!?!...,,,;;;"),
    ("html", "<script>alert(1)</script> lipstick"),
    ("sql", "'; DROP TABLE sessions; -- shampoo"),
    ("json", '{"price_max": -1, "brands_in": ["Olay"]}'),
    ("markdown", "**bold** [link](http://evil.example) `code` lipstick"),
    ("format-braces", "{cards} {query} {0} %s %(x)s lipstick"),
    ("path", "../../../../etc/passwd"),
    ("newlines", "lipstick\n\n\nunder\n$20\n"),
    ("long-word", "a" * 1999),
    ("many-numbers", " ".join(str(i) for i in range(400))),
    ("parens", "(" * 1500 + "under $20"),
    ("repeated-brand", "Olay " * 300),
    ("exactly-limit", "shampoo " + "x" * (MAX_MESSAGE_CHARS - 8)),
    ("numbers-huge", "under " + "9" * 1500),
]

# Prices the parser must refuse with a clarifying question and no price constraint (the product
# type still searches, so the question comes with items).
ABSURD_PRICES = [
    "a lipstick under -5",
    "a lipstick under $-5",
    "a shampoo under 1e309",
    "a shampoo under $1e309",
    "a shampoo under 0",
    "a mascara under $0",
    "a moisturizer under $99999999999",
    "lipstick between -20 and -10",
    "口红 不超过 -5 元",
]


@pytest.mark.parametrize("label,message", BAD_MESSAGES, ids=[m[0] for m in BAD_MESSAGES])
def test_bad_message_gets_a_sane_reply_and_the_session_survives(bot, label, message) -> None:
    sid = fresh()
    reply = bot.chat(message, session_id=sid, user_id=f"user-{label}")
    assert_sane(bot, reply)
    # The same session keeps working after the odd turn.
    after = bot.chat("a shampoo under $30", session_id=sid, user_id=f"user-{label}")
    assert_sane(bot, after)
    assert after.intent in ("recommend", "search", "clarify")
    if after.intent != "clarify":
        # (An earlier "about $20" may keep its $15 floor, so the page can be empty: then it says so.)
        assert after.constraints.price_max == 30
        assert all(bot.catalog[i.item_id].price <= 30 for i in after.items)


@pytest.mark.parametrize("message", ["", " ", "\t\n", "\u3000", "😀", "?!"])
def test_empty_and_content_free_messages_ask_what_to_find(bot, message) -> None:
    reply = bot.chat(message, session_id=fresh())
    assert reply.intent == "clarify" and reply.items == []


def test_over_long_message_is_answered_not_silently_cut(bot) -> None:
    sid = fresh()
    for n, msg in ((100_000, "x" * 100_000), (MAX_MESSAGE_CHARS + 1, "y" * (MAX_MESSAGE_CHARS + 1))):
        reply = bot.chat(msg, session_id=sid)
        assert reply.intent == "clarify" and reply.items == []
        assert "too long" in reply.text and f"{n:,}" in reply.text and f"{MAX_MESSAGE_CHARS:,}" in reply.text
        assert bot.session(sid) is None, "an over-long message must not be stored"
    zh = bot.chat("口红" * 5000, session_id=fresh())
    assert zh.language == "zh" and "太长" in zh.text
    # Streaming gives the same answer in the usual event order.
    events = list(bot.stream("z" * 50_000, session_id=fresh()))
    assert isinstance(events[0], ItemsEvent) and isinstance(events[-1], DoneEvent)
    assert "too long" in events[-1].reply.text
    # Surrounding whitespace does not count; exactly the limit is accepted.
    ok = bot.chat("   lipstick " + "z" * (MAX_MESSAGE_CHARS - 9) + "\n\n\n", session_id=fresh())
    assert "too long" not in ok.text


def test_too_long_still_refuses_someone_elses_session(bot) -> None:
    bot.chat("a shampoo under $30", session_id="owned", user_id="alice")
    with pytest.raises(SessionOwnershipError):
        bot.chat("x" * 10_000, session_id="owned", user_id="mallory")


@pytest.mark.parametrize("message", ABSURD_PRICES)
def test_absurd_prices_ask_instead_of_filtering(bot, message) -> None:
    reply = bot.chat(message, session_id=fresh())
    assert_sane(bot, reply)
    assert reply.intent in ("recommend", "search") and reply.items
    assert reply.constraints.price_max is None and reply.constraints.price_min is None
    assert reply.question and ("?" in reply.question or "？" in reply.question)
    assert reply.text.endswith(reply.question)


def test_absurd_price_does_not_erase_a_good_one(bot) -> None:
    sid = fresh()
    first = bot.chat("a shampoo under $30", session_id=sid)
    assert first.constraints.price_max == 30
    bad = bot.chat("make it under -5", session_id=sid)
    assert bad.question and bad.constraints.price_max == 30
    again = bot.chat("show me more", session_id=sid)
    # (Every shampoo under $30 was shown: this page may widen the budget, and says so.)
    assert bot.sessions.open(sid).state.constraints.price_max == 30
    assert again.constraints.price_max == 30 or again.meta["relaxed"] == ["price"]


@pytest.mark.parametrize(
    "message",
    ["shampoo from Zorblax", "a Zorblax lipstick under $30", "shampoo, not Zorblax", "only Zorblax please"],
)
def test_unknown_brand_never_invents_items(bot, message) -> None:
    reply = bot.chat(message, session_id=fresh())
    assert_sane(bot, reply)
    assert all(bot.catalog[i.item_id].brand in set(bot.catalog.brands()) for i in reply.items)
    assert "Zorblax" not in {i.brand for i in reply.items}


@pytest.mark.parametrize(
    "message", ["a flux capacitor under $20", "garden hose", "a category called Gadgets > Widgets"]
)
def test_unknown_category_is_a_sensible_answer(bot, message) -> None:
    reply = bot.chat(message, session_id=fresh())
    assert_sane(bot, reply)
    if "$20" in message and reply.items:
        assert all(bot.catalog[i.item_id].price <= 20 for i in reply.items)


def test_unknown_user_ids_are_strangers_not_errors(bot) -> None:
    reply = bot.chat("a moisturizer under $40", session_id=fresh(), user_id="never-seen-user-42")
    assert_sane(bot, reply) and reply.items
    assert bot.history("no-such-user") == []
    assert bot.profile("no-such-user").clusters == []
    assert bot.forget("no-such-user") == {
        "sessions": 0,
        "events": 0,
        "log_lines": 0,
        "profile_vectors": 0,
        "cached_histories": 0,
    }


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"session_id": ""}, "session_id must be a non-empty string"),
        ({"session_id": "   "}, "session_id must be a non-empty string"),
        ({"session_id": None}, "session_id must be a non-empty string"),
        ({"session_id": 42}, "session_id must be a non-empty string"),
        ({"session_id": "s" * (MAX_ID_CHARS + 1)}, "the limit is 256"),
        ({"session_id": "\ud800"}, "not valid Unicode"),
        ({"session_id": "ok", "user_id": "\udfff"}, "not valid Unicode"),
        ({"session_id": "ok", "user_id": ""}, "user_id must be a non-empty string"),
        ({"session_id": "ok", "user_id": 7}, "user_id must be a non-empty string"),
    ],
)
def test_bad_ids_raise_a_clear_value_error(bot, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        bot.chat("a shampoo", **kwargs)
    with pytest.raises(ValueError, match=match):
        list(bot.stream("a shampoo", **kwargs))


@pytest.mark.parametrize("message", [None, 42, b"lipstick", ["lipstick"]])
def test_non_string_message_is_a_type_error(bot, message) -> None:
    with pytest.raises(TypeError, match="message must be a string"):
        bot.chat(message, session_id=fresh())


def test_feedback_and_forget_reject_bad_input_clearly(bot) -> None:
    sid = fresh()
    reply = bot.chat("a shampoo under $30", session_id=sid)
    with pytest.raises(KeyError, match="unknown item id"):
        bot.feedback(sid, "NOT-AN-ITEM", liked=True)
    with pytest.raises(KeyError, match="unknown item id"):
        bot.feedback(sid, "", liked=False)
    with pytest.raises(ValueError, match="session_id"):
        bot.feedback("", reply.items[0].item_id, liked=True)
    with pytest.raises(ValueError, match="not valid Unicode"):
        bot.feedback(sid, reply.items[0].item_id, liked=True, user_id="\ud800")
    for bad in ("", None, "\ud800", "u" * 1000):
        with pytest.raises(ValueError, match="user_id"):
            bot.forget(bad)
    # None of that touched the session.
    assert bot.session(sid).liked == [] and bot.session(sid).disliked == []


def test_stream_event_order_holds_for_bad_input(bot) -> None:
    for _, message in BAD_MESSAGES[:12]:
        events = list(bot.stream(message, session_id=fresh()))
        assert isinstance(events[0], ItemsEvent) and isinstance(events[-1], DoneEvent)
        assert all(isinstance(e, TextDelta | TextReset) for e in events[1:-1])


# ------------------------------------------------------------------------------- data loaders
def _rows(n: int) -> bytes:
    return b"item_id,title,price\n" + b"".join(
        f"I{i},title {i} words {i * 13},{i % 50}.5\n".encode() for i in range(n)
    )


# (file name, bytes, expected words in the error). Each must fail with a DataValidationError /
# ValueError naming the file (no KeyError, pandas, gzip or codec traceback).
MALFORMED_FILES = [
    ("empty.csv", b"", "empty file"),
    ("header-only.csv", b"item_id,title,price\n", "empty catalog"),
    ("empty.jsonl", b"", "missing columns"),
    ("blank-lines.jsonl", b"\n\n   \n", "missing columns"),
    ("random-bytes.csv", bytes(range(256)) * 8, "cannot decode"),
    ("latin1.csv", "item_id,title\nA1,Crème brûlée lip balm\n".encode("latin-1"), "cannot decode"),
    ("utf16.csv", "item_id,title\nA1,Lip balm\n".encode("utf-16"), "cannot decode"),
    (
        "cp1252.jsonl",
        '{"item_id": "a", "title": "naïve – “smart” quotes"}\n'.encode("cp1252"),
        "cannot decode",
    ),
    ("truncated.csv.gz", gzip.compress(_rows(4000))[:3000], "corrupt gzip"),
    ("truncated.jsonl.gz", gzip.compress(b'{"item_id": "a", "title": "b"}\n' * 3)[:-9], "corrupt gzip"),
    ("bad-json.jsonl", b'{"item_id": "a", "title": "b"}\n{"item_id": "c", "title": \n', "malformed JSON"),
    ("array.jsonl", b"[1, 2, 3]\n", "expected a JSON object"),
    ("no-title-col.csv", b"item_id,name\nA,x\n", "missing columns"),
    ("empty-title.csv", b"item_id,title\nA,\n", "missing titles"),
    ("dup-ids.csv", b"item_id,title\nA,x\nA,y\n", "duplicate item ids"),
    ("neg-price.csv", b"item_id,title,price\nA,x,-5\n", "price"),
    ("inf-price.csv", b"item_id,title,price\nA,x,1e309\n", "price"),
    ("text-price.csv", b"item_id,title,price\nA,x,cheap\n", "price"),
    ("ragged.csv", b"item_id,title\nA,x,extra,fields\n", "line 2"),
    ("garbage.parquet", b"PAR1 this is not parquet", "Parquet"),
    ("unknown.xyz", b"whatever", "cannot tell the format"),
]


@pytest.mark.parametrize("name,data,words", MALFORMED_FILES, ids=[f[0] for f in MALFORMED_FILES])
def test_malformed_catalog_files_fail_clearly(tmp_path, name, data, words) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises((DataValidationError, ValueError)) as info:
        load_dataset(path)
    msg = str(info.value)
    assert words.casefold() in msg.casefold(), msg
    if not name.endswith(".xyz"):
        assert str(path) in msg, "the error names the file"


@pytest.mark.parametrize("arg", ["", "no-such-dataset", "/definitely/not/here", "movielens-100k-typo"])
def test_unknown_dataset_names_list_what_exists(tmp_path, arg) -> None:
    with pytest.raises(ValueError) as info:
        load_dataset(arg)
    msg = str(info.value)
    assert "formats" in msg and "amazon-2014" in msg, "the error lists what can be loaded"


def test_empty_folder_is_not_a_dataset(tmp_path) -> None:
    with pytest.raises(ValueError, match="cannot tell the format"):
        load_dataset(tmp_path)


@pytest.mark.parametrize(
    "name,data",
    [
        ("bom.csv", "\ufeffitem_id,title\nA1,Lip balm\n".encode()),
        ("odd-text.csv", "item_id,title\nA,\x1b[31mred\u202e lipstick 😀 مرحبا 口红\n".encode()),
        ("nul-in-title.csv", b"item_id,title\nA,x\x00y\n"),
        ("not-really-gzip.jsonl.gz", b'{"item_id": "a", "title": "b"}\n'),  # detected by magic, not suffix
    ],
)
def test_odd_but_valid_files_load(tmp_path, name, data) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert len(load_dataset(path).catalog) == 1


def test_huge_catalog_file_loads_in_bounded_time(tmp_path) -> None:
    import time

    path = tmp_path / "big.csv.gz"
    path.write_bytes(gzip.compress(_rows(50_000)))
    t0 = time.perf_counter()
    ds = load_dataset(path)
    assert len(ds.catalog) == 50_000
    assert time.perf_counter() - t0 < 30
    one = tmp_path / "one-huge-line.jsonl"
    one.write_text('{"item_id": "a", "title": "' + "x" * 5_000_000 + '"}\n')
    assert len(load_dataset(one).catalog.at(0).title) == 5_000_000


def test_catalog_with_zero_items_is_refused_before_indexing(tmp_path) -> None:
    empty = Catalog([])
    ds = Dataset(name="empty", catalog=empty, interactions=Interactions.from_records([], empty))
    with pytest.raises(ValueError, match="empty catalog"):
        ShoppingAssistant.from_dataset(ds, llm=None, cache_dir=tmp_path, show_progress=False)


def test_assistant_over_a_catalog_with_hostile_text(tmp_path) -> None:
    """Control characters, RTL, emoji and markup in titles: indexing and replies still work."""
    items = [
        Item("X1", "\x1b[31mRed\x1b[0m Lipstick 💄", brand="Acme\u202e", categories=("Lips",), price=9.5),
        Item("X2", "أحمر شفاه Lipstick <b>bold</b>", brand="Acme", categories=("Lips",), price=12.0),
        Item("X3", "口红 Lipstick {cards} %s", brand="Zeta", categories=("Lips",), price=15.0),
        Item("X4", "Shampoo\x00 with NUL", brand="Zeta", categories=("Hair",), price=7.0),
    ]
    cat = Catalog(items)
    ds = Dataset(name="hostile", catalog=cat, interactions=Interactions.from_records([], cat))
    bot = ShoppingAssistant.from_dataset(ds, llm=None, cache_dir=tmp_path, show_progress=False, scorer=None)
    try:
        reply = bot.chat("lipstick under $13", session_id="h")
        assert_sane(bot, reply)
        ids = {i.item_id for i in reply.items}
        assert {"X1", "X2"} <= ids and "X3" not in ids  # X3 costs $15
        assert all(bot.catalog[i].price <= 13 for i in ids)
    finally:
        bot.close()


# ---------------------------------------------------------------------------------------- UI
def test_ui_handler_answers_bad_input_without_tracebacks(index, tmp_path) -> None:
    gr = pytest.importorskip("gradio")
    del gr
    from assistant.ui.engines import DatasetChoice, EngineRegistry
    from assistant.ui.web import ShopUI, new_session

    def factory(_source):
        return ShoppingAssistant(index, None, SessionStore(tmp_path / "ui-sessions"))

    registry = EngineRegistry([DatasetChoice("beauty", "beauty", index.dataset)], factory)
    ui = ShopUI(registry)
    ui.build()
    for message in ["", "   ", "x" * 100_000, "\ud800 lipstick", "\x00\x1b[31m", "a shampoo under -5", "😀"]:
        state = new_session("beauty")
        outs = list(ui.respond(message, state))
        assert outs, "the handler always yields"
        for msg in state["messages"]:
            content = msg["content"] if isinstance(msg["content"], str) else str(msg["content"])
            assert "Traceback" not in content and "Error:" not in content
        if message.strip():
            assert state["messages"][-1]["role"] == "assistant" and state["messages"][-1]["content"].strip()
    state = new_session("beauty")
    list(ui.respond("x" * 100_000, state))
    assert "too long" in state["messages"][-1]["content"]


# ------------------------------------------------------------------------------ finetune CLI
def _cli(*args: str, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "finetune", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


pytestmark_cli = pytest.mark.skipif(
    not (REPO / "finetune" / "__main__.py").is_file(), reason="fine-tuning CLI not written yet"
)


@pytestmark_cli
@pytest.mark.parametrize(
    "args,words",
    [
        (("bogus-command",), "unknown command"),
        (("train", "--max_steps", "abc"), "invalid int value"),
    ],
)
def test_finetune_cli_rejects_bad_arguments_without_traceback(args, words) -> None:
    proc = _cli(*args)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert words in out and "Traceback" not in out


@pytestmark_cli
def test_finetune_cli_missing_config_is_a_clear_error(tmp_path) -> None:
    proc = _cli("train", "--config", str(tmp_path / "missing.yaml"))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "missing.yaml" in out
    assert "Traceback" not in out
