"""bench.webshop: the request selector and the hard-constraint rules on hand-written requests,
the judgment fixture against the selected requests, and a --quick run (skips when data is absent)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.webshop import (
    JUDGED_REQUESTS,
    JUDGMENTS,
    HardConstraints,
    Request,
    is_beauty_request,
    judged_precision,
    judged_sample,
    keyword_popularity_system,
    load_goals,
    load_judgments,
    main,
    parse_hard_constraints,
    request_hash,
    satisfies,
    select_requests,
)
from retrieval.data.schema import Catalog, Item

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_path(*parts: str) -> Path:
    """``../shared/<parts>`` (or under $SHOPASSIST_SHARED_ROOT); skips when absent."""
    root = Path(os.environ.get("SHOPASSIST_SHARED_ROOT", REPO_ROOT.parent / "shared"))
    path = root.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


@pytest.mark.parametrize(
    "text",
    [
        "i need a sulfate free shampoo for curly hair",
        "looking for a long-lasting matte lipstick in red",
        "find me 18 inch clip-in hair extensions, dark brown",
        "i want a travel size eau de parfum for women",
        "a nail polish set with a top coat please",
        "hair dye, chocolate colored please",  # a colour word is no food
    ],
)
def test_selector_takes_beauty_requests(text: str) -> None:
    assert is_beauty_request(text)


@pytest.mark.parametrize(
    "text",
    [
        "i need gluten free vegetarian smoked peppered bacon",
        "i want a noise cancelling usb microphone",
        "i want a full xl 4 foundation for a box spring and mattress set",  # not makeup
        "a shampoo for my dog with oatmeal",  # pet care
        "replacement toner cartridge for my laser printer",
        "i want a super soft throw that i can leave in my living room",
        "i need a deodorant for sensitive skin",  # personal care the catalog does not stock
    ],
)
def test_selector_leaves_other_requests(text: str) -> None:
    assert not is_beauty_request(text)


def test_selection_is_unique_in_file_order_and_hashes_are_stable() -> None:
    goals = ["i need a shampoo", "i need a  shampoo", "a usb cable", "i want mascara"]
    assert select_requests(goals) == [Request(0, "i need a shampoo"), Request(3, "i want mascara")]
    assert request_hash("i need a  shampoo") == request_hash("i need a shampoo")
    assert re.fullmatch(r"[0-9a-f]{16}", request_hash("x"))


BRANDS = {"revlon", "perry ellis", "maybelline", "viktor and rolf"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a red lipstick under $15", HardConstraints(max_price=15.0)),
        ("shampoo less than 20 dollars", HardConstraints(max_price=20.0)),
        ("a hair dryer, 40.50 dollars or less", HardConstraints(max_price=40.5)),
        ("a serum over $30 but under $60", HardConstraints(max_price=60.0, min_price=30.0)),
        ("a serum no more than $25", HardConstraints(max_price=25.0)),
        ("a toner not more than 30 dollars", HardConstraints(max_price=30.0)),
        ("an 18 inch wig under 20 inches", HardConstraints()),  # no currency: not a price
        ("hair dye in the brand of revlon", HardConstraints(brands=("revlon",))),
        ("a long lasting cologne by perry ellis", HardConstraints(brands=("perry ellis",))),
        ("mascara, revlon brand, black", HardConstraints(brands=("revlon",))),
        ("a foundation but not maybelline", HardConstraints(not_brands=("maybelline",))),
        ("a mascara, no maybelline please", HardConstraints(not_brands=("maybelline",))),
        ("i want a biscuit revlon colorstay concealer", HardConstraints()),  # named without a cue
        ("a perfume like viktor and rolf impression scent", HardConstraints()),  # a dupe, not the brand
        ("a sulfate free conditioner", HardConstraints()),
    ],
)
def test_hard_constraint_parser(text: str, expected: HardConstraints) -> None:
    assert parse_hard_constraints(text, BRANDS) == expected


def test_items_checked_against_price_and_brand() -> None:
    cheap = SimpleNamespace(title="Revlon ColorStay Makeup", brand="Revlon", price=9.99)
    dear = SimpleNamespace(title="Luxury serum", brand=None, price=80.0)
    unknown = SimpleNamespace(title="Maybelline Fit Me", brand=None, price=None)
    assert satisfies(cheap, HardConstraints(max_price=10.0, brands=("revlon",)))
    assert not satisfies(dear, HardConstraints(max_price=10.0))
    assert not satisfies(unknown, HardConstraints(max_price=10.0))  # an unknown price fails a budget
    assert not satisfies(unknown, HardConstraints(not_brands=("maybelline",)))  # brand named in the title
    assert satisfies(dear, HardConstraints(not_brands=("maybelline",)))
    assert not HardConstraints().checkable and HardConstraints(min_price=1.0).checkable


def test_keyword_popularity_baseline_by_hand() -> None:
    catalog = Catalog(
        [
            Item("1", "Red Lipstick Matte"),
            Item("2", "Matte Red Nail Polish"),
            Item("3", "Blue Nail Polish"),
            Item("4", "Shampoo"),
        ]
    )
    system = keyword_popularity_system(catalog, ["4", "3", "2", "1"], 3)
    # "red matte lipstick": 1 matches 3 words, 2 matches 2; nothing else matches
    assert [it.item_id for it in system(Request(0, "a red matte lipstick"))] == ["1", "2"]
    # "nail polish": 2 and 3 tie on 2 words, popularity (3 before 2) breaks the tie
    assert [it.item_id for it in system(Request(1, "nail polish"))] == ["3", "2"]


def test_judged_precision_counts_missing_and_unjudged_items() -> None:
    labels = {"h1": {"a": 1, "b": 0, "c": 1}, "h2": {"x": 0}}
    r = judged_precision({"h1": ["a", "b", "c"], "h2": ["x"], "h3": ["q"]}, labels, 5)
    assert r["precision@5"] == pytest.approx((2 / 5 + 0) / 2) and r["judged_requests"] == 2
    r = judged_precision({"h1": ["a", "z"]}, labels, 5)
    assert r["precision@5"] is None and r["unjudged_items_shown"] == 1
    assert r["precision_over_judged_items"] == 1.0


def test_judgment_fixture_is_complete_and_holds_no_text() -> None:
    data = load_judgments(JUDGMENTS)
    assert {"rubric", "judge", "date", "system_judged"} <= set(data)
    assert len(data["requests"]) == JUDGED_REQUESTS
    for r in data["requests"]:
        assert set(r) == {"index", "hash", "items"}
        assert re.fullmatch(r"[0-9a-f]{16}", r["hash"])
        # every item any judged version of the system showed: 5 per version, each judged once
        assert len({it["item_id"] for it in r["items"]}) == len(r["items"])
        for it in r["items"]:
            assert set(it) == {"item_id", "relevant", "reason"}
            assert it["relevant"] in (0, 1) and 0 < len(it["reason"]) <= 90


def test_judgment_fixture_matches_the_selected_requests() -> None:
    goals = load_goals(shared_path("external", "webshop"))
    sample = judged_sample(select_requests(goals))
    data = load_judgments(JUDGMENTS)
    assert [(r.index, r.hash) for r in sample] == [(r["index"], r["hash"]) for r in data["requests"]]


@pytest.mark.slow  # builds (or loads) the Beauty index: minutes cold, ~40 s warm on 2 cores
def test_quick_run_on_webshop(tmp_path: Path) -> None:
    data = shared_path("external", "webshop")
    catalog = shared_path("datasets", "amazon-beauty-2014")
    args = ["--data", str(data), "--catalog", str(catalog), "--quick", "--out", str(tmp_path)]
    args.append("--no-progress")
    assert main(args) == 0
    rep = json.loads((tmp_path / "webshop-amazon-beauty-2014.json").read_text())
    assert rep["protocol"]["requests_run"] == 20
    assert set(rep["systems"]) == {"full", "keyword+popularity", "popularity"}
    full = rep["systems"]["full"]
    assert full["judged"]["unjudged_items_shown"] == 0  # the same items as when they were judged
    assert 0 <= full["judged"]["precision@5"] <= 1
    assert rep["systems"]["popularity"]["answered_share"] == 1.0
    assert (tmp_path / "webshop-amazon-beauty-2014.png").stat().st_size > 0
