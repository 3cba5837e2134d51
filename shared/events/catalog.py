"""Kinship's event types: the contract between the services.

Each type's record key is named in its description. Within a major version, changes are additive
only. Community identity never appears in any of these events; signature.created's pronouns
and interests come near it and only notifications reads them (docs/events.md).
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from shared.events.registry import EventRegistry, EventType

CAMPAIGNS = "kinship.campaigns"
PETITIONS = "kinship.petitions"
NOTIFICATIONS = "kinship.notifications"
CHANNELS = ("email", "sms")
# What a consent is given for: a channel of the organization's own messages, or sharing the
# supporter's contact details with that (partner) organization.
SHARE = "share"
CONSENT_CHANNELS = (*CHANNELS, SHARE)
# Internal work topics of the notifications service: alert batches for its senders, one topic
# per channel, so a sender reads only its own channel's batches (with one shared topic, the SMS
# senders fetched and skipped every batch of a million-recipient email alert).
# A stated interest ("housing", "trans-health"): what a signer ticks and an alert targets
# (the whole value must match: re.fullmatch).
INTEREST = r"[a-z0-9][a-z0-9_-]{0,63}"
MAX_INTERESTS = 20

DISPATCH = "kinship.notifications.dispatch"
DISPATCH_TOPICS = {channel: f"{DISPATCH}.{channel}" for channel in CHANNELS}


def sender_group(prefix: str, channel: str) -> str:
    """The consumer group of a channel's senders (prefix: the notifications worker's group)."""
    return f"{prefix}-{channel}-sender"


# Topics whose records carry no order among themselves, keyed `<id>:<sequence number>`: they
# are spread round-robin by that number (shared/kafka.py), not by a hash of the key.
UNORDERED_TOPICS = frozenset(DISPATCH_TOPICS.values())
LocaleMap = fields.Dict(keys=fields.String(), values=fields.String())


def _id() -> fields.String:
    return fields.String(required=True, validate=validate.Length(min=1, max=64))


def _time() -> fields.DateTime:
    # With its offset (RFC 3339): a naive time passed validation, then failed every handler
    # that compares it with an aware one, and was dead-lettered only after its retries.
    return fields.AwareDateTime(required=True)


# -- campaigns ---------------------------------------------------------------------------------


class OrganizationSchema(Schema):
    organization_id = _id()
    slug = fields.String(required=True)
    name = fields.String(required=True)
    communities = fields.List(fields.String(), load_default=list)
    contact_email = fields.Email(allow_none=True)
    postal_address = fields.String(allow_none=True)
    source_code = fields.String(allow_none=True)
    at = _time()


class ApiKeyIssuedSchema(Schema):
    key_id = _id()
    prefix = fields.String(required=True)
    # SHA-256 of the whole key; keys are 256 random bits, so the hash cannot be reversed.
    key_hash = fields.String(required=True, validate=validate.Length(equal=64))
    role = fields.String(required=True, validate=validate.OneOf(["admin", "organizer", "partner"]))
    organization_id = _id()
    at = _time()


class ApiKeyRevokedSchema(Schema):
    key_id = _id()
    organization_id = _id()
    at = _time()


class CampaignSchema(Schema):
    campaign_id = _id()
    lead_organization_id = _id()
    partner_organization_ids = fields.List(fields.String(), load_default=list)
    communities = fields.List(fields.String(), load_default=list)
    titles = LocaleMap
    status = fields.String(validate=validate.OneOf(["draft", "active", "closed"]))
    at = _time()
    # Additive: what a projection needs to show the campaign without asking campaigns.
    descriptions = LocaleMap
    default_locale = fields.String()


class CampaignPartnerJoinedSchema(Schema):
    campaign_id = _id()
    organization_id = _id()
    at = _time()


class CampaignPartnerRemovedSchema(CampaignPartnerJoinedSchema):
    """A partner is out of the coalition: the lead removed it, or it left."""

    left = fields.Boolean(required=True)


class AlertContentSchema(Schema):
    email_subject = fields.String(allow_none=True)
    email_html = fields.String(allow_none=True)
    email_text = fields.String(allow_none=True)
    discreet_email_subject = fields.String(allow_none=True)
    sms_text = fields.String(allow_none=True)
    sms_discreet_text = fields.String(allow_none=True)


class AudienceSchema(Schema):
    locales = fields.List(fields.String(), load_default=list)
    countries = fields.List(fields.String(), load_default=list)
    regions = fields.List(fields.String(), load_default=list)
    postal_prefixes = fields.List(fields.String(), load_default=list)
    partner_organization_ids = fields.List(fields.String(), load_default=list)
    interests = fields.List(fields.String(), load_default=list)


class AlertScheduledSchema(Schema):
    alert_id = _id()
    campaign_id = _id()
    channels = fields.List(fields.String(validate=validate.OneOf(CHANNELS)), required=True)
    send_at = fields.AwareDateTime(allow_none=True)
    at = _time()
    organization_id = fields.String()  # additive: the lead organization


class SenderSchema(Schema):
    """The lead organization as the alert was checked against when it was published."""

    name = fields.String(required=True)
    postal_address = fields.String(allow_none=True)


class AlertPublishedSchema(Schema):
    alert_id = _id()
    campaign_id = _id()
    organization_id = _id()
    channels = fields.List(fields.String(validate=validate.OneOf(CHANNELS)), required=True)
    default_locale = fields.String(required=True)
    content = fields.Dict(keys=fields.String(), values=fields.Nested(AlertContentSchema))
    audience = fields.Nested(AudienceSchema, required=True)
    at = _time()
    # Additive: the coalition the audience is drawn from and when the organizer asked to send.
    partner_organization_ids = fields.List(fields.String())
    send_at = fields.AwareDateTime(allow_none=True)
    # Additive: the sender's name and the postal address the emails' footer prints, as checked
    # at publishing (organization.updated is keyed apart, and may come after the alert).
    sender = fields.Nested(SenderSchema)


class AlertUnscheduledSchema(Schema):
    """A scheduled alert taken back to draft, to be edited and scheduled again."""

    alert_id = _id()
    campaign_id = _id()
    at = _time()


class AlertTestRequestedSchema(Schema):
    """An organizer asked to see an alert's email in an inbox before sending it: notifications
    sends it, marked as a test, to the lead organization's contact address only."""

    alert_id = _id()
    campaign_id = _id()
    organization_id = _id()
    request_id = _id()
    locale = fields.String(required=True)
    # The alert's: the campaign title's language is picked as for the alert itself.
    default_locale = fields.String(required=True)
    content = fields.Nested(AlertContentSchema, required=True)
    sender = fields.Nested(SenderSchema, required=True)
    # The stand-in the email greets (the preview's, or the name the organizer gave).
    given_name = fields.String(load_default="")
    family_name = fields.String(load_default="")
    # As a supporter in discreet mode gets it: the discreet subject, the neutral sender.
    discreet = fields.Boolean(load_default=False)
    at = _time()


