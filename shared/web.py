"""The HTTP edge every service shares: the API object, the one error shape, health and metrics."""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from html import escape
from http import HTTPStatus
from typing import Any

import tldextract
from apispec import BasePlugin
from flask import Blueprint, Flask, Response, g, jsonify, request
from flask_smorest import Api, abort
from flask_smorest import Blueprint as SmorestBlueprint
from marshmallow import ValidationError
from marshmallow import fields as ma_fields
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

from shared import idempotency, metrics
from shared.errors import DomainError, NotFound
from shared.outbox import EventTooLarge

log = logging.getLogger(__name__)
Check = Callable[[], bool]
# NUL (PostgreSQL text refuses it) and unpaired surrogates (no UTF-8 encoder takes them).
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def storable(value: str) -> bool:
    """Return True for text that the database and every encoder here can store."""
    return _UNSTORABLE.search(value) is None


def storable_text(value: str) -> None:
    """A marshmallow validator: refuse text the database cannot store (a 422 naming the field,
    where the database would answer 500)."""
    if not storable(value):
        raise ValidationError("Must not contain NUL or unpaired surrogate characters.")


# Control characters (line breaks, tabs) and the line and paragraph separators U+2028/U+2029,
# where renderers break a line too. Format characters (ZWJ, ZWNJ) stay: Indic names use them.
_BREAKING = frozenset({"Cc", "Zl", "Zp"})


def one_line(value: str) -> bool:
    """Whether text holds no control character or line separator (a line break, a tab): what
    becomes an email's subject or sender name, where one would break the header or show as a
    box."""
    return not any(unicodedata.category(ch) in _BREAKING for ch in value)


def single_line_text(value: str) -> None:
    """A marshmallow validator: refuse text that is not one line (one_line)."""
    if not one_line(value):
        raise ValidationError("One line: no line breaks, tabs or other control characters.")


def utc_representable(value: datetime) -> None:
    """A marshmallow validator for an aware time: one whose UTC reading falls outside years
    1-9999 ("0001-01-01T00:00+01:00") is refused (a 422), where storing it would be a 500."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValidationError("Out of range once read as UTC.") from None


# What mail clients and phones turn into a link in running text: a scheme, "www.", an address,
# or a host name (dotted words ending in a top-level domain or other public suffix: "bit.ly",
# "evil.example.com", "例子.中国"), read in NFKC (full-width letters and dots are the ASCII
# ones), with the ideographic full stop as a dot. Dotted words that end in no suffix are a name
# written without a space: "Ma.Luz" and "MA.CRISTINA" (Filipino names abbreviate María so),
# "J.Smith", "St.John".
_LINK_MARK = re.compile(r"://|\bwww[.\u3002]|@", re.IGNORECASE)
_DOTTED = re.compile(r"[\w-]+(?:[.\u3002][\w-]+)+")
# The public suffix list's ICANN section as tldextract ships it: never fetched, no cache.
_SUFFIXES = tldextract.TLDExtract(
    suffix_list_urls=(), cache_dir=None, include_psl_private_domains=False
)


def no_links(value: str | None) -> None:
    """A marshmallow validator for a name that messages greet someone by: anyone can type
    someone else's address with a "name" such as "your account is locked, see evil.example.com",
    which the confirmation or thank-you email would then carry, from the organization's own
    sender, to that address (phishing and spam through a sender people trust)."""
    if not value:
        return
    text = unicodedata.normalize("NFKC", value)
    if _LINK_MARK.search(text):
        raise ValidationError("A name, not a web or email address.")
    for dotted in _DOTTED.finditer(text):
        if _SUFFIXES(dotted.group().replace("\u3002", ".")).suffix:
            raise ValidationError(
                f"A name, not a web address: {dotted.group()!r} reads as one."
                " Put a space after the dot."
            )


def refuse_unstorable_path() -> None:
    """An id or token in the path that the database cannot hold (NUL) names nothing: 404,
    before any view reaches the database with it (which would answer 500)."""
    if not all(storable(str(value)) for value in (request.view_args or {}).values()):
        raise NotFound("Not found")


def error_body(code: int, message: str, errors: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the one JSON error shape; `errors` always there (empty when no field is wrong),
    so a client reads it the same way for a 422 as for a 401, 404, 409 or 429."""
    return {
        "code": code,
        "status": HTTPStatus(code).phrase,
        "message": message,
        "errors": dict(errors or {}),
    }


_LOCATIONS = {"json", "query", "form", "headers", "files", "path"}
_BODY = {"json", "form"}


