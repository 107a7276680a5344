"""The chat UI in a real headless Chromium: cards, feedback, isolation, and no request off-box.

Every request both browser contexts make is recorded; the test fails if any goes
anywhere but the app on 127.0.0.1 (no CDN fonts/scripts, no analytics, no product photo from a
remote URL unless the shopper switched them on). The README's screenshot is
the real demo, not this fixture: ``scripts/screenshot.py`` refreshes it.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import contextlib
import io
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest
from assistant_catalog import make_dataset
from PIL import Image

import app
from assistant.ui.web import serving

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TURN_TIMEOUT_MS = 45_000
# The moisturizers (B000..B009) have pictures: even ones a local PNG, odd ones a remote URL.
LOCAL_IMAGES = [f"B00{k}" for k in range(0, 10, 2)]
REMOTE_IMAGES = [f"B00{k}" for k in range(1, 10, 2)]
REMOTE_HOST = "images.example.com"


def png_bytes(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(out, format="PNG")
    return out.getvalue()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cache = tmp_path_factory.mktemp("ui-browser-cache")
    pictures = tmp_path_factory.mktemp("pictures")
    images = {}
    for item_id in LOCAL_IMAGES:
        (pictures / f"{item_id}.png").write_bytes(png_bytes((30, 120, 200)))
        images[item_id] = str(pictures / f"{item_id}.png")
    images.update({item_id: f"https://{REMOTE_HOST}/{item_id}.jpg" for item_id in REMOTE_IMAGES})
    registry = app.make_registry(
        {"beauty": make_dataset(images=images)},
        llm=None,
        cache_dir=cache,
        include_demos=False,
        show_progress=False,
    )
    registry.get("beauty")  # build the engine before the browser's clock starts
    demo = app.create_app(registry)
    with serving(demo, "127.0.0.1", free_port()) as url:
        yield url
    with contextlib.suppress(Exception):
        registry.get("beauty").close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1300, "height": 1000},
        )
        yield pw, context
        context.close()


@pytest.fixture
def requests_seen():
    return []


def watch(context, seen: list[str]) -> None:
    context.on("request", lambda req: seen.append(req.url))


def open_app(context, url: str):
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#sa-msg textarea", timeout=30_000)
    return page


def wait_idle(page) -> None:
    """Until gradio shows no pending/generating component (the streamed turn is over)."""
    page.wait_for_timeout(200)
    page.wait_for_function("!document.querySelector('.generating, .pending')", timeout=TURN_TIMEOUT_MS)


def send(page, text: str) -> None:
    page.fill("#sa-msg textarea", text)
    page.keyboard.press("Enter")
    wait_idle(page)


def visible_cards(page) -> list[dict]:
    return page.eval_on_selector_all(
        ".sa-card",
        """els => els.filter(e => e.offsetParent !== null).map(e => ({
            id: e.dataset.itemId,
            title: e.querySelector('.sa-card-title').innerText,
            price: e.querySelector('[class^=sa-card-price]').innerText,
            reasons: e.querySelectorAll('.sa-card-reasons li').length,
        }))""",
    )


def chat_text(page) -> str:
    return page.inner_text("#sa-chat")


def pick_shopper(page, user_id: str) -> None:
    page.click("#sa-shopper input")
    page.click(f'[data-testid=dropdown-option][aria-label^="{user_id} "]')
    page.wait_for_function(
        "document.querySelector('#sa-history').innerText.includes('Recent history')", timeout=15_000
    )


def test_shop_flow_offline_and_isolated(server, browser, tmp_path, requests_seen):
    pw, context = browser
    watch(context, requests_seen)
    page = open_app(context, server)

    # A real shopper: their recent history is shown.
    pick_shopper(page, "u01")
    assert "Recent history" in page.inner_text("#sa-history")

    send(page, "a moisturizer under $40")
    cards = visible_cards(page)
    assert len(cards) >= 3, cards
    for card in cards:
        assert card["price"].startswith("$"), card
        assert float(card["price"][1:].replace(",", "")) <= 40, card
        assert card["reasons"] >= 1, card
    chips = page.inner_text("#sa-chips")
    assert "$40" in chips, chips
    shot = tmp_path / "cards.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    # "Not for me" on the first card: it disappears now and stays out of the next reply.
    dismissed = cards[0]
    page.click(".sa-slot-0 .sa-nope")
    wait_idle(page)
    assert dismissed["id"] not in [c["id"] for c in visible_cards(page)]
    send(page, "more")
    after = visible_cards(page)
    assert after, "no cards after 'more'"
    assert dismissed["id"] not in [c["id"] for c in after]
    page.screenshot(path=str(tmp_path / "after-more.png"), full_page=True)

    # A second, independent browser session sees none of the first one's chat or constraints.
    other_profile = tmp_path / "other-profile"
    other = pw.chromium.launch_persistent_context(
        str(other_profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    try:
        watch(other, requests_seen)
        page2 = open_app(other, server)
        assert "moisturizer" not in chat_text(page2).lower()
        assert "$40" not in page2.inner_text("#sa-chips")
        send(page2, "a shampoo")
        assert "$40" not in page2.inner_text("#sa-chips")
        assert "moisturizer under" not in chat_text(page2).lower()
        # ...and the first session is untouched by the second.
        assert "shampoo" not in chat_text(page).lower()
        assert "$40" in page.inner_text("#sa-chips")
    finally:
        other.close()

    hosts = {
        urlparse(u).hostname for u in requests_seen if urlparse(u).scheme not in ("data", "blob", "about")
    }
    assert hosts == {"127.0.0.1"}, f"requests left the machine: {sorted(h or '?' for h in hosts)}"


# Each character drawn in the chat's own font on a canvas; a character the fonts lack is drawn as
# the same "missing glyph" box as a private-use code point, which no font has.
_GLYPHS_DRAWN = """([sel, chars]) => {
    const font = getComputedStyle(document.querySelector(sel)).font || '16px sans-serif';
    const draw = (ch) => {
        const c = document.createElement('canvas');
        c.width = 48; c.height = 48;
        const g = c.getContext('2d');
        g.font = font.replace(/\\d+(\\.\\d+)?px/, '32px');
        g.fillText(ch, 4, 36);
        return Array.from(g.getImageData(0, 0, 48, 48).data).join(',');
    };
    const missing = draw('\\uE000');
    return chars.map((ch) => draw(ch) !== missing);
}"""


def test_a_chinese_reply_renders_in_the_browser(server, browser, requests_seen):
    # Without a CJK font (Debian fonts-noto-cjk, installed by scripts/setup.sh --dev) Chinese
    # replies showed as empty boxes.
    _, context = browser
    watch(context, requests_seen)
    page = open_app(context, server)
    send(page, "推荐一款40美元以内的保湿霜")
    text = chat_text(page)
    chars = list(dict.fromkeys(ch for ch in text if "\u4e00" <= ch <= "\u9fff"))
    assert len(chars) >= 12, text  # the message and the reply
    drawn = page.evaluate(_GLYPHS_DRAWN, ["#sa-chat", chars[:16]])
    assert all(drawn), [c for c, ok in zip(chars, drawn, strict=False) if not ok]
    assert page.evaluate(_GLYPHS_DRAWN, ["#sa-chat", ["\ue001"]]) == [False]  # the check can fail
    assert visible_cards(page), "no cards for a Chinese request"


def card_pictures(page) -> dict[str, dict]:
    """Per visible card: its <img> (src, loaded) or its placeholder, once every <img> settled."""
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.sa-card img')).every(i => i.complete)", timeout=15_000
    )
    return {
        c["id"]: c
        for c in page.eval_on_selector_all(
            ".sa-card",
            """els => els.filter(e => e.offsetParent !== null).map(e => {
                const img = e.querySelector('img.sa-card-img');
                const ph = e.querySelector('.sa-card-img-ph');
                return {id: e.dataset.itemId, src: img ? img.src : null,
                        loaded: img ? img.naturalWidth : 0, placeholder: ph ? ph.innerText : null};
            })""",
        )
    }


def off_box_hosts(seen: list[str]) -> set[str]:
    return {
        urlparse(u).hostname or "?"
        for u in seen
        if urlparse(u).scheme not in ("data", "blob", "about") and urlparse(u).hostname != "127.0.0.1"
    }


def test_card_images_local_served_remote_only_when_switched_on(server, browser, requests_seen):
    _, context = browser
    watch(context, requests_seen)
    page = open_app(context, server)
    assert not page.is_checked("#sa-remote-images input[type=checkbox]")  # off by default

    send(page, "a moisturizer under $40")
    pics = card_pictures(page)
    local = [i for i in pics if i in LOCAL_IMAGES]
    remote = [i for i in pics if i in REMOTE_IMAGES]
    assert local and remote, pics  # the fixture's cheap moisturizers include both kinds
    for item_id in local:
        # Served by the app itself, from the file the catalog names.
        assert pics[item_id]["src"].startswith(server.rstrip("/") + "/gradio_api/file="), pics[item_id]
        assert pics[item_id]["src"].endswith(f"/{item_id}.png"), pics[item_id]
        assert pics[item_id]["loaded"] == 8, pics[item_id]
        assert pics[item_id]["placeholder"] is None
    for item_id in remote:
        # Not fetched: a placeholder with the brand's initial instead.
        assert pics[item_id]["src"] is None and pics[item_id]["placeholder"], pics[item_id]
    assert off_box_hosts(requests_seen) == set(), "a remote photo was fetched without the opt-in"
    # The app serves exactly the catalog's pictures, not whatever else a path names.
    assert page.request.get(f"{server.rstrip('/')}/gradio_api/file=/etc/hostname").status == 403

    # A card without a picture: the placeholder, no <img>.
    send(page, "a shampoo")
    plain = card_pictures(page)
    assert plain, "no cards for a shampoo"
    for pic in plain.values():
        assert pic["src"] is None and len(pic["placeholder"] or "") == 1, pic

    # The shopper switches remote photos on: the remote card's <img> points at the other site
    # (answered here by the browser's router: no request really leaves the machine).
    fetched: list[str] = []

    def fake_remote(route) -> None:
        fetched.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=png_bytes((200, 80, 40)))

    page.route(f"https://{REMOTE_HOST}/**", fake_remote)
    page.check("#sa-remote-images input[type=checkbox]")
    wait_idle(page)
    send(page, "a moisturizer under $40")
    pics = card_pictures(page)
    remote = [i for i in pics if i in REMOTE_IMAGES]
    assert remote, pics
    for item_id in remote:
        assert pics[item_id]["src"] == f"https://{REMOTE_HOST}/{item_id}.jpg", pics[item_id]
        assert pics[item_id]["loaded"] == 8, pics[item_id]
    assert {urlparse(u).hostname for u in fetched} == {REMOTE_HOST}
    assert off_box_hosts(requests_seen) == {REMOTE_HOST}
