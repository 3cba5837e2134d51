"""Idempotency-Key for creating POSTs: a retried request gets the first one's response.

Every service that honours the header keeps its records in a table made by idempotency_table()
in its own metadata, and decorates its views with idempotent(services), where services()
returns the service's engine, key verifier, that table and its hash key. A record keeps only a
keyed hash of the request it answered: the request may name a person (an erasure by email), and
an unkeyed hash of it could be confirmed by guessing the address.

The key is scoped to the API key that sent it. Only successful responses are kept: a request
that failed changed nothing (its transaction rolled back), so retrying it is safe. The view's
own transaction marks the record APPLIED as it commits (an engine commit hook): a first request
that took effect but never kept its response (its process died, its database went away) is
answered 409 on a retry, never run a second time. A key reused
with a different request is refused (422); a retry while the first is still running gets 409.
Records are kept for KEPT_FOR; the service's housekeeping loop calls ExpiredKeys.forget_if_due().
A view whose response holds something that must never be stored (an API key's secret: shown
once, stored only as a hash) passes `redact`: those fields are overwritten before the body is
kept, so a replay answers without them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response, make_response, request
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    event,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from shared.auth import KeyVerifier, current_principal
from shared.db import Moment
from shared.errors import Conflict, FieldError
from shared.events.envelope import utcnow
from shared.pacing import Periodic
from shared.privacy import keyed_hash

F = TypeVar("F", bound=Callable[..., Any])
HEADER = "Idempotency-Key"
# On a replay's answer: the response is the first request's, kept.
REPLAYED = "Idempotent-Replayed"
# A first request that never finished (its process died) stops blocking retries after this.
ABANDONED_AFTER = timedelta(minutes=1)
KEPT_FOR = timedelta(hours=24)
# status_code of a record whose request took effect (committed) but whose response is not kept.
APPLIED = 0

# The record of the request being served on this thread, while its view runs (with the engine
# of its database: a commit on another database marks nothing).
_serving: ContextVar[tuple[Engine, Table, str, str, datetime] | None] = ContextVar(
    "idempotency", default=None
)
_hook_lock = threading.Lock()


def _mark_applied(conn: Connection) -> None:
    """Commit hook: mark the record of the request being served APPLIED in the transaction
    that commits its effect; refuse the commit if a retry has taken the claim over since.

    A claim is taken over when it looks abandoned (ABANDONED_AFTER, by the clock of the host
    that looks). A request that was only slow, or met a host whose clock ran ahead, would
    otherwise commit its effect after the retry had made it too.
    """
    serving = _serving.get()
    if serving is None:
        return
    engine, table, key_id, idem, claimed_at = serving
    if conn.engine.pool is not engine.pool:
        return
    ours = conn.execute(
        update(table)
        .where(
            *_claimed(table, key_id, idem, claimed_at),
            or_(table.c.status_code.is_(None), table.c.status_code == APPLIED),
        )
        .values(status_code=APPLIED)
    )
    if ours.rowcount != 1:
        raise Conflict(
            "A retry with this Idempotency-Key took this request over: nothing was changed",
            {HEADER: ["taken over"]},
        )


def _claimed(table: Table, key_id: str, idem: str, claimed_at: datetime) -> tuple[Any, ...]:
    """The conditions of a record still held by the claim made at claimed_at."""
    return (
        table.c.key_id == key_id,
        table.c.idempotency_key == idem,
        table.c.created_at == claimed_at,
    )


def install(engine: Engine) -> None:
    """Hook an engine's commits to mark the record of the request being served. A service
    calls it as it builds its app (the decorator does too, for an engine first met there):
    listening starts before requests do. A decorated view must make its effect in one
    transaction, on the thread serving the request."""
    if event.contains(engine, "commit", _mark_applied):
        return
    with _hook_lock:
        if not event.contains(engine, "commit", _mark_applied):
            event.listen(engine, "commit", _mark_applied)


REPLAY_DOC = (
    "Retry safely: the same key and request return the first response (kept 24 h), with the"
    " header Idempotent-Replayed: true; the same key with another request is a 422 naming"
    " Idempotency-Key"
)


def header_doc(max_length: int = 255, description: str = REPLAY_DOC) -> dict[str, Any]:
    """Return the OpenAPI description of the Idempotency-Key header, for a view's doc."""
    return {
        "parameters": [
            {
                "in": "header",
                "name": HEADER,
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": max_length},
                "description": description,
            }
        ]
    }


DOC = header_doc()

Services = Callable[[], tuple[Engine, KeyVerifier, Table, str]]


def idempotency_table(metadata: MetaData, name: str = "idempotency_keys") -> Table:
    """Define the idempotency records table in a service's metadata."""
    return Table(
        name,
        metadata,
        Column("key_id", String(64), primary_key=True),  # the API key that sent the request
        Column("idempotency_key", String(255), primary_key=True),
        Column("fingerprint", String(64), nullable=False),
        Column("status_code", Integer),  # NULL while the first request is in progress
        Column("body", Text),
        Column("created_at", Moment(), nullable=False, index=True),
    )


