"""The ``free`` shopper: the ``describe`` shopper's plan said in free chat words (``bench.voice``).

Same facts as describe for the same seed (checked by content, not wording), varied wording,
seeded, noise only in filler, and the describe dialogues unchanged by the plan/voice split."""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest
from _shopper_scripts import FIXTURE, movie_catalog, scripted_replies, transcripts
from assistant_catalog import make_dataset

from bench.simulator import Simulator
from bench.voice import PlanPart, PlanTurn, Voice, VoiceConfig, number_words, number_words_zh

# Budget ceilings written out, typed here by hand (not by the voice's own converter).
EN_WORDS = {
    5: "five", 10: "ten", 15: "fifteen", 20: "twenty", 25: "twenty-five", 30: "thirty", 40: "forty",
    50: "fifty", 60: "sixty", 75: "seventy-five", 100: "a hundred", 125: "a hundred and twenty-five",
    150: "a hundred and fifty", 200: "two hundred", 250: "two hundred and fifty", 300: "three hundred",
    400: "four hundred", 500: "five hundred", 750: "seven hundred and fifty", 1000: "a thousand",
}  # fmt: skip
ZH_WORDS = {
    5: "五", 10: "十", 15: "十五", 20: "二十", 25: "二十五", 30: "三十", 40: "四十", 50: "五十", 60: "六十",
    75: "七十五", 100: "一百", 125: "一百二十五", 150: "一百五十", 200: "二百", 250: "二百五十", 300: "三百",
    400: "四百", 500: "五百", 750: "七百五十", 1000: "一千",
}  # fmt: skip
CATALOGS = {"beauty": (make_dataset().catalog, 5), "movies": (movie_catalog(), 3)}


def tokens(text: str) -> list[str]:
    """Words, numbers and single Chinese characters (Chinese has no spaces: "我需要moisturizers")."""
    return re.findall(r"[^\W\d_\u4e00-\u9fff]+|\d+|[\u4e00-\u9fff]", text.casefold())


def forms(word: str) -> set[str]:
    """A word and its possible singulars, so "moisturizer" counts as "moisturizers", "brush" as "brushes"."""
    out = {word}
    if word.endswith("s") and len(word) > 3:
        out |= {word[:-1], word[:-2] if word.endswith("es") else word[:-1]}
        if word.endswith("ies"):
            out.add(word[:-3] + "y")
    return out


def stem(word: str) -> str:
    return min(forms(word), key=len)


def says(text: str, phrase: str) -> bool:
    """Every word of ``phrase`` is in ``text`` as a whole word (up to a plural ending)."""
    have = {f for t in tokens(text) for f in forms(t)}
    return all(forms(w) & have for w in tokens(phrase) if w not in ("a", "an"))


def says_budget(text: str, amount: float, lang: str) -> bool:
    n = int(amount)
    if re.search(rf"(?<![\d.]){n}(?![\d])", text):
        return True
    return (ZH_WORDS.get(n) or "\0") in text if lang == "zh" else (EN_WORDS.get(n) or "\0") in text.casefold()


def dialogues(mode: str, lang: str, name: str, seeds=range(30)):
    catalog, min_df = CATALOGS[name]
    for seed in seeds:
        sim = Simulator(catalog, seed=seed, language=lang, min_df=min_df, min_df_share=0.05, shopper=mode)
        target = catalog.at((seed * 13) % len(catalog)).item_id
        shopper = sim.shopper(f"u{seed}", [], target)
        yield seed, shopper, [shopper.next_turn(r) for r in scripted_replies(catalog, target, seed)]


def test_describe_dialogues_are_unchanged_by_the_plan_voice_split() -> None:
    """The describe transcripts recorded on main before the split, replayed turn by turn."""
    before = json.loads(FIXTURE.read_text(encoding="utf-8"))
    now = transcripts("describe")
    assert len(before) == 120 and now.keys() == before.keys()
    changed = [k for k in before if before[k] != now[k]]
    assert not changed, (changed[:3], [now[k] for k in changed[:1]], [before[k] for k in changed[:1]])


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("name", ["beauty", "movies"])
def test_free_shopper_reveals_what_the_describe_shopper_reveals(name: str, lang: str) -> None:
    """Same seed: the same plan turn by turn, and every fact of it in the free words (by content)."""
    free = list(dialogues("free", lang, name))
    described = list(dialogues("describe", lang, name))
    said = Counter[str]()
    for (seed, fs, fturns), (_, ds, dturns) in zip(free, described, strict=True):
        assert (fs.type_path, fs.attributes, fs.budget_cap) == (ds.type_path, ds.attributes, ds.budget_cap)
        for f, d in zip(fturns, dturns, strict=True):
            assert f.plan == d.plan and f.facets == d.facets and f.constraints == d.constraints, seed
            said["same words"] += f.utterance == d.utterance
            said["turns"] += 1
            for part in d.plan:
                where = (seed, f.utterance, d.utterance)
                if part.type_phrase:  # said in the describe words too
                    assert says(d.utterance, part.type_phrase)
                    assert says(f.utterance, part.type_phrase), where
                    said["type"] += 1
                if part.attribute:
                    assert says(d.utterance, part.attribute)
                    word = str(part.decade) if part.decade is not None else part.attribute
                    assert says(f.utterance, word), where
                    said["attribute"] += 1
                if part.budget is not None:
                    assert says_budget(d.utterance, part.budget, lang)
                    assert says_budget(f.utterance, part.budget, lang), where
                    said["budget"] += 1
                if part.brand:
                    assert part.brand.casefold() in f.utterance.casefold(), where
                    said["brand"] += 1
                if part.position is not None:
                    n = part.position + 1
                    ordinal = ["first", "second", "third", "fourth", "fifth"][part.position]
                    ok = ordinal in f.utterance.casefold() or re.search(rf"(?<!\d){n}(?!\d)", f.utterance)
                    zh_ok = lang == "zh" and "第一二三四五"[n] in f.utterance
                    assert ok or zh_ok, where
                    said["position"] += 1
    assert said["same words"] <= 0.1 * said["turns"]  # a different surface, now and then by chance alike
    assert said["type"] >= 30 and said["attribute"] >= 30 and said["position"] >= 5
    if name == "beauty":  # the movie fixture has no prices and no brands
        assert said["budget"] >= 3 and said["brand"] >= 1


