"""Chat messages -> the token ids a chat template renders: one encoding for generation, choice
scoring, fine-tuning evaluation and the prefix KV cache, so they all see the same prompt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, ChatMessage, ToolMessage, convert_to_messages

__all__ = ["encode_chat", "system_prefix_len", "to_chat_dicts"]

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, Mapping) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            raise ValueError(f"only text content is supported by the local LLM, got block {block!r}")
    return "".join(parts)


def to_chat_dicts(
    messages: Sequence[BaseMessage] | Sequence[Mapping[str, str]] | str,
) -> list[dict[str, str]]:
    """langchain messages / role dicts / a plain string -> `[{"role", "content"}]` for chat templates."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    out: list[dict[str, str]] = []
    for m in messages:
        if isinstance(m, Mapping) and "role" in m:
            out.append({"role": str(m["role"]), "content": _content_text(m["content"])})
            continue
        (msg,) = convert_to_messages([m])  # tuples, strings, dicts in langchain's own forms
        if isinstance(msg, ChatMessage):
            role = msg.role
        elif isinstance(msg, ToolMessage):
            role = "tool"
        else:
            role = _ROLES.get(msg.type)
            if role is None:
                raise ValueError(f"unsupported message type {msg.type!r}")
        out.append({"role": role, "content": _content_text(msg.content)})
    return out


def encode_chat(tokenizer: Any, chat: list[dict[str, str]], prefill: str = "") -> Any:
    """Chat template with the assistant turn opened (plus an optional prefill), as input_ids [1, T]."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    else:  # base models without a template: a plain transcript
        text = "".join(f"{m['role']}: {m['content']}\n" for m in chat) + "assistant: "
    return tokenizer(text + prefill, return_tensors="pt", add_special_tokens=False)["input_ids"]


def system_prefix_len(tokenizer: Any, chat: list[dict[str, str]], input_ids: Any) -> int:
    """How many leading tokens of `input_ids` are the rendered system message alone (0 if none).

    That block is identical every turn of a given prompt template, so its KV cache can be
    computed once. The count is verified token by token against the real prompt: a template
    or tokenizer that renders the system turn differently in context just gets no cache.
    """
    if not chat or chat[0]["role"] != "system" or len(chat) < 2:
        return 0
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=False)
    else:
        text = f"system: {chat[0]['content']}\n"
    prefix = tokenizer(text, add_special_tokens=False)["input_ids"]
    n = len(prefix)
    if n == 0 or n >= input_ids.shape[1] or input_ids[0, :n].tolist() != prefix:
        return 0
    return n

