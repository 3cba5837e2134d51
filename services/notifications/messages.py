"""Localized transactional messages (English fallback) and the compliance footer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from services.notifications.page_strings import PAGES
from services.notifications.senders import substitute
from shared.locales import resolve_locale
from shared.templates import fill

# Each locale's strings; "{name}" is the supporter's chosen name, "{title}" the petition title.
CATALOGUE: dict[str, dict[str, str]] = {
    "en": {
        "discreet_subject": "An update for you",
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
        "sms_stopped": "{org}: you are unsubscribed and will get no more texts. Reply START to resu"
        "bscribe.",
        "milestone_subject": "Milestone reached: {title} has {total} signatures",
        "milestone_body": "\u201c{title}\u201d passed {milestone} signatures ({total} so far). "
        "The next goal is {next_goal}.",
        "erase_subject": "Confirm erasing your data",
        "erase_body": "You asked us to erase your data. Open this link to confirm; if it was not "
        "you, ignore this email:",
        "prefs_subject": "Confirm the changes to your preferences",
        "prefs_body": "You asked to change how we address or reach you. Open this link to confirm;"
        " if it was not you, ignore this email and nothing changes:",
        "footer_sent_by": "Sent by {org}, {address}.",
        "footer_unsubscribe": "Unsubscribe",
        "footer_preferences": "Manage your preferences",
    },
    "zh-Hans": {
        "discreet_subject": "\u7ed9\u60a8\u7684\u6700\u65b0\u6d88\u606f",
        "friend": "\u670b\u53cb",
        "hello": "{name}\uff0c\u60a8\u597d\uff1a",
        "hello_anon": "\u60a8\u597d\uff1a",
        "thanks_subject": "\u611f\u8c22\u60a8\u7684\u7b7e\u540d\uff1a{title}",
        "thanks_body": "\u611f\u8c22\u60a8\u5728\u201c{title}\u201d\u4e0a\u7b7e\u540d\u3002"
        "\u6bcf\u4e00\u4e2a\u7b7e\u540d\u90fd\u5f88\u91cd\u8981\u3002",
        "confirm_subject": "\u8bf7\u786e\u8ba4\u60a8\u7684\u7b7e\u540d\uff1a{title}",
        "confirm_body": "\u8bf7\u6253\u5f00\u6b64\u94fe\u63a5\uff0c\u786e\u8ba4\u60a8\u5728"
        "\u201c{title}\u201d\u4e0a\u7684\u7b7e\u540d\uff1a",
        "already_subject": "\u60a8\u5df2\u7ecf\u7b7e\u8fc7\u540d\u4e86\uff1a{title}",
        "already_body": "\u6709\u4eba\uff08\u53ef\u80fd\u662f\u60a8\uff09\u8bd5\u56fe\u7528\u6b64"
        "\u90ae\u7bb1\u5730\u5740\u518d\u6b21\u7b7e\u7f72\u201c{title}\u201d\u3002\u60a8\u7684"
        "\u7b2c\u4e00\u6b21\u7b7e\u540d\u4ecd\u7136\u6709\u6548\uff0c\u60a8\u65e0\u9700\u518d"
        "\u505a\u4efb\u4f55\u64cd\u4f5c\u3002",
        "pronouns": "\u6211\u4eec\u8bb0\u5f55\u7684\u60a8\u7684\u540d\u5b57\u662f{name}\uff08"
        "\u4ee3\u8bcd\uff1a{pronouns}\uff09\u3002\u60a8\u53ef\u4ee5\u968f\u65f6\u66f4\u6539\u3002",
        "sms_welcome": "{org}\uff1a\u611f\u8c22\u60a8\u8ba2\u9605\u77ed\u4fe1\u63d0\u9192\u3002"
        "\u53d1\u9001\u9891\u7387\u4e0d\u5b9a\uff0c\u53ef\u80fd\u4ea7\u751f\u77ed\u4fe1\u548c"
        "\u6d41\u91cf\u8d39\u7528\u3002\u56de\u590dHELP\u83b7\u53d6\u5e2e\u52a9\uff0c\u56de\u590d"
        "STOP\u9000\u8ba2\u3002",
        "sms_help": "{org}\uff1a\u60a8\u6240\u652f\u6301\u7684\u6d3b\u52a8\u7684\u76f8\u5173\u63d0"
        "\u9192\u3002\u56de\u590dSTOP\u9000\u8ba2\u3002\u5e2e\u52a9\uff1a{contact}",
        "sms_stopped": "{org}\uff1a\u60a8\u5df2\u9000\u8ba2\uff0c\u5c06\u4e0d\u518d\u6536\u5230"
        "\u77ed\u4fe1\u3002\u56de\u590dSTART\u53ef\u91cd\u65b0\u8ba2\u9605\u3002",
        "milestone_subject": "\u8fbe\u6210\u91cc\u7a0b\u7891\uff1a{title}\u5df2\u83b7\u5f97{total}"
        "\u4e2a\u7b7e\u540d",
        "milestone_body": "\u201c{title}\u201d\u7684\u7b7e\u540d\u5df2\u7a81\u7834{milestone}"
        "\u4e2a\uff08\u76ee\u524d\u5171{total}\u4e2a\uff09\u3002\u4e0b\u4e00\u4e2a\u76ee\u6807"
        "\u662f{next_goal}\u4e2a\u7b7e\u540d\u3002",
        "erase_subject": "\u8bf7\u786e\u8ba4\u5220\u9664\u60a8\u7684\u6570\u636e",
        "erase_body": "\u60a8\u8981\u6c42\u6211\u4eec\u5220\u9664\u60a8\u7684\u6570\u636e\u3002"
        "\u8bf7\u6253\u5f00\u6b64\u94fe\u63a5\u8fdb\u884c\u786e\u8ba4\uff1b\u5982\u679c\u4e0d"
        "\u662f\u60a8\u672c\u4eba\u64cd\u4f5c\uff0c\u8bf7\u5ffd\u7565\u6b64\u90ae\u4ef6\uff1a",
        "prefs_subject": "\u8bf7\u786e\u8ba4\u60a8\u7684\u504f\u597d\u8bbe\u7f6e\u66f4\u6539",
        "prefs_body": "\u60a8\u8981\u6c42\u66f4\u6539\u6211\u4eec\u79f0\u547c\u6216\u8054\u7cfb"
        "\u60a8\u7684\u65b9\u5f0f\u3002\u8bf7\u6253\u5f00\u6b64\u94fe\u63a5\u8fdb\u884c\u786e"
        "\u8ba4\uff1b\u5982\u679c\u4e0d\u662f\u60a8\u672c\u4eba\u64cd\u4f5c\uff0c\u8bf7\u5ffd"
        "\u7565\u6b64\u90ae\u4ef6\uff0c\u8bbe\u7f6e\u4e0d\u4f1a\u66f4\u6539\uff1a",
        "footer_sent_by": "\u7531{org}\u53d1\u9001\uff0c\u5730\u5740\uff1a{address}\u3002",
        "footer_unsubscribe": "\u53d6\u6d88\u8ba2\u9605",
        "footer_preferences": "\u7ba1\u7406\u60a8\u7684\u504f\u597d\u8bbe\u7f6e",
    },
    "zh-Hant": {
        "discreet_subject": "\u7d66\u60a8\u7684\u6700\u65b0\u6d88\u606f",
        "friend": "\u670b\u53cb",
        "hello": "{name}\uff0c\u60a8\u597d\uff1a",
        "hello_anon": "\u60a8\u597d\uff1a",
        "thanks_subject": "\u611f\u8b1d\u60a8\u7684\u7c3d\u540d\uff1a{title}",
        "thanks_body": "\u611f\u8b1d\u60a8\u5728\u300c{title}\u300d\u4e0a\u7c3d\u540d\u3002"
        "\u6bcf\u4e00\u500b\u7c3d\u540d\u90fd\u5f88\u91cd\u8981\u3002",
        "confirm_subject": "\u8acb\u78ba\u8a8d\u60a8\u7684\u7c3d\u540d\uff1a{title}",
        "confirm_body": "\u8acb\u6253\u958b\u6b64\u9023\u7d50\uff0c\u78ba\u8a8d\u60a8\u5728"
        "\u300c{title}\u300d\u4e0a\u7684\u7c3d\u540d\uff1a",
        "already_subject": "\u60a8\u5df2\u7d93\u7c3d\u904e\u540d\u4e86\uff1a{title}",
        "already_body": "\u6709\u4eba\uff08\u53ef\u80fd\u662f\u60a8\uff09\u8a66\u5716\u7528\u6b64"
        "\u96fb\u5b50\u90f5\u4ef6\u5730\u5740\u518d\u6b21\u7c3d\u7f72\u300c{title}\u300d\u3002"
        "\u60a8\u7684\u7b2c\u4e00\u6b21\u7c3d\u540d\u4ecd\u7136\u6709\u6548\uff0c\u60a8\u7121"
        "\u9700\u518d\u505a\u4efb\u4f55\u64cd\u4f5c\u3002",
        "pronouns": "\u6211\u5011\u8a18\u9304\u7684\u60a8\u7684\u540d\u5b57\u662f{name}\uff08"
        "\u4ee3\u540d\u8a5e\uff1a{pronouns}\uff09\u3002\u60a8\u53ef\u4ee5\u96a8\u6642\u66f4\u6539"
        "\u3002",
        "sms_welcome": "{org}\uff1a\u611f\u8b1d\u60a8\u8a02\u95b1\u7c21\u8a0a\u901a\u77e5\u3002"
        "\u50b3\u9001\u983b\u7387\u4e0d\u5b9a\uff0c\u53ef\u80fd\u7522\u751f\u7c21\u8a0a\u53ca"
        "\u6578\u64da\u50b3\u8f38\u8cbb\u7528\u3002\u56de\u8986HELP\u53d6\u5f97\u5354\u52a9\uff0c"
        "\u56de\u8986STOP\u53d6\u6d88\u8a02\u95b1\u3002",
        "sms_help": "{org}\uff1a\u60a8\u6240\u652f\u6301\u7684\u6d3b\u52d5\u7684\u76f8\u95dc\u901a"
        "\u77e5\u3002\u56de\u8986STOP\u53d6\u6d88\u8a02\u95b1\u3002\u5354\u52a9\uff1a{contact}",
        "sms_stopped": "{org}\uff1a\u60a8\u5df2\u53d6\u6d88\u8a02\u95b1\uff0c\u5c07\u4e0d\u518d"
        "\u6536\u5230\u7c21\u8a0a\u3002\u56de\u8986START\u53ef\u91cd\u65b0\u8a02\u95b1\u3002",
        "milestone_subject": "\u9054\u6210\u91cc\u7a0b\u7891\uff1a{title}\u5df2\u7372\u5f97{total}"
        "\u500b\u7c3d\u540d",
        "milestone_body": "\u300c{title}\u300d\u7684\u7c3d\u540d\u5df2\u7a81\u7834{milestone}"
        "\u500b\uff08\u76ee\u524d\u5171{total}\u500b\uff09\u3002\u4e0b\u4e00\u500b\u76ee\u6a19"
        "\u662f{next_goal}\u500b\u7c3d\u540d\u3002",
        "erase_subject": "\u8acb\u78ba\u8a8d\u522a\u9664\u60a8\u7684\u8cc7\u6599",
        "erase_body": "\u60a8\u8981\u6c42\u6211\u5011\u522a\u9664\u60a8\u7684\u8cc7\u6599\u3002"
        "\u8acb\u6253\u958b\u6b64\u9023\u7d50\u9032\u884c\u78ba\u8a8d\uff1b\u5982\u679c\u4e0d"
        "\u662f\u60a8\u672c\u4eba\u64cd\u4f5c\uff0c\u8acb\u5ffd\u7565\u6b64\u96fb\u5b50\u90f5"
        "\u4ef6\uff1a",
        "prefs_subject": "\u8acb\u78ba\u8a8d\u60a8\u7684\u504f\u597d\u8a2d\u5b9a\u8b8a\u66f4",
        "prefs_body": "\u60a8\u8981\u6c42\u8b8a\u66f4\u6211\u5011\u7a31\u547c\u6216\u806f\u7d61"
        "\u60a8\u7684\u65b9\u5f0f\u3002\u8acb\u6253\u958b\u6b64\u9023\u7d50\u9032\u884c\u78ba"
        "\u8a8d\uff1b\u5982\u679c\u4e0d\u662f\u60a8\u672c\u4eba\u64cd\u4f5c\uff0c\u8acb\u5ffd"
        "\u7565\u6b64\u96fb\u5b50\u90f5\u4ef6\uff0c\u8a2d\u5b9a\u4e0d\u6703\u8b8a\u66f4\uff1a",
        "footer_sent_by": "\u7531{org}\u5bc4\u9001\uff0c\u5730\u5740\uff1a{address}\u3002",
        "footer_unsubscribe": "\u53d6\u6d88\u8a02\u95b1",
        "footer_preferences": "\u7ba1\u7406\u60a8\u7684\u504f\u597d\u8a2d\u5b9a",
    },
    "ja": {
        "discreet_subject": "\u304a\u77e5\u3089\u305b",
        "friend": "\u30b5\u30dd\u30fc\u30bf\u30fc",
        "hello": "{name}\u3055\u3093\u3001\u3053\u3093\u306b\u3061\u306f\u3002",
        "hello_anon": "\u3053\u3093\u306b\u3061\u306f\u3002",
        "thanks_subject": "\u3054\u7f72\u540d\u3042\u308a\u304c\u3068\u3046\u3054\u3056\u3044"
        "\u307e\u3059\uff1a{title}",
        "thanks_body": "\u300c{title}\u300d\u3078\u306e\u3054\u7f72\u540d\u3042\u308a\u304c\u3068"
        "\u3046\u3054\u3056\u3044\u307e\u3059\u3002\u4e00\u4eba\u3072\u3068\u308a\u306e\u7f72"
        "\u540d\u304c\u5927\u304d\u306a\u529b\u306b\u306a\u308a\u307e\u3059\u3002",
        "confirm_subject": "\u7f72\u540d\u306e\u78ba\u8a8d\u3092\u304a\u9858\u3044\u3057\u307e"
        "\u3059\uff1a{title}",
        "confirm_body": "\u6b21\u306e\u30ea\u30f3\u30af\u3092\u958b\u3044\u3066\u300c{title}"
        "\u300d\u3078\u306e\u7f72\u540d\u3092\u78ba\u8a8d\u3057\u3066\u304f\u3060\u3055\u3044\uff1a",
        "already_subject": "\u3059\u3067\u306b\u7f72\u540d\u6e08\u307f\u3067\u3059\uff1a{title}",
        "already_body": "\u3053\u306e\u30e1\u30fc\u30eb\u30a2\u30c9\u30ec\u30b9\u3067\u300c{title}"
        "\u300d\u3078\u306e\u7f72\u540d\u304c\u518d\u5ea6\u884c\u308f\u308c\u307e\u3057\u305f"
        "\uff08\u304a\u305d\u3089\u304f\u3054\u672c\u4eba\u306b\u3088\u308b\u3082\u306e\u3067"
        "\u3059\uff09\u3002\u6700\u521d\u306e\u3054\u7f72\u540d\u306f\u5f15\u304d\u7d9a\u304d"
        "\u6709\u52b9\u3067\u3059\u306e\u3067\u3001\u7279\u306b\u5fc5\u8981\u306a\u304a\u624b"
        "\u7d9a\u304d\u306f\u3042\u308a\u307e\u305b\u3093\u3002",
        "pronouns": "\u304a\u540d\u524d\u306f{name}\uff08{pronouns}\uff09\u3067\u767b\u9332\u3055"
        "\u308c\u3066\u3044\u307e\u3059\u3002\u3044\u3064\u3067\u3082\u5909\u66f4\u3067\u304d"
        "\u307e\u3059\u3002",
        "sms_welcome": "{org}\uff1aSMS\u901a\u77e5\u3078\u306e\u3054\u767b\u9332\u3042\u308a\u304c"
        "\u3068\u3046\u3054\u3056\u3044\u307e\u3059\u3002\u914d\u4fe1\u983b\u5ea6\u306f\u4e0d"
        "\u5b9a\u671f\u3067\u3059\u3002\u901a\u4fe1\u6599\u304c\u304b\u304b\u308b\u5834\u5408"
        "\u304c\u3042\u308a\u307e\u3059\u3002HELP\u3068\u8fd4\u4fe1\u3067\u30d8\u30eb\u30d7\u3001S"
        "TOP\u3068\u8fd4\u4fe1\u3067\u914d\u4fe1\u505c\u6b62\u3057\u307e\u3059\u3002",
        "sms_help": "{org}\uff1a\u3054\u652f\u63f4\u3044\u305f\u3060\u3044\u3066\u3044\u308b\u30ad"
        "\u30e3\u30f3\u30da\u30fc\u30f3\u306e\u304a\u77e5\u3089\u305b\u3067\u3059\u3002STOP\u3068"
        "\u8fd4\u4fe1\u3059\u308b\u3068\u914d\u4fe1\u3092\u505c\u6b62\u3057\u307e\u3059\u3002"
        "\u304a\u554f\u3044\u5408\u308f\u305b\uff1a{contact}",
        "sms_stopped": "{org}\uff1a\u914d\u4fe1\u3092\u505c\u6b62\u3057\u307e\u3057\u305f\u3002"
        "\u4eca\u5f8cSMS\u306f\u5c4a\u304d\u307e\u305b\u3093\u3002\u518d\u958b\u3059\u308b\u306b"
        "\u306fSTART\u3068\u8fd4\u4fe1\u3057\u3066\u304f\u3060\u3055\u3044\u3002",
        "milestone_subject": "\u76ee\u6a19\u9054\u6210\uff1a\u300c{title}\u300d\u306e\u7f72\u540d"
        "\u304c{total}\u4ef6\u306b\u306a\u308a\u307e\u3057\u305f",
        "milestone_body": "\u300c{title}\u300d\u306e\u7f72\u540d\u304c{milestone}\u4ef6\u3092"
        "\u8d85\u3048\u307e\u3057\u305f\uff08\u73fe\u5728{total}\u4ef6\uff09\u3002\u6b21\u306e"
        "\u76ee\u6a19\u306f{next_goal}\u4ef6\u3067\u3059\u3002",
        "erase_subject": "\u30c7\u30fc\u30bf\u524a\u9664\u306e\u3054\u78ba\u8a8d",
        "erase_body": "\u30c7\u30fc\u30bf\u306e\u524a\u9664\u3092\u3054\u4f9d\u983c\u3044\u305f"
        "\u3060\u304d\u307e\u3057\u305f\u3002\u6b21\u306e\u30ea\u30f3\u30af\u3092\u958b\u3044"
        "\u3066\u78ba\u8a8d\u3057\u3066\u304f\u3060\u3055\u3044\u3002\u304a\u5fc3\u5f53\u305f"
        "\u308a\u304c\u306a\u3044\u5834\u5408\u306f\u3001\u3053\u306e\u30e1\u30fc\u30eb\u3092"
        "\u7121\u8996\u3057\u3066\u304f\u3060\u3055\u3044\uff1a",
        "prefs_subject": "\u8a2d\u5b9a\u5909\u66f4\u306e\u3054\u78ba\u8a8d",
        "prefs_body": "\u547c\u3073\u540d\u3084\u9023\u7d61\u65b9\u6cd5\u306e\u5909\u66f4\u3092"
        "\u3054\u4f9d\u983c\u3044\u305f\u3060\u304d\u307e\u3057\u305f\u3002\u6b21\u306e\u30ea"
        "\u30f3\u30af\u3092\u958b\u3044\u3066\u78ba\u8a8d\u3057\u3066\u304f\u3060\u3055\u3044"
        "\u3002\u304a\u5fc3\u5f53\u305f\u308a\u304c\u306a\u3044\u5834\u5408\u306f\u3001\u3053"
        "\u306e\u30e1\u30fc\u30eb\u3092\u7121\u8996\u3057\u3066\u304f\u3060\u3055\u3044\uff08"
        "\u4f55\u3082\u5909\u66f4\u3055\u308c\u307e\u305b\u3093\uff09\uff1a",
        "footer_sent_by": "\u9001\u4fe1\u5143\uff1a{org}\uff08{address}\uff09",
        "footer_unsubscribe": "\u914d\u4fe1\u505c\u6b62",
        "footer_preferences": "\u914d\u4fe1\u8a2d\u5b9a\u306e\u7ba1\u7406",
    },
    "ko": {
        "discreet_subject": "\uc0c8 \uc18c\uc2dd\uc774 \uc788\uc2b5\ub2c8\ub2e4",
        "friend": "\uc11c\ud3ec\ud130",
        "hello": "{name}\ub2d8, \uc548\ub155\ud558\uc138\uc694.",
        "hello_anon": "\uc548\ub155\ud558\uc138\uc694.",
        "thanks_subject": "\uc11c\uba85\ud574 \uc8fc\uc154\uc11c \uac10\uc0ac\ud569\ub2c8\ub2e4: "
        "{title}",
        "thanks_body": "\u201c{title}\u201d\uc5d0 \uc11c\uba85\ud574 \uc8fc\uc154\uc11c \uac10"
        "\uc0ac\ud569\ub2c8\ub2e4. \uc11c\uba85 \ud558\ub098\ud558\ub098\uac00 \ud070 \ud798\uc774"
        " \ub429\ub2c8\ub2e4.",
        "confirm_subject": "\uc11c\uba85\uc744 \ud655\uc778\ud574 \uc8fc\uc138\uc694: {title}",
        "confirm_body": "\uc774 \ub9c1\ud06c\ub97c \uc5f4\uc5b4 \u201c{title}\u201d \uc11c\uba85"
        "\uc744 \ud655\uc778\ud574 \uc8fc\uc138\uc694:",
        "already_subject": "\uc774\ubbf8 \uc11c\uba85\ud558\uc168\uc2b5\ub2c8\ub2e4: {title}",
        "already_body": "\ub204\uad70\uac00(\uc544\ub9c8\ub3c4 \ubcf8\uc778)\uac00 \uc774 \uc8fc"
        "\uc18c\ub85c \u201c{title}\u201d\uc5d0 \ub2e4\uc2dc \uc11c\uba85\ud558\ub824\uace0 \ud588"
        "\uc2b5\ub2c8\ub2e4. \ucc98\uc74c \ud558\uc2e0 \uc11c\uba85\uc740 \uadf8\ub300\ub85c "
        "\uc720\ud6a8\ud558\uba70, \ub354 \ud558\uc2e4 \uc77c\uc740 \uc5c6\uc2b5\ub2c8\ub2e4.",
        "pronouns": "{name}({pronouns}) \ub2d8\uc73c\ub85c \ub4f1\ub85d\ub418\uc5b4 "
        "\uc788\uc2b5\ub2c8\ub2e4. \uc5b8\uc81c\ub4e0\uc9c0 \ubcc0\uacbd\ud558\uc2e4 \uc218 "
        "\uc788\uc2b5\ub2c8\ub2e4.",
        "sms_welcome": "{org}: SMS \uc54c\ub9bc\uc744 \uc2e0\uccad\ud574 \uc8fc\uc154\uc11c "
        "\uac10\uc0ac\ud569\ub2c8\ub2e4. \ubc1c\uc1a1 \ube48\ub3c4\ub294 \ub2ec\ub77c\uc9c8 "
        "\uc218 \uc788\uc73c\uba70 \ubb38\uc790 \ubc0f \ub370\uc774\ud130 \uc694\uae08\uc774 "
        "\ubd80\uacfc\ub420 \uc218 \uc788\uc2b5\ub2c8\ub2e4. \ub3c4\uc6c0\ub9d0\uc740 HELP, "
        "\uc218\uc2e0 \uac70\ubd80\ub294 STOP\uc73c\ub85c \ud68c\uc2e0\ud574 \uc8fc\uc138\uc694.",
        "sms_help": "{org}: \uc9c0\uc9c0\ud558\uc2dc\ub294 \ucea0\ud398\uc778\uc5d0 \uad00\ud55c "
        "\uc54c\ub9bc\uc785\ub2c8\ub2e4. \uc218\uc2e0 \uac70\ubd80\ub294 STOP\uc73c\ub85c "
        "\ud68c\uc2e0\ud574 \uc8fc\uc138\uc694. \ubb38\uc758: {contact}",
        "sms_stopped": "{org}: \uc218\uc2e0\uc774 \uac70\ubd80\ub418\uc5c8\uc2b5\ub2c8\ub2e4. "
        "\ub354 \uc774\uc0c1 \ubb38\uc790\ub97c \ubcf4\ub0b4\uc9c0 \uc54a\uc2b5\ub2c8\ub2e4. \ub2e4"
        "\uc2dc \ubc1b\uc73c\uc2dc\ub824\uba74 START\ub85c \ud68c\uc2e0\ud574 \uc8fc\uc138\uc694.",
        "milestone_subject": "\ubaa9\ud45c \ub2ec\uc131: {title} \uc11c\uba85\uc774 "
        "{total}\uba85\uc774 \ub418\uc5c8\uc2b5\ub2c8\ub2e4",
        "milestone_body": "\u201c{title}\u201d \uc11c\uba85\uc774 {milestone}\uba85\uc744 "
        "\ub118\uc5c8\uc2b5\ub2c8\ub2e4(\ud604\uc7ac {total}\uba85). \ub2e4\uc74c "
        "\ubaa9\ud45c\ub294 {next_goal}\uba85\uc785\ub2c8\ub2e4.",
        "erase_subject": "\ub370\uc774\ud130 \uc0ad\uc81c \ud655\uc778",
        "erase_body": "\ub370\uc774\ud130 \uc0ad\uc81c\ub97c "
        "\uc694\uccad\ud558\uc168\uc2b5\ub2c8\ub2e4. \ud655\uc778\ud558\ub824\uba74 \uc774 "
        "\ub9c1\ud06c\ub97c \uc5f4\uc5b4 \uc8fc\uc138\uc694. \ubcf8\uc778\uc774 "
        "\uc694\uccad\ud558\uc9c0 \uc54a\uc558\ub2e4\uba74 \uc774 \uc774\uba54\uc77c\uc744 "
        "\ubb34\uc2dc\ud574 \uc8fc\uc138\uc694:",
        "prefs_subject": "\ud658\uacbd\uc124\uc815 \ubcc0\uacbd \ud655\uc778",
        "prefs_body": "\ud638\uce6d\uc774\ub098 \uc5f0\ub77d \ubc29\ubc95 \ubcc0\uacbd\uc744 "
        "\uc694\uccad\ud558\uc168\uc2b5\ub2c8\ub2e4. \ud655\uc778\ud558\ub824\uba74 \uc774 \ub9c1"
        "\ud06c\ub97c \uc5f4\uc5b4 \uc8fc\uc138\uc694. \ubcf8\uc778\uc774 \uc694\uccad\ud558\uc9c0"
        " \uc54a\uc558\ub2e4\uba74 \uc774 \uc774\uba54\uc77c\uc744 \ubb34\uc2dc\ud574 \uc8fc\uc138"
        "\uc694. \uc544\ubb34\uac83\ub3c4 \ubcc0\uacbd\ub418\uc9c0 \uc54a\uc2b5\ub2c8\ub2e4:",
        "footer_sent_by": "\ubc1c\uc2e0: {org}, {address}.",
        "footer_unsubscribe": "\uc218\uc2e0 \uac70\ubd80",
        "footer_preferences": "\uc218\uc2e0 \uc124\uc815 \uad00\ub9ac",
    },
    "vi": {
        "discreet_subject": "Th\u00f4ng tin m\u1edbi d\u00e0nh cho b\u1ea1n",
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
        "already_body": "C\u00f3 ng\u01b0\u1eddi (c\u00f3 th\u1ec3 l\u00e0 b\u1ea1n) \u0111\u00e3 "
        "th\u1eed k\u00fd l\u1ea1i \u201c{title}\u201d b\u1eb1ng \u0111\u1ecba ch\u1ec9 email n"
        "\u00e0y. Ch\u1eef k\u00fd \u0111\u1ea7u ti\u00ean c\u1ee7a b\u1ea1n v\u1eabn \u0111\u01b0"
        "\u1ee3c t\u00ednh; b\u1ea1n kh\u00f4ng c\u1ea7n l\u00e0m g\u00ec th\u00eam.",
        "pronouns": "Ch\u00fang t\u00f4i ghi nh\u1eadn b\u1ea1n l\u00e0 {name} ({pronouns}). "
        "B\u1ea1n c\u00f3 th\u1ec3 thay \u0111\u1ed5i th\u00f4ng tin n\u00e0y b\u1ea5t c\u1ee9 "
        "l\u00fac n\u00e0o.",
        "sms_welcome": "{org}: c\u1ea3m \u01a1n b\u1ea1n \u0111\u00e3 \u0111\u0103ng k\u00fd tin S"
        "MS. S\u1ed1 tin thay \u0111\u1ed5i. C\u00f3 th\u1ec3 t\u00ednh ph\u00ed tin nh\u1eafn/d"
        "\u1eef li\u1ec7u. Tr\u1ea3 l\u1eddi HELP \u0111\u1ec3 \u0111\u01b0\u1ee3c gi\u00fap, STOP"
        " \u0111\u1ec3 h\u1ee7y.",
        "sms_help": "{org}: th\u00f4ng b\u00e1o v\u1ec1 c\u00e1c chi\u1ebfn d\u1ecbch b\u1ea1n "
        "\u1ee7ng h\u1ed9. Tr\u1ea3 l\u1eddi STOP \u0111\u1ec3 h\u1ee7y \u0111\u0103ng k\u00fd. "
        "Tr\u1ee3 gi\u00fap: {contact}",
        "sms_stopped": "{org}: B\u1ea1n \u0111\u00e3 h\u1ee7y \u0111\u0103ng k\u00fd v\u00e0 s"
        "\u1ebd kh\u00f4ng nh\u1eadn th\u00eam tin nh\u1eafn. Tr\u1ea3 l\u1eddi START \u0111\u1ec3 "
        "\u0111\u0103ng k\u00fd l\u1ea1i.",
        "milestone_subject": "\u0110\u1ea1t m\u1ed1c m\u1edbi: {title} \u0111\u00e3 c\u00f3 "
        "{total} ch\u1eef k\u00fd",
        "milestone_body": "\u201c{title}\u201d \u0111\u00e3 v\u01b0\u1ee3t m\u1ed1c {milestone} "
        "ch\u1eef k\u00fd (hi\u1ec7n c\u00f3 {total}). M\u1ee5c ti\u00eau ti\u1ebfp theo l\u00e0 "
        "{next_goal} ch\u1eef k\u00fd.",
        "erase_subject": "X\u00e1c nh\u1eadn x\u00f3a d\u1eef li\u1ec7u c\u1ee7a b\u1ea1n",
        "erase_body": "B\u1ea1n \u0111\u00e3 y\u00eau c\u1ea7u ch\u00fang t\u00f4i x\u00f3a "
        "d\u1eef li\u1ec7u c\u1ee7a b\u1ea1n. H\u00e3y m\u1edf li\u00ean k\u1ebft n\u00e0y "
        "\u0111\u1ec3 x\u00e1c nh\u1eadn; n\u1ebfu kh\u00f4ng ph\u1ea3i b\u1ea1n y\u00eau "
        "c\u1ea7u, vui l\u00f2ng b\u1ecf qua email n\u00e0y:",
        "prefs_subject": "X\u00e1c nh\u1eadn thay \u0111\u1ed5i t\u00f9y ch\u1ecdn c\u1ee7a b"
        "\u1ea1n",
        "prefs_body": "B\u1ea1n \u0111\u00e3 y\u00eau c\u1ea7u thay \u0111\u1ed5i c\u00e1ch ch"
        "\u00fang t\u00f4i x\u01b0ng h\u00f4 ho\u1eb7c li\u00ean l\u1ea1c v\u1edbi b\u1ea1n. H"
        "\u00e3y m\u1edf li\u00ean k\u1ebft n\u00e0y \u0111\u1ec3 x\u00e1c nh\u1eadn; n\u1ebfu kh"
        "\u00f4ng ph\u1ea3i b\u1ea1n y\u00eau c\u1ea7u, vui l\u00f2ng b\u1ecf qua email n\u00e0y v"
        "\u00e0 s\u1ebd kh\u00f4ng c\u00f3 g\u00ec thay \u0111\u1ed5i:",
        "footer_sent_by": "\u0110\u01b0\u1ee3c g\u1eedi b\u1edfi {org}, {address}.",
        "footer_unsubscribe": "H\u1ee7y \u0111\u0103ng k\u00fd",
        "footer_preferences": "Qu\u1ea3n l\u00fd t\u00f9y ch\u1ecdn c\u1ee7a b\u1ea1n",
    },
    "tl": {
        "discreet_subject": "May bagong balita para sa iyo",
        "friend": "kaibigan",
        "hello": "Kumusta {name},",
        "hello_anon": "Kumusta,",
        "thanks_subject": "Salamat sa iyong pirma: {title}",
        "thanks_body": "Salamat sa pagpirma sa \u201c{title}\u201d. Mahalaga ang bawat pirma.",
        "confirm_subject": "Pakikumpirma ang iyong pirma: {title}",
        "confirm_body": "Pakibuksan ang link na ito para kumpirmahin ang iyong pirma sa "
        "\u201c{title}\u201d:",
        "already_subject": "Nakapirma ka na: {title}",
        "already_body": "May sumubok (malamang ikaw) na pumirma muli sa \u201c{title}\u201d gamit "
        "ang address na ito. Bilang pa rin ang una mong pirma; wala ka nang kailangang gawin.",
        "pronouns": "Nakatala ka bilang {name} ({pronouns}). Maaari mo itong baguhin anumang oras.",
        "sms_welcome": "{org}: salamat sa pagsali sa SMS alerts. Iba-iba ang dalas ng msg. Maaarin"
        "g may msg&data rates. I-reply ang HELP para sa tulong, STOP para mag-opt out.",
        "sms_help": "{org}: mga alerto tungkol sa mga kampanyang sinusuportahan mo. I-reply ang "
        "STOP para mag-opt out. Tulong: {contact}",
        "sms_stopped": "{org}: Hindi ka na makakatanggap ng mga text. I-reply ang START para muling"
        " mag-subscribe.",
        "milestone_subject": "Naabot ang milestone: {total} na ang pirma sa {title}",
        "milestone_body": "Lumampas na sa {milestone} ang pirma sa \u201c{title}\u201d ({total} "
        "sa ngayon). Ang susunod na layunin ay {next_goal} pirma.",
        "erase_subject": "Kumpirmahin ang pagbura ng iyong data",
        "erase_body": "Hiniling mong burahin namin ang iyong data. Buksan ang link na ito para "
        "kumpirmahin; kung hindi ikaw ito, huwag pansinin ang email na ito:",
        "prefs_subject": "Kumpirmahin ang mga pagbabago sa iyong mga preference",
        "prefs_body": "Hiniling mong baguhin kung paano ka namin tinatawag o kinokontak. Buksan an"
        "g link na ito para kumpirmahin; kung hindi ikaw ito, huwag pansinin ang email na ito at w"
        "alang magbabago:",
        "footer_sent_by": "Ipinadala ng {org}, {address}.",
        "footer_unsubscribe": "Mag-unsubscribe",
        "footer_preferences": "Pamahalaan ang iyong mga preference",
    },
}

# To the lead organization, when its scheduled alert no longer passed the checks at its time
# and was cancelled (campaigns' reason, in English, fills {reason}).
NOT_SENT: dict[str, dict[str, str]] = {
    "en": {
        "not_sent_subject": "Your alert \u201c{name}\u201d was not sent",
        "not_sent_body": "\u201c{name}\u201d was due to go out, but it no longer passed the "
        "checks, so it was cancelled: {reason} Fix it, then schedule it again.",
    },
    "zh-Hans": {
        "not_sent_subject": "\u60a8\u7684\u63d0\u9192\u201c{name}\u201d\u672a\u53d1\u9001",
        "not_sent_body": "\u201c{name}\u201d\u5df2\u5230\u53d1\u9001\u65f6\u95f4\uff0c"
        "\u4f46\u672a\u518d\u901a\u8fc7\u68c0\u67e5\uff0c\u56e0\u6b64\u5df2\u53d6\u6d88"
        "\uff1a{reason} \u8bf7\u4fee\u6539\u540e\u91cd\u65b0\u5b89\u6392\u53d1\u9001\u3002",
    },
    "zh-Hant": {
        "not_sent_subject": "\u60a8\u7684\u63d0\u9192\u300c{name}\u300d\u672a\u767c\u9001",
        "not_sent_body": "\u300c{name}\u300d\u5df2\u5230\u767c\u9001\u6642\u9593\uff0c"
        "\u4f46\u672a\u518d\u901a\u904e\u6aa2\u67e5\uff0c\u56e0\u6b64\u5df2\u53d6\u6d88"
        "\uff1a{reason} \u8acb\u4fee\u6539\u5f8c\u91cd\u65b0\u5b89\u6392\u767c\u9001\u3002",
    },
    "ja": {
        "not_sent_subject": "\u30a2\u30e9\u30fc\u30c8\u300c{name}\u300d\u306f\u9001\u4fe1"
        "\u3055\u308c\u307e\u305b\u3093\u3067\u3057\u305f",
        "not_sent_body": "\u300c{name}\u300d\u306f\u9001\u4fe1\u4e88\u5b9a\u6642\u523b\u306b"
        "\u306a\u308a\u307e\u3057\u305f\u304c\u3001\u78ba\u8a8d\u306b\u901a\u3089\u306a"
        "\u304f\u306a\u3063\u305f\u305f\u3081\u53d6\u308a\u6d88\u3055\u308c\u307e\u3057"
        "\u305f\uff1a{reason} \u4fee\u6b63\u3057\u3066\u304b\u3089\u3001\u3082\u3046\u4e00"
        "\u5ea6\u4e88\u7d04\u3057\u3066\u304f\u3060\u3055\u3044\u3002",
    },
    "ko": {
        "not_sent_subject": "\uc54c\ub9bc \u201c{name}\u201d\uc774(\uac00) \ubc1c\uc1a1\ub418"
        "\uc9c0 \uc54a\uc558\uc2b5\ub2c8\ub2e4",
        "not_sent_body": "\u201c{name}\u201d\uc740(\ub294) \ubc1c\uc1a1 \uc608\uc815 \uc2dc"
        "\uac01\uc774 \ub418\uc5c8\uc9c0\ub9cc \ub354 \uc774\uc0c1 \uac80\uc0ac\ub97c "
        "\ud1b5\uacfc\ud558\uc9c0 \ubabb\ud574 \ucde8\uc18c\ub418\uc5c8\uc2b5\ub2c8\ub2e4"
        ": {reason} \uc218\uc815\ud55c \ub4a4 \ub2e4\uc2dc \uc608\uc57d\ud574 \uc8fc\uc138"
        "\uc694.",
    },
    "vi": {
        "not_sent_subject": "Th\u00f4ng b\u00e1o \u201c{name}\u201d c\u1ee7a b\u1ea1n \u0111\u00e3"
        " kh\u00f4ng \u0111\u01b0\u1ee3c g\u1eedi",
        "not_sent_body": "\u201c{name}\u201d \u0111\u00e3 \u0111\u1ebfn gi\u1edd g\u1eedi "
        "nh\u01b0ng kh\u00f4ng c\u00f2n v\u01b0\u1ee3t qua c\u00e1c b\u01b0\u1edbc ki\u1ec3m "
        "tra n\u00ean \u0111\u00e3 b\u1ecb h\u1ee7y: {reason} H\u00e3y s\u1eeda r\u1ed3i l\u00ean "
        "l\u1ecbch g\u1eedi l\u1ea1i.",
    },
    "tl": {
        "not_sent_subject": "Hindi naipadala ang alerto mong \u201c{name}\u201d",
        "not_sent_body": "Oras na para ipadala ang \u201c{name}\u201d, pero hindi na ito pumasa "
        "sa mga pagsusuri kaya kinansela ito: {reason} Ayusin ito, saka i-schedule muli.",
    },
}

CATALOGUE = {
    locale: {**strings, **PAGES.get(locale, {}), **NOT_SENT.get(locale, {})}
    for locale, strings in CATALOGUE.items()
}


def template(locale: str, key: str) -> str:
    """Return one localized string as written, its {placeholders} unfilled (English key by key
    where the locale lacks it)."""
    strings = CATALOGUE.get(resolve_locale(locale), CATALOGUE["en"])
    return strings.get(key) or CATALOGUE["en"][key]


def text(locale: str, key: str, **values: Any) -> str:
    """Return one localized string, falling back to English key by key."""
    return template(locale, key).format(**values)


# Alert content's per-recipient {{ variables }} become SendGrid substitution tags: one for the
# subject and text part, one (carrying the HTML-escaped value) for the HTML part.
PERSONAL = frozenset({"given_name", "family_name"})
# A recipient's links differ only by their list token: the request holds each URL once, with
# this tag where the token goes (a fifth of a personalization's bytes, against two whole URLs).
TOKEN_TAG = "-list_token-"


def personal_tag(name: str, html: bool) -> str:
    return f"-{name}_html-" if html else f"-{name}-"


_PREVIEW_PAD = "&#847;&zwnj;&nbsp;" * 90
_HIDDEN = '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">'
# Where a bulk email's preview line goes, filled per recipient (empty for most).
PREVIEW_HTML_TAG = "-kinship_preview_html-"
PREVIEW_TEXT_TAG = "-kinship_preview_text-"


def preheader(line: str) -> str:
    """Return the hidden HTML that an inbox list or a lock screen shows as an email's preview,
    padded so that the body's first words stay out of it."""
    return f"{_HIDDEN}{escape(line)}{_PREVIEW_PAD}</div>"


