"""What the petitions service does with other services' events.

It keeps its own copy of what it needs from campaigns (organizations, campaigns and their
partners, API keys) and erases people when notifications says so.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from services.petitions import signing, store, usecases
from services.petitions.bootstrap import Deps
from shared.auth import projection_handlers
from shared.events import Event
from shared.events.catalog import CAMPAIGNS, NOTIFICATIONS, type_name
from shared.events.envelope import parse_time

TOPICS = (CAMPAIGNS, NOTIFICATIONS)
Handler = Callable[[Event, Connection], None]


def on_organization(event: Event, conn: Connection) -> None:
    """Remember an organization's slug and source code (for boxes and attribution)."""
    store.save_organization(conn, event.data, parse_time(str(event.data["at"])))


def on_campaign(event: Event, conn: Connection) -> None:
    """Remember a campaign's lead, partners and status."""
    data = event.data
    store.save_campaign(
        conn,
        data["campaign_id"],
        data["lead_organization_id"],
        data.get("status"),
        parse_time(str(data["at"])),
    )
    store.add_partners(conn, data["campaign_id"], data.get("partner_organization_ids") or [])


def on_partner_joined(event: Event, conn: Connection) -> None:
    store.add_partners(conn, event.data["campaign_id"], [event.data["organization_id"]])


def on_partner_removed(event: Event, conn: Connection) -> None:
    """A partner out of the coalition no longer manages, reads or exports the campaign's
    petitions, nor is it offered to signers or credited by its source code."""
    store.remove_partner(conn, event.data["campaign_id"], event.data["organization_id"])


def handlers(deps: Deps) -> dict[str, list[Handler]]:
    """Return HANDLERS for this service's consumer group, bound to its dependencies."""

    def on_campaign_closed(event: Event, conn: Connection) -> None:
        """A closed campaign takes no more signatures: close its open petitions."""
        on_campaign(event, conn)
        for petition in store.open_petitions_of_campaign(conn, event.data["campaign_id"]):
            usecases.close_open_petition(deps, conn, petition)

    def on_person_erased(event: Event, conn: Connection) -> None:
        data = event.data
        signing.erase_person(
            deps, conn, data.get("supporter_id"), data.get("email_hash"), data.get("phone_hash")
        )

    def on_consent_changed(event: Event, conn: Connection) -> None:
        store.record_consent_change(conn, event.data, parse_time(str(event.data["at"])))

    table: dict[str, list[Handler]] = {
        type_name("organization.created"): [on_organization],
        type_name("organization.updated"): [on_organization],
        type_name("campaign.created"): [on_campaign],
        type_name("campaign.launched"): [on_campaign],
        type_name("campaign.closed"): [on_campaign_closed],
        type_name("campaign.partner_joined"): [on_partner_joined],
        type_name("campaign.partner_removed"): [on_partner_removed],
        type_name("person.erased"): [on_person_erased],
        type_name("consent.changed"): [on_consent_changed],
    }
    table.update(projection_handlers(store.api_keys))
    return table
