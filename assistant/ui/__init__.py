"""Chat web UI pieces: pure renderers, the per-dataset engine registry and the gradio app."""

from __future__ import annotations
