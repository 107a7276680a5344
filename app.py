"""Chat web UI for the shopping assistant: ``python app.py [--dataset NAME_OR_PATH ...]``.

A thin wrapper kept for the README's first command; the code lives in ``assistant.ui.launch`` so
an installed wheel starts the same UI with ``shopping-assistant ui``.
"""

import sys

from assistant.ui.launch import create_app, main, make_registry, parse_args

__all__ = ["create_app", "main", "make_registry", "parse_args"]

if __name__ == "__main__":
    sys.exit(main())
