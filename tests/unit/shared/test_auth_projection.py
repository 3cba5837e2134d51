"""The key projection other services keep: a revocation is never undone by a late issue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, Table, select

from shared.auth import KeyVerifier, api_keys_table, generate_key, projection_handlers
from shared.db import make_engine
from shared.events import Event
from shared.events.catalog import type_name


@pytest.fixture
def projection(tmp_path: Path) -> Iterator[tuple[Engine, Table]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    metadata = MetaData()
    table = api_keys_table(metadata)
    metadata.create_all(engine)
    yield engine, table
    engine.dispose()


def apply(engine: Engine, table: Table, short: str, data: dict[str, Any]) -> None:
    event = Event(type=type_name(short), key=data["organization_id"], data=data, source="/t")
    with engine.begin() as conn:
        for handler in projection_handlers(table)[event.type]:
            handler(event, conn)


def events_of_a_key() -> tuple[str, dict[str, Any], dict[str, Any]]:
    new = generate_key("organizer")
    issued = {
        "key_id": new.key_id,
        "prefix": new.prefix,
        "key_hash": new.key_hash,
        "role": "organizer",
        "organization_id": "org-1",
        "at": "2026-11-29T10:00:00Z",
    }
    revoked = {"key_id": new.key_id, "organization_id": "org-1", "at": "2026-11-29T10:00:03Z"}
    return new.secret, issued, revoked


def test_a_revocation_applied_before_its_issue_keeps_the_key_revoked(
    projection: tuple[Engine, Table],
) -> None:
    engine, table = projection
    secret, issued, revoked = events_of_a_key()
    apply(engine, table, "apikey.revoked", revoked)  # the issue is waiting in a retry topic
    apply(engine, table, "apikey.issued", issued)
    apply(engine, table, "apikey.issued", issued)  # and is redelivered once more
    with engine.connect() as conn:
        row = conn.execute(select(table)).one()
    assert row.key_hash == issued["key_hash"] and row.role == "organizer"
    assert row.revoked_at is not None
    assert KeyVerifier(engine, table, ttl=0).verify(secret) is None


def test_issue_then_revoke_in_order_and_redelivered(projection: tuple[Engine, Table]) -> None:
    engine, table = projection
    secret, issued, revoked = events_of_a_key()
    verifier = KeyVerifier(engine, table, ttl=0)
    apply(engine, table, "apikey.issued", issued)
    assert verifier.verify(secret) is not None
    apply(engine, table, "apikey.revoked", revoked)
    apply(engine, table, "apikey.revoked", revoked)
    apply(engine, table, "apikey.issued", issued)
    assert verifier.verify(secret) is None
    with engine.connect() as conn:
        assert len(conn.execute(select(table)).all()) == 1
