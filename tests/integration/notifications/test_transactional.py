"""Transactional messages end to end: events in through Kafka, email out through SendGrid's SDK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from services.notifications.audience import EVERY_ORG, suppress
from services.notifications.messages import CATALOGUE
from services.notifications.store import (
    deliveries,
    organizations,
    petitions,
    signatures,
    sms_welcomes,
    supporter_campaigns,
    supporters,
    suppressions,
)
from shared.events.catalog import PETITIONS
from shared.events.envelope import utcnow
from tests.integration.notifications.harness import (
    FROM_NUMBER,
    HASH_KEY,
    Service,
    event,
    issue_key,
    organization,
    petition,
    signature,
)
from tests.support.kafka import caught_up
from tests.support.polling import eventually

pytestmark = pytest.mark.integration


def mails_to(service: Service, address: str) -> list[dict]:
    found = []
    for request in service.fakes.sendgrid_requests():
        for pers in request.body["personalizations"]:
            if any(to["email"] == address for to in pers["to"]):
                found.append({**request.body, "personalization": pers})
    return found


def projected(service: Service) -> bool:
    return bool(service.rows(organizations)) and bool(service.rows(petitions))


def test_signature_gets_one_localized_thank_you_through_sendgrid(service: Service) -> None:
    service.start()
    service.publish(
        organization("org-rb", postal_address="1 Unity Way, Oakland, CA 94601"),
        petition("pet-1", "camp-1", "org-rb"),
    )
    # On other topics than the signature: read before it, as they would be long before a signer.
    eventually(lambda: projected(service), message="organization and petition projected")
    sig = signature(
        "mei@example.org", "pet-1", "camp-1", "org-rb", locale="zh-TW", given_name="Mei",
        pronouns="she/her",
    )  # fmt: skip
    service.publish(sig)
    service.publish(sig)  # a redelivered event thanks nobody twice
    mails = eventually(lambda: mails_to(service, "mei@example.org"), message="thank-you sent")
    mail = mails[0]
    assert "\u611f\u8b1d" in mail["subject"]  # Traditional Chinese
    assert "\u8cc7\u52a9\u8a9e\u8a00\u670d\u52d9" in mail["subject"]  # the petition's zh-Hant title
    text = mail["content"][0]["value"]
    assert "Mei" in text and "she/her" in text
    assert "1 Unity Way, Oakland" in text  # the organization's postal address
    assert "https://notify.example.org/unsubscribe/" in text
    notification_id = mail["personalization"]["custom_args"]["notification_id"]
    eventually(
        lambda: (
            service.rows(deliveries, deliveries.c.delivery_id == notification_id)[0].status
            == "sent"
        ),
        message="ledger says sent",
    )
    # Once both copies of the event were handled, and nothing is left to send: one thank-you.
    eventually(lambda: caught_up(service.bootstrap, service.group, PETITIONS), timeout=60)
    eventually(lambda: service.count(deliveries, deliveries.c.status == "queued") == 0)
    assert service.count(deliveries, deliveries.c.kind == "thank_you") == 1
    assert len(mails_to(service, "mei@example.org")) == 1
    person = service.rows(supporters)[0]
    assert person.time_zone == "America/Los_Angeles"  # from the 94601 ZIP code
    assert person.locale == "zh-Hant"


def test_the_thank_you_names_the_petition_in_the_variant_signed(service: Service) -> None:
    """A Spanish speaker (written to in English: Kinship does not write Spanish) signs the
    Spanish variant of a petition whose default is French: its title in the thank-you is the
    Spanish one they read, not the default's."""
    service.start()
    titles = {"es": "Acceso lingüístico para todos", "fr": "L'accès linguistique pour tous"}
    service.publish(
        organization("org-rb"),
        event(
            "petition.published", "pet-es", petition_id="pet-es", campaign_id="camp-1",
            organization_id="org-rb", titles=titles, default_locale="fr", goal=100,
            double_opt_in=False,
        ),
    )  # fmt: skip
    eventually(lambda: projected(service), message="organization and petition projected")
    sig = signature(
        "lucia@example.org", "pet-es", "camp-1", "org-rb", locale="es", language="es-MX",
        given_name="Lucía",
    )  # fmt: skip
    service.publish(sig)
    [mail] = eventually(lambda: mails_to(service, "lucia@example.org"), message="thank-you")
    assert titles["es"] in mail["subject"] and titles["fr"] not in mail["subject"]


