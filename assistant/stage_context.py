"""What every stage of a turn reads, built once per assistant: the index, the settings, the LLM,
the grounding checker, the shopper-history lookup and the prompt loader."""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any

import prompts
from assistant.config import AssistantConfig
from assistant.grounding import GroundingChecker
from assistant.index import AssistantIndex
from retrieval.data.schema import Catalog


@dataclass
class StageContext:
    index: AssistantIndex
    config: AssistantConfig
    llm: Any | None
    checker: GroundingChecker
    history: Callable[[str], list[str]]  # a user's items, oldest first (ShoppingAssistant.history)
    forgotten: Container[str]  # users whose dataset history forget() masks
    # Generation keywords our own model takes per call (other langchain models keep their own).
    llm_kwargs: dict[str, Any] = field(default_factory=dict)
    # The understanding stage's LLM when it is not ``llm``: the base model with an understanding
    # adapter (``finetune generate --task understand``), trained on the fallback's exact prompt.
    understand_model: Any | None = None

    @property
    def catalog(self) -> Catalog:
        return self.index.catalog

    @property
    def currency(self) -> str | None:
        return self.index.dataset.currency if self.catalog.has_prices else None

    def strings(self, lang: str) -> prompts.ReplyStrings:
        return prompts.load_strings("replies", lang)

    def prompt(self, name: str, lang: str) -> prompts.PromptTemplate:
        return prompts.load(name, lang, self.prompt_version(name))

    def prompt_version(self, name: str) -> int | None:
        """``config.prompt_version`` pins a prompt set: each template at its newest version <= it
        (templates are bumped one by one), None = the newest of each."""
        pinned = self.config.prompt_version
        if pinned is None:
            return None
        versions = [v for v in prompts.available().get(name, []) if v <= pinned]
        return versions[-1] if versions else pinned  # load() then names what exists


class Stage:
    """A stage reads the shared context through these names."""

    def __init__(self, ctx: StageContext):
        self.ctx = ctx

    @property
    def index(self) -> AssistantIndex:
        return self.ctx.index

    @property
    def catalog(self) -> Catalog:
        return self.ctx.catalog

    @property
    def config(self) -> AssistantConfig:
        return self.ctx.config

    @property
    def currency(self) -> str | None:
        return self.ctx.currency

    @property
    def checker(self) -> GroundingChecker:
        return self.ctx.checker

    @property
    def llm(self) -> Any | None:
        return self.ctx.llm

    def history(self, user_id: str) -> list[str]:
        return self.ctx.history(user_id)