@dataclass(frozen=True)
class BulkEmail:
    """One locale's alert email, ready for a bulk request: each recipient's values go in
    substitutions, everything shared is written in once."""

    locale: str
    subject: str
    discreet_subject: str
    text: str
    html: str
    personal: frozenset[tuple[str, bool]]  # (variable, in HTML) used by the templates
    previews: bool = False  # the parts open with the preview tags (discreet recipients)

    def substitutions(self, list_token: str, person: Any) -> dict[str, str]:
        """Return one recipient's substitutions: their list token and the variables in use."""
        values = {TOKEN_TAG: list_token}
        for name, html in self.personal:
            value = personal_value(self.locale, name, person)
            values[personal_tag(name, html)] = escape(value) if html else value
        if self.previews:
            # A discreet recipient's preview is their subject: the body's first words (the
            # organization's, shared by the whole request) can name the cause. It is filled in
            # here, each name as text, then escaped whole for the HTML part: a tag left in a
            # substitution's value would depend on the provider substituting it again.
            discreet = bool(person.discreet)
            line = substitute(self.discreet_subject, values) if discreet else ""
            values[PREVIEW_HTML_TAG] = preheader(line) if discreet else ""
            values[PREVIEW_TEXT_TAG] = f"{line}\n\n" if discreet else ""
        return values


