"""``ShoppingAssistant``: the public API that turns one shopper message into a grounded reply.

Per turn: redact PII -> parse (rules; LLM JSON only when the rules leave the
turn unreadable) -> fold into the session's dialogue state -> route by intent
-> retrieve/rank/diversify or compare/details/bundle from catalog data ->
explain each card from evidence -> let the LLM write a short lead-in that sees
only those cards -> check it against the catalog (regenerate once, then fall
back to a template) -> persist the session atomically and log the turn.

Everything heavy (embeddings, Chroma, BM25, scorer, co-occurrence, the LLM)
is built or loaded once in ``from_dataset``; a turn only does vector lookups,
a few numpy products and (optionally) one short generation.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from langchain_core.tools import StructuredTool

import prompts
from assistant.chat_history import SessionChatHistory
from assistant.config import MAX_ID_CHARS, AssistantConfig
from assistant.constraint_edits import ConstraintEditor
from assistant.generation.generate import ReplyGenerator
from assistant.grounding import CatalogMatcher, GroundingChecker
from assistant.index import AssistantIndex
from assistant.llm_setup import build_llm_reranker, chat_models, model_name, resolve_chat_model
from assistant.plan import Plan
from assistant.planning.router import Router
from assistant.privacy import redact
from assistant.profile import UserProfile, build_profile
from assistant.reply import DoneEvent, GroundingReport, ItemsEvent, Reply, StreamEvent, TextDelta, TextReset
from assistant.runnable import AssistantRunnable
from assistant.sessions import SessionRecord, SessionStore
from assistant.stage_context import StageContext
from assistant.understanding_stage import Understander, UnderstoodTurn
from llm.chat_model import LocalChatModel
from llm.openai_backend import with_endpoint
from llm.registry import DEFAULT_LLM
from llm.runtime import set_torch_threads
from retrieval.data.registry import load_dataset
from retrieval.data.schema import Dataset
from retrieval.diversity import DiversityConfig
from retrieval.filters import Constraints
from retrieval.ranker import FusedRanker, RankerWeights
from retrieval.search_tool import search_products_tool
from retrieval.text import detect_language

__all__ = ["ShoppingAssistant", "build_llm_reranker", "check_id", "resolve_chat_model", "valid_unicode"]


def valid_unicode(text: str) -> str:
    """Join surrogate pairs and replace lone surrogates with U+FFFD.

    JSON/JS clients can send lone surrogates ("\\ud800"); sqlite and the UTF-8 turn log cannot
    store them, so without this the turn crashes with UnicodeEncodeError after replying.
    """
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def check_id(name: str, value: Any, optional: bool = False) -> None:
    """Session and user ids: non-empty strings of at most MAX_ID_CHARS that UTF-8 can store.

    Without this a lone surrogate in an id crashed deep inside sqlite with UnicodeEncodeError.
    """
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}"[:200])
    if len(value) > MAX_ID_CHARS:
        raise ValueError(f"{name} is {len(value):,} characters long; the limit is {MAX_ID_CHARS}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"{name} {value!r} is not valid Unicode text (lone surrogate)") from e


class ShoppingAssistant:
    """Conversational, grounded product recommendations over one dataset: a facade that sequences
    the stages (understanding -> planning -> generation) and owns sessions and the user-data API."""

    def __init__(
        self,
        index: AssistantIndex,
        llm: Any | None,
        sessions: SessionStore,
        config: AssistantConfig | None = None,
        *,
        ranker_weights: RankerWeights | None = None,
        diversity: DiversityConfig | None = None,
        reranker: Any | None = None,
        understand_model: Any | None = None,
        **overrides: Any,
    ):
        """``overrides``: ``AssistantConfig`` fields (``k=8``) applied on top of ``config``;
        ``understand_model``: the understanding stage's LLM when it is not ``llm`` (an adapter)."""
        config = dataclasses.replace(config or AssistantConfig(), **overrides)
        self.config = config
        self.index = index
        self.llm = llm
        self.sessions = sessions
        if reranker is not None and not callable(getattr(reranker, "rerank", None)):
            raise TypeError(f"reranker needs a rerank(history, candidates, catalog) method, got {reranker!r}")
        # Our own model takes the generation length per call; other langchain models keep their
        # own settings (an unknown keyword could be forwarded to a remote API and rejected).
        llm_kwargs: dict[str, Any] = {}
        if isinstance(llm, LocalChatModel):
            llm_kwargs = {
                "max_new_tokens": config.max_new_tokens,
                "max_sentences": config.max_sentences,
            }
        self.dataset: Dataset = index.dataset
        self.catalog = index.catalog
        self.currency = self.dataset.currency if self.catalog.has_prices else None
        self._session_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Users whose dataset history forget() masks; persisted (as keyed hashes) so a restart
        # does not bring a forgotten user's history or profile back.
        self._forgotten_hidden = sessions.forgotten
        self._ctx = StageContext(
            index,
            config,
            llm,
            GroundingChecker(self.catalog, CatalogMatcher(self.catalog)),
            self.history,
            self._forgotten_hidden,
            llm_kwargs,
            understand_model,
        )
        ranker = FusedRanker(self.catalog, ranker_weights, item_vectors=index.vectors)
        diversity = diversity or DiversityConfig(lambda_=0.75, max_per_brand=2, fill=True)
        self.understander = Understander(self._ctx)
        self.router = Router(self._ctx, ranker, diversity, reranker)
        self.generator = ReplyGenerator(self._ctx)
        self._constraint_editor = ConstraintEditor(self.catalog, self.understander.vocab.brand_names)

    @classmethod
    def from_dataset(
        cls,
        dataset: str | os.PathLike[str] | Dataset = "movielens-100k",
        *,
        config: AssistantConfig | None = None,
        show_progress: bool = True,
        ranker_weights: RankerWeights | None = None,
        diversity: DiversityConfig | None = None,
        **overrides: Any,
    ) -> ShoppingAssistant:
        """Load a dataset (registry name, folder/file path, or a ``Dataset``), build or load its index.

        ``config`` (default ``AssistantConfig()``) says what to load and how turns run; keyword
        ``overrides`` are its fields (``llm=``, ``adapter=``, ``embedder=``, ``scorer=``,
        ``cache_dir=``, ``threads=``, ``k=``, ``rerank=``...). ``llm`` and ``scorer`` also take
        objects: a langchain chat model instance, a fitted ``Scorer``.

        ``llm``: a name or model dir (``LocalChatModel``), ``"openai:MODEL@http://host:port/v1"``
        (``llm.openai_backend``), a langchain chat model, or ``None``/``"none"`` (templates).
        ``adapter``: a LoRA adapter dir trained on ``llm``, or a list of two: an understanding
        adapter for the understanding stage and one (reply, listwise) for the chat model.
        ``rerank="llm"``: re-rank the fused top-20 with the LLM listwise verbalizer before
        diversity (off by default: docs/latency.md). The other options: ``AssistantConfig``.
        """
        llm_obj = overrides.pop("llm", None) if not _is_data(overrides.get("llm")) else None
        scorer_obj = overrides.pop("scorer", None) if not _is_data(overrides.get("scorer")) else None
        if "rerank" in overrides and overrides["rerank"] not in (None, "none", "llm"):
            raise ValueError(f"rerank must be None or 'llm', got {overrides['rerank']!r}")
        cfg = dataclasses.replace(config or AssistantConfig(), **overrides)
        set_torch_threads(cfg.threads)
        ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
        index = AssistantIndex.build_or_load(
            ds,
            embedder=cfg.embedder,
            scorer=cfg.scorer if scorer_obj is None else scorer_obj,
            cache_dir=cfg.cache_dir,
            show_progress=show_progress,
            store_url=cfg.store_url,
        )
        index.embedder.encode_query("warm up")  # load the query encoder now, not in the first turn
        llm: Any = cfg.llm if llm_obj is None else llm_obj
        if cfg.llm_url:
            llm = with_endpoint(llm, cfg.llm_url, default_name=DEFAULT_LLM)
        chat_model, understand_model = chat_models(llm, cfg)  # each adapter to the stage it was trained for
        root = SessionStore.root_for(ds.name, cfg.sessions_dir, cfg.cache_dir)
        reranker = None
        if cfg.rerank == "llm":
            reranker = build_llm_reranker(
                chat_model, llm, cfg.reranker_adapter, cfg.threads, cfg.llm_quantize, cfg.cache_dir
            )
        bot = cls(
            index,
            chat_model,
            SessionStore(root),
            cfg,
            ranker_weights=ranker_weights,
            diversity=diversity,
            reranker=reranker,
            understand_model=understand_model,
        )
        bot.warm_up()
        return bot

    def close(self) -> None:
        self.sessions.close()

    LLM_TEMPLATES = ("recommend", "compare", "details", "bundle", "smalltalk", "repair")

    def warm_up(self, languages: Sequence[str] = ("en",)) -> int:
        """Precompute the LLM's system-prompt KV caches for every reply template (when the model
        supports `warm_prefix`), so the first turn of each kind does not pay for it. Returns the
        number of prefixes cached."""
        warm = getattr(self.llm, "warm_prefix", None)
        if warm is None or not getattr(self.llm, "prefix_cache", False):
            return 0
        n = 0
        for lang in languages:
            for name in self.LLM_TEMPLATES:
                try:
                    tpl = prompts.load(name, lang, self._ctx.prompt_version(name))
                except prompts.PromptError:  # that template/version does not exist: nothing to warm
                    continue
                n += bool(warm(tpl.messages(**{v: "x" for v in tpl.variables})))
        return n

    def chat(self, message: str, session_id: str = "default", user_id: str | None = None) -> Reply:
        """One turn; the complete reply (the same one ``stream`` ends with)."""
        reply = None
        for event in self.stream(message, session_id=session_id, user_id=user_id):
            if isinstance(event, DoneEvent):
                reply = event.reply
        assert reply is not None
        return reply

    def stream(
        self, message: str, session_id: str = "default", user_id: str | None = None
    ) -> Iterator[StreamEvent]:
        """Events of one turn: ``ItemsEvent`` first (cards from data), then ``TextDelta``s
        (a ``TextReset`` replaces the text if grounding rejected it), then ``DoneEvent``."""
        if not isinstance(message, str):
            raise TypeError(f"message must be a string, got {type(message).__name__}")
        message = valid_unicode(message)
        check_id("session_id", session_id)
        check_id("user_id", user_id, optional=True)
        with self._session_lock(session_id):
            if len(message.strip()) > self.config.max_message_chars:
                yield from self._too_long(message.strip(), session_id, user_id)
                return
            yield from self._turn(message, session_id, user_id)

    def _too_long(self, message: str, session_id: str, user_id: str | None) -> Iterator[StreamEvent]:
        """A clear answer instead of silently parsing a truncated message; nothing is stored."""
        rec = self.sessions.open(session_id, user_id)  # still refuses another user's session
        state = rec.state
        limit = self.config.max_message_chars
        n, lang = len(message), detect_language(message[:limit]).language
        # "2,000" reads as one number in English only.
        count, cap = (f"{n:,}", f"{limit:,}") if lang == "en" else (str(n), str(limit))
        text = self._ctx.strings(lang).format("too_long", n=count, limit=cap)
        yield ItemsEvent([], state.constraints, "clarify")
        yield TextDelta(text)
        meta = {"notes": [f"message too long: {n} > {limit} characters"]}
        yield DoneEvent(
            Reply(
                text=text,
                items=[],
                constraints=state.constraints,
                intent="clarify",
                session_id=session_id,
                user_id=rec.user_id,
                grounding=GroundingReport(checked=False),
                language=lang,
                question=text,
                meta=meta,
            )
        )

    def feedback(self, session_id: str, item_id: str, liked: bool, user_id: str | None = None) -> None:
        """Record "like" / "not for me" on a shown item; later turns boost or hide it (and near-duplicates)."""
        check_id("session_id", session_id)
        check_id("user_id", user_id, optional=True)
        if item_id not in self.catalog:
            raise KeyError(f"unknown item id {item_id!r}")
        with self._session_lock(session_id):
            rec = self.sessions.open(session_id, user_id)
            rec.state = rec.state.with_feedback(item_id, liked)
            self.sessions.save(rec)
            owner = rec.user_id
            self._record_feedback_events(rec, [item_id] if liked else [], [] if liked else [item_id])
            self.sessions.log_turn(
                {
                    "session_id": session_id,
                    "user_id": owner,
                    "event": "feedback",
                    "item_id": item_id,
                    "liked": liked,
                }
            )

    def _record_feedback_events(
        self, rec: SessionRecord, liked: Sequence[str], disliked: Sequence[str]
    ) -> None:
        """A signed-in shopper's likes and dislikes (buttons or chat) join their history."""
        if rec.user_id is None:
            return
        for item_id in disliked:
            self.sessions.add_event(rec.user_id, item_id, "dislike", rec.session_id)
        for item_id in liked:
            self.sessions.add_event(rec.user_id, item_id, "like", rec.session_id)
            self.index.users.update(rec.user_id, [item_id])

    def forget(self, user_id: str) -> dict[str, int]:
        """Delete everything held about the user: sessions, chat events, profile vector,
        profile edits, log lines, the index cache's copy of their history; the dataset history is
        masked from then on."""
        check_id("user_id", user_id)
        counts = self.sessions.forget(user_id)
        counts["profile_vectors"] = int(self.index.users.delete(user_id))
        counts["cached_histories"] = self.index.forget_user(user_id)
        self._forgotten_hidden.add(user_id)
        return counts

    def profile(self, user_id: str) -> UserProfile:
        """Readable, editable profile: interest clusters + frequent associations (see ``edit_profile``)."""
        edits = self.sessions.profile_edits(user_id)
        events = self.sessions.events(user_id)
        return build_profile(
            user_id,
            self.history(user_id, apply_edits=False),
            self.catalog,
            embed=self.index.vectors,
            co_bought=self.index.co_bought,
            item_count=self.index.item_count,
            hidden=edits.get("hidden_items", []),
            chat_events=len(events),
        )

    def edit_profile(
        self, user_id: str, remove_items: Sequence[str] = (), remove_clusters: Sequence[int] = ()
    ) -> UserProfile:
        """Hide items (or whole interest clusters) from the profile and from personalisation."""
        hidden = set(self.sessions.profile_edits(user_id).get("hidden_items", []))
        unknown = [i for i in remove_items if i not in self.catalog]
        if unknown:
            raise KeyError(f"unknown item ids {unknown[:5]}")
        hidden.update(remove_items)
        if remove_clusters:
            current = {c.cluster_id: c for c in self.profile(user_id).clusters}
            missing = [c for c in remove_clusters if c not in current]
            if missing:
                raise KeyError(f"no interest clusters {missing}; the profile has {sorted(current)}")
            for c in remove_clusters:
                hidden.update(current[c].item_ids)
        self.sessions.set_profile_edits(user_id, {"hidden_items": sorted(hidden)})
        return self.profile(user_id)

    def history(self, user_id: str, apply_edits: bool = True) -> list[str]:
        """The user's items, oldest first: the dataset log (unless forgotten) + likes/purchases in chat."""
        hist: list[str] = []
        if user_id not in self._forgotten_hidden:
            hist = self.dataset.interactions.history(user_id)
        for item_id, _kind, _ in self.sessions.events(user_id, ("like", "purchase")):
            hist.append(item_id)
        disliked = {i for i, _, _ in self.sessions.events(user_id, ("dislike",))}
        hidden = set(self.sessions.profile_edits(user_id).get("hidden_items", [])) if apply_edits else set()
        return [i for i in dict.fromkeys(hist) if i in self.catalog and i not in disliked and i not in hidden]

    def session(self, session_id: str) -> SessionRecord | None:
        return self.sessions.get(session_id)

    def get_constraints(self, session_id: str) -> Constraints:
        """The constraints in force for a session (empty for a session that does not exist yet)."""
        check_id("session_id", session_id)
        rec = self.sessions.get(session_id)
        return Constraints() if rec is None else rec.state.constraints

    def set_constraints(
        self,
        session_id: str,
        constraints: Constraints | dict[str, Any] | None = None,
        *,
        user_id: str | None = None,
        **changes: Any,
    ) -> Constraints:
        """Set the session's constraints from outside the chat (removable chips, a budget field).

        ``constraints`` (a ``Constraints`` or its ``to_dict()`` form) replaces them all; keyword
        ``changes`` (any ``Constraints`` field, e.g. ``price_max=20``, ``brands_out=["OPI"]``,
        ``price_max=None`` to remove the budget) are applied on top of it, or on top of the
        current ones when ``constraints`` is None. Brands and category paths are checked against
        the catalog and spelled as the catalog spells them; an unknown field, brand, category or
        item, or a bad price, raises ``ValueError`` and nothing is saved. The next turn starts
        from exactly the returned constraints (persisted in the session store)."""
        check_id("session_id", session_id)
        check_id("user_id", user_id, optional=True)
        with self._session_lock(session_id):
            rec = self.sessions.open(session_id, user_id)
            state = rec.state
            new = self._constraint_editor.validated(
                state.constraints if constraints is None else constraints, changes
            )
            price_changed = (new.price_min, new.price_max) != (
                state.constraints.price_min,
                state.constraints.price_max,
            )
            updates: dict[str, Any] = {"constraints": new}
            if not new.has_price:
                updates.update(price_origin=None, price_preference=None)
            elif price_changed:  # set by the shopper: kept across topic changes like a typed budget
                updates.update(price_origin="explicit", price_preference=None)
            rec.state = dataclasses.replace(state, **updates)
            self.sessions.save(rec)
            self.sessions.log_turn(
                {
                    "session_id": session_id,
                    "user_id": rec.user_id,
                    "event": "set_constraints",
                    "constraints": new.to_dict(),
                }
            )
        return new

    def clear_constraints(self, session_id: str, user_id: str | None = None) -> Constraints:
        """Remove every constraint of the session (the "clear filters" button)."""
        return self.set_constraints(session_id, Constraints(), user_id=user_id)

    # --- LangChain-native views (README "LangChain") ---------------------------------------------
    def as_runnable(self) -> AssistantRunnable:
        """This assistant as a LangChain ``Runnable``: a message (str) or ``{"message", "session_id",
        "user_id"}`` -> ``Reply.to_dict()``; ``stream`` yields the turn's events as dicts."""
        return AssistantRunnable(self)

    def search_tool(self) -> StructuredTool:
        """The ``search_products`` LangChain tool over this catalog (``retrieval.search_tool``), its
        brands and category paths checked against the catalog like ``set_constraints``'."""
        return search_products_tool(self.index.retriever, lambda c: self._constraint_editor.validated(c, {}))

    def chat_history(self, session_id: str, user_id: str | None = None) -> SessionChatHistory:
        """A session's transcript as a LangChain ``BaseChatMessageHistory`` over ``self.sessions``."""
        check_id("session_id", session_id)
        check_id("user_id", user_id, optional=True)
        return SessionChatHistory(self.sessions, session_id, user_id, self._session_lock(session_id))

    def _session_lock(self, session_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._session_locks.setdefault(session_id, threading.Lock())

    def understand(self, raw_message: str, session_id: str, user_id: str | None = None) -> UnderstoodTurn:
        """The turn's reading (PII redacted, capped; nothing saved); ``router.plan`` of it is the reply prompt."""
        message, record = redact(raw_message.strip())[:2000], self.sessions.open(session_id, user_id)
        return self.understander.understand(message, record)

    def _turn(self, raw_message: str, session_id: str, user_id: str | None) -> Iterator[StreamEvent]:
        """understand -> plan -> items event -> generate (or the template) -> persist -> done event."""
        t0 = time.perf_counter()
        turn = self.understand(raw_message, session_id, user_id)
        t_understood = time.perf_counter()
        plan = self.router.plan(turn)
        t_planned = time.perf_counter()
        # The filters the cards satisfy: a relaxed search's own (the state keeps the shopper's words).
        yield ItemsEvent(
            plan.items, plan.constraints or turn.constraints, plan.intent, plan.comparison, plan.bundle
        )
        t_items = time.perf_counter()
        # The state's notes to the shopper (a clarifying question already carries them, a refusal
        # reads no request), then the plan's; turn.notes also holds the planners' log lines: not those.
        said = [] if plan.intent in ("clarify", "refuse") else [*turn.state.info, *plan.said]
        text, report, first_token = yield from self._reply_text(plan, " ".join(said))
        if plan.question and plan.intent != "clarify":  # the question goes after the items' text
            tail = ("" if turn.lang == "zh" else " ") + plan.question
            yield TextDelta(tail)
            text += tail
        t_done = time.perf_counter()
        self._persist(turn, plan, turn.message, text)
        timings = {
            "understand_s": round(t_understood - t0, 4),
            "plan_s": round(t_planned - t_understood, 4),
            "items_s": round(t_items - t0, 4),
            "first_token_s": round((first_token or t_done) - t0, 4),
            "total_s": round(time.perf_counter() - t0, 4),
            "generate_s": round(t_done - t_items, 4),
            # Finer stages (bench/chat.py): plan = retrieve_s + rank_s + prompt_s (+ routing);
            # generate = llm_prefill_s + llm_decode_s + grounding_s + repair_s.
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in plan.timings.items()},
        }
        reply = self._reply(turn, plan, text, report, timings)
        self.sessions.log_turn(
            {
                "session_id": session_id,
                "user_id": reply.user_id,
                "intent": plan.intent,
                "text": turn.message,
                "reply": redact(text),
                "item_ids": [it.item_id for it in plan.items],
                "violations": len(report.violations),
                "timings": timings,
            }
        )
        yield DoneEvent(reply)

    def _reply_text(
        self, plan: Plan, preface: str = ""
    ) -> Generator[StreamEvent, None, tuple[str, GroundingReport, float | None]]:
        """The reply's text events; returns (text, grounding report, time of the first text).

        ``preface``: what the dialogue state has to tell the shopper about how it read the turn
        (a price dropped because the catalog has no prices, a currency not converted); it leads the
        reply, before the template or the LLM's text, so it is said whichever one answers."""
        lead = preface + " " if preface else ""
        if plan.messages is None or self.llm is None:
            first_token = time.perf_counter()
            yield TextDelta(lead + plan.fallback)
            return lead + plan.fallback, GroundingReport(checked=False), first_token
        gen = self.generator.generate(plan)
        first_token = None  # the LLM's first text (the preface is ready before the model starts)
        if lead:
            yield TextDelta(lead)
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                text, report = stop.value
                return lead + text, report, first_token
            if first_token is None:
                first_token = time.perf_counter()
            yield TextReset(lead + ev.text) if isinstance(ev, TextReset) else ev

    def _persist(self, turn: UnderstoodTurn, plan: Plan, message: str, text: str) -> None:
        """State (what was shown, for "the second one" next turn), transcript, chat feedback events,
        and a known user's profile vector on their first turn."""
        shown_ids = [it.item_id for it in plan.items]
        rec = turn.record
        before = rec.state
        if shown_ids and plan.intent in ("recommend", "search", "bundle"):
            turn.state = turn.state.record_shown(shown_ids, [it.price for it in plan.items])
        rec.state = turn.state.record_cards(shown_ids)
        rec.add_turn("user", message, turn.intent)
        rec.add_turn("assistant", text, plan.intent, shown_ids)
        self.sessions.save(rec)
        self._record_feedback_events(
            rec,
            [i for i in rec.state.liked if i not in before.liked],
            [i for i in rec.state.disliked if i not in before.disliked],
        )
        if (
            rec.user_id is not None
            and rec.user_id not in self._forgotten_hidden
            and self.index.users.vector(rec.user_id) is None
        ):
            hist = self.history(rec.user_id)
            if hist:
                self.index.users.update(rec.user_id, hist[-self.config.profile_history :])

    def _reply(
        self, turn: UnderstoodTurn, plan: Plan, text: str, report: GroundingReport, timings: dict[str, Any]
    ) -> Reply:
        return Reply(
            text=text,
            items=plan.items,
            constraints=plan.constraints or turn.constraints,
            intent=plan.intent,
            session_id=turn.record.session_id,
            user_id=turn.record.user_id,
            comparison=plan.comparison,
            bundle=plan.bundle,
            grounding=report,
            language=turn.lang,
            question=plan.question,
            meta={
                "timings": timings,
                "query": turn.query,
                "llm": None if self.llm is None or plan.messages is None else model_name(self.llm),
                "parser": None if turn.parsed is None else getattr(turn.parsed, "source", "rules"),
                "grounding_violations": len(report.violations),
                "card_copy": bool(plan.meta.get("card_copy")),
                "repetition_cut": bool(plan.meta.get("repetition_cut")),
                "notes": turn.notes + list(plan.meta.get("notes", [])),
                "relaxed": list(plan.meta.get("relaxed", [])),  # filter groups loosened to find anything
            },
        )


def _is_data(value: Any) -> bool:
    """A config value (a name, a path, None) rather than a built object (a chat model, a scorer)."""
    return value is None or isinstance(value, str | os.PathLike)


def open_for_command(dataset: str, **options: Any) -> ShoppingAssistant | None:
    """``ShoppingAssistant.from_dataset`` for a console command: options left ``None`` keep their
    defaults (``llm=None`` here means "not given", not "no LLM"); a dataset or model that cannot
    be opened prints ``error: ...`` on stderr and gives ``None`` (the command exits with 2)."""
    try:
        return ShoppingAssistant.from_dataset(dataset, **{k: v for k, v in options.items() if v is not None})
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
