"""The understanding task (issue #20): generated data, its split, the rules projection, the
evaluator's metrics, and that dev selection never reads the test split. No LLM except the
slow tiny-model check at the end."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from assistant.dialogue_state import DialogueState
from assistant.understanding.llm_fallback import llm_fallback
from assistant.understanding.llm_prompt import (
    UnderstandContext,
    understand_messages,
    update_from_parse,
    update_json,
)
from assistant.understanding.parser import parse
from assistant.understanding.update import ConstraintUpdate
from assistant.understanding.vocabulary import CatalogVocabulary
from finetune.arguments import EvalConfig, GenerateConfig
from finetune.data import read_jsonl
from finetune.understand import (
    ALL_SLOTS,
    SPLITS,
    WEBSHOP_SCORED,
    generate_understand,
    norm_text,
    template_splits,
)
from finetune.understand_eval import UnderstandScorer, bootstrap_summary, evaluate_understand, score_update

# Made-up instructions in WebShop's file format (not WebShop text): prices, brands, other domains.
FAKE_GOALS = [
    "i need an olay moisturizer for dry skin, and price lower than 30.00 dollars",
    "looking for a gentle cleanser for my face",
    "i want a neutrogena cleanser that is oil free",
    "find me a lipstick in a deep red shade",
    "i want a cerave moisturizer impression, price lower than 12.00 dollars",
    "a shampoo for curly hair under $15 or maybe 20 dollars",
    "i need a garden hose that is 50 feet long",
    "show me a conditioner with argan oil",
    "i want a moisturizer with spf for sensitive skin",
    "get me a dove shampoo that smells nice",
    "i need a revlon lipstick that lasts long",
    "a night cream that is fragrance free",
]


@pytest.fixture(scope="module")
def beauty(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from assistant_catalog import make_dataset

    ds = make_dataset()
    root = tmp_path_factory.mktemp("understand")
    webshop = root / "webshop"
    webshop.mkdir()
    (webshop / "human_goals.json").write_text(json.dumps(FAKE_GOALS + FAKE_GOALS[:2]))
    cfg = GenerateConfig(
        data="beauty-fixture",
        out=str(root / "data"),
        seed=5,
        task="understand",
        understand_train=300,
        understand_dev=60,
        understand_test=80,
        webshop=str(webshop),
    )
    manifest = generate_understand(cfg, dataset=ds)
    files = {s: read_jsonl(root / "data" / f"{s}_understand.jsonl") for s in SPLITS}
    return {"ds": ds, "root": root, "cfg": cfg, "manifest": manifest, "files": files}


def _prompt_text(rec: dict) -> str:
    return "\n".join(m["content"] for m in rec["messages"])


def test_every_template_and_request_is_in_exactly_one_split(beauty: dict) -> None:
    splits = template_splits(beauty["cfg"].seed)
    seen: dict[str, set[str]] = {s: set() for s in SPLITS}
    requests: dict[str, set[str]] = {s: set() for s in SPLITS}
    for split, recs in beauty["files"].items():
        assert recs, split
        for rec in recs:
            assert rec["split"] == split
            if rec["meta"]["source"] == "webshop":
                requests[split].add(norm_text(rec["meta"]["message"]))
                continue
            for tid in rec["meta"]["template_ids"]:
                assert splits[tid] == split, (tid, split)
                seen[split].add(tid)
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not seen[a] & seen[b]
                assert not requests[a] & requests[b]
    # Every split has phrasings of its own for both languages.
    for split in SPLITS:
        assert any(t.startswith("en-") for t in seen[split]) and any(t.startswith("zh-") for t in seen[split])
    assert sum(len(r) for r in requests.values()) >= 3  # the fake goals in the beauty domain


def test_train_and_dev_never_contain_a_test_request(beauty: dict) -> None:
    test_messages = {norm_text(r["meta"]["message"]) for r in beauty["files"]["test"]}
    assert len(test_messages) == len(beauty["files"]["test"])  # no duplicates inside test either
    for split in ("train", "dev"):
        for rec in beauty["files"][split]:
            text = norm_text(_prompt_text(rec))
            assert norm_text(rec["meta"]["message"]) not in test_messages
            leaked = [m for m in test_messages if len(m) >= 12 and m in text]
            assert not leaked, (rec["id"], leaked)
    dev_messages = {norm_text(r["meta"]["message"]) for r in beauty["files"]["dev"]}
    assert not dev_messages & {norm_text(r["meta"]["message"]) for r in beauty["files"]["train"]}


def test_labels_round_trip_through_the_schema_and_fit_the_grammar(beauty: dict) -> None:
    for recs in beauty["files"].values():
        for rec in recs:
            target = rec["messages"][-1]["content"]
            upd = ConstraintUpdate.model_validate(json.loads(target))
            assert update_json(upd) == target  # stable key order, only non-empty fields
            assert json.loads(target) == rec["meta"]["gold"]
            for name in ("brands_include", "brands_exclude", "categories_include", "categories_exclude"):
                values = getattr(upd, name)
                assert len(values) <= 3 and all(len(v) <= 32 for v in values)
            assert len(upd.query) <= 32
            assert set(rec["meta"]["scored"]) <= set(ALL_SLOTS)


def test_generated_labels_are_the_slots_the_generator_filled(beauty: dict) -> None:
    vocab = CatalogVocabulary.from_catalog(beauty["ds"].catalog)
    brands = {b.casefold() for b in vocab.brand_names}
    for rec in beauty["files"]["train"]:
        gold, message = rec["meta"]["gold"], rec["meta"]["message"]
        if rec["meta"]["source"] != "generated":
            continue
        for b in gold.get("brands_include", []) + gold.get("brands_exclude", []):
            assert b.casefold() in brands
        for n in gold.get("categories_include", []) + gold.get("categories_exclude", []):
            assert vocab.match_category(n) is not None, n
        for v in ("price_min", "price_max"):
            if v in gold:
                assert rec["meta"]["template_ids"][-1].split("-")[1] == "p"  # a price pattern filled it
        if "references" in gold:
            assert max(gold["references"]) <= rec["meta"]["n_shown"]
        assert rec["messages"][-2]["content"].endswith(f"Message: {message}")


def test_webshop_labels_only_where_the_rules_are_confident(beauty: dict) -> None:
    ws = [r for recs in beauty["files"].values() for r in recs if r["meta"]["source"] == "webshop"]
    by_text = {r["meta"]["message"]: r["meta"]["gold"] for r in ws}
    assert by_text[FAKE_GOALS[0]]["price_max"] == 30 and by_text[FAKE_GOALS[0]]["currency"] == "USD"
    assert by_text[FAKE_GOALS[0]]["brands_include"] == ["Olay"]
    assert "brands_include" not in by_text[FAKE_GOALS[4]]  # an "impression" names the imitated brand
    assert FAKE_GOALS[5] not in by_text  # two amounts: no trusted price, skipped
    assert FAKE_GOALS[6] not in by_text  # not this catalog's domain
    for r in ws:
        assert r["meta"]["scored"] == list(WEBSHOP_SCORED)
        assert "soft_terms" not in r["meta"]["gold"]
    assert beauty["manifest"]["webshop"]["scored_slots"] == list(WEBSHOP_SCORED)
    assert beauty["manifest"]["webshop"]["hand_check"]["rounds"]


def test_same_seed_same_data(beauty: dict, tmp_path: Path) -> None:
    cfg = GenerateConfig(**{**beauty["cfg"].__dict__, "out": str(tmp_path / "again")})
    generate_understand(cfg, dataset=beauty["ds"])
    for s in SPLITS:
        a = (beauty["root"] / "data" / f"{s}_understand.jsonl").read_bytes()
        assert (tmp_path / "again" / f"{s}_understand.jsonl").read_bytes() == a


def test_rules_projection() -> None:
    from assistant_catalog import make_dataset

    vocab = CatalogVocabulary.from_catalog(make_dataset().catalog)
    upd = update_from_parse(parse("a moisturizer under $20, not from Olay", vocab, "USD"))
    assert upd.price_max == 20 and upd.price_min is None and upd.currency == "USD"
    assert upd.brands_exclude == ["Olay"] and upd.brands_include == []
    assert upd.categories_include == ["Moisturizers"]
    assert "moisturizer" in upd.query
    assert update_from_parse(parse("more like the second one", vocab, "USD")).references == [2]
    assert update_from_parse(parse("the first two", vocab, "USD")).references == [1, 2]
    assert update_from_parse(parse("the last one", vocab, "USD"), n_shown=4).references == [4]
    assert update_from_parse(parse("cheaper please", vocab, "USD")).relative_price == "lower"
    assert update_from_parse(parse("show me something else", vocab, "USD")).exclude_shown
    assert json.loads(update_json(update_from_parse(parse("hi", vocab, "USD")))) == {}


def test_evaluator_metrics_on_a_hand_made_case() -> None:
    from assistant_catalog import make_dataset

    scorer = UnderstandScorer(CatalogVocabulary.from_catalog(make_dataset().catalog))
    gold = ConstraintUpdate(price_max=20, currency="USD", brands_include=["Olay"], query="olay cream")
    all_slots = list(ALL_SLOTS)
    perfect = score_update(
        scorer,
        ConstraintUpdate(price_max=20.0, currency="usd", brands_include=["olay"], query="Olay  cream"),
        gold,
        all_slots,
    )
    assert perfect["exact"] and perfect["valid"]
    # wrong price, spurious brand, query half right: tp = currency, olay, "olay" -> 3;
    # fp = price 25, Dove, "lotion" -> 3; fn = price 20, "cream" -> 2
    half = score_update(
        scorer,
        ConstraintUpdate(price_max=25, currency="USD", brands_include=["Olay", "Dove"], query="olay lotion"),
        gold,
        all_slots,
    )
    assert not half["exact"] and not half["exact_hard"]
    assert half["slots"]["price_max"] == (0, 1, 1) and half["slots"]["brands_include"] == (1, 1, 0)
    invalid = score_update(scorer, None, gold, all_slots)
    assert not invalid["valid"] and invalid["slots"]["query"] == (0, 0, 2)
    summary = bootstrap_summary({"rules": [perfect, half], "base": [half, invalid]}, n_boot=50)
    rules, base = summary["systems"]["rules"], summary["systems"]["base"]
    assert rules["exact"]["value"] == 0.5
    # rules micro: tp 5+3 = 8, fp 0+3, fn 0+2 -> F1 = 16 / 21
    assert rules["micro_f1"]["value"] == pytest.approx(16 / 21)
    # base micro: tp 3, fp 3, fn 2 + 5 -> F1 = 6 / 16
    assert base["micro_f1"]["value"] == pytest.approx(6 / 16)
    assert base["micro_f1"]["diff_vs_rules"]["value"] == pytest.approx(6 / 16 - 16 / 21)
    assert base["valid"]["value"] == 0.5
    lo, hi = base["micro_f1"]["ci95"]
    assert lo <= base["micro_f1"]["value"] <= hi
    # Scored slots limit what counts: a WebShop-style record ignores the query.
    only_price = score_update(
        scorer, ConstraintUpdate(price_max=20, currency="USD"), gold, ["price_max", "currency"]
    )
    assert only_price["exact"]


def test_dev_evaluation_never_opens_the_test_split(beauty: dict, tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("manifest.json", "dev_understand.jsonl", "test_understand.jsonl"):
        (data / name).write_bytes((beauty["root"] / "data" / name).read_bytes())
    opened: list[str] = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(
        "retrieval.data.registry.load_dataset", lambda *a, **k: beauty["ds"]
    )  # the fixture catalog is in memory
    cfg = EvalConfig(
        data=str(data),
        task="understand",
        split="dev",
        systems="rules",
        out=str(tmp_path / "r"),
        tag="u",
        bootstrap=20,
        progress=False,
    )
    report = evaluate_understand(cfg)
    assert report["split"] == "dev" and report["n_records"] == len(beauty["files"]["dev"])
    assert any(p.endswith("dev_understand.jsonl") for p in opened)
    assert not any("test_understand" in p for p in opened)
    # Without a test file the dev evaluation still runs; the test evaluation cannot.
    (data / "test_understand.jsonl").unlink()
    evaluate_understand(cfg)
    with pytest.raises(FileNotFoundError):
        evaluate_understand(EvalConfig(**{**cfg.__dict__, "split": "test"}))
    md = (tmp_path / "r" / "u.md").read_text()
    assert "| rules |" in md and "95% CI" in md


def test_the_product_sends_exactly_the_training_prompt(beauty: dict) -> None:
    """``Understander._json_fallback`` + ``llm_fallback`` send what ``understand_messages`` builds."""
    from assistant.understanding_stage import Understander

    ds = beauty["ds"]
    sent: list[list[dict]] = []

    class FakeLLM:
        def generate_json(self, msgs, schema, max_new_tokens=96):
            from llm.messages import to_chat_dicts

            sent.append(to_chat_dicts(msgs))
            return {"brands_exclude": ["Olay"]}

    ctx = SimpleNamespace(
        catalog=ds.catalog,
        config=SimpleNamespace(understand_llm=False),
        llm=FakeLLM(),
        currency="USD",
        understand_model=None,
        index=SimpleNamespace(popularity={}),  # titles are ordered by popularity
    )
    stage = Understander(ctx)  # type: ignore[arg-type]
    shown = tuple(it.item_id for it in list(ds.catalog)[:3])
    state = DialogueState().record_cards(shown)
    message = "something like the 2nd but not olay-ish"
    hook = stage._json_fallback("en", state)
    parsed = llm_fallback(parse(message, stage.vocab, "USD"), stage.vocab, "USD", hook)
    context = UnderstandContext.from_state(state, ds.catalog)
    assert len(context.shown) == 3
    assert sent == [understand_messages(message, "USD", context)]
    assert "Shown:\n1. " in sent[0][-1]["content"]
    assert parsed.source == "rules+llm"


@pytest.mark.slow
def test_base_llm_under_the_grammar_gives_valid_updates(
    beauty: dict, tmp_path: Path, tiny_llm_dir, monkeypatch
) -> None:
    """The real tiny model through ``generate_constrained_json``, as the product calls it: every
    output validates (whatever it says), and the report carries CIs and the paired difference."""
    monkeypatch.setattr("retrieval.data.registry.load_dataset", lambda *a, **k: beauty["ds"])
    cfg = EvalConfig(
        data=str(beauty["root"] / "data"),
        task="understand",
        split="dev",
        systems="rules,base",
        base=str(tiny_llm_dir),
        n_understand=3,
        threads=1,
        out=str(tmp_path),
        tag="tiny",
        bootstrap=20,
        progress=False,
    )
    report = evaluate_understand(cfg)
    base = report["all"]["systems"]["base"]
    assert base["valid"]["value"] == 1.0
    assert "diff_vs_rules" in base["exact"]
    assert (tmp_path / "tiny.md").is_file()


def test_a_brand_family_is_one_brand_for_the_scorer() -> None:
    vocab = CatalogVocabulary.build({"OPI": 30, "OPI NAIL COLOR": 2, "Olay": 10}, [("Beauty", "Nails")])
    scorer = UnderstandScorer(vocab)
    gold = ConstraintUpdate(brands_include=["OPI"])
    both = score_update(
        scorer, ConstraintUpdate(brands_include=["OPI", "OPI NAIL COLOR"]), gold, ["brands_include"]
    )
    assert both["exact"] and both["slots"]["brands_include"] == (1, 0, 0)
    other = score_update(scorer, ConstraintUpdate(brands_include=["Olay"]), gold, ["brands_include"])
    assert other["slots"]["brands_include"] == (0, 1, 1)