def test_a_title_fixed_after_launch_is_the_one_thanked_for(service: Service) -> None:
    """An organizer fixes a typo in an open petition's title (petition.updated): signers
    thanked after it read the title as fixed."""
    service.start()
    published = dict(
        petition_id="pet-fix", campaign_id="camp-1", organization_id="org-rb",
        default_locale="en", goal=100, double_opt_in=False,
    )  # fmt: skip
    service.publish(
        organization("org-rb"),
        event("petition.published", "pet-fix", titles={"en": "Fund langauge access"}, **published),
        event("petition.updated", "pet-fix", titles={"en": "Fund language access"}, **published),
    )
    eventually(
        lambda: (
            projected(service)
            and service.rows(petitions)[0].titles == {"en": "Fund language access"}
        ),
        message="organization and the petition as fixed projected",
    )
    service.publish(signature("noor@example.org", "pet-fix", "camp-1", "org-rb"))
    [mail] = eventually(lambda: mails_to(service, "noor@example.org"), message="thank-you")
    assert "Fund language access" in mail["subject"] and "langauge" not in mail["subject"]


def test_a_discreet_korean_speaker_signing_in_english_is_thanked_in_korean_discreetly(
    service: Service,
) -> None:
    service.start()
    service.publish(organization("org-rb"), petition("pet-k", "camp-1", "org-rb"))
    # Known first, so "Kinship" below is discretion, not an organization not yet heard of.
    eventually(lambda: projected(service), message="organization and petition projected")
    sig = signature(
        "jiwoo@example.org", "pet-k", "camp-1", "org-rb", locale="en", language="ko-KR",
        discreet=True, given_name="Jiwoo",
    )  # fmt: skip
    service.publish(sig)
    [mail] = eventually(lambda: mails_to(service, "jiwoo@example.org"), message="thank-you")
    # The subject shows on a lock screen: it names no petition, in the person's language.
    assert mail["subject"] == CATALOGUE["ko"]["discreet_subject"]
    assert mail["from"]["name"] == "Kinship"  # not the organization, whose name can say why
    body = mail["content"][0]["value"]
    assert CATALOGUE["ko"]["hello"].format(name="Jiwoo") in body
    # So does the preview an inbox shows after the subject: the body's first words.
    assert body.startswith(CATALOGUE["ko"]["discreet_subject"])
    assert mail["content"][1]["value"].startswith('<div style="display:none')
    assert service.rows(supporters)[0].locale == "ko"


def test_a_number_gets_one_welcome_a_day_however_many_signatures_give_it(
    service: Service,
) -> None:
    """Single opt-in signatures under fresh addresses, each typing the same number and
    ticking texts: the number is welcomed once (a welcome goes at once, at any hour), not once
    a signature. Another organization's texts are another welcome."""
    service.start()
    service.publish(
        organization("org-rb"), organization("org-kp"),
        petition("pet-w1", "camp-1", "org-rb"), petition("pet-w2", "camp-2", "org-kp"),
    )  # fmt: skip
    eventually(lambda: service.count(petitions) == 2, message="petitions projected")
    number = "+14155550188"
    signers = [f"fresh{i}@example.org" for i in range(3)]
    service.publish(
        *(signature(a, "pet-w1", "camp-1", "org-rb", phone=number, sms=True) for a in signers),
        signature("other@example.org", "pet-w2", "camp-2", "org-kp", phone=number, sms=True),
    )
    eventually(
        lambda: service.count(deliveries, deliveries.c.kind == "thank_you") == 4,
        message="four thank-yous queued",
    )
    welcomes = service.rows(deliveries, deliveries.c.kind == "sms_welcome")
    assert sorted(w.params["organization_id"] for w in welcomes) == ["org-kp", "org-rb"]
    texts = eventually(
        lambda: (found := service.fakes.twilio_messages()) and len(found) == 2 and found,
        message="the two welcomes",
    )
    assert {t.body["To"] for t in texts} == {number}
    # Texts turned off for one organization: the next opt-in to it is a new one, welcomed.
    from services.notifications import audience, preferences

    first = signature(signers[0], "pet-w1", "camp-1", "org-rb").key
    with service.engine.begin() as conn:
        person = audience.load_supporters(conn, [first])[first]
        assert preferences.set_sms_consent(conn, service.deps.outbox, person, "org-rb", False,
                                           utcnow())  # fmt: skip
    assert {r.organization_id for r in service.rows(sms_welcomes)} == {"org-kp"}
    # Erasing the number forgets when it was welcomed, and by whom.
    admin = issue_key(service.engine, "admin", "org-rb")
    erased = service.client().post("/api/v1/erasures", json={"phone": number}, headers=admin)
    assert erased.status_code == 202, erased.get_json()
    assert service.count(sms_welcomes) == 0


