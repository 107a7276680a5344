"""Bundle turns: complementary items that fit a budget together. ``BundlePlanner.plan(turn) -> Plan``."""

from __future__ import annotations

import prompts
from assistant.explanations import co_bought_reason
from assistant.plan import Plan, card
from assistant.planning.base import PlanningStage
from assistant.planning.recommend import RecommendPlanner
from assistant.reply import Bundle
from assistant.stage_context import StageContext
from assistant.understanding_stage import UnderstoodTurn
from retrieval.complements import assemble_bundle
from retrieval.text import format_money


class BundlePlanner(PlanningStage):
    def __init__(self, ctx: StageContext, recommend: RecommendPlanner):
        super().__init__(ctx)
        self.recommend = recommend

    def plan(self, turn: UnderstoodTurn) -> Plan:
        strings = self.ctx.strings(turn.lang)
        budget = turn.budget or turn.constraints.price_max
        if budget is None or not self.catalog.has_prices:
            turn.notes.append("bundle without a budget: showing complements")
            return self.recommend.plan(turn)
        base = turn.constraints.merged(price_max=None, price_min=None)
        seed = turn.referenced[0] if turn.referenced else None
        try:
            b = assemble_bundle(
                seed or turn.query or turn.message,
                float(budget),
                self.catalog,
                retriever=self.index.retriever,
                graph=self.index.cooc,
                constraints=base.merged(exclude_items=tuple(self.recommend._excluded(turn.state))),
            )
        except ValueError as e:
            turn.notes.append(f"bundle: {e}")
            return Plan("bundle", fallback=strings.format("bundle_empty"))
        if not b.items:
            return Plan("bundle", fallback=strings.format("bundle_empty"), meta={"notes": [b.note]})
        items = []
        said = prompts.load_strings("reasons", turn.lang)
        for bi in b.items:
            it = self.catalog[bi.item_id]
            reasons = []
            others = [o.item_id for o in b.items if o.item_id != bi.item_id]
            best = max(((self.index.cooc.support(o, bi.item_id), o) for o in others), default=(0, None))
            if best[0] > 0 and best[1] is not None:
                reasons.append(co_bought_reason(self.catalog[best[1]], best[0], said))
            if bi.item_id == seed:
                reasons.append(said.format("bundle_seed"))
            reasons.append(said.format("fits_budget", money=format_money(float(budget), self.currency, trim_cents=True)))
            items.append(card(it, float(bi.relevance + bi.cooccurrence), reasons, {}))
        total = format_money(b.total_price, self.currency, trim_cents=True)
        bundle = Bundle([i.item_id for i in items], b.total_price, float(budget), seed)
        ctx = self._grounding_ctx(turn, [self.catalog[c.item_id] for c in items])
        ctx.allowed_prices = [*ctx.allowed_prices, b.total_price, float(budget)]
        cards = "\n".join(self.cards.card(self.catalog[c.item_id], c.reasons, ctx) for c in items)
        fallback = strings.format(
            "bundle",
            count=len(items),
            total=total,
            budget=f" (budget {format_money(float(budget), self.currency, trim_cents=True)})",
            titles="; ".join(c.title for c in items),
        )
        return Plan(
            "bundle",
            items=items,
            bundle=bundle,
            messages=self.ctx.prompt("bundle", turn.lang).messages(
                query=turn.message, cards=cards, total=total
            ),
            repair_values={"query": turn.message, "cards": cards},
            fallback=fallback,
            grounding=ctx,
            card_lines=cards.splitlines(),
        )
