"""Fake Twilio Messages API: POST /2010-04-01/Accounts/<AccountSid>/Messages.json (form-encoded)."""

from __future__ import annotations

import json
import math
import os
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs
from flask import Flask, Response, jsonify, request
from jsonschema import Draft202012Validator, FormatChecker

from .common import (
    SPECS_DIR,
    FakeRecords,
    control_blueprint,
    pick_headers,
    retry_after_header,
    with_faults,
)

PROVIDER = "twilio"
SPEC_FILE = SPECS_DIR / "twilio-create-message.schema.json"
# Twilio's own test-credential magic numbers: +15005550001 is invalid, +15005550004 has opted out.
DEFAULT_INVALID = frozenset({"+15005550001"})
DEFAULT_UNSUBSCRIBED = frozenset({"+15005550004"})
RECORDED_HEADERS = ("Authorization", "Content-Type", "User-Agent", "I-Twilio-Idempotency-Token")
MAX_BODY = 1600
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_CHANNEL = re.compile(r"^(whatsapp|messenger|rcs):")
_ALPHA_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_SHORT_CODE = re.compile(r"^\d{3,8}$")
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = set("^{}\\[~]|€\f")
_FIELD_CODES = {"From": 21212, "FallbackFrom": 21212, "StatusCallback": 21609, "MediaUrl": 21620}
GENERIC_PARAM_CODE = 20001


def is_phone_number(value: str, *, sender: bool = False) -> bool:
    """Return True for an E.164 number (optionally channel-prefixed); senders may be ids/codes."""
    number = _CHANNEL.sub("", value)
    if E164.match(number):
        return True
    return sender and bool(_ALPHA_SENDER.match(value) or _SHORT_CODE.match(value))


def _is_uri(value: object) -> bool:
    parts = urlsplit(str(value))
    return bool(parts.scheme and parts.netloc)


def _is_datetime(value: object) -> bool:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_phone_format(value: object) -> bool:
    return not isinstance(value, str) or is_phone_number(value, sender=True)


# The formats this fake checks, by the same functions in both validators below.
_FORMATS = {"phone-number": _is_phone_format, "uri": _is_uri, "date-time": _is_datetime}


@cache
def _spec() -> dict[str, Any]:
    """The official request and response schemas (read once; never changed in place)."""
    spec: dict[str, Any] = json.loads(SPEC_FILE.read_text())
    return spec


@cache
def _validator() -> Draft202012Validator:
    checker = FormatChecker(formats=())
    for name, check in _FORMATS.items():
        checker.checks(name)(check)
    return Draft202012Validator(_spec()["request"], format_checker=checker)


@cache
def _compiled() -> jsonschema_rs.Validator:
    """The same schema and formats compiled (Rust): the fast path for a request it accepts.

    jsonschema took a tenth of this fake's CPU a message, CPU the SMS benchmark's sender
    shares; a request this refuses still goes through jsonschema, which names the problem."""
    return jsonschema_rs.validator_for(_spec()["request"], formats=_FORMATS, validate_formats=True)