def _flatten_webargs(errors: Mapping[str, Any]) -> dict[str, Any]:
    """Drop webargs' location level ({"json": {"email": [...]}} -> {"email": [...]}). What is
    wrong with the body as a whole (not JSON, an array where an object belongs: webargs files
    it under the location, marshmallow under `_schema`) is named `body`."""
    flat: dict[str, Any] = {}
    for location, fields in errors.items():
        if location in _LOCATIONS and isinstance(fields, Mapping):
            whole = "body" if location in _BODY else location
            for name, problems in fields.items():
                flat[whole if name == "_schema" else name] = problems
        elif location in _BODY:
            flat["body"] = fields
        else:
            flat[location] = fields
    return flat


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    code = exc.code or 500
    data = getattr(exc, "data", None) or {}
    errors = _flatten_webargs(data.get("messages", {})) if isinstance(data, dict) else {}
    message = (data.get("message") if isinstance(data, dict) else None) or exc.description
    if errors and (not message or message == exc.description):
        message = "Invalid " + ", ".join(sorted(str(name) for name in errors))
    response = jsonify(error_body(code, str(message or HTTPStatus(code).phrase), errors))
    # Keep what the exception says in headers (Retry-After on 429, Allow on 405, ...).
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    headers = data.get("headers") if isinstance(data, dict) else None
    if headers:
        response.headers.update(headers)
    return response, code


def register_error_handlers(app: Flask) -> None:
    """Make every error, including unexpected ones, answer in the one JSON shape."""

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> tuple[Response, int]:
        response = jsonify(error_body(exc.status, exc.message, exc.errors))
        if exc.status == 401:  # RFC 9110: a 401 names the scheme that would be accepted
            response.headers["WWW-Authenticate"] = "Bearer"
        return response, exc.status

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[Response, int]:
        return _http_error(exc)

    @app.errorhandler(EventTooLarge)
    def _too_large(exc: EventTooLarge) -> tuple[Response, int]:
        # The request's change would publish an event Kafka refuses: nothing was committed.
        message = "The request is too large: the event it makes would exceed the size limit"
        return jsonify(error_body(413, message)), 413

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error", extra={"endpoint": request.endpoint})
        return jsonify(error_body(500, "Internal server error")), 500


# Pages people reach from an email: never cached, never indexed, and the link (which carries a
# token) not passed on to whatever the page links to.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}


def html_page(title: str, body: str, status: int = 200, lang: str = "en") -> Response:
    """Return a minimal HTML page: title (escaped) as its heading, then body (HTML as given)."""
    html = (
        f'<!doctype html><html lang="{escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title></head><body><main><h1>{escape(title)}</h1>{body}"
        "</main></body></html>"
    )
    return Response(html, status, PAGE_HEADERS, content_type="text/html; charset=utf-8")


class JsonParser(FlaskParser):
    """webargs' parser, refusing what it would otherwise mistake for an empty body or answer
    with a 500: a body sent as anything but JSON (it read as no body, so a PATCH answered 200
    and changed nothing) is a 415 naming Content-Type, and JSON nested too deep for Python's
    parser (it raises RecursionError, not a decoding error) is a 400 like any invalid JSON, as
    is a number too long for it (past 4,300 digits it raises a plain ValueError)."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req) and req.get_data(cache=True):
            abort(
                415,
                message="The body must be JSON",
                messages={"Content-Type": ["Send the body as application/json."]},
            )
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            abort(400, message="Invalid JSON body", messages={"body": ["Nested too deep."]})
        except json.JSONDecodeError:
            raise  # webargs answers it
        except ValueError:
            abort(400, message="Invalid JSON body", messages={"body": ["A number is too long."]})


class ApiBlueprint(SmorestBlueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint with Kinship's JSON parser."""

    ARGUMENTS_PARSER = JsonParser()


