"""LoRA adapters from ``python -m finetune train`` in the product: which stage each one serves.

``AssistantConfig.adapter`` holds one adapter path or several; each must be a LoRA adapter trained
on the configured ``llm``, and its training data's task (the manifest copied beside it) picks the
stage: an understanding adapter (``finetune generate --task understand``) runs the understanding
stage's JSON fallback, any other (``--task reply``, the listwise ``recommend``) the chat model. At
most one adapter per stage: a second one for the same stage is refused, never dropped.

Each adapter is loaded merged into its own copy of the base model (``llm.chat_model``), so int8
quantization and the system-prompt KV cache work as without one and the two stages never share
mutable state. peft's multi-adapter switching (``load_adapter(..., adapter_name=)`` +
``set_adapter``) would share the base weights, but it keeps the LoRA unmerged (slower, no int8)
and makes the active adapter a model-wide switch that both stages would have to lock around.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm.listwise import ADAPTER_DATA_MANIFEST
from llm.openai_backend import is_openai_spec

__all__ = [
    "ADAPTER_HELP",
    "UNDERSTAND_TASK",
    "AdapterRoutes",
    "adapter_task",
    "check_local_llm",
    "route_adapters",
]

UNDERSTAND_TASK = "understand"
"""The data task (``finetune generate --task understand``) of an adapter for the understanding stage."""

ADAPTER_HELP = (
    "a LoRA adapter from `python -m finetune train`, trained on --llm's model; its training task picks "
    "the stage: an understanding adapter (generate --task understand) runs the understanding stage's "
    "JSON fallback, any other (--task reply, listwise) the chat model. Give it twice to load one of "
    "each, each on its own copy of the base model"
)


@dataclass(frozen=True)
class AdapterRoutes:
    """The adapter path of each stage (None: that stage runs the base model)."""

    understand: str | None = None
    chat: str | None = None


def check_local_llm(llm: Any, option: str = "adapter") -> None:
    """A LoRA adapter loads on a local model (a registry name or model dir), never on an
    OpenAI-compatible endpoint, a langchain chat model object or no LLM: a ValueError saying so."""
    if is_openai_spec(llm):
        raise ValueError(
            f"{option}: a LoRA adapter cannot be applied to a remote LLM; serve it with the endpoint"
        )
    if not isinstance(llm, str | Path) or str(llm).lower() == "none":
        raise ValueError(f"{option} needs a local llm (a registry name or model dir) to load on, got {llm!r}")


def adapter_task(adapter: str | os.PathLike[str], llm: Any, option: str = "adapter") -> str:
    """Check that ``adapter`` is a LoRA adapter trained on the configured ``llm``; returns the task
    of its training data (``understand``, ``reply``, ``recommend``...: the manifest beside it).

    A folder without ``adapter_config.json``, or one whose training config names another base
    model, is a ValueError naming ``option``: a LoRA adapter only means something on its own base.
    """
    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise ValueError(f"{option} {adapter} is not a LoRA adapter directory (no adapter_config.json)")
    check_local_llm(llm, option)
    base = _trained_base(path)
    if base is not None and Path(base).expanduser().name != Path(llm).expanduser().name:
        raise ValueError(
            f"{option} {adapter} was trained on {base!r} but the configured llm is {str(llm)!r}: "
            f"load it with llm={base!r} or train it on {str(llm)!r}"
        )
    manifest = path / ADAPTER_DATA_MANIFEST
    return (
        str(json.loads(manifest.read_text()).get("task", "recommend")) if manifest.is_file() else "recommend"
    )


def route_adapters(adapters: tuple[str, ...], llm: Any, option: str = "adapter") -> AdapterRoutes:
    """Each adapter checked (``adapter_task``) and given to the stage its training task names.

    Two adapters for one stage (two understanding adapters, or two for the chat model: reply and
    listwise, say) are a ValueError naming both paths and their tasks."""
    chosen: dict[str, tuple[str, str]] = {}
    for path in adapters:
        task = adapter_task(path, llm, option)
        stage = "understand" if task == UNDERSTAND_TASK else "chat"
        if stage in chosen:
            first, first_task = chosen[stage]
            where = "the understanding stage" if stage == "understand" else "the chat model"
            raise ValueError(
                f"{option}: two adapters for {where}: {first} (task {first_task}) and {path} "
                f"(task {task}); give at most one understanding adapter and one other (reply or listwise)"
            )
        chosen[stage] = (path, task)
    return AdapterRoutes(**{stage: path for stage, (path, _) in chosen.items()})


def _trained_base(path: Path) -> str | None:
    """The base model an adapter was trained on: ``finetune train``'s config, else peft's field."""
    for name, keys in (
        ("training_config.json", ("model", "model")),
        ("adapter_config.json", ("base_model_name_or_path",)),
    ):
        value: Any = json.loads((path / name).read_text()) if (path / name).is_file() else {}
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value:
            return str(value)
    return None
