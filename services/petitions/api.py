# mypy: disable-error-code="untyped-decorator"
"""The petitions HTTP API: thin views that parse, call the use cases and serialize."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError

from services.petitions import exports, pages, schemas, signing, usecases
from services.petitions.bootstrap import Deps
from shared.auth import Principal, bearer_token, current_principal, require_role
from shared.errors import Conflict, NotFound
from shared.idempotency import HEADER as IDEMPOTENCY_HEADER
from shared.idempotency import REPLAYED, header_doc
from shared.pages import PageArgs, page_body
from shared.ratelimit import RateLimits
from shared.web import AUTH_DOC, ERROR_RESPONSES, JsonParser


def replay_headers(body: Any) -> dict[str, str]:
    """The headers of an answer: a replay under an Idempotency-Key says it is one."""
    return {REPLAYED: "true"} if isinstance(body, usecases.Replayed) else {}


# An export's answer: CSV, streamed, named for saving.
CSV_RESPONSE = {
    "description": "CSV (UTF-8), streamed",
    "content": {"text/csv": {"schema": {"type": "string"}}},
    "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
}


# Exports are limited per key (429) and gone once a petition's signers are erased (410); the
# error shapes are filled in by shared.web.ErrorResponses.
EXPORT_RESPONSES = {
    "200": CSV_RESPONSE,
    "410": {},
    "429": {"description": "Too many exports with this key"},
}


def dotted(messages: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested Marshmallow errors to dotted field names ({"person.email": [...]})."""
    if not isinstance(messages, Mapping):
        return {prefix or "_schema": messages}
    flat: dict[str, Any] = {}
    for name, value in messages.items():
        # Marshmallow files whole-object errors under _schema: name the object itself.
        if name == "_schema" and prefix:
            path = prefix
        else:
            path = f"{prefix}.{name}" if prefix else str(name)
        if isinstance(value, Mapping):
            flat.update(dotted(value, path))
        else:
            flat[path] = value
    return flat


class DottedParser(JsonParser):
    """webargs' parser, naming nested fields with dotted paths in the 422 answer."""

    def handle_error(
        self,
        error: ValidationError,
        req: Any,
        schema: Schema,
        *,
        error_status_code: int | None,
        error_headers: Mapping[str, str] | None,
    ) -> NoReturn:
        messages = error.messages
        if isinstance(messages, Mapping):
            messages = {location: dotted(errs) for location, errs in messages.items()}
        error = ValidationError(messages)
        super().handle_error(
            error,
            req,
            schema,
            error_status_code=error_status_code,
            error_headers=error_headers,
        )
        raise AssertionError("handle_error aborts")  # pragma: no cover


