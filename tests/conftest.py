"""Session-wide real dependencies: PostgreSQL and Apache Kafka, started once if not given."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import ThrowawayPostgres, create_database, free_ports, wait_for


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres | None]:
    """The throwaway cluster (None when KINSHIP_TEST_DATABASE_URL names a server)."""
    if os.environ.get("KINSHIP_TEST_DATABASE_URL"):
        yield None
        return
    cluster = ThrowawayPostgres()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def pg_admin_url(postgres: ThrowawayPostgres | None) -> str:
    url = os.environ.get("KINSHIP_TEST_DATABASE_URL") or (postgres.admin_url if postgres else "")
    wait_for(url)
    return url


@pytest.fixture
def database_url(pg_admin_url: str) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return create_database(pg_admin_url)


@pytest.fixture(scope="session")
def local_kafka() -> Iterator[object]:
    """A real single-node Kafka for the session, or None when KINSHIP_TEST_KAFKA is given."""
    if os.environ.get("KINSHIP_TEST_KAFKA"):
        yield None
        return
    from shared.local_kafka import LocalKafka

    home = Path(tempfile.mkdtemp(prefix="kinship-kafka-"))
    port, controller_port = free_ports(2)
    broker = LocalKafka(home, port=port, controller_port=controller_port, heap="512m")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(local_kafka: object) -> str:
    if local_kafka is None:
        return os.environ["KINSHIP_TEST_KAFKA"]
    return local_kafka.bootstrap  # type: ignore[attr-defined, no-any-return]
