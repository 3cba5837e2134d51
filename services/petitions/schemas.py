"""Request and response schemas of the petitions API (Marshmallow; OSDI shapes where one exists)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from zoneinfo import available_timezones

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from services.petitions import domain
from shared.events.catalog import INTEREST, MAX_INTERESTS
from shared.locales import COUNTRIES, canonical_language_tag
from shared.pages import PageArgs, page_schema
from shared.privacy import EMAIL_MAX
from shared.web import no_links, single_line_text, storable_text, utc_representable

MAX_LOCALES = 20


def _text(
    max_length: int, min_length: int | None = None, line: bool = False, **kwargs: Any
) -> fields.String:
    """A text field; line: one line (a title, which fills the emails' subjects)."""
    checks: list[Callable[[Any], Any]] = [
        validate.Length(min=min_length, max=max_length),
        storable_text,
    ]
    if line:
        checks.append(single_line_text)
    return fields.String(validate=checks, **kwargs)


class _Trimmed(fields.String):
    """A string with its surrounding spaces and line breaks taken off (a paste's "Maria\n")."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


def _named(max_length: int) -> fields.String:
    """A signer's name or pronouns: the emails to the address typed greet them by it, so one
    line without links (else the organization's sender would speak for whoever typed it)."""
    return _Trimmed(
        validate=[validate.Length(max=max_length), storable_text, single_line_text, no_links],
        load_default=None,
        allow_none=True,
    )


class LocaleField(fields.String):
    """A BCP 47 language tag whose subtags CLDR names, in canonical case."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return canonical_language_tag(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class CountryField(fields.String):
    """An ISO 3166-1 alpha-2 country code, upper case."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        # Checked before upper(): it folds "ß" into "SS" and fullwidth letters into others.
        if not text.isascii() or text.upper() not in COUNTRIES:
            raise ValidationError("An ISO 3166-1 alpha-2 country code, like 'US' or 'PH'")
        return text.upper()


class Timestamp(fields.DateTime):
    """An RFC 3339 time; passes through one already written (a replayed idempotent response)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        return super()._serialize(value, attr, obj, **kwargs)


# -- petitions ---------------------------------------------------------------------------------


class PetitionTextSchema(Schema):
    title = _text(200, 1, line=True, required=True)
    summary = _text(1000, load_default=None, allow_none=True)
    text = _text(20_000, 1, required=True)


class TargetSchema(Schema):
    """OSDI's target shape: who the petition is addressed to. Its other fields (the target's
    postal_addresses, email_addresses, phone_numbers) are accepted and not kept."""

    class Meta:
        unknown = EXCLUDE

    name = _text(200, allow_none=True)
    title = _text(200, allow_none=True)
    given_name = _text(100, allow_none=True)
    family_name = _text(100, allow_none=True)
    organization = _text(200, allow_none=True)
    ocdid = _text(200, allow_none=True)


class TextsField(fields.Dict):
    """{locale: {title, summary, text}} with canonical locale keys."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            keys=LocaleField(),
            values=fields.Nested(PetitionTextSchema),
            validate=validate.Length(min=1, max=MAX_LOCALES),
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        texts = super()._deserialize(value, attr, data, **kwargs)  # type: ignore[no-untyped-call]
        if len(texts) < len(value):
            # "pt_BR" and "pt-BR", or "en" and "EN": one language; one text silently won.
            raise ValidationError("Two texts for one language (such as 'pt-BR' and 'pt_BR').")
        return texts


DOUBLE_OPT_IN = (
    "A signature counts only once confirmed through the link emailed to its address. Use it"
    " where signers could be at risk if known to have signed: on a single opt-in petition the"
    " public total moves at once, so signing with someone else's address shows whether that"
    " address had signed already."
)


PUBLIC_TOTAL = (
    "Show the public the total and the goal (default). Off, they read null for anyone but the"
    " coalition's own keys: on a single opt-in petition, a total anyone can watch tells whether"
    " an address signed already (see double_opt_in). Can change while the petition is open."
)

SIGNER_RETENTION = (
    "Days after the petition closes when the petitions service erases its signers' personal"
    " data: names, email addresses, phone numbers, postal codes, pronouns and comments. The"
    " counts stay. Whoever closes the petition or changes this after closing, it falls due no"
    " sooner than an hour later (0: an hour after closing), time to undo a slip or take the"
    " exports, which answer 410 from the due time; it cannot change once due. The rows are"
    " erased an hour or more after it. Only the lead organization's organizers (and admins) set"
    " it. Null (the default) keeps the signers until each asks to be erased. Notifications keeps"
    " its own records of signers (their address, consents and what they were sent) until an"
    " erasure."
)


def _signer_retention(**kwargs: Any) -> fields.Integer:
    return fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(0, domain.MAX_SIGNER_RETENTION_DAYS),
        metadata={"description": SIGNER_RETENTION},
        **kwargs,
    )


