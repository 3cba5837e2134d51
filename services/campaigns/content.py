"""Alert content rules: complete locales, known template variables, SMS length and segments."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shared.errors import FieldError
from shared.templates import GSM_EXTENDED, VARIABLE, fill, gsm7, variables, with_opt_out
from shared.web import one_line

MAX_SMS_SEGMENTS = 4

# Variables notifications fills per recipient, with the width assumed when counting SMS length.
PERSONAL = {"given_name": 20, "family_name": 20}
EMAIL_VARIABLES = frozenset(
    {
        "given_name",
        "family_name",
        "organization_name",
        "campaign_title",
        "unsubscribe_url",
        "preferences_url",
        "postal_address",
    }
)
SMS_VARIABLES = frozenset({"given_name", "organization_name", "campaign_title"})
# A discreet text must name no cause: neither the campaign nor the organization behind it.
DISCREET_VARIABLES = frozenset({"given_name", "family_name", "unsubscribe_url", "preferences_url"})

EMAIL_FIELDS = ("email_subject", "email_html", "email_text")
SUBJECTS = ("email_subject", "discreet_email_subject")
# Gmail clips a message whose HTML passes about 102 KB behind a "[Message clipped]" link: the
# footer notifications adds (the unsubscribe link and the postal address the law asks for)
# would be what is hidden. The alert's own HTML, in UTF-8, stays under this.
EMAIL_HTML_MAX_BYTES = 90_000
SMS_FIELDS = ("sms_text",)
ALL_FIELDS = (*EMAIL_FIELDS, "discreet_email_subject", "sms_text", "sms_discreet_text")
ALLOWED = {
    "email_subject": EMAIL_VARIABLES,
    "email_html": EMAIL_VARIABLES,
    "email_text": EMAIL_VARIABLES,
    "discreet_email_subject": DISCREET_VARIABLES & {"given_name", "family_name"},
    "sms_text": SMS_VARIABLES,
    "sms_discreet_text": DISCREET_VARIABLES & {"given_name"},
}


@dataclass(frozen=True)
class SmsMeasure:
    """How an SMS text will be billed: encoding, characters (worst case) and segments."""

    encoding: str
    length: int
    segments: int

    def as_dict(self) -> dict[str, object]:
        return {"encoding": self.encoding, "length": self.length, "segments": self.segments}


def measure_sms(text: str) -> SmsMeasure:
    """Count an SMS's segments: GSM-7 160/153 characters, else UCS-2 70/67 UTF-16 units."""
    if gsm7(text):
        units = sum(2 if ch in GSM_EXTENDED else 1 for ch in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    segments = 1 if units <= single else math.ceil(units / multi)
    return SmsMeasure(encoding, units, segments)


# A letter outside the GSM alphabet (Vietnamese): one such letter in a name makes the whole
# text UCS-2, 70/67 units a segment instead of 160/153.
OUTSIDE_GSM = "\u1ea1"


def expand_for_length(text: str, known: Mapping[str, str], letter: str = "x") -> str:
    """Replace variables by their value or a worst-case stand-in, to count an SMS's length."""

    return fill(text, lambda name: known.get(name, letter * PERSONAL.get(name, 20)))


def check_template(text: str, field: str, allowed: frozenset[str] | set[str]) -> None:
    """Reject unknown or misplaced {{ variables }} and unbalanced braces."""
    for name in variables(text):
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise FieldError(field, f"Unknown template variable {{{{ {name} }}}} (known: {known}).")
    leftover = VARIABLE.sub("", text)
    if "{{" in leftover or "}}" in leftover:
        raise FieldError(field, "Unbalanced {{ }} in the template.")


def check_content(
    content: Mapping[str, Mapping[str, str | None]],
    channels: Sequence[str],
    default_locale: str,
    titles: Mapping[str, str],
    organization_name: str,
    unsayable: Sequence[str] = (),
) -> dict[str, dict[str, dict[str, object]]]:
    """Validate every locale's content for sending; return SMS measures per locale and field.

    unsayable: what a discreet text must not say besides the titles and the lead's name (the
    partners' names, the communities served). Raises FieldError naming the first wrong field,
    e.g. content.fil.sms_text.
    """
    if not channels:
        raise FieldError("channels", "Choose email, sms or both.")
    if default_locale not in content:
        raise FieldError(f"content.{default_locale}", "The default locale needs content.")
    required = (EMAIL_FIELDS if "email" in channels else ()) + (
        SMS_FIELDS if "sms" in channels else ()
    )
    report: dict[str, dict[str, dict[str, object]]] = {}
    for locale, texts in content.items():
        for name in required:
            if not (texts.get(name) or "").strip():
                raise FieldError(f"content.{locale}.{name}", "Missing for a chosen channel.")
        for name in ALL_FIELDS:
            text = texts.get(name)
            if text:
                check_template(text, f"content.{locale}.{name}", ALLOWED[name])
        check_email_shape(texts, locale)
        check_discreet(texts, locale, titles, (organization_name, *unsayable))
        report[locale] = measure_locale(texts, locale, titles, organization_name)
        for name, measure in report[locale].items():
            if int(str(measure["segments"])) > MAX_SMS_SEGMENTS:
                raise FieldError(
                    f"content.{locale}.{name}",
                    f"Too long: {measure['segments']} segments ({measure['encoding']}, "
                    f"{measure['length']} characters); at most {MAX_SMS_SEGMENTS}.",
                )
            # A name outside the GSM alphabet (Trần, Thảo, 李) turns the whole text into
            # UCS-2: the cap holds for those recipients too, not for the others alone.
            wide = int(str(measure.get("segments_with_a_name_outside_gsm", 0)))
            if wide > MAX_SMS_SEGMENTS:
                raise FieldError(
                    f"content.{locale}.{name}",
                    f"Too long: {wide} segments for a recipient whose name is outside the GSM"
                    f" alphabet (Trần, 李); at most {MAX_SMS_SEGMENTS}.",
                )
    return report


def measure_locale(
    texts: Mapping[str, str | None], locale: str, titles: Mapping[str, str], org_name: str
) -> dict[str, dict[str, object]]:
    """Measure the SMS texts of one locale as they will be sent: with the campaign's real
    title (another locale's, the longest, where this locale has none: the sender falls back)
    and organization, and the opt-out line the sender adds where the text has none."""
    title = titles.get(locale) or max(titles.values(), key=len, default="")
    known = {"campaign_title": title, "organization_name": org_name}
    found = {}
    for name in ("sms_text", "sms_discreet_text"):
        text = texts.get(name)
        if text:
            measured = measure_sms(
                with_opt_out(expand_for_length(text, known), written=text, locale=locale)
            )
            found[name] = measured.as_dict()
            if any(variable in PERSONAL for variable in variables(text)):
                # Trần, Thảo or 李 in a name: what such a recipient's text costs.
                wide = measure_sms(
                    with_opt_out(
                        expand_for_length(text, known, OUTSIDE_GSM), written=text, locale=locale
                    )
                )
                if wide.segments > measured.segments:
                    found[name]["segments_with_a_name_outside_gsm"] = wide.segments
    return found


def _as_written(name: str) -> re.Pattern[str]:
    """Match a name where it is written: as a word where it begins or ends with a Latin letter
    or digit (so "Act" is not found in "Contact"); anywhere for Chinese, Japanese or Korean,
    written without spaces or with particles attached."""
    start = r"(?<![a-z0-9])" if re.match(r"[a-z0-9]", name) else ""
    end = r"(?![a-z0-9])" if re.search(r"[a-z0-9]\Z", name) else ""
    return re.compile(start + re.escape(name) + end)


def _folded(text: str) -> str:
    """text as compared: NFKC, then casefolded. "Tết" typed composed or decomposed (Unikey's
    "Unicode tổ hợp"), and full-width Ｐｒｉｄｅ, read the same on a lock screen."""
    return unicodedata.normalize("NFKC", text).casefold()


def warnings(
    content: Mapping[str, Mapping[str, str | None]], channels: Sequence[str], default_locale: str
) -> dict[str, list[str]]:
    """What would not stop the alert but that its organizers should know, by field.

    A supporter in discreet mode gets the discreet text of their language, else the default
    language's, else no text at all (counted failed, no_discreet_text): never the text that
    names the cause. Without one in the default language, some may get nothing."""
    found: dict[str, list[str]] = {}
    if "sms" in channels and not (content.get(default_locale) or {}).get("sms_discreet_text"):
        found[f"content.{default_locale}.sms_discreet_text"] = [
            "Supporters in discreet mode get no text of this alert without one (their"
            " delivery is counted failed, no_discreet_text)."
        ]
    return found


def check_email_shape(texts: Mapping[str, str | None], locale: str) -> None:
    """A subject is one line (a line break or other control character would break the header
    or show as a box), and the HTML leaves room for the footer before Gmail clips it."""
    for name in SUBJECTS:
        subject = texts.get(name) or ""
        if not one_line(subject):
            raise FieldError(f"content.{locale}.{name}", "One line: no line breaks or tabs.")
    size = len((texts.get("email_html") or "").encode())
    if size > EMAIL_HTML_MAX_BYTES:
        raise FieldError(
            f"content.{locale}.email_html",
            f"{size // 1000} KB: Gmail clips an email past about 102 KB and would hide its"
            f" footer (the unsubscribe link and postal address); keep the HTML under"
            f" {EMAIL_HTML_MAX_BYTES // 1000} KB.",
        )


def check_discreet(
    texts: Mapping[str, str | None],
    locale: str,
    titles: Mapping[str, str],
    names: Sequence[str],
) -> None:
    """A discreet text must not spell out the campaign's title (in any of its languages: a
    title is often left untranslated), the name of an organization in it, the lead's or a
    partner's (an LGBTQ+ group's name says as much as a cause), or a community the campaign
    or its organizations serve ("trans", "LGBTQ+"): it is for who must not be seen.

    A label is also matched as people write it: "mixed-heritage" as "mixed heritage",
    "LGBTQ+" as "LGBTQ"."""
    folded = {_folded(t.strip()) for t in (*titles.values(), *names)}
    spelled = {re.sub(r"[-_/]+", " ", n).rstrip("+").strip() for n in folded}
    named = [_as_written(n) for n in (folded | spelled) - {""}]
    for name in ("discreet_email_subject", "sms_discreet_text"):
        text = _folded(texts.get(name) or "")
        if any(pattern.search(text) for pattern in named):
            raise FieldError(
                f"content.{locale}.{name}",
                "A discreet text must not name the campaign, its organizations or the"
                " communities they serve.",
            )
