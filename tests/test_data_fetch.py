"""``shopping-assistant data fetch``: download, resume, verify and convert the public Amazon dumps.

A real ``http.server`` on 127.0.0.1 (in a thread) serves a small fixture in the real formats: the
2023 JSONL dumps and the 2014 dumps whose metadata lines are Python literals (single quotes),
all gzip'ed. It honours ``Range`` (206) unless told to ignore it, and can cut a response short,
announce a wrong size or serve a broken gzip, so every failure path runs against real sockets.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from retrieval.data import load_dataset
from retrieval.data.fetch import FetchConfig, FetchError, fetch_dataset
from shopping_assistant.cli import main

# ----------------------------------------------------------------------------- fixture data

ITEMS = [f"B00000000{i}" for i in range(10)]
BRANDS = ["Acme", "Acme", "Glow", "Glow", "Puro", "Puro", "Lumi", "Lumi", None, "Acme"]
PRICES = [12.5, 8.0, 23.99, 5.25, 40.0, 15.0, 9.99, 30.0, None, None]
LEAVES = ["Face", "Face", "Hair", "Hair", "Nails", "Nails", "Face", "Hair", "Nails", "Face"]


def _reviews() -> list[tuple[str, str, float]]:
    """(user, item, stars). A 4x4 block (u0..u3 x i0..i3) is the 3-core; u4 reviews i0, i4, i5
    and only drops out once i4 and i5 have (a second round); u9's two reviews of the block keep
    it in the 2-core but not the 3-core."""
    rows = [(f"U{u}", ITEMS[i], float(1 + (u + i) % 5)) for u in range(4) for i in range(4)]
    rows += [("U4", ITEMS[0], 5.0), ("U4", ITEMS[4], 4.0), ("U4", ITEMS[5], 3.0)]
    rows += [("U5", ITEMS[6], 2.0), ("U6", ITEMS[7], 4.0), ("U6", ITEMS[8], 5.0)]
    rows += [("U7", ITEMS[9], 3.0), ("U8", ITEMS[9], 4.0), ("U9", ITEMS[1], 5.0), ("U9", ITEMS[2], 1.0)]
    return rows


def _gz_lines(lines: list[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def amazon_2023_files(category: str) -> dict[str, bytes]:
    meta = []
    for i, item in enumerate(ITEMS):
        meta.append(
            json.dumps(
                {
                    "main_category": "All Beauty",
                    "title": f"Product {i} {LEAVES[i].lower()} care",
                    "average_rating": 4.0 + i / 10,
                    "rating_number": 10 + i,
                    "features": [f"feature {i}"],
                    "description": [f"Description of product {i}."],
                    "price": PRICES[i],
                    "images": [],
                    "videos": [],
                    "store": BRANDS[i],
                    "categories": ["Beauty", LEAVES[i]],
                    "details": {"Item Form": "Cream"},
                    "parent_asin": item,
                    "bought_together": None,
                }
            )
        )
    reviews = [
        json.dumps(
            {
                "rating": stars,
                "title": f"Review {n}",
                "text": f"{user} on {item}: works well.",
                "images": [],
                "asin": item,
                "parent_asin": item,
                "user_id": user,
                "timestamp": 1_600_000_000_000 + n * 86_400_000,
                "helpful_vote": 0,
                "verified_purchase": True,
            }
        )
        for n, (user, item, stars) in enumerate(_reviews())
    ]
    return {
        f"review_categories/{category}.jsonl.gz": _gz_lines(reviews),
        f"meta_categories/meta_{category}.jsonl.gz": _gz_lines(meta),
    }


def amazon_2014_files(category: str) -> dict[str, bytes]:
    # The original 2014 metadata lines are Python literals: repr() writes single quotes.
    meta = [
        repr(
            {
                "asin": item,
                "title": f"Product {i} {LEAVES[i].lower()} care",
                "price": PRICES[i],
                "imUrl": f"http://example.invalid/{item}.jpg",
                "salesRank": {"Beauty": 1000 + i},
                "categories": [["Beauty", "Skin Care", LEAVES[i]]],
                "description": f"Description of product {i}.",
                **({"brand": BRANDS[i]} if BRANDS[i] else {}),
            }
        )
        for i, item in enumerate(ITEMS)
    ]
    assert meta[0].startswith("{'asin': ")
    reviews = [
        json.dumps(
            {
                "reviewerID": user,
                "asin": item,
                "reviewerName": user.lower(),
                "helpful": [0, 0],
                "reviewText": f"{user} on {item}: works well.",
                "overall": stars,
                "summary": f"Review {n}",
                "unixReviewTime": 1_400_000_000 + n * 86_400,
                "reviewTime": "05 13, 2014",
            }
        )
        for n, (user, item, stars) in enumerate(_reviews())
    ]
    return {
        f"reviews_{category}_5.json.gz": _gz_lines(reviews),
        f"meta_{category}.json.gz": _gz_lines(meta),
    }


# ----------------------------------------------------------------------------- loopback server


@dataclass
class ServerState:
    """What the server serves and how; ``requests`` records (path, Range header) per GET."""

    files: dict[str, bytes] = field(default_factory=dict)
    ignore_range: set[str] = field(default_factory=set)
    cut_once: set[str] = field(default_factory=set)  # first full response: half the body, then close
    lie_length: set[str] = field(default_factory=set)  # announce 10 bytes more than sent
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RangeHandler(BaseHTTPRequestHandler):
    server: LoopbackServer

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        state = self.server.state
        rng = self.headers.get("Range")
        with state.lock:
            state.requests.append((self.path, rng))
            cut = self.path in state.cut_once and rng is None
            if cut:
                state.cut_once.discard(self.path)
        body = state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        honour = rng is not None and self.path not in state.ignore_range and self.path not in state.lie_length
        start = int(rng.removeprefix("bytes=").split("-")[0]) if honour else 0
        if honour and start >= len(body):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        payload = body[start:]
        if honour:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        extra = 10 if self.path in state.lie_length else 0
        self.send_header("Content-Length", str(len(payload) + extra))
        self.send_header("Content-Type", "application/gzip")
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2] if cut else payload)
        self.wfile.flush()
        self.close_connection = True


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: ServerState):
        super().__init__(("127.0.0.1", 0), RangeHandler)
        self.state = state

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer(ServerState())
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def serve(server: LoopbackServer, prefix: str, files: dict[str, bytes]) -> str:
    """Serve ``files`` under ``/<prefix>/``; returns that base URL."""
    for name, data in files.items():
        server.state.files[f"/{prefix}/{name}"] = data
    return f"{server.url}/{prefix}/"


def config(base_url: str, tmp_path: Path, **options) -> FetchConfig:
    options.setdefault("source", "amazon-2023")
    options.setdefault("category", "All_Beauty")
    return FetchConfig(
        base_url=base_url,
        out=tmp_path / "shop",
        download_dir=tmp_path / "downloads",
        progress=False,
        backoff_s=0.0,
        **options,
    )


def data_requests(server: LoopbackServer, name: str) -> list[str | None]:
    """The Range headers of the GETs for the file ``name`` (not its ``.sha256``)."""
    return [rng for path, rng in server.state.requests if path.endswith("/" + name)]


# ----------------------------------------------------------------------------- tests


def test_fetch_converts_to_a_catalog_that_round_trips(server: LoopbackServer, tmp_path: Path) -> None:
    files = amazon_2023_files("All_Beauty")
    # A checksum file served beside one dump is picked up and checked.
    reviews = "review_categories/All_Beauty.jsonl.gz"
    files[reviews + ".sha256"] = (
        f"{hashlib.sha256(files[reviews]).hexdigest()}  All_Beauty.jsonl.gz\n".encode()
    )
    base = serve(server, "amazon_2023/raw", files)
    lines: list[str] = []
    result = fetch_dataset(config(base, tmp_path), log=lines.append)

    assert result.out == tmp_path / "shop"
    assert (result.items, result.users, result.interactions) == (10, 10, len(_reviews()))
    assert result.priced_share == pytest.approx(0.8)
    assert sorted(p.name for p in (tmp_path / "shop").iterdir()) == [
        "SOURCE.json",
        "interactions.jsonl.gz",
        "items.jsonl.gz",
    ]
    assert not list((tmp_path / "downloads").glob("*.part"))

    shop = load_dataset(tmp_path / "shop")
    raw = load_dataset(tmp_path / "downloads")  # the dumps themselves, through the 2023 loader
    assert shop.catalog.ids == raw.catalog.ids == ITEMS
    for ours, theirs in zip(shop.catalog, raw.catalog, strict=True):
        assert (ours.title, ours.brand, ours.categories, ours.price, ours.rating, ours.reviews) == (
            theirs.title,
            theirs.brand,
            theirs.categories,
            theirs.price,
            theirs.rating,
            theirs.reviews,
        )
    first = shop.catalog[ITEMS[0]]
    assert (first.price, first.brand, first.categories) == (12.5, "Acme", ("Beauty", "Face"))
    assert first.reviews[0].startswith("Review 0. U0 on")
    assert first.attributes["details"] == {"Item Form": "Cream"}
    assert shop.catalog[ITEMS[8]].price is None and shop.currency == "USD"
    cols = ["user_id", "item_id", "timestamp", "rating"]
    assert shop.interactions.frame[cols].equals(raw.interactions.frame[cols])
    assert shop.interactions.timed

    # A second run reuses the finished downloads (no new GET for the data files).
    before = len(server.state.requests)
    fetch_dataset(config(base, tmp_path), log=lines.append)
    assert len(server.state.requests) == before
    assert any("using the downloaded" in line for line in lines)


def test_a_cut_download_resumes_with_a_range_request(server: LoopbackServer, tmp_path: Path) -> None:
    files = amazon_2023_files("All_Beauty")
    base = serve(server, "amazon_2023/raw", files)
    name = "meta_All_Beauty.jsonl.gz"
    body = files[f"meta_categories/{name}"]
    server.state.cut_once.add(f"/amazon_2023/raw/meta_categories/{name}")
    fetch_dataset(config(base, tmp_path), log=lambda _: None)
    assert data_requests(server, name) == [None, f"bytes={len(body) // 2}-"]
    assert (tmp_path / "downloads" / name).read_bytes() == body

    # A .part left by an earlier run is resumed from its size, not fetched again.
    review = "All_Beauty.jsonl.gz"
    full = files[f"review_categories/{review}"]
    (tmp_path / "downloads" / review).unlink()
    (tmp_path / "downloads" / f"{review}.part").write_bytes(full[:100])
    fetch_dataset(config(base, tmp_path), log=lambda _: None)
    assert data_requests(server, review)[-1] == "bytes=100-"
    assert (tmp_path / "downloads" / review).read_bytes() == full


def test_a_server_ignoring_range_restarts_the_file(server: LoopbackServer, tmp_path: Path) -> None:
    files = amazon_2023_files("All_Beauty")
    base = serve(server, "amazon_2023/raw", files)
    review = "All_Beauty.jsonl.gz"
    server.state.ignore_range.add(f"/amazon_2023/raw/review_categories/{review}")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    stale = b"stale bytes from another file" * 3
    (downloads / f"{review}.part").write_bytes(stale)
    fetch_dataset(config(base, tmp_path), log=lambda _: None)
    assert data_requests(server, review) == [f"bytes={len(stale)}-"]  # asked to resume, got a 200
    assert (downloads / review).read_bytes() == files[f"review_categories/{review}"]
    assert load_dataset(tmp_path / "shop").catalog.ids == ITEMS


def test_a_size_mismatch_fails_clearly_and_leaves_no_final_file(
    server: LoopbackServer, tmp_path: Path
) -> None:
    base = serve(server, "amazon_2023/raw", amazon_2023_files("All_Beauty"))
    review = "All_Beauty.jsonl.gz"
    server.state.lie_length.add(f"/amazon_2023/raw/review_categories/{review}")
    with pytest.raises(
        FetchError, match=r"after 3 attempts: size mismatch: got [\d,]+ bytes, the server announced"
    ):
        fetch_dataset(config(base, tmp_path, retries=2), log=lambda _: None)
    assert len(data_requests(server, review)) == 3
    assert not (tmp_path / "downloads" / review).exists()
    assert not (tmp_path / "shop").exists()


def test_a_corrupt_gzip_fails_clearly_and_leaves_nothing(server: LoopbackServer, tmp_path: Path) -> None:
    files = amazon_2023_files("All_Beauty")
    meta = "meta_categories/meta_All_Beauty.jsonl.gz"
    files[meta] = files[meta][: len(files[meta]) * 2 // 3]  # a truncated stream, announced as such
    base = serve(server, "amazon_2023/raw", files)
    with pytest.raises(FetchError, match="not a complete gzip file"):
        fetch_dataset(config(base, tmp_path), log=lambda _: None)
    downloads = tmp_path / "downloads"
    assert not (downloads / "meta_All_Beauty.jsonl.gz").exists()
    assert not (downloads / "meta_All_Beauty.jsonl.gz.part").exists()
    assert not (tmp_path / "shop").exists()


def test_a_wrong_sha256_fails_and_a_right_one_passes(server: LoopbackServer, tmp_path: Path) -> None:
    files = amazon_2023_files("All_Beauty")
    base = serve(server, "amazon_2023/raw", files)
    name = "All_Beauty.jsonl.gz"
    with pytest.raises(FetchError, match="sha256 mismatch"):
        fetch_dataset(config(base, tmp_path, sha256={name: "0" * 64}), log=lambda _: None)
    assert not (tmp_path / "downloads" / name).exists()
    right = hashlib.sha256(files[f"review_categories/{name}"]).hexdigest()
    fetch_dataset(config(base, tmp_path, sha256={name: right}), log=lambda _: None)
    assert (tmp_path / "downloads" / name).is_file()


def test_k_core_keeps_users_and_items_with_k_interactions_to_a_fixed_point(
    server: LoopbackServer, tmp_path: Path
) -> None:
    base = serve(server, "amazon_2023/raw", amazon_2023_files("All_Beauty"))
    result = fetch_dataset(config(base, tmp_path, k_core=3), log=lambda _: None)
    shop = load_dataset(tmp_path / "shop")
    # U4 has 3 reviews, but two are of items with one review each: gone in the second round.
    assert sorted(shop.interactions.users) == ["U0", "U1", "U2", "U3"]
    assert sorted(shop.catalog.ids) == ITEMS[:4]
    assert (result.items, result.users, result.interactions) == (4, 4, 16)

    fetch_dataset(config(base, tmp_path, k_core=2), log=lambda _: None)
    two = load_dataset(tmp_path / "shop")
    assert sorted(two.interactions.users) == ["U0", "U1", "U2", "U3", "U9"] and len(two.interactions) == 18

    with pytest.raises(FetchError, match=r"25-core .* is empty"):
        fetch_dataset(config(base, tmp_path, k_core=25), log=lambda _: None)
    assert len(load_dataset(tmp_path / "shop").interactions) == 18  # the old folder is untouched


def test_an_unknown_category_lists_close_names() -> None:
    with pytest.raises(ValueError, match="Did you mean All_Beauty") as err:
        FetchConfig(source="amazon-2023", category="All_Beuty")
    assert "Video_Games" in str(err.value)  # the full list follows
    with pytest.raises(ValueError, match="Did you mean Beauty"):
        FetchConfig(source="amazon-2014", category="beauty")
    with pytest.raises(ValueError, match="unknown source 'amazon-2018'"):
        FetchConfig(source="amazon-2018", category="Beauty")
    with pytest.raises(ValueError, match="k_core"):
        FetchConfig(source="amazon-2014", category="Beauty", k_core=-1)


def test_a_missing_file_is_a_clear_http_error(server: LoopbackServer, tmp_path: Path) -> None:
    base = serve(server, "empty", {})
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_dataset(config(base, tmp_path), log=lambda _: None)
    assert not (tmp_path / "shop").exists()


def test_cli_fetches_a_2014_category_end_to_end(server: LoopbackServer, tmp_path: Path, capsys) -> None:
    base = serve(server, "categoryFiles", amazon_2014_files("Beauty"))
    out = tmp_path / "beauty"
    argv = ["data", "fetch", "amazon-2014", "Beauty", "--base-url", base, "--out", str(out)]
    argv += ["--download-dir", str(tmp_path / "dl"), "--k-core", "2", "--max-reviews", "1", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"{out}: 4 items (100% priced), 5 users, 18 interactions" in printed
    assert f"ui --dataset {out}" in printed
    shop = load_dataset(out)
    item = shop.catalog[ITEMS[2]]
    assert (item.brand, item.price, item.categories) == ("Glow", 23.99, ("Beauty", "Skin Care", "Hair"))
    assert item.rating is not None and len(item.reviews) == 1
    assert item.image == f"http://example.invalid/{ITEMS[2]}.jpg"  # imUrl survives the conversion
    assert shop.interactions.frame["timestamp"].min() == 1_400_000_000

    assert main(["data", "fetch", "amazon-2023", "All_Beuty", "--base-url", base]) == 1
    assert "Did you mean All_Beauty" in capsys.readouterr().err