class PetitionCreateSchema(Schema):
    campaign_id = fields.String(
        required=True, validate=[validate.Length(min=1, max=64), storable_text]
    )
    default_locale = LocaleField(required=True)
    texts = TextsField(required=True)
    targets = fields.List(
        fields.Nested(TargetSchema), load_default=list, validate=validate.Length(max=50)
    )
    goal = fields.Integer(
        strict=True, load_default=None, allow_none=True, validate=validate.Range(1, 10**9)
    )
    double_opt_in = fields.Boolean(load_default=False, metadata={"description": DOUBLE_OPT_IN})
    public_total = fields.Boolean(load_default=True, metadata={"description": PUBLIC_TOTAL})
    signer_retention_days = _signer_retention(load_default=None)


class PetitionPatchSchema(Schema):
    default_locale = LocaleField()
    texts = TextsField()
    targets = fields.List(fields.Nested(TargetSchema), validate=validate.Length(max=50))
    goal = fields.Integer(strict=True, validate=validate.Range(1, 10**9))
    double_opt_in = fields.Boolean(metadata={"description": DOUBLE_OPT_IN})
    public_total = fields.Boolean(metadata={"description": PUBLIC_TOTAL})
    signer_retention_days = _signer_retention()


class PetitionSchema(Schema):
    """An organizer's view of a petition: every locale variant."""

    petition_id = fields.String()
    campaign_id = fields.String()
    organization_id = fields.String()
    status = fields.String()
    default_locale = fields.String()
    texts = fields.Dict(keys=fields.String(), values=fields.Nested(PetitionTextSchema))
    targets = fields.List(fields.Nested(TargetSchema))
    goal = fields.Integer()
    double_opt_in = fields.Boolean()
    public_total = fields.Boolean()
    signer_retention_days = fields.Integer(allow_none=True)
    signer_data_erase_at = Timestamp(
        allow_none=True,
        metadata={"description": "When the signers' data falls due for erasure (once closed)"},
    )
    signer_data_erased_at = Timestamp(allow_none=True)
    total = fields.Integer()
    created_at = Timestamp()
    published_at = Timestamp(allow_none=True)
    closed_at = Timestamp(allow_none=True)


class PartnerBoxSchema(Schema):
    organization_id = fields.String()
    slug = fields.String()
    name = fields.String()


class PublicPetitionSchema(Schema):
    """What a signer sees: one locale's texts, the count and the goal."""

    petition_id = fields.String()
    status = fields.String()
    locale = fields.String()
    locales = fields.List(fields.String())
    title = fields.String()
    summary = fields.String(allow_none=True)
    text = fields.String()
    targets = fields.List(fields.Nested(TargetSchema))
    total = fields.Integer(allow_none=True, metadata={"description": "null when not shown"})
    goal = fields.Integer(allow_none=True, metadata={"description": "null when not shown"})
    double_opt_in = fields.Boolean()
    partners = fields.List(fields.Nested(PartnerBoxSchema))


class LocaleQuerySchema(Schema):
    locale = LocaleField(load_default=None)


class ListQuerySchema(PageArgs):
    campaign_id = fields.String(load_default=None, validate=storable_text)
    status = fields.String(load_default=None, validate=validate.OneOf(["draft", "open", "closed"]))


PetitionPageSchema = page_schema("petitions", PetitionSchema)


