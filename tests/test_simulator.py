"""The simulated shopper never gives the target away, says at most two attributes per turn,
answers clarifying questions truthfully and is deterministic given the seed.

The catalog is adversarial: titles reuse the simulator's own template words ("Looking",
"Options", "Different", "Preferably", "Released"...), so a simulator that did not check its
phrasing against the target's title would leak.
"""

from __future__ import annotations

import itertools
import random
import re
from types import SimpleNamespace

import pytest

from bench.simulator import MAX_FACETS_PER_TURN, LeakGuard, Simulator, brand_family, price_band
from retrieval.data.schema import Catalog, Item

STOP = {"a", "an", "the", "and", "or", "of", "for", "with", "in", "on", "to", "by", "from", "it", "is"}
TITLE_WORDS = [
    "Looking", "Glass", "Options", "Different", "Preferably", "Released", "Shimmer", "Velvet", "Aurora",
    "Midnight", "Recommend", "Prefer", "Ideally", "Price", "Range", "Narrow", "Specifically", "Crimson",
    "Need", "Show", "Other", "Please", "Came", "Out", "Want", "Help", "Shopping",
]  # fmt: skip
BRANDS = ["Lumina", "Lumina Pro", "Orchid", "Basalt", "Kestrel", "Unknown"]
PATHS = [
    ("Beauty", "Makeup", "Nails", "Nail Polish"),
    ("Beauty", "Makeup", "Lips", "Lipstick"),
    ("Beauty", "Skin Care", "Face", "Creams & Moisturizers"),
    ("Beauty", "Skin Care", "Body", "Creams & Moisturizers"),
    ("Beauty", "Hair Care", "Shampoos"),
]


def make_catalog(n: int = 120, seed: int = 0) -> Catalog:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        path = PATHS[i % len(PATHS)]
        brand = BRANDS[i % len(BRANDS)]
        words = rng.sample(TITLE_WORDS, 3)
        title = f"{brand} {' '.join(words)} {path[-1]} {rng.randint(1, 99)}"
        items.append(
            Item(
                item_id=f"sku-{i:04d}",
                title=title,
                brand=brand,
                categories=path,
                price=round(rng.uniform(2, 260), 2),
                attributes={"release_year": rng.randint(1950, 2019)} if i % 3 == 0 else {},
            )
        )
    return Catalog(items)


def title_leaks(text: str, item: Item, catalog: Catalog) -> list[str]:
    """Independent strong check: no id, no title word or bigram outside category/brand/stop words."""
    tok = lambda s: re.findall(r"[^\W_]+", s.casefold())  # noqa: E731
    allowed = {t for p in catalog.category_paths() for name in p for t in tok(name)}
    allowed |= {t for b in catalog.brands() for t in tok(b)} | STOP
    found = []
    if item.item_id.casefold() in text.casefold():
        found.append("id")
    words = tok(text)
    title = tok(item.title)
    distinctive = {t for t in title if t not in allowed and not t.isdigit()}
    found += [f"word {t}" for t in distinctive if t in words]
    bigrams = {(a, b) for a, b in itertools.pairwise(title) if a not in allowed and b not in allowed}
    found += [f"bigram {g}" for g in itertools.pairwise(words) if g in bigrams]
    return found


def play(sim: Simulator, user: str, history: list[str], target: str, turns: int = 6, clarify_at: int = -1):
    shopper = sim.shopper(user, history, target)
    out, reply = [], None
    for t in range(turns):
        said = shopper.next_turn(reply)
        out.append(said)
        if t + 1 == clarify_at:
            reply = SimpleNamespace(
                intent="clarify",
                text="What's your budget, and what are you shopping for?",
                items=[],
            )
        else:  # never the target: the dialogue runs to the end
            shown = [i for i in sim.catalog.ids[t * 5 : t * 5 + 5] if i != target]
            reply = SimpleNamespace(
                intent="recommend", text="Here you go.", items=[SimpleNamespace(item_id=i) for i in shown]
            )
    return shopper, out


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return make_catalog()


