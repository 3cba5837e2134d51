"""Idempotency-Key for creating POSTs: a retried request gets the first one's response.

The key is scoped to the API key that sent it. Only successful responses are kept: a request
that failed changed nothing (its transaction rolled back), so retrying it is safe. A key reused
with a different request is refused (422); a retry while the first is still running gets 409.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response, make_response, request
from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import IntegrityError

from services.campaigns import store
from shared.auth import KeyVerifier, current_principal
from shared.errors import Conflict, FieldError
from shared.events.envelope import utcnow

F = TypeVar("F", bound=Callable[..., Any])
HEADER = "Idempotency-Key"
# A first request that never finished (its process died) stops blocking retries after this.
ABANDONED_AFTER = timedelta(minutes=1)
KEPT_FOR = timedelta(hours=24)
DOC = {
    "parameters": [
        {
            "in": "header",
            "name": HEADER,
            "required": False,
            "schema": {"type": "string", "maxLength": 255},
            "description": "Retry safely: the same key returns the first response (24 h)",
        }
    ]
}


def _fingerprint() -> str:
    digest = hashlib.sha256(f"{request.method} {request.full_path}\n".encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def idempotent(services: Callable[[], tuple[Engine, KeyVerifier]]) -> Callable[[F], F]:
    """Decorate a creating view so an Idempotency-Key header makes retries safe."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            idem = request.headers.get(HEADER)
            if idem is None:
                return view(*args, **kwargs)
            if not 1 <= len(idem) <= 255:
                raise FieldError(HEADER, "Use 1 to 255 characters.")
            engine, verifier = services()
            principal = current_principal(verifier)
            replay = _claim(engine, principal.key_id, idem, _fingerprint())
            if replay is not None:
                return replay
            try:
                response = make_response(view(*args, **kwargs))
            except BaseException:
                _release(engine, principal.key_id, idem)
                raise
            if response.status_code < 300:
                _keep(engine, principal.key_id, idem, response)
            else:
                _release(engine, principal.key_id, idem)
            return response

        return cast(F, wrapper)

    return decorate


def _claim(engine: Engine, key_id: str, idem: str, fingerprint: str) -> Response | None:
    """Claim the key for this request, or return the stored response to replay."""
    now = utcnow()
    table = store.idempotency_keys
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(table).values(
                    key_id=key_id, idempotency_key=idem, fingerprint=fingerprint, created_at=now
                )
            )
        return None
    except IntegrityError:
        pass
    with engine.begin() as conn:
        row = store.idempotent_response(conn, key_id, idem)
        if row is None:  # released between our insert and this read: the caller may retry
            raise Conflict("A request with this Idempotency-Key just failed; retry it")
        if row.fingerprint != fingerprint:
            raise FieldError(HEADER, "This key was used for a different request.")
        if row.status_code is None:
            if now - row.created_at < ABANDONED_AFTER:
                raise Conflict("A request with this Idempotency-Key is still in progress")
            taken = conn.execute(
                update(table)
                .where(
                    table.c.key_id == key_id,
                    table.c.idempotency_key == idem,
                    table.c.created_at == row.created_at,
                )
                .values(created_at=now)
            )
            if taken.rowcount != 1:
                raise Conflict("A request with this Idempotency-Key is still in progress")
            return None
    response = Response(row.body, status=row.status_code, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _keep(engine: Engine, key_id: str, idem: str, response: Response) -> None:
    table = store.idempotency_keys
    with engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.key_id == key_id, table.c.idempotency_key == idem)
            .values(status_code=response.status_code, body=response.get_data(as_text=True))
        )


def _release(engine: Engine, key_id: str, idem: str) -> None:
    table = store.idempotency_keys
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.key_id == key_id, table.c.idempotency_key == idem))


def forget_expired(engine: Engine) -> int:
    """Delete idempotency records older than a day; return how many."""
    table = store.idempotency_keys
    with engine.begin() as conn:
        result = conn.execute(delete(table).where(table.c.created_at < utcnow() - KEPT_FOR))
    return result.rowcount