class AlertCancelledSchema(Schema):
    alert_id = _id()
    campaign_id = _id()
    at = _time()
    # Additive, when the scheduler cancelled a due alert that no longer passed the checks: the
    # lead is told why (notifications emails its contact address).
    organization_id = fields.String()
    name = fields.String()
    default_locale = fields.String()
    reason = fields.String()


# -- petitions ---------------------------------------------------------------------------------


class PetitionPublishedSchema(Schema):
    petition_id = _id()
    campaign_id = _id()
    organization_id = _id()
    titles = LocaleMap
    default_locale = fields.String(required=True)
    goal = fields.Integer(required=True)
    double_opt_in = fields.Boolean(required=True)
    at = _time()


class PetitionClosedSchema(Schema):
    petition_id = _id()
    campaign_id = _id()
    total = fields.Integer(required=True)
    at = _time()


class PersonSchema(Schema):
    given_name = fields.String(allow_none=True)
    family_name = fields.String(allow_none=True)
    # A String, not fields.Email: the petitions edge validated and normalized the address
    # (email_validator), and fields.Email refuses some it accepts (Indic and Thai vowel signs).
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    phone = fields.String(allow_none=True)  # E.164
    postal_code = fields.String(allow_none=True)
    country = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    pronouns = fields.String(allow_none=True)
    discreet = fields.Boolean(load_default=False)


