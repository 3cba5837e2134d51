"""Localized transactional messages (English fallback) and the compliance footer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from services.notifications.domain import resolve_locale
from shared.templates import fill

# Each locale's strings; "{name}" is the supporter's chosen name, "{title}" the petition title.
CATALOGUE: dict[str, dict[str, str]] = {
    "en": {
        "friend": "friend",
        "hello": "Hi {name},",
        "hello_anon": "Hi,",
        "thanks_subject": "Thank you for signing: {title}",
        "thanks_body": "Thank you for adding your name to \u201c{title}\u201d. "
        "Every signature counts.",
        "confirm_subject": "Please confirm your signature: {title}",
        "confirm_body": "Please confirm your signature on \u201c{title}\u201d "
        "by opening this link:",
        "already_subject": "You had already signed: {title}",
        "already_body": "Someone (probably you) tried to sign \u201c{title}\u201d again with this "
        "address. Your first signature still counts; there is nothing more to do.",
        "pronouns": "We have you down as {name} ({pronouns}). You can change this any time.",
        "sms_welcome": "{org}: thanks for joining SMS alerts. Msg freq varies. Msg&data rates may "
        "apply. Reply HELP for help, STOP to opt out.",
        "sms_help": "{org}: alerts about campaigns you support. Reply STOP to opt out. "
        "Help: {contact}",
        "milestone_subject": "Milestone reached: {title} has {total} signatures",
        "milestone_body": "\u201c{title}\u201d passed {milestone} signatures ({total} so far). "
        "The next goal is {next_goal}.",
        "erase_subject": "Confirm erasing your data",
        "erase_body": "You asked us to erase your data. Open this link to confirm; if it was not "
        "you, ignore this email:",
        "footer_sent_by": "Sent by {org}, {address}.",
        "footer_unsubscribe": "Unsubscribe",
        "footer_preferences": "Manage your preferences",
    },
    "zh-Hans": {
        "friend": "\u670b\u53cb",
        "hello": "{name}\uff0c\u4f60\u597d\uff1a",
        "hello_anon": "\u4f60\u597d\uff1a",
        "thanks_subject": "\u611f\u8c22\u60a8\u7684\u7b7e\u540d\uff1a{title}",
        "thanks_body": "\u611f\u8c22\u60a8\u5728\u201c{title}\u201d\u4e0a\u7b7e\u540d\u3002"
        "\u6bcf\u4e00\u4e2a\u7b7e\u540d\u90fd\u5f88\u91cd\u8981\u3002",
        "confirm_subject": "\u8bf7\u786e\u8ba4\u60a8\u7684\u7b7e\u540d\uff1a{title}",
        "confirm_body": "\u8bf7\u6253\u5f00\u6b64\u94fe\u63a5\uff0c\u786e\u8ba4\u60a8\u5728"
        "\u201c{title}\u201d\u4e0a\u7684\u7b7e\u540d\uff1a",
        "already_subject": "\u60a8\u5df2\u7ecf\u7b7e\u8fc7\u540d\u4e86\uff1a{title}",
        "already_body": "\u6709\u4eba\uff08\u53ef\u80fd\u662f\u60a8\uff09\u7528\u6b64\u5730"
        "\u5740\u518d\u6b21\u7b7e\u7f72\u4e86\u201c{title}\u201d\u3002\u60a8\u7684\u7b2c\u4e00"
        "\u6b21\u7b7e\u540d\u4ecd\u7136\u6709\u6548\u3002",
    },
    "zh-Hant": {
        "friend": "\u670b\u53cb",
        "hello": "{name}\uff0c\u4f60\u597d\uff1a",
        "hello_anon": "\u4f60\u597d\uff1a",
        "thanks_subject": "\u611f\u8b1d\u60a8\u7684\u7c3d\u540d\uff1a{title}",
        "thanks_body": "\u611f\u8b1d\u60a8\u5728\u300c{title}\u300d\u4e0a\u7c3d\u540d\u3002"
        "\u6bcf\u4e00\u500b\u7c3d\u540d\u90fd\u5f88\u91cd\u8981\u3002",
        "confirm_subject": "\u8acb\u78ba\u8a8d\u60a8\u7684\u7c3d\u540d\uff1a{title}",
        "confirm_body": "\u8acb\u6253\u958b\u6b64\u9023\u7d50\uff0c\u78ba\u8a8d\u60a8\u5728"
        "\u300c{title}\u300d\u4e0a\u7684\u7c3d\u540d\uff1a",
        "already_subject": "\u60a8\u5df2\u7d93\u7c3d\u904e\u540d\u4e86\uff1a{title}",
        "already_body": "\u6709\u4eba\uff08\u53ef\u80fd\u662f\u60a8\uff09\u7528\u6b64\u5730"
        "\u5740\u518d\u6b21\u7c3d\u7f72\u4e86\u300c{title}\u300d\u3002\u60a8\u7684\u7b2c\u4e00"
        "\u6b21\u7c3d\u540d\u4ecd\u7136\u6709\u6548\u3002",
    },
    "ja": {
        "friend": "\u7686\u3055\u307e",
        "hello": "{name}\u3055\u3093\u3001\u3053\u3093\u306b\u3061\u306f\u3002",
        "hello_anon": "\u3053\u3093\u306b\u3061\u306f\u3002",
        "thanks_subject": "\u3054\u7f72\u540d\u3042\u308a\u304c\u3068\u3046\u3054\u3056\u3044"
        "\u307e\u3059\uff1a{title}",
        "thanks_body": "\u300c{title}\u300d\u3078\u306e\u3054\u7f72\u540d\u3042\u308a\u304c\u3068"
        "\u3046\u3054\u3056\u3044\u307e\u3059\u3002",
        "confirm_subject": "\u7f72\u540d\u306e\u78ba\u8a8d\u3092\u304a\u9858\u3044\u3057\u307e"
        "\u3059\uff1a{title}",
        "confirm_body": "\u6b21\u306e\u30ea\u30f3\u30af\u3092\u958b\u3044\u3066\u300c{title}"
        "\u300d\u3078\u306e\u7f72\u540d\u3092\u78ba\u8a8d\u3057\u3066\u304f\u3060\u3055\u3044\uff1a",
        "already_subject": "\u3059\u3067\u306b\u7f72\u540d\u6e08\u307f\u3067\u3059\uff1a{title}",
        "already_body": "\u3053\u306e\u30a2\u30c9\u30ec\u30b9\u3067\u300c{title}\u300d\u306b"
        "\u518d\u5ea6\u7f72\u540d\u304c\u3042\u308a\u307e\u3057\u305f\u3002\u6700\u521d\u306e"
        "\u7f72\u540d\u304c\u6709\u52b9\u3067\u3059\u3002",
    },
    "ko": {
        "friend": "\uce5c\uad6c",
        "hello": "{name}\ub2d8, \uc548\ub155\ud558\uc138\uc694.",
        "hello_anon": "\uc548\ub155\ud558\uc138\uc694.",
        "thanks_subject": "\uc11c\uba85\ud574 \uc8fc\uc154\uc11c \uac10\uc0ac\ud569\ub2c8\ub2e4: "
        "{title}",
        "thanks_body": "\u201c{title}\u201d\uc5d0 \uc11c\uba85\ud574 \uc8fc\uc154\uc11c "
        "\uac10\uc0ac\ud569\ub2c8\ub2e4.",
        "confirm_subject": "\uc11c\uba85\uc744 \ud655\uc778\ud574 \uc8fc\uc138\uc694: {title}",
        "confirm_body": "\uc774 \ub9c1\ud06c\ub97c \uc5f4\uc5b4 \u201c{title}\u201d \uc11c\uba85"
        "\uc744 \ud655\uc778\ud574 \uc8fc\uc138\uc694:",
        "already_subject": "\uc774\ubbf8 \uc11c\uba85\ud558\uc168\uc2b5\ub2c8\ub2e4: {title}",
        "already_body": "\uc774 \uc8fc\uc18c\ub85c \u201c{title}\u201d\uc5d0 \ub2e4\uc2dc "
        "\uc11c\uba85\ud558\ub824\ub294 \uc2dc\ub3c4\uac00 \uc788\uc5c8\uc2b5\ub2c8\ub2e4. "
        "\ucc98\uc74c \uc11c\uba85\uc774 \uc720\ud6a8\ud569\ub2c8\ub2e4.",
    },
    "vi": {
        "friend": "b\u1ea1n",
        "hello": "Ch\u00e0o {name},",
        "hello_anon": "Xin ch\u00e0o,",
        "thanks_subject": "C\u1ea3m \u01a1n b\u1ea1n \u0111\u00e3 k\u00fd t\u00ean: {title}",
        "thanks_body": "C\u1ea3m \u01a1n b\u1ea1n \u0111\u00e3 k\u00fd t\u00ean v\u00e0o "
        "\u201c{title}\u201d. M\u1ed7i ch\u1eef k\u00fd \u0111\u1ec1u quan tr\u1ecdng.",
        "confirm_subject": "Vui l\u00f2ng x\u00e1c nh\u1eadn ch\u1eef k\u00fd: {title}",
        "confirm_body": "Vui l\u00f2ng m\u1edf li\u00ean k\u1ebft n\u00e0y \u0111\u1ec3 "
        "x\u00e1c nh\u1eadn ch\u1eef k\u00fd c\u1ee7a b\u1ea1n cho \u201c{title}\u201d:",
        "already_subject": "B\u1ea1n \u0111\u00e3 k\u00fd r\u1ed3i: {title}",
        "already_body": "C\u00f3 ng\u01b0\u1eddi \u0111\u00e3 k\u00fd l\u1ea1i \u201c{title}"
        "\u201d b\u1eb1ng \u0111\u1ecba ch\u1ec9 n\u00e0y. Ch\u1eef k\u00fd \u0111\u1ea7u "
        "ti\u00ean c\u1ee7a b\u1ea1n v\u1eabn \u0111\u01b0\u1ee3c t\u00ednh.",
    },
    "tl": {
        "friend": "kaibigan",
        "hello": "Kumusta {name},",
        "hello_anon": "Kumusta,",
        "thanks_subject": "Salamat sa iyong pirma: {title}",
        "thanks_body": "Salamat sa pagpirma sa \u201c{title}\u201d. Mahalaga ang bawat pirma.",
        "confirm_subject": "Pakikumpirma ang iyong pirma: {title}",
        "confirm_body": "Pakibuksan ang link na ito para kumpirmahin ang iyong pirma sa "
        "\u201c{title}\u201d:",
        "already_subject": "Nakapirma ka na: {title}",
        "already_body": "May sumubok na pumirma muli sa \u201c{title}\u201d gamit ang address na "
        "ito. Bilang pa rin ang una mong pirma.",
    },
}


def text(locale: str, key: str, **values: Any) -> str:
    """Return one localized string, falling back to English key by key."""
    strings = CATALOGUE.get(resolve_locale(locale), CATALOGUE["en"])
    template = strings.get(key) or CATALOGUE["en"][key]
    return template.format(**values)


# Alert content's per-recipient {{ variables }} become SendGrid substitution tags: one for the
# subject and text part, one (carrying the HTML-escaped value) for the HTML part.
PERSONAL = frozenset({"given_name", "family_name"})
# A recipient's links differ only by their list token: the request holds each URL once, with
# this tag where the token goes (a fifth of a personalization's bytes, against two whole URLs).
TOKEN_TAG = "-list_token-"


def personal_tag(name: str, html: bool) -> str:
    return f"-{name}_html-" if html else f"-{name}-"


@dataclass(frozen=True)
class BulkEmail:
    """One locale's alert email, ready for a bulk request: each recipient's values go in
    substitutions, everything shared is written in once."""

    locale: str
    subject: str
    discreet_subject: str | None
    text: str
    html: str
    personal: frozenset[tuple[str, bool]]  # (variable, in HTML) used by the templates

    def substitutions(self, list_token: str, person: Any) -> dict[str, str]:
        """Return one recipient's substitutions: their list token and the variables in use."""
        values = {TOKEN_TAG: list_token}
        for name, html in self.personal:
            value = personal_value(self.locale, name, person)
            values[personal_tag(name, html)] = escape(value) if html else value
        return values


