"""Templates for synthetic shopper requests, grounded replies and chit-chat (the understanding
task's phrasings are in ``finetune.understand_templates``).

Everything a template says is filled from real catalog facts (category names, brands,
prices) or the shopper's real history; no fact is invented, so a model trained on the
replies learns to cite only what is on the cards.
"""

from __future__ import annotations

from dataclasses import dataclass

# (low, high) USD bands; a request names the band that contains the target's price.
PRICE_BANDS: tuple[tuple[float, float | None], ...] = (
    (0, 10),
    (10, 25),
    (25, 50),
    (50, 100),
    (100, None),
)


def price_band(price: float) -> tuple[float, float | None]:
    for lo, hi in PRICE_BANDS:
        if price >= lo and (hi is None or price < hi):
            return lo, hi
    return PRICE_BANDS[-1]


@dataclass(frozen=True)
class PricePhrase:
    """A price constraint as words (EN and ZH) and as ``Constraints`` fields."""

    en: str
    zh: str
    price_min: float | None
    price_max: float | None


def price_phrase(lo: float, hi: float | None, style: int) -> PricePhrase:
    """``style`` picks "under hi" / "between lo and hi" / "over lo" where the band allows it."""
    if hi is None or (style == 2 and lo > 0):
        return PricePhrase(f"over ${lo:g}", f"{lo:g}美元以上", float(lo), None)
    if lo == 0 or style == 0:
        return PricePhrase(f"under ${hi:g}", f"{hi:g}美元以下", None, float(hi))
    return PricePhrase(f"between ${lo:g} and ${hi:g}", f"价格在{lo:g}到{hi:g}美元之间", float(lo), float(hi))


# --- conversational SFT requests (EN) ---------------------------------------------------------
# Slots: {cat} category noun, {brand_part} " from Brand" or "", {price_part} " under $25" or "".
REQUEST_TEMPLATES = (
    "I'm looking for {cat}{brand_part}{price_part}. What would you suggest?",
    "Can you recommend some {cat}{brand_part}{price_part}?",
    "I need new {cat}{brand_part}{price_part}. Any ideas?",
    "What {cat}{brand_part} should I get{price_part}?",
    "Help me pick {cat}{brand_part}{price_part}, please.",
    "Show me good {cat}{brand_part}{price_part}.",
    "I want to buy {cat}{brand_part}{price_part} - which one fits me best?",
    "Any {cat}{brand_part}{price_part} you'd recommend based on what I usually buy?",
)

REPLY_OPENERS = (
    "I'd recommend **{title}** [{label}].",
    "My pick for you is **{title}** [{label}].",
    "Try **{title}** [{label}].",
    "The best match is **{title}** [{label}].",
)


# --- generic chat turns (templated here, no downloads) --------------------------------------------
GENERIC_CHAT: tuple[tuple[str, str], ...] = (
    ("Hi!", "Hello! I can help you find products in this shop. What are you looking for today?"),
    (
        "Hello there",
        "Hi! Tell me what you need - a product type, a brand or a budget - and I'll suggest options.",
    ),
    ("Good morning", "Good morning! What can I help you shop for?"),
    ("Thanks!", "You're welcome! Let me know if you want more suggestions."),
    ("Thank you, that's all.", "Happy to help. Enjoy your shopping!"),
    (
        "What can you do?",
        "I recommend products from this shop's catalog, compare options, and filter by brand, category or price.",
    ),
    (
        "Who are you?",
        "I'm the shop's shopping assistant. I suggest products from the catalog and explain why they fit.",
    ),
    (
        "Are you a human?",
        "No, I'm an AI shopping assistant. I can only recommend products that are in this catalog.",
    ),
    (
        "Can you place the order for me?",
        "I can't place orders, but I can help you choose; you can add the product to your cart yourself.",
    ),
    (
        "Where is my package?",
        "I can't see orders or deliveries. Please check your order page; I can help you find products though.",
    ),
    (
        "Can I return something?",
        "I don't have access to orders or returns. The shop's returns page has the policy; I can help you pick products.",
    ),
    (
        "Do you have discount codes?",
        "I don't have access to coupons or discounts, but I can look for options within your budget.",
    ),
    (
        "Tell me a joke",
        "I'm better at shopping than comedy! Tell me what you're looking for and I'll find something good.",
    ),
    (
        "What's the weather like?",
        "I can't check the weather - I only know this shop's catalog. Can I help you find a product?",
    ),
    (
        "Is this product safe for kids?",
        "I can only tell you what's on the product card. For safety questions, check the label or ask a professional.",
    ),
    (
        "Can you give me medical advice?",
        "I can't give medical advice. I can show you products and what their cards say about them.",
    ),
    (
        "I'm not sure what I want.",
        "No problem! Tell me what you usually buy or what it's for, and I'll suggest a few options.",
    ),
    (
        "Something cheaper please",
        "Sure - tell me your budget (for example 'under $20') and I'll only show options within it.",
    ),
    (
        "Show me more",
        "Of course. Tell me if you want the same kind of product or something different, and any budget.",
    ),
    (
        "I don't like any of these",
        "Sorry about that! What didn't you like - the brand, the price or the type? I'll adjust.",
    ),
    (
        "Which one is the best?",
        "It depends on what matters to you. Tell me your budget or preferred brand and I'll pick one.",
    ),
    (
        "Do you sell electronics?",
        "I can only recommend what's in this shop's catalog. Tell me what you need and I'll check for it.",
    ),
    ("Bye", "Goodbye! Come back any time you need shopping help."),
    ("ok", "Great! Anything else I can help you find?"),
    (
        "Can you remember my preferences?",
        "Within this conversation I use what you tell me and what you've bought before to suggest products.",
    ),
    (
        "Why did you recommend that?",
        "I choose products that match what you asked for and what you've bought before; each reason comes from the product card.",
    ),
    (
        "Can you compare two products?",
        "Yes - name the two options and I'll compare their brand, category and price from their cards.",
    ),
    (
        "What is your return policy?",
        "I don't have the shop's policies. Please check the help pages; I can help you choose products.",
    ),
    ("你好", "你好！我可以帮你在这家店里找商品。你想买什么？"),
    ("谢谢", "不客气！还需要别的推荐就告诉我。"),
    ("你能做什么？", "我可以从本店商品目录里推荐商品，并按品牌、品类或价格筛选。"),
    ("你是谁？", "我是本店的购物助手，只推荐目录里的商品，并说明推荐理由。"),
    ("我的快递到哪了？", "我看不到订单和物流信息，请到订单页面查看。我可以帮你挑选商品。"),
    ("有便宜一点的吗？", "当然，告诉我你的预算（比如20美元以下），我只推荐预算内的商品。"),
    ("再见", "再见！需要购物帮助随时回来。"),
    ("我不知道买什么", "没关系！告诉我你平时买什么或者用途，我给你推荐几个。"),
)
