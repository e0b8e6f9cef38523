"""One service call computes at a time in a worker process; a call waiting on a network answer lets go.

A worker runs several threads (gunicorn gthread, server/run/gunicorn_conf.py) so that a slow FHIR server holds a
thread, never the process. But a call is CPU work under one GIL: two calls computing at once in one process
take turns every 5 ms switch interval and finish later than one after the other (bench, one worker, 50
resources: 176 req/s with one connection, 148 with two). So a call computes holding this process's slot, and
lets go of it while it waits on a FHIR server or a key server (`waiting_on_the_network`), when another call's
computing costs it nothing. Holding is per thread: letting go in a thread that does not hold the slot (a
fetch thread, a test calling a helper directly) does nothing.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_slot = threading.Lock()
_held = threading.local()


def _holding() -> bool:
    return getattr(_held, "holding", False)


class _Computing:
    """The slot held from `with` to its end, let go however the block ends. A class, not a generator context
    manager (~0.7 against ~3 us: the generator, its frame and contextlib's wrapper are made for every call)."""

    __slots__ = ("_took",)

    def __enter__(self) -> None:
        self._took = not _holding()
        if self._took:
            _slot.acquire()
            _held.holding = True

    def __exit__(self, *_exc: object) -> None:
        if self._took:
            _held.holding = False
            _slot.release()


def computing() -> _Computing:
    """Hold the slot for the call (re-entrant within a thread: an inner `computing` is a no-op)."""
    return _Computing()


@contextmanager
def waiting_on_the_network() -> Iterator[None]:
    """Let go of the slot while this thread waits on a remote answer, and take it back after."""
    if not _holding():
        yield
        return
    _held.holding = False
    _slot.release()
    try:
        yield
    finally:
        _slot.acquire()
        _held.holding = True
