"""Free words typed wrong are also searched as the catalog's titles spell them."""

from __future__ import annotations

from assistant import ShoppingAssistant
from assistant.understanding.spelling import TitleSpelling
from retrieval.data.schema import Catalog, Dataset, Interactions, Item

_TITLES = [
    "Head & Shoulders Dandruff Shampoo, Classic Clean",
    "Neutrogena T/Gel Therapeutic Shampoo for Dandruff",
    "Selsun Blue Dandruff Shampoo, Medicated",
    "Nizoral Anti-Dandruff Shampoo",
    "Swingline Stapler, Desktop, 20 Sheets",
    "Bostitch Stapler, Heavy Duty",
    "Swingline Stapler, Compact",
    "Pantene Daily Moisture Shampoo",
]


def test_a_misspelt_word_gets_the_spelling_many_titles_use() -> None:
    s = TitleSpelling.from_titles(_TITLES)
    assert s.corrections("shampoo for dandruf") == ["dandruff"]
    assert s.corrections("a stapller that works") == ["stapler"]
    # words the titles or everyday English use, short words and Chinese are left alone
    assert s.corrections("shampoo dandruff please daily") == []
    assert s.corrections("pleese help 洗发水 dandr") == []
    assert s.corrections("zzzzzzz") == []
    assert TitleSpelling().corrections("dandruf") == []
    # a slip in a chat word brings no chat word back, and a plural is no mistake
    chatty = TitleSpelling.from_titles([f"Something {w} Looking Shampoo" for w in ("Good", "Nice", "Bold")])
    assert chatty.corrections("somthing lookin shampoos") == []


def test_a_brand_is_no_spelling_to_correct_a_word_to() -> None:
    titles = [f"Smead File Folder, {c}" for c in ("Red", "Blue", "Green", "Manila")]
    titles += [f"{b} Volume Foam" for b in ("Aveda", "Suave", "Tigi")] + ["Foam Co Mousse"]
    brands = ["Smead"] * 4 + ["Aveda", "Suave", "Tigi", "Foam Co"]
    assert TitleSpelling.from_titles(titles).corrections("pens that don't smear") == ["smead"]  # brands unknown
    spelling = TitleSpelling.from_titles(titles, brands)
    assert spelling.corrections("pens that don't smear") == []
    assert spelling.corrections("volume foamm") == ["foam"]  # a word other brands' titles say stays one


def test_a_misspelt_word_reaches_retrieval_in_the_catalogs_spelling(tmp_path) -> None:
    shampoo, staplers = ("Beauty", "Hair Care", "Shampoos"), ("Office", "Staplers")
    paths = [shampoo] * 4 + [staplers] * 3 + [shampoo]
    brands = ["Head & Shoulders", "Neutrogena", "Selsun", "Nizoral", "Swingline", "Bostitch", "Swingline", "Pantene"]
    items = [Item(f"i{n}", t, brand=b, categories=p) for n, (t, b, p) in enumerate(zip(_TITLES, brands, paths, strict=True))]
    seqs = {f"u{u}": [f"i{(u + j) % len(items)}" for j in range(3)] for u in range(12)}
    data = Dataset("spelling", Catalog(items), Interactions.from_sequences(seqs), source=__file__)
    bot = ShoppingAssistant.from_dataset(data, llm=None, cache_dir=tmp_path, show_progress=False)
    r = bot.chat("something for dandruf", session_id="typo")
    assert r.items and all("Dandruff" in it.title for it in r.items[:4])
    assert any('"dandruff"' in x for x in r.items[0].reasons)  # the word the titles use was searched
