"""The one way the scripts report bad input: ``SCRIPT: error: MESSAGE`` on stderr, status 2."""

import sys
from typing import Callable

BAD_INPUT = (OSError, ValueError)


def exit_status(script: str, action: Callable[[], None]) -> int:
    """Runs ``action()``; returns 0, or 2 after printing ``script: error: ...`` when it
    raised one of :data:`BAD_INPUT` (a missing or unreadable file, a malformed value)."""
    try:
        action()
    except BAD_INPUT as error:
        print(f"{script}: error: {error}", file=sys.stderr)
        return 2
    return 0