def test_free_first_turns_vary_in_wording_and_frame() -> None:
    """50 seeded shoppers: first messages mostly distinct, in many frames (facts blanked out)."""
    catalog, _ = CATALOGS["beauty"]
    firsts, frames = [], set()
    for seed in range(50):
        sim = Simulator(catalog, seed=seed, min_df=5, min_df_share=0.05, shopper="free")
        shopper = sim.shopper(f"u{seed}", [], catalog.at(seed).item_id)
        text = shopper.next_turn(None).utterance
        firsts.append(text)
        facts = {stem(w) for w in tokens(shopper.type_phrase)} | set(shopper.attributes) | {"a", "an", "some"}
        frames.add(" ".join("X" if stem(t) in facts or t in facts else t for t in tokens(text)))
    assert len(set(firsts)) >= 45, Counter(firsts).most_common(3)
    assert len(frames) >= 35, sorted(frames)[:10]
    questions = sum(t.rstrip().endswith("?") for t in firsts)
    lower = sum(t == t.lower() for t in firsts)
    assert 5 <= questions <= 45 and 5 <= lower <= 45


def test_budgets_and_reactions_come_in_many_forms() -> None:
    voice, rng = Voice(), random.Random(7)
    budgets = {voice.say(PlanTurn((PlanPart("budget_cap", budget=20.0),), 2), rng) for _ in range(300)}
    forms = {re.sub(r"\$?20|twenty", "N", b.casefold()).strip(" .!") for b in budgets}
    assert len(forms) >= 15 and any("twenty" in b.casefold() for b in budgets)
    zh = Voice(VoiceConfig(language="zh"))
    zh_budgets = {zh.say(PlanTurn((PlanPart("budget_cap", budget=20.0),), 2), rng) for _ in range(200)}
    assert any("二十" in b for b in zh_budgets) and any("20" in b for b in zh_budgets)
    rejects = {voice.say(PlanTurn((PlanPart("reject"),), 1), rng).casefold().strip(" .!") for _ in range(200)}
    assert len(rejects) >= 12


def test_seeded_same_dialogue_for_the_same_seed() -> None:
    a = [[t.utterance for t in turns] for _, _, turns in dialogues("free", "en", "beauty", range(8))]
    b = [[t.utterance for t in turns] for _, _, turns in dialogues("free", "en", "beauty", range(8))]
    assert a == b
    catalog, _ = CATALOGS["beauty"]
    other = Simulator(catalog, seed=99, min_df=5, min_df_share=0.05, shopper="free")
    target = catalog.at(0).item_id
    c = [other.shopper("u0", [], target).next_turn(None).utterance]
    assert c != a[0][:1]


def test_noise_never_touches_a_fact() -> None:
    """With a typo in every message: the facts are whole, and the filler did change."""
    noisy = Voice(VoiceConfig(noise_share=1.0))
    clean = Voice(VoiceConfig(noise_share=0.0))
    parts = (
        PlanPart("open_attr", type_phrase="hair sprays", attribute="something"),
        PlanPart("budget_cap", budget=25.0),
        PlanPart("brand", brand="Burt's Bees"),
    )
    changed = 0
    for seed in range(200):
        turn = PlanTurn(parts, seed % 2)
        text = noisy.say(turn, random.Random(seed))
        changed += text != clean.say(turn, random.Random(seed))
        pieces = noisy.pieces(turn, random.Random(seed))
        for p in pieces:
            if p.fact:
                assert p.text in text
        facts = {p.text for p in pieces if p.fact}
        assert facts & {"hair sprays", "hair spray", "some hair sprays", "a hair spray", "a good hair spray"}
        assert "something" in facts and "Burt's Bees" in facts  # the typo list's "something" is a fact here
        assert says_budget(text, 25.0, "en")
    assert changed >= 180


def test_voice_config_and_plan_parts_are_validated() -> None:
    with pytest.raises(ValueError):
        VoiceConfig(noise_share=1.5)
    with pytest.raises(ValueError):
        VoiceConfig(language="fr")
    with pytest.raises(ValueError):
        PlanPart("budget_cap")
    with pytest.raises(ValueError):
        PlanPart("shout")
    with pytest.raises(ValueError):
        Simulator(CATALOGS["beauty"][0], shopper="free", rewriter=lambda text, lang: text)
    assert number_words(125) == "a hundred and twenty-five" and number_words(40) == "forty"
    assert (
        number_words_zh(250) == "二百五十"
        and number_words_zh(15) == "十五"
        and number_words_zh(105) == "一百零五"
    )


def test_the_bench_knows_the_free_mode_and_prints_its_protocol() -> None:
    from bench.conversation import SHOPPER_PROTOCOL, ConversationConfig, parse_args
    from bench.simulator import SHOPPER_MODES

    assert "free" in SHOPPER_MODES and set(SHOPPER_PROTOCOL) == set(SHOPPER_MODES)
    assert parse_args(["--shopper", "free"]).shopper == "free"
    with pytest.raises(ValueError):
        ConversationConfig(shopper="free", sim_llm="smollm2-135m")
