"""Command line for chaos; the full command set arrives with its issue."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def cli(argv: Sequence[str] | None = None) -> int:
    print("chaos: not implemented yet (see the project issues)", file=sys.stderr)
    return 2


def main() -> None:
    sys.exit(cli())