class PetitionsBlueprint(Blueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = DottedParser()


def optional_principal(deps: Deps) -> Principal | None:
    """Return the caller's principal when a key is sent (401 if it is bad), else None."""
    if bearer_token() is None:
        return None
    return current_principal(deps.verifier)


def accept_languages() -> list[str]:
    """The Accept-Language tags in order of preference, less those marked not acceptable."""
    return [tag for tag, quality in request.accept_languages if quality > 0][:10]


def limited(limits: RateLimits) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Count each request against limits by client address before anything else is done."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            limits.hit(request.remote_addr or "")
            return view(*args, **kwargs)

        return checked

    return decorate


def build_blueprint(deps: Deps, sign_limits: RateLimits, export_limits: RateLimits) -> Blueprint:
    """Return the petitions blueprint bound to one app's dependencies."""
    blp = PetitionsBlueprint(
        "petitions",
        __name__,
        url_prefix="/api/v1",
        description="Petitions, signatures, counters and exports",
    )
    organizers = require_role(lambda: deps.verifier, ["admin", "organizer"])
    members = require_role(lambda: deps.verifier, ["admin", "organizer", "partner"])

    @blp.route("/petitions", methods=["POST"])
    @organizers
    @blp.doc(**AUTH_DOC, **header_doc(usecases.MAX_IDEMPOTENCY_KEY))
    @blp.arguments(schemas.PetitionCreateSchema())
    @blp.response(201, schemas.PetitionSchema)
    def create_petition(data: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Create a draft petition (organizers of the campaign; Idempotency-Key honoured)."""
        principal = current_principal(deps.verifier)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        status, body = usecases.create_petition(deps, principal, data, key)
        return body, status, replay_headers(body)

    @blp.route("/petitions", methods=["GET"])
    @members
    @blp.doc(**AUTH_DOC)
    @blp.arguments(schemas.ListQuerySchema(), location="query")
    @blp.response(200, schemas.PetitionPageSchema)
    def list_petitions(query: dict[str, Any]) -> dict[str, Any]:
        """List the petitions of the caller's campaigns (OSDI-style pagination)."""
        principal = current_principal(deps.verifier)
        items, total = usecases.list_petitions(deps, principal, query)
        return page_body("petitions", items, total, query)

    @blp.route("/petitions/<petition_id>", methods=["GET"])
    @blp.doc(
        responses={
            "401": ERROR_RESPONSES["401"]
            | {"description": "A key sent that is unknown or revoked (send none to read as anyone)"}
        }
    )
    @blp.arguments(schemas.LocaleQuerySchema(), location="query")
    @blp.response(200, schemas.PublicPetitionSchema)
    def read_petition(query: dict[str, Any], petition_id: str) -> dict[str, Any]:
        """Read an open petition in ?locale= or Accept-Language, falling back to its default."""
        wanted = [query["locale"]] if query.get("locale") else []
        wanted += accept_languages()
        return usecases.read_public(deps, petition_id, wanted, optional_principal(deps))

    @blp.route("/petitions/<petition_id>", methods=["PATCH"])
    @organizers
    @blp.doc(**AUTH_DOC)
    @blp.arguments(schemas.PetitionPatchSchema())
    @blp.response(200, schemas.PetitionSchema)
    def edit_petition(changes: dict[str, Any], petition_id: str) -> dict[str, Any]:
        """Edit a draft petition; an open one's texts, targets, default locale, public_total and
        signer_retention_days; a closed one's signer_retention_days until its erasure is due."""
        principal = current_principal(deps.verifier)
        return usecases.edit_petition(deps, principal, petition_id, changes)

    @blp.route("/petitions/<petition_id>/publish", methods=["POST"])
    @organizers
    @blp.doc(**AUTH_DOC)
    @blp.response(200, schemas.PetitionSchema)
    def publish_petition(petition_id: str) -> dict[str, Any]:
        """Open a draft petition for signatures."""
        return usecases.publish_petition(deps, current_principal(deps.verifier), petition_id)

    @blp.route("/petitions/<petition_id>/close", methods=["POST"])
    @organizers
    @blp.doc(**AUTH_DOC)
    @blp.response(200, schemas.PetitionSchema)
    def close_petition(petition_id: str) -> dict[str, Any]:
        """Stop taking signatures."""
        return usecases.close_petition(deps, current_principal(deps.verifier), petition_id)

    @blp.route("/petitions/<petition_id>/counts", methods=["GET"])
    @members
    @blp.doc(**AUTH_DOC)
    @blp.response(200, schemas.CountsSchema)
    def read_counts(petition_id: str) -> dict[str, Any]:
        """Read the total and the counts by locale, recruiting partner and source."""
        return usecases.read_counts(deps, current_principal(deps.verifier), petition_id)

    @blp.route("/petitions/<petition_id>/counts/daily", methods=["GET"])
    @members
    @blp.doc(**AUTH_DOC)
    @blp.arguments(schemas.DailyCountsQuery(), location="query")
    @blp.response(200, schemas.DailyCountsSchema)
    def read_daily_counts(query: dict[str, Any], petition_id: str) -> dict[str, Any]:
        """Signatures counted on each of the last `days` days (today included, up to 366) in a
        time zone, by recruiting partner; a day with none is listed with 0."""
        return usecases.read_daily_counts(
            deps, current_principal(deps.verifier), petition_id, query["days"], query["time_zone"]
        )

    @blp.route("/petitions/<petition_id>/signatures", methods=["POST"])
    @limited(sign_limits)
    @blp.arguments(schemas.SignRequestSchema())
    @blp.response(202, schemas.SignResponseSchema)
    @blp.doc(
        responses={"429": {"description": "Too many signatures from this address"}},
        **header_doc(
            usecases.MAX_IDEMPOTENCY_KEY,
            "Retry safely: the same key and request return the first response (kept 24 h),"
            " exactly as a first signature's: no Idempotent-Replayed header, which would tell"
            " who sent someone's details with a form's key that this person had signed. The"
            " key is the signer's own: another request under it signs as one without a key.",
        ),
    )
    def sign(data: dict[str, Any], petition_id: str) -> Response:
        """Sign a petition (OSDI record_signature_helper); repeat signers get the same answer."""
        key = request.headers.get(IDEMPOTENCY_HEADER)
        status, body = signing.sign(deps, petition_id, data, key, accept_languages())
        # Already in the documented shape: skip re-serializing it on the hottest path. A replay
        # does not say it is one here, unlike elsewhere: whoever sends someone's details with a
        # form's key would learn from it that this person had signed.
        return Response(json.dumps(body), status=status, mimetype="application/json")

    @blp.route("/confirmations/<token>", methods=["GET"])
    @blp.doc(
        tags=["supporter pages"],
        responses={
            status: {"description": text, "content": {"text/html": {"schema": {"type": "string"}}}}
            for status, text in (
                ("200", "A page whose button confirms"),
                ("404", "A link unknown or expired (the page says no more than that)"),
                ("409", "The petition closed before the signature was confirmed"),
            )
        },
    )
    def confirmation_page(token: str) -> Response:
        """The emailed link's page: it asks for a click, and only that click (a POST) confirms.

        Mail scanners open every link in an email: opening the link confirms nothing.
        """
        link = signing.look_up_link(deps, token)
        locale = link.signature.locale if link.signature is not None else None
        return pages.confirmation(
            link.state, link.petition, locale, link.signature, link.partners, link.lead
        )

    @blp.route("/confirmations/<token>", methods=["POST"])
    @blp.response(200, schemas.ConfirmResponseSchema)
    @blp.doc(
        responses={
            status: {"description": text, "content": {"text/html": {"schema": {"type": "string"}}}}
            for status, text in (
                ("404", "A link unknown or expired (a browser gets the page)"),
                ("409", "The petition is closed (a browser gets the page)"),
            )
        }
    )
    def confirm(token: str) -> Any:
        """Confirm a double opt-in signature (the page's button, or a campaign's own page;
        safe to repeat). A browser's form post gets the page back, anything else JSON."""
        if request.accept_mimetypes.best_match(["application/json", "text/html"]) != "text/html":
            return signing.confirm(deps, token)
        with contextlib.suppress(NotFound, Conflict):  # the page says which
            signing.confirm(deps, token)
        return confirmation_page(token)

    @blp.route("/petitions/<petition_id>/exports/signers.csv", methods=["GET"])
    @organizers
    @blp.doc(**AUTH_DOC)
    @blp.arguments(schemas.ExportQuerySchema(), location="query")
    @blp.doc(responses=EXPORT_RESPONSES)
    def export_signers(query: dict[str, Any], petition_id: str) -> Response:
        """Stream every confirmed signer as CSV (lead organization's organizers); with `since`,
        only those counted since then, for syncing a list."""
        principal = current_principal(deps.verifier)
        export_limits.hit(principal.key_id)
        slugs = exports.authorize(deps, principal, petition_id, None, query["purpose"])
        columns = exports.DELIVERY if query["purpose"] == "delivery" else exports.CONTACT
        lines = exports.csv_lines(
            deps, petition_id, columns, slugs, bom=query["bom"], since=query["since"]
        )
        return _csv(lines, f"petition-{petition_id}-signers.csv")

    @blp.route("/petitions/<petition_id>/exports/partners/<organization_id>.csv", methods=["GET"])
    @members
    @blp.doc(**AUTH_DOC)
    @blp.arguments(schemas.CsvQuerySchema(), location="query")
    @blp.doc(responses=EXPORT_RESPONSES)
    def export_partner(query: dict[str, Any], petition_id: str, organization_id: str) -> Response:
        """Stream the confirmed signers who chose to share their details with one partner."""
        principal = current_principal(deps.verifier)
        export_limits.hit(principal.key_id)
        slugs = exports.authorize(deps, principal, petition_id, organization_id, "partner")
        lines = exports.csv_lines(
            deps,
            petition_id,
            exports.PARTNER,
            slugs,
            organization_id,
            bom=query["bom"],
            since=query["since"],
        )
        return _csv(lines, f"petition-{petition_id}-partner-{organization_id}.csv")

    @blp.route("/petitions/<petition_id>/exports/log", methods=["GET"])
    @members
    @blp.doc(**AUTH_DOC)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, schemas.ExportLogPage)
    def export_log(args: dict[str, Any], petition_id: str) -> Any:
        """Who exported this petition's lists, when, newest first: `kind` contact, delivery or
        partner (with its partner), the caller's organization, key and role. For the lead
        organization's organizers and admins: a leaked list can be traced to who took it."""
        items, total = exports.export_log(
            deps, current_principal(deps.verifier), petition_id, args["page"], args["per_page"]
        )
        return page_body("exports", items, total, args)

    return blp


def _csv(lines: Any, filename: str) -> Response:
    response = Response(lines, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
