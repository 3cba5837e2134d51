"""The one JSON error shape, for every kind of failure."""

from __future__ import annotations

import pytest
from flask import Flask
from marshmallow import Schema, ValidationError, fields

from shared.errors import Conflict, Unauthenticated
from shared.outbox import MAX_EVENT_BYTES, EventTooLarge
from shared.web import ApiBlueprint, create_api, health_blueprint, no_links


class Body(Schema):
    email = fields.Email(required=True)


def make_app() -> Flask:
    app = Flask("t")
    api = create_api(app, "Test")
    bp = ApiBlueprint("things", __name__, url_prefix="/api/v1/things")

    @bp.post("/")
    @bp.arguments(Body)
    def create(body: dict[str, str]) -> dict[str, str]:
        return body

    @bp.get("/conflict")
    def conflict() -> None:
        raise Conflict("already there")

    @bp.get("/huge")
    def huge() -> None:
        raise EventTooLarge("kinship.petition.published.v1", MAX_EVENT_BYTES + 1)

    @bp.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail")

    api.register_blueprint(bp)
    app.register_blueprint(
        health_blueprint("t", {"database": lambda: True, "kafka": lambda: False})
    )
    return app


def test_validation_errors_name_the_field() -> None:
    response = make_app().test_client().post("/api/v1/things/", json={"email": "nope"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == 422 and body["status"] == "Unprocessable Entity"
    assert "email" in body["errors"] and "email" in body["message"]


def test_json_nested_too_deep_is_a_400_not_a_crash() -> None:
    # Python's json parser raises RecursionError (not a decoding error) past ~1,000 levels.
    body = "[" * 50_000 + "]" * 50_000
    response = (
        make_app().test_client().post("/api/v1/things/", data=body, content_type="application/json")
    )
    assert response.status_code == 400
    assert "body" in response.get_json()["errors"]


def test_a_body_wrong_as_a_whole_is_named_body() -> None:
    client = make_app().test_client()
    for data, status in (("[1, 2]", 422), ('"text"', 422), ("{not json", 400)):
        response = client.post("/api/v1/things/", data=data, content_type="application/json")
        assert response.status_code == status, data
        body = response.get_json()
        assert list(body["errors"]) == ["body"] and body["message"] != "Invalid _schema", data


def test_a_number_too_long_for_python_is_a_400_not_a_crash() -> None:
    # Past 4,300 digits Python's int() (and so its json parser) raises a plain ValueError.
    body = '{"email": 1' + "0" * 5000 + "}"
    response = (
        make_app().test_client().post("/api/v1/things/", data=body, content_type="application/json")
    )
    assert response.status_code == 400
    assert response.get_json()["errors"] == {"body": ["A number is too long."]}


def test_a_body_that_is_not_json_is_refused_naming_the_content_type() -> None:
    # Read as no body at all, it would reach the view as an empty object.
    response = (
        make_app()
        .test_client()
        .post("/api/v1/things/", data='{"email": "a@example.org"}', content_type="text/plain")
    )
    assert response.status_code == 415
    assert "Content-Type" in response.get_json()["errors"]


def test_domain_errors_unknown_routes_and_crashes_share_the_shape() -> None:
    client = make_app().test_client()
    assert client.get("/api/v1/things/conflict").get_json() == {
        "code": 409,
        "status": "Conflict",
        "message": "already there",
        "errors": {},  # DESIGN.md's one shape: there even when no field is wrong
    }
    wrong_method = client.delete("/api/v1/things/conflict")
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["Allow"]
    missing = client.get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.get_json()["code"] == 404
    assert missing.get_json()["errors"] == {}
    crash = client.get("/api/v1/things/boom")
    assert crash.status_code == 500
    assert crash.get_json() == {
        "code": 500,
        "status": "Internal Server Error",
        "message": "Internal server error",
        "errors": {},
    }


def test_readiness_reports_each_dependency() -> None:
    client = make_app().test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"] == {"database": "ok", "kafka": "unavailable"}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and b"kinship_http_request_seconds" in metrics.data


def test_an_event_too_large_to_publish_is_a_413_in_the_one_shape() -> None:
    response = make_app().test_client().get("/api/v1/things/huge")
    assert response.status_code == 413
    body = response.get_json()
    assert body["code"] == 413 and body["status"] == "Request Entity Too Large"
    assert "too large" in body["message"]


def test_a_401_names_the_bearer_scheme() -> None:
    app = Flask("t")
    create_api(app, "Test")

    @app.get("/private")
    def private() -> None:
        raise Unauthenticated("An API key is required")

    response = app.test_client().get("/private")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


def test_a_worker_serves_its_metrics_on_its_own_port() -> None:
    """Workers have no web server: what they count (events consumed, possible duplicate
    messages) must still be readable, or it is counted for nobody."""
    import urllib.request

    from shared import metrics

    metrics.AMBIGUOUS_SENDS.labels("email", "thank_you").inc()
    port = metrics.serve(0, "127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    assert 'kinship_notifications_ambiguous_total{channel="email",kind="thank_you"}' in text


@pytest.mark.parametrize(
    "name",
    [
        "Mari",
        "St. John",
        "J.R.",
        "Nguyễn Thị",
        "O'Brien",
        "Dr. Kim",
        "they/them",
        "李",
        "Ma.Cristina",
        "J.Smith",
        "Mr.Nguyen",
        "St.John",
        "J.R.R. Tolkien",
        # Filipino names abbreviate María so, in any case; and given names joined by a dot.
        "Ma.Luz",
        "MA.CRISTINA",
        "ma.cristina",
        "Jean.Pierre",
        "A.Nguyen",
    ],
)
def test_names_are_names(name: str) -> None:
    no_links(name)


@pytest.mark.parametrize(
    "name",
    [
        "see evil.com now",
        "www.x.example",
        "https://a",
        "a@b.example",
        "x.co/abc",
        "unlock-acct.ca",
        "bit.do/x",
        "EVIL.SU",
        "evil\u3002com",
        "evil.page",
        "evil.\uff43\uff4f\uff4d",
        "evil\uff0ecom",
        "Visit Unlock.Page",
        "go.shop",
        "see example.co.uk",
        "\u4f8b\u5b50.\u4e2d\u56fd",  # 例子.中国
    ],
)
def test_a_name_that_would_be_a_link_in_an_email_is_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        no_links(name)