def test_the_independent_leak_check_can_fail(catalog: Catalog) -> None:
    item = catalog["sku-0007"]
    assert title_leaks(item.title, item, catalog)
    assert LeakGuard(catalog).leaks(item.title, item)
    words = [w for w in item.title.split() if w.casefold() in {t.casefold() for t in TITLE_WORDS}]
    assert LeakGuard(catalog).leaks(f"I want something {words[0]}", item)
    assert LeakGuard(catalog).leaks("is it sku-0007?", item)
    assert not LeakGuard(catalog).leaks("Nail polish under $20 from Lumina.", item)
    assert not title_leaks("Nail polish under $20 from Lumina.", item, catalog)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_never_leaks_the_target_over_many_seeded_users(catalog: Catalog, language: str) -> None:
    ids = catalog.ids
    n_utterances = 0
    for seed in range(3):
        sim = Simulator(catalog, shopper="facets", seed=seed, language=language)  # type: ignore[arg-type]
        rng = random.Random(seed)
        for u in range(60):
            target = rng.choice(ids)
            history = rng.sample([i for i in ids if i != target], 6)
            _, turns = play(sim, f"u{u}", history, target, clarify_at=2 if u % 4 == 0 else -1)
            for said in turns:
                n_utterances += 1
                assert said.utterance.strip()
                leaks = title_leaks(said.utterance, catalog[target], catalog)
                assert not leaks, (said.utterance, catalog[target].title, leaks)
                assert not sim.guard.leaks(said.utterance, catalog[target])
    assert n_utterances == 3 * 60 * 6


def test_at_most_two_attributes_per_turn_and_truthful(catalog: Catalog) -> None:
    sim = Simulator(catalog, shopper="facets", seed=1)
    rng = random.Random(1)
    revealed_total = 0
    for u in range(80):
        target = rng.choice(catalog.ids)
        shopper, turns = play(sim, f"u{u}", rng.sample(catalog.ids, 5), target)
        item = catalog[target]
        for said in turns:
            assert len(said.facets) <= MAX_FACETS_PER_TURN
            revealed_total += len(said.facets)
            # Every stated hard constraint is true of the target.
            assert said.constraints.matches(item), (said.utterance, said.constraints)
            # Price numbers said are the band edges only, and the band holds the price.
            for num in re.findall(r"\$(\d+(?:\.\d+)?)", said.utterance):
                lo, hi = price_band(item.price or 0)
                assert float(num) in {lo, hi}
        # "not brand X" is a brand from the history that the target does not have.
        for b in shopper.constraints.brands_out:
            assert b.casefold() != (item.brand or "").casefold()
    assert revealed_total > 80 * 2  # it does reveal things


def test_opening_states_a_category_and_later_turns_reject_shown_items(catalog: Catalog) -> None:
    sim = Simulator(catalog, shopper="facets", seed=0)
    target = "sku-0001"  # Lipstick
    _, turns = play(sim, "u1", ["sku-0002", "sku-0003"], target, turns=5)
    assert turns[0].constraints.categories
    assert (
        catalog[target].categories[: len(turns[0].constraints.categories[0])]
        == turns[0].constraints.categories[0]
    )
    assert not turns[0].utterance.startswith(("None", "Show me other", "Different"))
    rejects = ("None of these", "Show me other options", "Different ones", "More options", "Next")
    assert all(t.utterance.startswith(rejects) or t.facets for t in turns[1:])


def test_clarifying_question_is_answered_with_the_price_band(catalog: Catalog) -> None:
    sim = Simulator(catalog, shopper="facets", seed=3)
    target = "sku-0010"
    shopper = sim.shopper("u", [], target)
    shopper.next_turn(None)
    # Force the order: whatever is pending, a budget question gets the price band first.
    said = shopper.next_turn(SimpleNamespace(intent="clarify", text="What's your budget?", items=[]))
    lo, hi = price_band(catalog[target].price or 0)
    if "price" in said.facets:
        assert said.constraints.price_max == hi and said.constraints.price_min == lo
        assert said.answered_clarify
    else:  # the price was already stated in turn 1
        assert shopper.turns[0].constraints.has_price


