"""Supporters who agreed to no contact are forgotten once the campaigns they joined are over."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.notifications import erasure, ledger
from services.notifications.store import (
    consents,
    deliveries,
    supporter_campaigns,
    supporters,
    suppressions,
)
from shared.events import Event
from tests.integration.notifications.harness import (
    Service,
    event,
    organization,
    petition,
    signature,
)
from tests.integration.notifications.test_transactional import mails_to
from tests.support.polling import eventually

pytestmark = pytest.mark.integration


def campaign(campaign_id: str, status: str) -> Event:
    short = "campaign.closed" if status == "closed" else "campaign.created"
    return event(
        short, campaign_id, campaign_id=campaign_id, lead_organization_id="org-rb",
        titles={"en": "Language access"}, status=status,
    )  # fmt: skip


def test_those_who_agreed_to_no_contact_are_forgotten_after_their_campaigns_close(
    service: Service,
) -> None:
    service.start()
    service.publish(
        organization("org-rb"),
        campaign("camp-1", "active"),
        campaign("camp-2", "active"),
        petition("pet-1", "camp-1", "org-rb"),
        petition("pet-2", "camp-2", "org-rb"),
    )
    service.publish(
        signature("quiet@example.org", "pet-1", "camp-1", "org-rb", email_ok=False,
                  pronouns="she/her", phone="+14155550177"),
        signature("member@example.org", "pet-1", "camp-1", "org-rb", email_ok=True),
        signature("both@example.org", "pet-1", "camp-1", "org-rb", email_ok=False),
        signature("both@example.org", "pet-2", "camp-2", "org-rb", email_ok=False),
    )  # fmt: skip
    for address in ("quiet@example.org", "member@example.org"):
        eventually(lambda a=address: len(mails_to(service, a)) == 1, message=f"thanks {address}")
    eventually(lambda: len(mails_to(service, "both@example.org")) == 2, message="both thanked")
    quiet = next(p for p in service.rows(supporters) if p.email == "quiet@example.org")
    thanks = service.rows(deliveries, deliveries.c.recipient_id == quiet.supporter_id)
    assert [row.status for row in thanks] == ["sent"]

    # Campaign 1 is over; campaign 2 goes on.
    service.publish(campaign("camp-1", "closed"))
    eventually(
        lambda: erasure.forget_unconsented(service.deps) == 0 and _closed(service, "camp-1"),
        message="camp-1 closed",
    )  # not yet: closed today
    service.stop()
    later = service.deps.clock() + timedelta(
        days=service.deps.config.unconsented_retention_days + 1
    )
    service.deps.clock = lambda: later

    assert erasure.forget_unconsented(service.deps) == 1
    kept = sorted(p.email for p in service.rows(supporters))
    # A member of the lead's list stays, and so does whoever joined a campaign still running.
    assert kept == ["both@example.org", "member@example.org"]
    sid = quiet.supporter_id
    assert service.rows(supporter_campaigns, supporter_campaigns.c.supporter_id == sid) == []
    assert service.rows(consents, consents.c.supporter_id == sid) == []
    assert service.rows(deliveries, deliveries.c.recipient_id == sid) == []
    # The thank-you is still counted in the ledger, under no one's id and with nothing personal.
    [sent] = service.rows(deliveries, deliveries.c.delivery_id == thanks[0].delivery_id)
    assert sent.recipient_id == ledger.ERASED + sent.delivery_id
    assert sent.status == "sent" and sent.params is None and sent.provider_message_id is None
    assert service.count(suppressions) == 0  # forgotten, not erased: nothing to hold against
    assert erasure.forget_unconsented(service.deps) == 0  # once


def test_an_unsubscribe_keeps_a_person_until_it_is_old_too(service: Service) -> None:
    """A person who withdrew their consent keeps their preference link working for the
    retention's length after the change, whatever their campaigns."""
    from services.notifications.handlers import handlers

    table = handlers(service.deps)
    signed = signature("left@example.org", "pet-9", "camp-9", "org-rb", email_ok=True)
    for item in (
        organization("org-rb"),
        campaign("camp-9", "active"),
        petition("pet-9", "camp-9", "org-rb"),
        signed,
        campaign("camp-9", "closed"),
    ):
        with service.engine.begin() as conn:
            for handle in table[item.type]:
                handle(item, conn)
    start = service.deps.clock()
    days = service.deps.config.unconsented_retention_days
    service.deps.clock = lambda: start + timedelta(days=days + 1)
    assert erasure.forget_unconsented(service.deps) == 0  # consented: a member of the list
    with service.engine.begin() as conn:
        conn.execute(
            consents.update()
            .where(consents.c.supporter_id == signed.key)
            .values(granted=False, changed_at=start + timedelta(days=days))
        )
    assert erasure.forget_unconsented(service.deps) == 0  # withdrew a day ago
    service.deps.clock = lambda: start + timedelta(days=2 * days + 1)
    assert erasure.forget_unconsented(service.deps) == 1
    assert service.count(supporters) == 0


def _closed(service: Service, campaign_id: str) -> bool:
    from services.notifications.store import campaigns

    rows = service.rows(campaigns, campaigns.c.campaign_id == campaign_id)
    return bool(rows) and rows[0].status == "closed"
