"""What the signing edge accepts, the signature.created contract accepts too."""

from __future__ import annotations

import pytest

from services.petitions import domain
from shared.events import Event
from shared.events.catalog import CATALOG, type_name

# Local parts with Indic and Thai vowel signs (combining marks): email_validator takes them,
# Marshmallow's fields.Email did not.
ADDRESSES = [
    "नमस्ते@example.com",
    "priya.शर्मा@example.com",
    "தமிழ்@example.com",
    "สวัสดี@example.com",
]


def _signature_created(email: str) -> Event:
    data = {
        "signature_id": "s1",
        "petition_id": "p1",
        "campaign_id": "c1",
        "organization_id": "o1",
        "supporter_id": "u1",
        "duplicate": False,
        "double_opt_in": False,
        "confirm_url": None,
        "locale": "hi",
        "at": "2026-11-28T00:00:00Z",
        "person": {"email": email, "given_name": "Priya"},
        "consents": {"email": True, "sms": False, "partner_organization_ids": []},
        "attribution": {"source": None, "partner_organization_id": None},
    }
    return Event(type=type_name("signature.created"), key="u1", data=data, source="/petitions")


@pytest.mark.parametrize("address", ADDRESSES)
def test_every_address_the_edge_accepts_passes_the_event_contract(address: str) -> None:
    email = domain.clean_email(address)
    event = _signature_created(email)
    CATALOG.check_outgoing(event)
    CATALOG.check_incoming(event)
