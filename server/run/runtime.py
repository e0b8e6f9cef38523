"""Process-wide tuning, done once per worker process by the server that owns the process (server/cli.py's gunicorn
hooks, the bench), never by create_app: building an app (tests build hundreds) must not retune the interpreter.

Why tune at all: CPython's default first-generation threshold (700 allocations) makes parsing a 5,000-resource
chart (~400,000 objects) run ~600 young and several full collections that find nothing (JSON has no cycles).

Why bounded: the earlier thresholds (50,000, 20, 100) put up to 100 million allocations between two full
collections, so the reference cycles a call does leave (an exception kept with its traceback) piled up across
calls: a worker answering 50,000-entry bodies grew by hundreds of MB per call. Now a full collection comes at
most every 50,000 x 10 x 10 = 5 million allocations (CPython also waits until a quarter of the long-lived objects
are new), and a worker collects once after any large request, when it is idle anyway.
"""
from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 10, 10)
# A request body above this is followed by a full collection in the worker (a few ms once the request's objects
# are gone; such a request takes ~100 ms or more).
COLLECT_AFTER_BYTES = 4 * 1024 * 1024


def tune_garbage_collector() -> None:
    """Move everything alive after start-up (modules, models, tables) out of the collector's sight, and
    collect young objects less often. Reference counting still frees request data at once."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def collect_after_large_request(content_length: str | int | None) -> bool:
    """A full collection after a large request (called once the answer is sent). True when one was made."""
    try:
        size = int(content_length or 0)
    except (TypeError, ValueError):
        return False
    if size < COLLECT_AFTER_BYTES:
        return False
    gc.collect()
    return True
