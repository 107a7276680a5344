"""The planning stage's entry: route an understood turn to its planner.
``Router.plan(turn) -> Plan``."""

from __future__ import annotations

from typing import Any

from assistant.grounding import GroundingContext
from assistant.plan import Plan
from assistant.planning.bundle import BundlePlanner
from assistant.planning.compare import ComparePlanner
from assistant.planning.details import DetailsPlanner
from assistant.planning.recommend import RecommendPlanner
from assistant.planning.superlative import SuperlativePlanner
from assistant.stage_context import Stage, StageContext
from assistant.understanding.intents import is_closing
from assistant.understanding_stage import UnderstoodTurn
from retrieval.diversity import DiversityConfig
from retrieval.ranker import FusedRanker


class Router(Stage):
    def __init__(
        self, ctx: StageContext, ranker: FusedRanker, diversity: DiversityConfig, reranker: Any | None
    ):
        super().__init__(ctx)
        self.recommend = RecommendPlanner(ctx, ranker, diversity, reranker)
        self.compare = ComparePlanner(ctx)
        self.details = DetailsPlanner(ctx)
        self.bundle = BundlePlanner(ctx, self.recommend)
        self.superlative = SuperlativePlanner(ctx)

    def plan(self, turn: UnderstoodTurn) -> Plan:
        """The plan for the turn's intent."""
        if turn.intent == "refuse":
            return self._plan_refuse(turn)
        if turn.intent == "clarify":
            question = turn.clarify or self.ctx.strings(turn.lang).format("details_none")
            return Plan("clarify", fallback=" ".join([*turn.notes, question]), question=question)
        if turn.intent == "smalltalk":
            return self._plan_smalltalk(turn)
        if turn.intent == "compare" and turn.superlative is not None:  # "which of these is the cheapest?"
            return self.superlative.plan(turn)
        if turn.intent == "compare":
            return self.compare.plan(turn)
        if turn.intent == "details":
            return self.details.plan(turn)
        if turn.intent == "bundle":
            return self.bundle.plan(turn)
        return self.recommend.plan(turn)

    def _plan_refuse(self, turn: UnderstoodTurn) -> Plan:
        key = {"injection": "refuse_injection", "private": "refuse_private"}.get(
            turn.refuse_kind or "", "refuse_offtopic"
        )
        return Plan("refuse", fallback=self.ctx.strings(turn.lang).format(key))

    def _plan_smalltalk(self, turn: UnderstoodTurn) -> Plan:
        # The catalog's own opening question: a film shopper is asked for a kind or a decade,
        # not for a budget or a brand.
        strings = self.ctx.strings(turn.lang)
        if is_closing(turn.message):  # a goodbye needs no model: it says nothing to reply to but goodbye
            return Plan("smalltalk", fallback=strings.format("smalltalk_bye"))
        opening = turn.facets.opening_question(turn.lang, ask_budget=not turn.constraints.has_price)
        fallback = strings.format("smalltalk_hello") + ("" if turn.lang == "zh" else " ") + opening
        msgs = self.ctx.prompt("smalltalk", turn.lang).messages(message=turn.message)
        return Plan(
            "smalltalk",
            messages=msgs,
            fallback=fallback,
            grounding=GroundingContext([], query=turn.message),
            repair_values=None,
        )