def _error_response(description: str, headers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        response["headers"] = dict(headers)
    return response


_SECONDS = {"schema": {"type": "integer", "minimum": 1}}
# The errors any Kinship operation may answer, each in the one error shape (error_body).
ERROR_RESPONSES: dict[str, dict[str, Any]] = {
    "401": _error_response(
        "No API key, or one unknown, revoked or expired",
        {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    ),
    "403": _error_response("The key's role or organization may not do this"),
    "404": _error_response("No such resource (or none this key may see)"),
    "409": _error_response(
        "The resource's state forbids this (a closed petition, a campaign not launched...),"
        " or the first request under its Idempotency-Key is still in progress, took effect"
        " without its response being kept, or just failed (retry it)"
    ),
    "400": _error_response(
        "The body is not valid JSON: malformed, not UTF-8, nested too deep, or a number too long"
    ),
    "410": _error_response(
        "What was asked for is gone for good (a petition's signers erased under its retention)"
    ),
    "413": _error_response("The body is over 2 MiB, or the event it makes is over 900 KB"),
    "415": _error_response("The body is not JSON (Content-Type: application/json)"),
    "422": _error_response("A field, parameter or header is invalid: `errors` names it"),
    "429": _error_response(
        "Too many requests from this address: wait Retry-After seconds",
        {"Retry-After": {**_SECONDS, "description": "seconds to wait"}},
    ),
}


class ErrorResponses(BasePlugin):
    """Documents the error statuses each operation can answer (flask-smorest documents only
    the success and a generic default): 401/403 where a key is asked for, 404 where the path
    names a resource, 409 for a change, 400/413/415 where a body is read, 422 where an
    Idempotency-Key is read (flask-smorest documents it only where arguments are parsed), and
    410 and 429 (with its Retry-After) where a route declares them."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        for method, operation in (operations or {}).items():
            responses = operation.setdefault("responses", {})
            if {"callbacks", "supporter pages"} & set(operation.get("tags", ())):
                continue  # providers' callbacks and the HTML pages declare their own
            wanted = []
            if operation.get("security"):
                wanted += ["401", "403"]
            if "{" in (path or "") or "<" in (path or ""):
                wanted.append("404")
            if method in ("post", "put", "patch", "delete"):
                wanted.append("409")
            if "requestBody" in operation:
                wanted += ["400", "413", "415"]
            headers = {
                p.get("name") for p in operation.get("parameters", []) if p.get("in") == "header"
            }
            if idempotency.HEADER in headers and "422" not in responses:
                wanted.append("422")
            wanted += [status for status in ("410", "429") if status in responses]
            for status in wanted:
                error = ERROR_RESPONSES[status]
                declared = responses.get(status) or {}
                # A route may answer the error in another type too (a page for a browser):
                # both are documented, under the route's own description.
                content = {**error["content"], **declared.get("content", {})}
                description = declared.get("description", error["description"])
                responses[status] = {**error, "description": description, "content": content}


class KinshipApi(Api):  # type: ignore[misc]
    """flask-smorest's Api, answering its errors in Kinship's one shape."""

    def handle_http_exception(self, error: HTTPException) -> tuple[Response, int]:
        return _http_error(error)


def _map_sizes(
    converter: Any, field: ma_fields.Field[Any], ret: dict[str, Any], **_: Any
) -> dict[str, Any]:
    """A map's Length (a number of locales) is minProperties/maxProperties in OpenAPI;
    apispec documents it as a string's minLength/maxLength."""
    if isinstance(field, ma_fields.Dict):
        for length, properties in (("minLength", "minProperties"), ("maxLength", "maxProperties")):
            if length in ret:
                ret[properties] = ret.pop(length)
    return {}


# What an endpoint that takes an API key says in the OpenAPI document (create_api defines it).
AUTH_DOC: dict[str, Any] = {"security": [{"bearer": []}]}


SWAGGER_UI = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.35.0/"


def create_api(app: Flask, title: str, description: str = "") -> KinshipApi:
    """Configure OpenAPI 3 at /api/v1/openapi.json with docs at /api/v1/docs."""
    app.config.setdefault("API_TITLE", title)
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "docs")
    # A fixed release: the docs page runs its script where people paste their API keys.
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", SWAGGER_UI)
    app.config.setdefault("API_SPEC_OPTIONS", {"info": {"description": description}})
    app.config["JSON_SORT_KEYS"] = False
    api = KinshipApi(app, spec_kwargs={"extra_plugins": [ErrorResponses()]})
    api.ma_plugin.converter.add_attribute_function(_map_sizes)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    register_error_handlers(app)
    app.before_request(refuse_unstorable_path)
    return api


def health_blueprint(service: str, checks: Mapping[str, Check]) -> Blueprint:
    """Return /healthz (alive), /readyz (every dependency answers) and /metrics."""
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok", "service": service})

    @bp.get("/readyz")
    def readyz() -> tuple[Response, int]:
        results = {}
        for name, check in checks.items():
            try:
                results[name] = "ok" if check() else "unavailable"
            except Exception:  # noqa: BLE001 - a failing probe means not ready
                results[name] = "unavailable"
        ready = all(value == "ok" for value in results.values())
        body = {"status": "ok" if ready else "unavailable", "service": service, "checks": results}
        return jsonify(body), 200 if ready else 503

    @bp.get("/metrics")
    def metrics_view() -> Response:
        payload, content_type = metrics.render()
        return Response(payload, content_type=content_type)

    return bp


def instrument(app: Flask, service: str) -> None:
    """Time each request by route template (never by raw path, which may hold ids or tokens)."""

    @app.before_request
    def _start() -> None:
        g._kinship_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.pop("_kinship_started", None)
        if started is not None and request.url_rule is not None:
            metrics.HTTP_REQUESTS.labels(
                service, request.url_rule.rule, request.method, str(response.status_code)
            ).observe(time.perf_counter() - started)
        return response


class CachedCheck:
    """Run an expensive readiness probe at most once per ttl seconds."""

    def __init__(self, probe: Check, ttl: float = 5.0) -> None:
        self.probe = probe
        self.ttl = ttl
        self._at = 0.0
        self._ok = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self._at > self.ttl:
            self._ok = self.probe()
            self._at = now
        return self._ok
