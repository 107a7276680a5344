"""The recommend/search pipeline: candidates (retrieval + the collaborative scorer's own top
items) -> fused ranking with the session's feedback -> optional LLM re-rank -> diversity ->
explained cards -> the prompt. ``RecommendPlanner.plan(turn) -> Plan``."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import prompts
from assistant.dialogue_state import DialogueState
from assistant.explanations import or_names
from assistant.plan import Plan
from assistant.planning.base import PlanningStage
from assistant.planning.evidence import Explainer
from assistant.planning.relax import BRANDS, CATEGORY, PRICE, RELATIVE_PRICE, YEARS, relax
from assistant.reply import RecommendedItem
from assistant.stage_context import StageContext
from assistant.understanding.utterance import ParsedUtterance
from assistant.understanding.years import year_words
from assistant.understanding_stage import UnderstoodTurn
from retrieval.diversity import DiversityConfig, diversify
from retrieval.filters import Constraints
from retrieval.hybrid import GENERIC_WORDS, is_vague
from retrieval.lexical import tokenize
from retrieval.ranker import CLASSIC_BEFORE, Feedback, FusedRanker, RankedItem
from retrieval.topk import top_k

# The candidates a clarifying question must split: the page and those just below it.
QUESTION_POOL = 20


class RecommendPlanner(PlanningStage):
    def __init__(
        self, ctx: StageContext, ranker: FusedRanker, diversity: DiversityConfig, reranker: Any | None
    ):
        super().__init__(ctx)
        self.ranker = ranker
        self.diversity = diversity
        self.reranker = reranker
        self.explainer = Explainer(ctx)
        # rankers with relevance scaled for a turn (see _ranker_for), by (weights, factor)
        self._scaled_rankers: dict[tuple[int, float, float], FusedRanker] = {}
        self._titles_are_names = not self.catalog.has_brands  # a scan of the catalog: once, not per turn
        # Where titles are names: each row's popularity, for the kinds' best-known items
        # (``_kind_candidates``), read once, not per turn.
        popularity = self.index.popularity
        self._popularity_by_row: np.ndarray | None = None
        self._year_by_row: np.ndarray | None = None  # release year, NaN where none (``_era_candidates``)
        if self._titles_are_names:
            self._popularity_by_row = np.array([popularity.get(it.item_id, 0.0) for it in self.catalog])
            self._year_by_row = np.array(
                [_release_year(it.attributes.get("release_year")) for it in self.catalog], dtype=np.float64
            )

    def plan(self, turn: UnderstoodTurn) -> Plan:
        timings: dict[str, Any] = {}
        items, pool, searched, relaxed = self._items(turn, timings)
        t2 = time.perf_counter()
        strings = self.ctx.strings(turn.lang)
        # A loosened search is described by what it kept (the note says what it let go).
        kept = _loosened(turn, searched) if relaxed else turn
        cons_text = self._constraints_text(kept.constraints, turn.lang)
        question = turn.clarify or self._question(turn, pool)
        said = self._relaxed_note(turn, searched, relaxed)
        meta: dict[str, Any] = {"relaxed": relaxed} if relaxed else {}
        if not items:
            key = "empty_no_prices" if turn.constraints.has_price and not self.catalog.has_prices else "empty"
            return Plan(
                turn.intent,
                fallback=strings.format("empty", constraints=cons_text)
                if key == "empty"
                else strings.format(key, constraints=cons_text),
                question=question,
                said=said,
                constraints=kept.constraints if relaxed else None,
                meta={**meta, "notes": [key]},
                timings=timings,
            )
        plan = self._prompt_plan(kept, items, cons_text)  # the LLM sees the filters the cards meet
        plan.constraints = kept.constraints if relaxed else None
        if relaxed and plan.grounding is not None:  # the LLM may name the shopper's own brand or price
            c, g = turn.constraints, plan.grounding
            plan.grounding = dataclasses.replace(
                g,
                allowed_prices=[*g.allowed_prices, *(p for p in (c.price_min, c.price_max) if p is not None)],
                allowed_brands=[*g.allowed_brands, *c.brands_in],
            )
        plan.fallback = self._recommend_fallback(items, cons_text, strings)
        plan.question = question
        plan.said = said
        if relaxed:
            plan.meta.update(meta, notes=[f"relaxed: {', '.join(relaxed)}"])
        timings["prompt_s"] = time.perf_counter() - t2
        plan.timings = timings
        return plan

    def _relaxed_note(self, turn: UnderstoodTurn, searched: Constraints, relaxed: Sequence[str]) -> list[str]:
        """One sentence per filter group ``relax`` loosened, from the shopper's own filters and the
        catalog's names: what found nothing (within the filters still kept at that step) and what
        the page shows instead."""
        c, lang = turn.constraints, turn.lang
        strings = self.ctx.strings(lang)
        cats = or_names([p[-1] for p in c.categories], lang)
        more = ""
        if relaxed and self._matches(
            c.merged(exclude_items=()).excluding(self._outside_years(turn.state.years))
        ):
            # The filters alone match: what was shown, disliked or ruled out took those items.
            more = ("" if lang == "zh" else " ") + strings.format("relaxed_more")
        out = []
        for i, group in enumerate(relaxed):
            gone = set(relaxed[: i + 1])
            parts = [
                strings.format("constraint_categories", names=cats) if cats and CATEGORY not in gone else "",
                "" if gone & {PRICE, RELATIVE_PRICE} else self._price_text(c.price_min, c.price_max, lang),
            ]
            parts = [p for p in parts if p]
            scope = ""
            if parts:
                scope = "（" + "，".join(parts) + "）" if lang == "zh" else " " + " ".join(parts)
            if group == BRANDS:
                out.append(
                    strings.format("relaxed_brand", names=or_names(c.brands_in, lang), scope=scope, more=more)
                )
            elif group in (PRICE, RELATIVE_PRICE):
                was = self._price_text(c.price_min, c.price_max, lang)
                now = self._price_text(searched.price_min, searched.price_max, lang)
                key = "relaxed_price" if now else "relaxed_price_any"
                out.append(strings.format(key, money=was, limit=now, scope=scope, more=more))
            elif group == YEARS and turn.state.years is not None:
                years = year_words(turn.state.years, lang)
                out.append(strings.format("relaxed_years", years=years, scope=scope, more=more))
            elif group == CATEGORY:
                out.append(strings.format("relaxed_category", names=cats, scope=scope, more=more))
        return out

    def _question(self, turn: UnderstoodTurn, pool: Sequence[str]) -> str | None:
        """The question to ask after the items: the facets left open that split the candidates."""
        if not turn.ask:
            return None
        candidates = [self.catalog[i] for i in pool]
        return turn.facets.question(turn.facets.splitting(candidates, turn.ask), turn.lang, candidates)

    def _hard_constraints(self, turn: UnderstoodTurn) -> tuple[Constraints, list[str]]:
        """The turn's constraints plus what this page must not show: disliked items and their
        near-duplicates, what a known shopper already bought, what this chat already showed,
        items outside the wanted years. When nothing passes, the least certain filters are
        loosened (``relax``); returns the constraints and the groups loosened."""
        rec = turn.record
        excluded = self._excluded(turn.state)
        shown: list[str] = []
        if turn.intent in ("recommend", "search"):
            # A shopper asking for recommendations ("show me a moisturizer" included) wants
            # something new (implicit's filter_already_liked_items): what they already bought would
            # waste a slot, and so would what this chat already showed them once they react to it
            # ("not these", "more like the first one", "cheaper", "other options"). A turn that
            # only adds words may see a shown item again when it still fits best.
            if rec.user_id is not None:
                excluded += self.history(rec.user_id)
            if _moves_past_the_page(turn.parsed):
                shown = list(turn.state.shown)
        years_out = self._outside_years(turn.state.years)
        base = turn.constraints.excluding(excluded)
        fresh = base.excluding([*years_out, *shown])
        if self._matches(fresh):
            return fresh, []
        if shown and self._matches(base.excluding(years_out)):
            # Everything left was shown already (a narrow filter): showing some again beats nothing.
            return base.excluding(years_out), []
        if turn.constraints.has_price and not self.catalog.has_prices:
            return fresh, []  # no price can be met here: the reply says why (``empty_no_prices``)
        # Nothing at all passes: loosen the least certain filter first (a brand read from a
        # loose name, then a price from "cheaper"...), never what the shopper ruled out. The
        # state keeps the shopper's words (each turn relaxes again only while it must): a
        # brand that finds nothing in lipsticks may well find something when they turn to
        # eyeliners, and the note each relaxed turn repeats is what lets them drop it.
        fi = self.index.filter_index
        for seen in (shown, []) if shown else ([],):
            relaxed, dropped = relax(
                base.excluding(seen),
                self._matches,
                prices=lambda c: fi.price[fi.mask(c) & fi.has_price].tolist(),
                relative_price=turn.state.price_origin == "relative",
                years_out=years_out,
                page=self.config.k,
            )
            if dropped:
                return relaxed, dropped
        return fresh, []

    def _matches(self, constraints: Constraints) -> bool:
        return bool(self.index.filter_index.mask(constraints).any())

    def _items(
        self, turn: UnderstoodTurn, timings: dict[str, Any]
    ) -> tuple[list[RecommendedItem], list[str], Constraints, list[str]]:
        """retrieve (+ CF candidates) -> rank with feedback -> LLM re-rank -> diversify -> explain.
        Returns the cards, the ids of the top ``QUESTION_POOL`` ranked candidates, the constraints
        searched with and the filter groups ``relax`` loosened to find anything."""
        rec = turn.record
        constraints, relaxed = self._hard_constraints(turn)
        if relaxed:  # the cards' reasons speak of the filters the page kept ("under $2" no more)
            turn = _loosened(turn, constraints)
        user_vec = None
        if rec.user_id is not None and rec.user_id not in self.ctx.forgotten:
            user_vec = self.index.users.vector(rec.user_id)
        t0 = time.perf_counter()
        history, history_verb = self._cf_history(rec.user_id, turn.state)
        cands = self.index.retriever.search(
            turn.query,
            self._search_scope(turn, constraints),
            k=self.config.retrieve_pool,
            user_vector=user_vec,
            extra_ids=[
                *self._cf_candidates(history, constraints),
                *self._anchor_candidates([*turn.state.liked, *turn.state.anchors], constraints),
                *self._kind_candidates([*constraints.categories, *turn.state.soft_categories], constraints),
                *self._era_candidates(turn.state.era, constraints),
            ],
        )
        t1 = time.perf_counter()
        ranked = self._ranker_for(turn.query, constraints, bool(history)).rank(
            cands,
            user_or_history=history or None,
            scorer=self.index.scorer,
            constraints=constraints,
            popularity=self.index.popularity,
            feedback=Feedback(
                liked_items=tuple(dict.fromkeys([*turn.state.liked, *turn.state.anchors])),
                disliked_items=turn.state.disliked,
            ),
            price_preference=turn.state.price_preference,
            soft_categories=turn.state.soft_categories,
            avoided_categories=turn.state.avoided_categories,
            avoided_words=turn.state.avoided_words,
            era=turn.state.era,
            niche=turn.state.niche,
            query=turn.query,
        )
        moves: dict[str, tuple[int, int]] = {}
        t_rerank = None
        if self.reranker is not None and history:  # no history: nothing for a listwise prompt to go on
            t_rerank = time.perf_counter()
            ranked, moves = self._llm_rerank(ranked, history)
            t_rerank = time.perf_counter() - t_rerank
        diversity = self._diversity_for(turn)
        page = diversify(ranked, self.catalog, self.config.k, diversity, item_vectors=self.index.vectors)
        last = set(turn.state.last_items)
        if (
            page
            and len({r.item_id for r in page} & last) >= max(1, len(page) - 1)
            and len(ranked) > len(page)
        ):
            # (Almost) the same page again tells the shopper nothing ("I'm not sure", a repeated
            # message, words that change no ranking): show the next best items instead.
            rest = [r for r in ranked if r.item_id not in last]
            page = diversify(rest, self.catalog, self.config.k, diversity, item_vectors=self.index.vectors)
        items = self.explainer.explain(page, turn, history, history_verb)
        if moves:
            for it in items:
                reason = _rerank_reason(*moves[it.item_id]) if it.item_id in moves else None
                if reason:
                    it.reasons = [reason, *it.reasons][: max(3, len(it.reasons))]
        timings.update(retrieve_s=t1 - t0, rank_s=time.perf_counter() - t1)
        if t_rerank is not None:
            timings["rerank_s"] = t_rerank
        return items, [r.item_id for r in ranked[:QUESTION_POOL]], constraints, relaxed

    def _prompt_plan(self, turn: UnderstoodTurn, items: list[RecommendedItem], cons_text: str) -> Plan:
        """The LLM prompt about the cards (v2 templates: one best match in words + other titles)."""
        ctx = self._grounding_ctx(turn, [self.catalog[it.item_id] for it in items])
        cards = "\n".join(
            self.cards.card(self.catalog[it.item_id], it.reasons, ctx)
            for it in items[: self.config.llm_cards]
        )
        values = {"query": turn.message, "constraints": cons_text.strip() or "none", "cards": cards}
        tpl = self.ctx.prompt("recommend", turn.lang)
        if "top" in tpl.variables:  # v2: one top pick to write about, the other titles for context
            del values["cards"]
            values["top"] = self.cards.pick_line(self.catalog[items[0].item_id], items[0].reasons, ctx)
            others = [it.title for it in items[1 : self.config.llm_cards or len(items)]]
            values["others"] = "; ".join(others) or "-"
            prompt_lines = [values["top"]]
        else:
            prompt_lines = cards.splitlines()
        return Plan(
            turn.intent,
            items=items,
            messages=tpl.messages(**values),
            repair_values={"query": turn.message, "cards": cards},
            grounding=ctx,
            card_lines=prompt_lines,
            max_sentences=1 if "top" in tpl.variables else None,  # v2 asks for one sentence
        )

    def _llm_rerank(
        self, ranked: list[RankedItem], history: Sequence[str]
    ) -> tuple[list[RankedItem], dict[str, tuple[int, int]]]:
        """Reorder the fused top-``rerank_top`` by the LLM's listwise scores (LlamaRec verbalizer).

        The reordered items take the top scores' values in the LLM's order, so the page below the
        top-20 and the score scale diversity works on are unchanged; each item's score change is
        its ``llm_rerank`` contribution (contributions still sum to the score). Returns the list
        and, per reranked item, (fused position, LLM position), 0-based.
        """
        top = list(ranked[: self.config.rerank_top])
        if len(top) < 2:
            return list(ranked), {}
        scores = np.asarray(self.reranker.rerank(list(history), [r.item_id for r in top], self.catalog))
        if scores.shape != (len(top),) or not np.all(np.isfinite(scores)):
            raise ValueError(f"reranker returned scores of shape {scores.shape} for {len(top)} candidates")
        order, _ = top_k(scores, len(scores))
        slots = sorted((r.score for r in top), reverse=True)
        out, moves = [], {}
        for new_pos, j in enumerate(order):
            r = top[int(j)]
            contrib = {**r.contributions, "llm_rerank": float(slots[new_pos] - r.score)}
            out.append(RankedItem(r.item_id, float(sum(contrib.values())), contrib, r.candidate))
            moves[r.item_id] = (int(j), new_pos)
        return out + list(ranked[self.config.rerank_top :]), moves

    def _excluded(self, state: DialogueState) -> list[str]:
        """Disliked items and their near-duplicates (cosine >= ``config.near_duplicate_cos``)."""
        bad = [i for i in state.disliked if i in self.catalog]
        if not bad:
            return []
        sims = self.index.item_matrix @ self.index.vectors(bad).T
        rows = np.flatnonzero(sims.max(axis=1) >= self.config.near_duplicate_cos)
        return list(dict.fromkeys([*bad, *(self.catalog.at(int(r)).item_id for r in rows)]))

    def _ranker_for(self, query: str, constraints: Constraints, has_history: bool) -> FusedRanker:
        """The ranker for this turn: relevance down-weighted when the filters already say it all,
        and in a catalog of works without makers, whose titles are names (``Catalog.has_brands``)."""
        factor = 1.0
        if (
            self.config.filter_only_relevance is not None
            and has_history
            and _filters_say_it_all(query, constraints)
        ):
            factor *= self.config.filter_only_relevance
        if self._titles_are_names:
            factor *= self.config.name_title_relevance
        if factor == 1.0:
            return self.ranker
        w = self.ranker.weights
        key = (id(w), w.relevance, factor)
        if key not in self._scaled_rankers:
            weights = dataclasses.replace(w, relevance=w.relevance * factor)
            self._scaled_rankers[key] = FusedRanker(self.catalog, weights, item_vectors=self.index.vectors)
        return self._scaled_rankers[key]

    def _outside_years(self, years: tuple[int, int] | None) -> list[str]:
        """Items outside ``years``: with a known release year outside it, and, in a catalog where
        most items carry a year (films), those without one (a shopper who asks for films from 2015
        is not served by "Untitled movie 267"; when nothing is left, ``relax`` loosens the years
        and says so). In a catalog where few items carry a year, only the known ones count."""
        if years is None:
            return []
        cached = getattr(self, "_release_years", None)
        if cached is None:
            known: dict[str, int] = {}
            for it in self.catalog:
                if np.isfinite(y := _release_year(it.attributes.get("release_year"))):
                    known[it.item_id] = int(y)
            most = 2 * len(known) >= len(self.catalog)
            cached = self._release_years = (known, [i for i in self.catalog.ids if most and i not in known])
        known, yearless = cached
        lo, hi = years
        return [*yearless, *(i for i, y in known.items() if not lo <= y <= hi)]

    def _cf_candidates(self, history: Sequence[str], constraints: Constraints) -> list[str]:
        """The scorer's top ``config.cf_pool`` items for ``history`` that pass the hard filters
        (positive scores only)."""
        n = self.config.cf_pool
        scorer = self.index.scorer
        if scorer is None or not history or n <= 0 or getattr(scorer, "catalog", None) is None:
            return []
        if scorer.catalog is not self.catalog and scorer.catalog.ids != self.catalog.ids:  # fitted elsewhere
            return [i for i, s in scorer.recommend(list(history), n=n) if s > 0 and i in self.catalog]
        scores = np.asarray(scorer.score(list(history)), dtype=np.float64)
        return self._best_allowed(scores, self.index.filter_index.mask(constraints) & (scores > 0), n)

    def _anchor_candidates(self, anchors: Sequence[str], constraints: Constraints) -> list[str]:
        """The ``config.anchor_pool`` items nearest to the items the shopper pointed at or liked
        ("more like the second one", "like the NYX crayon") that pass the hard filters: in a large
        category the words said so far retrieve one corner of it, and the items like the one
        pointed at may lie outside it."""
        anchors = [a for a in anchors if a in self.catalog]
        n = self.config.anchor_pool
        if not anchors or n <= 0:
            return []
        sims = (self.index.item_matrix @ self.index.vectors(anchors).T).max(axis=1)
        return self._best_allowed(sims, self.index.filter_index.mask(constraints), n)

    def _diversity_for(self, turn: UnderstoodTurn) -> DiversityConfig:
        """ "More like the first one" asks for items close to it: a cap on each brand and MMR's
        novelty would push the closest ones (the same maker's series) off the page, so such a turn
        keeps the ranking's order."""
        if not turn.parsed.similar:
            return self.diversity
        return dataclasses.replace(self.diversity, lambda_=1.0, max_per_brand=None, max_per_category=None)

    def _search_scope(self, turn: UnderstoodTurn, constraints: Constraints) -> Constraints:
        """Where titles describe the goods, a message with no word to search and kinds leaned to
        ("anything but OPI", "been using Cetaphil, want something different": the kinds those
        brands sell) or items named as models ("a dupe of the Urban Decay Naked palette": their
        categories) is searched among those kinds' items: the shop's best sellers of other kinds
        answer nothing the shopper said. The ranker still reads the kinds as a preference, not a
        filter, and where they hold nothing the filters allow, everything allowed is searched."""
        if self._titles_are_names or constraints.categories or not is_vague(turn.query):
            return constraints
        models = (
            self.catalog[i].categories
            for m in turn.parsed.item_mentions
            if m.polarity in ("like", "similar")
            for i in m.item_ids
            if i in self.catalog
        )
        kinds = tuple(dict.fromkeys(tuple(p) for p in [*turn.state.soft_categories, *models] if p))
        if not kinds:
            return constraints
        scoped = dataclasses.replace(constraints, categories=kinds)
        return scoped if self.index.filter_index.mask(scoped).any() else constraints

    def _kind_candidates(self, kinds: Sequence[Sequence[str]], constraints: Constraints) -> list[str]:
        """In a catalog of works, the ``config.kind_pool`` most popular items of the kinds asked
        for or leaned to ("I like comedies", "something for a family night") that pass the hard
        filters: where titles are names, the words said retrieve the items whose text echoes them
        most (films filed under "Comedy" alone), and the best-known films of the kind, filed under
        several genres, lie outside them. Where titles describe the goods, the words find the
        kind's items well and its best sellers would crowd out what the words describe ("eyeshadow"
        after brushes: applicators, not palettes)."""
        n, fi = self.config.kind_pool, self.index.filter_index
        kinds = tuple(tuple(p) for p in kinds if p)
        if not kinds or n <= 0 or self._popularity_by_row is None:
            return []
        # a film is under every genre it lists (``Item.paths``), as the filters read it
        allowed = fi.mask(Constraints(categories=kinds)) & fi.mask(constraints)
        return self._best_allowed(self._popularity_by_row, allowed, n)

    def _era_candidates(self, era: str | None, constraints: Constraints) -> list[str]:
        """In a catalog of works, the ``config.kind_pool`` most popular items of the era leaned to
        that pass the hard filters: released before ``CLASSIC_BEFORE`` for "black and white", in the
        oldest (newest) tenth of the catalog's years for "old movies" ("something recent"). The
        words said retrieve nothing of an era (no title says "black and white"), and a lean can
        only reorder the films retrieval brought."""
        n, years = self.config.kind_pool, self._year_by_row
        if era is None or n <= 0 or years is None or self._popularity_by_row is None:
            return []
        known = ~np.isnan(years)
        if not known.any():
            return []
        if era == "classic":
            in_era = known & (years < CLASSIC_BEFORE)
        elif era == "older":
            in_era = known & (years <= np.percentile(years[known], 10))
        else:
            in_era = known & (years >= np.percentile(years[known], 90))
        allowed = in_era & self.index.filter_index.mask(constraints)
        return self._best_allowed(self._popularity_by_row, allowed, n)

    def _best_allowed(self, scores: np.ndarray, allowed: np.ndarray, n: int) -> list[str]:
        """Ids of the ``n`` best-scoring catalog rows among the ``allowed`` ones (catalog row order)."""
        rows = np.flatnonzero(allowed)
        top, _ = top_k(scores[rows], n)
        return [self.catalog.at(int(r)).item_id for r in rows[top]]

    def _cf_history(self, user_id: str | None, state: DialogueState) -> tuple[list[str], str]:
        """The history the collaborative scorer and explanations use: the user's, else the session's."""
        if user_id is not None:
            hist = self.history(user_id)
            hist += [i for i in state.liked if i not in hist]
            if hist:
                return hist, "bought"
        # What the shopper named or liked comes last: a sequential scorer weighs the latest most.
        recent = state.shown[-self.config.session_history_for_cf :]
        session = list(dict.fromkeys([*recent, *state.mentioned, *state.liked]))
        session = [i for i in session if i not in set(state.disliked)]
        return session, "saw"

    def _recommend_fallback(
        self, items: list[RecommendedItem], cons_text: str, strings: prompts.ReplyStrings
    ) -> str:
        top = items[0]
        top_reasons = ", ".join(top.reasons[:2]) or "-"
        if len(items) == 1:
            return strings.format(
                "recommend_one", constraints=cons_text, top_title=top.title, top_reasons=top_reasons
            )
        return strings.format(
            "recommend",
            count=len(items),
            constraints=cons_text,
            titles="; ".join(it.title for it in items[:3]),
            top_title=top.title,
            top_reasons=top_reasons,
        )


def _moves_past_the_page(parsed: ParsedUtterance) -> bool:
    """The shopper reacts to what was shown: rejects it, asks for more like one of it, for cheaper
    or pricier, or says nothing new ("not quite", "other options")."""
    return bool(
        parsed.exclude_shown
        or parsed.similar
        or parsed.references
        or parsed.relative_price is not None
        or not parsed.has_content
    )


def _loosened(turn: UnderstoodTurn, searched: Constraints) -> UnderstoodTurn:
    """``turn`` with the filters a relaxed search kept (its exclusions aside); the state unchanged."""
    kept = searched.merged(exclude_items=turn.constraints.exclude_items)
    return dataclasses.replace(turn, constraints=kept, budget=kept.price_max)


def _filters_say_it_all(query: str, constraints: Constraints) -> bool:
    """True when every content word of ``query`` names a category or brand the filters enforce."""
    words = set(tokenize(query)) - GENERIC_WORDS
    if not words:
        return True
    names = [n for p in constraints.categories for n in p] + list(constraints.brands_in)
    return words <= set(tokenize(" ".join(names)))


def _rerank_reason(before: int, after: int) -> str | None:
    """What the LLM re-ranker did for a shown item, in the shopper's terms (None if it moved it down)."""
    if after == 0:
        return (
            "the re-ranker kept it first"
            if before == 0
            else f"the re-ranker placed it first (it was #{before + 1} before re-ranking)"
        )
    if after < before:
        return f"the re-ranker moved it up from #{before + 1} to #{after + 1}"
    return None


def _release_year(value: Any) -> float:
    """A release year as a float; NaN for none (or a bool, a non-number, an infinity)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
    return float(value) if ok else float("nan")
