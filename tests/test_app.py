"""The chat web UI served for real on a loopback port, driven over HTTP with ``gradio_client``.

Real engine (``ShoppingAssistant`` over the synthetic priced Beauty fixture, real
embeddings/Chroma in a tmp cache), template replies (``llm=None``) to stay fast.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import contextlib
import re
import socket
from pathlib import Path

import httpx
import pytest
from assistant_catalog import make_dataset

import app
from assistant.ui.render import (
    NO_PRICE_FOR_ITEM,
    NO_PRICE_IN_CATALOG,
    card_html,
    constraint_chips,
    drop_chips,
    format_price,
)
from assistant.ui.web import serving
from retrieval.filters import Constraints

gradio_client = pytest.importorskip("gradio_client")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    cache = tmp_path_factory.mktemp("ui-cache")
    ds = make_dataset()
    registry = app.make_registry(
        {"beauty": ds, "beauty-spare": ds, "broken": cache / "no-such-dataset"},
        llm=None,
        cache_dir=cache,
        include_demos=False,
        show_progress=False,
    )
    demo = app.create_app(registry)
    with serving(demo, "127.0.0.1", free_port()) as url:
        yield url, demo, registry
    for key in ("beauty", "beauty-spare"):
        if registry.is_loaded(key):
            with contextlib.suppress(Exception):
                registry.get(key).close()


def client(url: str):
    return gradio_client.Client(url, verbose=False, download_files=False)


def outputs(result) -> dict:
    """Named view of a UI endpoint's outputs: chat messages, card HTML, chips."""
    chat = result[0]
    cards = [x for x in result if isinstance(x, str) and 'class="sa-card"' in x]
    chips = next((x for x in result if isinstance(x, dict) and "choices" in x and "value" in x), None)
    return {"chat": chat, "cards": cards, "chips": chips}


def message_text(message) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))


def last_bot_text(chat) -> str:
    return message_text([m for m in chat if m["role"] == "assistant"][-1])


def card_ids(cards: list[str]) -> list[str]:
    return [re.search(r'data-item-id="([^"]+)"', c).group(1) for c in cards]


def card_prices(cards: list[str]) -> list[float]:
    out = []
    for c in cards:
        m = re.search(r'class="sa-card-price">\$([\d,.]+)<', c)
        assert m, f"card without a price: {c[:200]}"
        out.append(float(m.group(1).replace(",", "")))
    return out


# --- server settings -------------------------------------------------------------------
def test_binds_loopback_and_analytics_off(served):
    url, demo, _ = served
    assert url.startswith("http://127.0.0.1:")
    assert demo.server_name == "127.0.0.1"
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert demo.analytics_enabled is False
    # Not reachable on any other interface address of this machine.
    port = demo.server_port
    others = set()
    with contextlib.suppress(OSError):
        others |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    for host in others - {"127.0.0.1"}:
        if host.startswith("127."):
            continue
        with pytest.raises(OSError), socket.create_connection((host, port), timeout=2):
            pass


def test_page_loads_no_external_assets(served):
    url, _, _ = served
    with httpx.Client(base_url=url, timeout=30) as http:
        page = http.get("/")
        assert page.status_code == 200
        config = http.get("/config").json()
        theme = http.get("/theme.css")
    css = theme.text if theme.status_code == 200 else ""
    assert "fonts.googleapis" not in page.text + css
    assert "fonts.gstatic" not in page.text + css
    assert config.get("analytics_enabled") in (None, False)
    assert "system-ui" in css or "system-ui" in page.text


def test_cli_defaults_to_loopback_and_rejects_share():
    args = app.parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 7860)
    with pytest.raises(SystemExit):
        app.parse_args(["--share"])
    args = app.parse_args(["--dataset", "movielens-100k", "/data/x", "--port", "9000"])
    assert args.dataset == ["movielens-100k", "/data/x"] and args.port == 9000


# --- chat, feedback, sessions ------------------------------------------------------------
def stream_updates(c, message: str) -> list[tuple]:
    """Every update the streamed ``/chat`` turn sent, in order (the last one is the final state)."""
    job = c.submit(message, api_name="/chat")
    job.result(timeout=120)
    return job.outputs()


