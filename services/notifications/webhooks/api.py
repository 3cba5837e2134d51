# mypy: disable-error-code="untyped-decorator"
"""HTTP edge of partner webhooks: /api/v1/webhooks/... (thin views over manage.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from services.notifications.store import idempotency_keys
from services.notifications.webhooks import manage
from services.notifications.webhooks import schemas as s
from services.notifications.webhooks.config import WebhookConfig
from services.notifications.webhooks.domain import EVENT_TYPES
from services.notifications.webhooks.store import attempts, deletions, endpoints, messages
from shared.auth import KeyVerifier, Principal, authorize, current_principal
from shared.config import Settings
from shared.errors import FieldError
from shared.idempotency import DOC as IDEMPOTENCY_DOC
from shared.idempotency import idempotent
from shared.pages import page_body, this_request_with
from shared.web import AUTH_DOC
from shared.web import ApiBlueprint as Blueprint

SECRET_SHOWN_ONCE = (
    "The signing secret was shown only in the first response to this request; "
    "if it was lost, rotate it."
)


def webhooks_blueprint(
    engine: Any,
    verifier: KeyVerifier,
    settings: Settings,
    config: WebhookConfig,
    clock: Callable[[], Any],
) -> Blueprint:
    """Return the endpoints API, bound to the service's dependencies."""
    bp = Blueprint(
        "webhooks",
        __name__,
        url_prefix="/api/v1/webhooks",
        description="Partner webhooks: endpoints, signed deliveries, attempts, replay, recovery.",
    )

    def caller() -> Principal:
        return current_principal(verifier)

    @bp.before_request
    def authenticate() -> None:
        """Every route here takes a key: checked before the body or query is read, so a caller
        without one gets the 401 it should, and learns nothing of the API from a 422."""
        caller()

    def ctx() -> manage.Context:
        return manage.Context(engine, config, settings.production, clock())

    @bp.route("/event-types", methods=["GET"])
    @bp.response(200, s.EventTypesOut)
    @bp.doc(**AUTH_DOC)
    def event_types() -> Any:
        """List the event types an endpoint may subscribe to."""
        caller()
        return {"event_types": list(EVENT_TYPES)}

    # The signing secret is shown on create and rotation only: a replay of the create answers
    # with the endpoint, not its secret (which may have been rotated since).
    def services() -> tuple[Any, KeyVerifier, Any, str]:
        return engine, verifier, idempotency_keys, settings.hash_key

    once = idempotent(services, redact={"secret": None, "note": SECRET_SHOWN_ONCE})
    # A retried test send answers its first message instead of queueing another.
    keyed = idempotent(services)

    @bp.route("/endpoints", methods=["POST"])
    @once
    @bp.arguments(s.EndpointIn)
    @bp.response(201, s.EndpointWithSecret)
    @bp.doc(**AUTH_DOC, **IDEMPOTENCY_DOC)
    def create_endpoint(data: dict[str, Any]) -> Any:
        """Register an endpoint; its signing secret is shown in this answer only.

        With an Idempotency-Key header a retry returns the first response (24 h, without the
        secret) and registers nothing again; the same key with a different request is refused
        (422).
        """
        return dict(manage.create(ctx(), caller(), data)._mapping)

    @bp.route("/endpoints", methods=["GET"])
    @bp.arguments(s.EndpointFilter, location="query")
    @bp.response(200, s.EndpointPage)
    @bp.doc(**AUTH_DOC)
    def list_endpoints(args: dict[str, Any]) -> Any:
        """List your organization's endpoints (an admin may name any organization)."""
        principal = caller()
        org = args.get("organization_id") if principal.is_admin else principal.organization_id
        authorize(principal, [principal.organization_id], manage.MANAGERS, "list endpoints")
        query = select(endpoints)
        if org:
            query = query.where(endpoints.c.organization_id == org)
        with engine.connect() as conn:
            rows, total = manage.page(
                conn, query, [endpoints.c.created_at, endpoints.c.endpoint_id],
                args["page"], args["per_page"],
            )  # fmt: skip
        return page_body("endpoints", [dict(r._mapping) for r in rows], total, args)

    @bp.route("/deletions", methods=["GET"])
    @bp.arguments(s.DeletionFilter, location="query")
    @bp.response(200, s.DeletionPage)
    @bp.doc(**AUTH_DOC)
    def list_deletions(args: dict[str, Any]) -> Any:
        """List whom your organization must delete from its own records, oldest first: people
        erased who signed its campaigns, shared with it or were sent to it, and people who
        withdrew their share with it (`after`: those listed after a `deletion_id`, to sync;
        `since`: from a time; `_links.next` continues after the page's last `deletion_id`).
        What webhooks tell endpoints, for those that import exports instead: match
        `supporter_id` in the exports. Kept as long as webhook messages
        (WEBHOOK_RETENTION_DAYS, 30): read it more often than that. An admin names the
        organization (`organization_id`; 422 without)."""
        principal = caller()
        org = args.get("organization_id") if principal.is_admin else principal.organization_id
        authorize(principal, [principal.organization_id], manage.MANAGERS, "list deletions")
        if not org:
            # An admin's list is one organization's (the rows say nothing of whose they are):
            # without one it read as "nobody to delete".
            raise FieldError("organization_id", "name the organization whose list to read")
        query = select(
            deletions.c.deletion_id, deletions.c.supporter_id, deletions.c.reason, deletions.c.at
        ).where(deletions.c.organization_id == org)
        if args.get("since"):
            query = query.where(deletions.c.at >= args["since"])
        if args.get("after") is not None:
            query = query.where(deletions.c.deletion_id > args["after"])
        with engine.connect() as conn:
            rows, total = manage.page(
                conn, query, [deletions.c.deletion_id], args["page"], args["per_page"]
            )
        body = page_body("deletions", [dict(r._mapping) for r in rows], total, args)
        if "next" in body["links"] and rows:
            # After this page's last id, not page + 1: the oldest rows are purged as time
            # goes on, and a page number then skips as many rows as went.
            body["links"]["next"] = this_request_with(
                after=rows[-1].deletion_id, page=1, per_page=args["per_page"]
            )
        return body

    @bp.route("/endpoints/<endpoint_id>", methods=["GET"])
    @bp.response(200, s.EndpointOut)
    @bp.doc(**AUTH_DOC)
    def get_endpoint(endpoint_id: str) -> Any:
        """Read one endpoint."""
        with engine.connect() as conn:
            return dict(manage.owned(conn, caller(), endpoint_id)._mapping)

    @bp.route("/endpoints/<endpoint_id>", methods=["PATCH"])
    @bp.arguments(s.EndpointPatch)
    @bp.response(200, s.EndpointOut)
    @bp.doc(**AUTH_DOC)
    def update_endpoint(data: dict[str, Any], endpoint_id: str) -> Any:
        """Change an endpoint's URL, description, event filter or enabled flag."""
        return dict(manage.change(ctx(), caller(), endpoint_id, data)._mapping)

    @bp.route("/endpoints/<endpoint_id>", methods=["DELETE"])
    @bp.response(204)
    @bp.doc(**AUTH_DOC)
    def delete_endpoint(endpoint_id: str) -> Any:
        """Delete an endpoint with its waiting messages and attempt log; the deletions it has
        not delivered move to the organization's other endpoints (409 if it has none)."""
        manage.remove(ctx(), caller(), endpoint_id)
        return ""

    @bp.route("/endpoints/<endpoint_id>/rotate-secret", methods=["POST"])
    @bp.response(200, s.EndpointWithSecret)
    @bp.doc(**AUTH_DOC)
    def rotate_secret(endpoint_id: str) -> Any:
        """Issue a new secret; for 24 hours deliveries carry signatures by both secrets."""
        return dict(manage.rotate(ctx(), caller(), endpoint_id)._mapping)

    @bp.route("/endpoints/<endpoint_id>/test", methods=["POST"])
    @keyed
    @bp.response(202, s.TestOut)
    @bp.doc(**AUTH_DOC, **IDEMPOTENCY_DOC)
    def test_endpoint(endpoint_id: str) -> Any:
        """Queue a signed webhook.test message to the endpoint."""
        return {"message_id": manage.test_send(ctx(), caller(), endpoint_id)}

    @bp.route("/endpoints/<endpoint_id>/messages", methods=["GET"])
    @bp.arguments(s.MessageFilter, location="query")
    @bp.response(200, s.MessagePage)
    @bp.doc(**AUTH_DOC)
    def list_messages(args: dict[str, Any], endpoint_id: str) -> Any:
        """List the endpoint's messages, newest first."""
        with engine.connect() as conn:
            manage.owned(conn, caller(), endpoint_id)
            query = select(*(c for c in messages.c if c.name != "body")).where(
                messages.c.endpoint_id == endpoint_id
            )
            if args.get("status"):
                query = query.where(messages.c.status == args["status"])
            rows, total = manage.page(
                conn, query, [messages.c.created_at.desc(), messages.c.message_id],
                args["page"], args["per_page"],
            )  # fmt: skip
        return page_body("messages", [dict(r._mapping) for r in rows], total, args)

    @bp.route("/endpoints/<endpoint_id>/attempts", methods=["GET"])
    @bp.arguments(s.AttemptFilter, location="query")
    @bp.response(200, s.AttemptPage)
    @bp.doc(**AUTH_DOC)
    def list_attempts(args: dict[str, Any], endpoint_id: str) -> Any:
        """List delivery attempts: time, status code, latency, error, response excerpt."""
        with engine.connect() as conn:
            manage.owned(conn, caller(), endpoint_id)
            query = select(attempts).where(attempts.c.endpoint_id == endpoint_id)
            if args.get("message_id"):
                query = query.where(attempts.c.message_id == args["message_id"])
            rows, total = manage.page(
                conn, query, [attempts.c.attempted_at.desc(), attempts.c.attempt_id.desc()],
                args["page"], args["per_page"],
            )  # fmt: skip
        return page_body("attempts", [dict(r._mapping) for r in rows], total, args)

    @bp.route("/endpoints/<endpoint_id>/messages/<message_id>/replay", methods=["POST"])
    @bp.response(202, s.MessageOut)
    @bp.doc(**AUTH_DOC)
    def replay_message(endpoint_id: str, message_id: str) -> Any:
        """Send one message again now, with the same webhook-id."""
        return dict(manage.replay(ctx(), caller(), endpoint_id, message_id)._mapping)

    @bp.route("/endpoints/<endpoint_id>/recover", methods=["POST"])
    @bp.arguments(s.RecoverIn)
    @bp.response(202, s.RecoverOut)
    @bp.doc(**AUTH_DOC)
    def recover_messages(data: dict[str, Any], endpoint_id: str) -> Any:
        """Resend every failed message created since a time (until a time, optionally)."""
        count = manage.recover(ctx(), caller(), endpoint_id, data["since"], data.get("until"))
        return {"recovered": count}

    return bp
