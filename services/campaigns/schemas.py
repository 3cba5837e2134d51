"""Request and response schemas of the campaigns API (Marshmallow, documented in OpenAPI)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from shared.auth import ROLES
from shared.errors import FieldError
from shared.events.catalog import CHANNELS
from shared.events.envelope import json_dumps
from shared.pages import PageArgs, page_schema
from shared.privacy import EMAIL_MAX
from shared.web import single_line_text, storable_text

ALERT_STATUSES = ("draft", "scheduled", "published", "cancelled")
CAMPAIGN_STATUSES = ("draft", "active", "closed")
MAX_LOCALES = 30
# Events carry these texts whole, and Kafka refuses a message over ~1 MB: one that big would
# stall the outbox relay. So an alert's content (all locales together) and a campaign's
# descriptions are capped by their size as the event's JSON (UTF-8) well below that.
MAX_CONTENT_BYTES = 512 * 1024
MAX_DESCRIPTIONS_BYTES = 256 * 1024
MAX_COMMUNITIES = 50
MAX_AUDIENCE_VALUES = 500  # per audience filter: they travel in alert.published too


class Text(fields.String):
    """A string with no NUL or unpaired surrogate (a 422 naming the field, not a 500)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        storable_text(text)
        return text


def encoded_at_most(limit: int) -> Callable[[Any], None]:
    """Return a validator refusing a value whose JSON (as events carry it) exceeds limit bytes."""

    def check(value: Any) -> None:
        if len(json_dumps(value)) > limit:
            raise ValidationError(f"At most {limit // 1024} KB in total, all locales together.")

    return check


def check_merged(schema: type[Schema], name: str, value: Any) -> None:
    """Check a map a merge patch produced (a PATCH's titles, descriptions or content merged
    into what was stored) by the whole request's own field: its limits hold for the result,
    not only for the patch. A 422 naming the field."""
    try:
        schema().fields[name].deserialize(value)
    except ValidationError as exc:
        raise FieldError(name, _first_message(exc.messages)) from None


def _first_message(messages: Any) -> str:
    if isinstance(messages, dict):
        return _first_message(next(iter(messages.values()), ""))
    if isinstance(messages, list):
        return _first_message(messages[0]) if messages else ""
    return str(messages)


def _texts(
    max_length: int,
    required: bool = False,
    max_bytes: int | None = None,
    patch: bool = False,
    line: bool = False,
) -> fields.Dict:
    """Return a map of locale to text: at most MAX_LOCALES locales (and max_bytes in all); in
    a PATCH a merge patch, where null removes a locale; line: each text one line (a title,
    which can fill an email's subject)."""
    value_checks: list[Callable[[Any], Any]] = [validate.Length(max=max_length)]
    if line:
        value_checks.append(single_line_text)
    checks: list[Callable[[Any], Any]] = [validate.Length(max=MAX_LOCALES)]
    if max_bytes is not None:
        checks.append(encoded_at_most(max_bytes))
    return fields.Dict(
        keys=Text(validate=validate.Length(min=2, max=35)),
        values=Text(validate=value_checks, allow_none=patch),
        required=required,
        validate=checks,
    )


class Links(Schema):
    self = fields.Dict(dump_only=True)


# -- organizations -----------------------------------------------------------------------------


class OrganizationIn(Schema):
    name = Text(required=True, validate=[validate.Length(min=1, max=200), single_line_text])
    slug = Text(required=True, validate=validate.Length(min=1, max=64))
    communities = fields.List(
        Text(validate=validate.Length(max=63)),
        validate=validate.Length(max=MAX_COMMUNITIES),
        load_default=list,
    )
    contact_email = fields.Email(
        allow_none=True, load_default=None, validate=validate.Length(max=EMAIL_MAX)
    )
    postal_address = Text(allow_none=True, load_default=None, validate=validate.Length(max=500))
    source_code = Text(allow_none=True, load_default=None, validate=validate.Length(max=64))


class OrganizationPatch(Schema):
    name = Text(validate=[validate.Length(min=1, max=200), single_line_text])
    slug = Text(validate=validate.Length(min=1, max=64))
    communities = fields.List(
        Text(validate=validate.Length(max=63)), validate=validate.Length(max=MAX_COMMUNITIES)
    )
    contact_email = fields.Email(allow_none=True, validate=validate.Length(max=EMAIL_MAX))
    postal_address = Text(allow_none=True, validate=validate.Length(max=500))
    source_code = Text(validate=validate.Length(min=2, max=64))