def test_a_discreet_signers_sms_welcome_does_not_name_the_organization(service: Service) -> None:
    service.start()
    service.publish(organization("org-rb"), petition("pet-t", "camp-1", "org-rb"))
    # Known first, so the organization's name is left out for discretion, not for want of it.
    eventually(lambda: projected(service), message="organization and petition projected")
    sig = signature(
        "tam@example.org", "pet-t", "camp-1", "org-rb", phone="+14155550177", sms=True,
        discreet=True,
    )  # fmt: skip
    plain = signature(
        "lin@example.org", "pet-t", "camp-1", "org-rb", phone="+14155550178", sms=True
    )
    service.publish(sig, plain)
    texts = eventually(
        lambda: (found := service.fakes.twilio_messages()) and len(found) == 2 and found,
        message="SMS welcomes",
    )
    by_number = {text.body["To"]: text.body["Body"] for text in texts}
    # A text shows on a lock screen: the organization's name says what the person supports.
    assert "Rainbow Bridge" not in by_number["+14155550177"]
    assert "Kinship" in by_number["+14155550177"] and "STOP" in by_number["+14155550177"]
    assert "Rainbow Bridge" in by_number["+14155550178"]


def test_a_discreet_tick_on_a_known_signers_new_signature_is_honoured_at_once(
    service: Service,
) -> None:
    # Someone already on file signs a double opt-in petition asking for discretion: their
    # stored row waits for the confirmation, the confirmation email itself must not.
    service.start()
    service.publish(
        organization("org-rb"),
        petition("pet-a", "camp-1", "org-rb"),
        petition("pet-b", "camp-1", "org-rb", True),
    )
    service.publish(signature("lan@example.org", "pet-a", "camp-1", "org-rb"))
    eventually(lambda: mails_to(service, "lan@example.org"), message="thank-you")
    service.publish(
        signature("lan@example.org", "pet-b", "camp-1", "org-rb", double_opt_in=True,
                  discreet=True)
    )  # fmt: skip
    eventually(lambda: len(mails_to(service, "lan@example.org")) == 2, message="confirmation")
    confirm = mails_to(service, "lan@example.org")[1]
    assert confirm["subject"] == CATALOGUE["en"]["discreet_subject"]
    assert confirm["from"]["name"] == "Kinship"


def test_whoever_types_an_address_cannot_move_its_owners_quiet_hours_or_language(
    service: Service,
) -> None:
    """A Honolulu supporter gets texts. Anyone who knows their address signs a single opt-in
    petition "from" New York: their texts would have come from 08:00 Eastern, 03:00 theirs.
    And a signature naming no language (a form that does not ask) must not undo the Korean
    they chose: the petition's English only stands in for a language not given."""
    service.start()
    service.publish(
        organization("org-rb"),
        petition("pet-h1", "camp-1", "org-rb"),
        petition("pet-h2", "camp-1", "org-rb"),
        petition("pet-h3", "camp-1", "org-rb", True),
    )
    address = "kai@example.org"
    service.publish(
        signature(address, "pet-h1", "camp-1", "org-rb", postal_code="96813", language="ko")
    )
    eventually(lambda: mails_to(service, address), message="first thank-you")
    before = service.rows(supporters)[0]
    assert (before.time_zone, before.locale) == ("Pacific/Honolulu", "ko")
    forged = signature(address, "pet-h2", "camp-1", "org-rb", postal_code="10001", language="en")
    service.publish(forged)
    eventually(lambda: len(mails_to(service, address)) == 2, message="second thanks")
    after = service.rows(supporters)[0]
    assert (after.time_zone, after.postal_code, after.country) == (
        "Pacific/Honolulu",
        "96813",
        "US",
    )
    assert (after.locale, after.language) == ("ko", "ko")
    # The owner, confirming a double opt-in signature, does move: to New York, still Korean
    # (their form named no language).
    moved = signature(address, "pet-h3", "camp-1", "org-rb", double_opt_in=True,
                      postal_code="10001")  # fmt: skip
    moved.data["person"]["language"] = None
    service.publish(moved)
    eventually(lambda: len(mails_to(service, address)) == 3, message="confirmation")
    service.publish(
        event("signature.confirmed", moved.key, signature_id=moved.data["signature_id"],
              petition_id="pet-h3", campaign_id="camp-1", supporter_id=moved.key)
    )  # fmt: skip
    eventually(lambda: service.rows(supporters)[0].time_zone == "America/New_York", message="moved")
    assert (service.rows(supporters)[0].locale, service.rows(supporters)[0].language) == (
        "ko",
        "ko",
    )