def test_chat_streams_cards_first_then_text(served):
    url, _, _ = served
    c = client(url)
    updates = stream_updates(c, "a moisturizer under $30")
    assert len(updates) >= 3, "a turn streams: echo, cards, text, final"
    chat, bot_text_when_cards_arrived, texts = [], None, []
    for u in updates:
        if isinstance(u[0], list):  # a chat update (other yields leave the chat as it was)
            chat = u[0]
            texts.append(last_bot_text(chat) if any(m["role"] == "assistant" for m in chat) else "")
        if bot_text_when_cards_arrived is None and outputs(u)["cards"]:
            bot_text_when_cards_arrived = last_bot_text(chat)
    # Cards come from catalog data before any reply text is written.
    assert bot_text_when_cards_arrived == "", bot_text_when_cards_arrived
    assert texts[-1].strip(), "empty final reply"
    out = outputs(updates[-1])
    assert last_bot_text(out["chat"]).strip(), "empty reply"
    assert len(out["cards"]) >= 3
    prices = card_prices(out["cards"])
    assert all(p <= 30 for p in prices), prices
    assert all("<li>" in card for card in out["cards"]), "every card lists its reasons"
    labels = [label for label, _ in out["chips"]["choices"]]
    assert any("$30" in label for label in labels), labels
    c.close()


def test_not_for_me_hides_item_in_next_reply(served):
    url, _, _ = served
    c = client(url)
    first = outputs(c.predict("shampoo under $50", api_name="/chat"))
    ids = card_ids(first["cards"])
    assert len(ids) >= 3
    dismissed = ids[0]
    after = outputs(c.predict(api_name="/not_for_me_0"))
    assert dismissed not in card_ids(after["cards"])
    assert "not for you" in last_bot_text(after["chat"])
    more = outputs(c.predict("more", api_name="/chat"))
    assert more["cards"], "no cards after 'more'"
    assert dismissed not in card_ids(more["cards"])
    c.close()


def test_small_talk_keeps_the_cards_on_screen(served):
    url, _, _ = served
    c = client(url)
    shown = card_ids(outputs(c.predict("shampoo under $50", api_name="/chat"))["cards"])
    assert len(shown) >= 3
    thanks = outputs(c.predict("Thanks for the suggestions!", api_name="/chat"))
    assert card_ids(thanks["cards"]) == shown  # no new page, and the old one is not wiped
    c.close()


def test_removing_a_chip_changes_the_session_constraints(served):
    url, _, _ = served
    c = client(url)
    first = outputs(c.predict("a moisturizer under $40", api_name="/chat"))
    assert max(card_prices(first["cards"])) <= 40
    chips = first["chips"]["choices"]
    price_keys = [key for label, key in chips if "$40" in label]
    assert price_keys, chips
    kept = [key for _, key in chips if key not in price_keys]
    edited = outputs(c.predict(kept, api_name="/edit_constraints"))
    assert not any("$40" in label for label, _ in edited["chips"]["choices"])
    # The engine's state changed too: the next turn runs without the budget.
    more = outputs(c.predict("more", api_name="/chat"))
    assert not any("$40" in label for label, _ in more["chips"]["choices"])
    assert any(p > 40 for p in card_prices(more["cards"])), card_prices(more["cards"])
    c.close()


def test_sessions_are_isolated(served):
    url, _, _ = served
    a, b = client(url), client(url)
    out_a = outputs(a.predict("lipstick under $12", api_name="/chat"))
    out_b = outputs(b.predict("a conditioner", api_name="/chat"))
    chips_a = [label for label, _ in out_a["chips"]["choices"]]
    chips_b = [label for label, _ in out_b["chips"]["choices"]]
    assert any("$12" in x for x in chips_a)
    assert not any("$12" in x for x in chips_b), chips_b
    texts_b = " ".join(message_text(m) for m in out_b["chat"])
    assert "lipstick" not in texts_b.lower()
    assert len(out_b["chat"]) == 2, "b sees only its own turn"
    a.close()
    b.close()


# --- errors are friendly and the server keeps running -------------------------------------
def test_broken_dataset_gives_friendly_message(served):
    url, _, _ = served
    c = client(url)
    before = outputs(c.predict("mascara under $30", api_name="/chat"))
    assert before["cards"]
    out = outputs(c.predict("broken", api_name="/pick_dataset"))
    text = last_bot_text(out["chat"])
    assert text.startswith("Sorry"), text
    assert "Traceback" not in text and 'File "' not in text
    # Nothing was lost: same conversation on the working dataset, and the next turn answers.
    assert "mascara under $30" in [message_text(m) for m in out["chat"]]
    ok = outputs(c.predict("cleanser under $30", api_name="/chat"))
    assert len(ok["cards"]) >= 1
    c.close()


