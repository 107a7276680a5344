"""Everyday words become soft category preferences; decades and said in words are years (#19 item 4)."""

from __future__ import annotations

import pytest

from assistant.understanding.parser import parse
from assistant.understanding.vocabulary import CatalogVocabulary


@pytest.fixture(scope="module")
def movies(movielens_vocabulary) -> CatalogVocabulary:
    return movielens_vocabulary


def _leaves(paths: tuple[tuple[str, ...], ...]) -> set[str]:
    return {p[-1] for p in paths}


def test_family_night_is_family_genres_not_title_words(movies) -> None:
    p = parse("a funny movie for a family night, something from the 90s", movies, None)
    assert {"Children's", "Animation", "Comedy"} <= _leaves(p.soft_categories)
    assert p.years == (1990, 1999)


def test_a_family_film_in_chinese_is_family_genres(movies) -> None:
    p = parse("推荐一部适合全家看的搞笑电影，九十年代的", movies, None)
    assert {"Children's", "Animation", "Comedy"} <= _leaves(p.soft_categories)
    assert p.years == (1990, 1999) and not p.categories_in


def test_darker_is_a_soft_preference_and_not_x_stays_hard(movies) -> None:
    p = parse("something darker, not a comedy", movies, None)
    assert {"Drama", "Thriller", "Crime", "Horror"} <= _leaves(p.soft_categories)
    assert "Comedy" not in _leaves(p.soft_categories)
    assert ("Movies", "Comedy") in p.categories_out


def test_negated_everyday_word_is_no_preference(movies) -> None:
    assert "Horror" not in _leaves(parse("a movie, not scary", movies, None).soft_categories)


@pytest.mark.parametrize(
    ("text", "years"),
    [
        ("九十年代的电影", (1990, 1999)),
        ("八十年代", (1980, 1989)),
        ("90年代", (1990, 1999)),
        ("something from the nineties", (1990, 1999)),
        ("an eighties movie", (1980, 1989)),
    ],
)
def test_decades_in_words(text: str, years: tuple[int, int]) -> None:
    vocab = CatalogVocabulary.build({}, [("Movies", "Comedy")])
    assert parse(text, vocab, None).years == years


def test_beauty_oily_skin_points_at_its_categories() -> None:
    vocab = CatalogVocabulary.build(
        {"Cetaphil": 5},
        [
            ("Beauty", "Skin Care", "Face", "Cleansers"),
            ("Beauty", "Skin Care", "Face", "Moisturizers"),
            ("Beauty", "Makeup", "Lips", "Lipstick"),
        ],
    )
    p = parse("something for oily skin", vocab, "USD")
    assert _leaves(p.soft_categories) == {"Cleansers", "Moisturizers"}
    assert p.categories_in == ()  # a preference, not a filter
    zh = parse("油皮用的", vocab, "USD")
    assert _leaves(zh.soft_categories) == {"Cleansers", "Moisturizers"}


def test_ranker_prefers_items_carrying_the_soft_categories() -> None:
    from retrieval.data.schema import Catalog, Item
    from retrieval.hybrid import Candidate
    from retrieval.ranker import FusedRanker

    cat = Catalog(
        [
            Item("a", "A Family Thing", categories=("Movies", "Drama"), attributes={"genres": ["Drama"]}),
            Item(
                "t",
                "Toy Story",
                categories=("Movies", "Animation"),
                attributes={"genres": ["Animation", "Children's", "Comedy"]},
            ),
            Item("x", "Heat", categories=("Movies", "Action"), attributes={"genres": ["Action"]}),
        ]
    )
    cands = [Candidate("a", 1.0), Candidate("t", 0.6), Candidate("x", 0.0)]
    soft = (("Movies", "Children's"), ("Movies", "Animation"), ("Movies", "Comedy"))
    ranked = FusedRanker(cat).rank(cands, soft_categories=soft)
    assert [r.item_id for r in ranked][:2] == ["t", "a"]
    assert ranked[0].contributions["preference"] > 0


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("a movie that will make me cry", {"Drama", "Romance"}),
        ("an action movie with lots of explosions", {"Action"}),
        ("something fun for tonight", {"Comedy", "Adventure"}),
        ("i just broke up with my gf and need something to cheer me up", {"Comedy"}),
        ("a movie that'll make me think, not a blockbuster", {"Drama", "Mystery"}),
        ("a movie that will keep me on the edge of my seat", {"Thriller"}),
        ("我今天心情不好，想看一部让人开心的电影", {"Comedy"}),
    ],
)
def test_what_a_film_does_to_you_is_its_kinds(movies, text: str, kinds: set[str]) -> None:
    p = parse(text, movies, None)
    assert kinds <= _leaves(p.soft_categories)
    assert not {"gf", "edge", "seat"} & set(p.query.split())  # chat words and moods are no search words


