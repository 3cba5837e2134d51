"""Delivery reports: a ledger code read as its cause, each known cause in plain words."""

from __future__ import annotations

from services.notifications.reports import MEANINGS, meaning_of, reason_of


def test_a_code_with_detail_reads_as_its_cause() -> None:
    assert reason_of("retries_exhausted:twilio 503") == "retries_exhausted"
    assert reason_of("error:OperationalError") == "error"
    assert reason_of("30006") == "30006"


def test_a_row_held_back_at_claim_time_has_a_cause_too() -> None:
    assert reason_of(None) == "held_back"
    assert reason_of("") == "held_back"


def test_every_cause_the_senders_write_is_explained() -> None:
    # The codes delivery.py and compliance.py write (beside the providers' own numbers).
    written = {
        "invalid_address", "no_content", "no_discreet_text", "no_contact", "retries_exhausted",
        "error", "batch_error", "no_consent",
        "suppressed", "erased", "cancelled", "held_back", "bounce", "dropped", "complaint",
        "unsubscribe", "blocked", "21610", "undelivered", "failed",
    }  # fmt: skip
    assert written <= set(MEANINGS)


def test_a_bare_http_status_reads_as_a_refused_request() -> None:
    assert meaning_of("400") == "the provider refused the request (HTTP 400)"
    assert meaning_of("21610") == MEANINGS["21610"]
    assert meaning_of("something_new") is None