class OrganizationOut(Schema):
    organization_id = Text()
    slug = Text()
    name = Text()
    communities = fields.List(Text())
    contact_email = Text(allow_none=True)
    postal_address = Text(allow_none=True)
    source_code = Text()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class OrganizationFilter(PageArgs):
    slug = Text()


# -- API keys ----------------------------------------------------------------------------------


class KeyIn(Schema):
    organization = Text(metadata={"description": "Organization id or slug (default: your own)"})
    role = Text(required=True, validate=validate.OneOf(ROLES))
    name = Text(allow_none=True, load_default=None, validate=validate.Length(max=200))


class KeyOut(Schema):
    key_id = Text()
    prefix = Text()
    role = Text()
    organization_id = Text()
    name = Text(allow_none=True)
    issued_by = Text(allow_none=True)
    issued_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)


class KeyCreated(KeyOut):
    secret = Text(
        allow_none=True,
        metadata={"description": "The key itself: shown once, never again (null in a replay)"},
    )
    note = Text(metadata={"description": "Only in an Idempotency-Key replay: why no secret"})


class KeyFilter(PageArgs):
    organization = Text()
    include_revoked = fields.Boolean(load_default=False)


# -- campaigns ---------------------------------------------------------------------------------


class CampaignIn(Schema):
    lead_organization = Text(metadata={"description": "Id or slug (default: your own)"})
    default_locale = Text(required=True, validate=validate.Length(min=2, max=35))
    titles = _texts(300, required=True, line=True)
    descriptions = _texts(20_000, max_bytes=MAX_DESCRIPTIONS_BYTES)
    communities = fields.List(
        Text(validate=validate.Length(max=63)),
        validate=validate.Length(max=MAX_COMMUNITIES),
        load_default=list,
    )


class CampaignPatch(Schema):
    """A JSON Merge Patch (RFC 7396): titles and descriptions merge by locale, and a locale set
    to null is removed; communities, a list, is replaced whole."""

    default_locale = Text(validate=validate.Length(min=2, max=35))
    titles = _texts(300, patch=True, line=True)
    descriptions = _texts(20_000, max_bytes=MAX_DESCRIPTIONS_BYTES, patch=True)
    communities = fields.List(
        Text(validate=validate.Length(max=63)), validate=validate.Length(max=MAX_COMMUNITIES)
    )


class PartnerOut(Schema):
    organization_id = Text()
    slug = Text()
    name = Text()
    status = Text(metadata={"description": "invited, joined, declined, withdrawn, removed or left"})
    invited_at = fields.DateTime()
    responded_at = fields.DateTime(allow_none=True)


class CampaignOut(Schema):
    campaign_id = Text()
    lead_organization_id = Text()
    partner_organization_ids = fields.List(Text())
    partners = fields.List(fields.Nested(PartnerOut))
    status = Text()
    default_locale = Text()
    titles = fields.Dict()
    descriptions = fields.Dict()
    communities = fields.List(Text())
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    launched_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)


class CampaignFilter(PageArgs):
    status = Text(validate=validate.OneOf(CAMPAIGN_STATUSES))


class InvitationIn(Schema):
    organization = Text(required=True, metadata={"description": "Organization id or slug"})


# -- alerts ------------------------------------------------------------------------------------


class AlertContentIn(Schema):
    email_subject = Text(allow_none=True, validate=validate.Length(max=255))
    email_html = Text(allow_none=True, validate=validate.Length(max=200_000))
    email_text = Text(allow_none=True, validate=validate.Length(max=100_000))
    discreet_email_subject = Text(allow_none=True, validate=validate.Length(max=255))
    sms_text = Text(allow_none=True, validate=validate.Length(max=1600))
    sms_discreet_text = Text(allow_none=True, validate=validate.Length(max=1600))


def _audience_values(patch: bool = False) -> fields.List[str]:
    """One audience filter; in a patch, left out means kept and null means cleared."""
    return fields.List(
        Text(validate=validate.Length(max=64)),
        validate=validate.Length(max=MAX_AUDIENCE_VALUES),
        **({"allow_none": True} if patch else {"load_default": list}),
    )


class AudienceIn(Schema):
    locales = _audience_values()
    countries = _audience_values()
    regions = _audience_values()
    postal_prefixes = _audience_values()
    partner_organization_ids = _audience_values()
    interests = _audience_values()


