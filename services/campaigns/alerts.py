"""Action alert use cases: drafts, validation, scheduling, cancelling, publishing, progress."""

from __future__ import annotations

import functools
import html
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from services.campaigns import content as rules
from services.campaigns import domain, events, store
from services.campaigns.bootstrap import Deps
from services.campaigns.operations import access_of, joined_ids, load_campaign
from services.campaigns.schemas import AlertIn, check_merged
from shared.auth import Principal
from shared.errors import Conflict, DomainError, FieldError, NotFound
from shared.outbox import Outbox
from shared.templates import fill, with_opt_out

log = logging.getLogger(__name__)
AUDIENCE_KEYS = (
    "locales",
    "countries",
    "regions",
    "postal_prefixes",
    "partner_organization_ids",
    "interests",
)


def _check_draft(data: Mapping[str, Any], access: domain.CampaignAccess) -> dict[str, Any]:
    """Check what a draft must get right already: locales, variables, audience."""
    domain.check_locale(data["default_locale"], "default_locale")
    content: dict[str, dict[str, str | None]] = {}
    for locale, texts in data["content"].items():
        domain.check_locale(locale, f"content.{locale}")
        for name, text in texts.items():
            if text:
                rules.check_template(text, f"content.{locale}.{name}", rules.ALLOWED[name])
        content[locale] = dict(texts)
    audience = {key: list(data.get("audience", {}).get(key) or []) for key in AUDIENCE_KEYS}
    return {
        "channels": sorted(set(data["channels"])),
        "default_locale": data["default_locale"],
        "content": content,
        "audience": domain.check_audience(audience, access),
    }


def alert_view(
    row: Any, titles: Mapping[str, str], org_name: str, unsayable: Sequence[str] = ()
) -> dict[str, Any]:
    """Return an alert with its progress and what checking its content found."""
    view = {k: v for k, v in row._mapping.items() if not k.startswith("progress_")}
    view["progress"] = {name: getattr(row, f"progress_{name}") for name in store.PROGRESS_FIELDS}
    view["progress"]["updated_at"] = row.progress_at
    view["progress"]["status"] = row.progress_status
    problems: dict[str, list[str]] = {}
    try:
        rules.check_content(
            row.content, row.channels, row.default_locale, titles, org_name, unsayable
        )
    except DomainError as exc:
        problems = exc.errors
    view["checks"] = {
        "ready": not problems,
        "problems": problems,
        "warnings": rules.warnings(row.content, row.channels, row.default_locale),
        "sms": {
            locale: rules.measure_locale(texts, locale, titles, org_name)
            for locale, texts in row.content.items()
        },
    }
    return view


def _load(conn: Connection, alert_id: str, lock: bool = False) -> tuple[Any, Any, list[Any]]:
    alert = store.alert(conn, alert_id)
    if alert is None:
        raise NotFound("No such alert")
    campaign, partner_rows = load_campaign(conn, alert.campaign_id, lock=lock)
    if lock:  # re-read under the campaign's lock: a scheduler may have published it meanwhile
        alert = store.alert(conn, alert_id)
    return alert, campaign, partner_rows


def _view(conn: Connection, alert: Any, campaign: Any, partner_rows: list[Any]) -> dict[str, Any]:
    org = store.organization(conn, campaign.lead_organization_id)
    return alert_view(
        alert, campaign.titles, org.name if org else "", unsayable(campaign, org, partner_rows)
    )


def unsayable(campaign: Any, lead: Any, partner_rows: list[Any]) -> list[str]:
    """What a discreet text must not say besides the title and the lead's name: the names of
    the organizations that joined the campaign (of its partner rows, as store.partners reads
    them), and the communities the campaign, its lead and those partners serve. (Not those
    merely invited: renaming themselves should not let them call the lead's alerts off.)"""
    joined = [row for row in partner_rows if row.status == "joined"]
    labels = [*(campaign.communities or ()), *((lead.communities or ()) if lead else ())]
    for row in joined:
        labels += row.communities or ()
    return [*(row.name for row in joined), *labels]


