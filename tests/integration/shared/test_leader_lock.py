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
