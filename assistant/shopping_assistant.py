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
import json
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

import prompts
from assistant.config import MAX_ID_CHARS, AssistantConfig
from assistant.constraint_parser import parse
from assistant.dialogue_state import DialogueState
from assistant.explanations import Evidence, _money, build_reasons, format_card, review_quote
from assistant.grounding import CatalogMatcher, GroundingChecker, GroundingContext, describe
from assistant.index import AssistantIndex
from assistant.intents import classify_intent, needs_clarification
from assistant.llm import sentence_cut
from assistant.privacy import redact
from assistant.profile import UserProfile, build_profile
from assistant.reply import (
    Bundle,
    Comparison,
    ComparisonRow,
    DoneEvent,
    GroundingReport,
    GroundingViolation,
    ItemsEvent,
    RecommendedItem,
    Reply,
    StreamEvent,
    TextDelta,
    TextReset,
)
from assistant.sessions import SessionRecord, SessionStore
from retrieval.data.schema import Dataset, Item
from retrieval.diversity import DiversityConfig, diversify
from retrieval.filters import Constraints
from retrieval.ranker import Feedback, FusedRanker, RankedItem, RankerWeights

TOO_LONG_EN = (
    "That message is too long ({n:,} characters; the limit is {limit:,}). "
    "A sentence or two about what you're looking for, your budget and any brands to avoid is plenty."
)
TOO_LONG_ZH = "消息太长了（{n} 个字符，上限 {limit} 个）。用一两句话说明想买什么、预算和不想要的品牌就够了。"
_CJK = re.compile(r"[\u3400-\u9fff]")
_SENTENCE_END = re.compile(r"[.!?。！？](?:\s|$)")

# Requests the assistant must refuse whatever the intent classifier says: prompt
# injection and other people's data. Checked before anything else runs.
_INJECTION = re.compile(
    r"ignore (?:all |any |the )?(?:previous|prior|above|your) (?:instructions|rules|prompt)|"
    r"(?:reveal|show|print|repeat|tell me|what is|what's|give me) (?:me )?(?:your|the) "
    r"(?:system |hidden |initial )?(?:prompt|instructions)|system prompt|developer mode|jailbreak|"
    r"you are now (?:a|an|in)\b|pretend (?:to be|you are)|忽略(?:之前|以上|所有)?(?:的)?(?:指令|指示|规则)|系统提示|提示词",
    re.IGNORECASE,
)
_OTHER_USERS = re.compile(
    r"\b(?:other|another) (?:users?|customers?|shoppers?|people)(?:'s|s')? (?:data|history|histories|orders?|"
    r"purchases?|profiles?|emails?|addresses|details)|"
    r"\b(?:user|customer|shopper) (?:#|id )?[\w-]+(?:'s)? (?:history|orders?|purchases?|profile|data|email|address)|"
    r"what did (?:user|customer|shopper|someone else|\w+ else) (?:buy|purchase|order)|"
    r"what (?:did|does|has) (?:user|customer|shopper|client) #?[\w.@-]+ (?:buy|bought|purchase|order)|"
    r"someone else'?s (?:history|orders?|purchases?|data|profile)|"
    r"(?:其他|别的)(?:用户|顾客|人)的(?:数据|记录|订单|购买|资料)|别人的(?:数据|记录|订单|购买|资料)",
    re.IGNORECASE,
)


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


def detect_language(text: str) -> str:
    return "zh" if _CJK.search(text) else "en"


@dataclass
class _Plan:
    """What a turn will say, decided from data before any token is generated."""

    intent: str
    items: list[RecommendedItem] = field(default_factory=list)
    comparison: Comparison | None = None
    bundle: Bundle | None = None
    messages: list[Any] | None = None  # LLM prompt; None = template reply only
    repair_values: dict[str, Any] | None = None
    fallback: str = ""
    grounding: GroundingContext | None = None
    card_lines: list[str] = field(default_factory=list)  # prompt card lines (the prose guard checks copies)
    max_sentences: int | None = None  # this reply's sentence cap, when tighter than the assistant's
    meta: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)  # stage seconds + LLM token counts


@dataclass
class _Turn:
    """The understood turn: the state after it, the constraints in force, what to do."""

    message: str
    lang: str
    record: SessionRecord
    state: DialogueState
    parsed: Any  # assistant.constraint_parser.ParsedUtterance
    intent: str
    constraints: Constraints
    query: str
    referenced: list[str]
    clarify: str | None = None
    budget: float | None = None
    refuse_kind: str | None = None
    notes: list[str] = field(default_factory=list)


