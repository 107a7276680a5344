"""``python -m shopping_assistant`` = the ``shopping-assistant`` console command."""

import sys

from shopping_assistant.cli import main

sys.exit(main())
