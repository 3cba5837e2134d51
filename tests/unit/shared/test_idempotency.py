"""shared.idempotency on SQLite: replay, a different request, a request still running, expiry."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request
from sqlalchemy import MetaData, insert, select, update

from shared.auth import Principal
from shared.db import make_engine
from shared.events.envelope import utcnow
from shared.idempotency import ExpiredKeys, forget_expired, idempotency_table, idempotent
from shared.web import register_error_handlers


class Verifier:
    def verify(self, token: str) -> Principal | None:
        return Principal(key_id=token, role="admin", organization_id="org")


def idempotency_app(tmp_path: Path) -> tuple[Any, Any, Flask]:
    """An engine with the idempotency table, and a Flask app with the error handlers."""
    engine = make_engine(f"sqlite:///{tmp_path / 'idem.db'}")
    metadata = MetaData()
    table = idempotency_table(metadata, "test_idempotency_keys")
    metadata.create_all(engine)
    app = Flask(__name__)
    register_error_handlers(app)
    return engine, table, app


HASH_KEY = "test-hash-key"


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    engine, table, app = idempotency_app(tmp_path)
    calls: list[Any] = []

    @app.post("/things")
    @idempotent(lambda: (engine, Verifier(), table, HASH_KEY))
    def create() -> Any:
        calls.append(request.get_json())
        if request.get_json().get("fail"):
            return {"error": "no"}, 400
        return {"n": len(calls)}, 201

    yield engine, table, app.test_client(), calls
    engine.dispose()


def post(client: Any, body: dict[str, Any], key: str | None, api_key: str = "k1") -> Any:
    headers = {"Authorization": f"Bearer {api_key}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post("/things", json=body, headers=headers)


def test_a_retry_replays_and_a_different_request_is_refused(setup: Any) -> None:
    engine, table, client, calls = setup
    first = post(client, {"a": 1}, "x")
    again = post(client, {"a": 1}, "x")
    assert first.status_code == again.status_code == 201 and len(calls) == 1
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    other = post(client, {"a": 2}, "x")
    assert other.status_code == 422 and "Idempotency-Key" in other.get_json()["errors"]
    assert post(client, {"a": 2}, "x", api_key="k2").status_code == 201  # scoped per API key
    assert post(client, {"a": 1}, None).status_code == 201 and len(calls) == 3
    failed = post(client, {"fail": True}, "y")
    assert failed.status_code == 400 and post(client, {"fail": True}, "y").status_code == 400
    assert len(calls) == 5  # a failure keeps nothing: the retry ran again


def test_a_kept_record_cannot_be_matched_to_a_guessed_request(setup: Any) -> None:
    """An erasure by email is kept 24 h: without the service's hash key, guessing the address
    and hashing the request must not confirm it."""
    engine, table, client, _ = setup
    response = client.post(
        "/things",
        data=b'{"email":"mei@example.org"}',
        headers={"Authorization": "Bearer k1", "Idempotency-Key": "x"},
        content_type="application/json",
    )
    assert response.status_code == 201
    with engine.connect() as conn:
        kept = conn.execute(select(table.c.fingerprint)).scalar_one()
    guess = hashlib.sha256(b'POST /things?\n{"email":"mei@example.org"}').hexdigest()
    assert kept != guess and "mei" not in kept
    assert len(kept) == 64  # the column holds it: a retry still finds its record


def test_in_progress_is_a_conflict_until_abandoned(setup: Any) -> None:
    engine, table, client, calls = setup
    post(client, {"a": 1}, "x")
    with engine.begin() as conn:  # as if the first request were still running
        conn.execute(update(table).values(status_code=None, body=None))
    assert post(client, {"a": 1}, "x").status_code == 409
    with engine.begin() as conn:  # ... or had died two minutes ago
        conn.execute(update(table).values(created_at=utcnow() - timedelta(minutes=2)))
    taken = post(client, {"a": 1}, "x")
    assert taken.status_code == 201 and "Idempotent-Replayed" not in taken.headers
    assert len(calls) == 2


def test_forget_expired_keeps_a_day(setup: Any) -> None:
    engine, table, _, _ = setup
    with engine.begin() as conn:
        for key, age in (("old", timedelta(hours=25)), ("new", timedelta(hours=23))):
            conn.execute(
                insert(table).values(
                    key_id="k", idempotency_key=key, fingerprint="f", created_at=utcnow() - age
                )
            )
    assert forget_expired(engine, table) == 1
    with engine.connect() as conn:
        assert list(conn.execute(select(table.c.idempotency_key)).scalars()) == ["new"]


def test_expired_keys_are_forgotten_at_most_once_per_period(setup: Any) -> None:
    engine, table, _, _ = setup
    now = [1000.0]
    housekeeping = ExpiredKeys(engine, table, every=3600.0, clock=lambda: now[0])

    def add_old(key: str) -> None:
        with engine.begin() as conn:
            conn.execute(
                insert(table).values(
                    key_id="k",
                    idempotency_key=key,
                    fingerprint="f",
                    created_at=utcnow() - timedelta(hours=25),
                )
            )

    add_old("first")
    assert housekeeping.forget_if_due() == 1
    add_old("second")
    now[0] += 3599.0
    assert housekeeping.forget_if_due() == 0  # within the hour: no query at all
    now[0] += 1.0
    assert housekeeping.forget_if_due() == 1


def test_a_commit_on_another_database_marks_nothing_there(tmp_path: Path) -> None:
    """The commit hook marks the served request's record on its own database only: a view
    that also writes elsewhere (where no such table exists) must commit there as before."""
    engine, table, app = idempotency_app(tmp_path)
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with other.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (n INTEGER)")

    @app.post("/both")
    @idempotent(lambda: (engine, Verifier(), table, HASH_KEY))
    def both() -> Any:
        from shared.idempotency import install

        install(other)  # hooked too, as a second service's engine would be
        with other.begin() as conn:
            conn.exec_driver_sql("INSERT INTO notes VALUES (1)")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS things (n INTEGER)")
        return {"ok": True}, 201

    client = app.test_client()
    answer = post_to(client, "/both", "z")
    assert answer.status_code == 201
    with other.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM notes").scalar_one() == 1
    assert post_to(client, "/both", "z").headers["Idempotent-Replayed"] == "true"
    other.dispose()
    engine.dispose()


def post_to(client: Any, path: str, key: str) -> Any:
    headers = {"Authorization": "Bearer k1", "Idempotency-Key": key}
    return client.post(path, json={}, headers=headers)


def test_a_request_a_retry_took_over_commits_nothing(tmp_path: Path) -> None:
    """A claim that looks abandoned is taken over by a retry (by the clock of the host that
    looks, which may run ahead). If the first request was only slow, its effect must not
    commit after the retry's: two campaigns, two erasures."""
    import threading

    from sqlalchemy import text

    engine, table, app = idempotency_app(tmp_path)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE effects (n INTEGER)"))

    def retry_takes_over() -> None:  # another thread: another request, with its own claim
        with engine.begin() as conn:
            conn.execute(update(table).values(created_at=utcnow() + timedelta(seconds=1)))

    @app.post("/slow")
    @idempotent(lambda: (engine, Verifier(), table, HASH_KEY))
    def slow() -> Any:
        other = threading.Thread(target=retry_takes_over)
        other.start()
        other.join()
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO effects VALUES (1)"))
        return {"ok": True}, 201

    headers = {"Authorization": "Bearer k1", "Idempotency-Key": "slow-1"}
    response = app.test_client().post("/slow", json={}, headers=headers)
    assert response.status_code == 409 and "taken over" in response.get_data(as_text=True)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM effects")).scalar() == 0
        kept = conn.execute(select(table)).all()
    assert len(kept) == 1 and kept[0].status_code is None  # the retry's claim is left alone
    engine.dispose()
