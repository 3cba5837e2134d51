# mypy: disable-error-code="untyped-decorator"
"""HTTP edge: one-click unsubscribe, preference pages, provider callbacks, erasure, progress."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from html import escape
from typing import Any

from flask import Blueprint, Flask, Response, request
from markupsafe import Markup
from markupsafe import escape as markup_escape
from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy import Connection, select, update
from twilio.request_validator import RequestValidator

from services.notifications import (
    audience,
    compliance,
    erasure,
    messages,
    preferences,
    reports,
)
from services.notifications.bootstrap import Deps
from services.notifications.domain import sms_keyword, twilio_answers
from services.notifications.fanout import alert_counts
from services.notifications.schemas import (
    AlertProgressSchema,
    AudienceEstimateIn,
    AudienceEstimateOut,
    DeliveryReportSchema,
    ErasureRequestSchema,
    ErasureSchema,
)
from services.notifications.store import alerts, idempotency_keys, supporters
from shared.auth import Principal, authorize, current_principal, require_role
from shared.db import in_transaction
from shared.errors import FieldError, NotFound, PermissionDenied
from shared.idempotency import DOC as IDEMPOTENCY_DOC
from shared.idempotency import idempotent
from shared.locales import SUPPORTED_LOCALES, resolve_locale
from shared.privacy import clean_email, phone_hash
from shared.web import (
    AUTH_DOC,
    ERROR_RESPONSES,
    PAGE_HEADERS,
    ApiBlueprint,
    html_page,
    storable,
)

SIGNATURE_MAX_AGE = 600  # seconds: older signed SendGrid posts are replays
NAME_MAX, PRONOUNS_MAX = 100, 40  # as petitions accepts them


# Each language Kinship writes in, named in itself: a supporter who signed on an English form
# (or a relative's phone) reads the page in a language they may not read.
LANGUAGE_NAMES = {
    "en": "English",
    "zh-Hans": "\u7b80\u4f53\u4e2d\u6587",
    "zh-Hant": "\u7e41\u9ad4\u4e2d\u6587",
    "ja": "\u65e5\u672c\u8a9e",
    "ko": "\ud55c\uad6d\uc5b4",
    "vi": "Ti\u1ebfng Vi\u1ec7t",
    "tl": "Tagalog",
}


def _language_choice(current: str) -> str:
    options = "".join(
        f'<option value="{code}" lang="{code}"{" selected" if code == current else ""}>'
        f"{LANGUAGE_NAMES[code]}</option>"
        for code in SUPPORTED_LOCALES
    )
    return f'<select name="locale">{options}</select>'


def _t(locale: str, key: str, **values: Any) -> str:
    """One string of the supporter pages, in locale (English key by key where missing), with
    the values given escaped (a Markup value is HTML already): the result is HTML."""
    return escape(messages.template(locale, f"page_{key}"), quote=False).format(
        **{name: markup_escape(value) for name, value in values.items()}  # Markup kept as is
    )


def _browser_locale() -> str:
    """The first language of the browser's Accept-Language that the pages are written in."""
    for tag, quality in request.accept_languages:
        if quality <= 0:
            continue  # q=0: "not this language"
        found = resolve_locale(tag, "")
        if found:
            return found
    return "en"


def _page(locale: str, title_key: str, body: str, status: int = 200) -> Response:
    return html_page(messages.text(locale, f"page_{title_key}"), body, status, lang=locale)


def _twiml(message: str | None = None) -> Response:
    inner = f"<Message>{escape(message)}</Message>" if message else ""
    xml = f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'
    return Response(xml, 200, content_type="text/xml")


def _page_operation(summary: str, statuses: dict[str, str], kind: str = "text/html") -> Any:
    return {
        "summary": summary,
        "tags": ["supporter pages"],
        "responses": {
            status: {
                "description": text,
                "content": {
                    kind if status == "200" else "text/html": {"schema": {"type": "string"}}
                },
            }
            for status, text in statuses.items()
        },
    }