def test_engine_failure_mid_chat_is_friendly_and_server_survives(served):
    url, _, registry = served
    c = client(url)
    outputs(c.predict("beauty-spare", api_name="/pick_dataset"))
    registry.get("beauty-spare").sessions.close()  # a real storage failure: the sqlite store is gone
    out = outputs(c.predict("cleanser under $30", api_name="/chat"))
    text = last_bot_text(out["chat"])
    assert text.startswith("Sorry, something went wrong"), text
    assert "Traceback" not in text and "sqlite" not in text.lower()
    # The server still serves this and other sessions.
    outputs(c.predict("beauty", api_name="/pick_dataset"))
    again = outputs(c.predict("cleanser under $30", api_name="/chat"))
    assert len(again["cards"]) >= 1
    c.close()


# --- pure rendering ----------------------------------------------------------------------
def test_prices_are_never_invented():
    assert format_price(None, "USD", catalog_has_prices=False) == NO_PRICE_IN_CATALOG
    assert format_price(None, "USD", catalog_has_prices=True) == NO_PRICE_FOR_ITEM
    assert format_price(12.5, "USD") == "$12.50"
    assert format_price(3, "SEK") == "3.00 SEK"
    html = card_html(
        {"item_id": "m1", "title": "Toy Story (1995)", "price": None}, 1, catalog_has_prices=False
    )
    assert NO_PRICE_IN_CATALOG in html and "$" not in html


def test_card_escapes_catalog_text():
    html = card_html(
        {"item_id": 'x"1', "title": "<script>alert(1)</script>", "brand": "A&B", "reasons": ["<b>cheap</b>"]},
        1,
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>" not in html and "A&amp;B" in html


def test_each_chip_removes_exactly_its_constraint():
    c = Constraints(
        price_min=5,
        price_max=40,
        brands_in=("Olay", "Dove"),
        brands_out=("Revlon",),
        categories=(("Beauty", "Hair Care"),),
        in_stock=True,
        exclude_items=("B0001", "B0002"),
    )
    chips = constraint_chips(c, currency="USD", title_of=lambda i: f"title of {i}")
    assert len(chips) == 8
    assert chips[-1][0].startswith("hiding 2 items")
    for label, key in chips:
        after = drop_chips(c, [key])
        remaining = [k for _, k in constraint_chips(after, currency="USD")]
        assert key not in remaining, label
        assert len(remaining) == len(chips) - 1, label
    assert drop_chips(c, [k for _, k in chips]).is_empty


def test_dataset_picker_lists_paths_and_demos(tmp_path: Path):
    registry = app.make_registry([str(tmp_path / "shop-a")], llm=None, cache_dir=tmp_path)
    keys = list(registry.choices)
    assert keys[0] == "shop-a (folder)"
    assert "movielens-100k" in keys and "clothing-reviews" in keys
    assert registry.default_key == keys[0]


# --- with a real (tiny) LLM writing the reply ------------------------------------------------
@pytest.mark.slow
def test_real_llm_reply_streams_through_the_ui(served, tiny_chat_model, tmp_path: Path):
    from assistant import ShoppingAssistant
    from assistant.sessions import SessionStore
    from assistant.ui.engines import EngineRegistry, dataset_choices

    _, _, registry = served
    base = registry.get("beauty")  # reuse its index; only the LLM differs
    engine = ShoppingAssistant(base.index, tiny_chat_model, SessionStore(tmp_path / "sessions"))
    llm_registry = EngineRegistry(dataset_choices({"beauty-llm": base.dataset}), lambda _source: engine)
    demo = app.create_app(llm_registry)
    with serving(demo, "127.0.0.1", free_port()) as url:
        c = client(url)
        updates = stream_updates(c, "a moisturizer under $40")
        final = outputs(updates[-1])
        text = last_bot_text(final["chat"])
        assert text.strip() and not text.startswith("Sorry"), text
        assert len(final["cards"]) >= 3
        chat_updates = [u for u in updates if isinstance(u[0], list)]
        assert len(chat_updates) >= 3, "echo, at least one text delta, final"
        c.close()
    engine.close()


def test_dataset_switch_tracks_the_index_builds_progress_bars() -> None:
    # gradio shows tqdm bars in the UI only for a handler that takes a Progress(track_tqdm=True)
    import inspect

    import gradio as gr

    from assistant.ui.web import ShopUI

    default = inspect.signature(ShopUI.pick_dataset).parameters["progress"].default
    assert isinstance(default, gr.Progress) and default.track_tqdm
    # and the engines it opens build their index with tqdm bars unless told otherwise
    from assistant import ShoppingAssistant

    assert inspect.signature(ShoppingAssistant.from_dataset).parameters["show_progress"].default is True


def test_licence_file_matches_the_declared_licence() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[1]
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["license"]["text"]
    assert declared == "Apache-2.0"
    text = (root / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
