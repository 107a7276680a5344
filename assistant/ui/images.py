"""Card pictures: the URL a card's ``<img>`` may load, and the shopper's "photos from the web" switch.

A local catalog image is served by the app itself, by exact file (never its folder) and only for
image types; a remote URL only when the shopper switched remote photos on and local-only mode is
off, since the browser then fetches it from the other site. Otherwise the card shows a placeholder.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import gradio as gr

from llm.local_only import local_only
from retrieval.data.schema import is_remote_image

# No SVG: served inline on the app's origin, a crafted one could run script there.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".bmp")
FILE_ROUTE = "gradio_api/file="  # gradio's file route, relative to the page


def remote_images_allowed(opted_in: bool) -> bool:
    return bool(opted_in) and not local_only()


def card_image_src(image: str | None, *, remote_ok: bool, allowed_paths: list[str] | None) -> str | None:
    """The ``<img src>`` for a catalog image, or ``None`` for the placeholder.

    A local file is added (resolved) to ``allowed_paths``, the app's list of files it may serve;
    ``None`` there (no app yet) shows the placeholder."""
    if not image:
        return None
    if is_remote_image(image):
        return image if remote_images_allowed(remote_ok) else None
    try:
        path = Path(image).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if allowed_paths is None or not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
        return None
    if str(path) not in allowed_paths:
        allowed_paths.append(str(path))
    return FILE_ROUTE + quote(str(path), safe="/")


def remote_images_checkbox(default: bool) -> gr.Checkbox:
    """The switch (``#sa-remote-images``): shown but locked off in local-only mode."""
    offline = local_only()
    return gr.Checkbox(
        value=remote_images_allowed(default),
        label="Show product photos from the web",
        info="off in local-only mode" if offline else "your browser then loads them from other sites",
        interactive=not offline,
        elem_id="sa-remote-images",
    )
