"""Database engines for PostgreSQL (production, tests) and SQLite (the embedded local run)."""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    DateTime,
    Engine,
    Integer,
    String,
    Text,
    TypeDecorator,
    any_,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.types import TypeEngine

from shared.logging import error_text

T = TypeVar("T")

log = logging.getLogger(__name__)

# A pooled connection idle for longer than this is tested before use (see ping_when_idle).
IDLE_PING_SECONDS = 1.0

# A BIGINT primary key that SQLite still treats as its auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def ident(length: int) -> TypeEngine[str]:
    """The type of an identifier column (ids, keyed hashes, channel names): on PostgreSQL
    COLLATE "C", so its index compares bytes instead of going through the locale's rules,
    which mean nothing for an id. A million-row index's lookups and inserts took 9 % less of
    PostgreSQL's CPU for a dispatch batch (docs/runtime-facts.md). SQLite compares bytes
    already."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class Moment(TypeDecorator[datetime]):
    """A UTC timestamp that comes back time-zone aware on SQLite too (it stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps must be time-zone aware")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return aware(value) if value is not None else None


def aware(moment: datetime) -> datetime:
    """Return a stored UTC time as time-zone aware (SQLite hands back naive datetimes)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def make_engine(url: str, *, pool_size: int = 5, echo: bool = False) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and a folder for its file."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        pooled: dict[str, Any] = {}
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # A file's pool is sized as a server's: SQLAlchemy's default (5 and 10 overflow)
            # was less than a notifications worker's threads hold at once.
            pooled = {"pool_size": pool_size, "max_overflow": pool_size}
        engine = create_engine(
            url, echo=echo, connect_args={"timeout": 30}, hide_parameters=True, **pooled
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # hide_parameters: error messages must not quote the personal data a statement carried.
    engine = create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        hide_parameters=True,
    )
    ping_when_idle(engine)
    return engine


def ping_when_idle(engine: Engine, idle: float = IDLE_PING_SECONDS) -> None:
    """Test a pooled connection before use when it sat unused for longer than `idle` seconds.

    pool_pre_ping tests every checkout: one more round trip for each transaction, which on a
    busy service was a sixth of a text message's database time and one of a signature's nine
    round trips. A connection that served a moment ago is as good as its last statement; one
    that sat idle (across a PostgreSQL restart, say) is tested, and replaced if dead, before a
    request or a batch gets it. A server lost between two busy transactions fails the one
    transaction, as a loss during it always could.
    """

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < idle:
            return  # a fresh connection, or one in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError("pooled connection is dead") from exc  # the pool retries


def json_param(values: Sequence[Any]) -> str:
    """Pass a list to PostgreSQL as one JSON parameter; read it with json_array_elements[_text].

    psycopg adapts a Python list parameter element by element in Python (about 1.5 us each);
    orjson writes the whole list in C and the server parses it in C (about 0.4 us each). Rows
    go as lists (``r->>0``, ``r->>1``, ...): read them with jsonb_array_elements, since each
    ``->>`` on a ``json`` (text) value parses the row again (a ledger row: 15.3 µs of
    PostgreSQL CPU to insert that way, 14.0 from jsonb).
    """
    return orjson.dumps(values).decode()


def one_of(conn: Connection, column: Any, values: Iterable[Any]) -> Any:
    """Return `column IN values`; on PostgreSQL as one parameter, cheap to plan and send.

    Strings go as one JSON text (shared.db.json_param): psycopg adapts a list of them element
    by element in Python, 2 ms for a dispatch batch's 1,000 ids, four times a batch.
    """
    items = list(values)
    if conn.dialect.name != "postgresql":
        return column.in_(items)
    if isinstance(column.type, String):
        # = ANY(ARRAY(SELECT ...)): one array for an index scan; an IN (SELECT ...) semi-join
        # made settling a batch's 1,000 rows cost twice as much in PostgreSQL.
        listed = cast(bindparam(None, json_param(items), type_=Text), JSON)
        array = func.array(select(func.json_array_elements_text(listed)).scalar_subquery())
        return column == any_(type_coerce(array, ARRAY(String)))
    return column == any_(bindparam(None, items, type_=ARRAY(column.type)))


_PYFORMAT = re.compile(r"%\((\w+)\)s")


def raw(conn: Connection, sql: str, params: Mapping[str, Any]) -> Any:
    """Run hot-path SQL (psycopg's %(name)s style) on the driver, in conn's transaction (or in
    autocommit, when conn is in it); return the driver's cursor.

    SQLAlchemy spent more of the client's CPU than the statement itself on a hot statement:
    binding a multi-row upsert, or running a text message's one-statement settle (225-277 µs
    on a held connection against 92-127 µs here, docs/runtime-facts.md). Column names in sql
    come from the caller's code, never from input. SQLite gets times written the way SQLAlchemy
    stores them there (naive UTC text), so SQLAlchemy reads them back alike.
    """
    driver = conn.connection.driver_connection
    assert driver is not None
    if conn.dialect.name != "postgresql":
        sql = _sqlite_sql(sql)
        params = {k: _sqlite_time(v) if isinstance(v, datetime) else v for k, v in params.items()}
    return driver.execute(sql, params)


def _sqlite_time(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(" ")


@functools.lru_cache(maxsize=64)
def _sqlite_sql(sql: str) -> str:
    return _PYFORMAT.sub(r":\1", sql)


# SQLSTATEs that mean the server went away rather than that the statement failed: class 08
# (connection exception) and the shutdowns of class 57 (57014, a cancelled statement, is not).
_SERVER_GONE = ("57P01", "57P02", "57P03")


def is_connection_error(exc: BaseException) -> bool:
    """Return True when the database itself is unreachable (as opposed to a bad statement).

    psycopg's OperationalError also covers a statement cancelled by a timeout, a lock timeout,
    a full disk, a deadlock: taken for an outage, an event that fails that way every time was
    retried for ever at the database's pace, its partition stalled, never dead-lettered. Only
    an error with no server answer (refused, reset, closed) or a connection SQLSTATE counts.
    """
    cause: BaseException | None = exc
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        cause = exc.orig
    import psycopg

    if not isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    state = getattr(cause, "sqlstate", None)
    return state is None or state.startswith("08") or state in _SERVER_GONE


# SQLSTATEs of a statement that may well succeed when tried again, whatever it was: a
# serialization failure or deadlock, a lock or statement timeout, insufficient resources
# (class 53: too many connections, out of memory or disk).
_TRY_AGAIN = ("40001", "40P01", "55P03", "57014", "53")


def is_transient_error(exc: BaseException) -> bool:
    """Return True for a database error that says nothing about the work that met it: the
    database unreachable (is_connection_error), a deadlock, a timeout, no connection free in
    the pool, SQLite's file locked. Work that fails so may be tried again however often;
    any other error may be the work's own, and is worth counting."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if is_connection_error(exc) or isinstance(exc, PoolTimeout):
        return True
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    state = str(getattr(cause, "sqlstate", None) or "")
    if state and state.startswith(_TRY_AGAIN):
        return True
    import sqlite3

    return isinstance(cause, sqlite3.OperationalError) and "locked" in str(cause)


def aborted_by_the_database(exc: BaseException) -> bool:
    """Return True when PostgreSQL aborted a transaction to let others go on (a deadlock, a
    serialization failure): nothing of it was done, and it may simply run again."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    return str(getattr(cause, "sqlstate", None) or "") in ("40001", "40P01")


def in_transaction(engine: Engine, work: Callable[[Connection], T], attempts: int = 3) -> T:
    """Run work(conn) in a transaction of its own, again (up to attempts in all) when the
    database aborts it to let others go on (a request then answers instead of failing)."""
    for attempt in range(1, attempts + 1):
        try:
            with engine.begin() as conn:
                return work(conn)
        except DBAPIError as exc:
            if attempt == attempts or not aborted_by_the_database(exc):
                raise
    raise AssertionError("unreachable")


_last_unready: dict[int, str] = {}


def database_ready(engine: Engine) -> bool:
    """Return True when a trivial query succeeds; say why not in the log when that changes
    (a readiness probe asks every second or so)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - not ready, whatever the cause
        reason = error_text(exc, 300)
        if _last_unready.get(id(engine)) != reason:
            _last_unready[id(engine)] = reason
            log.warning("database not ready", extra={"error": reason})
        return False
    if _last_unready.pop(id(engine), None) is not None:
        log.info("database ready again")
    return True
