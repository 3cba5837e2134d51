"""Each service's migrations build exactly the schema its code declares, on both databases,
and come down and go up again cleanly (what `kinship migrate` runs on every deploy)."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from shared.db import make_engine
from shared.migrate import alembic_config

pytestmark = pytest.mark.integration

SERVICES = ["campaigns", "petitions", "notifications"]


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return str(request.getfixturevalue("database_url"))


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_the_declared_schema_and_step_down_and_up(
    service: str, database: str
) -> None:
    config = alembic_config(service, database)
    command.upgrade(config, "head")
    # Raises when the tables, columns, indexes or constraints the code declares differ.
    command.check(config)
    revisions = list(ScriptDirectory.from_config(config).walk_revisions())
    if len(revisions) > 1:
        command.downgrade(config, "-1")  # the newest migration's way back
        command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_give_columns_the_collation_the_code_declares(
    service: str, database_url: str
) -> None:
    # alembic's check does not compare collations: each column's must be the declared one
    # (None: the database's default).
    metadata = importlib.import_module(f"services.{service}.store").metadata
    dialect = postgresql.dialect()
    declared = {
        (table.name, column.name): getattr(column.type.dialect_impl(dialect), "collation", None)
        for table in metadata.tables.values()
        for column in table.columns
    }
    assert "C" in declared.values() or service != "notifications"
    config = alembic_config(service, database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")  # then every migration, in order, on an empty schema
    command.upgrade(config, "head")
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT table_name, column_name, collation_name FROM information_schema.columns"
                    " WHERE table_schema = current_schema()"
                )
            ).all()
    finally:
        engine.dispose()
    actual = {(t, c): collation for t, c, collation in rows}
    assert {key: actual.get(key) for key in declared} == declared


def test_signatures_made_before_phone_hashes_get_theirs(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An erasure by phone must reach signatures made before the column existed."""
    from shared.privacy import phone_hash

    monkeypatch.setenv("KINSHIP_HASH_KEY", "migration-test-key")
    config = alembic_config("petitions", database)
    command.upgrade(config, "0003_parked_events")
    engine = make_engine(database)
    with engine.begin() as conn:
        for i, phone in enumerate(["+14155552671", None]):
            conn.execute(
                text(
                    "INSERT INTO signatures (signature_id, petition_id, email_hash, status,"
                    " locale, phone, discreet, consent_email, consent_sms, created_at)"
                    " VALUES (:sid, 'p', :hash, 'confirmed', 'en', :phone, false, false, false,"
                    " CURRENT_TIMESTAMP)"
                ),
                {"sid": f"s{i}", "hash": f"h{i}", "phone": phone},
            )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        hashes = dict(
            (row[0], row[1])
            for row in conn.execute(text("SELECT signature_id, phone_hash FROM signatures"))
        )
    assert hashes == {"s0": phone_hash("migration-test-key", "+14155552671"), "s1": None}


def test_unconfirmed_signatures_made_before_phone_hashes_get_theirs(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.privacy import phone_hash

    monkeypatch.setenv("KINSHIP_HASH_KEY", "migration-test-key")
    config = alembic_config("notifications", database)
    command.upgrade(config, "0014_pending_signatures")
    engine = make_engine(database)
    pending = '{"person": {"email": "a@example.org", "phone": "415 555 2671", "country": "US"}}'
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO nf_signatures (signature_id, supporter_id, petition_id,"
                " organization_id, consents, confirmed, pending)"
                " VALUES ('s0', 'sup', 'p', 'o', '{}', false, :pending)"
            ),
            {"pending": pending},
        )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        found = conn.execute(text("SELECT phone_hash FROM nf_signatures")).scalar_one()
    assert found == phone_hash("migration-test-key", "+14155552671")