_GONE = "A link unknown, spent or expired (the page says no more than that)"
# The pages emails link to (public_blueprint): plain Flask views, so flask-smorest does not
# document them; document_public_pages adds them to the OpenAPI document.
PUBLIC_PAGES: dict[str, dict[str, Any]] = {
    "/unsubscribe/{token}": {
        "post": _page_operation(
            "One-click unsubscribe (RFC 8058): no cookies, no redirect, idempotent; the same"
            " answer for an unknown token",
            {"200": "Unsubscribed (plain text)"},
            "text/plain",
        ),
        "get": _page_operation(
            "The preference page (as /preferences/{token})", {"200": "The page", "404": _GONE}
        ),
    },
    "/preferences/{token}": {
        "get": _page_operation(
            "The preference page: email, texts, sharing with partners, discreet mode, names"
            " (never shown, only asked), erasure",
            {"200": "The page", "404": _GONE},
        ),
        "post": _page_operation(
            "Save preferences (a form post); what makes the supporter easier to reach or to"
            " identify waits for a link emailed to them",
            {"200": "Saved, or: check your email", "404": _GONE, "422": "A name too long"},
        ),
    },
    "/preferences/{token}/confirm": {
        "get": _page_operation(
            "The emailed link's page listing the held changes; only its button (a POST) confirms",
            {"200": "The page", "404": _GONE},
        ),
        "post": _page_operation(
            "Confirm held changes (form field `shown`: the page's fingerprint of them)",
            {"200": "Saved; or the page again, when what it confirms changed since", "404": _GONE},
        ),
    },
    "/preview": {
        "get": _page_operation(
            "Where the links of an alert's preview and test send lead (each recipient's are"
            " their own)",
            {"200": "The page"},
        ),
    },
    "/erase/{token}": {
        "get": _page_operation(
            "The emailed erasure link's page; only its button (a POST) erases",
            {"200": "The page", "404": _GONE},
        ),
        "post": _page_operation(
            "Erase the supporter's data (publishes person.erased)", {"200": "Erased", "404": _GONE}
        ),
    },
}


