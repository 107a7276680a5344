"""Pure HTML/markdown rendering for the chat UI: cards, constraint chips, comparison, bundle.

Kept free of gradio so the exact strings a shopper sees are unit-testable, and so
every catalog value is HTML-escaped in one place (titles come from user data).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

from retrieval.filters import Constraints
from retrieval.text import format_money

NO_PRICE_IN_CATALOG = "no price in this catalog"
NO_PRICE_FOR_ITEM = "no price listed"
MAX_REASONS = 4

CSS = """
.sa-cards { gap: 12px; }
.sa-card-box { flex: 0 1 calc(33.3% - 12px) !important; max-width: calc(33.3% - 8px);
  border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px;
  background: var(--background-fill-secondary); }
.sa-card { min-height: 140px; }
.sa-card-img { display: block; width: 100%; height: 120px; object-fit: contain; border-radius: 8px;
  margin: 0 0 6px 0; background: var(--background-fill-primary); }
.sa-card-img-ph { display: flex; align-items: center; justify-content: center; width: 100%;
  height: 120px; border-radius: 8px; margin: 0 0 6px 0; font-size: 2.2em; font-weight: 600;
  color: var(--color-accent); background: var(--color-accent-soft); user-select: none; }
.sa-card-rank { font-size: 0.8em; color: var(--body-text-color-subdued); }
.sa-card-title { font-weight: 600; font-size: 1.02em; margin: 2px 0 4px 0; }
.sa-card-price { font-weight: 600; color: var(--color-accent); }
.sa-card-price.sa-no-price { font-weight: 400; font-style: italic; color: var(--body-text-color-subdued); }
.sa-card-meta { font-size: 0.85em; color: var(--body-text-color-subdued); margin: 2px 0; }
.sa-card-reasons { margin: 6px 0 0 0; padding-left: 18px; font-size: 0.88em; }
.sa-card-reasons li { margin: 1px 0; }
.sa-card-liked { font-size: 0.85em; color: var(--color-accent); }
.sa-bundle-total { font-weight: 600; margin-top: 6px; }
.sa-history li { font-size: 0.88em; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def format_price(price: float | None, currency: str | None = "USD", catalog_has_prices: bool = True) -> str:
    """The price as a shopper reads it; a missing price is said plainly, never invented."""
    if price is None or (isinstance(price, float) and math.isnan(price)):
        return NO_PRICE_FOR_ITEM if catalog_has_prices else NO_PRICE_IN_CATALOG
    return format_money(price, currency)


def _field(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def image_html(item: Any, src: str | None) -> str:
    """The card's picture: ``<img src>`` when the UI has a URL it may load, else a placeholder
    (the brand's or category's initial on a tinted square), never a broken image."""
    title = str(_field(item, "title") or "")
    if src:
        return f'<img class="sa-card-img" src="{_esc(src)}" alt="{_esc(title)}" loading="lazy" referrerpolicy="no-referrer">'
    cats = list(_field(item, "categories", ()) or ())
    label = next(
        (
            str(t).strip()
            for t in (_field(item, "brand"), cats[-1] if cats else None, title)
            if t and str(t).strip()
        ),
        "?",
    )
    return f'<div class="sa-card-img-ph" role="img" aria-label="no image">{_esc(label[0].upper())}</div>'


def card_html(
    item: Any,
    rank: int,
    *,
    currency: str | None = "USD",
    catalog_has_prices: bool = True,
    liked: bool = False,
    image_src: str | None = None,
    catalog_has_images: bool = True,
) -> str:
    """One product card. ``item`` is a ``RecommendedItem`` or its ``to_dict()``; ``image_src`` is
    the URL the browser may load for its picture (``None``: the placeholder), decided by the UI.
    A catalog with no images at all (movies) gets no picture block: a placeholder on every card
    would only push the facts down."""
    price = _field(item, "price")
    price_text = format_price(price, currency, catalog_has_prices)
    price_cls = "sa-card-price" + (" sa-no-price" if price is None else "")
    brand = _field(item, "brand")
    cats = list(_field(item, "categories", ()) or ())
    meta = []
    if brand:
        meta.append(f'<span class="sa-card-brand">{_esc(brand)}</span>')
    if cats:
        meta.append(f'<span class="sa-card-cats">{_esc(" > ".join(cats))}</span>')
    reasons = [r for r in (_field(item, "reasons", []) or []) if str(r).strip()][:MAX_REASONS]
    reasons_html = (
        '<ul class="sa-card-reasons">' + "".join(f"<li>{_esc(r)}</li>" for r in reasons) + "</ul>"
        if reasons
        else ""
    )
    liked_html = '<div class="sa-card-liked">♥ you liked this</div>' if liked else ""
    return (
        f'<div class="sa-card" data-item-id="{_esc(_field(item, "item_id"))}">'
        + (image_html(item, image_src) if catalog_has_images else "")
        + f'<div class="sa-card-rank">#{rank}</div>'
        f'<div class="sa-card-title">{_esc(_field(item, "title"))}</div>'
        f'<div class="{price_cls}">{_esc(price_text)}</div>'
        + (f'<div class="sa-card-meta">{" · ".join(meta)}</div>' if meta else "")
        + reasons_html
        + liked_html
        + "</div>"
    )


def on_screen(last: Sequence[Any], page: Sequence[Any], intent: str) -> list[Any]:
    """The cards in front of the shopper after a reply: its page, or the last one when small talk
    ("thanks!", "bye") sent none; any other reply without items (a question back) clears them.
    The ReDial replay scores this, so the bench and the UI read the screen one way."""
    return list(last) if not page and intent == "smalltalk" else list(page)


def friendly_error(action: str, exc: BaseException) -> str:
    """A one-line, stack-free explanation; the traceback goes to the server log only."""
    if isinstance(exc, ValueError | KeyError | FileNotFoundError | LookupError):
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = reason.strip("'\"")[:300]
        return f"Sorry, I couldn't {action}: {reason}"
    return f"Sorry, something went wrong on my side while trying to {action}. Please try again or rephrase."


# --- constraint chips ------------------------------------------------------------------
def _chip_key(field: str, value: Any) -> str:
    return f"{field}|{json.dumps(value, ensure_ascii=False)}"


def constraint_chips(
    constraints: Constraints,
    *,
    currency: str | None = "USD",
    title_of: Callable[[str], str] | None = None,
) -> list[tuple[str, str]]:
    """``(label, key)`` per active constraint; removing a key with ``drop_chips`` undoes exactly it."""
    chips: list[tuple[str, str]] = []
    c = constraints
    if c.price_min is not None:
        chips.append((f"from {format_price(c.price_min, currency)}", _chip_key("price_min", None)))
    if c.price_max is not None:
        chips.append((f"up to {format_price(c.price_max, currency)}", _chip_key("price_max", None)))
    chips += [(f"brand: {b}", _chip_key("brands_in", b)) for b in c.brands_in]
    chips += [(f"not {b}", _chip_key("brands_out", b)) for b in c.brands_out]
    chips += [(f"in {' > '.join(p)}", _chip_key("categories", list(p))) for p in c.categories]
    chips += [(f"not in {' > '.join(p)}", _chip_key("categories_out", list(p))) for p in c.categories_out]
    if c.in_stock is not None:
        chips.append(("in stock only" if c.in_stock else "out of stock only", _chip_key("in_stock", None)))
    if c.exclude_items:
        # One chip for all of them: "more" pages and "not for me" both add here, and a chip per
        # item would bury the real filters. Removing it shows those items again.
        n = len(c.exclude_items)
        if n == 1 and title_of is not None:
            label = f"hiding {title_of(c.exclude_items[0])}"
        else:
            label = f"hiding {n} item{'s' if n != 1 else ''} already shown or not for you"
        chips.append((label, _chip_key("exclude_items", None)))
    return chips


def drop_chips(constraints: Constraints, keys: Iterable[str]) -> Constraints:
    """``constraints`` without the chips whose keys are given (unknown keys are ignored)."""
    changes: dict[str, Any] = {}
    c = constraints
    for key in keys:
        field, _, raw = key.partition("|")
        try:
            value = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            continue
        if field in ("price_min", "price_max", "in_stock"):
            changes[field] = None
        elif field == "exclude_items" and value is None:
            changes[field] = ()
        elif field in ("brands_in", "brands_out", "exclude_items"):
            current = changes.get(field, getattr(c, field))
            changes[field] = tuple(v for v in current if v != value)
        elif field in ("categories", "categories_out"):
            current = changes.get(field, getattr(c, field))
            changes[field] = tuple(p for p in current if list(p) != value)
    return c.merged(**changes) if changes else c


# --- comparison / bundle / history / profile --------------------------------------------
def comparison_markdown(comparison: Any) -> str:
    """A markdown table from a ``Comparison`` (or its dict); empty string when there is none."""
    if comparison is None:
        return ""
    titles = list(_field(comparison, "titles", []) or [])
    rows = list(_field(comparison, "rows", []) or [])
    if not titles:
        return ""

    def cell(v: Any) -> str:
        text = "–" if v is None or v == "" else str(v)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| | " + " | ".join(cell(t) for t in titles) + " |", "|---" * (len(titles) + 1) + "|"]
    for row in rows:
        values = list(_field(row, "values", []) or [])
        lines.append(
            f"| **{cell(_field(row, 'attribute'))}** | " + " | ".join(cell(v) for v in values) + " |"
        )
    return "### Comparison\n\n" + "\n".join(lines)


def bundle_html(
    bundle: Any,
    items: Sequence[Any],
    *,
    currency: str | None = "USD",
    catalog_has_prices: bool = True,
) -> str:
    """The bundle's items with their prices and the catalog total (and the budget it respects)."""
    if bundle is None:
        return ""
    by_id = {_field(it, "item_id"): it for it in items}
    rows = []
    for item_id in _field(bundle, "item_ids", []) or []:
        it = by_id.get(item_id)
        title = _field(it, "title") if it is not None else item_id
        price = _field(it, "price") if it is not None else None
        rows.append(f"<li>{_esc(title)} — {_esc(format_price(price, currency, catalog_has_prices))}</li>")
    total = _field(bundle, "total_price")
    total_text = format_price(total, currency, catalog_has_prices)
    budget = _field(bundle, "budget")
    budget_text = f" (budget {format_price(budget, currency)})" if budget is not None else ""
    return (
        '<div class="sa-bundle"><h3>Bundle</h3><ul>'
        + "".join(rows)
        + f'</ul><div class="sa-bundle-total">Total: {_esc(total_text)}{_esc(budget_text)}</div></div>'
    )


def history_markdown(titles: Sequence[str], total: int) -> str:
    """The shopper's most recent items, newest last (what a returning shopper expects to see)."""
    if not titles:
        return "_New shopper: no history yet._"
    shown = "\n".join(f"- {t.replace('*', '').replace('_', ' ')}" for t in titles)
    more = f"\n\n_{total - len(titles)} earlier items not shown._" if total > len(titles) else ""
    return f"**Recent history** ({total} items):\n\n{shown}{more}"


def profile_markdown(profile: Any) -> str:
    """Whatever ``ShoppingAssistant.profile`` returned, as readable bullets."""
    if profile is None:
        return "_Nothing stored about you._"
    if hasattr(profile, "to_markdown"):
        return profile.to_markdown() or "_Nothing stored about you._"
    if is_dataclass(profile) and not isinstance(profile, type):
        profile = asdict(profile)
    if hasattr(profile, "to_dict"):
        profile = profile.to_dict()
    if not isinstance(profile, Mapping):
        return str(profile)
    lines = []
    for key, value in profile.items():
        if value in (None, "", [], {}, ()):
            continue
        label = str(key).replace("_", " ")
        if isinstance(value, Mapping):
            inner = ", ".join(f"{k}: {v}" for k, v in list(value.items())[:12])
            lines.append(f"- **{label}**: {inner}")
        elif isinstance(value, list | tuple | set):
            vals = [str(v) for v in value]
            more = f" (+{len(vals) - 12} more)" if len(vals) > 12 else ""
            lines.append(f"- **{label}**: {', '.join(vals[:12])}{more}")
        else:
            lines.append(f"- **{label}**: {value}")
    return "\n".join(lines) if lines else "_Nothing stored about you._"