def test_supporters_projected_before_zone_spans_are_reckoned_again(database: str) -> None:
    """Supporters projected before 0022 kept a country's "main zone" (Sydney for every
    Australian mobile, Moscow for every Russian one): texted at night where they live."""
    config = alembic_config("notifications", database)
    command.upgrade(config, "0022_time_zone_span")
    people = {  # supporter: (phone, country, postal code, zone stored before 0022)
        "au-mobile": ("+61412345678", "AU", None, "Australia/Sydney"),
        "ru-mobile": ("+79141234567", "RU", None, "Europe/Moscow"),
        "darwin": (None, "AU", "800", "Australia/Melbourne"),
        "sf": ("+14155552671", "US", "94110", "America/Los_Angeles"),
        "nothing": (None, None, None, "UTC"),
    }
    engine = make_engine(database)
    try:
        with engine.begin() as conn:
            for sid, (phone, country, postal_code, zone) in people.items():
                conn.execute(
                    text(
                        "INSERT INTO nf_supporters (supporter_id, phone, locale, country,"
                        " postal_code, time_zone, discreet, interests, token, created_at,"
                        " updated_at) VALUES (:sid, :phone, 'en', :country, :postal_code,"
                        " :zone, false, '[]', :sid, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"sid": sid, "phone": phone, "country": country,
                     "postal_code": postal_code, "zone": zone},
                )  # fmt: skip
        command.upgrade(config, "head")
        with engine.connect() as conn:
            zones = dict(
                conn.execute(text("SELECT supporter_id, time_zone FROM nf_supporters")).all()
            )
    finally:
        engine.dispose()
    assert zones == {
        "au-mobile": "Australia/Perth Australia/Lord_Howe",
        "ru-mobile": "Europe/Kaliningrad Asia/Anadyr",
        "darwin": "Australia/Darwin",
        "sf": "America/Los_Angeles",
        "nothing": "UTC",
    }


def test_an_endpoints_old_secret_keeps_signing_after_0027(database: str) -> None:
    """An endpoint rotated before 0027 kept its old secret in one column: it is carried into
    the list, with its end, so a partner mid-rotation still verifies after the deploy."""
    from services.notifications.webhooks.dispatcher import Endpoint

    config = alembic_config("notifications", database)
    command.upgrade(config, "0026_webhook_retention")
    engine = make_engine(database)
    try:
        with engine.begin() as conn:
            for eid, old, expires in (
                ("ep-rotated", "whsec_old", "2030-01-02 03:04:05+00:00"),
                ("ep-never", None, None),
            ):
                conn.execute(
                    text(
                        "INSERT INTO wh_endpoints (endpoint_id, organization_id, url, description,"
                        " event_types, enabled, secret, previous_secret,"
                        " previous_secret_expires_at, created_at, updated_at) VALUES (:eid, 'o',"
                        " 'https://x.example', '', '[]', true, 'whsec_new', :old, :expires,"
                        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"eid": eid, "old": old, "expires": expires},
                )
        command.upgrade(config, "head")
        with engine.connect() as conn:
            stored = dict(
                conn.execute(text("SELECT endpoint_id, previous_secrets FROM wh_endpoints")).all()
            )
            # The previous version's pods, still serving mid-rollout, read the old column.
            kept = dict(
                conn.execute(text("SELECT endpoint_id, previous_secret FROM wh_endpoints")).all()
            )
        command.downgrade(config, "0026_webhook_retention")
        with engine.connect() as conn:
            back = dict(
                conn.execute(text("SELECT endpoint_id, previous_secret FROM wh_endpoints")).all()
            )
    finally:
        engine.dispose()
    rotated = stored["ep-rotated"]
    rotated = json.loads(rotated) if isinstance(rotated, str) else rotated
    assert rotated == [{"secret": "whsec_old", "expires_at": "2030-01-02T03:04:05Z"}]
    assert stored["ep-never"] is None
    assert kept == {"ep-rotated": "whsec_old", "ep-never": None}
    endpoint = Endpoint("ep-rotated", "o", "https://x.example", "whsec_new", rotated, False)
    assert endpoint.secrets(datetime(2030, 1, 2, 3, 4, 4, tzinfo=UTC)) == ["whsec_new", "whsec_old"]
    assert endpoint.secrets(datetime(2030, 1, 2, 3, 4, 6, tzinfo=UTC)) == ["whsec_new"]
    assert back == {"ep-rotated": "whsec_old", "ep-never": None}
