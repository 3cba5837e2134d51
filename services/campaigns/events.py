"""The events campaigns publishes, built with complete data so projections need nothing else."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.events import Event
from shared.events.catalog import type_name
from shared.events.envelope import format_time

SOURCE = "/services/campaigns"


def _event(short: str, key: str, data: Mapping[str, Any], at: datetime) -> Event:
    return Event(type=type_name(short), key=key, data=dict(data), source=SOURCE, time=at)


def organization(kind: str, row: Any, at: datetime) -> Event:
    """organization.created / organization.updated, with the partner's referral source code."""
    data = {
        "organization_id": row.organization_id,
        "slug": row.slug,
        "name": row.name,
        "communities": list(row.communities),
        "contact_email": row.contact_email,
        "postal_address": row.postal_address,
        "source_code": row.source_code,
        "at": format_time(at),
    }
    return _event(f"organization.{kind}", row.organization_id, data, at)


def key_issued(
    key_id: str, prefix: str, key_hash: str, role: str, organization_id: str, at: datetime
) -> Event:
    data = {
        "key_id": key_id,
        "prefix": prefix,
        "key_hash": key_hash,
        "role": role,
        "organization_id": organization_id,
        "at": format_time(at),
    }
    return _event("apikey.issued", organization_id, data, at)


def key_revoked(key_id: str, organization_id: str, at: datetime) -> Event:
    data = {"key_id": key_id, "organization_id": organization_id, "at": format_time(at)}
    return _event("apikey.revoked", organization_id, data, at)


def campaign(kind: str, row: Any, partner_ids: Sequence[str], at: datetime) -> Event:
    """campaign.created / launched / closed: the whole campaign as it now stands."""
    data = {
        "campaign_id": row.campaign_id,
        "lead_organization_id": row.lead_organization_id,
        "partner_organization_ids": list(partner_ids),
        "communities": list(row.communities),
        "titles": dict(row.titles),
        "descriptions": dict(row.descriptions),
        "default_locale": row.default_locale,
        "status": row.status,
        "at": format_time(at),
    }
    return _event(f"campaign.{kind}", row.campaign_id, data, at)


def partner_joined(campaign_id: str, organization_id: str, at: datetime) -> Event:
    data = {"campaign_id": campaign_id, "organization_id": organization_id, "at": format_time(at)}
    return _event("campaign.partner_joined", campaign_id, data, at)


def partner_removed(campaign_id: str, organization_id: str, left: bool, at: datetime) -> Event:
    """A partner is out of the coalition: removed by the lead, or left (left=True)."""
    data = {
        "campaign_id": campaign_id,
        "organization_id": organization_id,
        "left": left,
        "at": format_time(at),
    }
    return _event("campaign.partner_removed", campaign_id, data, at)


def alert_scheduled(row: Any, lead_organization_id: str, at: datetime) -> Event:
    data = {
        "alert_id": row.alert_id,
        "campaign_id": row.campaign_id,
        "organization_id": lead_organization_id,
        "channels": list(row.channels),
        "send_at": format_time(row.send_at) if row.send_at else None,
        "at": format_time(at),
    }
    return _event("alert.scheduled", row.campaign_id, data, at)


def alert_published(row: Any, lead: Any, partner_ids: Sequence[str], at: datetime) -> Event:
    """alert.published: everything notifications needs to expand the audience and send, with
    the lead organization's name and postal address as checked (the emails' sender and
    footer)."""
    content = {
        locale: {name: value for name, value in texts.items() if value}
        for locale, texts in row.content.items()
    }
    data = {
        "alert_id": row.alert_id,
        "campaign_id": row.campaign_id,
        "organization_id": lead.organization_id,
        "sender": {"name": lead.name, "postal_address": lead.postal_address},
        "partner_organization_ids": list(partner_ids),
        "channels": list(row.channels),
        "default_locale": row.default_locale,
        "content": content,
        "audience": dict(row.audience),
        "send_at": format_time(row.send_at) if row.send_at else None,
        "at": format_time(at),
    }
    return _event("alert.published", row.campaign_id, data, at)


def alert_test_requested(
    row: Any,
    lead: Any,
    locale: str,
    sample: Mapping[str, str],
    request_id: str,
    at: datetime,
    *,
    discreet: bool = False,
) -> Event:
    """alert.test_requested: one locale's email content, to the lead's own address, greeting
    a stand-in (sample: given_name, family_name), as a discreet supporter gets it if asked."""
    data = {
        "alert_id": row.alert_id,
        "campaign_id": row.campaign_id,
        "organization_id": lead.organization_id,
        "request_id": request_id,
        "locale": locale,
        "default_locale": row.default_locale,
        "content": dict(row.content[locale]),
        "sender": {"name": lead.name, "postal_address": lead.postal_address},
        "given_name": sample["given_name"],
        "family_name": sample["family_name"],
        "discreet": discreet,
        "at": format_time(at),
    }
    return _event("alert.test_requested", row.campaign_id, data, at)


def alert_unscheduled(alert_id: str, campaign_id: str, at: datetime) -> Event:
    data = {"alert_id": alert_id, "campaign_id": campaign_id, "at": format_time(at)}
    return _event("alert.unscheduled", campaign_id, data, at)


def alert_cancelled(alert_id: str, campaign_id: str, at: datetime, **why: str) -> Event:
    """alert.cancelled; why (organization_id, name, default_locale, reason) when the scheduler
    cancelled a due alert that no longer passed the checks, so its lead is told."""
    data = {"alert_id": alert_id, "campaign_id": campaign_id, "at": format_time(at), **why}
    return _event("alert.cancelled", campaign_id, data, at)
