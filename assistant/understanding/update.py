"""``ConstraintUpdate``: what the understanding LLM returns for a shopper's message (the JSON schema
its constrained decoding follows), shared by the product's fallback (``llm_fallback``), the prompt
and training targets (``llm_prompt``) and the rules' projection onto it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ConstraintUpdate"]


class ConstraintUpdate(BaseModel):
    """What an LLM may return for an utterance the rules could not fully read (JSON schema)."""

    model_config = ConfigDict(extra="ignore")

    price_min: float | None = Field(None, ge=0, description="lowest acceptable price, catalog currency")
    price_max: float | None = Field(None, ge=0, description="highest acceptable price, catalog currency")
    currency: str | None = Field(None, description="ISO code of the currency the shopper used, if any")
    relative_price: Literal["lower", "higher"] | None = Field(
        None, description="cheaper / pricier than shown"
    )
    brands_include: list[str] = Field(default_factory=list, description="brands the shopper wants")
    brands_exclude: list[str] = Field(default_factory=list, description="brands the shopper rejects")
    categories_include: list[str] = Field(default_factory=list, description="product types wanted")
    categories_exclude: list[str] = Field(default_factory=list, description="product types rejected")
    exclude_shown: bool = Field(False, description="shopper wants different items than those shown")
    references: list[int] = Field(
        default_factory=list, description="1-based positions in the last shown list"
    )
    soft_terms: list[str] = Field(
        default_factory=list, description="words or phrases the shopper would like (soft preferences)"
    )
    query: str = Field("", max_length=300, description="the need rewritten as a short search query")
