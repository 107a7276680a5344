"""Verbalizer scoring (LlamaRec-style): next-token log-probabilities of single-token choices
(letters "A".."T") after a prompt, one forward pass per batch of prompts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from llm.messages import encode_chat, to_chat_dicts

__all__ = ["choice_token_ids", "score_choices", "score_choices_batch"]

def choice_token_ids(tokenizer: Any, choices: Sequence[str]) -> list[int]:
    """The token id of each single-token choice (letters "A".."T"); an error if one is not one token."""
    if not choices:
        raise ValueError("choices must not be empty")
    ids = []
    for c in choices:
        toks = tokenizer.encode(c, add_special_tokens=False)
        if len(toks) != 1:
            raise ValueError(
                f"choice {c!r} is {len(toks)} tokens for this tokenizer; each choice must be one token"
            )
        ids.append(toks[0])
    if len(set(ids)) != len(ids):
        raise ValueError(f"choices {list(choices)!r} map to duplicate token ids {ids}")
    return ids


def _prompt_ids(tokenizer: Any, prompt: str | Sequence[Any]) -> list[int]:
    """A raw string is used as is (already formatted); messages go through the chat template."""
    if isinstance(prompt, str):
        return tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return encode_chat(tokenizer, to_chat_dicts(prompt))[0].tolist()


def score_choices_batch(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str | Sequence[Any]],
    choices: Sequence[str],
    batch_size: int = 8,
) -> np.ndarray:
    """`[len(prompts), len(choices)]` next-token log-probs (over the full vocabulary) of each choice.

    One forward pass per batch; prompts are left-padded so the last position is the one scored.
    Works on a plain or a PEFT model (the caller chooses train/eval mode and grad context).
    """
    import torch

    ids = choice_token_ids(tokenizer, choices)
    encoded = [_prompt_ids(tokenizer, p) for p in prompts]
    if any(len(e) == 0 for e in encoded):
        raise ValueError("prompts must not be empty")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    head = model.get_output_embeddings()
    # bf16/fp16 logits are coarse (steps of 1/16-1/8 at typical logit sizes): a flat letter
    # distribution then has ~7 distinct scores for 20 candidates and rankings tie. Recompute the
    # choices' logits in float32 from the head's input; the normaliser stays the model's own.
    exact = isinstance(head, torch.nn.Linear) and head.weight.dtype in (torch.bfloat16, torch.float16)
    captured: list[Any] = []
    hook = head.register_forward_hook(lambda _m, inp, _o: captured.append(inp[0])) if exact else None
    if exact:
        w = head.weight[ids].float()
        bias = head.bias[ids].float() if head.bias is not None else None
    rows = []
    try:
        with torch.inference_mode():
            for start in range(0, len(encoded), batch_size):
                chunk = encoded[start : start + batch_size]
                width = max(len(e) for e in chunk)
                input_ids = torch.tensor([[pad] * (width - len(e)) + e for e in chunk], device=device)
                mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in chunk], device=device)
                position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
                captured.clear()
                out = model(
                    input_ids=input_ids, attention_mask=mask, position_ids=position_ids, logits_to_keep=1
                )
                logits = out.logits[:, -1, :].float()
                norm = torch.logsumexp(logits, dim=-1, keepdim=True)
                if exact:
                    picked = captured[-1][:, -1, :].float() @ w.T
                    if bias is not None:
                        picked = picked + bias
                else:
                    picked = logits[:, ids]
                rows.append((picked - norm).cpu().numpy())
    finally:
        if hook is not None:
            hook.remove()
    return np.concatenate(rows, axis=0).astype(np.float32)


def score_choices(
    model: Any, tokenizer: Any, prompt: str | Sequence[Any], choices: Sequence[str]
) -> np.ndarray:
    """`[len(choices)]` next-token log-probs of single-token `choices` (e.g. letters "A".."T") after `prompt`."""
    return score_choices_batch(model, tokenizer, [prompt], choices, batch_size=1)[0]
