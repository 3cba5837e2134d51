"""Marshmallow schemas of the webhook endpoints API."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.notifications.webhooks.domain import EVENT_TYPES
from shared.pages import PageArgs, page_schema
from shared.web import storable_text, utc_representable

EventType = fields.String(validate=validate.OneOf(EVENT_TYPES))


class EndpointFilter(PageArgs):
    organization_id = fields.String(validate=[validate.Length(max=64), storable_text])


class AttemptFilter(PageArgs):
    message_id = fields.String(validate=[validate.Length(max=40), storable_text])


class MessageFilter(PageArgs):
    status = fields.String(
        validate=validate.OneOf(["pending", "delivering", "succeeded", "failed"])
    )


class EndpointIn(Schema):
    url = fields.String(required=True, validate=[validate.Length(min=8, max=2000), storable_text])
    description = fields.String(load_default="", validate=[validate.Length(max=500), storable_text])
    event_types = fields.List(EventType, load_default=list, validate=validate.Length(max=50))
    enabled = fields.Boolean(load_default=True)
    organization_id = fields.String(validate=[validate.Length(max=64), storable_text])


class EndpointPatch(Schema):
    url = fields.String(validate=[validate.Length(min=8, max=2000), storable_text])
    description = fields.String(validate=[validate.Length(max=500), storable_text])
    event_types = fields.List(EventType, validate=validate.Length(max=50))
    enabled = fields.Boolean()


class EndpointOut(Schema):
    endpoint_id = fields.String()
    organization_id = fields.String()
    url = fields.String()
    description = fields.String()
    event_types = fields.List(fields.String())
    enabled = fields.Boolean()
    disabled_reason = fields.String(allow_none=True)
    disabled_at = fields.DateTime(allow_none=True)
    failing_since = fields.DateTime(allow_none=True)
    previous_secret_expires_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class EndpointWithSecret(EndpointOut):
    secret = fields.String(metadata={"description": "whsec_…; shown on create and rotate only"})


class RecoverIn(Schema):
    since = fields.AwareDateTime(required=True, validate=utc_representable)
    until = fields.AwareDateTime(load_default=None, allow_none=True, validate=utc_representable)

    @validates_schema
    def _in_order(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("until") is not None and data["until"] < data["since"]:
            raise ValidationError("Must not be before since.", "until")


class RecoverOut(Schema):
    recovered = fields.Integer()


class MessageOut(Schema):
    message_id = fields.String(metadata={"description": "the webhook-id header"})
    event_id = fields.String()
    event_type = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)


class AttemptOut(Schema):
    attempt_id = fields.Integer()
    message_id = fields.String()
    attempted_at = fields.DateTime()
    trigger = fields.String()
    status_code = fields.Integer(allow_none=True)
    latency_ms = fields.Integer()
    error = fields.String(allow_none=True)
    response_excerpt = fields.String(allow_none=True)


class DeletionFilter(EndpointFilter):
    since = fields.AwareDateTime(
        validate=utc_representable,
        metadata={
            "description": "those erased or withdrawn from this time on (when it happened: a "
            "row can be listed later than that, so sync with `after`)"
        },
    )
    after = fields.Integer(
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={
            "description": "those listed after this `deletion_id`: pass the last one you "
            "handled. Ids become visible in their order, so none is passed for good"
        },
    )


class DeletionOut(Schema):
    deletion_id = fields.Integer(metadata={"description": "increasing: a cursor for syncing"})
    supporter_id = fields.String(metadata={"description": "as in exports and webhook bodies"})
    reason = fields.String(metadata={"description": "erased, or withdrawn (their share)"})
    at = fields.DateTime()


EndpointPage = page_schema("endpoints", EndpointOut, "Webhook")
DeletionPage = page_schema("deletions", DeletionOut, "Webhook")
MessagePage = page_schema("messages", MessageOut, "Webhook")
AttemptPage = page_schema("attempts", AttemptOut, "Webhook")


class EventTypesOut(Schema):
    event_types = fields.List(fields.String())


class TestOut(Schema):
    message_id = fields.String()