def personal_value(locale: str, name: str, person: Any) -> str:
    """Return a supporter's value of a per-recipient variable (a name, or a friendly stand-in)."""
    if name == "given_name":  # a name of spaces greets no one: "Hi   ,"
        return str(person.given_name or "").strip() or text(locale, "friend")
    return str(getattr(person, name, None) or "").strip()


def bulk_email(
    content: Mapping[str, Any],
    locale: str,
    shared: Mapping[str, str],
    footer: Footer,
    previews: bool = False,
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
        # A discreet supporter never sees the cause in a subject: the alert's discreet
        # subject, or a neutral one.
        discreet_subject=render(discreet, html=False)
        if discreet
        else text(locale, "discreet_subject"),
        text=(PREVIEW_TEXT_TAG if previews else "")
        + render(text_template, html=False)
        + footer_text(locale, footer),
        html=(PREVIEW_HTML_TAG if previews else "")
        + render(html_template, html=True)
        + footer_html(locale, footer),
        personal=frozenset(personal),
        previews=previews,
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


# Inbox lists and lock screens show an email's first hundred or so characters after its
# subject. The hidden preheader fills that preview (the padding keeps the body's first words
# out of it): a discreet supporter's preview says no more than their subject.
def discreet(rendered: Rendered, locale: str) -> Rendered:
    """Return an email whose subject and preview name no cause."""
    neutral = text(locale, "discreet_subject")
    return Rendered(neutral, f"{neutral}\n\n{rendered.text}", preheader(neutral) + rendered.html)


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


# The subject of an alert's test send starts so: the same in every language, as senders'
# tools mark tests.
TEST_MARK = "[TEST]"


def alert_test_email(
    content: Mapping[str, Any],
    locale: str,
    shared: Mapping[str, str],
    footer: Footer,
    person: Any,
    discreet: bool = False,
) -> Rendered:
    """Fill an alert's email for one stand-in recipient, as a bulk request would for each
    (discreet: as a supporter in discreet mode gets it, subject and inbox preview line; the
    stand-in's `discreet` says the same)."""
    email = bulk_email(content, locale, shared, footer, previews=discreet)
    values = email.substitutions("", person)
    subject = email.discreet_subject if discreet else email.subject
    return Rendered(*(substitute(part, values) for part in (subject, email.text, email.html)))


def render_transactional(
    kind: str, locale: str, params: dict[str, Any], footer: Footer | None
) -> Rendered:
    """Render a transactional email (thank_you, confirm, already_signed, milestone, erase,
    confirm_preferences)."""
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
    if kind == "alert_test":
        # Rendered when asked for (handlers.handle_alert_test), as the alert will be sent.
        return Rendered(
            f"{TEST_MARK} {params.get('subject') or ''}",
            str(params.get("text") or ""),
            str(params.get("html") or ""),
        )
    if kind == "alert_not_sent":
        values = {"name": params.get("alert_name") or "", "reason": params.get("reason") or ""}
        return _email(
            locale,
            text(locale, "not_sent_subject", **values),
            [text(locale, "not_sent_body", **values)],
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
    if kind == "confirm_preferences":
        return _email(
            locale,
            text(locale, "prefs_subject"),
            [text(locale, "prefs_body")],
            None,
            name,
            link=params.get("confirm_url"),
        )
    raise ValueError(f"unknown transactional message kind {kind!r}")


def render_sms(kind: str, locale: str, params: dict[str, Any]) -> str:
    """Render a transactional SMS (sms_welcome)."""
    if kind == "sms_welcome":
        return text(locale, "sms_welcome", org=params.get("org") or "Kinship")
    raise ValueError(f"unknown SMS kind {kind!r}")
