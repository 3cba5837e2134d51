"""Which database errors are an outage (wait for it) and which are the event's (retry, then
dead-letter it)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors
from sqlalchemy.exc import OperationalError as WrappedOperationalError

from shared.db import is_connection_error, make_engine
from tests.support.postgres import free_port


def wrapped(orig: BaseException) -> WrappedOperationalError:
    return WrappedOperationalError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("connection refused"),  # no server answered at all
        psycopg.InterfaceError("the connection is closed"),
        errors.lookup("08006")("connection failure"),
        errors.AdminShutdown("terminating connection due to administrator command"),
    ],
)
def test_a_lost_connection_is_an_outage(error: BaseException) -> None:
    assert is_connection_error(wrapped(error))
    assert is_connection_error(error)


@pytest.mark.parametrize(
    "error",
    [
        errors.QueryCanceled("canceling statement due to statement timeout"),
        errors.LockNotAvailable("could not obtain lock"),
        errors.DiskFull("could not extend file"),
        errors.DeadlockDetected("deadlock detected"),
        errors.ProgramLimitExceeded("index row size exceeds maximum"),
        errors.UniqueViolation("duplicate key"),
    ],
)
def test_a_statement_that_fails_is_not_an_outage(error: BaseException) -> None:
    # Taken for an outage, an event that fails this way every time stalled its partition for
    # ever instead of being retried a few times and dead-lettered.
    assert not is_connection_error(wrapped(error))
    assert not is_connection_error(error)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (errors.QueryCanceled("canceling statement due to statement timeout"), True),
        (errors.LockNotAvailable("could not obtain lock"), True),
        (errors.DeadlockDetected("deadlock detected"), True),
        (errors.SerializationFailure("could not serialize access"), True),
        (errors.TooManyConnections("too many clients already"), True),
        (errors.DiskFull("could not extend file"), True),
        (psycopg.OperationalError("connection refused"), True),
        (errors.UniqueViolation("duplicate key"), False),
        (errors.StringDataRightTruncation("value too long"), False),
        (ValueError("a fault of ours"), False),
    ],
)
def test_work_is_given_up_only_for_errors_that_may_be_its_own(
    error: BaseException, transient: bool
) -> None:
    """A dispatch batch that fails by an error of its own is given up after a few tries, its
    recipients failed: a deadlock or a timeout under load must not cost them their alert."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from shared.db import is_transient_error

    assert is_transient_error(wrapped(error) if isinstance(error, psycopg.Error) else error) is (
        transient
    )
    assert is_transient_error(PoolTimeout("QueuePool limit reached"))


def test_a_database_that_cannot_be_reached_is_named_once_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A wrong host or port and a network blip looked alike: the log now says what the driver
    said, once per change (a readiness probe asks every second), addresses masked as in
    every log line."""
    from shared.db import database_ready

    port = free_port()
    engine = make_engine(f"postgresql+psycopg://kinship@127.0.0.1:{port}/nowhere")
    with caplog.at_level("WARNING", logger="shared.db"):
        assert database_ready(engine) is False
        assert database_ready(engine) is False
    [said] = [r for r in caplog.records if r.getMessage() == "database not ready"]
    reason = said.error  # type: ignore[attr-defined]
    assert f"port {port}" in reason and "refused" in reason.lower()
    engine.dispose()


def test_a_transaction_the_database_aborted_to_break_a_deadlock_runs_again() -> None:
    """An erasure can deadlock with a consumer batch holding the person's rows (writers of
    the deletions list take turns): PostgreSQL aborts one, and the request runs again
    instead of answering 500. Any other error is not retried."""
    import contextlib

    from sqlalchemy.exc import DBAPIError

    from shared.db import in_transaction

    class Refused(Exception):
        def __init__(self, sqlstate: str) -> None:
            self.sqlstate = sqlstate

    class Engine:
        def __init__(self, failures: list[str]) -> None:
            self.failures = failures
            self.runs = 0

        @contextlib.contextmanager
        def begin(self) -> Any:
            self.runs += 1
            yield "conn"
            if self.failures:
                raise DBAPIError("COMMIT", {}, Refused(self.failures.pop(0)))

    deadlocked = Engine(["40P01"])
    assert in_transaction(deadlocked, lambda conn: conn + "!") == "conn!"  # type: ignore[arg-type]
    assert deadlocked.runs == 2
    broken = Engine(["23505"])  # a unique violation: the work's own fault
    with pytest.raises(DBAPIError):
        in_transaction(broken, lambda conn: conn)  # type: ignore[arg-type]
    assert broken.runs == 1
    endless = Engine(["40P01"] * 5)
    with pytest.raises(DBAPIError):
        in_transaction(endless, lambda conn: conn)  # type: ignore[arg-type]
    assert endless.runs == 3
