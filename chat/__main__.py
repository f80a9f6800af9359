"""`python -m chat`: the same as the `chat` command."""

from __future__ import annotations

import sys

from chat.cli import main

if __name__ == "__main__":
    sys.exit(main())
