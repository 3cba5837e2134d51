# mypy: disable-error-code="untyped-decorator"
"""The campaigns HTTP API: thin views that authenticate, call a use case and serialize."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import Engine, Table

from services.campaigns import alerts, operations, store
from services.campaigns import schemas as s
from services.campaigns.bootstrap import Deps
from shared.auth import KeyVerifier, Principal, current_principal
from shared.idempotency import DOC as IDEMPOTENCY_DOC
from shared.idempotency import idempotent
from shared.pages import PageArgs, page_body
from shared.web import AUTH_DOC
from shared.web import ApiBlueprint as Blueprint

EXTENSION = "kinship_campaigns"


def deps() -> Deps:
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def caller() -> Principal:
    """Return who is calling (401 without a valid key)."""
    return current_principal(deps().verifier)


def _services() -> tuple[Engine, KeyVerifier, Table, str]:
    found = deps()
    return found.engine, found.verifier, store.idempotency_keys, found.settings.hash_key


once = idempotent(_services)
# A key's secret is shown once and stored only as its hash (DESIGN), so an Idempotency-Key
# record of issuing one must not keep it for 24 h. Rather than drop the header (a retry after a
# lost response would then issue a second key), the record keeps the key's details without the
# secret: a replay names the key that was issued and says the secret was shown once (revoke it
# and issue another if that response was lost).
SECRET_SHOWN_ONCE = (
    "The secret was shown only once, in the first response to this request; "
    "if it was lost, revoke this key and issue a new one."
)
once_without_secret = idempotent(_services, redact={"secret": None, "note": SECRET_SHOWN_ONCE})


def aware(row: Any) -> dict[str, Any]:
    """Return a row as a dict with its naive (SQLite) timestamps marked as UTC."""
    return {
        k: v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v
        for k, v in row._mapping.items()
    }


# -- organizations -----------------------------------------------------------------------------

orgs = Blueprint(
    "organizations",
    __name__,
    url_prefix="/api/v1/organizations",
    description="Coalition partners: who they serve, how to reach them, their referral codes.",
)


@orgs.route("", methods=["POST"])
@once
@orgs.arguments(s.OrganizationIn)
@orgs.response(201, s.OrganizationOut)
@orgs.doc(**AUTH_DOC, **IDEMPOTENCY_DOC)
def create_organization(data: dict[str, Any]) -> Any:
    """Create an organization (platform admin)."""
    return operations.create_organization(deps(), caller(), data)


@orgs.route("", methods=["GET"])
@orgs.arguments(s.OrganizationFilter, location="query")
@orgs.response(200, s.OrganizationPage)
@orgs.doc(**AUTH_DOC)
def list_organizations(args: dict[str, Any]) -> Any:
    """List organizations: the coalition directory any key may read."""
    caller()
    rows, total = operations.list_organizations(
        deps(), args.get("slug"), args["page"], args["per_page"]
    )
    return page_body("organizations", rows, total, args)


@orgs.route("/<ref>", methods=["GET"])
@orgs.response(200, s.OrganizationOut)
@orgs.doc(**AUTH_DOC)
def get_organization(ref: str) -> Any:
    """Read one organization by id or slug."""
    caller()
    return operations.get_organization(deps(), ref)


@orgs.route("/<ref>", methods=["PATCH"])
@orgs.arguments(s.OrganizationPatch)
@orgs.response(200, s.OrganizationOut)
@orgs.doc(**AUTH_DOC)
def update_organization(data: dict[str, Any], ref: str) -> Any:
    """Change an organization (its organizers, or an admin)."""
    return operations.update_organization(deps(), caller(), ref, data)


# -- API keys ----------------------------------------------------------------------------------

keys = Blueprint(
    "keys",
    __name__,
    url_prefix="/api/v1/keys",
    description="API keys: shown once, stored as a hash, honoured by every service.",
)


@keys.route("", methods=["POST"])
@once_without_secret
@keys.arguments(s.KeyIn)
@keys.response(201, s.KeyCreated)
@keys.doc(**AUTH_DOC, **IDEMPOTENCY_DOC)
def issue_key(data: dict[str, Any]) -> Any:
    """Issue a key; its secret is in this response only."""
    principal = caller()
    org = data.get("organization") or principal.organization_id
    new, row = operations.issue_key(deps(), principal, org, data["role"], data.get("name"))
    return {**aware(row), "secret": new.secret}


@keys.route("", methods=["GET"])
@keys.arguments(s.KeyFilter, location="query")
@keys.response(200, s.KeyPage)
@keys.doc(**AUTH_DOC)
def list_keys(args: dict[str, Any]) -> Any:
    """List an organization's keys (prefixes only, never secrets)."""
    rows, total = operations.list_keys(
        deps(),
        caller(),
        args.get("organization"),
        args["include_revoked"],
        args["page"],
        args["per_page"],
    )
    return page_body("api_keys", [aware(row) for row in rows], total, args)


