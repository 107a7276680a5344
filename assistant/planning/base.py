"""The planners' base: the shared context, the prompt-card renderer and the helpers every planner
uses (grounding context, the constraints in words, fact reasons)."""

from __future__ import annotations

from collections.abc import Sequence

import prompts
from assistant.explanations import or_names, review_quote
from assistant.generation.cards import CardRenderer
from assistant.grounding import GroundingContext
from assistant.stage_context import Stage, StageContext
from assistant.understanding_stage import UnderstoodTurn
from retrieval.data.schema import Item
from retrieval.filters import Constraints
from retrieval.text import format_money


class PlanningStage(Stage):
    """Base of the planners: the shared context plus the prompt-card renderer."""

    def __init__(self, ctx: StageContext):
        super().__init__(ctx)
        self.cards = CardRenderer(ctx)

    def _grounding_ctx(self, turn: UnderstoodTurn, items: Sequence[Item]) -> GroundingContext:
        c = turn.constraints
        prices = [p for p in (c.price_min, c.price_max, turn.budget) if p is not None]
        return GroundingContext(
            list(items),
            query=turn.message,
            allowed_prices=prices,
            allowed_brands=[*c.brands_in, *c.brands_out],
        )

    def _fact_reasons(self, item: Item, turn: UnderstoodTurn) -> list[str]:
        said = prompts.load_strings("reasons", turn.lang)
        out = []
        if item.rating is not None:
            out.append(said.format("rated", rating=f"{item.rating:.1f}"))
        quote = review_quote(item, turn.message)
        if quote:
            out.append(said.format("review", quote=quote))
        return out

    def _constraints_text(self, c: Constraints, lang: str) -> str:
        strings = self.ctx.strings(lang)
        price = self._price_text(c.price_min, c.price_max, lang)
        parts = [price] if price else []
        for key, names in (
            ("constraint_brands", c.brands_in),
            ("constraint_brands_out", c.brands_out),
            ("constraint_categories", [p[-1] for p in c.categories]),
            ("constraint_categories_out", [p[-1] for p in c.categories_out]),
        ):
            if names:
                parts.append(strings.format(key, names=or_names(names, lang)))
        if not parts:
            return ""
        return ("（" + "，".join(parts) + "）") if lang == "zh" else " (" + ", ".join(parts) + ")"

    def _price_text(self, lo: float | None, hi: float | None, lang: str) -> str:
        """A price range in words ("under $25", "$10–$20"); "" without bounds."""
        strings = self.ctx.strings(lang)
        if lo is not None and hi is not None:
            return f"{format_money(lo, self.currency, trim_cents=True)}–{format_money(hi, self.currency, trim_cents=True)}"
        if hi is not None:
            return strings.format("constraint_under", money=format_money(hi, self.currency, trim_cents=True))
        if lo is not None:
            return strings.format("constraint_over", money=format_money(lo, self.currency, trim_cents=True))
        return ""
