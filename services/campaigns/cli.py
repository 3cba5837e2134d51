"""`kinship keys`: issue, list and revoke API keys from the shell (bootstraps a fresh install)."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from shared.auth import ROLES


def _deps() -> Any:
    """Migrate the campaigns database and wire the service (imports stay lazy for the CLI)."""
    from services.campaigns.bootstrap import build
    from shared.migrate import upgrade

    deps = build()
    upgrade("campaigns", deps.settings.database_url)
    return deps


def _fail(message: str) -> NoReturn:
    click.echo(f"kinship keys: {message}", err=True)
    sys.exit(1)


def _checked(schema: Any, data: dict[str, Any], options: dict[str, str]) -> None:
    """Load data with an API schema; on bad input, fail naming the command's options."""
    from marshmallow import ValidationError

    try:
        schema.load(data)
    except ValidationError as exc:
        messages: dict[str, Any] = exc.normalized_messages()  # type: ignore[no-untyped-call]
        _fail(
            "; ".join(f"{options.get(k, k)}: {' '.join(map(str, v))}" for k, v in messages.items())
        )


@click.group()
def keys() -> None:
    """API keys: admin (platform), organizer or partner, each scoped to one organization."""


@keys.command("create")
@click.option("--org", "slug", required=True, help="The organization's slug.")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--create-org", is_flag=True, help="Create the organization if it does not exist.")
@click.option("--name", default=None, help="A label for the key (who or what holds it).")
@click.option("--org-name", default=None, help="The new organization's name (--create-org).")
def create(slug: str, role: str, create_org: bool, name: str | None, org_name: str | None) -> None:
    """Issue a key and print it: it is shown this once and stored only as a hash."""
    from services.campaigns import operations, store
    from services.campaigns import schemas as s
    from shared.errors import DomainError

    # The API's own checks (lengths, no NUL): the command takes nothing the API would refuse.
    options = {"organization": "--org", "role": "--role", "name": "--name"}
    _checked(s.KeyIn(), {"organization": slug, "role": role, "name": name}, options)
    if create_org:
        org = {"slug": slug, "name": org_name or slug}
        _checked(s.OrganizationIn(), org, {"slug": "--org", "name": "--org-name"})
    deps = _deps()
    now = deps.clock()
    try:
        with deps.engine.begin() as conn:
            org = store.lock_organization(conn, slug)
            if org is None and not create_org:
                _fail(f"no organization {slug!r} (add --create-org to create it)")
            if org is None:
                data = {"slug": slug, "name": org_name or slug}
                org = operations.insert_organization(conn, deps.outbox, data, now)
                click.echo(f"Created organization {org.slug} ({org.organization_id})", err=True)
            new = operations.insert_key(
                conn, deps.outbox, org.organization_id, role, name, "cli", now
            )
    except DomainError as exc:
        _fail(exc.message)
    click.echo(f"Key {new.key_id} ({role}, {slug}), prefix {new.prefix}. Shown once:", err=True)
    click.echo(new.secret)


@keys.command("list")
@click.option("--org", "slug", required=True, help="The organization's slug.")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
def list_keys(slug: str, include_revoked: bool) -> None:
    """List an organization's keys (ids and prefixes; secrets are never stored)."""
    from services.campaigns import store

    deps = _deps()
    with deps.engine.connect() as conn:
        org = store.organization(conn, slug)
        if org is None:
            _fail(f"no organization {slug!r}")
        rows = conn.execute(store.keys_query(org.organization_id, include_revoked)).all()
    for row in rows:
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        click.echo(f"{row.key_id}  {row.prefix}  {row.role:<9}  {state}  {row.name or ''}".rstrip())


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key: every service refuses it within seconds (once the worker relays it)."""
    from services.campaigns import operations, store

    deps = _deps()
    with deps.engine.begin() as conn:
        row = store.key(conn, key_id, lock="update")  # the key, then its organization
        if row is None:
            _fail(f"no key {key_id!r}")
        operations.mark_revoked(conn, deps.outbox, row, deps.clock())
    click.echo(f"Key {key_id} revoked.")
