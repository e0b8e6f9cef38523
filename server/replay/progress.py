"""Progress bars for the long developer commands (replay, request-from-bundle over a folder or an export): on a
terminal only, on stderr, so a piped or logged run gets the plain lines and nothing else."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None = None, unit: str, desc: str) -> Iterator[T]:
    # disable=None: tqdm itself turns the bar off when stderr is not a TTY. The size is asked once, with a
    # fallback: a terminal that reports 0 x 0 (a fresh pty, some CI consoles) would make tqdm hide the bar.
    size = _terminal_size()
    return iter(tqdm(items, total=total, unit=unit, desc=desc, file=sys.stderr, disable=None, leave=False,
                     ncols=min(size.columns, 120), nrows=size.lines))


def _terminal_size() -> os.terminal_size:
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        size = os.terminal_size((0, 0))
    return os.terminal_size((size.columns or 100, size.lines or 20))


def note(message: str) -> None:
    """A line on stderr that does not break a bar being drawn."""
    tqdm.write(message, file=sys.stderr)
