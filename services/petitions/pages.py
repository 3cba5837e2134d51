"""The page a double opt-in link opens: it asks for a click, and only that click confirms.

Mail scanners and link previews open every link in an email. Had opening the link confirmed the
signature, a signature forged with someone's address would be confirmed by their own mail
server, which is what double opt-in is there to prevent. The strings exist in the languages the
notifications service writes (unreviewed by native speakers); others fall back to English.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from flask import Response

from shared.locales import resolve_locale
from shared.web import html_page

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Confirm your signature",
        "lead": "You, or someone using your email address, signed \u201c{title}\u201d. "
        "Your signature counts only once you confirm it.",
        "button": "Yes, count my signature",
        "ignore": "If it was not you, close this page: nothing will be counted.",
        "confirmed": "Thank you. Your signature on \u201c{title}\u201d is confirmed.",
        "gone": "This link is unknown or has expired.",
        "closed": "This petition is closed.",
        "also": "Confirming also agrees to:",
        "email": "email updates from {org}",
        "sms": "text messages to the number ending in {digits}",
        "partners": "sharing your name and contact details with {names}",
    },
    "zh-Hans": {
        "title": "\u786e\u8ba4\u60a8\u7684\u7b7e\u540d",
        "lead": "\u60a8\uff08\u6216\u4f7f\u7528\u60a8\u90ae\u7bb1\u5730\u5740\u7684\u4eba\uff09"
        "\u7b7e\u7f72\u4e86\u201c{title}\u201d\u3002\u53ea\u6709\u5728\u60a8\u786e\u8ba4\u540e"
        "\uff0c\u60a8\u7684\u7b7e\u540d\u624d\u4f1a\u88ab\u8ba1\u5165\u3002",
        "button": "\u662f\u7684\uff0c\u8ba1\u5165\u6211\u7684\u7b7e\u540d",
        "ignore": "\u5982\u679c\u4e0d\u662f\u60a8\u672c\u4eba\uff0c\u8bf7\u5173\u95ed\u6b64"
        "\u9875\u9762\uff1a\u4e0d\u4f1a\u8ba1\u5165\u4efb\u4f55\u7b7e\u540d\u3002",
        "confirmed": "\u8c22\u8c22\u3002\u60a8\u5728\u201c{title}\u201d\u4e0a\u7684\u7b7e\u540d"
        "\u5df2\u786e\u8ba4\u3002",
        "gone": "\u6b64\u94fe\u63a5\u65e0\u6548\u6216\u5df2\u8fc7\u671f\u3002",
        "closed": "\u6b64\u8bf7\u613f\u5df2\u5173\u95ed\u3002",
        "also": "\u786e\u8ba4\u5373\u8868\u793a\u60a8\u4e5f\u540c\u610f\uff1a",
        "email": "\u63a5\u6536 {org} \u7684\u7535\u5b50\u90ae\u4ef6\u66f4\u65b0",
        "sms": "\u5411\u5c3e\u53f7\u4e3a {digits} \u7684\u53f7\u7801\u53d1\u9001\u77ed\u4fe1",
        "partners": "\u4e0e {names} \u5206\u4eab\u60a8\u7684\u59d3\u540d\u548c\u8054\u7cfb\u65b9"
        "\u5f0f",
    },
    "zh-Hant": {
        "title": "\u78ba\u8a8d\u60a8\u7684\u7c3d\u540d",
        "lead": "\u60a8\uff08\u6216\u4f7f\u7528\u60a8\u96fb\u5b50\u90f5\u4ef6\u5730\u5740\u7684"
        "\u4eba\uff09\u7c3d\u7f72\u4e86\u300c{title}\u300d\u3002\u53ea\u6709\u5728\u60a8\u78ba"
        "\u8a8d\u5f8c\uff0c\u60a8\u7684\u7c3d\u540d\u624d\u6703\u88ab\u8a08\u5165\u3002",
        "button": "\u662f\u7684\uff0c\u8a08\u5165\u6211\u7684\u7c3d\u540d",
        "ignore": "\u5982\u679c\u4e0d\u662f\u60a8\u672c\u4eba\uff0c\u8acb\u95dc\u9589\u6b64"
        "\u9801\u9762\uff1a\u4e0d\u6703\u8a08\u5165\u4efb\u4f55\u7c3d\u540d\u3002",
        "confirmed": "\u8b1d\u8b1d\u3002\u60a8\u5728\u300c{title}\u300d\u4e0a\u7684\u7c3d\u540d"
        "\u5df2\u78ba\u8a8d\u3002",
        "gone": "\u6b64\u9023\u7d50\u7121\u6548\u6216\u5df2\u904e\u671f\u3002",
        "closed": "\u6b64\u8acb\u9858\u5df2\u95dc\u9589\u3002",
        "also": "\u78ba\u8a8d\u5373\u8868\u793a\u60a8\u4e5f\u540c\u610f\uff1a",
        "email": "\u63a5\u6536 {org} \u7684\u96fb\u5b50\u90f5\u4ef6\u66f4\u65b0",
        "sms": "\u5411\u5c3e\u865f\u70ba {digits} \u7684\u865f\u78bc\u767c\u9001\u7c21\u8a0a",
        "partners": "\u8207 {names} \u5206\u4eab\u60a8\u7684\u59d3\u540d\u548c\u806f\u7d61\u65b9"
        "\u5f0f",
    },
    "ja": {
        "title": "\u7f72\u540d\u306e\u78ba\u8a8d",
        "lead": "\u3042\u306a\u305f\uff08\u307e\u305f\u306f\u3042\u306a\u305f\u306e\u30e1\u30fc"
        "\u30eb\u30a2\u30c9\u30ec\u30b9\u3092\u4f7f\u3063\u305f\u8ab0\u304b\uff09\u304c\u300c"
        "{title}\u300d\u306b\u7f72\u540d\u3057\u307e\u3057\u305f\u3002\u7f72\u540d\u306f\u3001"
        "\u3054\u78ba\u8a8d\u3044\u305f\u3060\u3044\u3066\u521d\u3081\u3066\u6570\u3048\u3089"
        "\u308c\u307e\u3059\u3002",
        "button": "\u306f\u3044\u3001\u7f72\u540d\u3092\u6570\u3048\u3066\u304f\u3060\u3055\u3044",
        "ignore": "\u3054\u81ea\u8eab\u3067\u306a\u3044\u5834\u5408\u306f\u3001\u3053\u306e"
        "\u30da\u30fc\u30b8\u3092\u9589\u3058\u3066\u304f\u3060\u3055\u3044\u3002\u4f55\u3082"
        "\u6570\u3048\u3089\u308c\u307e\u305b\u3093\u3002",
        "confirmed": "\u3042\u308a\u304c\u3068\u3046\u3054\u3056\u3044\u307e\u3059\u3002\u300c"
        "{title}\u300d\u3078\u306e\u7f72\u540d\u304c\u78ba\u8a8d\u3055\u308c\u307e\u3057\u305f"
        "\u3002",
        "gone": "\u3053\u306e\u30ea\u30f3\u30af\u306f\u7121\u52b9\u304b\u3001\u671f\u9650\u304c"
        "\u5207\u308c\u3066\u3044\u307e\u3059\u3002",
        "closed": "\u3053\u306e\u8acb\u9858\u306f\u7d42\u4e86\u3057\u307e\u3057\u305f\u3002",
        "also": "\u78ba\u8a8d\u3059\u308b\u3068\u3001\u6b21\u306e\u3053\u3068\u306b\u3082\u540c"
        "\u610f\u3057\u305f\u3053\u3068\u306b\u306a\u308a\u307e\u3059\uff1a",
        "email": "{org} \u304b\u3089\u306e\u30e1\u30fc\u30eb\u3067\u306e\u304a\u77e5\u3089\u305b",
        "sms": "\u672b\u5c3e\u304c {digits} \u306e\u756a\u53f7\u3078\u306eSMS\u306e\u9001\u4fe1",
        "partners": "{names} \u3068\u304a\u540d\u524d\u30fb\u9023\u7d61\u5148\u3092\u5171\u6709"
        "\u3059\u308b\u3053\u3068",
    },
    "ko": {
        "title": "\uc11c\uba85 \ud655\uc778",
        "lead": "\uadc0\ud558(\ub610\ub294 \uadc0\ud558\uc758 \uc774\uba54\uc77c \uc8fc\uc18c"
        "\ub97c \uc0ac\uc6a9\ud55c \ub204\uad70\uac00)\uac00 \u201c{title}\u201d\uc5d0 "
        "\uc11c\uba85\ud588\uc2b5\ub2c8\ub2e4. \ud655\uc778\ud558\uc154\uc57c \uc11c\uba85"
        "\uc774 \uc9d1\uacc4\ub429\ub2c8\ub2e4.",
        "button": "\ub124, \uc81c \uc11c\uba85\uc744 \ubc18\uc601\ud574 \uc8fc\uc138\uc694",
        "ignore": "\ubcf8\uc778\uc774 \uc544\ub2c8\ub77c\uba74 \uc774 \ud398\uc774\uc9c0\ub97c "
        "\ub2eb\uc73c\uc138\uc694. \uc544\ubb34\uac83\ub3c4 \uc9d1\uacc4\ub418\uc9c0 "
        "\uc54a\uc2b5\ub2c8\ub2e4.",
        "confirmed": "\uac10\uc0ac\ud569\ub2c8\ub2e4. \u201c{title}\u201d\uc5d0 \ub300\ud55c "
        "\uc11c\uba85\uc774 \ud655\uc778\ub418\uc5c8\uc2b5\ub2c8\ub2e4.",
        "gone": "\uc774 \ub9c1\ud06c\ub294 \uc720\ud6a8\ud558\uc9c0 \uc54a\uac70\ub098 "
        "\ub9cc\ub8cc\ub418\uc5c8\uc2b5\ub2c8\ub2e4.",
        "closed": "\uc774 \uccad\uc6d0\uc740 \ub9c8\uac10\ub418\uc5c8\uc2b5\ub2c8\ub2e4.",
        "also": "\ud655\uc778\ud558\uc2dc\uba74 \ub2e4\uc74c\uc5d0\ub3c4 \ub3d9\uc758\ud558\uc2dc"
        "\uac8c \ub429\ub2c8\ub2e4:",
        "email": "{org}\uc758 \uc774\uba54\uc77c \uc18c\uc2dd \ubc1b\uae30",
        "sms": "\ub05d\uc790\ub9ac\uac00 {digits}\uc778 \ubc88\ud638\ub85c \ubb38\uc790 \uba54"
        "\uc2dc\uc9c0 \ubc1b\uae30",
        "partners": "{names}\uc640(\uacfc) \uc774\ub984 \ubc0f \uc5f0\ub77d\ucc98 \uacf5\uc720",
    },
    "vi": {
        "title": "X\u00e1c nh\u1eadn ch\u1eef k\u00fd c\u1ee7a b\u1ea1n",
        "lead": "B\u1ea1n, ho\u1eb7c ai \u0111\u00f3 d\u00f9ng \u0111\u1ecba ch\u1ec9 email "
        "c\u1ee7a b\u1ea1n, \u0111\u00e3 k\u00fd \u201c{title}\u201d. Ch\u1eef k\u00fd ch\u1ec9 "
        "\u0111\u01b0\u1ee3c t\u00ednh sau khi b\u1ea1n x\u00e1c nh\u1eadn.",
        "button": "V\u00e2ng, h\u00e3y t\u00ednh ch\u1eef k\u00fd c\u1ee7a t\u00f4i",
        "ignore": "N\u1ebfu kh\u00f4ng ph\u1ea3i b\u1ea1n, h\u00e3y \u0111\u00f3ng trang "
        "n\u00e0y: s\u1ebd kh\u00f4ng c\u00f3 g\u00ec \u0111\u01b0\u1ee3c t\u00ednh.",
        "confirmed": "C\u1ea3m \u01a1n b\u1ea1n. Ch\u1eef k\u00fd c\u1ee7a b\u1ea1n cho "
        "\u201c{title}\u201d \u0111\u00e3 \u0111\u01b0\u1ee3c x\u00e1c nh\u1eadn.",
        "gone": "Li\u00ean k\u1ebft n\u00e0y kh\u00f4ng h\u1ee3p l\u1ec7 ho\u1eb7c \u0111\u00e3 "
        "h\u1ebft h\u1ea1n.",
        "closed": "Ki\u1ebfn ngh\u1ecb n\u00e0y \u0111\u00e3 \u0111\u00f3ng.",
        "also": "X\u00e1c nh\u1eadn c\u0169ng c\u00f3 ngh\u0129a l\u00e0 b\u1ea1n \u0111\u1ed3ng "
        "\u00fd:",
        "email": "nh\u1eadn email c\u1eadp nh\u1eadt t\u1eeb {org}",
        "sms": "nh\u1eadn tin nh\u1eafn t\u1edbi s\u1ed1 \u0111i\u1ec7n tho\u1ea1i c\u00f3 \u0111u"
        "\u00f4i {digits}",
        "partners": "chia s\u1ebb t\u00ean v\u00e0 th\u00f4ng tin li\u00ean l\u1ea1c c\u1ee7a b"
        "\u1ea1n v\u1edbi {names}",
    },
    "tl": {
        "title": "Kumpirmahin ang iyong lagda",
        "lead": "Ikaw, o isang gumamit ng iyong email address, ay pumirma sa \u201c{title}\u201d. "
        "Mabibilang lamang ang iyong lagda kapag kinumpirma mo ito.",
        "button": "Oo, bilangin ang aking lagda",
        "ignore": "Kung hindi ikaw ito, isara ang pahinang ito: walang mabibilang.",
        "confirmed": "Salamat. Nakumpirma na ang iyong lagda sa \u201c{title}\u201d.",
        "gone": "Hindi wasto o paso na ang link na ito.",
        "closed": "Sarado na ang petisyong ito.",
        "also": "Sa pagkumpirma, pumapayag ka rin sa:",
        "email": "mga email update mula sa {org}",
        "sms": "mga text message sa numerong nagtatapos sa {digits}",
        "partners": "pagbabahagi ng iyong pangalan at contact details sa {names}",
    },
}


def confirmation(
    state: str,
    petition: Any,
    locale: str | None,
    signature: Any = None,
    partners: Sequence[str] = (),
    lead: str = "",
) -> Response:
    """Render the page for a link in state pending (a button that POSTs), confirmed, closed or
    gone. petition is the signed petition (None when gone); locale the signature's. A pending
    signature's page says what else confirming agrees to: emails from the lead organization
    (named lead), texts, and the partners (their names) it would be shared with, as typed by
    whoever used the address."""
    lang = resolve_locale(locale)
    strings = STRINGS[lang]
    texts = petition.texts if petition is not None else {}
    chosen = texts.get(locale) or texts.get(getattr(petition, "default_locale", "")) or {}
    title = escape(str(chosen.get("title", "")))
    if state == "pending":
        body = (
            f"<p>{strings['lead'].format(title=title)}</p>"
            + _also_agreed(strings, signature, partners, lead)
            + f'<form method="post"><button type="submit">{escape(strings["button"])}</button>'
            f"</form><p>{escape(strings['ignore'])}</p>"
        )
        return html_page(strings["title"], body, lang=lang)
    if state == "confirmed":
        confirmed = f"<p>{strings['confirmed'].format(title=title)}</p>"
        return html_page(strings["title"], confirmed, lang=lang)
    status = 409 if state == "closed" else 404
    return html_page(strings["title"], f"<p>{escape(strings[state])}</p>", status, lang=lang)


def _also_agreed(
    strings: dict[str, str], signature: Any, partners: Sequence[str], lead: str
) -> str:
    """List what a pending signature agrees to beyond being counted ("" when nothing)."""
    items = []
    if getattr(signature, "consent_email", False) and lead:
        items.append(strings["email"].format(org=escape(lead)))
    phone = getattr(signature, "phone", None)
    if getattr(signature, "consent_sms", False) and phone:
        items.append(strings["sms"].format(digits=escape(phone[-2:])))
    if partners:
        items.append(strings["partners"].format(names=escape(", ".join(partners))))
    if not items:
        return ""
    listed = "".join(f"<li>{item}</li>" for item in items)
    return f"<p>{escape(strings['also'])}</p><ul>{listed}</ul>"
