"""The gradio chat UI: layout, per-browser-session state and event handlers.

All shopper state lives in a ``gr.State`` dict per browser session (its own
``session_id`` for the engine); the only module-level objects are the shared,
per-dataset engines. Every handler catches its own errors and reports them as a
friendly chat message, so one bad turn never shows a stack trace or stops the server.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import gradio as gr

from assistant.ui.engines import EngineRegistry, set_session_constraints
from assistant.ui.images import card_image_src, remote_images_allowed, remote_images_checkbox
from assistant.ui.render import (
    CSS,
    NO_PRICE_IN_CATALOG,
    bundle_html,
    card_html,
    comparison_markdown,
    constraint_chips,
    drop_chips,
    friendly_error,
    history_markdown,
    on_screen,
    profile_markdown,
)
from retrieval.data.schema import Dataset
from retrieval.filters import Constraints

logger = logging.getLogger(__name__)

MAX_CARDS = 6
CARDS_PER_ROW = 3
MAX_SHOPPERS = 200
HISTORY_SHOWN = 8
NEW_SHOPPER = "__new__"
NEW_SHOPPER_LABEL = "New shopper"

THEME = gr.themes.Default(
    font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
)


# --- session state ---------------------------------------------------------------------
def new_session(dataset_key: str, user_id: str | None = None, *, remote_images: bool = False) -> dict:
    """Fresh per-browser state: a new engine session id, empty chat, no cards (``remote_images``:
    the shopper's "photos from the web" switch, carried into each new conversation)."""
    return {
        "sid": f"web-{uuid.uuid4().hex}",
        "dataset": dataset_key,
        "user": user_id,
        "messages": [],
        "cards": [],
        "constraints": Constraints().to_dict(),
        "remote_images": bool(remote_images),
    }


class ShopUI:
    """Builds the Blocks app around an ``EngineRegistry`` and owns its event handlers."""

    def __init__(
        self,
        registry: EngineRegistry,
        *,
        max_shoppers: int = MAX_SHOPPERS,
        title: str | None = None,
        remote_images: bool = False,
    ):
        self.registry = registry
        self.max_shoppers = max_shoppers
        self.title = title or "Shopping assistant"
        self.remote_images = remote_images  # the "photos from the web" switch starts on (not local-only)
        self.demo: gr.Blocks | None = None

    # --- dataset facts -------------------------------------------------------------
    def _dataset(self, key: str) -> Dataset:
        return self.registry.dataset(key)

    def _money(self, key: str) -> tuple[str | None, bool, bool]:
        ds = self._dataset(key)
        return ds.currency, ds.has_prices, ds.catalog.has_images

    def _title_of(self, key: str) -> Callable[[str], str]:
        catalog = self._dataset(key).catalog

        def title(item_id: str) -> str:
            item = catalog.get(item_id)
            return item.title if item is not None else item_id

        return title

    def dataset_header(self, key: str) -> str:
        ds = self._dataset(key)
        s = ds.summary()
        price_note = "priced catalog" if ds.has_prices else f"**{NO_PRICE_IN_CATALOG}**"
        desc = f" — {ds.description}" if ds.description else ""
        return (
            f"**{self.registry.choices[key].label}**{desc}  \n"
            f"{s['items']:,} items · {s['users']:,} shoppers · {s['interactions']:,} interactions · {price_note}"
        )

    def shopper_choices(self, key: str) -> list[tuple[str, str]]:
        ds = self._dataset(key)
        frame = ds.interactions.frame
        counts = frame.groupby("user_id", sort=False).size() if len(frame) else None
        choices = [(NEW_SHOPPER_LABEL, NEW_SHOPPER)]
        for uid in ds.interactions.users[: self.max_shoppers]:
            n = int(counts.get(uid, 0)) if counts is not None else 0
            choices.append((f"{uid} · {n} items", uid))
        return choices

    def shopper_history(self, key: str, user_id: str | None) -> str:
        """The shopper's recent items as the engine sees them (after forget, likes in chat...)."""
        if user_id is None:
            return history_markdown([], 0)
        engine = self.registry.get(key)
        history = engine.history(user_id) if hasattr(engine, "history") else None
        if history is None:
            history = self._dataset(key).interactions.history(user_id)
        if not history:
            return f"_No history for shopper {user_id!r}: treated as a new shopper._"
        title = self._title_of(key)
        return history_markdown([title(i) for i in history[-HISTORY_SHOWN:]], len(history))

    def profile_text(self, state: dict[str, Any]) -> str:
        """The "what you know about me" panel: the stored profile plus this conversation's feedback."""
        engine = self.registry.get(state["dataset"])
        user = state.get("user")
        parts = []
        if user is None:
            parts.append("_New shopper: nothing is stored about you beyond this conversation._")
        else:
            parts.append(profile_markdown(engine.profile(user)))
        record = engine.session(state["sid"]) if hasattr(engine, "session") else None
        if record is not None:
            title = self._title_of(state["dataset"])
            for label, ids in (("Liked in this chat", record.liked), ("Not for you", record.disliked)):
                if ids:
                    parts.append(f"**{label}:** " + "; ".join(title(i) for i in ids[-8:]))
        return "\n\n".join(parts)

    # --- rendering into component updates -------------------------------------------
    def _constraints(self, state: dict[str, Any]) -> Constraints:
        return Constraints.from_dict(state.get("constraints") or {})

    def constraint_updates(self, state: dict[str, Any]) -> dict[Any, Any]:
        """Chips and the budget field, both from the session's constraints (one source of truth)."""
        currency, _, _ = self._money(state["dataset"])
        c = self._constraints(state)
        chips = constraint_chips(c, currency=currency, title_of=self._title_of(state["dataset"]))
        return {
            self.chips: gr.update(choices=chips, value=[key for _, key in chips]),
            self.budget: "" if c.price_max is None else f"{c.price_max:g}",
        }

    def _liked(self, state: dict[str, Any]) -> set[str]:
        """The session's liked items, as the engine's dialogue state holds them (buttons and chat)."""
        engine = self.registry.get(state["dataset"])
        record = engine.session(state["sid"]) if hasattr(engine, "session") else None
        return set(record.liked) if record is not None else set()

    def image_src(self, item: Mapping[str, Any], state: Mapping[str, Any]) -> str | None:
        """The URL a card's ``<img>`` may load (``assistant.ui.images``), ``None``: the placeholder."""
        allowed = None if self.demo is None else self.demo.allowed_paths
        return card_image_src(item.get("image"), remote_ok=state.get("remote_images"), allowed_paths=allowed)

    def card_updates(self, state: dict[str, Any]) -> dict[Any, Any]:
        currency, has_prices, has_images = self._money(state["dataset"])
        cards = state.get("cards") or []
        liked = self._liked(state) if cards else set()
        out: dict[Any, Any] = {}
        for i in range(MAX_CARDS):
            if i < len(cards):
                item = cards[i]
                out[self.card_boxes[i]] = gr.update(visible=True)
                out[self.card_htmls[i]] = card_html(
                    item, i + 1, currency=currency, catalog_has_prices=has_prices, liked=item["item_id"] in liked,
                    image_src=self.image_src(item, state), catalog_has_images=has_images,
                )
            else:
                out[self.card_boxes[i]] = gr.update(visible=False)
                out[self.card_htmls[i]] = ""
        out[self.cards_header] = (
            f"### Recommendations ({min(len(cards), MAX_CARDS)})" if cards else "_No recommendations yet._"
        )
        return out

    def extras_updates(
        self, state: dict[str, Any], comparison: Any = None, bundle: Any = None
    ) -> dict[Any, Any]:
        currency, has_prices, _ = self._money(state["dataset"])
        table = comparison_markdown(comparison)
        bundle_view = bundle_html(
            bundle, state.get("cards") or [], currency=currency, catalog_has_prices=has_prices
        )
        return {
            self.compare_md: gr.update(value=table, visible=bool(table)),
            self.bundle_view: gr.update(value=bundle_view, visible=bool(bundle_view)),
        }

    def _apply_reply_data(self, state: dict[str, Any], reply: Any) -> None:  # an ItemsEvent or a Reply
        page = [it.to_dict() if hasattr(it, "to_dict") else dict(it) for it in reply.items]
        state["cards"] = on_screen(state.get("cards") or [], page, reply.intent)
        state["constraints"] = reply.constraints.to_dict()

    def full_refresh(self, state: dict[str, Any]) -> dict[Any, Any]:
        out: dict[Any, Any] = {self.state: state, self.chatbot: state["messages"]}
        out.update(self.card_updates(state))
        out.update(self.extras_updates(state))
        out.update(self.constraint_updates(state))
        return out

    def _error_out(self, state: dict[str, Any], action: str, exc: BaseException) -> dict[Any, Any]:
        logger.exception("UI handler failed while trying to %s", action)
        state["messages"] = [
            *state.get("messages", []),
            {"role": "assistant", "content": friendly_error(action, exc)},
        ]
        return {self.state: state, self.chatbot: state["messages"]}

    # --- handlers --------------------------------------------------------------------
    def respond(self, message: str, state: dict[str, Any]) -> Iterator[dict[Any, Any]]:
        """One streamed chat turn: cards and constraints first, then the reply text token by token."""
        text = (message or "").strip()
        if not text:
            yield {self.msg: ""}
            return
        state["messages"] = [
            *state["messages"],
            {"role": "user", "content": text},
            {"role": "assistant", "content": ""},
        ]
        yield {self.state: state, self.chatbot: state["messages"], self.msg: ""}
        reply_text = ""
        try:
            engine = self.registry.get(state["dataset"])
            for event in engine.stream(text, session_id=state["sid"], user_id=state["user"]):
                kind = getattr(event, "type", None)
                if kind == "items":
                    self._apply_reply_data(state, event)
                    out = {self.state: state, **self.constraint_updates(state)}
                    out.update(self.card_updates(state))
                    out.update(self.extras_updates(state, event.comparison, event.bundle))
                    yield out
                elif kind == "text":
                    reply_text += event.text
                    state["messages"][-1] = {"role": "assistant", "content": reply_text}
                    yield {self.chatbot: state["messages"]}
                elif kind == "reset":
                    reply_text = event.text
                    state["messages"][-1] = {"role": "assistant", "content": reply_text}
                    yield {self.chatbot: state["messages"]}
                elif kind == "done":
                    reply = event.reply
                    self._apply_reply_data(state, reply)
                    state["messages"][-1] = {"role": "assistant", "content": reply.text or reply_text}
                    out = self.full_refresh(state)
                    out.update(self.extras_updates(state, reply.comparison, reply.bundle))
                    out[self.profile_md] = self.profile_text(state)
                    yield out
        except Exception as exc:
            logger.exception("chat turn failed")
            state["messages"][-1] = {"role": "assistant", "content": friendly_error("answer that", exc)}
            yield {self.state: state, self.chatbot: state["messages"]}

    def feedback(self, slot: int, liked: bool, state: dict[str, Any]) -> dict[Any, Any]:
        """Like / not-for-me on one card; the engine applies it to this session's later turns."""
        cards = state.get("cards") or []
        if slot >= len(cards):
            return {}
        item = cards[slot]
        try:
            engine = self.registry.get(state["dataset"])
            engine.feedback(state["sid"], item["item_id"], liked, user_id=state.get("user"))
        except Exception as exc:
            return self._error_out(state, "record that feedback", exc)
        if liked:
            note = f"Noted: you like **{item['title']}**. I'll favour similar items."
        else:
            state["cards"] = [c for c in cards if c["item_id"] != item["item_id"]]
            note = f"Got it: **{item['title']}** is not for you. I'll leave it and close look-alikes out."
        state["messages"] = [*state["messages"], {"role": "assistant", "content": note}]
        out = {self.state: state, self.chatbot: state["messages"]}
        out.update(self.card_updates(state))
        try:
            out[self.profile_md] = self.profile_text(state)
        except Exception:
            logger.exception("profile refresh failed")
        return out

    def edit_chips(self, kept: list[str] | None, state: dict[str, Any]) -> dict[Any, Any]:
        """The shopper removed constraint chips: drop exactly those from the session's state."""
        current = self._constraints(state)
        currency, _, _ = self._money(state["dataset"])
        all_keys = [k for _, k in constraint_chips(current, currency=currency)]
        removed = [k for k in all_keys if k not in set(kept or [])]
        if not removed:
            return {}
        new = drop_chips(current, removed)
        return self._set_constraints(state, new, "update your filters")

    def set_budget(self, value: str | float | None, state: dict[str, Any]) -> dict[Any, Any]:
        """The "Max price" field: a number sets the budget, an empty field removes it."""
        current = self._constraints(state)
        raw = str(value if value is not None else "").strip().lstrip("$€£¥").replace(",", "")
        try:
            budget = float(raw) if raw else None
            if budget is not None and budget <= 0:
                budget = None
            new = current.merged(price_max=budget)
        except ValueError as exc:
            msg = f"{value!r} is not a price" if "could not convert" in str(exc) else str(exc)
            out = self._error_out(state, "set that budget", ValueError(msg))
            out.update(self.constraint_updates(state))
            return out
        if budget == current.price_max:
            return self.constraint_updates(state)
        return self._set_constraints(state, new, "set that budget")

    def _set_constraints(self, state: dict[str, Any], new: Constraints, action: str) -> dict[Any, Any]:
        try:
            engine = self.registry.get(state["dataset"])
            applied = set_session_constraints(engine, state["sid"], new, state.get("user"))
        except Exception as exc:
            out = self._error_out(state, action, exc)
            out.update(self.constraint_updates(state))  # put the chips back: nothing changed
            return out
        state["constraints"] = applied.to_dict()
        return {
            self.state: state,
            **self.constraint_updates(state),
            self.cards_header: "### Filters changed: send a message (or say “more”) to refresh the results",
        }

    def pick_shopper(self, choice: str | None, state: dict[str, Any]) -> dict[Any, Any]:
        """Switching shopper starts a new conversation (a different person, a different session)."""
        user = None if choice in (None, "", NEW_SHOPPER) else str(choice).strip()
        state = new_session(state["dataset"], user, remote_images=state.get("remote_images"))
        out = self.full_refresh(state)
        try:
            out[self.history_md] = self.shopper_history(state["dataset"], user)
            out[self.profile_md] = self.profile_text(state)
        except Exception as exc:
            out.update(self._error_out(state, "load that shopper", exc))
        return out

    def pick_dataset(
        self, key: str, state: dict[str, Any], progress: gr.Progress = gr.Progress(track_tqdm=True)  # noqa: B008
    ) -> Iterator[dict[Any, Any]]:
        """Switch dataset: a new conversation on its engine (built on first use, with a note).

        ``progress`` (track_tqdm): the index build's tqdm bars show in the UI while it runs."""
        if key == state["dataset"]:
            yield {}
            return
        if not self.registry.is_loaded(key):
            label = self.registry.choices[key].label if key in self.registry.choices else key
            note = f"Opening **{label}**… the first time, its product index is built (this can take a few minutes)."
            state["messages"] = [*state["messages"], {"role": "assistant", "content": note}]
            yield {self.state: state, self.chatbot: state["messages"]}
        try:
            self.registry.get(key)  # build (or reuse) the engine before switching
            fresh = new_session(key, remote_images=state.get("remote_images"))
            out = self.full_refresh(fresh)
            out[self.header] = self.dataset_header(key)
            out[self.shopper] = gr.update(choices=self.shopper_choices(key), value=NEW_SHOPPER)
            out[self.history_md] = self.shopper_history(key, None)
            out[self.profile_md] = self.profile_text(fresh)
            out[self.budget] = gr.update(value="", visible=self._dataset(key).has_prices)
        except Exception as exc:
            # Stay where we were: same dataset, same conversation, plus a friendly note.
            out = self._error_out(state, f"open the dataset {key!r}", exc)
            out[self.dataset_dd] = state["dataset"]
        yield out

    def forget(self, state: dict[str, Any]) -> dict[Any, Any]:
        user = state.get("user")
        try:
            engine = self.registry.get(state["dataset"])
            if user is not None:
                engine.forget(user)
        except Exception as exc:
            return self._error_out(state, "forget your data", exc)
        fresh = new_session(state["dataset"], user, remote_images=state.get("remote_images"))
        fresh["messages"] = [
            {
                "role": "assistant",
                "content": "Done: I forgot what I had learned about you in this app and started a new conversation.",
            }
        ]
        out = self.full_refresh(fresh)
        out[self.profile_md] = self.profile_text(fresh)
        out[self.history_md] = self.shopper_history(fresh["dataset"], user)
        return out

    def new_chat(self, state: dict[str, Any]) -> dict[Any, Any]:
        fresh = new_session(state["dataset"], state.get("user"), remote_images=state.get("remote_images"))
        return self.full_refresh(fresh)

    # --- layout ----------------------------------------------------------------------
    def build(self) -> gr.Blocks:
        key = self.registry.default_key
        with gr.Blocks(title=self.title, analytics_enabled=False) as demo:
            self.demo = demo
            remote = remote_images_allowed(self.remote_images)
            self.state = gr.State(functools.partial(new_session, key, remote_images=remote))
            gr.Markdown(f"## {self.title}")
            self.header = gr.Markdown(self.dataset_header(key), elem_id="sa-header")
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    self._build_chat()
                    self._build_cards()
                with gr.Column(scale=1, min_width=260):
                    self._build_side(key)
            self._wire()
        return demo

    def set_remote_images(self, value: bool, state: dict[str, Any]) -> dict[Any, Any]:
        """The "photos from the web" switch: the cards are redrawn with or without remote photos."""
        state["remote_images"] = remote_images_allowed(value)
        return {self.state: state, **self.card_updates(state)}

    def _build_chat(self) -> None:
        self.chatbot = gr.Chatbot(
            label="Chat",
            height=380,
            elem_id="sa-chat",
            feedback_options=None,
            buttons=["copy", "copy_all"],
            placeholder="Ask for something: “a light summer dress under $60, not too formal”",
        )
        with gr.Row():
            self.msg = gr.Textbox(
                show_label=False,
                placeholder="What are you looking for?",
                elem_id="sa-msg",
                scale=5,
                autofocus=True,
            )
            self.send = gr.Button("Send", variant="primary", elem_id="sa-send", scale=1, min_width=80)

    def _build_cards(self) -> None:
        self.cards_header = gr.Markdown("_No recommendations yet._", elem_id="sa-cards-header")
        self.card_boxes, self.card_htmls, self.like_btns, self.nope_btns = [], [], [], []
        for start in range(0, MAX_CARDS, CARDS_PER_ROW):
            with gr.Row(elem_classes="sa-cards"):
                for _slot in range(start, min(start + CARDS_PER_ROW, MAX_CARDS)):
                    with gr.Column(
                        visible=False,
                        min_width=200,
                        elem_classes=["sa-card-box", f"sa-slot-{_slot}"],
                    ) as box:
                        html = gr.HTML("", js_on_load=None, elem_classes="sa-card-html")
                        with gr.Row():
                            like = gr.Button("♥ Like", size="sm", elem_classes="sa-like", min_width=60)
                            nope = gr.Button("✕ Not for me", size="sm", elem_classes="sa-nope", min_width=60)
                    self.card_boxes.append(box)
                    self.card_htmls.append(html)
                    self.like_btns.append(like)
                    self.nope_btns.append(nope)
        self.compare_md = gr.Markdown("", visible=False, elem_id="sa-compare")
        self.bundle_view = gr.HTML("", visible=False, js_on_load=None, elem_id="sa-bundle")

    def _build_side(self, key: str) -> None:
        self.dataset_dd = gr.Dropdown(
            choices=[(c.label, c.key) for c in self.registry.choices.values()],
            value=key,
            label="Dataset",
            elem_id="sa-dataset",
        )
        self.shopper = gr.Dropdown(
            choices=self.shopper_choices(key),
            value=NEW_SHOPPER,
            label="Shopper",
            info="A real shopper from the data (their history is used), or a new one",
            allow_custom_value=True,
            elem_id="sa-shopper",
        )
        self.history_md = gr.Markdown(history_markdown([], 0), elem_id="sa-history")
        self.chips = gr.Dropdown(
            choices=[],
            value=[],
            multiselect=True,
            label="Active constraints",
            info="Remove a chip (×) to drop that filter",
            elem_id="sa-chips",
        )
        self.budget = gr.Textbox(
            value="",
            label="Max price",
            placeholder="no budget",
            info="Type a budget and press Enter; clear it to remove",
            visible=self._dataset(key).has_prices,
            elem_id="sa-budget",
        )
        self.remote_cb = remote_images_checkbox(self.remote_images)
        self.new_btn = gr.Button("New conversation", size="sm", elem_id="sa-new")
        with gr.Accordion("What you know about me", open=False, elem_id="sa-profile-box"):
            self.profile_md = gr.Markdown(
                "_New shopper: I only remember this conversation._", elem_id="sa-profile"
            )
            self.forget_btn = gr.Button("Forget me", variant="stop", size="sm", elem_id="sa-forget")

    def _wire(self) -> None:
        everything = [
            self.state,
            self.chatbot,
            self.msg,
            self.chips,
            self.budget,
            self.cards_header,
            *self.card_boxes,
            *self.card_htmls,
            self.compare_md,
            self.bundle_view,
            self.profile_md,
            self.history_md,
            self.header,
            self.shopper,
            self.dataset_dd,
        ]
        self.msg.submit(self.respond, [self.msg, self.state], everything, api_name="chat")
        self.send.click(self.respond, [self.msg, self.state], everything, api_visibility="private")
        for i in range(MAX_CARDS):
            self.like_btns[i].click(
                functools.partial(self.feedback, i, True), [self.state], everything, api_name=f"like_{i}"
            )
            self.nope_btns[i].click(
                functools.partial(self.feedback, i, False),
                [self.state],
                everything,
                api_name=f"not_for_me_{i}",
            )
        self.chips.input(self.edit_chips, [self.chips, self.state], everything, api_name="edit_constraints")
        self.budget.submit(self.set_budget, [self.budget, self.state], everything, api_name="set_budget")
        self.shopper.input(self.pick_shopper, [self.shopper, self.state], everything, api_name="pick_shopper")
        self.dataset_dd.input(
            self.pick_dataset, [self.dataset_dd, self.state], everything, api_name="pick_dataset"
        )
        self.forget_btn.click(self.forget, [self.state], everything, api_name="forget")
        self.remote_cb.input(
            self.set_remote_images, [self.remote_cb, self.state], everything, api_visibility="private"
        )
        self.new_btn.click(self.new_chat, [self.state], everything, api_name="new_conversation")
        self.chatbot.clear(self.new_chat, [self.state], everything, api_visibility="private")


def build_app(registry: EngineRegistry, **options: Any) -> gr.Blocks:
    """The Blocks app; ``options`` go to ``ShopUI`` (``max_shoppers``, ``title``, ``remote_images``)."""
    return ShopUI(registry, **options).build()


def launch_app(
    demo: gr.Blocks,
    host: str = "127.0.0.1",
    port: int | None = 7860,
    *,
    prevent_thread_lock: bool = False,
    quiet: bool = False,
) -> str:
    """Serve locally (never a share link, no SSR node server, no MCP/PWA); returns the local URL."""
    demo.queue(default_concurrency_limit=1)
    _app, local_url, _share = demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=prevent_thread_lock,
        show_error=False,
        quiet=quiet,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        footer_links=["api", "settings"],
        theme=THEME,
        css=CSS,
    )
    return local_url


@contextlib.contextmanager
def serving(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serve ``demo`` in this process for the duration of the block (tests, notebooks); yields the URL."""
    url = launch_app(demo, host, port, prevent_thread_lock=True, quiet=True)
    try:
        yield url
    finally:
        demo.close()