def request_fingerprint(hash_key: str) -> str:
    """A keyed hash of the request as sent (method, path, query and body bytes): a retry sends
    the same bytes, while a fingerprint of the parsed arguments would change with any default a
    later release adds, and answer a retry across a deploy with a 422."""
    request_line = f"{request.method} {request.full_path}\n".encode()
    return keyed_hash(hash_key, "idempotency", request_line + request.get_data(cache=True))


def idempotent(services: Services, redact: Mapping[str, Any] | None = None) -> Callable[[F], F]:
    """Decorate a creating view so an Idempotency-Key header makes retries safe.

    redact: top-level fields of the JSON response body to overwrite (or add) with these values
    in the kept record, for fields that must never be stored; a replay answers the redacted body.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            idem = request.headers.get(HEADER)
            if idem is None:
                return view(*args, **kwargs)
            if not 1 <= len(idem) <= 255 or "\x00" in idem:
                raise FieldError(HEADER, "Use 1 to 255 characters (no NUL).")
            engine, verifier, table, hash_key = services()
            install(engine)
            key_id = current_principal(verifier).key_id
            replay, claimed_at = _claim(engine, table, key_id, idem, request_fingerprint(hash_key))
            if replay is not None:
                return replay
            claim = (engine, table, key_id, idem, claimed_at)
            serving = _serving.set(claim)
            try:
                response = make_response(view(*args, **kwargs))
            except BaseException:
                _serving.reset(serving)
                _release(*claim)
                raise
            _serving.reset(serving)
            if response.status_code < 300:
                _keep(*claim, response, redact)
            else:
                _release(*claim)
            return response

        return cast(F, wrapper)

    return decorate


def _claim(
    engine: Engine, table: Table, key_id: str, idem: str, fingerprint: str
) -> tuple[Response | None, datetime]:
    """Claim the key for this request (and return when: the claim's token), or return the
    stored response to replay."""
    now = utcnow()
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(table).values(
                    key_id=key_id, idempotency_key=idem, fingerprint=fingerprint, created_at=now
                )
            )
        return None, now
    except IntegrityError:
        pass
    mine = (table.c.key_id == key_id, table.c.idempotency_key == idem)
    with engine.begin() as conn:
        row = conn.execute(select(table).where(*mine)).first()
        if row is None:  # released between our insert and this read: the caller may retry
            raise Conflict("A request with this Idempotency-Key just failed; retry it")
        if row.fingerprint != fingerprint:
            raise FieldError(HEADER, "This key was used for a different request.")
        if row.status_code == APPLIED:
            raise Conflict(
                "A request with this Idempotency-Key took effect, but its answer was lost: "
                "look the result up instead of retrying",
                {HEADER: ["applied"]},
            )
        if row.status_code is None:
            if now - row.created_at < ABANDONED_AFTER:
                raise Conflict("A request with this Idempotency-Key is still in progress")
            taken = conn.execute(
                update(table)
                .where(*mine, table.c.created_at == row.created_at)
                .values(created_at=now)
            )
            if taken.rowcount != 1:
                raise Conflict("A request with this Idempotency-Key is still in progress")
            return None, now
    response = Response(row.body, status=row.status_code, mimetype="application/json")
    response.headers[REPLAYED] = "true"
    return response, now


def _keep(
    engine: Engine,
    table: Table,
    key_id: str,
    idem: str,
    claimed_at: datetime,
    response: Response,
    redact: Mapping[str, Any] | None = None,
) -> None:
    body = response.get_data(as_text=True)
    if redact:
        kept = response.get_json(silent=True)
        if not isinstance(kept, dict):  # nothing we can redact: keep nothing rather than leak
            _release(engine, table, key_id, idem, claimed_at)
            return
        body = json.dumps({**kept, **redact})
    with engine.begin() as conn:
        conn.execute(
            update(table)
            .where(*_claimed(table, key_id, idem, claimed_at))
            .values(status_code=response.status_code, body=body)
        )


def _release(engine: Engine, table: Table, key_id: str, idem: str, claimed_at: datetime) -> None:
    """Forget a claim whose request took no effect (a record marked APPLIED stays, and so does
    the claim of a retry that took this one over)."""
    with engine.begin() as conn:
        conn.execute(
            delete(table).where(
                *_claimed(table, key_id, idem, claimed_at), table.c.status_code.is_(None)
            )
        )


class ExpiredKeys(Periodic):
    """Forgets a table's expired records at most once per `every` seconds (call it from a loop)."""

    def __init__(
        self,
        engine: Engine,
        table: Table,
        every: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(lambda: forget_expired(engine, table), every, clock)
        self.engine = engine
        self.table = table

    def forget_if_due(self) -> int:
        """Forget expired records if the last time was `every` seconds ago; return how many."""
        return self.run_if_due()


def forget_expired(engine: Engine, table: Table) -> int:
    """Delete idempotency records older than KEPT_FOR; return how many."""
    with engine.begin() as conn:
        result = conn.execute(delete(table).where(table.c.created_at < utcnow() - KEPT_FOR))
    return result.rowcount
