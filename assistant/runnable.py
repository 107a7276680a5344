"""A ``ShoppingAssistant`` as a LangChain ``Runnable`` (``ShoppingAssistant.as_runnable``).

Input: ``{"message", "session_id"?, "user_id"?}`` (an ``AssistantInput``) or the message as a plain
string. Without a session id in the input, ``config["configurable"]["session_id"]`` names it
(LangChain's convention), else each call is a conversation of its own (a new random id).
``invoke`` returns ``Reply.to_dict()`` (JSON-ready); ``batch`` runs ``invoke`` per input (sessions
stay isolated; one session's turns are serialised by the assistant); ``stream`` and ``astream``
yield the turn's events as ``event_to_dict`` gives them: ``items`` (cards, from data), ``text``
deltas, a ``reset`` when grounding replaced the text, then ``done`` with the reply that ``invoke``
returns.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import run_in_executor
from pydantic import BaseModel, ConfigDict, Field

from assistant.reply import event_to_dict

if TYPE_CHECKING:
    from assistant.shopping_assistant import ShoppingAssistant

__all__ = ["AssistantInput", "AssistantRunnable"]


class AssistantInput(BaseModel):
    """One shopper message, the session it belongs to and the signed-in user (optional)."""

    model_config = ConfigDict(extra="forbid")
    message: str
    session_id: str | None = Field(default=None, min_length=1)
    user_id: str | None = None


class AssistantRunnable(Runnable[str | AssistantInput, dict[str, Any]]):
    """``ShoppingAssistant.chat`` / ``stream`` behind the ``Runnable`` interface."""

    def __init__(self, assistant: ShoppingAssistant, name: str = "ShoppingAssistant"):
        self.assistant = assistant
        self.name = name

    @property
    def InputType(self) -> Any:
        return str | AssistantInput

    @property
    def OutputType(self) -> Any:
        return dict[str, Any]

    def invoke(
        self,
        input: str | AssistantInput | dict[str, Any],
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        return self._call_with_config(self._chat, input, config, run_type="chain")

    def stream(
        self,
        input: str | AssistantInput | dict[str, Any],
        config: RunnableConfig | None = None,
        **kwargs: Any | None,
    ) -> Iterator[dict[str, Any]]:
        yield from self._transform_stream_with_config(iter([input]), self._events, config, run_type="chain")

    async def astream(
        self,
        input: str | AssistantInput | dict[str, Any],
        config: RunnableConfig | None = None,
        **kwargs: Any | None,
    ) -> AsyncIterator[dict[str, Any]]:
        # The turn is synchronous (torch, sqlite): each event is pulled in a worker thread.
        events = self.stream(input, config, **kwargs)
        done = object()
        while (event := await run_in_executor(config, next, events, done)) is not done:
            yield event  # type: ignore[misc]

    def _chat(self, input: Any, config: RunnableConfig) -> dict[str, Any]:
        turn = _parse(input, config)
        reply = self.assistant.chat(turn.message, session_id=turn.session_id, user_id=turn.user_id)
        return _jsonable(reply.to_dict())

    def _events(self, inputs: Iterator[Any], config: RunnableConfig) -> Iterator[dict[str, Any]]:
        for input in inputs:
            turn = _parse(input, config)
            for event in self.assistant.stream(
                turn.message, session_id=turn.session_id, user_id=turn.user_id
            ):
                yield _jsonable(event_to_dict(event))


def _parse(input: Any, config: RunnableConfig) -> AssistantInput:
    """The turn an input names, with its session id resolved (input, then config, then a new one)."""
    if isinstance(input, str):
        turn = AssistantInput(message=input)
    elif isinstance(input, AssistantInput):
        turn = input
    elif isinstance(input, dict):
        turn = AssistantInput.model_validate(input)
    else:
        raise TypeError(
            "input must be the message (str) or {'message', 'session_id', 'user_id'}, "
            f"got {type(input).__name__}"
        )
    configurable = config.get("configurable") or {}
    updates = {}
    if turn.session_id is None:
        updates["session_id"] = configurable.get("session_id") or f"lc-{uuid.uuid4().hex}"
    if turn.user_id is None and configurable.get("user_id") is not None:
        updates["user_id"] = configurable["user_id"]
    return turn.model_copy(update=updates)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    # Reply meta may carry numpy scalars or paths.
    return json.loads(json.dumps(d, default=str))
