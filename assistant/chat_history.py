"""One session's transcript as a LangChain ``BaseChatMessageHistory`` (``ShoppingAssistant.chat_history``).

The messages are the session's stored turns (``SessionStore``, sqlite): the shopper's as
``HumanMessage``, the assistant's as ``AIMessage``, each with ``intent``, ``item_ids`` and ``ts``
in ``additional_kwargs``. Added messages are stored as turns of that session at once (redacted
like every stored turn, the last ``MAX_TRANSCRIPT_TURNS`` kept), so any later reader of the
store sees them; ``clear`` empties that session alone. Ownership is the store's: a session bound
to another user raises ``SessionOwnershipError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from assistant.dialogue_state import DialogueState
from assistant.sessions import SessionRecord, SessionStore, Turn

__all__ = ["SessionChatHistory"]


class SessionChatHistory(BaseChatMessageHistory):
    """The turns of ``session_id`` in ``store``. ``lock`` (a context manager, optional) is held
    around each read-modify-write, e.g. the assistant's lock for that session, so an added
    message never races a chat turn of the same session."""

    def __init__(
        self,
        store: SessionStore,
        session_id: str,
        user_id: str | None = None,
        lock: contextlib.AbstractContextManager[Any] | None = None,
    ):
        if not isinstance(session_id, str) or not session_id.strip():
            raise ValueError(f"session_id must be a non-empty string, got {session_id!r}")
        self.store = store
        self.session_id = session_id
        self.user_id = user_id
        self._lock = lock if lock is not None else contextlib.nullcontext()

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        with self._lock:
            rec = self.store.open(self.session_id, self.user_id)
        return [_message(t) for t in rec.transcript]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append shopper (``HumanMessage``) and assistant (``AIMessage``) turns, saved at once.
        Any other kind (system, tool) raises ``ValueError`` and nothing is saved."""
        turns = [_turn_args(m) for m in messages]
        with self._lock:
            rec = self.store.open(self.session_id, self.user_id)
            for role, text, intent, item_ids in turns:
                rec.add_turn(role, text, intent, item_ids)
            self.store.save(rec)

    def clear(self) -> None:
        """Forget this conversation: its transcript and dialogue state (constraints, shown and
        liked items). The owner stays, so the session id still cannot pass to another user."""
        with self._lock:
            rec = self.store.open(self.session_id, self.user_id)
            if self.store.get(self.session_id) is None:  # nothing stored: nothing to clear
                return
            self.store.save(SessionRecord(rec.session_id, rec.user_id, DialogueState(), [], rec.created_at))


def _message(turn: Turn) -> BaseMessage:
    extra = {"intent": turn.intent, "item_ids": list(turn.item_ids), "ts": turn.ts}
    if turn.role == "user":
        return HumanMessage(content=turn.text, additional_kwargs=extra)
    return AIMessage(content=turn.text, additional_kwargs=extra)


def _turn_args(message: BaseMessage) -> tuple[str, str, str | None, list[str]]:
    if isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, AIMessage):
        role = "assistant"
    else:
        raise ValueError(
            f"a session transcript holds shopper and assistant turns only (HumanMessage, AIMessage); "
            f"got a {type(message).__name__}"
        )
    intent = message.additional_kwargs.get("intent")
    item_ids = message.additional_kwargs.get("item_ids") or []
    if intent is not None and not isinstance(intent, str):
        raise ValueError(f"additional_kwargs['intent'] must be a string, got {intent!r}")
    if not isinstance(item_ids, list | tuple) or not all(isinstance(i, str) for i in item_ids):
        raise ValueError(f"additional_kwargs['item_ids'] must be a list of item ids, got {item_ids!r}")
    return role, message.text, intent, list(item_ids)