def personal_value(locale: str, name: str, person: Any) -> str:
    """Return a supporter's value of a per-recipient variable (a name, or a friendly stand-in)."""
    if name == "given_name":
        return str(person.given_name or text(locale, "friend"))
    return str(getattr(person, name, None) or "")


def bulk_email(
    content: Mapping[str, Any], locale: str, shared: Mapping[str, str], footer: Footer
) -> BulkEmail:
    """Fill an alert's email templates: shared variables (organization_name, campaign_title,
    postal_address) in place, HTML-escaped in the HTML part; per-recipient ones as substitution
    tags; the links as the footer's, whose URLs hold TOKEN_TAG. A text-only alert gets its text
    as preformatted HTML."""
    personal: set[tuple[str, bool]] = set()
    links = {"unsubscribe_url": footer.unsubscribe_url, "preferences_url": footer.preferences_url}

    def render(template: str, html: bool) -> str:
        def value(name: str) -> str:
            if name in links:
                return escape(links[name]) if html else links[name]
            if name in PERSONAL:
                personal.add((name, html))
                return personal_tag(name, html)
            return escape(shared.get(name, "")) if html else shared.get(name, "")

        return fill(template, value)

    text_template = content.get("email_text") or ""
    html_template = content.get("email_html") or f"<pre>{escape(text_template)}</pre>"
    discreet = content.get("discreet_email_subject")
    return BulkEmail(
        locale=locale,
        subject=render(content.get("email_subject") or "", html=False),
        discreet_subject=render(discreet, html=False) if discreet else None,
        text=render(text_template, html=False) + footer_text(locale, footer),
        html=render(html_template, html=True) + footer_html(locale, footer),
        personal=frozenset(personal),
    )