def test_what_a_stranger_typed_unconfirmed_gives_way_to_the_owners_first_signature(
    service: Service,
) -> None:
    """A stranger signs a double opt-in petition with someone's address "from" New York, as
    "Wrong", and never confirms (the owner gets the link and ignores it). The owner's own
    single opt-in signature from Honolulu, in Korean, is the first that counts: their
    texts' hours, language and name are theirs, not the stranger's."""
    service.start()
    service.publish(
        organization("org-rb"),
        petition("pet-s1", "camp-1", "org-rb", True),
        petition("pet-s2", "camp-1", "org-rb"),
    )
    address = "noa@example.org"
    service.publish(
        signature(address, "pet-s1", "camp-1", "org-rb", double_opt_in=True,
                  postal_code="10001", given_name="Wrong", phone="+12125550100")
    )  # fmt: skip
    eventually(lambda: mails_to(service, address), message="the link")
    assert service.rows(supporters)[0].time_zone == "America/New_York"
    service.publish(
        signature(address, "pet-s2", "camp-1", "org-rb", postal_code="96813", language="ko",
                  given_name="Noa")
    )  # fmt: skip
    eventually(lambda: len(mails_to(service, address)) == 2, message="thank-you")
    person = service.rows(supporters)[0]
    assert (person.time_zone, person.postal_code, person.locale) == (
        "Pacific/Honolulu",
        "96813",
        "ko",
    )
    assert (person.given_name, person.phone) == ("Noa", None)


def test_a_language_chosen_before_the_first_counted_signature_holds(service: Service) -> None:
    """Known only through an unconfirmed double opt-in signature, the owner opens the
    preference page from that email and picks Korean, which applies at once; their own
    signature on an English form that asks no language does not undo it. Another page
    change (discreet mode on) keeps nothing of the language a stranger typed."""
    service.start()
    service.publish(
        organization("org-rb"),
        petition("pet-l1", "camp-1", "org-rb", True),
        petition("pet-l2", "camp-1", "org-rb"),
    )
    chose, other = "min@example.org", "jun@example.org"
    service.publish(
        signature(chose, "pet-l1", "camp-1", "org-rb", double_opt_in=True),
        signature(other, "pet-l1", "camp-1", "org-rb", double_opt_in=True, language="vi"),
    )
    eventually(lambda: mails_to(service, chose) and mails_to(service, other), message="links")
    later = datetime.now(UTC) + timedelta(seconds=1)
    with service.engine.begin() as conn:  # what the page's choices do
        conn.execute(
            update(supporters)
            .where(supporters.c.email == chose)
            .values(locale="ko", language="ko", language_chosen_at=later, updated_at=later)
        )
        conn.execute(
            update(supporters)
            .where(supporters.c.email == other)
            .values(discreet=True, updated_at=later)
        )
    for address in (chose, other):
        english = signature(address, "pet-l2", "camp-1", "org-rb", postal_code="96813")
        english.data["person"]["language"] = None
        service.publish(english)
    eventually(
        lambda: len(mails_to(service, chose)) == 2 and len(mails_to(service, other)) == 2,
        message="thank-yous",
    )
    people = {p.email: p for p in service.rows(supporters)}
    assert (people[chose].locale, people[chose].language) == ("ko", "ko")
    assert (people[other].locale, people[other].language, people[other].discreet) == (
        "en",
        "en",
        True,
    )


