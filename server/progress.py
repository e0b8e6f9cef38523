"""Progress bars for the long developer commands (replay, request-from-bundle over a folder or an export): on a
terminal only, on stderr, so a piped or logged run gets the plain lines and nothing else."""
from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None = None, unit: str, desc: str) -> Iterator[T]:
    # disable=None: tqdm itself turns the bar off when stderr is not a TTY
    return iter(tqdm(items, total=total, unit=unit, desc=desc, file=sys.stderr, disable=None, leave=False,
                     dynamic_ncols=True))


def note(message: str) -> None:
    """A line on stderr that does not break a bar being drawn."""
    tqdm.write(message, file=sys.stderr)