def test_nothing_too_serious_spares_the_serious_kinds(movies) -> None:
    p = parse("an action movie, nothing too serious", movies, None)
    assert "Drama" in _leaves(p.avoided_categories) and "Drama" not in _leaves(p.soft_categories)


_SHOP_NODES = [
    ("Beauty", "Skin Care", "Face", "Treatments & Masks", "Acids & Peels", "Salicylic Acid"),
    ("Beauty", "Skin Care", "Face", "Cleansers"),
    ("Beauty", "Skin Care", "Body", "Moisturizers", "Lotions"),
    ("Beauty", "Hair Care", "Hair Color", "Chemical Hair Dyes"),
    ("Beauty", "Hair Care", "Hair Loss Products", "Hair Regrowth Treatments"),
    ("Beauty", "Makeup", "Nails", "Nail Polish"),
    ("Beauty", "Skin Care", "Hands & Nails", "Nail Treatments", "Nail Strengthening"),
    ("Office", "Mouse Pads & Wrist Rests", "Wrist Rests"),
    ("Office", "Shredders"),
    ("Office", "Desk Accessories & Workspace Organizers", "Drawer Organizers"),
]


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("i keep breaking out along my jawline", {"Salicylic Acid", "Cleansers"}),
        ("my skin gets really flaky in winter, what would help", {"Lotions"}),
        ("I need something for the gray roots between salon visits", {"Chemical Hair Dyes"}),
        ("my hair is thinning since the baby", set()),
        ("hair loss after the baby", {"Hair Regrowth Treatments"}),
        ("my nails keep peeling, i want them to stop peeling", {"Nail Strengthening"}),
        ("my wrist hurts after typing all day", {"Wrist Rests"}),
        ("what's safe for getting rid of sensitive documents", {"Shredders"}),
        ("my desk is a mess, help me declutter", {"Drawer Organizers"}),
    ],
)
def test_a_need_said_as_a_symptom_points_at_what_treats_it(text: str, kinds: set[str]) -> None:
    """Round 9 of the free-talk probes: shoppers say what is wrong, not what to buy."""
    vocab = CatalogVocabulary.build({"Acme": 5}, _SHOP_NODES)
    p = parse(text, vocab, "USD")
    assert _leaves(p.soft_categories) >= kinds
    assert p.categories_in == ()  # evidence for ranking, never a filter
    if not kinds:
        assert "Hair Regrowth Treatments" not in _leaves(p.soft_categories)


@pytest.mark.parametrize(
    ("text", "gone", "searched"),
    [
        # "out" found S'wipe Out cloths and Out of Africa soap; "flat" found flat irons
        ("i keep breaking out along my jawline", "out", "acne"),
        ("I've got thin straight hair that goes flat by noon", "flat", "volume"),
        ("hair keeps falling out after having my baby", "falling", "loss"),
    ],
)
def test_a_need_is_searched_by_what_treats_it_not_by_its_words(text: str, gone: str, searched: str) -> None:
    """A need names a problem, not the goods: titles do not say it, so its words leave the query."""
    nodes = [*_SHOP_NODES, ("Beauty", "Hair Care", "Styling Products", "Mousses & Foams")]
    query = parse(text, CatalogVocabulary.build({"Acme": 5}, nodes), "USD").query.casefold().split()
    assert gone not in query and searched in query


def test_a_need_whose_kinds_this_catalog_lacks_keeps_its_words() -> None:
    vocab = CatalogVocabulary.build({"Acme": 5}, [("Office", "Shredders")])
    assert "flat" in parse("my hair goes flat", vocab, "USD").query.split()


@pytest.mark.parametrize(
    ("text", "kind", "searched"),
    [
        ("冬天皮肤很干还起皮，有什么推荐", "Lotions", "dry"),
        ("生完孩子以后一直掉头发", "Hair Regrowth Treatments", "loss"),
        ("有好多白头发，想遮一下", "Chemical Hair Dyes", "gray"),
        ("打字打得手腕疼", "Wrist Rests", "wrist"),
    ],
)
def test_a_need_said_in_chinese_is_searched_in_the_catalogs_words(text: str, kind: str, searched: str) -> None:
    p = parse(text, CatalogVocabulary.build({"Acme": 5}, _SHOP_NODES), "USD")
    assert kind in _leaves(p.soft_categories) and searched in p.query.split()
