"""JSON from model output: extract the first object, repair what small models get wrong, validate
it against a pydantic model or a JSON-schema dict."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = ["extract_json_block", "json_closed", "parse_json_output", "schema_dict"]

def _is_model_class(schema: Any) -> bool:
    return isinstance(schema, type) and issubclass(schema, BaseModel)


def schema_dict(schema: type[BaseModel] | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON schema of a pydantic model class, or a copy of a JSON-schema dict."""
    return schema.model_json_schema() if _is_model_class(schema) else dict(schema)  # type: ignore[union-attr]


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def _scan_json(text: str, start: int) -> tuple[int | None, list[str], bool]:
    """Scan the JSON value whose bracket opens at ``text[start]``, string-aware: (offset just past
    its closing bracket, or None while it is open; the closers still owed; inside a string?)."""
    stack: list[str] = []
    in_str = esc = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if stack and stack[-1] == ch:
                stack.pop()
            if not stack:
                return i + 1, stack, in_str
    return None, stack, in_str


def json_closed(text: str) -> bool:
    """True once the first top-level JSON object/array in `text` is closed (string-aware)."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    return bool(starts) and _scan_json(text, min(starts))[0] is not None


def extract_json_block(text: str) -> str | None:
    """The first balanced `{...}` block in `text` (string-aware); if it never closes, the tail
    from the first `{` closed with the missing brackets/quote. None when there is no `{`."""
    fenced = _FENCE.search(text)
    if fenced and "{" in fenced.group(1):
        text = fenced.group(1)
    start = text.find("{")
    if start < 0:
        return None
    end, stack, in_str = _scan_json(text, start)
    if end is not None:
        return text[start:end]
    # Truncated (e.g. hit max_new_tokens): close what is open.
    tail = text[start:].rstrip()
    if in_str:
        tail += '"'
    tail = re.sub(r",\s*$", "", tail)
    return tail + "".join(reversed(stack))


def _repairs(block: str) -> Iterator[str]:
    yield block
    fixed = re.sub(r",\s*([}\]])", r"\1", block)  # trailing commas
    yield fixed
    py = re.sub(r"\bTrue\b", "true", fixed)
    py = re.sub(r"\bFalse\b", "false", py)
    py = re.sub(r"\bNone\b", "null", py)
    yield py
    if "'" in py:
        # Python-style single quotes -> JSON double quotes (only when that is the quoting used).
        yield re.sub(r"(?<![\w\\])'|'(?![\w])", '"', py)
    yield re.sub(r"([{,]\s*)([A-Za-z_]\w*)(\s*:)", r'\1"\2"\3', py)  # unquoted keys


def _validate(obj: Any, schema: type[BaseModel] | Mapping[str, Any]) -> BaseModel | dict[str, Any] | None:
    if _is_model_class(schema):
        try:
            return schema.model_validate(obj)  # type: ignore[union-attr]
        except ValidationError:
            return None
    import jsonschema

    try:
        jsonschema.validate(obj, dict(schema))
    except jsonschema.ValidationError:
        return None
    return obj


def parse_json_output(
    text: str, schema: type[BaseModel] | Mapping[str, Any]
) -> BaseModel | dict[str, Any] | None:
    """Extract, repair and validate a JSON object from model output; None when nothing valid.

    `schema` is a pydantic model class (returns an instance) or a JSON schema dict (returns the dict).
    """
    block = extract_json_block(text)
    if block is None:
        return None
    seen: set[str] = set()
    for candidate in _repairs(block):
        if candidate in seen:
            continue
        seen.add(candidate)
        try:
            obj = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        result = _validate(obj, schema)
        if result is not None:
            return result
    return None

