"""The ``describe`` shopper: product type in everyday words, common attribute words only (a leak
guard by document frequency, property-tested), reactions to what is shown, brand only when asked."""

from __future__ import annotations

import re
from collections import Counter
from types import SimpleNamespace

import pytest
from assistant_catalog import make_dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.simulator import (
    ROUND_PRICES,
    DescribeShopper,
    Simulator,
    budget_ceiling,
    everyday_category,
)
from retrieval.data.schema import Catalog, Item

NAIL = ("Beauty", "Makeup", "Nails", "Nail Polish")
LIPS = ("Beauty", "Makeup", "Lips", "Lipstick")
COMMON = ["glossy", "matte", "red", "pink", "nude", "shimmer", "quick", "long", "wear", "velvet", "classic"]
RARE = [f"zq{c}x{d}" for c in "bcdfgh" for d in "klmn"]  # made-up words: never a template word
BRANDS = ["Zorvex Labs", "Quillo", "Brandy Co", "Xantho"]


def words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.casefold())


def independent_df(catalog: Catalog) -> Counter[str]:
    """Document frequency recomputed here (not the simulator's), over title + description + reviews."""
    return Counter(
        w for it in catalog for w in set(words(" ".join([it.title, it.description or "", *it.reviews])))
    )


def reply(ids, intent="recommend", text="Here you go."):
    return SimpleNamespace(intent=intent, text=text, items=[SimpleNamespace(item_id=i) for i in ids])


def talk(sim: Simulator, target: str, shown_plan: list[list[str]], questions: dict[int, str] | None = None):
    shopper = sim.shopper("u1", [], target)
    said, last = [], None
    for t, shown in enumerate(shown_plan):
        turn = shopper.next_turn(last)
        said.append(turn)
        q = (questions or {}).get(t)
        last = reply([], "clarify", q) if q else reply([i for i in shown if i != target])
    return shopper, said


@st.composite
def catalogs(draw) -> Catalog:
    n = draw(st.integers(30, 60))
    items = []
    for i in range(n):
        path = NAIL if draw(st.booleans()) else LIPS
        common = draw(st.lists(st.sampled_from(COMMON), min_size=1, max_size=4, unique=True))
        rare = draw(st.lists(st.sampled_from(RARE), max_size=2, unique=True))
        order = draw(st.permutations([*common, *rare]))
        brand = draw(st.sampled_from(BRANDS))
        title = f"{brand} {' '.join(order)} {path[-1]}"
        review = " ".join(draw(st.lists(st.sampled_from([*COMMON, *RARE]), max_size=3)))
        items.append(
            Item(f"id{i:03d}", title, brand, path, float(draw(st.integers(2, 90))), reviews=(review,) if review else ())
        )
    return Catalog(items)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cat=catalogs(), data=st.data())
