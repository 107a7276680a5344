"""Evidence for each recommended item, turned into the card's reasons.
``Explainer.explain(page, turn, history, history_verb) -> list[RecommendedItem]``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from assistant.explanations import Evidence, Relation, build_reasons
from assistant.plan import card
from assistant.reply import RecommendedItem
from assistant.stage_context import Stage
from assistant.understanding_stage import UnderstoodTurn
from retrieval.ranker import RankedItem


class Explainer(Stage):
    def explain(
        self, page: Sequence[RankedItem], turn: UnderstoodTurn, history: Sequence[str], history_verb: str
    ) -> list[RecommendedItem]:
        """One card per ranked item, with reasons built from evidence (history and liked
        neighbours, co-purchases, popularity, the score's contributions), in the turn's language.

        ``history`` is what the ranker used: the shopper's purchases (``history_verb`` "bought")
        plus their likes, or for a new shopper the session's shown and liked items. A reason names
        a history item only as what it is to the shopper (``_relations``)."""
        relation = self._relations(turn, history_verb)
        hist = [h for h in history if h in self.catalog]
        hist_vecs = self.index.vectors(hist) if hist else None
        liked = [i for i in turn.state.liked if i in self.catalog]
        liked_vecs = self.index.vectors(liked) if liked else None
        anchors = list(dict.fromkeys([*liked, *hist[-20:]]))
        said = " ".join([*(t.text for t in turn.state.turns), turn.message])
        out = []
        for r in page:
            item = self.catalog[r.item_id]
            v = self.index.vectors([r.item_id])[0]
            ev = Evidence(
                contributions=r.contributions, query=turn.query, history_relation=relation(None), said=said
            )
            if hist_vecs is not None:
                sims = hist_vecs @ v
                j = int(np.argmax(sims))
                if hist[j] != r.item_id:
                    ev.history_neighbor = (self.catalog[hist[j]], float(sims[j]))
                    ev.history_relation = relation(hist[j])
            if liked_vecs is not None:
                sims = liked_vecs @ v
                j = int(np.argmax(sims))
                if liked[j] != r.item_id:
                    ev.liked_neighbor = (self.catalog[liked[j]], float(sims[j]))
            best = max(
                ((self.index.cooc.support(a, r.item_id), a) for a in anchors if a != r.item_id),
                default=(0, None),
            )
            if best[0] > 0 and best[1] is not None:
                ev.co_bought = (self.catalog[best[1]], best[0])
            ev.popularity = self.index.item_count(r.item_id)
            reasons = build_reasons(item, ev, turn.constraints, self.currency, lang=turn.lang)
            out.append(card(item, r.score, reasons, r.contributions))
        return out

    def _relations(self, turn: UnderstoodTurn, history_verb: str) -> Callable[[str | None], Relation]:
        """What a history item is to the shopper: bought (in their purchase log, which only a
        history the planner took from it holds), liked (in this chat), named in this chat ("something
        like X"), else only shown by an earlier reply. For None: what the history as a whole is
        (bought when the shopper has purchases)."""
        user = turn.record.user_id
        bought = set(self.history(user)) if history_verb == "bought" and user is not None else set()
        liked = set(turn.state.liked)
        named = set(turn.state.mentioned) - set(turn.state.shown)

        def relation(item_id: str | None) -> Relation:
            if item_id is None:
                return "bought" if bought else "shown"
            if item_id in bought or item_id in liked:
                return "bought" if item_id in bought else "liked"
            return "named" if item_id in named else "shown"

        return relation
