"""Expiry and erasure against a confirmation that commits between their read and their delete."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, select

from services.petitions import domain, signing, store
from shared.db import make_engine

PETITION = "p1"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'petitions.db'}")
    store.metadata.create_all(engine)
    yield engine
    engine.dispose()


def deps(engine: Engine) -> Any:
    return SimpleNamespace(engine=engine, config=SimpleNamespace(counter_shards=1))


def pending_signature(engine: Engine, email: str = "lin@example.org") -> int:
    """Insert a pending, already expired signature with a partner box; return its row id."""
    moment = datetime.now(UTC)
    with engine.begin() as conn:
        row_id = conn.execute(
            store.signatures.insert().values(
                signature_id=f"sig-{email}",
                petition_id=PETITION,
                email_hash=f"hash-{email}",
                supporter_id=f"sup-{email}",
                status=domain.PENDING,
                locale="en",
                email=email,
                given_name="Lin",
                consent_email=False,
                consent_sms=False,
                created_at=moment - timedelta(days=2),
                expires_at=moment - timedelta(days=1),
            )
        ).inserted_primary_key[0]
        store.add_partner_consent_rows(conn, [(PETITION, row_id, "org-p1")])
        store.bump(conn, PETITION, [("pending", "", 1)], 1)
    return int(row_id)


def confirm(engine: Engine, row_id: int) -> None:
    """What a confirmation does, committed by another transaction."""
    with engine.begin() as conn:
        assert store.confirm_signature(conn, row_id, datetime.now(UTC))
        store.bump(conn, PETITION, [("pending", "", -1), ("total", "", 1)], 1)


def signature(engine: Engine, row_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(store.signatures).where(store.signatures.c.id == row_id)).first()


def counts(engine: Engine) -> dict[str, dict[str, int]]:
    with engine.connect() as conn:
        return store.counts(conn, PETITION)


def test_deleting_a_pending_signature_spares_a_confirmed_one(engine: Engine) -> None:
    row_id = pending_signature(engine)
    confirm(engine, row_id)
    with engine.begin() as conn:
        assert store.delete_signature(conn, row_id, status=domain.PENDING) is False
    assert signature(engine, row_id).status == domain.CONFIRMED
    assert len(list(engine.connect().execute(select(store.partner_consents)))) == 1
    other = pending_signature(engine, "ana@example.org")
    with engine.begin() as conn:
        assert store.delete_signature(conn, other, status=domain.PENDING) is True
    assert signature(engine, other) is None


def test_expiry_keeps_a_signature_confirmed_after_it_was_read(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    row_id = pending_signature(engine)
    with engine.connect() as conn:
        stale = store.expired_pending(conn, datetime.now(UTC), 10)
    assert [row.status for row in stale] == [domain.PENDING]
    confirm(engine, row_id)
    monkeypatch.setattr(store, "expired_pending", lambda *_: stale)

    signing.expire_unconfirmed(deps(engine))

    assert signature(engine, row_id).status == domain.CONFIRMED
    assert counts(engine) == {"pending": {"": 0}, "total": {"": 1}}


def test_erasure_scrubs_a_signature_confirmed_after_it_was_read(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    row_id = pending_signature(engine)
    with engine.connect() as conn:
        stale = store.signatures_of_person(conn, "sup-lin@example.org", None)
    confirm(engine, row_id)
    monkeypatch.setattr(store, "signatures_of_person", lambda *_: stale)

    with engine.begin() as conn:
        signing.erase_person(deps(engine), conn, "sup-lin@example.org", None)

    row = signature(engine, row_id)
    assert row.status == domain.ERASED
    assert all(getattr(row, name) is None for name in store.PERSONAL_COLUMNS)
    assert row.email_hash is None and row.supporter_id is None
    assert counts(engine) == {"pending": {"": 0}, "total": {"": 1}}
    assert list(engine.connect().execute(select(store.partner_consents))) == []