def _nullable_to_jsonschema(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _nullable_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable") and "type" in node:
            out["type"] = [node["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        return out
    if isinstance(node, list):
        return [_nullable_to_jsonschema(v) for v in node]
    return node


def twilio_response_schema() -> dict[str, Any]:
    """Return the spec's 201 response schema as JSON Schema (OpenAPI nullable turned into null)."""
    schema = _spec()["responses"]["201"]["content"]["application/json"]["schema"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **_nullable_to_jsonschema(schema),
    }


def num_segments(body: str) -> int:
    """Return how many SMS segments body needs (GSM-7 160/153, else UCS-2 70/67)."""
    if all(c in _GSM7 or c in _GSM7_EXT for c in body):
        units, single, multi = sum(2 if c in _GSM7_EXT else 1 for c in body), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def twilio_error(status: int, code: int, message: str) -> Response:
    """Return Twilio's error response: {"code", "message", "more_info", "status"}."""
    response = jsonify(
        code=code,
        message=message,
        more_info=f"https://www.twilio.com/docs/errors/{code}",
        status=status,
    )
    response.status_code = status
    return response


def _fault_response(status: int, retry_after: float | None) -> Response:
    messages = {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
    response = twilio_error(status, 20000 + status, messages.get(status, "Service error"))
    if status == 429:
        response.headers["Retry-After"] = retry_after_header(retry_after)
    return response


def _form_fields() -> dict[str, Any]:
    """Return the form as sent: arrays as lists, everything else as its (first) string."""
    props = _validator().schema["properties"]
    return {
        key: request.form.getlist(key)
        if props.get(key, {}).get("type") == "array"
        else request.form[key]
        for key in request.form
    }


def _coerced(fields: dict[str, Any]) -> dict[str, Any]:
    """Return fields with form strings turned into the schema's boolean/integer/number types."""
    props = _validator().schema["properties"]
    out = dict(fields)
    for key, value in fields.items():
        kind = props.get(key, {}).get("type")
        try:
            if kind == "boolean" and value.lower() in ("true", "false"):
                out[key] = value.lower() == "true"
            elif kind == "integer":
                out[key] = int(value)
            elif kind == "number":
                out[key] = float(value)
        except ValueError:
            pass  # left a string: the schema reports the type error
    return out


def _validate(
    fields: dict[str, Any], invalid: frozenset[str], unsubscribed: frozenset[str]
) -> Response | None:
    """Return Twilio's error response for a message create Twilio would reject, else None."""
    to = fields.get("To")
    if not to:
        return twilio_error(400, 21604, "A 'To' phone number is required.")
    if not is_phone_number(to) or _CHANNEL.sub("", to) in invalid:
        return twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
    if not fields.get("From") and not fields.get("MessagingServiceSid"):
        return twilio_error(400, 21603, "A 'From' phone number is required.")
    if not (fields.get("Body") or fields.get("MediaUrl") or fields.get("ContentSid")):
        return twilio_error(400, 21602, "Message body is required.")
    coerced = _coerced(fields)
    errors = [] if _compiled().is_valid(coerced) else _validator().iter_errors(coerced)
    for err in sorted(errors, key=lambda e: str(e.path)):
        name = str(err.path[0]) if err.path else "request"
        code = _FIELD_CODES.get(name, GENERIC_PARAM_CODE)
        if name in ("From", "FallbackFrom"):
            message = f"Invalid '{name}' Phone Number: {fields[name]}"
        else:
            message = f"Invalid parameter {name}: {err.message[:200]}"
        return twilio_error(400, code, message)
    if len(fields.get("Body", "")) > MAX_BODY:
        return twilio_error(
            400, 21617, f"The concatenated message body exceeds the {MAX_BODY} character limit."
        )
    if _CHANNEL.sub("", to) in unsubscribed:
        return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
    return None


def _message_resource(account_sid: str, fields: dict[str, Any]) -> dict[str, Any]:
    media = fields.get("MediaUrl", [])
    sid = ("MM" if media else "SM") + secrets.token_hex(16)
    now = format_datetime(datetime.now(UTC))
    base = f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}"
    body = fields.get("Body", "")
    from_only_service = not fields.get("From")
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": fields.get("From"),
        "messaging_service_sid": fields.get("MessagingServiceSid"),
        "num_media": str(len(media)),
        "num_segments": str(num_segments(body)),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "accepted" if from_only_service else "queued",
        "subresource_uris": {"media": f"{base}/Media.json", "feedback": f"{base}/Feedback.json"},
        "to": fields["To"],
        "uri": f"{base}.json",
    }


def _numbers(given: Iterable[str] | None, env: str, default: frozenset[str]) -> frozenset[str]:
    if given is not None:
        return frozenset(given)
    if env in os.environ:
        return frozenset(n.strip() for n in os.environ[env].split(",") if n.strip())
    return default


def create_twilio_app(
    db_path: str | Path | None = None,
    *,
    account_sid: str | None = None,
    auth_token: str | None = None,
    unsubscribed: Iterable[str] | None = None,
    invalid: Iterable[str] | None = None,
    faults: dict[str, Any] | None = None,
) -> Flask:
    """Create the fake Twilio app storing into db_path (env FAKE_DB_PATH when None).

    account_sid/auth_token (or env FAKE_TWILIO_ACCOUNT_SID/FAKE_TWILIO_AUTH_TOKEN), when set, are
    the only credentials accepted. Sends to unsubscribed numbers fail with 21610, to invalid ones
    with 21211 (env FAKE_TWILIO_UNSUBSCRIBED/FAKE_TWILIO_INVALID, comma-separated; defaults are
    Twilio's test numbers). faults, when given, replace the stored fault rules.
    """
    store = FakeRecords(db_path or os.environ["FAKE_DB_PATH"])
    if faults is not None:
        store.set_faults(PROVIDER, faults)
    sid = account_sid or os.environ.get("FAKE_TWILIO_ACCOUNT_SID")
    token = auth_token or os.environ.get("FAKE_TWILIO_AUTH_TOKEN")
    stop = _numbers(unsubscribed, "FAKE_TWILIO_UNSUBSCRIBED", DEFAULT_UNSUBSCRIBED)
    bad = _numbers(invalid, "FAKE_TWILIO_INVALID", DEFAULT_INVALID)
    app = Flask("fake_twilio")
    app.register_blueprint(control_blueprint(store, PROVIDER))

    @app.post("/2010-04-01/Accounts/<account>/Messages.json")
    def create_message(account: str) -> Response:
        auth = request.authorization
        if auth is None or auth.type != "basic" or not auth.username or not auth.password:
            error = twilio_error(401, 20003, "Authentication Error - No credentials provided")
            error.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return error
        wrong_user = auth.username != (sid or account) and not auth.username.startswith("SK")
        if wrong_user or (token is not None and auth.password != token):
            error = twilio_error(401, 20003, "Authenticate")
            error.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return error
        if not _ACCOUNT_SID.match(account):
            return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        return with_faults(store, PROVIDER, _fault_response, lambda delay: accept(account, delay))

    def accept(account: str, delay_ms: float) -> Response:
        fields = _form_fields()
        headers = pick_headers(request.headers, RECORDED_HEADERS)
        error = _validate(fields, bad, stop)
        if error is not None:
            store.record_request(
                PROVIDER, request.path, 400, headers, json.dumps(fields), None, delay_ms
            )
            return error
        message = _message_resource(account, fields)
        store.record_request(
            PROVIDER, request.path, 201, headers, json.dumps(fields), message["sid"], delay_ms
        )
        response = jsonify(message)
        response.status_code = 201
        return response

    return app
