from __future__ import annotations

import pytest

import prompts
from prompts.loader import PromptError, _load_file

CHAT_TEMPLATES = ["recommend", "details", "compare", "bundle", "smalltalk", "repair", "parse"]


@pytest.mark.parametrize("name", CHAT_TEMPLATES)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_template_renders_in_both_languages(name: str, lang: str) -> None:
    tpl = prompts.load(name, lang)
    values = {v: f"<{v}-value>" for v in tpl.variables}
    (role_s, system), (role_u, user) = tpl.render(**values)
    assert (role_s, role_u) == ("system", "user")
    rendered = system + user
    # Every declared variable reaches the rendered prompt, and no placeholder is left over.
    for v in tpl.variables:
        assert f"<{v}-value>" in rendered
    assert "$" not in rendered.replace("$$", "")


def test_missing_or_unknown_variable_is_an_error() -> None:
    tpl = prompts.load("recommend", "en", version=1)
    with pytest.raises(PromptError, match="missing variables \\['cards'\\]"):
        tpl.render(query="q", constraints="c")
    with pytest.raises(PromptError, match="unknown variables \\['typo'\\]"):
        tpl.render(query="q", constraints="c", cards="x", typo="y")


def test_versions_and_languages_are_checked() -> None:
    assert prompts.available()["recommend"] == [1, 2]
    assert prompts.load("recommend", version=1).version == 1
    with pytest.raises(PromptError, match="no version 9"):
        prompts.load("recommend", version=9)
    with pytest.raises(PromptError, match="unsupported prompt language"):
        prompts.load("recommend", "fr")
    with pytest.raises(PromptError, match="no prompt template named"):
        prompts.load("nope")


def test_undeclared_placeholder_in_a_file_is_rejected(tmp_path) -> None:
    bad = tmp_path / "oops.v1.yaml"
    bad.write_text(
        "name: oops\nversion: 1\nvariables: [a]\nen:\n  system: hi $a\n  user: $b costs $$5\n",
        encoding="utf-8",
    )
    with pytest.raises(PromptError, match="undeclared variables \\['b'\\]"):
        _load_file(bad, "oops", 1, "en")


def test_reply_strings_render_with_catalog_values() -> None:
    s = prompts.load_strings("replies", "en")
    text = s.format(
        "recommend", count=2, titles="A, B", top_title="A", top_reasons="under $20", constraints=" under $20"
    )
    assert text == "Here are 2 options under $20: A, B. A stands out: under $20."
    zh = prompts.load_strings("replies", "zh")
    assert set(zh.strings) == set(s.strings)  # same situations covered in both languages
    with pytest.raises(PromptError, match="missing variables"):
        s.format("recommend", count=2)


def test_messages_are_langchain_messages() -> None:
    msgs = prompts.load("smalltalk", "en").messages(message="hello")
    assert [m.type for m in msgs] == ["system", "human"]
    assert msgs[1].content == "hello"