def test_a_later_signature_without_a_postcode_keeps_the_supporters_time_zone(
    service: Service,
) -> None:
    """Australia has eight zones: without the postcode, a Perth supporter would read as
    Sydney, and be texted from 05:00 their time."""
    service.start()
    service.publish(
        organization("org-rb"),
        petition("pet-p1", "camp-1", "org-rb"),
        petition("pet-p2", "camp-1", "org-rb"),
    )
    service.publish(
        signature("jo@example.org", "pet-p1", "camp-1", "org-rb", country="AU", postal_code="6000")
    )
    eventually(lambda: mails_to(service, "jo@example.org"), message="first thank-you")
    assert service.rows(supporters)[0].time_zone == "Australia/Perth"
    service.publish(
        signature("jo@example.org", "pet-p2", "camp-1", "org-rb", country="AU", postal_code=None)
    )
    eventually(lambda: len(mails_to(service, "jo@example.org")) == 2, message="second thanks")
    assert service.rows(supporters)[0].time_zone == "Australia/Perth"


def test_double_opt_in_sends_the_confirmation_link_then_thanks(service: Service) -> None:
    service.start()
    service.publish(organization("org-rb"), petition("pet-2", "camp-1", "org-rb", True))
    sig = signature("kai@example.org", "pet-2", "camp-1", "org-rb", double_opt_in=True)
    service.publish(sig)
    mails = eventually(lambda: mails_to(service, "kai@example.org"), message="confirmation")
    assert sig.data["confirm_url"] in mails[0]["content"][0]["value"]
    assert "confirm" in mails[0]["subject"].lower()
    # Once sent, the ledger no longer holds the link: whoever reads it (a backup, a replica)
    # cannot confirm a signature someone else typed. Its organization stays, for unsubscribes.
    (sent,) = eventually(
        lambda: service.rows(
            deliveries, deliveries.c.kind == "confirm", deliveries.c.status == "sent"
        ),
        message="the confirmation settled",
    )
    assert "confirm_url" not in sent.params and sent.params["organization_id"] == "org-rb"
    # Signing again before confirming (the first email lost?) sends the link again.
    again = signature(
        "kai@example.org", "pet-2", "camp-1", "org-rb", double_opt_in=True, duplicate=True
    )
    twice = signature(
        "kai@example.org", "pet-2", "camp-1", "org-rb", double_opt_in=True, duplicate=True
    )
    service.publish(again, twice)
    eventually(lambda: len(mails_to(service, "kai@example.org")) == 2, message="link again")
    resent = mails_to(service, "kai@example.org")[1]
    assert again.data["confirm_url"] in resent["content"][0]["value"]
    assert "confirm" in resent["subject"].lower()
    service.publish(
        event(
            "signature.confirmed",
            sig.key,
            signature_id=sig.data["signature_id"],
            petition_id="pet-2",
            campaign_id="camp-1",
            supporter_id=sig.key,
        )
    )
    eventually(lambda: len(mails_to(service, "kai@example.org")) == 3, message="thank-you")
    subjects = [m["subject"] for m in mails_to(service, "kai@example.org")]
    assert any(s.startswith("Thank you") for s in subjects)
    # The repeats were handled before the confirmation (their key's order): one link again.
    assert service.count(deliveries, deliveries.c.kind == "confirm") == 2


def test_a_confirmation_link_reaches_someone_who_once_unsubscribed_and_confirming_resubscribes(
    service: Service,
) -> None:
    """Someone who unsubscribed from an organization, or was erased, and signs one of its
    double opt-in petitions must get the link: else their signature can never count."""
    from services.notifications.audience import suppress
    from shared.privacy import email_hash

    service.start()
    service.publish(organization("org-rb"), petition("pet-2", "camp-1", "org-rb", True))
    now = utcnow()
    with service.engine.begin() as conn:
        for who, reason, scope in (("mo@example.org", "unsubscribe", "org-rb"),
                                   ("er@example.org", "erased", EVERY_ORG)):  # fmt: skip
            suppress(conn, email_hash(HASH_KEY, who), "email", scope, reason, now)
    signed = {
        who: signature(who, "pet-2", "camp-1", "org-rb", double_opt_in=True)
        for who in ("mo@example.org", "er@example.org")
    }
    service.publish(*signed.values())
    for who in signed:
        eventually(lambda w=who: mails_to(service, w), message=f"the link to {who}")
    sig = signed["mo@example.org"]
    service.publish(
        event("signature.confirmed", sig.key, signature_id=sig.data["signature_id"],
              petition_id="pet-2", campaign_id="camp-1", supporter_id=sig.key)
    )  # fmt: skip
    eventually(lambda: len(mails_to(service, "mo@example.org")) == 2, message="thank-you")
    # Confirmed through the link: their unsubscribe from this organization is lifted.
    assert service.rows(suppressions, suppressions.c.reason == "unsubscribe") == []


