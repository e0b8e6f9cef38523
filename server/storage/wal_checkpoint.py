"""SQLite WAL checkpoints off the request path.

In WAL mode a commit appends to the -wal file and, with synchronous=NORMAL, does not wait for the disk; the wait
comes at the checkpoint that copies the WAL back into the database (two fsyncs). SQLite's automatic checkpoint
runs inside the commit that crosses 1,000 pages, so one call in ~80 paid ~15-20 ms for it (bench: p99 20 ms at
50 resources, p50 6 ms). Here one daemon thread per process checkpoints (PASSIVE: never blocks a writer) every
database written to in the last CHECKPOINT_EVERY_SECONDS, and the automatic checkpoint stays only as a backstop at
BACKSTOP_PAGES, should that thread be stopped. Durability is the same: a committed transaction is in the WAL,
which survives a crash of the process and is replayed on the next open (https://sqlite.org/wal.html).
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from urllib.parse import quote

from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger("hemoptysis_cds.storage")

CHECKPOINT_EVERY_SECONDS = 1.0
BACKSTOP_PAGES = 20_000  # ~80 MB of WAL (4 KiB pages): reached only if the checkpoint thread does not run


class _Checkpointer:
    """One thread per process (started on the first commit in that process, so a forked worker starts its own)
    serving every SQLite engine that committed since its last pass."""

    def __init__(self) -> None:
        self._dirty: weakref.WeakSet[Engine] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._dirty_lock = threading.Lock()  # request threads add while this thread takes: a set is not safe for that
        self._wake = threading.Event()
        self._pid: int | None = None
        self._passing = False
        self.passes = 0  # checkpoints made in this process (tests read it)

    def committed(self, engine: Engine) -> None:
        if self._pid != os.getpid():
            self._start()
        elif self._wake.is_set() and engine in self._dirty:
            # already marked for a pass not yet begun (the thread clears the wake, then takes the set): that pass
            # sees this commit too. Marking again took a lock and the Event's Condition, ~6 us of every call
            return
        with self._dirty_lock:
            self._dirty.add(engine)
        self._wake.set()

    def pending(self) -> bool:
        return self._passing or len(self._dirty) > 0

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._wake = threading.Event()
            self._dirty = weakref.WeakSet()
            threading.Thread(target=self._run, name="sqlite-wal-checkpoint", daemon=True).start()

    def _run(self) -> None:
        wake = self._wake
        pause = threading.Event()  # never set: a sleep
        while True:
            wake.wait()
            pause.wait(CHECKPOINT_EVERY_SECONDS)  # the commits of the next second go in one pass
            wake.clear()
            self._passing = True
            engines: list[Engine] = []
            try:
                with self._dirty_lock:
                    engines = list(self._dirty)
                    self._dirty.clear()
                self._checkpoint_each(engines)
            finally:
                # no strong reference to an engine kept between passes, and none left once the pass reads as
                # over: settle() returned while this list still held engines, so a test's gc.collect() found
                # them alive and their files open
                engines.clear()
                self._passing = False

    def _checkpoint_each(self, engines: list[Engine]) -> None:
        for engine in engines:  # the loop's name for the last engine ends with this frame
            self.checkpoint(engine)

    def checkpoint(self, engine: Engine) -> None:
        database = engine.url.database
        if not database or database == ":memory:" or not os.path.exists(database):
            return  # removed (a test's temporary database): opening it would only fail, and leave a traceback
        try:
            # its own connection, opened read-write but never creating: a database removed meanwhile is not made
            # again, empty, by this thread (it did: the bench's temporary directory could not be removed)
            connection = sqlite3.connect(f"file:{quote(os.path.abspath(database))}?mode=rw", uri=True, timeout=0)
        except sqlite3.Error:
            return
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.passes += 1
        except sqlite3.Error:  # busy, or the database gone meanwhile: the backstop remains
            log.debug("WAL checkpoint skipped", exc_info=True)
        finally:
            connection.close()


_checkpointer = _Checkpointer()


def checkpoint_in_background(engine: Engine) -> None:
    """For a SQLite file engine: the automatic checkpoint moved to its backstop, and each commit marks the engine
    for the checkpoint thread."""

    @event.listens_for(engine, "connect")
    def _backstop(dbapi_connection, _record):  # pragma: no cover - exercised through every test
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        cursor.close()

    @event.listens_for(engine, "commit")
    def _mark(_connection):
        _checkpointer.committed(engine)

    _in_background.add(engine)


_in_background: weakref.WeakSet[Engine] = weakref.WeakSet()


def note_commit(engine: Engine) -> None:
    """A commit made on the engine's DBAPI connection, not through Core (call_transaction.py): Core's commit event
    does not see it, so the checkpoint thread is told here."""
    if engine in _in_background:
        _checkpointer.committed(engine)


def checkpoints_made() -> int:
    return _checkpointer.passes


def settle(timeout: float = 5.0) -> bool:
    """Wait until no database waits for a checkpoint and none is being made (tests that count what one call
    leaves behind: a pass over an earlier test's engine would be counted with it). True when settled."""
    deadline = time.monotonic() + timeout
    while _checkpointer.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _checkpointer.pending()
