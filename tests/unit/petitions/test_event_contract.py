"""What the signing edge accepts, the signature.created contract accepts too."""

from __future__ import annotations

import pytest

from shared.events.catalog import CATALOG
from shared.privacy import clean_email
from tests.unit.shared.test_events import signature_event

# Local parts with Indic and Thai vowel signs (combining marks): email_validator takes them,
# Marshmallow's fields.Email did not.
ADDRESSES = [
    "नमस्ते@example.com",
    "priya.शर्मा@example.com",
    "தமிழ்@example.com",
    "สวัสดี@example.com",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_every_address_the_edge_accepts_passes_the_event_contract(address: str) -> None:
    email = clean_email(address)
    event = signature_event(person={"email": email, "given_name": "Priya"})
    CATALOG.check_outgoing(event)
    CATALOG.check_incoming(event)