@keys.route("/me", methods=["GET"])
@keys.response(200, s.KeyOut)
@keys.doc(**AUTH_DOC)
def whoami() -> Any:
    """Describe the key making this request."""
    return aware(operations.own_key(deps(), caller()))


@keys.route("/<key_id>", methods=["DELETE"])
@keys.response(204)
@keys.doc(**AUTH_DOC)
def revoke_key(key_id: str) -> None:
    """Revoke a key: every service refuses it within seconds."""
    operations.revoke_key(deps(), caller(), key_id)


@keys.route("/<key_id>/revoke", methods=["POST"])
@keys.arguments(s.RevokeIn)
@keys.response(200, s.RevokedOut)
@keys.doc(**AUTH_DOC)
def revoke_key_and_issued(data: dict[str, Any], key_id: str) -> Any:
    """Revoke a key and, with `with_issued`, every key still active it issued, and theirs in
    turn: a stolen key's first act may be to mint another. All or none (a 403 for any of them
    revokes nothing). Answers the ids revoked."""
    return {"revoked": operations.revoke_key(deps(), caller(), key_id, data["with_issued"])}


# -- campaigns ---------------------------------------------------------------------------------

campaigns = Blueprint(
    "campaigns",
    __name__,
    url_prefix="/api/v1/campaigns",
    description="Coalition campaigns: a lead organization, partners, draft → active → closed.",
)


@campaigns.route("", methods=["POST"])
@once
@campaigns.arguments(s.CampaignIn)
@campaigns.response(201, s.CampaignOut)
@campaigns.doc(**AUTH_DOC, **IDEMPOTENCY_DOC)
def create_campaign(data: dict[str, Any]) -> Any:
    """Create a draft campaign led by your organization."""
    return operations.create_campaign(deps(), caller(), data)


@campaigns.route("", methods=["GET"])
@campaigns.arguments(s.CampaignFilter, location="query")
@campaigns.response(200, s.CampaignPage)
@campaigns.doc(**AUTH_DOC)
def list_campaigns(args: dict[str, Any]) -> Any:
    """List the campaigns your organization leads, joined or is invited to."""
    items, total = operations.list_campaigns(
        deps(), caller(), args.get("status"), args["page"], args["per_page"]
    )
    return page_body("campaigns", items, total, args)


@campaigns.route("/<campaign_id>", methods=["GET"])
@campaigns.response(200, s.CampaignOut)
@campaigns.doc(**AUTH_DOC)
def get_campaign(campaign_id: str) -> Any:
    """Read a campaign."""
    return operations.get_campaign(deps(), caller(), campaign_id)


@campaigns.route("/<campaign_id>", methods=["PATCH"])
@campaigns.arguments(s.CampaignPatch)
@campaigns.response(200, s.CampaignOut)
@campaigns.doc(**AUTH_DOC)
def update_campaign(data: dict[str, Any], campaign_id: str) -> Any:
    """Change titles, descriptions or communities (until closed)."""
    return operations.update_campaign(deps(), caller(), campaign_id, data)


@campaigns.route("/<campaign_id>/launch", methods=["POST"])
@campaigns.response(200, s.CampaignOut)
@campaigns.doc(**AUTH_DOC)
def launch_campaign(campaign_id: str) -> Any:
    """Launch a draft campaign."""
    return operations.move_campaign(deps(), caller(), campaign_id, "launch")


@campaigns.route("/<campaign_id>/close", methods=["POST"])
@campaigns.response(200, s.CampaignOut)
@campaigns.doc(**AUTH_DOC)
def close_campaign(campaign_id: str) -> Any:
    """Close an active campaign; its unsent alerts are cancelled."""
    return operations.move_campaign(deps(), caller(), campaign_id, "close")


