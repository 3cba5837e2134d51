"""An alert's interest filter: everyone when it names none, else those who share one."""

from __future__ import annotations

from services.notifications.audience import interest_filter


def test_an_alert_naming_no_interests_takes_everyone():
    for audience in ({}, {"interests": []}, {"interests": None}):
        interested = interest_filter(audience)
        assert interested(None) and interested([]) and interested(["arts"])


def test_an_alert_naming_interests_takes_those_who_share_one():
    interested = interest_filter({"interests": ["housing", "transit"]})
    assert interested(["transit", "arts"])
    assert not interested(["arts"])
    assert not interested([])
    assert not interested(None)
