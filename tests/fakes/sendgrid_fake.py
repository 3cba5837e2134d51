"""Fake SendGrid v3 Mail Send API: POST /v3/mail/send, validated against the official schema."""

from __future__ import annotations

import copy
import json
import os
import secrets
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from flask import Flask, Response, jsonify, request
from jsonschema import Draft202012Validator, ValidationError

from .common import (
    SPECS_DIR,
    FakeRecords,
    control_blueprint,
    pick_headers,
    retry_after_header,
    with_faults,
)

PROVIDER = "sendgrid"
SPEC_FILE = SPECS_DIR / "sendgrid-mail-send.request.schema.json"
HELP_URL = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.{}"
MAX_RECIPIENTS = 1000
RECORDED_HEADERS = ("Authorization", "Content-Type", "User-Agent", "On-Behalf-Of")
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


@cache
def sendgrid_schema() -> dict[str, Any]:
    """Return the spec's request schema plus the documented rules of the real API it omits."""
    schema: dict[str, Any] = json.loads(SPEC_FILE.read_text())
    props = schema["properties"]
    props["personalizations"]["minItems"] = 1
    pers = props["personalizations"]["items"]["properties"]
    pers["to"]["minItems"] = 1
    pers["custom_args"]["additionalProperties"] = {"type": "string"}
    # The OpenAPI says the mail-level custom_args is a string, but the API (and the SDK's Mail
    # helper, which sends a dict) use an object of string values, like the personalization's.
    props["custom_args"] = copy.deepcopy(_STRING_MAP)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(
        sendgrid_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


@cache
def _compiled() -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(sendgrid_schema(), validate_formats=True)


def sendgrid_error(message: str, field: str | None, help_key: str | None = None) -> dict[str, Any]:
    """Return one entry of SendGrid's {"errors": [...]} list."""
    key = help_key or (field.split(".")[0] if field else None)
    return {"message": message, "field": field, "help": HELP_URL.format(key) if key else None}


def _schema_error(err: ValidationError) -> dict[str, Any]:
    path = ".".join(str(p) for p in err.absolute_path)
    name = path or "request body"
    if err.validator == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        path = ".".join(p for p in (path, missing[0] if missing else "") if p)
        return sendgrid_error(f"The {path} field is required.", path)
    messages = {
        "maxItems": f"The {name} field must have no more than {err.validator_value} items.",
        "minItems": f"The {name} field must have at least {err.validator_value} item(s).",
        "maxProperties": f"The {name} field must have no more than {err.validator_value} keys.",
        "type": f"The {name} field must be of type {err.validator_value}.",
        "format": "Does not contain a valid address.",
        "minLength": f"The {name} field must not be empty.",
    }
    default = err.message if len(err.message) <= 200 else err.message[:200] + "..."
    return sendgrid_error(messages.get(str(err.validator), default), path or None)


def _semantic_errors(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield what the real API rejects beyond the schema (only once the schema holds)."""
    personalizations = body["personalizations"]
    total = sum(len(p.get(k, [])) for p in personalizations for k in ("to", "cc", "bcc"))
    if total > MAX_RECIPIENTS:
        yield sendgrid_error(
            f"The total number of recipients must be no more than {MAX_RECIPIENTS}. This includes"
            " all recipients defined within the to, cc, and bcc parameters, across each object"
            " that you include in the personalizations array.",
            "personalizations",
        )
    for i, pers in enumerate(personalizations):
        emails = [r["email"].lower() for k in ("to", "cc", "bcc") for r in pers.get(k, [])]
        if len(emails) != len(set(emails)):
            yield sendgrid_error(
                "Each email address in the personalization block should be unique between to,"
                " cc, and bcc. We found the first duplicate instance of an address.",
                f"personalizations.{i}.to",
            )
    if "template_id" not in body:
        if not body.get("content"):
            yield sendgrid_error(
                "Unless a valid template_id is provided, the content parameter is required."
                " There must be at least one defined content block.",
                "content",
            )
        if "subject" not in body and not all("subject" in p for p in personalizations):
            yield sendgrid_error(
                "The subject is required. You can get around this requirement if you use a"
                " template with a subject defined or if every personalization has a subject"
                " defined.",
                "subject",
            )


def validate_mail(body: Any) -> list[dict[str, Any]]:
    """Return SendGrid error entries for a mail-send body (empty when SendGrid would accept it)."""
    if not isinstance(body, dict):
        return [sendgrid_error("Bad Request", None)]
    # The compiled (Rust) validator passes a 1,000-personalization body in well under a
    # millisecond, where jsonschema takes ~50 ms. Only a body it refuses goes through jsonschema,
    # which names the problems and has the last word: its email format check ("@" present) is
    # the looser one, so the fast path never refuses what jsonschema would accept.
    if not _compiled().is_valid(body):
        errors = sorted(
            _validator().iter_errors(body), key=lambda e: list(map(str, e.absolute_path))
        )
        if errors:
            return [_schema_error(e) for e in errors[:20]]
    return list(_semantic_errors(body))


def _errors(status: int, *entries: dict[str, Any]) -> Response:
    response = jsonify(errors=list(entries))
    response.status_code = status
    return response


def _fault_response(status: int, retry_after: float | None) -> Response:
    messages = {429: "too many requests", 504: "gateway timeout"}
    response = _errors(status, sendgrid_error(messages.get(status, "internal error"), None))
    if status == 429:
        response.headers["Retry-After"] = retry_after_header(retry_after)
        response.headers["X-RateLimit-Limit"] = "600"
        response.headers["X-RateLimit-Remaining"] = "0"
    return response


def create_sendgrid_app(
    db_path: str | Path | None = None,
    *,
    api_key: str | None = None,
    faults: dict[str, Any] | None = None,
) -> Flask:
    """Create the fake SendGrid app storing into db_path (env FAKE_DB_PATH when None).

    api_key, when set (or env FAKE_SENDGRID_API_KEY), is the only key accepted; faults, when
    given, replace the stored fault rules.
    """
    db = db_path or os.environ["FAKE_DB_PATH"]
    key = api_key if api_key is not None else os.environ.get("FAKE_SENDGRID_API_KEY") or None
    store = FakeRecords(db)
    if faults is not None:
        store.set_faults(PROVIDER, faults)
    app = Flask("fake_sendgrid")
    app.register_blueprint(control_blueprint(store, PROVIDER))

    @app.post("/v3/mail/send")
    def mail_send() -> Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return _errors(401, {"message": "authorization required", "field": None, "help": None})
        if key is not None and auth[7:] != key:
            message = "The provided authorization grant is invalid, expired, or revoked"
            return _errors(401, {"message": message, "field": None, "help": None})
        return with_faults(store, PROVIDER, _fault_response, accept)

    def accept(delay_ms: float) -> Response:
        raw = request.get_data(as_text=True)
        headers = pick_headers(request.headers, RECORDED_HEADERS)
        errors = validate_mail(request.get_json(force=True, silent=True))
        if errors:
            store.record_request(PROVIDER, request.path, 400, headers, raw, None, delay_ms)
            return _errors(400, *errors)
        message_id = secrets.token_urlsafe(16)
        store.record_request(PROVIDER, request.path, 202, headers, raw, message_id, delay_ms)
        return Response(b"", 202, {"X-Message-Id": message_id}, content_type="text/plain")

    return app