def create_alert(
    deps: Deps, principal: Principal, campaign_id: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    now = deps.clock()
    with deps.engine.begin() as conn:
        campaign, partner_rows = load_campaign(conn, campaign_id, lock=True)
        access = access_of(campaign, partner_rows)
        domain.may_manage_campaign(principal, access)
        domain.require_open_campaign(campaign.status, "get new alerts")
        checked = _check_draft(data, access)
        alert_id = str(uuid.uuid4())
        store.insert_alert(
            conn,
            {
                "alert_id": alert_id,
                "campaign_id": campaign_id,
                "name": data["name"],
                "status": "draft",
                **checked,
                "created_at": now,
                "updated_at": now,
            },
        )
        return _view(conn, store.alert(conn, alert_id), campaign, partner_rows)


def get_alert(deps: Deps, principal: Principal, alert_id: str) -> dict[str, Any]:
    with deps.engine.connect() as conn:
        alert, campaign, partner_rows = _load(conn, alert_id)
        domain.may_read_campaign(principal, access_of(campaign, partner_rows))
        return _view(conn, alert, campaign, partner_rows)


# A sample person for previews (or the name the organizer types): links lead nowhere.
SAMPLE = {"given_name": "Alex", "family_name": "Rivera"}
SMS = ("sms_text", "sms_discreet_text")


def _value(values: Mapping[str, str], name: str) -> str:
    return values.get(name, "")


def _language(alert: Any, locale: str | None) -> tuple[str, Mapping[str, Any]]:
    """Return the language asked for (the alert's default when none) and its texts, or a 422
    naming `locale` and the alert's languages."""
    variant = locale or alert.default_locale
    texts = (alert.content or {}).get(variant)
    if texts is None:
        raise FieldError(
            "locale", f"Not a language of this alert: {', '.join(sorted(alert.content))}"
        )
    return variant, texts


def preview_alert(
    deps: Deps, principal: Principal, alert_id: str, locale: str | None, given_name: str | None
) -> dict[str, Any]:
    """Return the alert in one of its languages as a supporter would read it: every field
    filled (a sample name or the one given, the campaign's title, the lead's name and postal
    address; links to a preview page), each text with the opt-out line notifications adds when
    it has none, and its segments. Notifications adds each email's footer (who sent it, their
    address, how to leave) besides."""
    with deps.engine.connect() as conn:
        alert, campaign, partner_rows = _load(conn, alert_id)
        domain.may_read_campaign(principal, access_of(campaign, partner_rows))
        org = store.organization(conn, campaign.lead_organization_id)
    variant, texts = _language(alert, locale)
    link = f"{deps.settings.public_base_url}/preview"
    values = {
        **SAMPLE,
        **({"given_name": given_name} if given_name else {}),
        "organization_name": org.name if org else "",
        "campaign_title": campaign.titles.get(variant)
        or campaign.titles.get(campaign.default_locale)
        or "",
        "postal_address": (org.postal_address or "") if org else "",
        "unsubscribe_url": link,
        "preferences_url": link,
    }
    filled: dict[str, str] = {}
    for field, template in texts.items():
        if not template:
            continue
        shown = {k: html.escape(v) for k, v in values.items()} if field == "email_html" else values
        filled[field] = fill(template, functools.partial(_value, shown))
        if field in SMS:
            filled[field] = with_opt_out(filled[field], written=template, locale=variant)
    return {
        "alert_id": alert_id,
        "locale": variant,
        "texts": filled,
        "sms": {f: rules.measure_sms(filled[f]).as_dict() for f in SMS if f in filled},
    }


def request_test(
    deps: Deps,
    principal: Principal,
    alert_id: str,
    locale: str | None,
    given_name: str | None,
    discreet: bool = False,
) -> dict[str, Any]:
    """Have notifications send the alert's email in one language, marked as a test, to the lead
    organization's contact address: how it reads in a real inbox before anyone else gets it.
    The address is never the caller's to give, and an organization gets few a day
    (deps.test_limits): its organizers can change that address, so a stolen key must not make
    a mailer of it."""
    now = deps.clock()
    with deps.engine.begin() as conn:
        alert, campaign, partner_rows = _load(conn, alert_id)
        domain.may_manage_campaign(principal, access_of(campaign, partner_rows))
        lead = store.organization(conn, campaign.lead_organization_id)
        assert lead is not None  # a campaign's lead is a foreign key
        variant, texts = _language(alert, locale)
        if "email" not in alert.channels or not (
            texts.get("email_subject") and (texts.get("email_text") or texts.get("email_html"))
        ):
            raise FieldError("locale", "This alert has no email in this language to test")
        if not (lead.contact_email or "").strip():
            raise Conflict(
                "The lead organization has no contact address to send the test to",
                {"contact_email": ["missing"]},
            )
        deps.test_limits.hit(lead.organization_id)
        sample = {**SAMPLE, **({"given_name": given_name} if given_name else {})}
        event = events.alert_test_requested(
            alert, lead, variant, sample, str(uuid.uuid4()), now, discreet=discreet
        )
        deps.outbox.add(conn, event)
    return {"alert_id": alert_id, "locale": variant, "to": lead.contact_email}


def list_alerts(
    deps: Deps,
    principal: Principal,
    campaign_id: str,
    status: str | None,
    page: int,
    per_page: int,
) -> tuple[list[dict[str, Any]], int]:
    with deps.engine.connect() as conn:
        campaign, partner_rows = load_campaign(conn, campaign_id)
        domain.may_read_campaign(principal, access_of(campaign, partner_rows))
        rows, total = store.page_of(conn, store.alerts_query(campaign_id, status), page, per_page)
        return [_view(conn, row, campaign, partner_rows) for row in rows], total


def update_alert(
    deps: Deps, principal: Principal, alert_id: str, changes: Mapping[str, Any]
) -> dict[str, Any]:
    now = deps.clock()
    with deps.engine.begin() as conn:
        alert, campaign, partner_rows = _load(conn, alert_id, lock=True)
        access = access_of(campaign, partner_rows)
        domain.may_manage_campaign(principal, access)
        domain.require_alert_status(alert.status, domain.ALERT_EDITABLE, "edited")
        merged = {
            "channels": changes.get("channels", alert.channels),
            "default_locale": changes.get("default_locale", alert.default_locale),
            "content": domain.merge_patch(alert.content, changes.get("content", {})),
            "audience": domain.merge_patch(alert.audience, changes.get("audience", {})),
        }
        check_merged(AlertIn, "content", merged["content"])
        values = _check_draft(merged, access)
        if "name" in changes:
            values["name"] = changes["name"]
        store.update_alert(conn, alert_id, {**values, "updated_at": now})
        return _view(conn, store.alert(conn, alert_id), campaign, partner_rows)


def schedule_alert(
    deps: Deps, principal: Principal, alert_id: str, send_at: datetime | None
) -> dict[str, Any]:
    """Validate an alert for sending and schedule it; with no send_at it is published now."""
    now = deps.clock()
    with deps.engine.begin() as conn:
        alert, campaign, partner_rows = _load(conn, alert_id, lock=True)
        domain.may_manage_campaign(principal, access_of(campaign, partner_rows))
        domain.require_alert_status(alert.status, domain.ALERT_EDITABLE, "scheduled")
        if campaign.status != "active":
            raise Conflict(f"Launch the campaign first: it is {campaign.status}")
        org = check_sendable(conn, alert, campaign, partner_rows)
        when = domain.check_send_at(send_at, now)
        store.update_alert(
            conn,
            alert_id,
            {"status": "scheduled", "send_at": when, "scheduled_at": now, "updated_at": now},
        )
        alert = store.alert(conn, alert_id)
        deps.outbox.add(conn, events.alert_scheduled(alert, org.organization_id, now))
        if when <= now:
            publish(conn, deps.outbox, alert_id, org, joined_ids(partner_rows), now)
        return _view(conn, store.alert(conn, alert_id), campaign, partner_rows)


def unschedule_alert(deps: Deps, principal: Principal, alert_id: str) -> dict[str, Any]:
    """Take a scheduled alert back to draft (a typo noticed the night before): it can be edited
    and scheduled again. Published already (or not scheduled): 409. The campaign's row is held,
    as the scheduler holds it to publish: one of the two wins, never both."""
    now = deps.clock()
    with deps.engine.begin() as conn:
        alert, campaign, partner_rows = _load(conn, alert_id, lock=True)
        domain.may_manage_campaign(principal, access_of(campaign, partner_rows))
        domain.require_alert_status(alert.status, ("scheduled",), "taken back to draft")
        store.update_alert(
            conn,
            alert_id,
            {"status": "draft", "send_at": None, "scheduled_at": None, "updated_at": now},
        )
        deps.outbox.add(conn, events.alert_unscheduled(alert_id, campaign.campaign_id, now))
        return _view(conn, store.alert(conn, alert_id), campaign, partner_rows)


def check_sendable(conn: Connection, alert: Any, campaign: Any, partner_rows: list[Any]) -> Any:
    """Return the lead organization if the alert may be sent as it stands, else raise naming why.

    Scheduling checks this and publishing checks it again: between the two, the lead's postal
    address may have been removed or the campaign renamed to what a discreet text says. The
    organization's row is locked, so what alert.published carries of it is what was checked.
    """
    org = store.lock_organization(conn, campaign.lead_organization_id)
    assert org is not None  # a campaign's lead is a foreign key
    if "email" in alert.channels and not (org.postal_address or "").strip():
        raise FieldError(
            "channels",
            "Email alerts print the lead organization's postal address: set it first.",
        )
    rules.check_content(
        alert.content,
        alert.channels,
        alert.default_locale,
        campaign.titles,
        org.name,
        unsayable(campaign, org, partner_rows),
    )
    return org


def cancel_alert(deps: Deps, principal: Principal, alert_id: str) -> dict[str, Any]:
    """Cancel an alert: a draft or scheduled one sends nothing; a published one stops
    sending (what went stays sent; the rest is counted suppressed). Cancelled already: 409."""
    now = deps.clock()
    with deps.engine.begin() as conn:
        alert, campaign, partner_rows = _load(conn, alert_id, lock=True)
        domain.may_manage_campaign(principal, access_of(campaign, partner_rows))
        domain.check_cancellable(alert.status, alert.progress_status)
        store.update_alert(
            conn, alert_id, {"status": "cancelled", "cancelled_at": now, "updated_at": now}
        )
        if alert.status != "draft":
            deps.outbox.add(conn, events.alert_cancelled(alert_id, campaign.campaign_id, now))
        return _view(conn, store.alert(conn, alert_id), campaign, partner_rows)


def publish(
    conn: Connection,
    outbox: Outbox,
    alert_id: str,
    lead: Any,
    partner_ids: list[str],
    now: datetime,
) -> bool:
    """Flip a due alert to published and stage alert.published, once; False if not ours.
    lead: the lead organization's row, as check_sendable returned it."""
    if not store.claim_alert(conn, alert_id, now):
        return False
    alert = store.alert(conn, alert_id)
    outbox.add(conn, events.alert_published(alert, lead, partner_ids, now))
    return True


def publish_due(deps: Deps, limit: int = 100) -> int:
    """Publish every scheduled alert whose time has come; return how many this call published.

    Each alert is claimed in its own transaction under its campaign's row lock, taken with SKIP
    LOCKED on PostgreSQL: a campaign another worker (or request) holds is left for the next
    round, and the compare-and-set on the alert's status publishes it exactly once. An alert
    that no longer passes scheduling's checks (check_sendable) is cancelled with the reason.
    """
    now = deps.clock()
    with deps.engine.connect() as conn:
        due = store.due_alerts(conn, now, limit)
    published = 0
    for alert_id, campaign_id in ((row.alert_id, row.campaign_id) for row in due):
        with deps.engine.begin() as conn:
            campaign = store.lock_campaign(conn, campaign_id, skip_locked=True)
            if campaign is None:
                continue
            alert = store.alert(conn, alert_id)  # as it stands under the campaign's lock
            if alert is None or alert.status != "scheduled":
                continue
            partner_rows = store.partners(conn, campaign_id)
            try:
                lead = check_sendable(conn, alert, campaign, partner_rows)
            except DomainError as exc:
                _call_off(conn, deps.outbox, alert, campaign.lead_organization_id, exc, now)
                continue
            if publish(conn, deps.outbox, alert_id, lead, joined_ids(partner_rows), now):
                published += 1
    return published


def _call_off(
    conn: Connection, outbox: Outbox, alert: Any, lead_id: str, problem: DomainError, now: datetime
) -> None:
    """Cancel a due alert that no longer passes scheduling's checks, keeping why for organizers
    (and telling the lead: alert.cancelled carries the reason, which notifications emails)."""
    log.warning("alert %s not sent: %s", alert.alert_id, problem.message)
    store.update_alert(
        conn,
        alert.alert_id,
        {
            "status": "cancelled",
            "cancelled_at": now,
            "updated_at": now,
            "cancel_reason": f"Not sent when due: {problem.message}",
        },
    )
    why = {
        "organization_id": lead_id,
        "name": alert.name,
        "default_locale": alert.default_locale,
        "reason": problem.message,
    }
    outbox.add(conn, events.alert_cancelled(alert.alert_id, alert.campaign_id, now, **why))


def record_progress(conn: Connection, data: Mapping[str, Any], at: datetime) -> bool:
    """Keep notifications' latest progress report of an alert."""
    counts = {name: int(data.get(name) or 0) for name in store.PROGRESS_FIELDS}
    return store.record_progress(conn, data["alert_id"], counts, data.get("status"), at)