def document_public_pages(spec: Any, app: Flask) -> None:
    """Add the supporter pages to an OpenAPI document (flask-smorest's APISpec, whose Flask
    plugin takes each page's URL rule)."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("notifications_public."):
            path = rule.rule.replace("<", "{").replace(">", "}")
            methods = {m.lower() for m in rule.methods or ()} & set(PUBLIC_PAGES[path])
            spec.path(rule=rule, operations={m: PUBLIC_PAGES[path][m] for m in methods})


def public_blueprint(deps: Deps) -> Blueprint:
    """Pages reached from emails: unsubscribe (one-click and page), preferences, erasure.

    Each is in the supporter's language (the one their emails are in); a link that is no
    longer valid, whose supporter is not known, in the browser's.
    """
    bp = Blueprint("notifications_public", __name__)

    def resolve(token: str) -> tuple[audience.Supporter | None, Any]:
        # A forged or tampered token is answered exactly as an unknown one: no oracle.
        parsed = compliance.parse_list_token(deps.settings.hash_key, token)
        if parsed is None:
            return None, None
        with deps.engine.connect() as conn:
            person = audience.supporter_by_token(conn, parsed[0])
            org = audience.organization_by_tag(conn, parsed[1])
        return person, org

    def locale_of(conn: Connection, supporter_id: str) -> str:
        person = audience.load_supporters(conn, [supporter_id]).get(supporter_id)
        return person.locale if person is not None else _browser_locale()

    @bp.post("/unsubscribe/<token>")
    def one_click(token: str) -> Response:
        # RFC 8058: no cookies, no redirect, no confirmation step; the same answer every time,
        # and the same answer for an unknown token, so the endpoint reveals nothing.
        person, org = resolve(token)
        if person is not None and org is not None:
            with deps.engine.begin() as conn:
                compliance.unsubscribe_email(
                    conn, deps.outbox, person, org.organization_id, deps.clock()
                )
            if request.form.get("via") == "page":
                # The preference page's button, pressed by a person: answered with a page in
                # their language (a mail client's one-click post never sends this field).
                lang = person.locale
                return _page(lang, "saved", f"<p>{_t(lang, 'saved_body')}</p>")
        return Response("Unsubscribed.\n", 200, PAGE_HEADERS, content_type="text/plain")

    @bp.get("/unsubscribe/<token>")
    @bp.get("/preferences/<token>")
    def preferences_page(token: str) -> Response:
        person, org = resolve(token)
        if person is None or org is None:
            return _gone(_browser_locale(), "prefs_title")
        with deps.engine.connect() as conn:
            email_on = receiving_email(conn, person, org.organization_id)
            # A number that texted STOP gets no texts whatever its consents say; only START,
            # sent from the phone, lifts that, so the page says so instead of a ticked box.
            sms_stopped = bool(
                audience.suppressed_hashes(conn, [person.phone_hash], "sms", org.organization_id)
            )
            sms_on = not sms_stopped and person.supporter_id in audience.consented_ids(
                conn, [person.supporter_id], org.organization_id, "sms"
            )
            sharing = bool(audience.shared_with(conn, person.supporter_id))
        lang = person.locale
        t = escape(token)
        checked = {True: " checked", False: ""}
        body = (
            "<p>"
            + _t(
                lang,
                "email_from",
                org=Markup("<strong>%s</strong>") % org.name,
                address=_mask(person.email),
            )  # fmt: skip
            + "</p>"
            f'<form method="post" action="/unsubscribe/{t}">'
            '<input type="hidden" name="via" value="page">'
            f'<button type="submit">{_t(lang, "unsubscribe_button")}</button></form>'
            f'<form method="post" action="/preferences/{t}">'
            f'<label><input type="checkbox" name="email"{checked[email_on]}> {_t(lang, "email")}'
            "</label><br>"
        )
        if person.phone_hash:  # no number on file: nothing to text
            body += (
                f'<label><input type="checkbox" name="sms"{checked[sms_on]}> {_t(lang, "sms")}'
                "</label><br>"
            )
        if sms_stopped:
            body += f"<p>{_t(lang, 'stopped')}</p>"
        if sharing:
            # Which partners is not shown (whoever holds a forwarded email can open the page):
            # the box withdraws every share, and a later signature can tick one again.
            body += (
                '<input type="hidden" name="shares_offered" value="1">'
                f'<label><input type="checkbox" name="share" checked> {_t(lang, "share")}'
                f"</label><br><p>{_t(lang, 'share_note')}</p>"
            )
        unchanged = escape(messages.text(lang, "page_unchanged"))  # an attribute: quotes too
        body += f"<label>{_t(lang, 'language')} {_language_choice(lang)}</label><br>"
        body += (
            f'<label><input type="checkbox" name="discreet"{checked[person.discreet]}> '
            f"{_t(lang, 'discreet')}</label><br>"
            # Never shown here, only asked: whoever holds a forwarded email can open this page,
            # and a supporter's name and pronouns are not theirs to read.
            f'<label>{_t(lang, "name")} <input name="given_name" maxlength="{NAME_MAX}"'
            f' placeholder="{unchanged}"></label><br>'
            f'<label>{_t(lang, "pronouns")} <input name="pronouns" maxlength="{PRONOUNS_MAX}"'
            f' placeholder="{unchanged}"></label><br>'
            f'<label><input type="checkbox" name="clear_names"> {_t(lang, "clear_names")}'
            f"</label><br><p>{_t(lang, 'names_note')}</p>"
            f'<button type="submit" name="action" value="save">{_t(lang, "save")}</button></form>'
            f'<form method="post" action="/preferences/{t}">'
            f'<button type="submit" name="action" value="erase">{_t(lang, "erase")}</button>'
            f"<p>{_t(lang, 'erase_note')}</p></form>"
        )
        return _page(lang, "prefs_title", body)

    @bp.post("/preferences/<token>")
    def save_preferences(token: str) -> Response:
        person, org = resolve(token)
        if person is None or org is None:
            return _gone(_browser_locale(), "prefs_title")
        lang = person.locale
        now = deps.clock()
        names: dict[str, str | None] = {}
        for field, limit in (("given_name", NAME_MAX), ("pronouns", PRONOUNS_MAX)):
            if request.form.get("action") == "erase":
                break
            if request.form.get("clear_names"):
                names[field] = None
                continue
            value = request.form.get(field, "").strip()
            if len(value) > limit or not storable(value):
                label = messages.text(lang, f"page_{'name' if field == 'given_name' else field}")
                problem = f"<p>{_t(lang, 'too_long', label=label, limit=limit)}</p>"
                return _page(lang, "not_saved", problem, 422)
            if value:  # blank: the page shows none, so blank keeps what is held
                names[field] = value
        with deps.engine.begin() as conn:
            if request.form.get("action") == "erase":
                erasure.request_erasure(deps, conn, person)
                return _page(lang, "check_email", f"<p>{_t(lang, 'erase_sent')}</p>")
            # What makes the supporter harder to reach applies now; what makes them easier to
            # identify or reach waits for the link emailed to them (preferences.py): whoever
            # holds a forwarded email can open this page.
            # Every name typed (or cleared) is held, whether or not it is the one on file: an
            # answer that differed would let whoever holds the link guess it (he/him? she/her?).
            held: dict[str, Any] = dict(names)
            if not request.form.get("email"):
                compliance.unsubscribe_email(conn, deps.outbox, person, org.organization_id, now)
            elif not receiving_email(conn, person, org.organization_id):
                held["email"] = True  # an unsubscribe undone, or email never chosen
            wants_sms = bool(request.form.get("sms"))
            if (
                wants_sms
                and person.phone_hash
                and person.supporter_id
                not in audience.consented_ids(
                    conn, [person.supporter_id], org.organization_id, "sms"
                )
            ):
                held["sms"] = True
            elif not wants_sms:
                preferences.set_sms_consent(
                    conn, deps.outbox, person, org.organization_id, False, now
                )
            if request.form.get("shares_offered") and not request.form.get("share"):
                compliance.withdraw_shares(conn, deps.outbox, person, now)
            chosen = request.form.get("locale", "")
            if chosen in SUPPORTED_LOCALES and chosen != person.locale:
                # Their messages and pages from now on, alerts' language variants included.
                conn.execute(
                    update(supporters)
                    .where(supporters.c.supporter_id == person.supporter_id)
                    .values(locale=chosen, language=chosen, language_chosen_at=now, updated_at=now)
                )
                lang = chosen
            discreet = bool(request.form.get("discreet"))
            if discreet and not person.discreet:
                conn.execute(
                    update(supporters)
                    .where(supporters.c.supporter_id == person.supporter_id)
                    .values(discreet=True, updated_at=now)
                )
            elif person.discreet and not discreet:
                held["discreet"] = False
            if held:
                preferences.hold(deps, conn, person.supporter_id, org.organization_id, held)
                return _page(lang, "check_email", f"<p>{_t(lang, 'held')}</p>")
        return _page(lang, "saved", f"<p>{_t(lang, 'saved_body')}</p>")

    @bp.get("/preferences/<token>/confirm")
    def preferences_confirm_page(token: str) -> Response:
        with deps.engine.connect() as conn:
            row = preferences.pending(deps, conn, token)
            if row is None:
                return _gone(_browser_locale(), "confirm_title")
            lang = locale_of(conn, row.supporter_id)
            org = audience.organization(conn, row.organization_id)
        return _confirm_page(token, row, org.name if org else "", lang)

    def _confirm_page(
        token: str, row: Any, org_name: str, lang: str, lead: str = "confirm_lead"
    ) -> Response:
        lines = preferences.described(row.changes, lang)
        items = "".join(f"<li>{escape(line)}</li>" for line in lines)
        shown = preferences.fingerprint(deps.settings.hash_key, row)
        body = (
            f'<form method="post" action="/preferences/{escape(token)}/confirm">'
            f'<input type="hidden" name="shown" value="{shown}">'
            f"<p>{_t(lang, lead)}</p><p><strong>{escape(org_name)}</strong></p><ul>{items}</ul>"
            f'<button type="submit">{_t(lang, "confirm_button")}</button></form>'
        )
        return _page(lang, "confirm_title", body)

    @bp.post("/preferences/<token>/confirm")
    def preferences_confirm(token: str) -> Response:
        with deps.engine.begin() as conn:
            row = preferences.pending(deps, conn, token)
            if row is None:
                return _gone(_browser_locale(), "confirm_title")
            lang = locale_of(conn, row.supporter_id)
            if request.form.get("shown") != preferences.fingerprint(deps.settings.hash_key, row):
                # Replaced since the page was shown (another change asked for within the
                # hour, maybe from another organization's page): the owner confirms what they
                # read, never what came after it.
                org = audience.organization(conn, row.organization_id)
                return _confirm_page(token, row, org.name if org else "", lang, "changes_replaced")
            if not preferences.confirm(deps, conn, row):
                return _gone(lang, "confirm_title")
        return _page(lang, "saved", f"<p>{_t(lang, 'changes_saved')}</p>")

    @bp.get("/erase/<token>")
    def erase_page(token: str) -> Response:
        with deps.engine.connect() as conn:
            target = erasure.erasure_target(deps, conn, token)
            if target is None:
                return _gone(_browser_locale(), "erase")
            lang = locale_of(conn, target)
        body = (
            f'<form method="post" action="/erase/{escape(token)}"><p>{_t(lang, "erase_lead")}</p>'
            f'<button type="submit">{_t(lang, "erase")}</button></form>'
        )
        return _page(lang, "erase", body)

    @bp.post("/erase/<token>")
    def erase_confirm(token: str) -> Response:
        def work(conn: Connection) -> str | None:
            target = erasure.erasure_target(deps, conn, token)
            if target is None:
                return None
            lang = locale_of(conn, target)  # read before the erasure forgets it
            erasure.erase(deps, conn, supporter=target)
            return lang

        # Erasures list deletions, whose writers take turns (note_deletions): a consumer
        # batch holding this person's rows meanwhile can deadlock with it, and one is aborted.
        lang = in_transaction(deps.engine, work)
        if lang is None:
            return _gone(_browser_locale(), "erase")
        return _page(lang, "erased", f"<p>{_t(lang, 'erased_body')}</p>")

    @bp.get("/preview")
    def preview_page() -> Response:
        # Organizers follow it from a preview or a test send, never supporters: in English, as
        # the API is.
        return html_page("Preview", f"<p>{escape(PREVIEW_LINK)}</p>")

    return bp


# Where the links of an alert's preview and test send lead (campaigns' preview, test sends):
# each real recipient's link is their own.
PREVIEW_LINK = (
    "This link is a stand-in. In the alert itself, each recipient's link leads to their own"
    " page: to stop these emails, or to choose what they get."
)


def _gone(locale: str, title_key: str) -> Response:
    """The page of a link that is unknown, spent or expired (it says no more than that)."""
    return _page(locale, title_key, f"<p>{_t(locale, 'gone')}</p>", 404)


def receiving_email(conn: Connection, person: audience.Supporter, organization_id: str) -> bool:
    """Whether the supporter gets the organization's email now: consented, not suppressed."""
    return person.supporter_id in audience.consented_ids(
        conn, [person.supporter_id], organization_id, "email"
    ) and not audience.suppressed_hashes(conn, [person.email_hash], "email", organization_id)


