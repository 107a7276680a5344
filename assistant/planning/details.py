"""Details turns: catalog facts and a review quote about the items referred to.
``DetailsPlanner.plan(turn) -> Plan``."""

from __future__ import annotations

from assistant.explanations import review_quote
from assistant.plan import Plan, card
from assistant.planning.base import PlanningStage
from assistant.understanding_stage import UnderstoodTurn
from retrieval.data.schema import Item
from retrieval.text import format_money


class DetailsPlanner(PlanningStage):
    def plan(self, turn: UnderstoodTurn) -> Plan:
        strings = self.ctx.strings(turn.lang)
        ids = turn.referenced or list(turn.state.last_items[:1])
        ids = [i for i in ids if i in self.catalog][:2]
        if not ids:
            return Plan("details", fallback=strings.format("details_none"))
        items = [self.catalog[i] for i in ids]
        facts = "\n".join(self._facts(it, turn.message) for it in items)
        cards = [card(it, 0.0, self._fact_reasons(it, turn), {}) for it in items]
        return Plan(
            "details",
            items=cards,
            messages=self.ctx.prompt("details", turn.lang).messages(question=turn.message, cards=facts),
            repair_values={"query": turn.message, "cards": facts},
            fallback=strings.format(
                "details", facts=" ".join(self._facts(it, turn.message, prose=True) for it in items)
            ),
            grounding=self._grounding_ctx(turn, items),
        )

    def _facts(self, item: Item, question: str, prose: bool = False) -> str:
        parts = [item.title]
        if item.brand:
            parts.append(f"brand {item.brand}")
        if item.price is not None:
            parts.append(f"price {format_money(item.price, self.currency, trim_cents=True)}")
        if item.categories:
            parts.append("category " + " > ".join(item.categories))
        if item.rating is not None:
            parts.append(f"rating {item.rating:.1f}/5")
        parts.append("in stock" if item.in_stock else "out of stock")
        if item.description and not prose:
            parts.append(f"description: {item.description[:200]}")
        quote = review_quote(item, question) or (item.reviews[0][:90] if item.reviews else None)
        text = ", ".join(parts) + "."
        if quote:
            text += f' A reviewer says: "{quote}"'
        return text
