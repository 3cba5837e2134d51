"""Logs never carry personal data, even when a caller slips."""

from __future__ import annotations

import json
import logging

import pytest

from shared.logging import configure_logging, redact_mapping


def test_personal_fields_and_embedded_contacts_are_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("test", "INFO")
    log = logging.getLogger("kinship.test")
    log.info(
        "signed by mei@example.org from +1 415 555 0100",
        extra={"email": "mei@example.org", "petition_id": "p-1", "phone": "+14155550100"},
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert "mei@example.org" not in line and "555" not in line
    assert record["petition_id"] == "p-1"
    assert record["email"] == "[redacted]" and record["service"] == "test"
    logging.getLogger().handlers.clear()


def test_nested_structures_are_redacted() -> None:
    out = redact_mapping({"data": {"person": {"email": "x@y.org"}, "note": "call 020 7946 0018"}})
    assert out == {"data": {"person": "[redacted]", "note": "call [redacted]"}}


def test_tracebacks_are_redacted_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test", "INFO")
    try:
        raise ValueError("duplicate key for kai@example.net")
    except ValueError:
        logging.getLogger("kinship.test").exception("insert failed")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "kai@example.net" not in line and "ValueError" in line
    logging.getLogger().handlers.clear()