class ConsentsSchema(Schema):
    email = fields.Boolean(required=True)
    sms = fields.Boolean(required=True)
    partner_organization_ids = fields.List(fields.String(), load_default=list)


class AttributionSchema(Schema):
    source = fields.String(allow_none=True)
    partner_organization_id = fields.String(allow_none=True)


class SignatureCreatedSchema(Schema):
    """Key: supporter_id. `duplicate` marks a repeat signature: thank nobody twice."""

    signature_id = _id()
    petition_id = _id()
    campaign_id = _id()
    organization_id = _id()
    supporter_id = _id()
    duplicate = fields.Boolean(required=True)
    double_opt_in = fields.Boolean(required=True)
    confirm_url = fields.String(allow_none=True)
    locale = fields.String(required=True)
    person = fields.Nested(PersonSchema, required=True)
    consents = fields.Nested(ConsentsSchema, required=True)
    attribution = fields.Nested(AttributionSchema, required=True)
    interests = fields.List(fields.String(), load_default=list)
    at = _time()


class SignatureConfirmedSchema(Schema):
    signature_id = _id()
    petition_id = _id()
    campaign_id = _id()
    supporter_id = _id()
    at = _time()
    # Additive: the partners the confirmed signature shares with, as petitions decided when it
    # was confirmed (the boxes ticked, of those still partners then). Absent from an earlier
    # release's.
    partner_organization_ids = fields.List(fields.String(), load_default=None, allow_none=True)


class MilestoneReachedSchema(Schema):
    petition_id = _id()
    campaign_id = _id()
    milestone = fields.Integer(required=True)
    total = fields.Integer(required=True)
    next_goal = fields.Integer(required=True)
    at = _time()


# -- notifications -----------------------------------------------------------------------------


class DeliverySchema(Schema):
    delivery_id = _id()
    supporter_id = _id()
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    alert_id = fields.String(allow_none=True)
    provider_message_id = fields.String(allow_none=True)
    error_code = fields.String(allow_none=True)
    at = _time()


class AlertProgressedSchema(Schema):
    alert_id = _id()
    campaign_id = _id()
    total = fields.Integer(required=True)
    queued = fields.Integer(required=True)
    sent = fields.Integer(required=True)
    delivered = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    suppressed = fields.Integer(required=True)
    # Texts held now for the recipient's morning (quiet hours), counted in queued: additive,
    # 0 in reports made before it was added.
    deferred = fields.Integer(load_default=0)
    # expanding, sending, done (sent + failed + suppressed = total, nothing left to expand) or
    # cancelled; absent in reports made before it was added.
    status = fields.String(load_default=None)
    at = _time()


class ConsentChangedSchema(Schema):
    """Key: supporter_id. channel `share`: sharing contact details with organization_id (a
    partner); its `unsubscribe` means the partner must delete what it was given."""

    supporter_id = _id()
    channel = fields.String(required=True, validate=validate.OneOf(CONSENT_CHANNELS))
    organization_id = fields.String(allow_none=True)
    change = fields.String(
        required=True,
        validate=validate.OneOf(
            ["subscribe", "unsubscribe", "stop", "start", "bounce", "complaint"]
        ),
    )
    at = _time()


class PersonErasedSchema(Schema):
    """Key: supporter_id. Carries keyed hashes only, never the address itself."""

    supporter_id = _id()
    email_hash = fields.String(allow_none=True)
    phone_hash = fields.String(allow_none=True)
    at = _time()


def _supporter_ids(values: list[str]) -> None:
    """Each id as the expander writes it: 1 to 64 printable characters. A longer one (or a
    NUL) failed the ledger's insert on every try, then the giving up too, and the batch held
    its partition for ever instead of going to the dead-letter topic. A check of the whole
    list, which keeps a batch's thousand ids on the registry's fast path."""
    if not all(0 < len(value) <= 64 and value.isprintable() for value in values):
        raise ValidationError("Supporter ids are 1 to 64 printable characters.")


