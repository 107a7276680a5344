"""retrieval.text: the one tokenizer, sentence grammar, language detection and money format."""

from __future__ import annotations

import pytest

from retrieval.text import (
    STOPWORDS,
    detect_language,
    format_money,
    has_cjk,
    sentence_ends,
    split_sentences,
    tokenize,
    words,
)


def test_tokenize_english_keeps_decimals_and_folds_case():
    assert tokenize("Olay Regenerist 1.7oz, $3.50 e.l.f.") == [
        *("olay", "regenerist", "1.7", "oz", "3.50", "e", "l", "f")
    ]
    assert tokenize("Olay", fold=False) == ["Olay"]
    assert tokenize("snake_case") == ["snake", "case"]


def test_tokenize_chinese_splits_cjk_into_characters():
    assert tokenize("我想要OPI的指甲油") == ["我", "想", "要", "opi", "的", "指", "甲", "油"]
    assert tokenize("口红 lipstick") == ["口", "红", "lipstick"]


def test_words_keeps_cjk_runs_for_bigrams():
    assert words("红色口红 abc") == ["红色口红", "abc"]
    assert words("4.5") == ["4", "5"]


def test_stopwords_cover_both_languages():
    assert {"the", "and", "的", "了"} <= STOPWORDS
    assert "lipstick" not in STOPWORDS


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Rated 4.5 stars. Great value.", ["Rated 4.5 stars.", "Great value."]),
        ("It costs $3. Then it is gone.", ["It costs $3.", "Then it is gone."]),
        ("Only $3.50 today! Buy now?", ["Only $3.50 today!", "Buy now?"]),
        ("Use a primer, e.g. the Olay one. It helps.", ["Use a primer, e.g. the Olay one.", "It helps."]),
        ("Good, i.e. cheap. Yes.", ["Good, i.e. cheap.", "Yes."]),
        ("1. Olay cream\n2. Nivea lotion", ["1. Olay cream", "2. Nivea lotion"]),
        ("Rated 4 out of 5. Nice.", ["Rated 4 out of 5.", "Nice."]),
        ("Top picks: 1. Olay. 2. Nivea.", ["Top picks: 1. Olay.", "2. Nivea."]),
        ("很好用。推荐！真的吗？好", ["很好用。", "推荐！", "真的吗？", "好"]),
        ('He said "great." Then left.', ['He said "great."', "Then left."]),
        ("line one\nline two", ["line one", "line two"]),
        ("", []),
    ],
)
def test_split_sentences(text, sentences):
    assert split_sentences(text) == sentences


def test_sentence_ends_streaming_waits_for_whitespace():
    assert sentence_ends("Rated 4.", at_end=False) == []
    assert sentence_ends("Rated 4.", at_end=True) == []  # may be "4.5" cut off
    assert sentence_ends("Great value.", at_end=False) == []
    assert sentence_ends("Great value.") == [12]
    assert sentence_ends("好。还") == [2]
    assert sentence_ends("Great. More", at_end=False) == [6]


def test_detect_language_one_return_type():
    assert detect_language("我想要口红").language == "zh"
    assert detect_language("OPI的指甲油").language == "zh"
    en = detect_language("a red lipstick please")
    assert en.language == "en" and en.confident
    assert not detect_language("OPI").confident
    assert has_cjk("abc口") and not has_cjk("abc")


def test_format_money_one_currency_table():
    assert format_money(12.5) == "$12.50"
    assert format_money(1234.5, "EUR") == "€1,234.50"
    assert format_money(3, "SEK") == "3.00 SEK"
    assert format_money(3, None) == "3.00"
    assert format_money(20, "usd", trim_cents=True) == "$20"
    assert format_money(19.99, "CNY", trim_cents=True) == "¥19.99"


@pytest.mark.parametrize(
    ("text", "ends"),
    [
        ("Great pick. The next", [11]),
        ("Rated 4.2 out of 5.", []),  # no space after the final stop yet: not finished
        ("Rated 4. And more", [8]),  # a number inside a sentence: "4. " ends it
        ("Top picks:\n1. Quiz Show. 2. Exotica. More", [24, 36]),  # "1." / "2." are list markers
        ("1. Quiz Show (1994). 2. Exotica (1994). More", [20, 39]),
        ("One! Two? Three. Four", [4, 9, 16]),
        ("很好。也不错！", [3, 7]),
    ],
)
def test_sentence_ends_of_a_stream(text, ends):
    assert sentence_ends(text, at_end=False) == ends


def test_a_chinese_sentence_around_english_names_is_chinese():
    assert detect_language("推荐一些travel cases and holders。").language == "zh"
    assert detect_language("我想找puffs, sponges and wedges").language == "zh"
    assert detect_language("Show me the Shiseido Benefiance cream").language == "en"
    assert detect_language("a lipstick like 资生堂 Ruby Red please").language == "en"
