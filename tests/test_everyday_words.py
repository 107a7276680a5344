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
    ],
)
def test_what_a_film_does_to_you_is_its_kinds(movies, text: str, kinds: set[str]) -> None:
    assert kinds <= _leaves(parse(text, movies, None).soft_categories)


def test_nothing_too_serious_spares_the_serious_kinds(movies) -> None:
    p = parse("an action movie, nothing too serious", movies, None)
    assert "Drama" in _leaves(p.avoided_categories) and "Drama" not in _leaves(p.soft_categories)