def test_leak_guard_never_lets_an_identifying_token_through(cat: Catalog, data) -> None:
    """Over generated catalogs with rare tokens and brands: no utterance ever holds a word of the
    target's text that fewer than min_df items share, a brand word, or the target's id."""
    seed = data.draw(st.integers(0, 10_000))
    sim = Simulator(cat, seed=seed, min_df=6, min_df_share=0.1)
    min_df = max(6, -(-len(cat) * 1 // 10))
    df = independent_df(cat)
    target = data.draw(st.sampled_from(cat.ids))
    item = cat[target]
    own = set(words(" ".join([item.title, *item.reviews])))
    brand_words = {w for b in BRANDS for w in words(b)}
    plan = [data.draw(st.lists(st.sampled_from(cat.ids), min_size=1, max_size=5)) for _ in range(6)]
    questions = {2: "What's your budget? Which features matter?"}
    shopper, said = talk(sim, target, plan, questions)
    type_words = set(words(shopper.type_phrase))
    for turn in said:
        toks = words(turn.utterance)
        assert target.casefold() not in toks
        for w in toks:
            assert w not in brand_words, (w, turn.utterance)  # never asked about brands
            if w in own and w not in type_words:
                assert df[w] >= min_df, (w, df[w], turn.utterance)


def test_attribute_words_over_the_fixture_catalog_are_all_common(tmp_path) -> None:
    """Every item of the assistant fixture catalog: each attribute word passes the guard, checked
    against independently recomputed document frequencies and brand words."""
    cat = make_dataset().catalog
    sim = Simulator(cat, seed=0, min_df=5, min_df_share=0.05)
    df = independent_df(cat)
    floor = max(5, -(-len(cat) * 5 // 100))
    said_any = 0
    for item in cat:
        shopper = sim.shopper("u", [], item.item_id)
        assert isinstance(shopper, DescribeShopper)
        brand = set(words(item.brand or ""))
        for a in shopper.attributes:
            said_any += 1
            assert df[a] >= floor and a not in brand and a in words(item.title + " " + " ".join(item.reviews))
    assert said_any > len(cat)  # it does describe


def test_product_type_budget_and_brand_only_when_asked() -> None:
    cat = make_dataset().catalog
    asked_brand = said_brand = 0
    for s in range(40):
        sim = Simulator(cat, seed=s, min_df=5, min_df_share=0.05)
        target = cat.at(s % len(cat))
        shopper, said = talk(sim, target.item_id, [[]] * 4, {0: "Any brand or budget in mind?"})
        first = said[0]
        assert "category" in first.facets
        assert target.categories[: len(shopper.type_path)] == shopper.type_path
        assert first.constraints.categories == (shopper.type_path,)
        assert everyday_category(shopper.type_path[-1]) in first.utterance.casefold()
        for t in said:
            c = t.constraints
            assert c.matches(target)  # the shopper's stated constraints are true of the target
            assert "between" not in t.utterance
            if c.price_max is not None:
                assert c.price_max in ROUND_PRICES and c.price_max >= 1.1 * (target.price or 0)
        asked_brand += 1
        if target.brand and target.brand.casefold() in said[1].utterance.casefold():
            said_brand += 1
            assert said[1].constraints.brands_in
        # Never asked again: later turns never bring the brand up.
        assert all(target.brand.casefold() not in t.utterance.casefold() for t in said[2:] if target.brand)
    assert 0 < said_brand < asked_brand  # sometimes, not always


def test_reactions_to_what_is_shown() -> None:
    cat = Catalog(
        [
            Item("t", "Glossy Red Nail Polish", "Quillo", NAIL, 10.0),
            Item("a", "Matte Lipstick", "Xantho", LIPS, 30.0),
            Item("b", "Velvet Lipstick", "Xantho", LIPS, 40.0),
            Item("c", "Glossy Pink Nail Polish", "Zorvex Labs", NAIL, 20.0),
            Item("d", "Cheap Lip Balm", "Xantho", LIPS, 2.0),
            Item("e", "Tiny Lip Gloss", "Xantho", LIPS, 3.0),
        ]
    )
    sim = Simulator(cat, seed=0, min_df=1, min_df_share=0.0)
    shopper = sim.shopper("u", [], "t")
    shopper.next_turn(None)
    assert "cheaper" in shopper.next_turn(reply(["a", "b"])).utterance
    assert "premium" in shopper.next_turn(reply(["d", "e"])).utterance
    assert "the second one" in shopper.next_turn(reply(["d", "c", "a"])).utterance.casefold()
    with pytest.raises(RuntimeError):
        shopper.next_turn(reply(["a", "t"]))


def test_everyday_words_budget_and_determinism() -> None:
    assert everyday_category("Nail Polish") == "nail polish"
    assert everyday_category("Creams & Moisturizers") == "creams and moisturizers"
    assert budget_ceiling(18.5, 1.5) == 30.0 and budget_ceiling(9.0, 1.1) == 10.0
    cat = make_dataset().catalog
    a = [t.utterance for t in talk(Simulator(cat, seed=3, min_df=5), cat.ids[7], [[]] * 4)[1]]
    b = [t.utterance for t in talk(Simulator(cat, seed=3, min_df=5), cat.ids[7], [[]] * 4)[1]]
    assert a == b
    zh = talk(Simulator(cat, seed=3, min_df=5, language="zh"), cat.ids[7], [[]] * 3)[1]
    assert all(re.search(r"[\u4e00-\u9fff]", t.utterance) for t in zh)


def test_llm_rewrite_that_adds_a_rare_word_is_discarded() -> None:
    cat = make_dataset().catalog
    target = cat.at(3)
    # min_df above the catalog size: every word of the title is too rare to say.
    sim = Simulator(cat, seed=1, min_df=len(cat) + 1, rewriter=lambda text, lang: f"{text} Like {target.title}?")
    turn = sim.shopper("u", [], target.item_id).next_turn(None)
    assert not turn.rewritten and target.title not in turn.utterance
    polite = Simulator(cat, seed=1, min_df=5, rewriter=lambda text, lang: "Hello! " + text)
    assert polite.shopper("u", [], target.item_id).next_turn(None).rewritten


def test_an_item_without_categories_is_described_from_the_first_turn() -> None:
    cat = Catalog([Item(f"i{n}", f"Glossy {w} Polish", "Quillo", (), 5.0) for n, w in enumerate(COMMON)])
    sim = Simulator(cat, seed=0, min_df=1, min_df_share=0.0)
    _, said = talk(sim, "i1", [["i0"], ["i2"], ["i3"]])
    assert said[0].constraints.categories == () and "attribute" in said[0].facets
    assert "matte" in said[0].utterance and all("glossy" not in t.utterance.casefold() for t in said)