def test_an_unconfirmed_signature_changes_nothing_about_the_person_until_confirmed(
    service: Service,
) -> None:
    """Anyone can type an address into a double opt-in form: a forged signature must not rename
    the person, point their texts at another phone or add them to a campaign's audience."""
    service.start()
    service.publish(
        organization("org-rb"),
        petition("pet-s", "camp-1", "org-rb"),
        petition("pet-d", "camp-2", "org-rb", True),
    )
    first = signature(
        "ana@example.org", "pet-s", "camp-1", "org-rb", phone="+14155550101", sms=True
    )
    service.publish(first)
    eventually(lambda: service.fakes.twilio_messages(), message="SMS welcome")
    forged = signature(
        "ana@example.org", "pet-d", "camp-2", "org-rb", double_opt_in=True,
        phone="+14155550999", sms=True, given_name="Mallory",
    )  # fmt: skip
    service.publish(forged)
    eventually(lambda: len(mails_to(service, "ana@example.org")) == 2, message="the link")
    person = service.rows(supporters)[0]
    assert (person.given_name, person.phone) == ("Alex", "+14155550101")
    joined = {r.campaign_id for r in service.rows(supporter_campaigns)}
    assert joined == {"camp-1"}
    # Confirmed: now it is the person's own word.
    service.publish(
        event(
            "signature.confirmed", forged.key, signature_id=forged.data["signature_id"],
            petition_id="pet-d", campaign_id="camp-2", supporter_id=forged.key,
        )
    )  # fmt: skip
    eventually(lambda: len(mails_to(service, "ana@example.org")) == 3, message="thank-you")
    person = service.rows(supporters)[0]
    assert (person.given_name, person.phone) == ("Mallory", "+14155550999")
    assert {r.campaign_id for r in service.rows(supporter_campaigns)} == {"camp-1", "camp-2"}
    assert [r.pending for r in service.rows(signatures)] == [None]  # applied, then dropped


def test_unconfirmed_signatures_are_forgotten_with_people_known_only_through_them(
    service: Service,
) -> None:
    from datetime import timedelta

    from services.notifications.fanout import ProgressPublisher

    service.start()
    service.publish(
        organization("org-rb"),
        petition("pet-s", "camp-1", "org-rb"),
        petition("pet-d", "camp-2", "org-rb", True),
    )
    service.publish(signature("known@example.org", "pet-s", "camp-1", "org-rb"))
    service.publish(signature("known@example.org", "pet-d", "camp-2", "org-rb", double_opt_in=True))
    stranger = signature("never@example.org", "pet-d", "camp-2", "org-rb", double_opt_in=True)
    service.publish(stranger)
    eventually(lambda: service.count(signatures) == 2, message="both pending")
    eventually(lambda: len(mails_to(service, "never@example.org")) == 1, message="the link")
    housekeeping = ProgressPublisher(service.deps)
    assert housekeeping.forget_unconfirmed() == 0  # not yet: the link still works
    later = service.deps.clock() + timedelta(hours=service.deps.config.pending_ttl_hours + 1)
    service.deps.clock = lambda: later
    assert housekeeping.forget_unconfirmed() == 1
    assert [p.email for p in service.rows(supporters)] == ["known@example.org"]
    assert service.count(signatures) == 0


