"""Marshmallow request and response schemas of the notifications API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class ErasureRequestSchema(Schema):
    # Checked as petitions checks a signer's address (email-validator, so addresses in any
    # script), in the view: marshmallow's Email field refuses what petitions accepted.
    email = fields.String(load_default=None, validate=validate.Length(max=320))
    phone = fields.String(load_default=None, validate=validate.Regexp(r"^\+[1-9]\d{6,14}$"))
    supporter_id = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "The id partners and events know the person by"},
    )


class ErasureSchema(Schema):
    status = fields.String(required=True)
    count = fields.Integer(required=True)


class _DeliveryCounts(Schema):
    """Where an alert's messages stand (the deliveries' statuses)."""

    total = fields.Integer(required=True)
    queued = fields.Integer(required=True)
    deferred = fields.Integer(
        required=True, metadata={"description": "texts held for their recipient's morning"}
    )
    sent = fields.Integer(required=True)
    delivered = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    suppressed = fields.Integer(required=True)


class AlertProgressSchema(_DeliveryCounts):
    alert_id = fields.String(required=True)
    status = fields.String(required=True)
    ambiguous = fields.Integer(required=True)
    dead_batches = fields.Integer(required=True)
    batches = fields.Integer(required=True)


class ChannelReportSchema(_DeliveryCounts):
    channel = fields.String(required=True)
    sending = fields.Integer(required=True)


class ReasonSchema(Schema):
    channel = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "failed or suppressed"})
    reason = fields.String(
        required=True,
        metadata={
            "description": "the provider's code (a Twilio error code, a SendGrid event) or the "
            "sender's own (invalid_address, retries_exhausted, held_back, ...)"
        },
    )
    count = fields.Integer(required=True)
    meaning = fields.String(allow_none=True, metadata={"description": "in plain words"})


class DeliveryReportSchema(Schema):
    alert_id = fields.String(required=True)
    channels = fields.List(fields.Nested(ChannelReportSchema), required=True)
    reasons = fields.List(
        fields.Nested(ReasonSchema),
        required=True,
        metadata={"description": "failed and suppressed messages by cause, largest first"},
    )


def _values(max_length: int) -> fields.List[str]:
    """A filter's values, as an alert's audience carries them (at most 500)."""
    return fields.List(
        fields.String(validate=validate.Length(min=1, max=max_length)),
        load_default=list,
        validate=validate.Length(max=500),
    )


class AudienceFilterSchema(Schema):
    locales = _values(35)
    countries = _values(2)
    regions = _values(6)
    postal_prefixes = _values(12)
    partner_organization_ids = _values(64)
    interests = _values(64)


class AudienceEstimateIn(Schema):
    campaign_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    audience = fields.Nested(AudienceFilterSchema, load_default=dict)


class AudienceEstimateOut(Schema):
    campaign_id = fields.String()
    email = fields.Integer(metadata={"description": "reachable by email now"})
    sms = fields.Integer(metadata={"description": "reachable by text now"})
    either = fields.Integer(metadata={"description": "reachable by one channel or both"})
