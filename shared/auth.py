"""API keys: issued by campaigns, honoured by every service through its own projection.

A key is shown once and stored only as its SHA-256 (keys carry 256 random bits, so the hash
cannot be reversed). Each service keeps a `kinship_api_keys` table: campaigns writes it when it
issues or revokes a key, the others fill it from `apikey.issued` / `apikey.revoked` events.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar, cast

from flask import g, request
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.cache import TtlCache
from shared.errors import PermissionDenied, Unauthenticated
from shared.events import Event
from shared.events.catalog import type_name
from shared.events.envelope import parse_time

ROLES = ("admin", "organizer", "partner")
API_KEYS_TABLE = "kinship_api_keys"
KEY_PREFIX = "kin"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Principal:
    """Who is calling: one key, one role, one organization."""

    key_id: str
    role: str
    organization_id: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: `secret` is shown once and never stored."""

    key_id: str
    secret: str
    prefix: str
    key_hash: str


def api_keys_table(metadata: MetaData) -> Table:
    if API_KEYS_TABLE in metadata.tables:
        return metadata.tables[API_KEYS_TABLE]
    return Table(
        API_KEYS_TABLE,
        metadata,
        Column("key_id", String(64), primary_key=True),
        Column("prefix", String(32), nullable=False),
        Column("key_hash", String(64), nullable=False, unique=True),
        Column("role", String(16), nullable=False),
        Column("organization_id", String(64), nullable=False, index=True),
        Column("issued_at", DateTime(timezone=True), nullable=False),
        Column("revoked_at", DateTime(timezone=True)),
    )


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_key(role: str) -> NewKey:
    """Generate a key whose visible prefix says its role, e.g. kin_org_3fa9c2…"""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    visible = f"{KEY_PREFIX}_{role[:3]}_{secrets.token_hex(4)}"
    secret = f"{visible}_{secrets.token_urlsafe(32)}"
    return NewKey(
        key_id=secrets.token_hex(8), secret=secret, prefix=visible, key_hash=hash_key(secret)
    )


def _upsert(conn: Connection, table: Table, row: Mapping[str, Any], update: bool = False) -> None:
    """Insert row; on a key_id already there, change nothing, or (update) all but revoked_at."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).values(**row)
    if update:
        kept = {name: statement.excluded[name] for name in row if name != "key_id"}
        conn.execute(statement.on_conflict_do_update(index_elements=[table.c.key_id], set_=kept))
    else:
        conn.execute(statement.on_conflict_do_nothing(index_elements=[table.c.key_id]))


def store_issued(conn: Connection, table: Table, data: Mapping[str, Any]) -> None:
    """Record an issued key (idempotent); it fills in a revoked placeholder but keeps it revoked.

    apikey.issued may arrive after apikey.revoked (it failed once and went to a retry topic):
    the revocation left a placeholder row, and revoked_at is never cleared here.
    """
    _upsert(
        conn,
        table,
        {
            "key_id": data["key_id"],
            "prefix": data["prefix"],
            "key_hash": data["key_hash"],
            "role": data["role"],
            "organization_id": data["organization_id"],
            "issued_at": parse_time(data["at"]) if isinstance(data["at"], str) else data["at"],
        },
        update=True,
    )


def store_revoked(conn: Connection, table: Table, key_id: str, at: datetime) -> None:
    conn.execute(
        update(table)
        .where(table.c.key_id == key_id, table.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )


def store_revoked_event(conn: Connection, table: Table, data: Mapping[str, Any]) -> None:
    """Apply apikey.revoked; for a key not known yet, keep a revoked placeholder row.

    Its apikey.issued may still come (from a retry topic, after this): it then fills in the
    placeholder, which stays revoked, instead of inserting the key as active.
    """
    at = parse_time(data["at"])
    store_revoked(conn, table, data["key_id"], at)
    placeholder = {
        "key_id": data["key_id"],
        "prefix": "",
        # Unique, and never a SHA-256 hex digest (':'), so no presented key can match it.
        "key_hash": f"revoked:{hashlib.sha256(data['key_id'].encode()).hexdigest()[:56]}",
        "role": "",
        "organization_id": data["organization_id"],
        "issued_at": at,
        "revoked_at": at,
    }
    _upsert(conn, table, placeholder)


def projection_handlers(table: Table) -> dict[str, list[Callable[[Event, Connection], None]]]:
    """Consumer handlers that keep a service's key projection current."""

    def on_issued(event: Event, conn: Connection) -> None:
        store_issued(conn, table, event.data)

    def on_revoked(event: Event, conn: Connection) -> None:
        store_revoked_event(conn, table, event.data)

    return {type_name("apikey.issued"): [on_issued], type_name("apikey.revoked"): [on_revoked]}


class KeyVerifier:
    """Looks keys up by hash, with a cache short enough that revocation lands within seconds."""

    def __init__(self, engine: Engine, table: Table, ttl: float = 1.0) -> None:
        self.engine = engine
        self.table = table
        self.cache: TtlCache[str, Principal | None] = TtlCache(ttl)

    def verify(self, secret: str) -> Principal | None:
        digest = hash_key(secret)
        return self.cache.get(digest, lambda: self._look_up(digest))

    def _look_up(self, digest: str) -> Principal | None:
        table = self.table
        with self.engine.connect() as conn:
            row = conn.execute(
                select(table.c.key_id, table.c.role, table.c.organization_id).where(
                    table.c.key_hash == digest, table.c.revoked_at.is_(None)
                )
            ).first()
        return Principal(row.key_id, row.role, row.organization_id) if row else None


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def current_principal(verifier: KeyVerifier) -> Principal:
    """Return the caller's principal, or raise 401."""
    cached = g.get("kinship_principal")
    if cached is not None:
        return cast(Principal, cached)
    token = bearer_token()
    if token is None:
        raise Unauthenticated("An API key is required: Authorization: Bearer <key>")
    principal = verifier.verify(token)
    if principal is None:
        raise Unauthenticated("The API key is unknown or revoked")
    g.kinship_principal = principal
    return principal


def require_role(
    verifier_of: Callable[[], KeyVerifier], roles: Sequence[str] = ROLES
) -> Callable[[F], F]:
    """Decorate a view so only keys of the given roles reach it (401 without key, 403 else)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal(verifier_of())
            if principal.role not in roles:
                raise PermissionDenied(f"This action needs a {' or '.join(roles)} key")
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def authorize(
    principal: Principal,
    organization_ids: Iterable[str],
    roles: Sequence[str] = ROLES,
    action: str = "do this",
) -> None:
    """Raise 403 unless the caller is an admin or holds one of roles in one of the organizations.

    The one authorization rule every service shares: a key acts only for its own organization,
    and an admin key acts for the platform. Pass the organizations that may act on the resource
    (a campaign's lead; its lead and partners for reading; an endpoint's owner).
    """
    if principal.is_admin:
        return
    if principal.role not in roles:
        raise PermissionDenied(f"A {principal.role} key cannot {action}")
    if principal.organization_id not in set(organization_ids):
        raise PermissionDenied(f"This key's organization cannot {action}")
