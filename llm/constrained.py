"""Constrained JSON decoding for the local transformers model: an llguidance grammar compiled
from a JSON schema masks every next token, so the greedy output always parses against it."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from llm.json_output import extract_json_block, schema_dict

if TYPE_CHECKING:
    import torch

__all__ = ["generate_constrained_json"]


class _GrammarMask:
    """A transformers logits processor: tokens the grammar forbids get -inf; the token chosen at
    the previous step is fed to the matcher first (none at the first step)."""

    def __init__(self, matcher: Any, ll_tokenizer: Any, prompt_len: int):
        import llguidance.torch as llt

        self._llt = llt
        self.matcher = matcher
        self.prompt_len = prompt_len
        self.bitmask = llt.allocate_token_bitmask(1, ll_tokenizer.vocab_size)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[1] > self.prompt_len:
            self.matcher.consume_token(int(input_ids[0, -1]))
        self._llt.fill_next_token_bitmask(self.matcher, self.bitmask, 0)
        # The model's vocabulary may be padded past the tokenizer's: padding is never allowed.
        width = min(scores.shape[-1], self.bitmask.shape[-1] * 32)
        self._llt.apply_token_bitmask_inplace(scores[:, :width], self.bitmask)
        scores[:, width:] = -float("inf")
        return scores


# Bounds written into the grammar's copy of the schema, so every path closes within the token
# budget: an unbounded string or list is where a small model rambles until it runs out, and an
# object open to any key (pydantic's default schema) is where it invents keys ("type", "data"...)
# until it runs out; an object with declared properties takes only those.
_MAX_STR, _MAX_ITEMS = 32, 3


def _bounded(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _bounded(v) for k, v in node.items()}
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        if node.get("type") == "string":
            node["maxLength"] = min(node.get("maxLength", _MAX_STR), _MAX_STR)
        if node.get("type") == "array":
            node["maxItems"] = min(node.get("maxItems", _MAX_ITEMS), _MAX_ITEMS)
        return node
    if isinstance(node, list):
        return [_bounded(v) for v in node]
    return node


@lru_cache(maxsize=4)
def _ll_tokenizer(tok: Any) -> Any:
    """Building llguidance's token trie takes seconds: once per loaded tokenizer."""
    import llguidance.hf

    return llguidance.hf.from_tokenizer(tok)


def generate_constrained_json(
    loaded: Any,
    chat: list[dict[str, str]],
    schema: type[BaseModel] | Mapping[str, Any],
    max_new_tokens: int = 400,
) -> dict[str, Any]:
    """Greedy, grammar-constrained generation of one JSON object matching ``schema``.

    ``loaded`` is an ``llm.chat_model.LoadedLLM``. Every token is one the grammar allows, so the
    output parses; when the token budget runs out first, the object is cut back to its last
    complete member and closed.
    """
    import llguidance

    tok, model = loaded.tokenizer, loaded.model
    ll_tok = _ll_tokenizer(tok)
    # Compact separators keep small budgets enough; whitespace would only burn tokens.
    grammar = llguidance.LLMatcher.grammar_from_json_schema(
        _bounded(copy.deepcopy(schema_dict(schema))), defaults={"whitespace_flexible": False}
    )
    matcher = llguidance.LLMatcher(ll_tok, grammar)
    ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    input_ids = ids["input_ids"]
    mask = _GrammarMask(matcher, ll_tok, input_ids.shape[1])
    import torch  # like every llm module: torch loads on first generation, after runtime.configure()

    with loaded.lock, torch.inference_mode():
        out = model.generate(
            input_ids,
            attention_mask=ids.get("attention_mask"),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            logits_processor=[mask],
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        )
    return _closed(tok.decode(out[0, input_ids.shape[1] :], skip_special_tokens=True))


def _closed(text: str) -> dict[str, Any] | None:
    """The object, or when the budget cut it off, the grammar-valid prefix up to its last complete
    member (cut at a comma, open brackets closed); ``{}`` when no member completed."""
    cuts = [len(text)] + [i for i in range(len(text) - 1, 0, -1) if text[i] == ","]
    for cut in cuts:
        block = extract_json_block(text[:cut]) if text.startswith("{") else None
        try:
            value = json.loads(block) if block else None
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}
