"""``python -m textdecade`` (also what torchrun launches)."""

import sys

from textdecade.cli import main

sys.exit(main())