def fill_text(template: str, locale: str, shared: Mapping[str, str], person: Any) -> str:
    """Fill a text message's {{ variables }} for one recipient (SMS)."""

    def value(name: str) -> str:
        return personal_value(locale, name, person) if name in PERSONAL else shared.get(name, "")

    return fill(template, value)


@dataclass(frozen=True)
class Rendered:
    """A rendered email."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Footer:
    """What every email ends with: who sent it, where they are, and how to leave."""

    organization: str
    postal_address: str
    unsubscribe_url: str
    preferences_url: str


def footer_text(locale: str, footer: Footer) -> str:
    sent_by = text(locale, "footer_sent_by", org=footer.organization, address=footer.postal_address)
    return (
        f"\n\n--\n{sent_by}\n{text(locale, 'footer_unsubscribe')}: {footer.unsubscribe_url}\n"
        f"{text(locale, 'footer_preferences')}: {footer.preferences_url}\n"
    )


def footer_html(locale: str, footer: Footer) -> str:
    sent_by = text(locale, "footer_sent_by", org=footer.organization, address=footer.postal_address)
    return (
        f'<hr><p style="font-size:12px;color:#555">{escape(sent_by)}<br>'
        f'<a href="{escape(footer.unsubscribe_url)}">{escape(text(locale, "footer_unsubscribe"))}'
        f'</a> \u00b7 <a href="{escape(footer.preferences_url)}">'
        f"{escape(text(locale, 'footer_preferences'))}</a></p>"
    )


def greeting(locale: str, name: str | None) -> str:
    return text(locale, "hello", name=name) if name else text(locale, "hello_anon")


def _email(
    locale: str,
    subject: str,
    paragraphs: list[str],
    footer: Footer | None,
    name: str | None,
    link: str | None = None,
) -> Rendered:
    lines = [greeting(locale, name), *paragraphs]
    if link:
        lines.append(link)
    body = "\n\n".join(lines)
    html_parts = [f"<p>{escape(p)}</p>" for p in [greeting(locale, name), *paragraphs]]
    if link:
        html_parts.append(f'<p><a href="{escape(link)}">{escape(link)}</a></p>')
    html = "".join(html_parts)
    if footer is not None:
        body += footer_text(locale, footer)
        html += footer_html(locale, footer)
    return Rendered(subject, body, html)


def render_transactional(
    kind: str, locale: str, params: dict[str, Any], footer: Footer | None
) -> Rendered:
    """Render a transactional email (thank_you, confirm, already_signed, milestone, erase)."""
    name = params.get("name")
    title = params.get("title") or ""
    extra = []
    if params.get("pronouns") and name:
        extra.append(text(locale, "pronouns", name=name, pronouns=params["pronouns"]))
    if kind == "thank_you":
        return _email(
            locale,
            text(locale, "thanks_subject", title=title),
            [text(locale, "thanks_body", title=title), *extra],
            footer,
            name,
        )
    if kind == "confirm":
        return _email(
            locale,
            text(locale, "confirm_subject", title=title),
            [text(locale, "confirm_body", title=title)],
            footer,
            name,
            link=params.get("confirm_url"),
        )
    if kind == "already_signed":
        return _email(
            locale,
            text(locale, "already_subject", title=title),
            [text(locale, "already_body", title=title)],
            footer,
            name,
        )
    if kind == "milestone":
        values = {k: params.get(k) for k in ("milestone", "total", "next_goal")}
        return _email(
            locale,
            text(locale, "milestone_subject", title=title, total=params.get("total")),
            [text(locale, "milestone_body", title=title, **values)],
            None,
            None,
        )
    if kind == "erase":
        return _email(
            locale,
            text(locale, "erase_subject"),
            [text(locale, "erase_body")],
            None,
            name,
            link=params.get("erase_url"),
        )
    raise ValueError(f"unknown transactional message kind {kind!r}")


def render_sms(kind: str, locale: str, params: dict[str, Any]) -> str:
    """Render a transactional SMS (sms_welcome)."""
    if kind == "sms_welcome":
        return text(locale, "sms_welcome", org=params.get("org") or "Kinship")
    raise ValueError(f"unknown SMS kind {kind!r}")