class ShoppingAssistant:
    """Conversational, grounded product recommendations over one dataset."""

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
        **overrides: Any,
    ):
        """``overrides``: ``AssistantConfig`` fields (``k=8``) applied on top of ``config``."""
        config = dataclasses.replace(config or AssistantConfig(), **overrides)
        self.config = config
        self.index = index
        self.llm = llm
        self.sessions = sessions
        if reranker is not None and not callable(getattr(reranker, "rerank", None)):
            raise TypeError(f"reranker needs a rerank(history, candidates, catalog) method, got {reranker!r}")
        self.reranker = reranker
        # Our own model takes the generation length per call; other langchain models keep their
        # own settings (an unknown keyword could be forwarded to a remote API and rejected).
        self._llm_kwargs: dict[str, Any] = {}
        if llm is not None:
            from assistant.llm import LocalChatModel

            if isinstance(llm, LocalChatModel):
                self._llm_kwargs = {
                    "max_new_tokens": config.max_new_tokens,
                    "max_sentences": config.max_sentences,
                }
        self.dataset: Dataset = index.dataset
        self.catalog = index.catalog
        self.currency = self.dataset.currency if self.catalog.has_prices else None
        self.ranker = FusedRanker(self.catalog, ranker_weights, item_vectors=index.vectors)
        self.diversity = diversity or DiversityConfig(lambda_=0.75, max_per_brand=2, fill=True)
        self.checker = GroundingChecker(self.catalog, CatalogMatcher(self.catalog))
        from assistant.vocabulary import CatalogVocabulary

        self.vocab = CatalogVocabulary.from_catalog(self.catalog)
        self._session_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Users whose dataset history forget() masks; persisted (as keyed hashes) so a restart
        # does not bring a forgotten user's history or profile back.
        self._forgotten_hidden = sessions.forgotten

    # ------------------------------------------------------------------ construction
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

        ``llm``: a registry name or local model dir (loaded as ``LocalChatModel``), an
        OpenAI-compatible endpoint ``"openai:MODEL@http://host:port/v1"`` (vLLM, llama.cpp server,
        TGI, ``assistant.openai_server``; see ``assistant.openai_backend``), any langchain chat
        model instance, or ``None``/``"none"`` for template replies only.
        ``llm_url``: serve ``llm`` from that OpenAI-compatible base URL instead (``llm`` left at its
        default: the endpoint's first model).
        ``store_url``: a Chroma server ``http://host:port[?tenant=T&database=D]`` for the vectors
        (default ``$SHOPASSIST_CHROMA_URL``, else an embedded Chroma in the cache dir).
        ``llm_quantize``: ``"int8"`` (dynamic int8 Linear layers, the CPU default), ``None`` for
        full precision, or ``"auto"``: $SHOPASSIST_LLM_QUANTIZE if set, else int8 on CPU.
        ``rerank="llm"``: re-rank the fused top-20 with the LLM listwise verbalizer
        (``finetune.reranker.LLMReranker``; the chat model's weights, or ``reranker_adapter``, a
        LoRA adapter from ``python -m finetune train``, on the same base model) before diversity.
        Off by default: see docs/latency.md for what it costs and what it changed.
        """
        from assistant.models import default_cache_dir, set_torch_threads

        llm_obj = overrides.pop("llm", None) if not _is_data(overrides.get("llm")) else None
        scorer_obj = overrides.pop("scorer", None) if not _is_data(overrides.get("scorer")) else None
        if "rerank" in overrides and overrides["rerank"] not in (None, "none", "llm"):
            raise ValueError(f"rerank must be None or 'llm', got {overrides['rerank']!r}")
        cfg = dataclasses.replace(config or AssistantConfig(), **overrides)
        set_torch_threads(cfg.threads)
        if isinstance(dataset, Dataset):
            ds = dataset
        else:
            from retrieval.data.registry import load_dataset

            ds = load_dataset(dataset)
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
            from assistant.models import DEFAULT_LLM
            from assistant.openai_backend import with_endpoint

            llm = with_endpoint(llm, cfg.llm_url, default_name=DEFAULT_LLM)
        chat_model = resolve_chat_model(
            llm,
            max_new_tokens=cfg.max_new_tokens,
            adapter=cfg.adapter,
            threads=cfg.threads,
            cache_dir=cfg.cache_dir,
            quantize=cfg.llm_quantize,
            prefix_cache=cfg.prefix_cache,
        )
        root = default_cache_dir(cfg.cache_dir) / "sessions" / re.sub(r"[^\w.-]+", "_", ds.name)
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
                    tpl = prompts.load(name, lang, self._prompt_version(name))
                except prompts.PromptError:  # that template/version does not exist: nothing to warm
                    continue
                n += bool(warm(tpl.messages(**{v: "x" for v in tpl.variables})))
        return n

    # ------------------------------------------------------------------ public API
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
        n, lang = len(message), detect_language(message[:self.config.max_message_chars])
        text = (TOO_LONG_ZH if lang == "zh" else TOO_LONG_EN).format(n=n, limit=self.config.max_message_chars)
        yield ItemsEvent([], state.constraints, "clarify")
        yield TextDelta(text)
        meta = {"notes": [f"message too long: {n} > {self.config.max_message_chars} characters"], "clarify": text}
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

    def _record_feedback_events(self, rec: SessionRecord, liked: Sequence[str], disliked: Sequence[str]) -> None:
        """A signed-in shopper's likes and dislikes (buttons or chat) join their history."""
        if rec.user_id is None:
            return
        for item_id in disliked:
            self.sessions.add_event(rec.user_id, item_id, "dislike", rec.session_id)
        for item_id in liked:
            self.sessions.add_event(rec.user_id, item_id, "like", rec.session_id)
            self.index.store.update_user(rec.user_id, [item_id])

    def forget(self, user_id: str) -> dict[str, int]:
        """Delete everything held about the user: sessions, chat events, profile vector,
        profile edits, log lines, the index cache's copy of their history; the dataset history is
        masked from then on."""
        check_id("user_id", user_id)
        counts = self.sessions.forget(user_id)
        counts["profile_vectors"] = int(self.index.store.delete_user(user_id))
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

    # ------------------------------------------------------------------ constraints (UI chips, budget field)
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
            new = self._validated_constraints(
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
            rec.state = replace(state, **updates)
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

    def _validated_constraints(
        self, base: Constraints | dict[str, Any], changes: dict[str, Any]
    ) -> Constraints:
        """``base`` + ``changes`` as catalog-checked ``Constraints``, or a ValueError that says what is wrong."""
        fields = sorted(Constraints.__dataclass_fields__)
        if isinstance(base, dict):
            base = Constraints.from_dict(base)  # names unknown fields itself
        if not isinstance(base, Constraints):
            raise TypeError(f"constraints must be a Constraints or a dict, got {type(base).__name__}")
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ValueError(f"unknown constraint fields {unknown}; expected some of {fields}")
        values = {f: getattr(base, f) for f in fields}
        for name, v in changes.items():
            if name in ("price_min", "price_max"):
                if v is not None and (isinstance(v, bool) or not isinstance(v, int | float | str)):
                    raise ValueError(f"{name} must be a number or None, got {v!r}")
                if isinstance(v, str):
                    try:
                        v = float(v.strip().lstrip("$€£¥").replace(",", ""))
                    except ValueError:
                        raise ValueError(f"{name} must be a number or None, got {v!r}") from None
            elif name == "in_stock":
                if v is not None and not isinstance(v, bool):
                    raise ValueError(f"in_stock must be True, False or None, got {v!r}")
            elif name in ("categories", "categories_out"):
                v = (v,) if isinstance(v, str) else tuple(v or ())
                v = tuple(tuple(p.split(" > ")) if isinstance(p, str) else tuple(p) for p in v)
            else:  # brands_in, brands_out, exclude_items: a single string is one value, not its letters
                v = (v,) if isinstance(v, str) else tuple(v or ())
            values[name] = v
        for name in ("price_min", "price_max"):
            v = values[name]
            if v is not None and not (isinstance(v, int | float) and np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0 or None, got {v!r}")
        by_key = {b.casefold(): b for b in self.vocab.brand_names}
        for name in ("brands_in", "brands_out"):
            spelled = []
            for b in values[name]:
                if not isinstance(b, str) or b.casefold() not in by_key:
                    close = [k for k in by_key if isinstance(b, str) and b.casefold()[:3] in k][:5]
                    hint = f"; similar: {[by_key[k] for k in close]}" if close else ""
                    raise ValueError(f"{name}: {b!r} is not a brand in this catalog{hint}")
                spelled.append(by_key[b.casefold()])
            values[name] = tuple(dict.fromkeys(spelled))
        paths = self._category_paths()
        for name in ("categories", "categories_out"):
            for p in values[name]:
                if not all(isinstance(x, str) for x in p) or tuple(p) not in paths:
                    raise ValueError(
                        f"{name}: {' > '.join(map(str, p))!r} is not a category path in this catalog "
                        "(give it from the top, e.g. ('Beauty', 'Skin Care'), or as 'Beauty > Skin Care')"
                    )
        missing = [i for i in values["exclude_items"] if not isinstance(i, str) or i not in self.catalog]
        if missing:
            raise ValueError(f"exclude_items: unknown item ids {missing[:5]}")
        return Constraints(**values)  # checks price_min <= price_max

    def _category_paths(self) -> frozenset[tuple[str, ...]]:
        paths = getattr(self, "_category_paths_cache", None)
        if paths is None:
            paths = frozenset(
                tuple(it.categories[:n]) for it in self.catalog for n in range(1, len(it.categories) + 1)
            )
            self._category_paths_cache = paths
        return paths

    # ------------------------------------------------------------------ the turn
    def _session_lock(self, session_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._session_locks.setdefault(session_id, threading.Lock())

    def _turn(self, raw_message: str, session_id: str, user_id: str | None) -> Iterator[StreamEvent]:
        t0 = time.perf_counter()
        message = redact(raw_message.strip())[:2000]
        record = self.sessions.open(session_id, user_id)
        turn = self._understand(message, record)
        t_understood = time.perf_counter()
        plan = self._route(turn)
        t_planned = time.perf_counter()
        yield ItemsEvent(plan.items, turn.constraints, plan.intent, plan.comparison, plan.bundle)
        t_items = time.perf_counter()

        text, report, first_token = "", GroundingReport(checked=False), None
        if plan.messages is None or self.llm is None:
            text = plan.fallback
            first_token = time.perf_counter()
            yield TextDelta(text)
        else:
            gen = self._generate(plan)
            while True:
                try:
                    ev = next(gen)
                except StopIteration as stop:
                    text, report = stop.value
                    break
                if first_token is None:
                    first_token = time.perf_counter()
                yield ev
        t_done = time.perf_counter()

        # Persist: state, transcript, what was shown (for "the second one" next turn).
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
            and self.index.store.user_vector(rec.user_id) is None
        ):
            hist = self.history(rec.user_id)
            if hist:
                self.index.store.update_user(rec.user_id, hist[-self.config.profile_history:])
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
        reply = Reply(
            text=text,
            items=plan.items,
            constraints=turn.constraints,
            intent=plan.intent,
            session_id=session_id,
            user_id=rec.user_id,
            comparison=plan.comparison,
            bundle=plan.bundle,
            grounding=report,
            language=turn.lang,
            meta={
                "timings": timings,
                "query": turn.query,
                "llm": None if self.llm is None or plan.messages is None else _model_name(self.llm),
                "parser": None if turn.parsed is None else getattr(turn.parsed, "source", "rules"),
                "grounding_violations": len(report.violations),
                "card_copy": bool(plan.meta.get("card_copy")),
                "repetition_cut": bool(plan.meta.get("repetition_cut")),
                "notes": turn.notes + list(plan.meta.get("notes", [])),
                "clarify": turn.clarify,
            },
        )
        self.sessions.log_turn(
            {
                "session_id": session_id,
                "user_id": rec.user_id,
                "intent": plan.intent,
                "text": message,
                "reply": redact(text),
                "item_ids": shown_ids,
                "violations": len(report.violations),
                "timings": timings,
            }
        )
        yield DoneEvent(reply)

    # ------------------------------------------------------------------ understanding
    def _understand(self, message: str, record: SessionRecord) -> _Turn:
        """Parse, classify, fold into the dialogue state, apply the clarify policy."""
        state = record.state
        parsed = parse(message, self.vocab, self.currency)
        result = classify_intent(message, parsed)
        # LLM JSON fallback: only when the rules left the turn unreadable and the intent is unclear.
        if parsed.needs_llm and not parsed.has_content and result.low_confidence and self.llm is not None:
            parsed = parse(
                message, self.vocab, self.currency, llm=self._json_fallback(detect_language(message))
            )
            result = classify_intent(message, parsed)
        lang = parsed.language if parsed.language_confident or parsed.language == "zh" else state.language
        intent, refuse_kind = result.intent, result.refuse_reason
        # Defence in depth: injection / other users' data are refused whatever the classifier said.
        if _INJECTION.search(message):
            intent, refuse_kind = "refuse", "injection"
        elif _OTHER_USERS.search(message):
            intent, refuse_kind = "refuse", "private"
        if intent == "refuse":  # nothing from a refused message enters the state
            return _Turn(
                message,
                lang,
                record,
                state,
                parsed,
                "refuse",
                state.constraints,
                state.query,
                [],
                refuse_kind=refuse_kind,
            )
        new_state = state.apply(parsed, intent=intent)
        clarify = new_state.clarification
        if clarify is None and intent in ("recommend", "search"):
            user_known = record.user_id is not None and bool(self.history(record.user_id))
            clarify = needs_clarification(
                new_state, parsed, user_known, intent=intent, catalog_has_prices=self.catalog.has_prices
            )
            if clarify:
                new_state = new_state.mark_clarified()
        if intent == "clarify" and clarify is None:
            clarify = self._strings_lang(lang).format("smalltalk")
        if clarify:
            intent = "clarify"
        c = new_state.constraints
        return _Turn(
            message=message,
            lang=lang,
            record=record,
            state=new_state,
            parsed=parsed,
            intent=intent,
            constraints=c,
            query=new_state.query or parsed.query or message,
            referenced=[i for i in new_state.referenced if i in self.catalog],
            clarify=clarify,
            budget=c.price_max,
            notes=list(new_state.info),
        )

    def _json_fallback(self, lang: str) -> Any:
        """The parser's LLM hook: one validated JSON object (or None), from the parse template."""
        llm = self.llm

        def call(prompt: str, schema: dict[str, Any]) -> Any:
            msgs = prompts.load("parse", lang).messages(utterance=prompt)
            if hasattr(llm, "generate_json"):
                return llm.generate_json(msgs, schema, max_new_tokens=96)
            msgs[0].content += "\nSCHEMA: " + json.dumps(schema)
            return _chunk_text(llm.invoke(msgs))

        return call

    def _strings_lang(self, lang: str) -> prompts.ReplyStrings:
        return prompts.load_strings("replies", lang)

    # ------------------------------------------------------------------ routing
    def _route(self, turn: _Turn) -> _Plan:
        if turn.intent == "refuse":
            return self._plan_refuse(turn)
        if turn.intent == "clarify":
            question = turn.clarify or self._strings(turn).format("details_none")
            return _Plan("clarify", fallback=" ".join([*turn.notes, question]))
        if turn.intent == "smalltalk":
            return self._plan_smalltalk(turn)
        if turn.intent == "compare":
            return self._plan_compare(turn)
        if turn.intent == "details":
            return self._plan_details(turn)
        if turn.intent == "bundle":
            return self._plan_bundle(turn)
        return self._plan_recommend(turn)

    def _strings(self, turn: _Turn) -> prompts.ReplyStrings:
        return self._strings_lang(turn.lang)

    def _prompt(self, name: str, turn: _Turn) -> prompts.PromptTemplate:
        return prompts.load(name, turn.lang, self._prompt_version(name))

    def _prompt_version(self, name: str) -> int | None:
        """``prompt_version`` pins a prompt set: each template at its newest version <= it (templates
        are bumped one by one), None = the newest of each."""
        if self.config.prompt_version is None:
            return None
        versions = [v for v in prompts.available().get(name, []) if v <= self.config.prompt_version]
        return versions[-1] if versions else self.config.prompt_version  # load() then names what exists

    def _plan_refuse(self, turn: _Turn) -> _Plan:
        key = {"injection": "refuse_injection", "private": "refuse_private"}.get(
            turn.refuse_kind or "", "refuse_offtopic"
        )
        return _Plan("refuse", fallback=self._strings(turn).format(key))

    def _plan_smalltalk(self, turn: _Turn) -> _Plan:
        fallback = self._strings(turn).format("smalltalk")
        msgs = self._prompt("smalltalk", turn).messages(message=turn.message)
        return _Plan(
            "smalltalk",
            messages=msgs,
            fallback=fallback,
            grounding=GroundingContext([], query=turn.message),
            repair_values=None,
        )

    # --- recommend / search -----------------------------------------------------------
    def _plan_recommend(self, turn: _Turn) -> _Plan:
        rec = turn.record
        excluded = self._excluded(turn.state)
        if turn.intent in ("recommend", "search") and rec.user_id is not None:
            # A shopper asking for recommendations ("show me a moisturizer" included) wants
            # something new (implicit's filter_already_liked_items): what they already bought
            # would waste a slot.
            seen = set(excluded)
            excluded += [i for i in self.history(rec.user_id) if i not in seen]
        constraints = turn.constraints
        excluded += self._outside_years(turn.state.years)
        if excluded:
            constraints = constraints.merged(
                exclude_items=tuple(dict.fromkeys((*constraints.exclude_items, *excluded)))
            )
        user_vec = None
        if rec.user_id is not None and rec.user_id not in self._forgotten_hidden:
            user_vec = self.index.store.user_vector(rec.user_id)
        t0 = time.perf_counter()
        history, history_verb = self._cf_history(rec.user_id, turn.state)
        cands = self.index.retriever.search(
            turn.query,
            constraints,
            k=self.config.retrieve_pool,
            user_vector=user_vec,
            extra_ids=self._cf_candidates(history, constraints),
        )
        t1 = time.perf_counter()
        ranked = self._ranker_for(turn.query, constraints, bool(history)).rank(
            cands,
            user_or_history=history or None,
            scorer=self.index.scorer,
            constraints=constraints,
            popularity=self.index.popularity,
            feedback=Feedback(liked_items=turn.state.liked, disliked_items=turn.state.disliked),
        )
        moves: dict[str, tuple[int, int]] = {}
        t_rerank = None
        if self.reranker is not None and history:  # no history: nothing for a listwise prompt to go on
            t_rerank = time.perf_counter()
            ranked, moves = self._llm_rerank(ranked, history)
            t_rerank = time.perf_counter() - t_rerank
        page = diversify(ranked, self.catalog, self.config.k, self.diversity, item_vectors=self.index.vectors)
        items = self._cards(page, turn, constraints, history, history_verb)
        if moves:
            for it in items:
                reason = _rerank_reason(*moves[it.item_id]) if it.item_id in moves else None
                if reason:
                    it.reasons = [reason, *it.reasons][: max(3, len(it.reasons))]
        t2 = time.perf_counter()
        timings = {"retrieve_s": t1 - t0, "rank_s": t2 - t1}
        if t_rerank is not None:
            timings["rerank_s"] = t_rerank
        strings = self._strings(turn)
        cons_text = self._constraints_text(turn.constraints, turn.lang)
        if not items:
            key = "empty_no_prices" if turn.constraints.has_price and not self.catalog.has_prices else "empty"
            return _Plan(
                turn.intent,
                fallback=strings.format("empty", constraints=cons_text)
                if key == "empty"
                else strings.format(key, constraints=cons_text),
                meta={"notes": [key]},
                timings=timings,
            )
        fallback = self._recommend_fallback(items, cons_text, strings)
        ctx = self._grounding_ctx(turn, [self.catalog[it.item_id] for it in items])
        cards = "\n".join(
            self._prompt_card(i + 1, self.catalog[it.item_id], it.reasons, ctx)
            for i, it in enumerate(items[: self.config.llm_cards])
        )
        values = {"query": turn.message, "constraints": cons_text.strip() or "none", "cards": cards}
        tpl = self._prompt("recommend", turn)
        if "top" in tpl.variables:  # v2: one top pick to write about, the other titles for context
            del values["cards"]
            values["top"] = self._pick_line(self.catalog[items[0].item_id], items[0].reasons, ctx)
            others = [it.title for it in items[1 : self.config.llm_cards or len(items)]]
            values["others"] = "; ".join(others) or "-"
            prompt_lines = [values["top"]]
        else:
            prompt_lines = cards.splitlines()
        messages = tpl.messages(**values)
        timings["prompt_s"] = time.perf_counter() - t2
        return _Plan(
            turn.intent,
            items=items,
            messages=messages,
            repair_values={"query": turn.message, "cards": cards},
            fallback=fallback,
            grounding=ctx,
            timings=timings,
            card_lines=prompt_lines,
            max_sentences=1 if "top" in tpl.variables else None,  # v2 asks for one sentence
        )

    def _llm_rerank(
        self, ranked: list[RankedItem], history: Sequence[str]
    ) -> tuple[list[RankedItem], dict[str, tuple[int, int]]]:
        """Reorder the fused top-``rerank_top`` by the LLM's listwise scores (LlamaRec verbalizer).

        The reordered items take the top scores' values in the LLM's order, so the page below the
        top-20 and the score scale diversity works on are unchanged; each item's score change is
        its ``llm_rerank`` contribution (contributions still sum to the score). Returns the list
        and, per reranked item, (fused position, LLM position), 0-based.
        """
        top = list(ranked[: self.config.rerank_top])
        if len(top) < 2:
            return list(ranked), {}
        scores = np.asarray(self.reranker.rerank(list(history), [r.item_id for r in top], self.catalog))
        if scores.shape != (len(top),) or not np.all(np.isfinite(scores)):
            raise ValueError(f"reranker returned scores of shape {scores.shape} for {len(top)} candidates")
        order = np.argsort(-scores, kind="stable")
        slots = sorted((r.score for r in top), reverse=True)
        out, moves = [], {}
        for new_pos, j in enumerate(order):
            r = top[int(j)]
            contrib = {**r.contributions, "llm_rerank": float(slots[new_pos] - r.score)}
            out.append(RankedItem(r.item_id, float(sum(contrib.values())), contrib, r.candidate))
            moves[r.item_id] = (int(j), new_pos)
        return out + list(ranked[self.config.rerank_top :]), moves

    def _prompt_card(self, rank: int, item: Item, reasons: Sequence[str], ctx: GroundingContext) -> str:
        """One candidate line for the LLM prompt.

        Compact form (the default) keeps the facts terse and two reasons, and leaves out reasons
        that name a product outside the candidates ("bought together with X"): the model tends
        to repeat those names, which the grounding check then rejects (a wasted generation).
        """
        if not self.config.compact_cards:
            return format_card(rank, item, reasons, self.currency)
        if self.config.prompt_version is None or self.config.prompt_version >= 2:
            return self._prose_card(item, reasons, ctx)
        facts = self._card_facts(item)
        keep = [r for r in reasons if not r.startswith(_RERANK_REASON) and not self.checker.check(r, ctx)][:2]
        line = f"{rank}. [id={item.item_id}] {item.title}" + (f" ({', '.join(facts)})" if facts else "")
        return line + (": " + "; ".join(keep) if keep else "")

    def _card_facts(self, item: Item) -> list[str]:
        """The catalog facts both prompt-card formats show: brand, price, leaf category, rating."""
        facts = []
        if item.brand:
            facts.append(item.brand)
        if item.price is not None:
            facts.append(_money(item.price, self.currency))
        if item.categories:
            facts.append(item.categories[-1])
        if item.rating is not None:
            facts.append(f"rated {item.rating:.1f}")
        return facts

    def _prose_card(self, item: Item, reasons: Sequence[str], ctx: GroundingContext) -> str:
        """The v2 prompt card: ``- Title | brand | $price | leaf category | rated 4.2 | why: r1; r2``.

        No rank numbers and no ``[id=...]`` tags, and fields split by ``|``: with the v1 lines
        ("1. [id=58] Quiz Show (1994) (Drama, rated 3.6): ...") about one reply in four was a
        copied line instead of a sentence; a ``|``-separated record is not something to copy, and
        a reply that still does is caught by ``card_copy`` (and the lines are shorter to prefill).
        """
        fields = [item.title, *self._card_facts(item)]
        keep = [r for r in reasons if not r.startswith(_RERANK_REASON) and not self.checker.check(r, ctx)][:2]
        if keep:
            fields.append("why: " + "; ".join(keep))
        return "- " + " | ".join(fields)

    def _pick_line(self, item: Item, reasons: Sequence[str], ctx: GroundingContext) -> str:
        """The recommend v2 prompt's best match, in words: ``Title, a drama by Brand at $12 rated 4.2
        out of 5; why it fits: r1; r2``.

        One product to write a sentence about, not a list (with a list of candidate lines the 0.5B
        model tended to continue the list), and facts phrased so that repeating them reads as prose.
        """
        line = item.title
        if item.categories:
            line += f", {_article(item.categories[-1])} {item.categories[-1].lower()}"
        if item.brand:
            line += f" by {item.brand}"
        if item.price is not None:
            line += f" at {_money(item.price, self.currency)}"
        if item.rating is not None:
            line += f" rated {item.rating:.1f} out of 5"
        keep = [r for r in reasons if not r.startswith(_RERANK_REASON) and not self.checker.check(r, ctx)][:2]
        return line + ("; why it fits: " + "; ".join(keep) if keep else "")

    def _excluded(self, state: DialogueState) -> list[str]:
        """Disliked items and their near-duplicates (cosine >= NEAR_DUPLICATE_COS)."""
        bad = [i for i in state.disliked if i in self.catalog]
        if not bad:
            return []
        sims = self.index.item_matrix @ self.index.vectors(bad).T
        rows = np.flatnonzero(sims.max(axis=1) >= self.config.near_duplicate_cos)
        return list(dict.fromkeys([*bad, *(self.catalog.at(int(r)).item_id for r in rows)]))

    def _ranker_for(self, query: str, constraints: Constraints, has_history: bool) -> FusedRanker:
        """The ranker for this turn: relevance down-weighted when the filters already say it all."""
        if self.config.filter_only_relevance is None or not has_history or not _filters_say_it_all(query, constraints):
            return self.ranker
        w = self.ranker.weights
        key = (id(w), w.relevance, self.config.filter_only_relevance)
        cached = getattr(self, "_filter_only_ranker", None)
        if cached is None or cached[0] != key:
            weights = dataclasses.replace(w, relevance=w.relevance * self.config.filter_only_relevance)
            cached = (key, FusedRanker(self.catalog, weights, item_vectors=self.index.vectors))
            self._filter_only_ranker = cached
        return cached[1]

    def _outside_years(self, years: tuple[int, int] | None) -> list[str]:
        """Items with a known release year outside ``years`` (items without one are kept)."""
        if years is None:
            return []
        known = getattr(self, "_release_years", None)
        if known is None:
            known = {}
            for it in self.catalog:
                y = it.attributes.get("release_year")
                if isinstance(y, int | float) and not isinstance(y, bool) and np.isfinite(y):
                    known[it.item_id] = int(y)
            self._release_years = known
        lo, hi = years
        return [i for i, y in known.items() if not lo <= y <= hi]

    def _cf_candidates(self, history: Sequence[str], constraints: Constraints) -> list[str]:
        """The scorer's top ``config.cf_pool`` items for ``history`` that pass the hard filters
        (positive scores only)."""
        n = self.config.cf_pool
        scorer = self.index.scorer
        if scorer is None or not history or n <= 0 or getattr(scorer, "catalog", None) is None:
            return []
        if scorer.catalog is not self.catalog and scorer.catalog.ids != self.catalog.ids:  # fitted elsewhere
            return [i for i, s in scorer.recommend(list(history), n=n) if s > 0 and i in self.catalog]
        scores = np.asarray(scorer.score(list(history)), dtype=np.float64)
        ok = self.index.filter_index.mask(constraints) & (scores > 0)
        rows = np.flatnonzero(ok)
        if rows.size > n:
            rows = rows[np.argpartition(-scores[rows], n - 1)[:n]]
        rows = rows[np.lexsort((rows, -scores[rows]))]
        return [self.catalog.at(int(r)).item_id for r in rows]

    def _cf_history(self, user_id: str | None, state: DialogueState) -> tuple[list[str], str]:
        """The history the collaborative scorer and explanations use: the user's, else the session's."""
        if user_id is not None:
            hist = self.history(user_id)
            hist += [i for i in state.liked if i not in hist]
            if hist:
                return hist, "bought"
        session = list(dict.fromkeys([*state.shown[-self.config.session_history_for_cf:], *state.liked]))
        session = [i for i in session if i not in set(state.disliked)]
        return session, "saw"

    def _cards(
        self,
        page: Sequence[RankedItem],
        turn: _Turn,
        constraints: Constraints,
        history: Sequence[str],
        history_verb: str,
    ) -> list[RecommendedItem]:
        hist = [h for h in history if h in self.catalog]
        hist_vecs = self.index.vectors(hist) if hist else None
        liked = [i for i in turn.state.liked if i in self.catalog]
        liked_vecs = self.index.vectors(liked) if liked else None
        anchors = list(dict.fromkeys([*liked, *hist[-20:]]))
        out = []
        for r in page:
            item = self.catalog[r.item_id]
            v = self.index.vectors([r.item_id])[0]
            ev = Evidence(contributions=r.contributions, query=turn.query, history_verb=history_verb)
            if hist_vecs is not None:
                sims = hist_vecs @ v
                j = int(np.argmax(sims))
                if hist[j] != r.item_id:
                    ev.history_neighbor = (self.catalog[hist[j]], float(sims[j]))
            if liked_vecs is not None:
                sims = liked_vecs @ v
                j = int(np.argmax(sims))
                if liked[j] != r.item_id:
                    ev.liked_neighbor = (self.catalog[liked[j]], float(sims[j]))
            best = max(
                ((self.index.cooc.support(a, r.item_id), a) for a in anchors if a != r.item_id),
                default=(0, None),
            )
            if best[0] > 0 and best[1] is not None:
                ev.co_bought = (self.catalog[best[1]], best[0])
            ev.popularity = self.index.item_count(r.item_id)
            reasons = build_reasons(item, ev, turn.constraints, self.currency)
            out.append(_card(item, r.score, reasons, r.contributions))
        return out

    def _recommend_fallback(
        self, items: list[RecommendedItem], cons_text: str, strings: prompts.ReplyStrings
    ) -> str:
        top = items[0]
        top_reasons = ", ".join(top.reasons[:2]) or "-"
        if len(items) == 1:
            return strings.format(
                "recommend_one", constraints=cons_text, top_title=top.title, top_reasons=top_reasons
            )
        return strings.format(
            "recommend",
            count=len(items),
            constraints=cons_text,
            titles="; ".join(it.title for it in items[:3]),
            top_title=top.title,
            top_reasons=top_reasons,
        )

    # --- compare ----------------------------------------------------------------------
    def _plan_compare(self, turn: _Turn) -> _Plan:
        strings = self._strings(turn)
        ids = turn.referenced or list(turn.state.last_items[:2])
        ids = [i for i in dict.fromkeys(ids) if i in self.catalog][:4]
        if len(ids) < 2:
            return _Plan("compare", fallback=strings.format("compare_need_two"))
        items = [self.catalog[i] for i in ids]
        comparison = build_comparison(items, self.currency)
        cards = [_card(it, 0.0, self._fact_reasons(it, turn), {}) for it in items]
        titles = " vs ".join(it.title for it in items)
        table = comparison.to_markdown()
        return _Plan(
            "compare",
            items=cards,
            comparison=comparison,
            messages=self._prompt("compare", turn).messages(question=turn.message, table=table),
            repair_values={"query": turn.message, "cards": table},
            fallback=strings.format("compare", titles=titles),
            grounding=self._grounding_ctx(turn, items),
        )

    # --- details ------------------------------------------------------------------------
    def _plan_details(self, turn: _Turn) -> _Plan:
        strings = self._strings(turn)
        ids = turn.referenced or list(turn.state.last_items[:1])
        ids = [i for i in ids if i in self.catalog][:2]
        if not ids:
            return _Plan("details", fallback=strings.format("details_none"))
        items = [self.catalog[i] for i in ids]
        facts = "\n".join(self._facts(it, turn.message) for it in items)
        cards = [_card(it, 0.0, self._fact_reasons(it, turn), {}) for it in items]
        return _Plan(
            "details",
            items=cards,
            messages=self._prompt("details", turn).messages(question=turn.message, cards=facts),
            repair_values={"query": turn.message, "cards": facts},
            fallback=strings.format(
                "details", facts=" ".join(self._facts(it, turn.message, prose=True) for it in items)
            ),
            grounding=self._grounding_ctx(turn, items),
        )

    def _facts(self, item: Item, question: str, prose: bool = False) -> str:
        parts = [item.title]
        if item.brand:
            parts.append(f"brand {item.brand}")
        if item.price is not None:
            parts.append(f"price {_money(item.price, self.currency)}")
        if item.categories:
            parts.append("category " + " > ".join(item.categories))
        if item.rating is not None:
            parts.append(f"rating {item.rating:.1f}/5")
        parts.append("in stock" if item.in_stock else "out of stock")
        if item.description and not prose:
            parts.append(f"description: {item.description[:200]}")
        quote = review_quote(item, question) or (item.reviews[0][:90] if item.reviews else None)
        text = ", ".join(parts) + "."
        if quote:
            text += f' A reviewer says: "{quote}"'
        return text

    def _fact_reasons(self, item: Item, turn: _Turn) -> list[str]:
        out = []
        if item.rating is not None:
            out.append(f"rated {item.rating:.1f}/5")
        quote = review_quote(item, turn.message)
        if quote:
            out.append(f'reviewers say: "{quote}"')
        return out

    # --- bundle -------------------------------------------------------------------------
    def _plan_bundle(self, turn: _Turn) -> _Plan:
        from retrieval.complements import assemble_bundle

        strings = self._strings(turn)
        budget = turn.budget or turn.constraints.price_max
        if budget is None or not self.catalog.has_prices:
            turn.notes.append("bundle without a budget: showing complements")
            return self._plan_recommend(turn)
        base = turn.constraints.merged(price_max=None, price_min=None)
        seed = turn.referenced[0] if turn.referenced else None
        try:
            b = assemble_bundle(
                seed or turn.query or turn.message,
                float(budget),
                self.catalog,
                retriever=self.index.retriever,
                graph=self.index.cooc,
                constraints=base.merged(exclude_items=tuple(self._excluded(turn.state))),
            )
        except ValueError as e:
            turn.notes.append(f"bundle: {e}")
            return _Plan("bundle", fallback=strings.format("bundle_empty"))
        if not b.items:
            return _Plan("bundle", fallback=strings.format("bundle_empty"), meta={"notes": [b.note]})
        items = []
        for bi in b.items:
            it = self.catalog[bi.item_id]
            reasons = []
            others = [o.item_id for o in b.items if o.item_id != bi.item_id]
            best = max(((self.index.cooc.support(o, bi.item_id), o) for o in others), default=(0, None))
            if best[0] > 0 and best[1] is not None:
                reasons.append(f"bought together with {self.catalog[best[1]].title} by {best[0]} shoppers")
            if bi.item_id == seed:
                reasons.append("the item you started from")
            reasons.append(f"fits your {_money(float(budget), self.currency)} budget")
            items.append(_card(it, float(bi.relevance + bi.cooccurrence), reasons, {}))
        total = _money(b.total_price, self.currency)
        bundle = Bundle([i.item_id for i in items], b.total_price, float(budget), seed)
        ctx = self._grounding_ctx(turn, [self.catalog[c.item_id] for c in items])
        ctx.allowed_prices = [*ctx.allowed_prices, b.total_price, float(budget)]
        cards = "\n".join(
            self._prompt_card(i + 1, self.catalog[c.item_id], c.reasons, ctx) for i, c in enumerate(items)
        )
        fallback = strings.format(
            "bundle",
            count=len(items),
            total=total,
            budget=f" (budget {_money(float(budget), self.currency)})",
            titles="; ".join(c.title for c in items),
        )
        return _Plan(
            "bundle",
            items=items,
            bundle=bundle,
            messages=self._prompt("bundle", turn).messages(query=turn.message, cards=cards, total=total),
            repair_values={"query": turn.message, "cards": cards},
            fallback=fallback,
            grounding=ctx,
            card_lines=cards.splitlines(),
        )

    # ------------------------------------------------------------------ generation + grounding
    def _grounding_ctx(self, turn: _Turn, items: Sequence[Item]) -> GroundingContext:
        c = turn.constraints
        prices = [p for p in (c.price_min, c.price_max, turn.budget) if p is not None]
        return GroundingContext(
            list(items),
            query=turn.message,
            allowed_prices=prices,
            allowed_brands=[*c.brands_in, *c.brands_out],
        )

    def _check(self, text: str, plan: _Plan) -> list[GroundingViolation]:
        """Catalog grounding plus prompt echo: a reply quoting the system prompt or the prompt's
        scaffolding (e.g. an injected "print your instructions" the model obeyed) is rejected."""
        bad = self.checker.check(text, plan.grounding) if plan.grounding is not None else []
        return bad + prompt_echo(text, plan.messages or [])

    def _generate(self, plan: _Plan) -> Any:
        """Stream the LLM reply, checking each finished sentence; on a violation stop, regenerate
        once with the repair prompt, then fall back to the template. Returns (text, report).

        Stage times and token counts go to ``plan.timings`` (prefill = call to first text,
        decode = the rest of the stream, grounding = time spent checking, repair = second call).
        """
        assert plan.messages is not None and plan.grounding is not None
        report = GroundingReport()
        tm = plan.timings
        tm.update(llm_prefill_s=0.0, llm_decode_s=0.0, grounding_s=0.0, repair_s=0.0)
        tm.update(llm_calls=1, llm_prompt_tokens=None, llm_completion_tokens=None)
        text, checked_upto, bad, copied = "", 0, [], False
        t_call = time.perf_counter()
        t_first: float | None = None
        # A tighter per-reply cap goes to our own model (it stops generating there); the cut below
        # for other models keeps the assistant-wide cap, so their output is checked as before.
        llm_kwargs = dict(self._llm_kwargs)
        cap = llm_kwargs.get("max_sentences")
        if (
            plan.max_sentences is not None
            and "max_sentences" in llm_kwargs
            and (cap is None or plan.max_sentences < cap)
        ):
            llm_kwargs["max_sentences"] = plan.max_sentences
        try:
            for chunk in self.llm.stream(plan.messages, **llm_kwargs):
                _count_tokens(chunk, tm)
                piece = _chunk_text(chunk)
                if not piece:
                    continue
                if t_first is None:
                    t_first = time.perf_counter()
                    tm["llm_prefill_s"] = t_first - t_call
                if not text:
                    piece = piece.lstrip()
                capped = False
                cut = sentence_cut(text + piece, self.config.max_sentences)
                if cut is not None and cut < len((text + piece).rstrip()):
                    piece, capped = (text + piece)[:cut][len(text) :], True  # models without the cap
                text += piece
                at = repeated_phrase_start(text)
                if at is not None:  # a small model looping ("a cream by X at $25, a cream by X at $25, ...")
                    plan.meta.setdefault("notes", []).append(f"repetition cut: {text[at:][:80]!r}")
                    plan.meta["repetition_cut"] = True
                    text = text[:at].rstrip(" ,;:-")
                    yield TextReset(text)  # part of the repeat may already be on screen
                    break
                if self.config.prose_guard and plan.card_lines and card_copy(text, plan.card_lines):
                    copied = True  # stop now: the rest would be the copied list, a wasted decode
                    break
                if piece:
                    yield TextDelta(piece)
                tg = time.perf_counter()
                ends = [m.end() for m in _SENTENCE_END.finditer(text, checked_upto)]
                if ends:
                    bad = self._check(text[: ends[-1]], plan)
                    checked_upto = ends[-1]
                tm["grounding_s"] += time.perf_counter() - tg
                if bad or capped:
                    break
        except Exception as e:  # a broken model must not break the turn: template reply
            report.violations = []
            report.fallback = True
            plan.meta.setdefault("notes", []).append(f"llm error: {type(e).__name__}: {e}")
            yield TextReset(plan.fallback)
            return plan.fallback, report
        t_end = time.perf_counter()
        if t_first is None:
            tm["llm_prefill_s"] = t_end - t_call
        else:
            tm["llm_decode_s"] = max(t_end - t_first - tm["grounding_s"], 0.0)
        if copied or (not self.config.prose_guard and plan.card_lines and card_copy(text, plan.card_lines)):
            plan.meta["card_copy"] = True  # counted by bench/chat.py (copy rate)
        if copied:
            plan.meta.setdefault("notes", []).append(
                f"card_copy: the reply copied a candidate line: {text[:120]!r}"
            )
            report.fallback = True
            yield TextReset(plan.fallback)
            return plan.fallback, report
        if not bad:
            tidy = _tidy(text)
            whole = _whole_sentences(text)
            if whole and whole != text.strip():
                yield TextReset(whole)  # cut by the token budget: end on the last whole sentence
                tidy = whole
            elif tidy.startswith(text.strip()) and len(tidy) > len(text.strip()):
                yield TextDelta(tidy[len(text.strip()) :])  # the ellipsis of a reply cut mid-sentence
            text = tidy
            tg = time.perf_counter()
            bad = self._check(text, plan)
            tm["grounding_s"] += time.perf_counter() - tg
        if not bad and text:
            return text, report
        report.violations = list(bad)
        if not text:
            report.fallback = True
            yield TextReset(plan.fallback)
            return plan.fallback, report
        # One regeneration with the problems spelled out, then the template.
        if plan.repair_values is not None:
            report.regenerated = True
            tr = time.perf_counter()
            lang = "zh" if _CJK.search(plan.fallback) else "en"
            msgs = prompts.load("repair", lang, self._prompt_version("repair")).messages(
                problems=describe(bad), **plan.repair_values
            )
            try:
                answer = self.llm.invoke(msgs, **self._llm_kwargs)
                tm["llm_calls"] += 1
                _count_tokens(answer, tm)
                second = _tidy(_chunk_text(answer))
            except Exception:
                second = ""
            again = self._check(second, plan) if second else bad
            tm["repair_s"] = time.perf_counter() - tr
            if second and not again:
                yield TextReset(second)
                return second, report
            report.violations.extend(v for v in again if v not in report.violations)
        report.fallback = True
        yield TextReset(plan.fallback)
        return plan.fallback, report

    # ------------------------------------------------------------------ text helpers
    def _constraints_text(self, c: Constraints, lang: str) -> str:
        parts = []
        if c.price_max is not None and c.price_min is not None:
            parts.append(f"{_money(c.price_min, self.currency)}–{_money(c.price_max, self.currency)}")
        elif c.price_max is not None:
            parts.append(("不超过 " if lang == "zh" else "under ") + _money(c.price_max, self.currency))
        elif c.price_min is not None:
            parts.append(("高于 " if lang == "zh" else "over ") + _money(c.price_min, self.currency))
        if c.brands_in:
            parts.append(("品牌 " if lang == "zh" else "from ") + " or ".join(c.brands_in))
        if c.brands_out:
            parts.append(("不要 " if lang == "zh" else "not ") + " or ".join(c.brands_out))
        if c.categories:
            parts.append(("类别 " if lang == "zh" else "in ") + " or ".join(p[-1] for p in c.categories))
        if c.categories_out:
            parts.append(
                ("排除 " if lang == "zh" else "not in ") + " or ".join(p[-1] for p in c.categories_out)
            )
        if not parts:
            return ""
        return ("（" + "，".join(parts) + "）") if lang == "zh" else " (" + ", ".join(parts) + ")"


# ---------------------------------------------------------------------- module helpers
_DEFAULTS = AssistantConfig()


def _is_data(value: Any) -> bool:
    """A config value (a name, a path, None) rather than a built object (a chat model, a scorer)."""
    return value is None or isinstance(value, str | os.PathLike)


def resolve_chat_model(
    llm: Any,
    adapter: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    cache_dir: Any = None,
    quantize: str | None = "auto",
    prefix_cache: bool = _DEFAULTS.prefix_cache,
    max_new_tokens: int = _DEFAULTS.max_new_tokens,
) -> Any:
    """``None``/"none" -> None; a chat model instance as is; ``"openai:MODEL@URL"`` -> a
    ``ChatOpenAI`` on that OpenAI-compatible endpoint (``max_new_tokens`` as its ``max_tokens``);
    a name or path -> ``LocalChatModel`` with the product's latency defaults (int8 on CPU,
    system-prompt KV cache, 2-sentence cap).

    ``quantize``: None (full precision), "int8", or "auto" (``assistant.models.default_quantize``:
    $SHOPASSIST_LLM_QUANTIZE, else int8 on CPU).
    """
    if llm is None or (isinstance(llm, str) and llm.lower() == "none"):
        return None
    from assistant.openai_backend import is_openai_spec, openai_chat_model

    if is_openai_spec(llm):
        if adapter is not None:
            raise ValueError("a LoRA adapter cannot be applied to a remote LLM; serve it with the endpoint")
        return openai_chat_model(llm, max_tokens=max_new_tokens)
    if isinstance(llm, str | Path):
        from assistant.llm import LocalChatModel
        from assistant.models import default_quantize, parse_quantize

        scheme = default_quantize() if quantize == "auto" else parse_quantize(quantize)
        model = LocalChatModel(
            model_name=str(llm),
            adapter=None if adapter is None else str(adapter),
            threads=threads,
            cache_dir=None if cache_dir is None else str(cache_dir),
            max_new_tokens=_DEFAULTS.max_new_tokens,
            max_sentences=_DEFAULTS.max_sentences,
            quantize=scheme,
            prefix_cache=prefix_cache,
        )
        _ = model.loaded  # load now, not in the first turn
        return model
    if not hasattr(llm, "stream") or not hasattr(llm, "invoke"):
        raise TypeError(
            f"llm must be a model name/path, a langchain chat model or None; got {type(llm).__name__}"
        )
    return llm


def build_llm_reranker(
    chat_model: Any,
    llm: Any,
    adapter: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    quantize: str | None = "auto",
    cache_dir: Any = None,
) -> Any:
    """The listwise LLM re-ranker stage: the chat model's own loaded weights (no second copy in
    memory) unless ``adapter`` names a LoRA adapter, which is loaded on the same base model."""
    from assistant.llm import LocalChatModel
    from assistant.models import DEFAULT_LLM, default_quantize, parse_quantize
    from finetune.reranker import LLMReranker  # the one implementation of the listwise prompt

    if adapter is None and isinstance(chat_model, LocalChatModel):
        return LLMReranker.from_chat_model(chat_model)
    if adapter is not None and not (Path(adapter).expanduser() / "adapter_config.json").is_file():
        raise ValueError(
            f"reranker_adapter {adapter} is not a LoRA adapter directory (no adapter_config.json)"
        )
    base = chat_model.model_name if isinstance(chat_model, LocalChatModel) else llm
    if not isinstance(base, str | Path) or str(base).lower() == "none" or str(base).startswith("openai:"):
        base = DEFAULT_LLM  # a remote or template-only chat model: re-rank with the packaged model
    scheme = default_quantize() if quantize == "auto" else parse_quantize(quantize)
    return LLMReranker(base, adapter_dir=adapter, threads=threads, quantize=scheme, cache_dir=cache_dir)


_PROMPT_LABELS = re.compile(r"^\s*(?:CANDIDATES|Shopper|Filters|SCHEMA)\s*[:：]", re.MULTILINE)


def prompt_echo(text: str, messages: Sequence[Any]) -> list[GroundingViolation]:
    """Violations for reply text that repeats a system-prompt sentence (>= 24 chars) or starts a
    line with a prompt label ("CANDIDATES:", "Shopper:"): the model is leaking its instructions."""
    out = []
    folded = " ".join(text.split()).casefold()
    for msg in messages[:1]:  # the system message
        system = _chunk_text(msg)
        for sent in re.split(r"(?<=[.!?。！？])\s*|\n+", system):
            sent = " ".join(sent.split())
            if len(sent) >= 24 and sent.casefold() in folded:
                out.append(GroundingViolation("prompt_leak", sent[:80], "repeats the system prompt"))
                break
    m = _PROMPT_LABELS.search(text)
    if m:
        out.append(GroundingViolation("prompt_leak", m.group(0).strip(), "repeats the prompt's scaffolding"))
    return out


def build_comparison(items: Sequence[Item], currency: str | None) -> Comparison:
    """Side-by-side catalog facts; attributes every item lacks are left out."""
    rows = [
        ComparisonRow("price", [None if it.price is None else _money(it.price, currency) for it in items]),
        ComparisonRow("brand", [it.brand for it in items]),
        ComparisonRow("category", [" > ".join(it.categories) or None for it in items]),
        ComparisonRow("rating", [None if it.rating is None else f"{it.rating:.1f}" for it in items]),
        ComparisonRow("in stock", ["yes" if it.in_stock else "no" for it in items]),
        ComparisonRow("reviews", [len(it.reviews) or None for it in items]),
    ]
    keys = sorted(
        {k for it in items for k, v in it.attributes.items() if isinstance(v, str | int | float | bool)}
    )
    rows += [ComparisonRow(k, [it.attributes.get(k) for it in items]) for k in keys[:8]]
    rows = [r for r in rows if any(v is not None for v in r.values)]
    return Comparison([it.item_id for it in items], [it.title for it in items], rows)


def _filters_say_it_all(query: str, constraints: Constraints) -> bool:
    """True when every content word of ``query`` names a category or brand the filters enforce."""
    from retrieval.hybrid import GENERIC_WORDS
    from retrieval.lexical import tokenize

    words = set(tokenize(query)) - GENERIC_WORDS
    if not words:
        return True
    names = [n for p in constraints.categories for n in p] + list(constraints.brands_in)
    return words <= set(tokenize(" ".join(names)))


def _card(item: Item, score: float, reasons: list[str], contributions: dict[str, float]) -> RecommendedItem:
    return RecommendedItem(
        item_id=item.item_id,
        title=item.title,
        price=item.price,
        brand=item.brand,
        categories=item.categories,
        score=float(score),
        reasons=list(reasons),
        contributions={k: round(float(v), 4) for k, v in contributions.items()},
        rating=item.rating,
        in_stock=item.in_stock,
    )


def _count_tokens(message: Any, timings: dict[str, Any]) -> None:
    """Add a chunk's/message's usage metadata (when the model reports it) to the turn's counts."""
    usage = getattr(message, "usage_metadata", None)
    if not usage:
        return
    for key, field_ in (("llm_prompt_tokens", "input_tokens"), ("llm_completion_tokens", "output_tokens")):
        n = usage.get(field_)
        if n:
            timings[key] = (timings.get(key) or 0) + int(n)


def _chunk_text(chunk: Any) -> str:
    content = getattr(chunk, "content", chunk)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content)
    return str(content or "")


# Card-line scaffolding in a reply: an id tag, a list marker starting a line, the v2 cards' field
# separator or "why:" label.
_CARD_TAG = re.compile(
    r"\[id=|^\s*(?:\d{1,2}\.|[-*•])\s+\S|\s\|\s|\bwhy(?: it fits)?:|\bbest match:|\bother options:",
    re.MULTILINE | re.IGNORECASE,
)
_FACTS_PAREN = re.compile(r"\([^()]*,[^()]*\)")  # "(Drama, rated 3.6)": a v1 card's facts


REPEAT_NGRAM = 6
"""Words a phrase must share with an earlier one, not overlapping it, to count as a loop."""
_WORD_SPAN = re.compile(r"\S+")


def repeated_phrase_start(text: str, n: int = REPEAT_NGRAM) -> int | None:
    """Character offset where ``text`` starts repeating an earlier ``n``-word phrase, or None.

    Greedy decoding of a small model sometimes loops on a clause; the reply is cut there.
    Six words keeps two similarly named products in one sentence apart from a loop."""
    spans = [(m.start(), re.sub(r"[^\w$]", "", m.group().casefold())) for m in _WORD_SPAN.finditer(text)]
    first: dict[tuple[str, ...], int] = {}
    for i in range(len(spans) - n + 1):
        gram = tuple(w for _, w in spans[i : i + n])
        if i - first.setdefault(gram, i) >= n:
            return spans[i][0]
    return None


def card_copy(text: str, card_lines: Sequence[str]) -> bool:
    """True when reply ``text`` reproduces a prompt card line instead of writing a sentence.

    Copying shows as the card's scaffolding (``[id=`` tags, list markers, ``|`` separators,
    ``why:``), its facts verbatim ("(Drama, rated 3.6)") or its reasons verbatim in the card's
    order ("matches what you asked for; in Drama"). Naming a title or using one reason in a
    sentence is what the prompt asks for, so those do not count.
    """
    if _CARD_TAG.search(text):
        return True
    folded = " ".join(text.split()).casefold()
    return any(marker in folded for line in card_lines for marker in _copy_markers(line))


def _copy_markers(line: str) -> list[str]:
    line = " ".join(line.split()).casefold()
    out: list[str] = []
    if " | " in line:  # v2 card: "- title | facts... | why: r1; r2"
        why = next((f[4:].strip() for f in line.split(" | ") if f.startswith("why:")), "")
    elif "why it fits: " in line:  # recommend v2 best match: "title, a drama ...; why it fits: r1; r2"
        why = line.split("why it fits: ", 1)[1]
    else:  # v1 compact "1. [id=x] title (facts): r1; r2" or full "... (facts). why: r1; r2"
        out += _FACTS_PAREN.findall(line)
        why = (
            line.split("): ", 1)[1]
            if "): " in line
            else line.split("why: ", 1)[-1]
            if "why: " in line
            else ""
        )
    if ";" in why:  # two or more reasons, verbatim and in order
        out.append(why.strip())
    return [m for m in out if len(m) >= 12]


def _whole_sentences(text: str) -> str:
    """``text`` up to its last finished sentence ("" if none): a reply stopped by the token budget
    then ends cleanly instead of mid-clause with an ellipsis."""
    text = text.strip()
    if not text or (re.search(r"[.!?。！？…]$", text) and not re.search(r"\d\.$", text)):
        return text  # finished (a final "4." may be the start of "4.5": not finished)
    ends = [m.end() for m in re.finditer(r"(?<!\b\d)(?<!\b\d\d)[.!?](?=\s)|[。！？]", text)]
    return text[: ends[-1]].strip() if ends else ""


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


_RERANK_REASON = "the re-ranker "  # on the card for the shopper; not a reason for the LLM to phrase


def _rerank_reason(before: int, after: int) -> str | None:
    """What the LLM re-ranker did for a shown item, in the shopper's terms (None if it moved it down)."""
    if after == 0:
        return (
            "the re-ranker kept it first"
            if before == 0
            else f"the re-ranker placed it first (it was #{before + 1} before re-ranking)"
        )
    if after < before:
        return f"the re-ranker moved it up from #{before + 1} to #{after + 1}"
    return None


def _tidy(text: str) -> str:
    """Trim whitespace; a reply cut by the token limit ends with an ellipsis, not half a word."""
    text = text.strip()
    if text and not re.search(r"[.!?。！？…)\]\"”]$", text):
        text = text + "…"
    return text


def _model_name(llm: Any) -> str:
    return str(getattr(llm, "model_name", None) or type(llm).__name__)
