"""Request schemas: texts sized so events fit in a Kafka message; no NUL or lone surrogates."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import Schema, ValidationError

from services.campaigns import schemas as s


def alert(content: dict[str, Any]) -> dict[str, Any]:
    return {"name": "n", "channels": ["email"], "default_locale": "en", "content": content}


def errors_of(schema: Schema, body: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        schema.load(body)
    return caught.value.messages  # type: ignore[return-value]


def test_alert_content_is_capped_in_total_across_locales() -> None:
    # Each locale within its own limits, together past 512 KB: alert.published would not fit.
    big = {"email_html": "<p>" + "x" * 190_000 + "</p>", "email_text": "y" * 90_000}
    assert list(errors_of(s.AlertIn(), alert({"en": big, "fil": big}))) == ["content"]
    assert list(errors_of(s.AlertPatch(), {"content": {"en": big, "fil": big}})) == ["content"]
    s.AlertIn().load(alert({"en": big}))
    # Counted as the event's JSON, where a control character takes six bytes.
    control = {"email_text": "\x01" * 90_000}
    assert list(errors_of(s.AlertPatch(), {"content": {"en": control}})) == ["content"]


def test_campaign_texts_cap_locales_and_descriptions_in_total() -> None:
    many = {f"l{i:02d}": "title" for i in range(s.MAX_LOCALES + 1)}
    body = {"default_locale": "en", "titles": many}
    assert list(errors_of(s.CampaignIn(), body)) == ["titles"]
    long = {f"l{i:02d}": "d" * 20_000 for i in range(14)}  # 280 KB
    assert list(errors_of(s.CampaignPatch(), {"descriptions": long})) == ["descriptions"]
    s.CampaignPatch().load({"descriptions": dict(list(long.items())[:12])})


def test_audience_lists_and_communities_are_capped() -> None:
    prefixes = [f"{i:05d}" for i in range(s.MAX_AUDIENCE_VALUES + 1)]
    assert list(errors_of(s.AlertPatch(), {"audience": {"postal_prefixes": prefixes}})) == [
        "audience"
    ]
    communities = [f"c{i}" for i in range(s.MAX_COMMUNITIES + 1)]
    assert list(errors_of(s.CampaignPatch(), {"communities": communities})) == ["communities"]


@pytest.mark.parametrize(
    ("schema", "body", "field"),
    [
        (s.OrganizationIn(), {"name": "a\x00", "slug": "a"}, "name"),
        (s.OrganizationPatch(), {"postal_address": "1 Main St\x00"}, "postal_address"),
        (s.OrganizationPatch(), {"communities": ["ok", "\ud800"]}, "communities"),
        (s.OrganizationFilter(), {"slug": "\x00"}, "slug"),
        (s.KeyIn(), {"role": "partner", "organization": "acme\x00"}, "organization"),
        (s.KeyFilter(), {"organization": "\udfff"}, "organization"),
        (s.CampaignPatch(), {"titles": {"en": "a\x00b"}}, "titles"),
        (s.CampaignPatch(), {"titles": {"e\x00": "title"}}, "titles"),
        (s.InvitationIn(), {"organization": "\x00"}, "organization"),
        (s.AlertPatch(), {"name": "\ud83d"}, "name"),
        (s.AlertPatch(), {"content": {"en": {"sms_text": "hi\x00"}}}, "content"),
        (s.AlertPatch(), {"audience": {"interests": ["a\x00"]}}, "audience"),
    ],
)
def test_nul_and_lone_surrogates_are_refused_naming_the_field(
    schema: Schema, body: dict[str, Any], field: str
) -> None:
    assert list(errors_of(schema, body)) == [field]