def _mask(address: str | None) -> str:
    if not address or "@" not in address:
        return "…"
    local, _, domain = address.partition("@")
    return f"{local[:1]}\u2026@{domain}"


# A provider's callback answers its success or this: nothing else a client could act on.
FORGED = {"403": ERROR_RESPONSES["403"] | {"description": "Unsigned, or a forged signature"}}


def callbacks_blueprint(deps: Deps) -> ApiBlueprint:
    """Provider callbacks, each verified by the provider's signature (403 and no effect else)."""
    blp = ApiBlueprint(
        "callbacks", __name__, url_prefix="/api/v1/callbacks", description="Provider callbacks"
    )

    def twilio_verified() -> None:
        token = deps.settings.twilio_auth_token
        signature = request.headers.get("X-Twilio-Signature", "")
        if not token or not signature:
            raise PermissionDenied("The callback's signature is missing or invalid")
        url = deps.settings.public_base_url + request.full_path.rstrip("?")
        if not RequestValidator(token).validate(url, request.form.to_dict(), signature):
            raise PermissionDenied("The callback's signature is missing or invalid")

    @blp.route("/twilio/inbound", methods=["POST"])
    @blp.doc(
        summary="Inbound SMS (STOP/START/HELP), verified by X-Twilio-Signature",
        responses={"200": {"description": "TwiML (text/xml)"}, **FORGED},
    )
    def twilio_inbound() -> Response:
        twilio_verified()
        number = request.form.get("From", "")
        # Twilio's own reading, when its Advanced Opt-Out is on (it has acted on it already).
        told = {"STOP": "stop", "START": "start", "HELP": "help"}.get(
            request.form.get("OptOutType", "").upper()
        )
        keyword = told or sms_keyword(request.form.get("Body", ""))
        now = deps.clock()
        if told == "help":
            return _twiml()  # Twilio has sent the HELP reply set in its console: not a second
        if keyword == "help":  # in the language of whoever holds the number, if we know them
            with deps.engine.connect() as conn:
                locale = audience.number_locale(conn, phone_hash(deps.settings.hash_key, number))
            return _twiml(
                messages.text(
                    locale, "sms_help", org=deps.config.from_name, contact=deps.config.help_contact
                )
            )
        if keyword in ("stop", "start") and number:
            contact = phone_hash(deps.settings.hash_key, number)
            sid = request.form.get("MessageSid", "")
            with deps.engine.begin() as conn:
                if sid and not compliance.first_inbound(conn, deps.settings.hash_key, sid, now):
                    return _twiml()  # a replay of a text already applied: a later STOP holds
                if keyword == "start":
                    compliance.sms_start(conn, deps.outbox, contact, now)
                    return _twiml()
                stopped = compliance.sms_stop(conn, deps.outbox, contact, now)
                if not stopped or told or twilio_answers(request.form.get("Body", "")):
                    # Stopped already (said so then), or Twilio confirmed it itself and now
                    # blocks the number.
                    return _twiml()
                # An opt-out only Kinship reads as one ('그만 보내세요', 'STOP STOP'): one reply
                # says it was heard, as carriers' rules ask, in the person's language.
                locale = audience.number_locale(conn, contact)
            return _twiml(messages.text(locale, "sms_stopped", org=deps.config.from_name))
        return _twiml()

    @blp.route("/twilio/status/<delivery_id>", methods=["POST"])
    @blp.doc(
        summary="Twilio message status callback, verified by X-Twilio-Signature",
        responses={"204": {"description": "Applied"}, **FORGED},
    )
    def twilio_status(delivery_id: str) -> Response:
        twilio_verified()
        with deps.engine.begin() as conn:
            compliance.apply_twilio_status(
                conn, deps.outbox, deps.settings.hash_key, delivery_id, request.form.to_dict(),
                deps.clock(),
            )  # fmt: skip
        return Response(b"", 204)

    @blp.route("/sendgrid/events", methods=["POST"])
    @blp.doc(
        summary="SendGrid Event Webhook, verified by its ECDSA signature",
        responses={
            "204": {"description": "Applied"},
            **FORGED,
            "413": ERROR_RESPONSES["413"],
            "422": ERROR_RESPONSES["422"] | {"description": "Not a JSON array of events"},
        },
    )
    def sendgrid_events() -> Response:
        payload = request.get_data(as_text=True)
        if not _sendgrid_verified(deps, payload):
            raise PermissionDenied("The callback's signature is missing or invalid")
        try:
            events = json.loads(payload)
        except ValueError:
            raise FieldError("body", "must be a JSON array of events") from None
        if not isinstance(events, list):
            raise FieldError("body", "must be a JSON array of events")
        now = deps.clock()
        with deps.engine.begin() as conn:
            for item in events:
                if isinstance(item, dict):
                    compliance.apply_sendgrid_event(
                        conn, deps.outbox, deps.settings.hash_key, item, now
                    )
        return Response(b"", 204)

    return blp