class CountsSchema(Schema):
    petition_id = fields.String()
    total = fields.Integer(metadata={"description": "Signatures that count (confirmed)"})
    pending = fields.Integer(metadata={"description": "Awaiting double opt-in confirmation"})
    goal = fields.Integer()
    by_locale = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_partner = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "Recruiting organization id ('direct' when none)"},
    )
    by_source = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={
            "description": "Referrer source code ('(none)' when none): the 99 largest, and the"
            " rest added up under '(other)' when there are more than 100"
        },
    )


# -- signatures (OSDI record_signature_helper) ---------------------------------------------------


def _first(items: Any, key: str, name: str) -> Any:
    """Return key of the primary (else first) item of the OSDI list `name`, if any; a value
    that is not a list of objects is refused, naming the field (read as none, the address or
    number it held was dropped without a word)."""
    if items is None or items == []:
        return None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValidationError(f"A list of objects, like [{{'{key}': ...}}]", name)
    chosen = next((item for item in items if item.get("primary")), items[0])
    return chosen.get(key)


def _first_language(languages: Any) -> str | None:
    """Return the first of OSDI's languages_spoken (a list of tags), if any."""
    if languages is None or languages == []:
        return None
    if not isinstance(languages, list) or not all(isinstance(tag, str) for tag in languages):
        raise ValidationError("A list of language tags, like ['es']", "languages_spoken")
    return str(languages[0])


class SignerSchema(Schema):
    """The signer; flat fields, or OSDI's email_addresses / phone_numbers / postal_addresses."""

    class Meta:
        unknown = EXCLUDE

    given_name = _named(100)
    family_name = _named(100)
    # Required, here or as OSDI's email_addresses (checked once those are read, has_email):
    # marked required, the document refused the OSDI shape that signing takes.
    email = fields.String(
        validate=[validate.Length(min=3, max=EMAIL_MAX), storable_text],
        metadata={"description": "Required, here or as `email_addresses`"},
    )
    phone = _text(40, load_default=None, allow_none=True)
    postal_code = _text(20, load_default=None, allow_none=True)
    country = CountryField(load_default=None, allow_none=True)
    region = _text(100, load_default=None, allow_none=True)
    language = LocaleField(load_default=None, allow_none=True)
    pronouns = _named(40)
    discreet = fields.Boolean(load_default=False)
    # OSDI's lists, read into the fields above when those are not given (the primary item,
    # else the first). Declared for the document; flatten_osdi takes them out before loading.
    email_addresses = fields.List(
        fields.Dict(), metadata={"description": "OSDI: [{address, primary}]"}
    )
    phone_numbers = fields.List(
        fields.Dict(), metadata={"description": "OSDI: [{number, primary}]"}
    )
    postal_addresses = fields.List(
        fields.Dict(),
        metadata={"description": "OSDI: [{postal_code, country, region, primary}]"},
    )
    languages_spoken = fields.List(
        fields.String(), metadata={"description": "OSDI: language tags, the first is used"}
    )

    @validates_schema
    def has_email(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("email"):
            raise ValidationError("Missing data for required field.", "email")

    @pre_load
    def flatten_osdi(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        postal = data.pop("postal_addresses", None)
        osdi = {
            "email": _first(data.pop("email_addresses", None), "address", "email_addresses"),
            "phone": _first(data.pop("phone_numbers", None), "number", "phone_numbers"),
            "postal_code": _first(postal, "postal_code", "postal_addresses"),
            "country": _first(postal, "country", "postal_addresses"),
            "region": _first(postal, "region", "postal_addresses"),
            "language": _first_language(data.pop("languages_spoken", None)),
        }
        for name, value in osdi.items():
            if value is not None and data.get(name) is None:
                data[name] = value
        if type(data.get("phone")) is int:  # OSDI's own examples send the number as one
            data["phone"] = str(data["phone"])
        return data


class ConsentsInSchema(Schema):
    email = fields.Boolean(load_default=False)
    sms = fields.Boolean(load_default=False)
    # One box per partner organization ("share my details with X"), keyed by id or slug.
    partners = fields.Dict(
        keys=fields.String(validate=[validate.Length(max=100), storable_text]),
        values=fields.Boolean(),
        load_default=dict,
        validate=validate.Length(max=50),
    )


class ReferrerDataSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    source = _text(64, load_default=None, allow_none=True)
    referrer = _text(200, load_default=None, allow_none=True)


def _interest(value: str) -> None:
    # A function, not validate.Regexp: OpenAPI patterns are ECMAScript, which has no \Z.
    if re.fullmatch(INTEREST, value) is None:
        raise ValidationError("Lowercase words like 'housing' or 'trans-health'.")


class SignRequestSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    person = fields.Nested(SignerSchema, required=True)
    consents = fields.Nested(
        ConsentsInSchema, load_default=lambda: {"email": False, "sms": False, "partners": {}}
    )
    referrer_data = fields.Nested(
        ReferrerDataSchema, load_default=lambda: {"source": None, "referrer": None}
    )
    comment = _text(2000, load_default=None, allow_none=True)
    # What the signer says they care about (ticked on the form), for alerts that target it.
    # Carried to notifications in signature.created; never kept here, never exported.
    interests = fields.List(
        fields.String(validate=_interest),
        load_default=list,
        validate=validate.Length(max=MAX_INTERESTS),
    )
    locale = LocaleField(
        load_default=None, metadata={"description": "Variant signed; default: best match"}
    )
    # Honeypot: hidden from people by the form, filled by bots; a filled one is dropped silently.
    # Any value is accepted, so a bot never learns from an error that it was caught.
    website = fields.Raw(load_default=None, allow_none=True)

    @pre_load
    def osdi_comments(self, data: Any, **_: Any) -> Any:
        """OSDI's record_signature_helper calls the comment `comments`."""
        if isinstance(data, dict) and "comments" in data and data.get("comment") is None:
            data = dict(data)
            data["comment"] = data.pop("comments")
        return data


class SignResponseSchema(Schema):
    """The same for every signer of a petition, new or repeat (never reveal who has signed)."""

    petition_id = fields.String()
    status = fields.String(
        metadata={"description": "'received' or 'confirmation_required' (double opt-in)"}
    )
    message = fields.String()


class ConfirmResponseSchema(Schema):
    petition_id = fields.String()
    status = fields.String()


_ZONES = frozenset(available_timezones())


def _known_zone(value: str) -> None:
    if value not in _ZONES:
        raise ValidationError("Not an IANA time zone (such as America/Los_Angeles).")


class DailyCountsQuery(Schema):
    days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=366))
    time_zone = fields.String(
        load_default="UTC",
        validate=_known_zone,
        metadata={"description": "IANA time zone whose days are counted (America/Los_Angeles)"},
    )


