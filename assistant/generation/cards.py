"""Prompt cards: how a candidate item is written into the LLM prompt.
``CardRenderer.card(item, reasons, grounding) -> str`` (and ``pick_line`` for the
recommend v2 prompt's one best match)."""

from __future__ import annotations

from collections.abc import Sequence

from assistant.grounding import GroundingContext
from assistant.stage_context import Stage
from retrieval.data.schema import Item
from retrieval.text import format_money

RERANK_REASON_PREFIX = "the re-ranker "  # on the card for the shopper; not a reason for the LLM to phrase


class CardRenderer(Stage):
    def _card_facts(self, item: Item) -> list[str]:
        """The catalog facts a card shows: brand, price, leaf category, rating."""
        facts = []
        if item.brand:
            facts.append(item.brand)
        if item.price is not None:
            facts.append(format_money(item.price, self.currency, trim_cents=True))
        if item.categories:
            facts.append(item.categories[-1])
        if item.rating is not None:
            facts.append(f"rated {item.rating:.1f}")
        return facts

    def card(self, item: Item, reasons: Sequence[str], ctx: GroundingContext) -> str:
        """One candidate line for the LLM prompt:
        ``- Title | brand | $price | leaf category | rated 4.2 | why: r1; r2``.

        Two reasons at most, leaving out those that name a product outside the candidates
        ("bought together with X"): the model tends to repeat those names, which the grounding
        check then rejects (a wasted generation).

        No rank numbers and no ``[id=...]`` tags, and fields split by ``|``: with the v1 lines
        ("1. [id=58] Quiz Show (1994) (Drama, rated 3.6): ...") about one reply in four was a
        copied line instead of a sentence; a ``|``-separated record is not something to copy, and
        a reply that still does is caught by ``card_copy`` (and the lines are shorter to prefill).
        """
        fields = [item.title, *self._card_facts(item)]
        keep = [
            r for r in reasons if not r.startswith(RERANK_REASON_PREFIX) and not self.checker.check(r, ctx)
        ][:2]
        if keep:
            fields.append("why: " + "; ".join(keep))
        return "- " + " | ".join(fields)

    def pick_line(self, item: Item, reasons: Sequence[str], ctx: GroundingContext) -> str:
        """The recommend v2 prompt's best match, in words: ``Title, a drama by Brand at $12 rated 4.2
        out of 5; why it fits: r1; r2``.

        One product to write a sentence about, not a list (with a list of candidate lines the 0.5B
        model tended to continue the list), and facts phrased so that repeating them reads as prose.
        """
        line = item.title
        if item.categories:
            line += f", {_article(item.categories[-1])} {item.categories[-1].lower()}"
        if item.brand:
            line += f" by {item.brand}"
        if item.price is not None:
            line += f" at {format_money(item.price, self.currency, trim_cents=True)}"
        if item.rating is not None:
            line += f" rated {item.rating:.1f} out of 5"
        keep = [
            r for r in reasons if not r.startswith(RERANK_REASON_PREFIX) and not self.checker.check(r, ctx)
        ][:2]
        return line + ("; why it fits: " + "; ".join(keep) if keep else "")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
