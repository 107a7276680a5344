"""The ``search_products`` LangChain tool: hybrid search with hard filters, for an agent's LLM.

Its argument schema (``SearchProductsArgs``) is generated from the ``Constraints`` dataclass: one
optional argument per constraint field, with the field's own type, next to ``query`` and ``k``;
a new constraint field becomes a tool argument without an edit here. Validation is
``Constraints``' own (a negative price, ``price_min`` above ``price_max``...), run when the
arguments are parsed, so a bad call fails with a pydantic ``ValidationError`` that names the
argument; unknown arguments are refused, not ignored.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from retrieval.filters import Constraints
from retrieval.hybrid import HybridRetriever

__all__ = ["MAX_K", "SearchProductsArgs", "search_products_tool"]

MAX_K = 50
DESCRIPTION = (
    "Search the product catalog. Give what the shopper wants in `query` and their hard "
    "requirements (budget, brands, categories, stock) as filters; every result satisfies all of "
    "them. Returns up to k products, best first, as item_id, title, brand, price, category, rating."
)
# What each Constraints field means to the LLM that fills it in (a field missing here still
# becomes an argument, described by its name).
_HELP = {
    "price_min": "lowest price allowed",
    "price_max": "highest price allowed (the budget)",
    "brands_in": "only these brands (any of them)",
    "brands_out": "never these brands",
    "categories": 'only items under one of these category paths, each a list from the top level, e.g. [["Beauty", "Skin Care"]]',
    "categories_out": "never items under these category paths (same form as categories)",
    "in_stock": "true: only items in stock; false: only items out of stock",
    "exclude_items": "item ids never to return (e.g. already shown)",
}


class _ConstraintArgs(BaseModel):
    """Base of the generated schema: refuses unknown arguments and checks the filters as
    ``Constraints`` does."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _valid_constraints(self) -> _ConstraintArgs:
        constraints_of(self)  # raises ValueError -> ValidationError
        return self


def constraints_of(args: BaseModel | dict[str, Any]) -> Constraints:
    """The ``Constraints`` that parsed tool arguments describe (arguments not given: no constraint)."""
    values = args.model_dump() if isinstance(args, BaseModel) else dict(args)
    names = [f.name for f in dataclasses.fields(Constraints)]
    return Constraints(**{n: values[n] for n in names if n in values and values[n] is not None})


def _args_model() -> type[BaseModel]:
    types = typing.get_type_hints(Constraints)
    fields: dict[str, Any] = {
        "query": (str, Field(description="what the shopper is looking for, in their words")),
        "k": (int, Field(default=10, ge=1, le=MAX_K, description="how many products to return")),
    }
    for f in dataclasses.fields(Constraints):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        fields[f.name] = (types[f.name], Field(default=default, description=_HELP.get(f.name, f.name)))
    return create_model("SearchProductsArgs", __base__=_ConstraintArgs, **fields)


SearchProductsArgs = _args_model()


def search_products_tool(
    retriever: HybridRetriever,
    check: Callable[[Constraints], Constraints] | None = None,
    *,
    name: str = "search_products",
    description: str = DESCRIPTION,
) -> StructuredTool:
    """A ``StructuredTool`` searching ``retriever`` (args: ``SearchProductsArgs``).

    It returns a list of dicts: ``item_id``, ``title``, ``brand``, ``price``, ``category`` (the
    path as "A > B"), ``rating``. ``check`` (optional) sees the parsed ``Constraints`` before the
    search and returns the ones to use or raises ``ValueError`` (``ShoppingAssistant.search_tool``
    checks brands and categories against the catalog this way)."""

    def search_products(query: str, k: int = 10, **filters: Any) -> list[dict[str, Any]]:
        constraints = constraints_of(filters)
        if check is not None:
            constraints = check(constraints)
        catalog = retriever.catalog
        out = []
        for cand in retriever.search(query, constraints, k):
            item = catalog[cand.item_id]
            out.append(
                {
                    "item_id": item.item_id,
                    "title": item.title,
                    "brand": item.brand,
                    "price": item.price,
                    "category": item.category_path,
                    "rating": item.rating,
                }
            )
        return out

    return StructuredTool.from_function(
        func=search_products, name=name, description=description, args_schema=SearchProductsArgs
    )