@campaigns.route("/<campaign_id>/partners", methods=["GET"])
@campaigns.arguments(PageArgs, location="query")
@campaigns.response(200, s.PartnerPage)
@campaigns.doc(**AUTH_DOC)
def list_partners(args: dict[str, Any], campaign_id: str) -> Any:
    """List the campaign's partners and open invitations, in the order they were invited."""
    items, total = operations.list_partners(
        deps(), caller(), campaign_id, args["page"], args["per_page"]
    )
    return page_body("partners", items, total, args)


@campaigns.route("/<campaign_id>/partners", methods=["POST"])
@once
@campaigns.arguments(s.InvitationIn)
@campaigns.response(201, s.PartnerOut)
@campaigns.doc(**AUTH_DOC, **IDEMPOTENCY_DOC)
def invite_partner(data: dict[str, Any], campaign_id: str) -> Any:
    """Invite an organization to join the coalition."""
    return operations.invite_partner(deps(), caller(), campaign_id, data["organization"])


@campaigns.route("/<campaign_id>/partners/<org>/accept", methods=["POST"])
@campaigns.response(200, s.PartnerOut)
@campaigns.doc(**AUTH_DOC)
def accept_invitation(campaign_id: str, org: str) -> Any:
    """Accept an invitation (the invited organization's organizer)."""
    return operations.answer_invitation(deps(), caller(), campaign_id, org, accept=True)


@campaigns.route("/<campaign_id>/partners/<org>/decline", methods=["POST"])
@campaigns.response(200, s.PartnerOut)
@campaigns.doc(**AUTH_DOC)
def decline_invitation(campaign_id: str, org: str) -> Any:
    """Decline an invitation."""
    return operations.answer_invitation(deps(), caller(), campaign_id, org, accept=False)


@campaigns.route("/<campaign_id>/partners/<org>/withdraw", methods=["POST"])
@campaigns.response(200, s.PartnerOut)
@campaigns.doc(**AUTH_DOC)
def withdraw_invitation(campaign_id: str, org: str) -> Any:
    """Withdraw an open invitation (the lead's organizers): the organization no longer reads
    the campaign (an invitation sent to the wrong organization, or no longer meant). It can
    be invited again. A partner that has joined is removed with `remove`, not here (409)."""
    return operations.withdraw_invitation(deps(), caller(), campaign_id, org)


@campaigns.route("/<campaign_id>/partners/<org>/remove", methods=["POST"])
@campaigns.response(200, s.PartnerOut)
@campaigns.doc(**AUTH_DOC)
def remove_partner(campaign_id: str, org: str) -> Any:
    """End a partnership: the lead's organizers remove a partner (status `removed`), or the
    partner's own organizers leave (`left`). The organization then no longer reads the
    campaign or its petitions' counts and exports, its box is no longer offered to signers,
    and its source code no longer credits it.
    Details that signers already chose to share with it are not recalled. It can be invited
    again. 409 if it is not a partner that has joined."""
    return operations.remove_partner(deps(), caller(), campaign_id, org)


# -- alerts ------------------------------------------------------------------------------------


@campaigns.route("/<campaign_id>/alerts", methods=["POST"])
@once
@campaigns.arguments(s.AlertIn)
@campaigns.response(201, s.AlertOut)
@campaigns.doc(**AUTH_DOC, **IDEMPOTENCY_DOC)
def create_alert(data: dict[str, Any], campaign_id: str) -> Any:
    """Draft an action alert; checks shows what scheduling would refuse, and SMS segments."""
    return alerts.create_alert(deps(), caller(), campaign_id, data)


@campaigns.route("/<campaign_id>/alerts", methods=["GET"])
@campaigns.arguments(s.AlertFilter, location="query")
@campaigns.response(200, s.AlertPage)
@campaigns.doc(**AUTH_DOC)
def list_alerts(args: dict[str, Any], campaign_id: str) -> Any:
    """List a campaign's alerts, newest first."""
    items, total = alerts.list_alerts(
        deps(), caller(), campaign_id, args.get("status"), args["page"], args["per_page"]
    )
    return page_body("alerts", items, total, args)


alert_bp = Blueprint(
    "alerts",
    __name__,
    url_prefix="/api/v1/alerts",
    description="Action alerts: validate, schedule, cancel, follow their progress.",
)