class DeliveryBatchQueuedSchema(Schema):
    """Key: batch_id. One slice of an alert's audience for one channel (supporter ids only)."""

    batch_id = _id()
    alert_id = _id()
    campaign_id = _id()
    organization_id = _id()
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    seq = fields.Integer(required=True)
    supporter_ids = fields.List(
        fields.String(), required=True, validate=[validate.Length(max=1000), _supporter_ids]
    )
    at = _time()


def _t(name: str, topic: str, schema: type[Schema], key: str) -> EventType:
    return EventType(f"kinship.{name}.v1", topic, schema, f"record key: {key}")


CATALOG = EventRegistry(
    [
        _t("organization.created", CAMPAIGNS, OrganizationSchema, "organization_id"),
        _t("organization.updated", CAMPAIGNS, OrganizationSchema, "organization_id"),
        _t("apikey.issued", CAMPAIGNS, ApiKeyIssuedSchema, "organization_id"),
        _t("apikey.revoked", CAMPAIGNS, ApiKeyRevokedSchema, "organization_id"),
        _t("campaign.created", CAMPAIGNS, CampaignSchema, "campaign_id"),
        _t("campaign.launched", CAMPAIGNS, CampaignSchema, "campaign_id"),
        _t("campaign.closed", CAMPAIGNS, CampaignSchema, "campaign_id"),
        _t("campaign.updated", CAMPAIGNS, CampaignSchema, "campaign_id"),
        _t("campaign.partner_joined", CAMPAIGNS, CampaignPartnerJoinedSchema, "campaign_id"),
        _t("campaign.partner_removed", CAMPAIGNS, CampaignPartnerRemovedSchema, "campaign_id"),
        _t("alert.scheduled", CAMPAIGNS, AlertScheduledSchema, "campaign_id"),
        _t("alert.published", CAMPAIGNS, AlertPublishedSchema, "campaign_id"),
        _t("alert.unscheduled", CAMPAIGNS, AlertUnscheduledSchema, "campaign_id"),
        _t("alert.cancelled", CAMPAIGNS, AlertCancelledSchema, "campaign_id"),
        _t("alert.test_requested", CAMPAIGNS, AlertTestRequestedSchema, "campaign_id"),
        _t("petition.published", PETITIONS, PetitionPublishedSchema, "petition_id"),
        # An open petition's texts, targets or default locale changed: the same shape.
        _t("petition.updated", PETITIONS, PetitionPublishedSchema, "petition_id"),
        _t("petition.closed", PETITIONS, PetitionClosedSchema, "petition_id"),
        _t("signature.created", PETITIONS, SignatureCreatedSchema, "supporter_id"),
        _t("signature.confirmed", PETITIONS, SignatureConfirmedSchema, "supporter_id"),
        _t("petition.milestone_reached", PETITIONS, MilestoneReachedSchema, "petition_id"),
        _t("delivery.sent", NOTIFICATIONS, DeliverySchema, "supporter_id"),
        _t("delivery.delivered", NOTIFICATIONS, DeliverySchema, "supporter_id"),
        _t("delivery.failed", NOTIFICATIONS, DeliverySchema, "supporter_id"),
        _t("alert.progressed", NOTIFICATIONS, AlertProgressedSchema, "campaign_id"),
        _t("consent.changed", NOTIFICATIONS, ConsentChangedSchema, "supporter_id"),
        _t("person.erased", NOTIFICATIONS, PersonErasedSchema, "supporter_id"),
        *(
            _t(f"{channel}_batch.queued", topic, DeliveryBatchQueuedSchema, "batch_id")
            for channel, topic in DISPATCH_TOPICS.items()
        ),
    ]
)


def type_name(short: str) -> str:
    """Return a short type's full name: 'signature.created' -> 'kinship.signature.created.v1'."""
    return f"kinship.{short}.v1"