def _alert_fields(required: bool) -> dict[str, Any]:
    return {
        "name": Text(
            required=required, validate=[validate.Length(min=1, max=200), single_line_text]
        ),
        "channels": fields.List(
            Text(validate=validate.OneOf(CHANNELS)),
            required=required,
            validate=validate.Length(min=1, max=2),
        ),
        "default_locale": Text(required=required, validate=validate.Length(min=2, max=35)),
        "content": fields.Dict(
            keys=Text(validate=validate.Length(min=2, max=35)),
            values=fields.Nested(AlertContentIn),
            required=required,
            validate=[
                validate.Length(min=1, max=MAX_LOCALES),
                encoded_at_most(MAX_CONTENT_BYTES),
            ],
        ),
        "audience": fields.Nested(AudienceIn, load_default=dict if required else None),
    }


AlertIn = Schema.from_dict(_alert_fields(True), name="AlertIn")


class AudiencePatch(Schema):
    """Audience filters to change: a filter left out is kept, one set to null or [] cleared."""

    locales = _audience_values(patch=True)
    countries = _audience_values(patch=True)
    regions = _audience_values(patch=True)
    postal_prefixes = _audience_values(patch=True)
    partner_organization_ids = _audience_values(patch=True)
    interests = _audience_values(patch=True)


_patch = _alert_fields(False)
_patch["audience"] = fields.Nested(AudiencePatch)
_patch["content"] = fields.Dict(
    keys=Text(validate=validate.Length(min=2, max=35)),
    values=fields.Nested(AlertContentIn, allow_none=True),
    validate=[validate.Length(min=1, max=MAX_LOCALES), encoded_at_most(MAX_CONTENT_BYTES)],
)
AlertPatch = Schema.from_dict(_patch, name="AlertPatch")
AlertPatch.__doc__ = """A JSON Merge Patch (RFC 7396) of a draft alert: content merges by locale
and by text (null removes one), audience by filter; channels, a list, is replaced whole."""


class ScheduleIn(Schema):
    send_at = fields.AwareDateTime(
        allow_none=True,
        load_default=None,
        metadata={"description": "When to send (RFC 3339 with offset); leave out to send now"},
    )


class ProgressOut(Schema):
    total = fields.Integer()
    queued = fields.Integer()
    sent = fields.Integer()
    delivered = fields.Integer()
    failed = fields.Integer()
    suppressed = fields.Integer()
    deferred = fields.Integer(
        metadata={"description": "texts held now for their recipient's morning (in queued)"}
    )
    updated_at = fields.DateTime(allow_none=True)
    status = fields.String(
        allow_none=True,
        metadata={
            "description": "notifications' word: sending, done (every recipient counted) or"
            " cancelled; null before its first report"
        },
    )


class AlertOut(Schema):
    alert_id = Text()
    campaign_id = Text()
    name = Text()
    status = Text(metadata={"description": "draft, scheduled, published or cancelled"})
    channels = fields.List(Text())
    default_locale = Text()
    content = fields.Dict()
    audience = fields.Dict()
    send_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    scheduled_at = fields.DateTime(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    cancel_reason = Text(
        allow_none=True,
        metadata={"description": "Why sending was called off when the alert fell due, if it was"},
    )
    progress = fields.Nested(ProgressOut)
    checks = fields.Dict(
        metadata={
            "description": "ready, problems by field (they stop scheduling), warnings by field"
            " (they do not), SMS encoding/length/segments"
        }
    )


class AlertFilter(PageArgs):
    status = Text(validate=validate.OneOf(ALERT_STATUSES))


OrganizationPage = page_schema("organizations", OrganizationOut)
KeyPage = page_schema("api_keys", KeyOut)
CampaignPage = page_schema("campaigns", CampaignOut)
AlertPage = page_schema("alerts", AlertOut)
PartnerPage = page_schema("partners", PartnerOut)


class PreviewQuery(Schema):
    locale = Text(validate=validate.Length(min=2, max=35))
    given_name = Text(validate=[validate.Length(min=1, max=100), single_line_text])


class TestSendIn(PreviewQuery):
    discreet = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Send it as a supporter in discreet mode gets it: the alert's"
            " discreet subject (or a neutral one) from the service's neutral sender name"
        },
    )


class TestSendOut(Schema):
    alert_id = Text()
    locale = Text()
    to = Text(metadata={"description": "the lead organization's contact address"})


class PreviewOut(Schema):
    alert_id = Text()
    locale = Text()
    texts = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "each of the alert's texts in that language, filled"},
    )
    sms = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(),
        metadata={"description": "each text message's encoding, length and segments"},
    )


class RevokeIn(Schema):
    with_issued = fields.Boolean(
        load_default=False, metadata={"description": "also every key it issued, transitively"}
    )


class RevokedOut(Schema):
    revoked = fields.List(Text())
