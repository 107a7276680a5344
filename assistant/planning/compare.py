"""Compare turns: a side-by-side table of catalog facts. ``ComparePlanner.plan(turn) -> Plan``."""

from __future__ import annotations

from collections.abc import Sequence

from assistant.plan import Plan, card
from assistant.planning.base import PlanningStage
from assistant.reply import Comparison, ComparisonRow
from assistant.understanding_stage import UnderstoodTurn
from retrieval.data.schema import Item
from retrieval.text import format_money


class ComparePlanner(PlanningStage):
    def plan(self, turn: UnderstoodTurn) -> Plan:
        strings = self.ctx.strings(turn.lang)
        ids = turn.referenced or list(turn.state.last_items[:2])
        ids = [i for i in dict.fromkeys(ids) if i in self.catalog][:4]
        if len(ids) < 2:
            return Plan("compare", fallback=strings.format("compare_need_two"))
        items = [self.catalog[i] for i in ids]
        comparison = build_comparison(items, self.currency)
        cards = [card(it, 0.0, self._fact_reasons(it, turn), {}) for it in items]
        titles = " vs ".join(it.title for it in items)
        table = comparison.to_markdown()
        return Plan(
            "compare",
            items=cards,
            comparison=comparison,
            messages=self.ctx.prompt("compare", turn.lang).messages(question=turn.message, table=table),
            repair_values={"query": turn.message, "cards": table},
            fallback=strings.format("compare", titles=titles),
            grounding=self._grounding_ctx(turn, items),
        )


def build_comparison(items: Sequence[Item], currency: str | None) -> Comparison:
    """Side-by-side catalog facts; attributes every item lacks are left out."""
    rows = [
        ComparisonRow(
            "price",
            [None if it.price is None else format_money(it.price, currency, trim_cents=True) for it in items],
        ),
        ComparisonRow("brand", [it.brand for it in items]),
        ComparisonRow("category", [" > ".join(it.categories) or None for it in items]),
        ComparisonRow("rating", [None if it.rating is None else f"{it.rating:.1f}" for it in items]),
        ComparisonRow("in stock", ["yes" if it.in_stock else "no" for it in items]),
        ComparisonRow("reviews", [len(it.reviews) or None for it in items]),
    ]
    keys = sorted(
        {k for it in items for k, v in it.attributes.items() if isinstance(v, str | int | float | bool)}
    )
    rows += [ComparisonRow(k, [it.attributes.get(k) for it in items]) for k in keys[:8]]
    rows = [r for r in rows if any(v is not None for v in r.values)]
    return Comparison([it.item_id for it in items], [it.title for it in items], rows)
