"""A small hand-made beauty catalog + purchase log shared by the retrieval tests.

Shaped to exercise the filters: items without a price or a brand, out-of-stock
items, category paths of depth 1..4, brand case variants, exactly 7 items of
one brand, near-duplicate lipsticks, and one rare brand token.
"""

from __future__ import annotations

from retrieval.data.schema import Catalog, Interactions, Item

LIPS = ("Beauty", "Makeup", "Lips")
EYES = ("Beauty", "Makeup", "Eyes")
SHAMPOO = ("Beauty", "Hair", "Shampoo")
CONDITIONER = ("Beauty", "Hair", "Conditioner")
FACE = ("Beauty", "Skin Care", "Face")
BODY = ("Beauty", "Skin Care", "Body", "Lotion")
FRAGRANCE = ("Beauty", "Fragrance")
RARE_BRAND = "Qorvexa"


def make_items() -> list[Item]:
    rows: list[Item] = []

    def add(title, brand, cats, price, in_stock=True, rating=None, description=None):
        rows.append(
            Item(
                f"p{len(rows):02d}",
                title,
                brand=brand,
                categories=cats,
                price=price,
                in_stock=in_stock,
                rating=rating,
                description=description,
            )
        )

    # 7 Maybelline items, five of them near-duplicate matte lipsticks.
    for shade, price in [
        ("Ruby", 9.99),
        ("Crimson", 9.49),
        ("Scarlet", 10.49),
        ("Cherry", 9.79),
        ("Rose", 8.99),
    ]:
        add(
            f"Maybelline SuperStay Matte Ink liquid lipstick, shade {shade}",
            "Maybelline",
            LIPS,
            price,
            rating=4.4,
        )
    add("Maybelline Lash Sensational mascara, washable black", "Maybelline", EYES, 7.99, rating=4.5)
    add("Maybelline Fit Me matte foundation", "maybelline", ("Beauty", "Makeup", "Face"), 8.49)
    # other lips
    add("Revlon Super Lustrous creme lipstick, berry", "Revlon", LIPS, 7.49, rating=4.2)
    add("L'Oreal Colour Riche satin lipstick", "L'Oreal", LIPS, 11.99)
    add("Burt's Bees moisturizing lip balm, beeswax", "Burt's Bees", LIPS, 3.29, rating=4.7)
    add("Fenty Gloss Bomb universal lip luminizer", "Fenty Beauty", LIPS, 21.0, in_stock=False)
    add("NARS velvet matte lip pencil", "NARS", LIPS, None)  # no price
    # eyes
    add("L'Oreal Voluminous lash paradise mascara", "L'Oreal", EYES, 10.99)
    add("Urban Decay eyeshadow palette, neutral tones", "Urban Decay", EYES, 54.0)
    add("Stila stay all day waterproof liquid eyeliner", "Stila", EYES, 22.0, in_stock=False)
    add("Generic black kohl eye pencil", None, EYES, 2.5)  # no brand
    # hair
    add("Pantene Pro-V daily moisture renewal shampoo", "Pantene", SHAMPOO, 5.99, rating=4.3)
    add("Head & Shoulders anti-dandruff shampoo", "Head & Shoulders", SHAMPOO, 7.49)
    add("OGX argan oil of Morocco shampoo", "OGX", SHAMPOO, 8.99)
    add("Pantene Pro-V daily moisture renewal conditioner", "Pantene", CONDITIONER, 5.99)
    add("OGX argan oil of Morocco conditioner", "OGX", CONDITIONER, 8.99)
    add("Olaplex No. 5 bond maintenance conditioner", "Olaplex", CONDITIONER, 30.0)
    add("Tangle Teezer detangling hair brush", "Tangle Teezer", ("Beauty", "Hair", "Tools"), 12.0)
    add("Wooden wide tooth comb", None, ("Beauty", "Hair", "Tools"), None)
    # skin
    add("CeraVe moisturizing cream for dry skin", "CeraVe", FACE, 16.99, rating=4.8)
    add("CeraVe hydrating facial cleanser", "CeraVe", FACE, 14.99)
    add("Neutrogena hydro boost water gel moisturizer", "Neutrogena", FACE, 19.99)
    add("La Roche-Posay Anthelios sunscreen SPF 60", "La Roche-Posay", FACE, 35.99)
    add(f"{RARE_BRAND} vitamin C brightening serum", RARE_BRAND, FACE, 24.0)
    add("The Ordinary niacinamide 10% + zinc serum", "The Ordinary", FACE, 6.5)
    add("Aveeno daily moisturizing body lotion", "Aveeno", BODY, 9.49)
    add("Nivea essentially enriched body lotion", "NIVEA", BODY, 7.99)
    add("Gold Bond ultimate healing skin therapy lotion", "Gold Bond", BODY, None)
    # fragrance (depth-2 path) and uncategorised
    add("Chanel No. 5 eau de parfum spray", "Chanel", FRAGRANCE, 135.0)
    add("Versace Bright Crystal eau de toilette", "Versace", FRAGRANCE, 68.0)
    add("Davidoff Cool Water eau de toilette for men", "Davidoff", FRAGRANCE, 29.99, in_stock=False)
    add("Travel size toiletry bag, clear", "Generic", (), 6.0)
    add("Gift card", None, (), None)
    # filler: 26 nail polishes so an unselective filter matches 50+ items
    colors = [
        "red",
        "pink",
        "coral",
        "nude",
        "white",
        "black",
        "navy",
        "teal",
        "mint",
        "lilac",
        "plum",
        "gold",
        "silver",
    ]
    for i in range(26):
        brand = ("Essie", "OPI", "Sally Hansen")[i % 3]
        add(
            f"{brand} nail polish, {colors[i % len(colors)]} {'gloss' if i < 13 else 'matte'} #{i}",
            brand,
            ("Beauty", "Makeup", "Nails", "Nail Polish"),
            round(4.0 + (i % 9) * 1.25, 2),
        )
    return rows


