"""Each service's OpenAPI document is valid OpenAPI 3.0 and says which endpoints take a key."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from shared.config import Settings
from shared.migrate import upgrade

pytestmark = pytest.mark.integration


def spec_of(service: str, tmp_path: Path) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path / (service + '.db')}"
    upgrade(service, url)
    settings = Settings.from_env(service).with_(database_url=url, hash_key="k")
    app = importlib.import_module(f"services.{service}").create_app(settings)
    spec: dict[str, Any] = app.test_client().get("/api/v1/openapi.json").get_json()
    return spec


@pytest.mark.parametrize("service", ["campaigns", "petitions", "notifications"])
def test_the_openapi_document_is_valid_and_names_its_security_scheme(
    service: str, tmp_path: Path
) -> None:
    spec = spec_of(service, tmp_path)
    validate(spec)  # raises on anything OpenAPI 3.0 does not allow (a header with no schema...)
    schemes = set(spec.get("components", {}).get("securitySchemes", {}))
    used = {
        name
        for path in spec["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict)
        for requirement in operation.get("security", [])
        for name in requirement
    }
    assert used and used <= schemes


def test_endpoints_that_take_a_key_say_so(tmp_path: Path) -> None:
    petitions = spec_of("petitions", tmp_path)["paths"]
    assert petitions["/api/v1/petitions"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in petitions["/api/v1/petitions/{petition_id}/signatures"]["post"]
    headers = {
        p["name"]
        for p in petitions["/api/v1/petitions/{petition_id}/signatures"]["post"]["parameters"]
        if p["in"] == "header"
    }
    assert "Idempotency-Key" in headers
    notifications = spec_of("notifications", tmp_path)["paths"]
    assert notifications["/api/v1/erasures"]["post"]["security"] == [{"bearer": []}]
    # Public, but a key sent that is unknown is refused rather than ignored.
    assert "401" in petitions["/api/v1/petitions/{petition_id}"]["get"]["responses"]
    # The emailed confirmation link opens a page, missing or not.
    page = petitions["/api/v1/confirmations/{token}"]["get"]["responses"]
    assert set(page["404"]["content"]) == set(page["200"]["content"]) == {"text/html"}


def test_each_operation_documents_the_errors_it_can_answer(tmp_path: Path) -> None:
    """A client generated from the document must know a 401, a 409 or a 429 (and its
    Retry-After) can come, and that each has the one error shape."""
    petitions = spec_of("petitions", tmp_path)["paths"]
    sign = petitions["/api/v1/petitions/{petition_id}/signatures"]["post"]["responses"]
    assert {"404", "409", "413", "415", "422", "429"} <= set(sign)
    assert "Retry-After" in sign["429"]["headers"]
    assert sign["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    create = petitions["/api/v1/petitions"]["post"]["responses"]
    assert {"401", "403", "409", "413", "415"} <= set(create)
    assert "401" not in sign  # signing is public
    export = petitions["/api/v1/petitions/{petition_id}/exports/signers.csv"]["get"]["responses"]
    assert "text/csv" in export["200"]["content"] and "409" not in export
    # Exports are limited per API key, not per address as signing is.
    assert export["429"]["description"] == "Too many exports with this key"
    assert "Retry-After" in export["429"]["headers"]


@pytest.mark.parametrize("service", ["campaigns", "petitions", "notifications"])
def test_bodies_and_idempotency_keys_document_their_refusals(service: str, tmp_path: Path) -> None:
    """Malformed JSON is a 400 wherever a body is read, and a reused Idempotency-Key a 422
    wherever one is read (also where no other argument is parsed)."""
    for path, operations in spec_of(service, tmp_path)["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "callbacks" in operation.get("tags", ()):
                continue
            if "requestBody" in operation:
                assert "400" in operation["responses"], (method, path)
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            if "Idempotency-Key" in headers:
                assert "422" in operation["responses"], (method, path)


def test_the_document_says_what_the_campaigns_api_does(tmp_path: Path) -> None:
    campaigns = spec_of("campaigns", tmp_path)
    paths = campaigns["paths"]
    # Scheduling with no body sends now.
    assert paths["/api/v1/alerts/{alert_id}/schedule"]["post"]["requestBody"]["required"] is False
    # A map of locales is sized by its members, not as a string.
    schemas = campaigns["components"]["schemas"]
    titles = schemas["CampaignIn"]["properties"]["titles"]
    assert titles["maxProperties"] == 30 and "maxLength" not in titles
    key = next(
        p
        for p in paths["/api/v1/campaigns"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    )
    assert "422" in key["description"] and "Idempotent-Replayed" in key["description"]


def test_the_pages_emails_link_to_are_documented(tmp_path: Path) -> None:
    paths = spec_of("notifications", tmp_path)["paths"]
    one_click = paths["/unsubscribe/{token}"]["post"]
    assert "text/plain" in one_click["responses"]["200"]["content"]
    for path in ("/preferences/{token}", "/preferences/{token}/confirm", "/erase/{token}"):
        assert {"get", "post"} <= set(paths[path]), path
        assert "404" in paths[path]["get"]["responses"]
    assert set(one_click["responses"]) == {"200"}  # no JSON errors: the same answer always
    assert "application/json" not in paths["/erase/{token}"]["get"]["responses"]["404"]["content"]


def test_the_signing_document_takes_what_signing_takes(tmp_path: Path) -> None:
    """A client that checks its requests against the document must be able to send OSDI's
    shape (email_addresses instead of email), and read every answer of the confirmation link:
    its page for a closed petition (409), and the pages a browser's form post gets."""
    spec = spec_of("petitions", tmp_path)
    signer = spec["components"]["schemas"]["Signer"]
    assert "email" not in signer.get("required", [])
    assert {"email_addresses", "phone_numbers", "postal_addresses", "languages_spoken"} <= set(
        signer["properties"]
    )
    link = spec["paths"]["/api/v1/confirmations/{token}"]
    assert "text/html" in link["get"]["responses"]["409"]["content"]
    for status in ("404", "409"):
        assert {"application/json", "text/html"} <= set(
            link["post"]["responses"][status]["content"]
        )