@alert_bp.route("/<alert_id>", methods=["GET"])
@alert_bp.response(200, s.AlertOut)
@alert_bp.doc(**AUTH_DOC)
def get_alert(alert_id: str) -> Any:
    """Read an alert with its progress (total, queued, sent, delivered, failed, suppressed)."""
    return alerts.get_alert(deps(), caller(), alert_id)


@alert_bp.route("/<alert_id>/preview", methods=["GET"])
@alert_bp.arguments(s.PreviewQuery, location="query")
@alert_bp.response(200, s.PreviewOut)
@alert_bp.doc(**AUTH_DOC)
def preview_alert(args: dict[str, Any], alert_id: str) -> Any:
    """The alert in one of its languages as a supporter would read it: subject, email and text
    messages filled with a sample person (or `given_name`), the campaign's title and the lead's
    name and address, each text with its opt-out line and segments. Notifications adds each
    email's footer besides."""
    return alerts.preview_alert(
        deps(), caller(), alert_id, args.get("locale"), args.get("given_name")
    )


@alert_bp.route("/<alert_id>/test", methods=["POST"])
@once
@alert_bp.arguments(s.TestSendIn)
@alert_bp.response(202, s.TestSendOut)
@alert_bp.doc(**AUTH_DOC, **IDEMPOTENCY_DOC)
def test_alert(data: dict[str, Any], alert_id: str) -> Any:
    """Send the alert's email in one language (`locale`, default the alert's), marked as a
    test and greeting `given_name` (default a stand-in), to the lead organization's contact
    address: how it reads in a real inbox, footer and all, before anyone else gets it;
    `discreet` as supporters in discreet mode get it. Any alert that has an email, draft or
    not; never to an address given here, and at most 5 an hour and 20 a day per organization
    (429 with Retry-After past them)."""
    return alerts.request_test(
        deps(), caller(), alert_id, data.get("locale"), data.get("given_name"), data["discreet"]
    )


@alert_bp.route("/<alert_id>", methods=["PATCH"])
@alert_bp.arguments(s.AlertPatch)
@alert_bp.response(200, s.AlertOut)
@alert_bp.doc(**AUTH_DOC)
def update_alert(data: dict[str, Any], alert_id: str) -> Any:
    """Edit a draft alert."""
    return alerts.update_alert(deps(), caller(), alert_id, data)


@alert_bp.route("/<alert_id>/schedule", methods=["POST"])
@alert_bp.arguments(s.ScheduleIn, required=False)
@alert_bp.response(200, s.AlertOut)
@alert_bp.doc(**AUTH_DOC)
def schedule_alert(data: dict[str, Any], alert_id: str) -> Any:
    """Validate every locale and schedule the alert (no send_at: send now)."""
    return alerts.schedule_alert(deps(), caller(), alert_id, data.get("send_at"))


@alert_bp.route("/<alert_id>/unschedule", methods=["POST"])
@alert_bp.response(200, s.AlertOut)
@alert_bp.doc(**AUTH_DOC)
def unschedule_alert(alert_id: str) -> Any:
    """Take a scheduled alert back to draft, to edit it and schedule it again (a typo noticed
    before it goes). An alert already published cannot be taken back (409): cancel it."""
    return alerts.unschedule_alert(deps(), caller(), alert_id)


@alert_bp.route("/<alert_id>/cancel", methods=["POST"])
@alert_bp.response(200, s.AlertOut)
@alert_bp.doc(**AUTH_DOC)
def cancel_alert(alert_id: str) -> Any:
    """Cancel an alert: before sending, nothing goes; while sending, the rest does not.

    Notifications stops within seconds: batches already on their way and texts held for
    quiet hours are not sent, and count as `suppressed` in the progress; what was sent
    stays sent. A cancelled alert cannot be cancelled again (409)."""
    return alerts.cancel_alert(deps(), caller(), alert_id)


BLUEPRINTS = (orgs, keys, campaigns, alert_bp)


def _authenticate() -> None:
    """Every route here takes a key: check it before the body or query is read, so a caller
    without one learns nothing of the API from a 422 (and the answer is the 401 it should be)."""
    caller()


for _blueprint in BLUEPRINTS:
    _blueprint.before_request(_authenticate)