def test_duplicate_gets_already_signed_and_sms_opt_in_gets_welcome(service: Service) -> None:
    service.start()
    service.publish(
        organization("org-rb"),
        petition("pet-3", "camp-1", "org-rb"),
        petition("pet-3b", "camp-1", "org-rb"),
    )
    first = signature(
        "sam@example.org", "pet-3", "camp-1", "org-rb", phone="+14155550123", sms=True
    )
    service.publish(first)
    eventually(lambda: service.fakes.twilio_messages(), message="SMS welcome")
    sms = service.fakes.twilio_messages()
    assert len(sms) == 1
    assert sms[0].body["To"] == "+14155550123" and sms[0].body["From"] == FROM_NUMBER
    assert "STOP" in sms[0].body["Body"] and "HELP" in sms[0].body["Body"]
    repeats = [
        signature(
            "sam@example.org", "pet-3", "camp-1", "org-rb", duplicate=True, given_name="Mallory"
        )
        for _ in range(3)
    ]
    service.publish(*repeats)
    # The same person on another petition, after the repeats in their key's order: once its
    # thank-you is queued, every repeat has been handled.
    service.publish(signature("sam@example.org", "pet-3b", "camp-1", "org-rb"))
    eventually(lambda: service.count(deliveries, deliveries.c.kind == "thank_you") == 2)
    # However often the address is typed, its owner hears of it once a day.
    assert service.count(deliveries, deliveries.c.kind == "already_signed") == 1
    eventually(lambda: len(mails_to(service, "sam@example.org")) == 3, message="already signed")
    subjects = sorted(m["subject"] for m in mails_to(service, "sam@example.org"))
    assert sum("already signed" in s for s in subjects) == 1
    # A duplicate never rewrites what we hold about the person.
    assert service.rows(supporters)[0].given_name == "Alex"


def test_milestone_email_goes_to_the_petition_organizers(service: Service) -> None:
    service.start()
    service.publish(
        organization("org-ms", contact_email="organizers@org-ms.example.org"),
        petition("pet-4", "camp-1", "org-ms"),
    )
    eventually(lambda: projected(service), message="organization and petition projected")
    service.publish(
        event(
            "petition.milestone_reached", "pet-4", petition_id="pet-4", campaign_id="camp-1",
            milestone=100, total=101, next_goal=250,
        )
    )  # fmt: skip
    mails = eventually(
        lambda: mails_to(service, "organizers@org-ms.example.org"), message="milestone email"
    )
    assert "101" in mails[0]["subject"]
    # Organizers whose petition is in Traditional Chinese are told in it, with its title.
    hant = petition("pet-5", "camp-1", "org-ms")
    hant.data["default_locale"] = "zh-Hant"
    service.publish(hant)
    eventually(lambda: service.count(petitions) == 2, message="second petition projected")
    service.publish(
        event(
            "petition.milestone_reached", "pet-5", petition_id="pet-5", campaign_id="camp-1",
            milestone=250, total=251, next_goal=500,
        )
    )  # fmt: skip
    mails = eventually(
        lambda: (found := mails_to(service, "organizers@org-ms.example.org")) and len(found) == 2
        and found, message="second milestone email",
    )  # fmt: skip
    expected = CATALOGUE["zh-Hant"]["milestone_subject"].format(
        title="\u8cc7\u52a9\u8a9e\u8a00\u670d\u52d9", total=251
    )
    assert mails[1]["subject"] == expected


def test_the_lead_is_told_when_its_scheduled_alert_was_cancelled_when_due(
    service: Service,
) -> None:
    """The scheduler cancels a due alert that no longer passes the checks (the postal address
    removed, the campaign renamed to what a discreet text says): the organizers, who expect
    it to have gone out, get an email saying why, in the alert's language."""
    service.start()
    service.publish(organization("org-nx", contact_email="organizers@org-nx.example.org"))
    eventually(lambda: service.rows(organizations), message="organization projected")
    reason = "channels: Email alerts print the lead organization's postal address: set it first."
    service.publish(
        event(
            "alert.cancelled", "camp-nx", alert_id="alert-nx", campaign_id="camp-nx",
            at=utcnow().isoformat(), organization_id="org-nx", name="Vote on Tuesday",
            default_locale="vi", reason=reason,
        )
    )  # fmt: skip
    [mail] = eventually(
        lambda: mails_to(service, "organizers@org-nx.example.org"), message="not-sent email"
    )
    assert mail["subject"] == CATALOGUE["vi"]["not_sent_subject"].format(name="Vote on Tuesday")
    assert reason in mail["content"][0]["value"]


