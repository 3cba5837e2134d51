"""The demo's SMS signer: whichever one the hour picks, the petitions service must accept it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.petitions.domain import e164
from shared.cli.demo import SMS_SIGNERS, sms_signer


@pytest.mark.parametrize(("phone", "country", "zone", "postal"), SMS_SIGNERS)
def test_every_demo_phone_number_is_one_signing_accepts(
    phone: str, country: str, zone: str, postal: str | None
) -> None:
    assert e164(phone, country) == phone


def test_the_demo_picks_a_signer_for_each_hour_of_the_day() -> None:
    midnight = datetime(2026, 11, 28, tzinfo=UTC)
    picked = {sms_signer(midnight + timedelta(hours=hour))[0] for hour in range(24)}
    # Each signer is someone's daytime at some hour, so every number gets used by the demo.
    assert picked == {phone for phone, *_ in SMS_SIGNERS}
