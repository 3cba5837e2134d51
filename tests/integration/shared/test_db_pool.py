"""Pooled PostgreSQL connections: tested before use only after sitting idle."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import psycopg
import pytest
from sqlalchemy import event, text

import shared.db
from shared.db import make_engine, ping_when_idle


def _backend_pid(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(admin_url: str, pid: int) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_connection_killed_while_idle_is_replaced_before_use(
    database_url: str, pg_admin_url: str
) -> None:
    engine = make_engine(database_url, pool_size=1)
    ping_when_idle(engine, idle=0.0)  # every checkout counts as idle here
    killed = _backend_pid(engine)
    _terminate(pg_admin_url, killed)

    # The caller never sees the dead connection: the ping finds it and the pool reconnects.
    assert _backend_pid(engine) != killed
    engine.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pool's clock moves a millisecond between looks: "a moment ago" however slow the
    # machine is (a real stall over the 1 s idle limit would rightly cost a ping).
    ticks = itertools.count()
    monkeypatch.setattr(shared.db, "time", SimpleNamespace(monotonic=lambda: next(ticks) / 1000))
    engine = make_engine(database_url, pool_size=1)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    pings: list[object] = []
    original = engine.dialect.do_ping
    engine.dialect.do_ping = lambda conn: pings.append(conn) or original(conn)  # type: ignore[method-assign]
    for _ in range(5):
        _backend_pid(engine)

    assert pings == []  # five transactions, no extra round trip before any of them
    assert len(statements) == 5
    engine.dispose()
