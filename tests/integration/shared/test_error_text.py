"""What retry and dead-letter headers say of an error names no person."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from shared.db import make_engine
from shared.logging import error_text

pytestmark = pytest.mark.integration


def test_a_database_error_is_named_by_its_code_and_constraint_not_its_row(
    database_url: str,
) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE people_t (email text UNIQUE, name text NOT NULL)"))
            conn.execute(text("INSERT INTO people_t VALUES ('jane@example.org', 'Jane Doe')"))
        errors = []
        for statement in (
            "INSERT INTO people_t VALUES ('jane@example.org', 'Jane Doe')",  # Key (email)=(...)
            "INSERT INTO people_t VALUES ('kim@example.org', NULL)",  # Failing row contains
        ):
            with pytest.raises(IntegrityError) as raised, engine.begin() as conn:
                conn.execute(text(statement))
            assert "example.org" in str(raised.value)  # what PostgreSQL's message quotes
            errors.append(error_text(raised.value))
        assert "jane" not in errors[0] and "Jane" not in errors[0]
        assert "SQLSTATE 23505" in errors[0] and "people_t_email_key" in errors[0]
        assert "kim" not in errors[1] and "SQLSTATE 23502" in errors[1] and "name" in errors[1]
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS people_t"))
        engine.dispose()


def test_any_other_error_is_masked_as_a_log_line_is() -> None:
    typed = "Jane jane@example.org texted from +1 415 555 0123, 陳怡君@例え.jp"
    said = error_text(ValueError(typed))
    assert "jane@" not in said and "555" not in said and "例え" not in said