def make_catalog() -> Catalog:
    return Catalog(make_items())


def by_title(catalog: Catalog, fragment: str) -> str:
    hits = [it.item_id for it in catalog if fragment.casefold() in it.title.casefold()]
    assert len(hits) == 1, f"{fragment!r} matches {hits}"
    return hits[0]


def make_interactions(catalog: Catalog) -> Interactions:
    """Purchase histories with planted "bought together" pairs.

    Shampoo + conditioner of the same line, lipstick + mascara, cleanser + moisturizer;
    every pair appears for several users, and a one-off pair appears for one user only.
    """
    t = lambda s: by_title(catalog, s)  # noqa: E731
    pantene_s, pantene_c = t("Pantene Pro-V daily moisture renewal shampoo"), t("renewal conditioner")
    ogx_s, ogx_c = t("OGX argan oil of Morocco shampoo"), t("OGX argan oil of Morocco conditioner")
    ruby, mascara = t("shade Ruby"), t("Lash Sensational")
    cleanser, cream = t("hydrating facial cleanser"), t("moisturizing cream")
    brush, chanel = t("detangling"), t("Chanel")
    seqs: dict[str, list[str]] = {}
    for u in range(8):
        seqs[f"hair{u}"] = [pantene_s, pantene_c] if u % 2 else [ogx_s, ogx_c, brush]
    for u in range(6):
        seqs[f"lips{u}"] = [ruby, mascara, t("Revlon")] if u % 3 == 0 else [ruby, mascara]
    for u in range(5):
        seqs[f"skin{u}"] = [cleanser, cream]
    seqs["oneoff"] = [chanel, t("Wooden")]
    for u in range(4):  # popularity: Chanel is bought alone often
        seqs[f"solo{u}"] = [chanel]
    return Interactions.from_sequences(seqs)
