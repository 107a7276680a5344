"""Catalog vocabulary: exact / plural / alias / Chinese / fuzzy matching and ambiguity."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.understanding.matches import Ambiguous, BrandMatch, CategoryMatch
from assistant.understanding.tokens import normalize, stem
from assistant.understanding.vocabulary import CatalogVocabulary
from retrieval.data.schema import Catalog, Item

LIPSTICK = ("Beauty", "Makeup", "Lips", "Lipstick")
NAIL_POLISH = ("Beauty", "Makeup", "Nails", "Nail Polish")
BODY_MOIST = ("Beauty", "Skin Care", "Body", "Moisturizers")
FACE_MOIST = ("Beauty", "Skin Care", "Face", "Creams & Moisturizers")
EYE_CREAMS = ("Beauty", "Skin Care", "Eyes", "Creams")


def beauty_catalog() -> Catalog:
    rows = [
        ("n1", "OPI Nail Lacquer Red", "OPI", NAIL_POLISH, 9.5),
        ("n2", "Essie Ballet Slippers", "Essie", NAIL_POLISH, 8.0),
        ("n3", "China Glaze Polish", "China Glaze", NAIL_POLISH, 6.0),
        ("m1", "Olay Regenerist Cream", "Olay", FACE_MOIST, 24.0),
        ("m2", "Nivea Creme", "Nivea", BODY_MOIST, 7.0),
        ("m3", "Nivea Men Face Lotion", "Nivea Men", FACE_MOIST, 9.0),
        ("m4", "Nivea Soft", "Nivea", BODY_MOIST, 6.5),
        ("l1", "Maybelline SuperStay", "Maybelline", LIPSTICK, 7.5),
        ("l2", "Colour Riche", "L'Oreal Paris", LIPSTICK, 9.0),
        ("s1", "Pantene Shampoo", "Pantene", ("Beauty", "Hair Care", "Shampoos"), 5.0),
        ("s2", "Pantene Conditioner", "Pantene", ("Beauty", "Hair Care", "Conditioners"), 5.0),
        (
            "s3",
            "Regrowth Conditioner",
            "Rogaine",
            ("Beauty", "Hair Care", "Hair Loss Products", "Conditioners"),
            30.0,
        ),
        ("e1", "Olay Eye Cream", "Olay", EYE_CREAMS, 22.0),
        ("d1", "Dove Beauty Bar", "Dove", ("Beauty", "Bath & Body", "Cleansers", "Soaps"), 3.0),
    ]
    return Catalog(Item(i, t, brand=b, categories=c, price=p) for i, t, b, c, p in rows)


def movie_catalog() -> Catalog:
    genres = ["Comedy", "Horror", "Sci-Fi", "Drama", "Children's", "Film-Noir"]
    return Catalog(Item(f"mv{i}", f"Movie {i}", categories=("Movies", g)) for i, g in enumerate(genres))


@pytest.fixture(scope="module")
def vocab() -> CatalogVocabulary:
    return CatalogVocabulary.from_catalog(beauty_catalog())


@pytest.fixture(scope="module")
def movies() -> CatalogVocabulary:
    return CatalogVocabulary.from_catalog(movie_catalog())


def test_normalize_and_stem_are_consistent():
    assert normalize("L'Oréal  Paris") == normalize("loreal paris") == "loreal paris"
    assert normalize("Ｏｌａｙ") == "olay"  # full-width
    assert normalize("Miss Jessie&#039;s") == "miss jessies"
    assert (
        stem("lipsticks") == "lipstick" and stem("glosses") == "gloss" and stem("accessories") == "accessory"
    )
    assert stem("gloss") == "gloss"


@pytest.mark.parametrize(
    ("text", "brand"),
    [("OPI", "OPI"), ("opi", "OPI"), ("l'oreal paris", "L'Oreal Paris"), ("LOREAL PARIS", "L'Oreal Paris"),
     ("loreal", "L'Oreal Paris"), ("maybeline", "Maybelline"), ("Nivea Men", "Nivea Men"), ("China Glaze", "China Glaze")],
)  # fmt: skip
def test_match_brand(vocab, text, brand):
    m = vocab.match_brand(text)
    assert isinstance(m, BrandMatch), m
    assert m.brand == brand


def test_match_brand_ambiguous_subline_asks(vocab):
    m = vocab.match_brand("nivea")
    assert isinstance(m, Ambiguous)
    assert {c.brand for c in m.candidates} == {"Nivea", "Nivea Men"}
    assert "Nivea Men" in m.question and "Nivea Men" in m.question_zh
    assert set(m.union().spellings) == {"Nivea", "Nivea Men"}


def test_match_brand_none_for_plain_words(vocab):
    for text in ("hello", "lipstick", "", "   ", "cheap"):
        assert vocab.match_brand(text) is None, text


@pytest.mark.parametrize(
    ("text", "path"),
    [("lipsticks", LIPSTICK), ("Lipstick", LIPSTICK), ("nail polish", NAIL_POLISH), ("nail varnish", NAIL_POLISH),
     ("face moisturizer", FACE_MOIST), ("eye cream", EYE_CREAMS), ("口红", LIPSTICK), ("指甲油", NAIL_POLISH),
     ("洗发水", ("Beauty", "Hair Care", "Shampoos")), ("lipstik", LIPSTICK)],
)  # fmt: skip
def test_match_category_single_path(vocab, text, path):
    m = vocab.match_category(text)
    assert isinstance(m, CategoryMatch), m
    assert m.paths == (path,)


def test_synonyms_and_any_of_paths(vocab):
    m = vocab.match_category("moisturiser")
    assert isinstance(m, CategoryMatch)
    assert set(m.paths) == {BODY_MOIST, FACE_MOIST}  # a node name in two places: any-of
    cond = vocab.match_category("conditioners")
    assert set(cond.paths) == {
        ("Beauty", "Hair Care", "Conditioners"),
        ("Beauty", "Hair Care", "Hair Loss Products", "Conditioners"),
    }
    face = vocab.match_category("面霜")
    assert FACE_MOIST in face.paths


def test_generic_words_are_weak(vocab):
    m = vocab.match_category("face")
    assert isinstance(m, CategoryMatch) and m.weak
    assert not vocab.match_category("lipstick").weak


def test_movie_genres_and_chinese_aliases(movies):
    for text in ("sci-fi", "sci fi", "Science Fiction", "scifi", "科幻"):
        m = movies.match_category(text)
        assert isinstance(m, CategoryMatch) and m.paths == (("Movies", "Sci-Fi"),), text
    assert movies.match_category("喜剧").paths == (("Movies", "Comedy"),)
    assert movies.match_category("恐怖").paths == (("Movies", "Horror"),)
    # The single root covers the whole catalog, so naming it ("电影", "movies") constrains nothing.
    assert movies.match_category("电影") is None and movies.match_category("movies") is None
    assert movies.match_category("kids").paths == (("Movies", "Children's"),)
    # An alias whose target is not in this catalog never matches.
    assert movies.match_category("口红") is None
    assert movies.match_category("lipstick") is None


def test_find_mentions_spans_and_case_rules(vocab):
    text = "Maybelline lipsticks or nail polish, 不要欧莱雅"
    found = vocab.find_mentions(text)
    kinds = [(text[m.start : m.end], m.kind) for m in found]
    assert kinds == [
        ("Maybelline", "brand"),
        ("lipsticks", "category"),
        ("nail polish", "category"),
        ("欧莱雅", "brand"),
    ]
    # A brand that is a plain word needs its capitals: "dove soap" is soap, "Dove soap" is the brand.
    assert [m.kind for m in vocab.find_mentions("dove soap")] == ["category"]
    assert [m.kind for m in vocab.find_mentions("Dove soap")] == ["brand", "category"]


REAL = Path("/work/shared/datasets/amazon-beauty-2014/items.jsonl.gz")


@pytest.mark.skipif(not REAL.exists(), reason="shared Amazon Beauty dataset not present")
def test_real_beauty_vocabulary_precision():
    import gzip
    import json

    items = []
    with gzip.open(REAL, "rt") as f:
        for line in f:
            d = json.loads(line)
            items.append(
                Item(str(d["item_id"]), d.get("title") or "untitled", brand=d.get("brand"),
                     categories=tuple(d.get("categories") or ()), price=d.get("price"))
            )  # fmt: skip
    t0 = time.perf_counter()
    v = CatalogVocabulary.from_catalog(Catalog(items))
    assert time.perf_counter() - t0 < 10
    assert v.match_category("nail polish").paths == (NAIL_POLISH,)
    assert v.match_brand("opi").brand == "OPI"
    # Descriptive words that happen to start brand names must not become brand filters.
    for text in ("shampoo for curly hair", "body lotion with shea butter", "she loves perfume"):
        assert not [m for m in v.find_mentions(text) if m.kind == "brand"], text
    assert next(m.kind for m in v.find_mentions("Burt's Bees lip balm")) == "brand"


def test_a_grandparent_and_a_leaf_name_the_leaf():
    """ "body oils": the Oils under Body > Moisturizers (was only "body", a weak word, and "oils")."""
    from assistant.understanding.parser import parse

    vocab = CatalogVocabulary.build(
        {}, [("Beauty", "Skin Care", "Body", "Moisturizers", "Oils"), ("Beauty", "Hair Care", "Oils"),
             ("Beauty", "Skin Care", "Face", "Oils & Serums")],
    )  # fmt: skip
    p = parse("I want body oils", vocab, None)
    assert p.categories_in == (("Beauty", "Skin Care", "Body", "Moisturizers", "Oils"),)
    assert parse("想要body oils", vocab, None).categories_in == p.categories_in