def _sendgrid_verified(deps: Deps, payload: str) -> bool:
    key = deps.config.sendgrid_webhook_public_key
    signature = request.headers.get("X-Twilio-Email-Event-Webhook-Signature", "")
    timestamp = request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", "")
    if not key or not signature or not timestamp:
        return False
    try:
        if abs(time.time() - int(timestamp)) > SIGNATURE_MAX_AGE:
            return False
        body = key.strip()
        if "BEGIN PUBLIC KEY" in body:
            body = "".join(line for line in body.splitlines() if "PUBLIC KEY" not in line)
        return bool(EventWebhook(body).verify_signature(payload, signature, timestamp))
    except Exception:  # noqa: BLE001 - a malformed signature or key is a refusal
        return False


def api_blueprint(deps: Deps) -> ApiBlueprint:
    """Authenticated API: erasure by admins, alert progress for the alert's organization."""
    blp = ApiBlueprint("notifications", __name__, url_prefix="/api/v1", description="Notifications")
    verifier: Callable[[], Any] = lambda: deps.verifier  # noqa: E731
    once = idempotent(
        lambda: (deps.engine, deps.verifier, idempotency_keys, deps.settings.hash_key)
    )

    @blp.route("/erasures", methods=["POST"])
    @require_role(verifier, ["admin"])  # first: a caller without a key gets nothing parsed
    @once
    @blp.arguments(ErasureRequestSchema)
    @blp.response(202, ErasureSchema)
    @blp.doc(**AUTH_DOC, **IDEMPOTENCY_DOC)
    def create_erasure(body: dict[str, Any]) -> dict[str, Any]:
        """Erase a person by email, phone or supporter id here and, through person.erased,
        everywhere.

        With an Idempotency-Key header a retry returns the first response (24 h) and erases
        nothing again; the same key with a different request is refused (422).
        """
        email, phone, supporter = body.get("email"), body.get("phone"), body.get("supporter_id")
        if not email and not phone and not supporter:
            raise FieldError("email", "give an email, a phone number or a supporter_id")
        if email:
            email = clean_email(email, "email")
        if supporter and not storable(supporter):
            raise FieldError("supporter_id", "not an id")
        erased = in_transaction(
            deps.engine,
            lambda conn: erasure.erase(deps, conn, email=email, phone=phone, supporter=supporter),
        )
        return {"status": "erased", "count": len(erased)}

    @blp.route("/audiences/estimate", methods=["POST"])
    @require_role(verifier, ["admin", "organizer"])
    @blp.arguments(AudienceEstimateIn)
    @blp.response(200, AudienceEstimateOut)
    @blp.doc(**AUTH_DOC)
    def estimate_audience(body: dict[str, Any]) -> dict[str, Any]:
        """How many of a campaign's supporters an alert to this audience (the filters an alert
        takes) would reach now, by channel: consent given and not suppressed. For the lead
        organization's organizers, before they send: 12 people or 12,000."""
        principal: Principal = current_principal(deps.verifier)
        campaign_id = body["campaign_id"]
        with deps.engine.connect() as conn:
            found = audience.campaign(conn, campaign_id)
            if found is None:
                raise NotFound("No such campaign")
            try:
                authorize(principal, [found.lead_organization_id], ["organizer"], "estimate")
            except PermissionDenied:
                raise NotFound("No such campaign") from None
            counts = audience.estimate(conn, campaign_id, found.lead_organization_id,
                                       body["audience"])  # fmt: skip
        return {"campaign_id": campaign_id, **counts}

    def readable_alert(conn: Connection, alert_id: str) -> None:
        """Raise NotFound unless the caller may read the alert (its organization's organizers,
        admins): to anyone else, another organization's alert does not exist."""
        principal: Principal = current_principal(deps.verifier)
        org = conn.execute(
            select(alerts.c.organization_id).where(alerts.c.alert_id == alert_id)
        ).scalar()
        if org is None:
            raise NotFound("No such alert")
        try:
            authorize(principal, [str(org)], ["organizer"], "read this alert")
        except PermissionDenied:
            raise NotFound("No such alert") from None

    @blp.route("/alerts/<alert_id>/progress", methods=["GET"])
    @blp.response(200, AlertProgressSchema)
    @blp.doc(**AUTH_DOC)
    @require_role(verifier, ["admin", "organizer"])
    def alert_progress(alert_id: str) -> dict[str, Any]:
        """Return an alert's delivery counts."""
        with deps.engine.connect() as conn:
            readable_alert(conn, alert_id)
            counts = alert_counts(conn, alert_id)
        assert counts is not None
        return counts

    @blp.route("/delivery-reports/<alert_id>", methods=["GET"])
    @blp.response(200, DeliveryReportSchema)
    @blp.doc(**AUTH_DOC)
    @require_role(verifier, ["admin", "organizer"])
    def delivery_report(alert_id: str) -> dict[str, Any]:
        """An alert's counts by channel, and its failed and suppressed messages by cause (a
        Twilio error code, a SendGrid bounce, retries run out), each in plain words. Read from
        the alert's delivery rows when asked: it names no recipient."""
        with deps.engine.connect() as conn:
            readable_alert(conn, alert_id)
            return reports.alert_report(conn, alert_id)

    return blp