def test_deterministic_given_seed_and_differs_across_seeds(catalog: Catalog) -> None:
    a = [
        t.utterance
        for t in play(Simulator(catalog, shopper="facets", seed=5), "u9", ["sku-0002"], "sku-0042")[1]
    ]
    b = [
        t.utterance
        for t in play(Simulator(catalog, shopper="facets", seed=5), "u9", ["sku-0002"], "sku-0042")[1]
    ]
    assert a == b
    others = {
        tuple(
            t.utterance
            for t in play(Simulator(catalog, shopper="facets", seed=s), "u9", ["sku-0002"], "sku-0042")[1]
        )
        for s in range(6)
    }
    assert len(others) > 1


def test_llm_rewrite_is_discarded_when_it_leaks_or_drops_facts(catalog: Catalog) -> None:
    target = catalog["sku-0011"]
    leaky = Simulator(
        catalog, shopper="facets", seed=0, rewriter=lambda text, lang: f"{text} Maybe {target.title}?"
    )
    said = leaky.shopper("u", [], target.item_id).next_turn(None)
    assert not said.rewritten and not title_leaks(said.utterance, target, catalog)
    assert any("leak" in n for n in said.notes)
    dropper = Simulator(
        catalog, shopper="facets", seed=0, rewriter=lambda text, lang: "Hi there, help me shop."
    )
    said = dropper.shopper("u", [], target.item_id).next_turn(None)
    assert not said.rewritten and any("dropped" in n for n in said.notes)
    polite = Simulator(catalog, shopper="facets", seed=0, rewriter=lambda text, lang: "Hello! " + text)
    said = polite.shopper("u", [], target.item_id).next_turn(None)
    assert said.rewritten and said.utterance.startswith("Hello! ")


def test_helpers() -> None:
    assert price_band(3.0) == (None, 5.0)
    assert price_band(12.0) == (10.0, 15.0)
    assert price_band(15.0) == (10.0, 15.0)
    assert price_band(2000.0) == (1000.0, None)
    with pytest.raises(ValueError):
        price_band(-1)
    assert brand_family("Lumina", ["Lumina", "Lumina Pro", "Luminary"]) == ("Lumina", "Lumina Pro")
    with pytest.raises(KeyError):
        Simulator(make_catalog(10), shopper="facets").shopper("u", [], "nope")
    with pytest.raises(ValueError):
        Simulator(make_catalog(10), shopper="facets", language="fr")  # type: ignore[arg-type]


def test_a_category_name_shared_with_other_nodes_is_said_with_its_parent() -> None:
    """ "brushes" would also name "Makeup Brushes & Tools": the shopper who wants the hair-brush
    node says "styling tools brushes", so what it states is what its ground truth checks."""
    paths = [
        ("Beauty", "Hair Care", "Styling Tools", "Brushes"),
        ("Beauty", "Tools & Accessories", "Makeup Brushes & Tools", "Sponges"),
        ("Beauty", "Hair Care", "Shampoos"),
        ("Beauty", "Skin Care", "Face", "Exfoliators & Scrubs", "Scrubs"),
    ]
    cat = Catalog(Item(f"i{n}", f"Thing {n}", categories=p, price=5.0) for n, p in enumerate(paths))
    sim = Simulator(cat, shopper="facets")
    assert sim.category_phrase(paths[0]) == "styling tools brushes"
    assert sim.category_phrase(paths[2]) == "shampoos"  # no other node says "shampoo"
    # An ancestor holding the word ("Exfoliators & Scrubs") is no clash: the bare name is enough.
    assert sim.category_phrase(paths[3]) == "scrubs"


def test_a_film_is_called_by_any_of_its_genres_and_single_paths_draw_nothing():
    import random

    from bench.simulator import Simulator
    from retrieval.data.schema import Item

    film = Item("f", "Toy Story (1995)", categories=("Movies", "Animation"),
                attributes={"genres": ["Animation", "Children's", "Comedy"]})  # fmt: skip
    said = {Simulator.type_of(film, random.Random(s))[-1] for s in range(40)}
    assert said == {"Animation", "Children's", "Comedy"}
    lipstick = Item("l", "Red Lipstick", categories=("Beauty", "Makeup", "Lipstick"))
    rng = random.Random(3)
    assert Simulator.type_of(lipstick, rng) == lipstick.categories
    assert rng.random() == random.Random(3).random()  # the shopper's later draws are unchanged
