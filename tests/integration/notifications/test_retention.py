"""What a supporter who agreed to no contact typed is dropped once their campaigns are over."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.notifications.fanout import ProgressPublisher
from services.notifications.handlers import handlers
from services.notifications.store import consents, supporters
from shared.events import Event
from tests.integration.notifications.harness import (
    Service,
    event,
    organization,
    petition,
    signature,
)

pytestmark = pytest.mark.integration


def campaign(campaign_id: str, status: str) -> Event:
    short = "campaign.closed" if status == "closed" else "campaign.created"
    return event(
        short, campaign_id, campaign_id=campaign_id, lead_organization_id="org-rb",
        titles={"en": "Language access"}, status=status,
    )  # fmt: skip


def apply(service: Service, *events: Event) -> None:
    """Project events as the consumer does (its handlers, one transaction each)."""
    table = handlers(service.deps)
    for item in events:
        with service.engine.begin() as conn:
            for handle in table[item.type]:
                handle(item, conn)


def person(service: Service, email: str) -> dict[str, object]:
    [row] = [p for p in service.rows(supporters) if p.email == email]
    return dict(row._mapping)


PERSONAL = ("given_name", "family_name", "pronouns", "postal_code", "region", "phone")


def test_what_those_who_agreed_to_no_contact_typed_goes_after_their_campaigns_close(
    service: Service,
) -> None:
    apply(
        service,
        organization("org-rb"),
        campaign("camp-1", "active"),
        campaign("camp-2", "active"),
        petition("pet-1", "camp-1", "org-rb"),
        petition("pet-2", "camp-2", "org-rb"),
        signature("quiet@example.org", "pet-1", "camp-1", "org-rb", email_ok=False,
                  pronouns="she/her", phone="+14155550177", region="CA"),
        signature("member@example.org", "pet-1", "camp-1", "org-rb", email_ok=True,
                  pronouns="he/him"),
        signature("both@example.org", "pet-1", "camp-1", "org-rb", email_ok=False),
        signature("both@example.org", "pet-2", "camp-2", "org-rb", email_ok=False),
        campaign("camp-1", "closed"),
    )  # fmt: skip
    publisher = ProgressPublisher(service.deps)
    assert publisher.minimize_unconsented() == 0  # closed today: not yet
    start = service.deps.clock()
    days = service.deps.config.unconsented_retention_days
    service.deps.clock = lambda: start + timedelta(days=days + 1)

    assert publisher.minimize_unconsented(batch=1) == 1  # batches until none is left
    quiet = person(service, "quiet@example.org")
    assert {name: quiet[name] for name in PERSONAL} == dict.fromkeys(PERSONAL)
    assert quiet["interests"] == [] and quiet["minimized_at"] is not None
    # What answers the person's own later requests stays: address, language, link token.
    assert (quiet["locale"], quiet["token"]) != (None, None) and quiet["phone_hash"]
    # A member of the lead's list keeps everything; so does whoever joined a running campaign.
    assert person(service, "member@example.org")["pronouns"] == "he/him"
    assert person(service, "both@example.org")["given_name"] == "Alex"
    assert publisher.minimize_unconsented() == 0  # once

    # Signing again brings back what they type, and starts their time anew.
    apply(
        service,
        campaign("camp-3", "active"),
        petition("pet-3", "camp-3", "org-rb"),
        signature("quiet@example.org", "pet-3", "camp-3", "org-rb", email_ok=False,
                  pronouns="she/her"),
    )  # fmt: skip
    assert person(service, "quiet@example.org")["pronouns"] == "she/her"


def test_a_former_subscriber_keeps_their_number_and_a_fresh_change_waits(
    service: Service,
) -> None:
    """Someone who once took texts keeps their number (a STOP or START from it must find its
    owner), and someone who just unsubscribed is left alone for the retention's length."""
    signed = signature(
        "left@example.org", "pet-9", "camp-9", "org-rb", email_ok=True,
        phone="+14155550188", sms=True, pronouns="they/them",
    )  # fmt: skip
    apply(
        service,
        organization("org-rb"),
        campaign("camp-9", "active"),
        petition("pet-9", "camp-9", "org-rb"),
        signed,
        campaign("camp-9", "closed"),
    )
    start = service.deps.clock()
    days = service.deps.config.unconsented_retention_days
    service.deps.clock = lambda: start + timedelta(days=days + 1)
    publisher = ProgressPublisher(service.deps)
    assert publisher.minimize_unconsented() == 0  # consented: on the lead's list
    with service.engine.begin() as conn:
        conn.execute(
            consents.update()
            .where(consents.c.supporter_id == signed.key)
            .values(granted=False, changed_at=start + timedelta(days=days))
        )
    assert publisher.minimize_unconsented() == 0  # withdrew a day ago
    service.deps.clock = lambda: start + timedelta(days=2 * days + 1)
    assert publisher.minimize_unconsented() == 1
    left = person(service, "left@example.org")
    assert left["pronouns"] is None and left["phone"] == "+14155550188"
