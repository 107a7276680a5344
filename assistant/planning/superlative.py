"""Superlative questions about the page on show ("which of these is the cheapest", "哪个最新"): the
item that wins on the attribute asked, with its value, from catalog data. ``SuperlativePlanner.plan
(turn) -> Plan``.

The answer is a fact computed here, so the reply is the template (no LLM): a small model handed
the page could name the wrong winner, and the grounding check sees prices and titles, not which
one is the cheapest. A catalog without the attribute (no prices on MovieLens, no release years on
Beauty) is said so; shown items without a value are named, not ranked; ties name every winner.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

from assistant.plan import Plan, card
from assistant.planning.base import PlanningStage
from assistant.understanding.superlatives import Attribute, Superlative
from assistant.understanding_stage import UnderstoodTurn
from retrieval.data.schema import Item
from retrieval.text import format_money


class SuperlativePlanner(PlanningStage):
    def plan(self, turn: UnderstoodTurn) -> Plan:
        asked = turn.superlative
        assert asked is not None
        page = [self.catalog[i] for i in turn.state.last_shown if i in self.catalog]
        among = [self.catalog[i] for i in turn.referenced if i in self.catalog]
        # The page stays as it was, in its order: the answer names the winner and its position
        # ("#3"). Moving the winner first would reshuffle the cards the shopper is reading, while
        # "the second one" next turn still points into the page as first shown (a question about
        # the page does not replace it: ``DialogueState.last_shown``).
        cards = [card(it, 0.0, self._fact_reasons(it, turn), {}) for it in page]
        return Plan(
            "compare",
            items=cards,
            fallback=self.answer(asked, page, among, turn.lang),
            grounding=self._grounding_ctx(turn, page),
        )

    def value(self, item: Item, attribute: Attribute) -> float | None:
        """The item's value of ``attribute``: price, release year, shoppers who have it, rating."""
        if attribute == "price":
            return item.price
        if attribute == "year":
            year = item.attributes.get("release_year")
            return float(year) if isinstance(year, int) and not isinstance(year, bool) else None
        if attribute == "popularity":
            return float(self.index.item_count(item.item_id)) if self._catalog_has["popularity"] else None
        return None if item.rating is None else round(item.rating, 1)  # as the card shows it

    @cached_property
    def _catalog_has(self) -> dict[Attribute, bool]:
        """Whether any catalog item carries each attribute (popularity: any purchase logged)."""
        has: dict[Attribute, bool] = {"price": self.catalog.has_prices}
        has["year"] = any(isinstance(it.attributes.get("release_year"), int) for it in self.catalog)
        has["rating"] = any(it.rating is not None for it in self.catalog)
        has["popularity"] = any(self.index.item_count(it.item_id) for it in self.catalog)
        return has

    def answer(
        self, asked: Superlative, page: Sequence[Item], among: Sequence[Item] = (), lang: str = "en"
    ) -> str:
        """The reply to ``asked`` about ``among`` (default: the whole ``page``), each item named
        with its position in ``page``: the winner or the tied winners and their value, the items
        without a value, or that the catalog or these items lack the attribute."""
        strings = self.ctx.strings(lang)
        ids = [it.item_id for it in page]
        among = [it for it in among if it.item_id in ids] or list(page)
        key = f"{asked.attribute}_{'high' if asked.highest else 'low'}"
        what, noun = strings.format(f"what_{key}"), strings.format(f"noun_{asked.attribute}")
        if not self._catalog_has[asked.attribute]:
            return strings.format("superlative_lacks", noun=noun, what=what)
        valued = [(v, it) for it in among if (v := self.value(it, asked.attribute)) is not None]
        if not valued:
            return strings.format("superlative_unknown", noun=noun, what=what)

        def named(items: Sequence[Item]) -> str:
            at = [strings.format("at_position", title=it.title, n=ids.index(it.item_id) + 1) for it in items]
            return _and_names(at, lang)

        best = (max if asked.highest else min)(v for v, _ in valued)
        winners = [it for v, it in valued if v == best]
        unvalued = [it for it in among if self.value(it, asked.attribute) is None]
        value = strings.format(f"value_{asked.attribute}", value=self._shown(best, asked.attribute))
        if len(winners) > 1:
            key = "superlative_tie"
        else:
            key = "superlative_only" if unvalued and len(valued) == 1 else "superlative"
        parts = [strings.format(key, what=what, titles=named(winners), value=value, noun=noun)]
        if unvalued:
            parts.append(strings.format("superlative_missing", noun=noun, titles=named(unvalued)))
        return " ".join(parts)

    def _shown(self, value: float, attribute: Attribute) -> str:
        if attribute == "price":
            return format_money(value, self.currency, trim_cents=True)
        if attribute == "rating":
            return f"{value:.1f}"
        return str(int(value))


def _and_names(names: Sequence[str], lang: str) -> str:
    """ "A, B and C" / "A、B和C"."""
    if len(names) < 2:
        return "".join(names)
    if lang == "zh":
        return "、".join(names[:-1]) + "和" + names[-1]
    return ", ".join(names[:-1]) + " and " + names[-1]