class DayCountSchema(Schema):
    date = fields.String(metadata={"description": "YYYY-MM-DD in time_zone"})
    total = fields.Integer()
    by_partner = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "Recruiting organization id ('direct' when none)"},
    )


class DailyCountsSchema(Schema):
    petition_id = fields.String()
    time_zone = fields.String()
    days = fields.List(fields.Nested(DayCountSchema))


class ExportLogOut(Schema):
    export_id = fields.Integer()
    kind = fields.String(metadata={"description": "contact, delivery or partner"})
    partner_organization_id = fields.String(allow_none=True)
    organization_id = fields.String(metadata={"description": "the exporting key's"})
    key_id = fields.String()
    role = fields.String()
    at = fields.DateTime()


ExportLogPage = page_schema("exports", ExportLogOut, "Export")


class CsvQuerySchema(Schema):
    bom = fields.Boolean(
        load_default=False,
        metadata={
            "description": "start the file with a UTF-8 byte-order mark, so that Excel shows "
            "CJK, Vietnamese and other non-Latin names as written instead of garbled"
        },
    )
    since = fields.AwareDateTime(
        load_default=None,
        validate=utc_representable,
        metadata={
            "description": "only the signers counted at or after this time (ISO 8601 with its "
            "offset): signed, or confirmed under double opt-in. To sync a list, pass the "
            "previous export's `Date` less a few minutes (a signature committing as that "
            "export began may carry a slightly earlier time) and match the overlap on "
            "`supporter_id`"
        },
    )


class ExportQuerySchema(CsvQuerySchema):
    purpose = fields.String(
        load_default="contact",
        validate=validate.OneOf(["contact", "delivery"]),
        metadata={"description": "'delivery' leaves out email and phone (for handing to targets)"},
    )