def test_an_alerts_test_send_reaches_the_leads_contact_address_as_it_will_read(
    service: Service,
) -> None:
    """Before the alert goes to thousands, its lead sees it in a real inbox: filled in for a
    stand-in name, with the footer every alert email carries, the subject marked as a test,
    and links that lead to a preview, not to anyone's preferences."""
    service.start()
    service.publish(organization("org-tt", contact_email="organizers@org-tt.example.org"))
    eventually(lambda: service.rows(organizations), message="organization projected")
    content = {
        "email_subject": "{{ given_name }}, ballots in every language",
        "email_html": "<p>Hi {{ given_name }}, from {{ organization_name }}.</p>",
        "email_text": "Hi {{ given_name }}, from {{ organization_name }}.",
    }
    service.publish(
        event(
            "alert.test_requested", "camp-tt", alert_id="alert-tt", campaign_id="camp-tt",
            organization_id="org-tt", request_id="req-1", locale="en", default_locale="en",
            content=content, given_name="Mai <b>", family_name="Rivera",
            sender={"name": "Rainbow Bridge", "postal_address": "1 Way, Oakland"},
            at=utcnow().isoformat(),
        )
    )  # fmt: skip
    [mail] = eventually(
        lambda: mails_to(service, "organizers@org-tt.example.org"), message="test email"
    )
    assert mail["subject"] == "[TEST] Mai <b>, ballots in every language"
    assert mail["from"]["name"] == "Rainbow Bridge"  # from the lead, as the alert will be
    parts = {part["type"]: part["value"] for part in mail["content"]}
    assert "Hi Mai &lt;b&gt;, from Rainbow Bridge." in parts["text/html"]  # a name is text
    assert "Hi Mai <b>, from Rainbow Bridge." in parts["text/plain"]
    assert "1 Way, Oakland" in parts["text/plain"]  # the footer every alert email carries
    assert "/preview" in parts["text/plain"] and "/unsubscribe/" not in parts["text/plain"]
    page = service.client().get("/preview")
    assert page.status_code == 200 and "stand-in" in page.get_data(as_text=True)
    # As a supporter in discreet mode gets it: a subject naming no cause, a neutral sender.
    service.publish(
        event(
            "alert.test_requested", "camp-tt", alert_id="alert-tt", campaign_id="camp-tt",
            organization_id="org-tt", request_id="req-2", locale="en", default_locale="en",
            content={**content, "discreet_email_subject": "{{ given_name }}, a note for you"},
            given_name="Mai", discreet=True,
            sender={"name": "Rainbow Bridge", "postal_address": "1 Way, Oakland"},
            at=utcnow().isoformat(),
        )
    )  # fmt: skip
    discreet = eventually(
        lambda: mails_to(service, "organizers@org-tt.example.org")[1:], message="discreet test"
    )[0]
    assert discreet["subject"] == "[TEST] Mai, a note for you"
    # The inbox's preview line is that subject too, not the body's first words (the cause).
    body = next(part["value"] for part in discreet["content"] if part["type"] == "text/plain")
    assert body.startswith("Mai, a note for you\n\nHi Mai")
    assert discreet["from"]["name"] == service.deps.config.from_name != "Rainbow Bridge"
    # It counts for no alert and reaches no one else.
    assert {r.kind for r in service.rows(deliveries)} == {"alert_test"}
    assert all(r.alert_id is None for r in service.rows(deliveries))


def test_an_organizations_address_that_bounces_is_not_mailed_again(service: Service) -> None:
    """A hard bounce (or a spam complaint) holds an address for everyone, an organization's
    contact address too: its milestone and not-sent emails stopped going only when SendGrid
    dropped them itself, and a sender mailing dead addresses loses its reputation."""
    from shared.privacy import email_hash

    service.start()
    service.publish(organization("org-dead", contact_email="gone@org-dead.example.org"))
    eventually(lambda: service.rows(organizations), message="organization projected")
    with service.engine.begin() as conn:
        suppress(conn, email_hash(HASH_KEY, "gone@org-dead.example.org"), "email", EVERY_ORG,
                 "bounce", utcnow())  # fmt: skip
    service.publish(
        event(
            "alert.cancelled", "camp-dead", alert_id="alert-dead", campaign_id="camp-dead",
            at=utcnow().isoformat(), organization_id="org-dead", name="Vote", default_locale="en",
            reason="channels: no postal address",
        )
    )  # fmt: skip
    [row] = eventually(
        lambda: [r for r in service.rows(deliveries) if r.kind == "alert_not_sent"
                 and r.status != "queued"],
        message="the not-sent email settled",
    )  # fmt: skip
    assert (row.status, row.error_code) == ("suppressed", "suppressed")
    assert mails_to(service, "gone@org-dead.example.org") == []
