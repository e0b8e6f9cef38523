"""The one transaction of a guarded call (its cards, its audit row, its token's jti), on SQLite straight on the
pooled DBAPI connection.

SQLAlchemy's Connection and Transaction objects (connect, begin, the commit's events and bookkeeping, close) and
the pool's checkout and checkin cost ~75 us of a ~240 us call transaction on the 2-core machine, around inserts
and a commit SQLite makes in ~100 us. The call's writes are cursor inserts already (fast_insert.py), so on SQLite
here they run on the pool's DBAPI connection itself: the pool hands it out (its connect events and PRAGMAs
unchanged) and the call keeps it for the next one (HeldConnections); the sqlite3 module still opens the
transaction before the first insert (as under Core, which sends no BEGIN for pysqlite either); the commit is
sqlite3's, at the synchronous level the connection was opened with, before the answer as before. Every database
error is raised as SQLAlchemy's own class (OperationalError, IntegrityError...), so the app's storage-error
handler (503) and the replayed-jti check see what they saw.

Other databases (PostgreSQL) keep Core's Connection: there its pre-ping, disconnect detection and invalidation
matter, and the per-call cost is the network's. A writer that needs Core statements (the feedback check) asks for
Core on every database (`core=True`).
"""
from __future__ import annotations

import weakref
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError, StatementError

from server.storage.wal_checkpoint import note_commit


class CursorTransaction:
    """What the cursor writers (fast_insert.insert_rows) use of a Connection: its dialect and its DBAPI
    connection (`connection.dbapi_connection`, the pool's own record of it)."""

    __slots__ = ("dialect", "connection")

    def __init__(self, dialect: Dialect, pooled: Any):
        self.dialect = dialect
        self.connection = pooled


class HeldConnections:
    """A SQLite engine's DBAPI connections kept between call transactions, each with no transaction open
    (committed or rolled back). Each is made by the engine's pool (its connect events, the PRAGMAs) and detached
    from it: it takes no slot of the pool, and no reference from outside the engine keeps it (a checked-out one
    is held by SQLAlchemy's registry of those, which kept every engine of the test suite and its files open). At
    most MOST kept, about what a worker's calls commit at once (a service call computes alone: cpu_slot.py); more
    are closed. Dropped when the engine is disposed (new connect events then apply). Like the pool's, they
    belong to the process that opened them: the app is made in each worker after the fork (gunicorn_conf.py sets
    no preload_app), never before."""

    MOST = 2

    def __init__(self) -> None:
        self.idle: list[Any] = []

    def take(self, engine: Engine) -> tuple[Any, list[Any]]:
        idle = self.idle
        while idle:
            try:
                pooled = idle.pop()
            except IndexError:  # another thread took the last one
                break
            if pooled.is_valid:
                return pooled, idle
        pooled = engine.raw_connection()  # made by the pool, with its connect events (the PRAGMAs)
        pooled.detach()  # then ours: the pool's slot is free again, and nothing outside this engine holds it
        return pooled, idle

    def give_back(self, pooled: Any, taken_from: list[Any]) -> None:
        if taken_from is self.idle and len(taken_from) < self.MOST and pooled.is_valid:
            taken_from.append(pooled)
        else:
            pooled.close()  # closed: a detached connection is not the pool's

    def dropped_with(self, _engine: Engine) -> None:
        idle, self.idle = self.idle, []
        for pooled in idle:
            pooled.close()


# engine -> its HeldConnections, weakly both ways: the engine owns them (its disposed-event listener holds them),
# and they hold its pool, whose listeners hold the engine; a strong value here kept every engine, its connections
# and their files open for good.
_held: weakref.WeakKeyDictionary[Engine, weakref.ref[HeldConnections]] = weakref.WeakKeyDictionary()


def _held_for(engine: Engine) -> HeldConnections:
    found = _held.get(engine)
    held = found() if found is not None else None
    if held is None:
        held = HeldConnections()
        event.listen(engine, "engine_disposed", held.dropped_with)
        _held[engine] = weakref.ref(held)
    return held


def _as_sqlalchemy_error(error: Exception, dialect: Dialect) -> StatementError:
    return DBAPIError.instance(None, None, error, dialect.loaded_dbapi.Error)


class _SqliteCallTransaction:
    """call_transaction on SQLite: a class, not a generator context manager (~0.7 against ~3 us a call)."""

    __slots__ = ("_engine", "_dialect", "_held", "_pooled", "_taken_from")

    def __init__(self, engine: Engine):
        self._engine = engine
        self._dialect = engine.dialect

    def __enter__(self) -> CursorTransaction:
        dialect = self._dialect
        self._held = held = _held_for(self._engine)
        try:
            self._pooled, self._taken_from = held.take(self._engine)
        except dialect.loaded_dbapi.Error as error:
            raise _as_sqlalchemy_error(error, dialect) from error
        return CursorTransaction(dialect, self._pooled)

    def __exit__(self, _type: Any, error: BaseException | None, _traceback: Any) -> None:
        dialect, pooled = self._dialect, self._pooled
        dbapi_error = dialect.loaded_dbapi.Error
        try:
            if error is None:
                try:
                    pooled.dbapi_connection.commit()
                except BaseException as failure:
                    _roll_back(pooled, dbapi_error)
                    if isinstance(failure, dbapi_error):  # the commit's own failure
                        raise _as_sqlalchemy_error(failure, dialect) from failure
                    raise
            else:
                _roll_back(pooled, dbapi_error)
                if isinstance(error, dbapi_error):  # a raw DBAPI error of the block (an insert's is SQLAlchemy's)
                    raise _as_sqlalchemy_error(error, dialect) from error
                return  # the block's own exception goes on
        finally:
            self._held.give_back(pooled, self._taken_from)  # no transaction open on it now
        note_commit(self._engine)


def _roll_back(pooled: Any, dbapi_error: type[Exception]) -> None:
    try:
        pooled.dbapi_connection.rollback()
    except dbapi_error:  # the connection is unusable: the pool makes a new one
        pooled.invalidate()


def call_transaction(engine: Engine, core: bool = False) -> AbstractContextManager[Connection | CursorTransaction]:
    """A transaction committed on a clean exit and rolled back on any exception; Core's unless on SQLite."""
    if core or engine.dialect.name != "sqlite":
        return engine.begin()  # a context manager itself: the connection is taken on entering it
    return _SqliteCallTransaction(engine)
