"""The leader lock of the relay and the alert expander (a PostgreSQL advisory lock)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from shared.db import make_engine
from shared.relay import AdvisoryLock

pytestmark = pytest.mark.integration


def test_a_leader_whose_transaction_failed_still_gives_the_lock_up(database_url: str) -> None:
    """A database error in the leader's last batch leaves its session's transaction aborted.
    Released then, the unlock was refused and the connection went back to the pool still
    holding the lock: every relay waited as a standby until the pool recycled it."""
    engine = make_engine(database_url, pool_size=1)
    other = make_engine(database_url)
    lock = AdvisoryLock("test-leader")
    try:
        with engine.connect() as leader:
            assert lock.try_acquire(leader)
            with pytest.raises(ProgrammingError):
                leader.execute(text("SELECT * FROM no_such_table"))
            lock.release(leader)
        with engine.connect():  # the pool's one connection, back in use: still the leader?
            with other.connect() as standby:  # another process's relay
                assert lock.try_acquire(standby)
                lock.release(standby)
    finally:
        engine.dispose()
        other.dispose()


def test_a_leader_whose_host_vanished_frees_the_lock_within_a_minute(database_url: str) -> None:
    """A leader's host powered off or cut off: its socket is never closed, and the server
    learns the session is gone only when TCP gives up, two hours by default, the standbys
    waiting all that time (no event published). The leader's session asks the server to probe
    it after 10 s idle, every 5 s, 3 times, and to give up on unacknowledged data after 25 s."""
    engine = make_engine(database_url, pool_size=1)
    lock = AdvisoryLock("test-keepalive")
    try:
        with engine.connect() as leader:
            assert lock.try_acquire(leader)
            shown = {
                name: leader.execute(text(f"SHOW {name}")).scalar()
                for name in ("tcp_keepalives_idle", "tcp_keepalives_interval",
                             "tcp_keepalives_count", "tcp_user_timeout")
            }  # fmt: skip
            lock.release(leader)
    finally:
        engine.dispose()
    assert shown == {
        "tcp_keepalives_idle": "10",
        "tcp_keepalives_interval": "5",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "25000",
    }
