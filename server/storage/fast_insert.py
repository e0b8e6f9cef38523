"""The inserts every call makes (its cards, their topics, its audit row), through the DBAPI cursor of the
caller's transaction.

SQLAlchemy Core spends ~100-150 us per execute on the 2-core machine (execution context, events, result set-up)
around an insert SQLite does in ~30 us, and a call made three: ~0.4 ms of a ~4 ms call. Here SQLAlchemy still
compiles the statement, once per (table, columns, dialect), so quoting and parameter style are the dialect's;
every value goes through its column type's bind processor, so what is stored is what Core would store; and a
database error is raised as SQLAlchemy's own (IntegrityError, OperationalError...), so callers and the app's
storage-error handler (503) see what they saw before. Only Core's per-execute machinery is skipped. The commit
stays the caller's transaction's: a Core Connection's, or on SQLite the call's own (call_transaction.py), which
gives the same two things these functions use, a dialect and the DBAPI connection.
"""
from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import UpdateBase

if TYPE_CHECKING:
    from server.storage.call_transaction import CursorTransaction

# (sql, positional, the values' order, a getter of a row's values in that order, (position, bind processor) of
# the columns that have one)
_Prepared = tuple[str, bool, tuple[str, ...], Callable[[dict[str, Any]], tuple[Any, ...]],
                  tuple[tuple[int, Callable[[Any], Any]], ...]]
_prepared: dict[tuple[str, tuple[str, ...], str], _Prepared] = {}


def _prepare(table: Table, columns: tuple[str, ...], dialect: Dialect) -> _Prepared:
    key = (table.name, columns, dialect.name)
    found = _prepared.get(key)
    if found is None:
        compiled = insert(table).values({name: bindparam(name) for name in columns}).compile(dialect=dialect)
        # positional styles (qmark, format) take a tuple in the statement's order; named ones a mapping
        order = tuple(compiled.positiontup or ()) if compiled.positional else columns
        processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order]
        if len(order) == 1:
            only = order[0]
            getter: Callable[[dict[str, Any]], tuple[Any, ...]] = lambda row: (row[only],)  # noqa: E731
        else:
            getter = itemgetter(*order)
        processed = tuple((position, processor) for position, processor in enumerate(processors) if processor)
        found = _prepared[key] = (str(compiled), bool(compiled.positional), order, getter, processed)
    return found


def insert_rows(connection: Connection | CursorTransaction, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows that all have the same columns, in `connection`'s transaction."""
    if not rows:
        return
    sql, positional, order, getter, processed = _prepare(table, tuple(rows[0]), connection.dialect)
    values: list[Any] = [getter(row) for row in rows]
    if processed:  # most columns have no bind processor on SQLite: only the others go through theirs
        values = _bound(values, processed)
    params: list[Any] = values if positional else [dict(zip(order, row, strict=True)) for row in values]
    _execute(connection, sql, params, lambda core: core.execute(insert(table), rows))


def _bound(values: list[tuple[Any, ...]], processed: tuple[tuple[int, Callable[[Any], Any]], ...]) -> list[Any]:
    """Each processed column's value through its processor; a value that is the very object of the row before
    (the cards' shared issued_at) takes that row's result (bind processors are pure conversions)."""
    bound_rows = []
    last: dict[int, tuple[Any, Any]] = {}
    for row in values:
        as_list = list(row)
        for position, processor in processed:
            value = as_list[position]
            seen = last.get(position)
            if seen is not None and seen[0] is value:
                as_list[position] = seen[1]
            else:
                as_list[position] = result = processor(value)
                last[position] = (value, result)
        bound_rows.append(tuple(as_list))
    return bound_rows


def execute_statement(connection: Connection | CursorTransaction, statement: UpdateBase) -> None:
    """A rare statement (a clean-up) through the same cursor: compiled by the dialect each time, its values bound
    by their types' processors, as Core would."""
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect)
    values = compiled.params
    order = tuple(compiled.positiontup or ()) if compiled.positional else tuple(values)
    bound = []
    for name in order:
        processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        bound.append(processor(values[name]) if processor else values[name])
    params = tuple(bound) if compiled.positional else dict(zip(order, bound, strict=True))
    _execute(connection, str(compiled), [params], lambda core: core.execute(statement))


def _execute(connection: Connection | CursorTransaction, sql: str, params: list[Any],
             through_core: Callable[[Connection], Any]) -> None:
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is None:  # pragma: no cover - a closed Core Connection (never a call's own): Core says why
        assert isinstance(connection, Connection)
        through_core(connection)
        return
    cursor = dbapi_connection.cursor()
    try:
        if len(params) == 1:
            cursor.execute(sql, params[0])
        else:
            cursor.executemany(sql, params)
    except connection.dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(sql, params, error, connection.dialect.loaded_dbapi.Error) from error
    finally:
        cursor.close()
