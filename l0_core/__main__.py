"""``python -m l0_core``: the ``l0`` command."""

from __future__ import annotations

import sys

from l0_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
