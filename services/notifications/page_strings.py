"""Supporter pages of notifications (preferences, confirmations, erasure), in the languages
its messages are written in: unreviewed by native speakers; English is the fallback, key by
key (messages.text)."""

PAGES: dict[str, dict[str, str]] = {
    "en": {
        "page_language": "Language of our messages",
        "page_prefs_title": "Your preferences",
        "page_email_from": "Email from {org} to {address}.",
        "page_unsubscribe_button": "Unsubscribe from these emails",
        "page_email": "Email",
        "page_sms": "Text messages",
        "page_stopped": (
            "This number replied STOP, so no texts are sent to it. Text START to our number "
            "to receive them again."
        ),
        "page_discreet": "Discreet mode: texts and subjects that name no cause",
        "page_name": "The name we greet you by",
        "page_pronouns": "Your pronouns",
        "page_unchanged": "unchanged",
        "page_clear_names": "Greet me without a name or pronouns",
        "page_names_note": (
            "The name and pronouns we hold are not shown on this page. Leave a field blank "
            "to keep it as it is."
        ),
        "page_share": (
            "Share my contact details with the partner organizations I chose when signing"
        ),
        "page_share_note": "Untick to stop: each of them is told to delete the details we sent it.",
        "page_save": "Save",
        "page_erase": "Erase my data",
        "page_erase_note": "We will email you a link to confirm.",
        "page_not_saved": "Not saved",
        "page_too_long": "{label}: at most {limit} characters, and no control ones.",
        "page_check_email": "Check your email",
        "page_erase_sent": (
            "We sent you a link to confirm. We send at most one an hour: if you asked a "
            "moment ago, look for that one."
        ),
        "page_held": (
            "Saved. Some of your changes make you easier to identify or reach: we emailed "
            "you a link to confirm them, so that nobody holding a forwarded email can make "
            "them for you."
        ),
        "page_saved": "Saved",
        "page_saved_body": "Your preferences are saved.",
        "page_confirm_title": "Confirm your changes",
        "page_confirm_lead": "You asked for these changes:",
        "page_changes_replaced": (
            "What this link confirms changed after you opened it. Please check it again:"
        ),
        "page_confirm_button": "Confirm",
        "page_changes_saved": "Your changes are saved.",
        "page_none": "(none)",
        "page_discreet_off": "Discreet mode off: subjects and texts may name the cause",
        "page_email_on": "Email on",
        "page_sms_on": "Text messages on",
        "page_erase_lead": (
            "This removes your contact details and preferences from every Kinship service. "
            "It cannot be undone."
        ),
        "page_erased": "Erased",
        "page_erased_body": "Your data has been erased.",
        "page_gone": "This link is no longer valid.",
    },
    "zh-Hans": {
        "page_language": "\u6d88\u606f\u8bed\u8a00",
        "page_prefs_title": "\u60a8\u7684\u504f\u597d\u8bbe\u7f6e",
        "page_email_from": (
            "{org} \u53d1\u9001\u81f3 {address} \u7684\u7535\u5b50\u90ae\u4ef6\u3002"
        ),
        "page_unsubscribe_button": "\u9000\u8ba2\u8fd9\u4e9b\u7535\u5b50\u90ae\u4ef6",
        "page_email": "\u7535\u5b50\u90ae\u4ef6",
        "page_sms": "\u77ed\u4fe1",
        "page_stopped": (
            "\u6b64\u53f7\u7801\u5df2\u56de\u590d "
            "STOP\uff0c\u56e0\u6b64\u4e0d\u4f1a\u518d\u5411\u5176\u53d1\u9001\u77ed\u4fe1"
            "\u3002\u5982\u9700\u91cd\u65b0\u63a5\u6536\uff0c\u8bf7\u5411\u6211\u4eec\u7684"
            "\u53f7\u7801\u53d1\u9001 START\u3002"
        ),
        "page_discreet": (
            "\u9690\u79c1\u6a21\u5f0f\uff1a\u77ed\u4fe1\u548c\u90ae\u4ef6\u4e3b\u9898\u4e0d"
            "\u63d0\u53ca\u5177\u4f53\u8bae\u9898"
        ),
        "page_name": "\u6211\u4eec\u5bf9\u60a8\u7684\u79f0\u547c",
        "page_pronouns": "\u60a8\u7684\u4ee3\u8bcd",
        "page_unchanged": "\u4e0d\u53d8",
        "page_clear_names": (
            "\u79f0\u547c\u6211\u65f6\u4e0d\u4f7f\u7528\u540d\u5b57\u6216\u4ee3\u8bcd"
        ),
        "page_names_note": (
            "\u6b64\u9875\u9762\u4e0d\u663e\u793a\u6211\u4eec\u8bb0\u5f55\u7684\u540d\u5b57"
            "\u548c\u4ee3\u8bcd\u3002\u7559\u7a7a\u5373\u4fdd\u6301\u4e0d\u53d8\u3002"
        ),
        "page_share": (
            "\u4e0e\u6211\u7b7e\u540d\u65f6\u9009\u62e9\u7684\u5408\u4f5c\u7ec4\u7ec7\u5206"
            "\u4eab\u6211\u7684\u8054\u7cfb\u65b9\u5f0f"
        ),
        "page_share_note": (
            "\u53d6\u6d88\u52fe\u9009\u5373\u505c\u6b62\u5206\u4eab\uff1a\u6211\u4eec\u4f1a"
            "\u901a\u77e5\u6bcf\u4e2a\u7ec4\u7ec7\u5220\u9664\u6211\u4eec\u53d1\u9001\u7ed9"
            "\u5b83\u7684\u4fe1\u606f\u3002"
        ),
        "page_save": "\u4fdd\u5b58",
        "page_erase": "\u5220\u9664\u6211\u7684\u6570\u636e",
        "page_erase_note": (
            "\u6211\u4eec\u4f1a\u901a\u8fc7\u7535\u5b50\u90ae\u4ef6\u5411\u60a8\u53d1\u9001"
            "\u786e\u8ba4\u94fe\u63a5\u3002"
        ),
        "page_not_saved": "\u672a\u4fdd\u5b58",
        "page_too_long": (
            "{label}\uff1a\u6700\u591a {limit} "
            "\u4e2a\u5b57\u7b26\uff0c\u4e14\u4e0d\u80fd\u5305\u542b\u63a7\u5236\u5b57\u7b26"
            "\u3002"
        ),
        "page_check_email": "\u8bf7\u67e5\u6536\u7535\u5b50\u90ae\u4ef6",
        "page_erase_sent": (
            "\u6211\u4eec\u5df2\u5411\u60a8\u53d1\u9001\u786e\u8ba4\u94fe\u63a5\u3002\u6bcf"
            "\u5c0f\u65f6\u6700\u591a\u53d1\u9001\u4e00\u5c01\uff1a\u5982\u679c\u60a8\u521a"
            "\u521a\u8bf7\u6c42\u8fc7\uff0c\u8bf7\u67e5\u627e\u90a3\u5c01\u90ae\u4ef6\u3002"
        ),
        "page_held": (
            "\u5df2\u4fdd\u5b58\u3002\u90e8\u5206\u66f4\u6539\u4f1a\u8ba9\u60a8\u66f4\u5bb9"
            "\u6613\u88ab\u8bc6\u522b\u6216\u8054\u7cfb\uff1a\u6211\u4eec\u5df2\u901a\u8fc7"
            "\u7535\u5b50\u90ae\u4ef6\u5411\u60a8\u53d1\u9001\u786e\u8ba4\u94fe\u63a5\uff0c"
            "\u4ee5\u514d\u6301\u6709\u8f6c\u53d1\u90ae\u4ef6\u7684\u4eba\u66ff\u60a8\u505a"
            "\u51fa\u8fd9\u4e9b\u66f4\u6539\u3002"
        ),
        "page_saved": "\u5df2\u4fdd\u5b58",
        "page_saved_body": "\u60a8\u7684\u504f\u597d\u8bbe\u7f6e\u5df2\u4fdd\u5b58\u3002",
        "page_confirm_title": "\u786e\u8ba4\u60a8\u7684\u66f4\u6539",
        "page_confirm_lead": "\u60a8\u8bf7\u6c42\u4e86\u4ee5\u4e0b\u66f4\u6539\uff1a",
        "page_changes_replaced": (
            "\u60a8\u6253\u5f00\u6b64\u9875\u9762\u540e\uff0c\u6b64\u94fe\u63a5\u8981\u786e\u8ba4"
            "\u7684\u66f4\u6539\u5df2\u6709\u53d8\u52a8\u3002\u8bf7\u518d\u6b21\u6838\u5bf9\uff1a"
        ),
        "page_confirm_button": "\u786e\u8ba4",
        "page_changes_saved": "\u60a8\u7684\u66f4\u6539\u5df2\u4fdd\u5b58\u3002",
        "page_none": "\uff08\u65e0\uff09",
        "page_discreet_off": (
            "\u5173\u95ed\u9690\u79c1\u6a21\u5f0f\uff1a\u90ae\u4ef6\u4e3b\u9898\u548c\u77ed"
            "\u4fe1\u53ef\u80fd\u63d0\u53ca\u5177\u4f53\u8bae\u9898"
        ),
        "page_email_on": "\u5f00\u542f\u7535\u5b50\u90ae\u4ef6",
        "page_sms_on": "\u5f00\u542f\u77ed\u4fe1",
        "page_erase_lead": (
            "\u8fd9\u5c06\u4ece\u6240\u6709 Kinship "
            "\u670d\u52a1\u4e2d\u5220\u9664\u60a8\u7684\u8054\u7cfb\u65b9\u5f0f\u548c\u504f"
            "\u597d\u8bbe\u7f6e\uff0c\u4e14\u65e0\u6cd5\u64a4\u9500\u3002"
        ),
        "page_erased": "\u5df2\u5220\u9664",
        "page_erased_body": "\u60a8\u7684\u6570\u636e\u5df2\u88ab\u5220\u9664\u3002",
        "page_gone": "\u6b64\u94fe\u63a5\u5df2\u5931\u6548\u3002",
    },
    "zh-Hant": {
        "page_language": "\u8a0a\u606f\u8a9e\u8a00",
        "page_prefs_title": "\u60a8\u7684\u504f\u597d\u8a2d\u5b9a",
        "page_email_from": "{org} \u5bc4\u81f3 {address} \u7684\u96fb\u5b50\u90f5\u4ef6\u3002",
        "page_unsubscribe_button": "\u53d6\u6d88\u8a02\u95b1\u9019\u4e9b\u96fb\u5b50\u90f5\u4ef6",
        "page_email": "\u96fb\u5b50\u90f5\u4ef6",
        "page_sms": "\u7c21\u8a0a",
        "page_stopped": (
            "\u6b64\u865f\u78bc\u5df2\u56de\u8986 "
            "STOP\uff0c\u56e0\u6b64\u4e0d\u6703\u518d\u50b3\u9001\u7c21\u8a0a\u7d66\u5b83"
            "\u3002\u5982\u9700\u91cd\u65b0\u63a5\u6536\uff0c\u8acb\u50b3\u9001 START "
            "\u81f3\u6211\u5011\u7684\u865f\u78bc\u3002"
        ),
        "page_discreet": (
            "\u96b1\u79c1\u6a21\u5f0f\uff1a\u7c21\u8a0a\u548c\u90f5\u4ef6\u4e3b\u65e8\u4e0d"
            "\u63d0\u53ca\u5177\u9ad4\u8b70\u984c"
        ),
        "page_name": "\u6211\u5011\u5c0d\u60a8\u7684\u7a31\u547c",
        "page_pronouns": "\u60a8\u7684\u4ee3\u540d\u8a5e",
        "page_unchanged": "\u4e0d\u8b8a",
        "page_clear_names": (
            "\u7a31\u547c\u6211\u6642\u4e0d\u4f7f\u7528\u540d\u5b57\u6216\u4ee3\u540d\u8a5e"
        ),
        "page_names_note": (
            "\u6b64\u9801\u9762\u4e0d\u986f\u793a\u6211\u5011\u8a18\u9304\u7684\u540d\u5b57"
            "\u548c\u4ee3\u540d\u8a5e\u3002\u7559\u7a7a\u5373\u4fdd\u6301\u4e0d\u8b8a\u3002"
        ),
        "page_share": (
            "\u8207\u6211\u7c3d\u540d\u6642\u9078\u64c7\u7684\u5408\u4f5c\u7d44\u7e54\u5206"
            "\u4eab\u6211\u7684\u806f\u7d61\u65b9\u5f0f"
        ),
        "page_share_note": (
            "\u53d6\u6d88\u52fe\u9078\u5373\u505c\u6b62\u5206\u4eab\uff1a\u6211\u5011\u6703"
            "\u901a\u77e5\u6bcf\u500b\u7d44\u7e54\u522a\u9664\u6211\u5011\u50b3\u9001\u7d66"
            "\u5b83\u7684\u8cc7\u6599\u3002"
        ),
        "page_save": "\u5132\u5b58",
        "page_erase": "\u522a\u9664\u6211\u7684\u8cc7\u6599",
        "page_erase_note": (
            "\u6211\u5011\u6703\u4ee5\u96fb\u5b50\u90f5\u4ef6\u5bc4\u9001\u78ba\u8a8d\u9023"
            "\u7d50\u7d66\u60a8\u3002"
        ),
        "page_not_saved": "\u672a\u5132\u5b58",
        "page_too_long": (
            "{label}\uff1a\u6700\u591a {limit} "
            "\u500b\u5b57\u5143\uff0c\u4e14\u4e0d\u80fd\u5305\u542b\u63a7\u5236\u5b57\u5143"
            "\u3002"
        ),
        "page_check_email": "\u8acb\u67e5\u770b\u96fb\u5b50\u90f5\u4ef6",
        "page_erase_sent": (
            "\u6211\u5011\u5df2\u5bc4\u9001\u78ba\u8a8d\u9023\u7d50\u7d66\u60a8\u3002\u6bcf"
            "\u5c0f\u6642\u6700\u591a\u5bc4\u9001\u4e00\u5c01\uff1a\u5982\u679c\u60a8\u525b"
            "\u525b\u63d0\u51fa\u8acb\u6c42\uff0c\u8acb\u67e5\u627e\u90a3\u5c01\u90f5\u4ef6"
            "\u3002"
        ),
        "page_held": (
            "\u5df2\u5132\u5b58\u3002\u90e8\u5206\u8b8a\u66f4\u6703\u8b93\u60a8\u66f4\u5bb9"
            "\u6613\u88ab\u8b58\u5225\u6216\u806f\u7d61\uff1a\u6211\u5011\u5df2\u4ee5\u96fb"
            "\u5b50\u90f5\u4ef6\u5bc4\u9001\u78ba\u8a8d\u9023\u7d50\u7d66\u60a8\uff0c\u4ee5"
            "\u514d\u6301\u6709\u8f49\u5bc4\u90f5\u4ef6\u7684\u4eba\u66ff\u60a8\u505a\u51fa"
            "\u9019\u4e9b\u8b8a\u66f4\u3002"
        ),
        "page_saved": "\u5df2\u5132\u5b58",
        "page_saved_body": "\u60a8\u7684\u504f\u597d\u8a2d\u5b9a\u5df2\u5132\u5b58\u3002",
        "page_confirm_title": "\u78ba\u8a8d\u60a8\u7684\u8b8a\u66f4",
        "page_confirm_lead": "\u60a8\u8981\u6c42\u4e86\u4ee5\u4e0b\u8b8a\u66f4\uff1a",
        "page_changes_replaced": (
            "\u60a8\u958b\u555f\u6b64\u9801\u9762\u5f8c\uff0c\u6b64\u9023\u7d50\u8981\u78ba\u8a8d"
            "\u7684\u8b8a\u66f4\u5df2\u6709\u66f4\u52d5\u3002\u8acb\u518d\u6b21\u6838\u5c0d\uff1a"
        ),
        "page_confirm_button": "\u78ba\u8a8d",
        "page_changes_saved": "\u60a8\u7684\u8b8a\u66f4\u5df2\u5132\u5b58\u3002",
        "page_none": "\uff08\u7121\uff09",
        "page_discreet_off": (
            "\u95dc\u9589\u96b1\u79c1\u6a21\u5f0f\uff1a\u90f5\u4ef6\u4e3b\u65e8\u548c\u7c21"
            "\u8a0a\u53ef\u80fd\u63d0\u53ca\u5177\u9ad4\u8b70\u984c"
        ),
        "page_email_on": "\u958b\u555f\u96fb\u5b50\u90f5\u4ef6",
        "page_sms_on": "\u958b\u555f\u7c21\u8a0a",
        "page_erase_lead": (
            "\u9019\u5c07\u5f9e\u6240\u6709 Kinship "
            "\u670d\u52d9\u4e2d\u522a\u9664\u60a8\u7684\u806f\u7d61\u65b9\u5f0f\u548c\u504f"
            "\u597d\u8a2d\u5b9a\uff0c\u4e14\u7121\u6cd5\u5fa9\u539f\u3002"
        ),
        "page_erased": "\u5df2\u522a\u9664",
        "page_erased_body": "\u60a8\u7684\u8cc7\u6599\u5df2\u88ab\u522a\u9664\u3002",
        "page_gone": "\u6b64\u9023\u7d50\u5df2\u5931\u6548\u3002",
    },
    "ja": {
        "page_language": "\u30e1\u30c3\u30bb\u30fc\u30b8\u306e\u8a00\u8a9e",
        "page_prefs_title": "\u5404\u7a2e\u8a2d\u5b9a",
        "page_email_from": "{org} \u304b\u3089 {address} \u3078\u306e\u30e1\u30fc\u30eb\u3002",
        "page_unsubscribe_button": (
            "\u3053\u308c\u3089\u306e\u30e1\u30fc\u30eb\u306e\u914d\u4fe1\u3092\u505c\u6b62"
            "\u3059\u308b"
        ),
        "page_email": "\u30e1\u30fc\u30eb",
        "page_sms": "SMS",
        "page_stopped": (
            "\u3053\u306e\u756a\u53f7\u306f STOP "
            "\u3068\u8fd4\u4fe1\u3057\u305f\u305f\u3081\u3001SMS "
            "\u306f\u9001\u4fe1\u3055\u308c\u307e\u305b\u3093\u3002\u518d\u3073\u53d7\u3051"
            "\u53d6\u308b\u306b\u306f\u3001\u5f53\u65b9\u306e\u756a\u53f7\u306b START "
            "\u3068\u9001\u4fe1\u3057\u3066\u304f\u3060\u3055\u3044\u3002"
        ),
        "page_discreet": (
            "\u63a7\u3048\u3081\u30e2\u30fc\u30c9\uff1aSMS "
            "\u3068\u30e1\u30fc\u30eb\u306e\u4ef6\u540d\u3067\u6d3b\u52d5\u5185\u5bb9\u306b"
            "\u89e6\u308c\u307e\u305b\u3093"
        ),
        "page_name": "\u304a\u547c\u3073\u3059\u308b\u304a\u540d\u524d",
        "page_pronouns": "\u4ee3\u540d\u8a5e",
        "page_unchanged": "\u5909\u66f4\u306a\u3057",
        "page_clear_names": (
            "\u540d\u524d\u3084\u4ee3\u540d\u8a5e\u3092\u4f7f\u308f\u305a\u306b\u547c\u3073"
            "\u304b\u3051\u308b"
        ),
        "page_names_note": (
            "\u767b\u9332\u3055\u308c\u3066\u3044\u308b\u304a\u540d\u524d\u3068\u4ee3\u540d"
            "\u8a5e\u306f\u3053\u306e\u30da\u30fc\u30b8\u306b\u306f\u8868\u793a\u3055\u308c"
            "\u307e\u305b\u3093\u3002\u7a7a\u6b04\u306e\u307e\u307e\u306b\u3059\u308b\u3068"
            "\u5909\u66f4\u3055\u308c\u307e\u305b\u3093\u3002"
        ),
        "page_share": (
            "\u7f72\u540d\u6642\u306b\u9078\u3093\u3060\u30d1\u30fc\u30c8\u30ca\u30fc\u56e3"
            "\u4f53\u3068\u9023\u7d61\u5148\u3092\u5171\u6709\u3059\u308b"
        ),
        "page_share_note": (
            "\u30c1\u30a7\u30c3\u30af\u3092\u5916\u3059\u3068\u5171\u6709\u3092\u505c\u6b62"
            "\u3057\u3001\u5404\u56e3\u4f53\u306b\u9001\u3063\u305f\u60c5\u5831\u306e\u524a"
            "\u9664\u3092\u4f9d\u983c\u3057\u307e\u3059\u3002"
        ),
        "page_save": "\u4fdd\u5b58",
        "page_erase": "\u30c7\u30fc\u30bf\u3092\u6d88\u53bb\u3059\u308b",
        "page_erase_note": (
            "\u78ba\u8a8d\u7528\u306e\u30ea\u30f3\u30af\u3092\u30e1\u30fc\u30eb\u3067\u304a"
            "\u9001\u308a\u3057\u307e\u3059\u3002"
        ),
        "page_not_saved": "\u4fdd\u5b58\u3055\u308c\u307e\u305b\u3093\u3067\u3057\u305f",
        "page_too_long": (
            "{label}\uff1a{limit} "
            "\u6587\u5b57\u4ee5\u5185\u3067\u3001\u5236\u5fa1\u6587\u5b57\u306f\u4f7f\u3048"
            "\u307e\u305b\u3093\u3002"
        ),
        "page_check_email": "\u30e1\u30fc\u30eb\u3092\u3054\u78ba\u8a8d\u304f\u3060\u3055\u3044",
        "page_erase_sent": (
            "\u78ba\u8a8d\u7528\u306e\u30ea\u30f3\u30af\u3092\u304a\u9001\u308a\u3057\u307e"
            "\u3057\u305f\u3002\u9001\u4fe1\u306f1\u6642\u9593\u306b1\u901a\u307e\u3067"
            "\u3067\u3059\u3002\u5c11\u3057\u524d\u306b\u4f9d\u983c\u3055\u308c\u305f\u5834"
            "\u5408\u306f\u3001\u305d\u306e\u30e1\u30fc\u30eb\u3092\u304a\u63a2\u3057\u304f"
            "\u3060\u3055\u3044\u3002"
        ),
        "page_held": (
            "\u4fdd\u5b58\u3057\u307e\u3057\u305f\u3002\u4e00\u90e8\u306e\u5909\u66f4\u306f"
            "\u3042\u306a\u305f\u3092\u7279\u5b9a\u3057\u305f\u308a\u9023\u7d61\u3057\u305f"
            "\u308a\u3057\u3084\u3059\u304f\u3059\u308b\u305f\u3081\u3001\u78ba\u8a8d\u7528"
            "\u306e\u30ea\u30f3\u30af\u3092\u30e1\u30fc\u30eb\u3067\u304a\u9001\u308a\u3057"
            "\u307e\u3057\u305f\u3002\u8ee2\u9001\u3055\u308c\u305f\u30e1\u30fc\u30eb\u3092"
            "\u6301\u3064\u4eba\u304c\u3042\u306a\u305f\u306b\u4ee3\u308f\u3063\u3066\u5909"
            "\u66f4\u3067\u304d\u306a\u3044\u3088\u3046\u306b\u3059\u308b\u305f\u3081\u3067"
            "\u3059\u3002"
        ),
        "page_saved": "\u4fdd\u5b58\u3057\u307e\u3057\u305f",
        "page_saved_body": "\u8a2d\u5b9a\u3092\u4fdd\u5b58\u3057\u307e\u3057\u305f\u3002",
        "page_confirm_title": "\u5909\u66f4\u306e\u78ba\u8a8d",
        "page_confirm_lead": "\u6b21\u306e\u5909\u66f4\u3092\u3054\u4f9d\u983c\u3044\u305f\u3060"
        "\u304d\u307e\u3057\u305f\uff1a",
        "page_changes_replaced": (
            "\u30da\u30fc\u30b8\u3092\u958b\u3044\u305f\u5f8c\u3067\u3001\u3053\u306e\u30ea\u30f3"
            "\u30af\u3067\u78ba\u5b9a\u3059\u308b\u5909\u66f4\u304c\u5909\u308f\u308a\u307e\u3057"
            "\u305f\u3002\u3082\u3046\u4e00\u5ea6\u3054\u78ba\u8a8d\u304f\u3060\u3055\u3044\uff1a"
        ),
        "page_confirm_button": "\u78ba\u8a8d\u3059\u308b",
        "page_changes_saved": "\u5909\u66f4\u3092\u4fdd\u5b58\u3057\u307e\u3057\u305f\u3002",
        "page_none": "\uff08\u306a\u3057\uff09",
        "page_discreet_off": (
            "\u63a7\u3048\u3081\u30e2\u30fc\u30c9\u3092\u30aa\u30d5\uff1a\u4ef6\u540d\u3084 "
            "SMS "
            "\u3067\u6d3b\u52d5\u5185\u5bb9\u306b\u89e6\u308c\u308b\u3053\u3068\u304c\u3042"
            "\u308a\u307e\u3059"
        ),
        "page_email_on": "\u30e1\u30fc\u30eb\u3092\u53d7\u3051\u53d6\u308b",
        "page_sms_on": "SMS \u3092\u53d7\u3051\u53d6\u308b",
        "page_erase_lead": (
            "\u3059\u3079\u3066\u306e Kinship "
            "\u30b5\u30fc\u30d3\u30b9\u304b\u3089\u9023\u7d61\u5148\u3068\u8a2d\u5b9a\u3092"
            "\u524a\u9664\u3057\u307e\u3059\u3002\u5143\u306b\u623b\u3059\u3053\u3068\u306f"
            "\u3067\u304d\u307e\u305b\u3093\u3002"
        ),
        "page_erased": "\u6d88\u53bb\u3057\u307e\u3057\u305f",
        "page_erased_body": (
            "\u3042\u306a\u305f\u306e\u30c7\u30fc\u30bf\u306f\u6d88\u53bb\u3055\u308c\u307e"
            "\u3057\u305f\u3002"
        ),
        "page_gone": "\u3053\u306e\u30ea\u30f3\u30af\u306f\u7121\u52b9\u3067\u3059\u3002",
    },
    "ko": {
        "page_language": "\uba54\uc2dc\uc9c0 \uc5b8\uc5b4",
        "page_prefs_title": "\ud658\uacbd\uc124\uc815",
        "page_email_from": (
            "{org}\uc5d0\uc11c {address}(\uc73c)\ub85c \ubcf4\ub0b4\ub294 "
            "\uc774\uba54\uc77c\uc785\ub2c8\ub2e4."
        ),
        "page_unsubscribe_button": "\uc774 \uc774\uba54\uc77c \uc218\uc2e0 \uac70\ubd80",
        "page_email": "\uc774\uba54\uc77c",
        "page_sms": "\ubb38\uc790 \uba54\uc2dc\uc9c0",
        "page_stopped": (
            "\uc774 \ubc88\ud638\ub294 STOP\uc73c\ub85c \ub2f5\uc7a5\ud558\uc5ec "
            "\ubb38\uc790\uac00 \ubc1c\uc1a1\ub418\uc9c0 \uc54a\uc2b5\ub2c8\ub2e4. "
            "\ub2e4\uc2dc \ubc1b\uc73c\uc2dc\ub824\uba74 \uc800\ud76c \ubc88\ud638\ub85c "
            "START\ub97c \ubcf4\ub0b4 \uc8fc\uc138\uc694."
        ),
        "page_discreet": (
            "\ube44\uacf5\uac1c \ubaa8\ub4dc: \ubb38\uc790\uc640 \uc774\uba54\uc77c "
            "\uc81c\ubaa9\uc5d0 \ud65c\ub3d9 \ub0b4\uc6a9\uc744 \ubc1d\ud788\uc9c0 "
            "\uc54a\uc2b5\ub2c8\ub2e4"
        ),
        "page_name": "\ubd88\ub7ec \ub4dc\ub9b4 \uc774\ub984",
        "page_pronouns": "\ub300\uba85\uc0ac",
        "page_unchanged": "\ubcc0\uacbd \uc5c6\uc74c",
        "page_clear_names": (
            "\uc774\ub984\uc774\ub098 \ub300\uba85\uc0ac \uc5c6\uc774 \ubd88\ub7ec "
            "\uc8fc\uc138\uc694"
        ),
        "page_names_note": (
            "\uc800\uc7a5\ub41c \uc774\ub984\uacfc \ub300\uba85\uc0ac\ub294 \uc774 "
            "\ud398\uc774\uc9c0\uc5d0 \ud45c\uc2dc\ub418\uc9c0 \uc54a\uc2b5\ub2c8\ub2e4. "
            "\uce78\uc744 \ube44\uc6cc \ub450\uba74 \uadf8\ub300\ub85c "
            "\uc720\uc9c0\ub429\ub2c8\ub2e4."
        ),
        "page_share": (
            "\uc11c\uba85\ud560 \ub54c \uc120\ud0dd\ud55c \ud30c\ud2b8\ub108 "
            "\ub2e8\uccb4\uc640 \ub0b4 \uc5f0\ub77d\ucc98 \uacf5\uc720"
        ),
        "page_share_note": (
            "\uccb4\ud06c\ub97c \ud574\uc81c\ud558\uba74 \uacf5\uc720\uac00 "
            "\uc911\ub2e8\ub418\uace0, \uac01 \ub2e8\uccb4\uc5d0 \ubcf4\ub0b8 "
            "\uc815\ubcf4\ub97c \uc0ad\uc81c\ud558\ub3c4\ub85d \uc54c\ub9bd\ub2c8\ub2e4."
        ),
        "page_save": "\uc800\uc7a5",
        "page_erase": "\ub0b4 \ub370\uc774\ud130 \uc0ad\uc81c",
        "page_erase_note": (
            "\ud655\uc778 \ub9c1\ud06c\ub97c \uc774\uba54\uc77c\ub85c \ubcf4\ub0b4 "
            "\ub4dc\ub9bd\ub2c8\ub2e4."
        ),
        "page_not_saved": "\uc800\uc7a5\ub418\uc9c0 \uc54a\uc74c",
        "page_too_long": (
            "{label}: \ucd5c\ub300 {limit}\uc790, \uc81c\uc5b4 \ubb38\uc790\ub294 "
            "\uc0ac\uc6a9\ud560 \uc218 \uc5c6\uc2b5\ub2c8\ub2e4."
        ),
        "page_check_email": "\uc774\uba54\uc77c\uc744 \ud655\uc778\ud574 \uc8fc\uc138\uc694",
        "page_erase_sent": (
            "\ud655\uc778 \ub9c1\ud06c\ub97c \ubcf4\ub0b4 \ub4dc\ub838\uc2b5\ub2c8\ub2e4. "
            "\ud55c \uc2dc\uac04\uc5d0 \ud55c \ud1b5\uae4c\uc9c0\ub9cc "
            "\ubcf4\ub0c5\ub2c8\ub2e4. \uc870\uae08 \uc804\uc5d0 "
            "\uc694\uccad\ud558\uc168\ub2e4\uba74 \uadf8 \uc774\uba54\uc77c\uc744 "
            "\ucc3e\uc544 \uc8fc\uc138\uc694."
        ),
        "page_held": (
            "\uc800\uc7a5\ub418\uc5c8\uc2b5\ub2c8\ub2e4. \uc77c\ubd80 \ubcc0\uacbd "
            "\uc0ac\ud56d\uc740 \uadc0\ud558\ub97c \uc2dd\ubcc4\ud558\uac70\ub098 "
            "\uc5f0\ub77d\ud558\uae30 \uc27d\uac8c \ub9cc\ub4e4\uae30 \ub54c\ubb38\uc5d0 "
            "\ud655\uc778 \ub9c1\ud06c\ub97c \uc774\uba54\uc77c\ub85c \ubcf4\ub0b4 "
            "\ub4dc\ub838\uc2b5\ub2c8\ub2e4. \uc804\ub2ec\ub41c \uc774\uba54\uc77c\uc744 "
            "\uac00\uc9c4 \uc0ac\ub78c\uc774 \ub300\uc2e0 \ubcc0\uacbd\ud560 \uc218 "
            "\uc5c6\ub3c4\ub85d \ud558\uae30 \uc704\ud568\uc785\ub2c8\ub2e4."
        ),
        "page_saved": "\uc800\uc7a5\ub428",
        "page_saved_body": "\uc124\uc815\uc774 \uc800\uc7a5\ub418\uc5c8\uc2b5\ub2c8\ub2e4.",
        "page_confirm_title": "\ubcc0\uacbd \uc0ac\ud56d \ud655\uc778",
        "page_confirm_lead": (
            "\ub2e4\uc74c \ubcc0\uacbd\uc744 \uc694\uccad\ud558\uc168\uc2b5\ub2c8\ub2e4:"
        ),
        "page_changes_replaced": (
            "\ud398\uc774\uc9c0\ub97c \uc5f0 \ub4a4 \uc774 \ub9c1\ud06c\ub85c \ud655\uc778\ud560 "
            "\ubcc0\uacbd \ub0b4\uc6a9\uc774 \ubc14\ub00c\uc5c8\uc2b5\ub2c8\ub2e4. \ub2e4\uc2dc "
            "\ud655\uc778\ud574 \uc8fc\uc138\uc694:"
        ),
        "page_confirm_button": "\ud655\uc778",
        "page_changes_saved": (
            "\ubcc0\uacbd \uc0ac\ud56d\uc774 \uc800\uc7a5\ub418\uc5c8\uc2b5\ub2c8\ub2e4."
        ),
        "page_none": "(\uc5c6\uc74c)",
        "page_discreet_off": (
            "\ube44\uacf5\uac1c \ubaa8\ub4dc \ub044\uae30: \uc81c\ubaa9\uacfc "
            "\ubb38\uc790\uc5d0 \ud65c\ub3d9 \ub0b4\uc6a9\uc774 \ub098\ud0c0\ub0a0 \uc218 "
            "\uc788\uc2b5\ub2c8\ub2e4"
        ),
        "page_email_on": "\uc774\uba54\uc77c \ubc1b\uae30",
        "page_sms_on": "\ubb38\uc790 \uba54\uc2dc\uc9c0 \ubc1b\uae30",
        "page_erase_lead": (
            "\ubaa8\ub4e0 Kinship \uc11c\ube44\uc2a4\uc5d0\uc11c \uc5f0\ub77d\ucc98\uc640 "
            "\uc124\uc815\uc744 \uc0ad\uc81c\ud569\ub2c8\ub2e4. \ub418\ub3cc\ub9b4 \uc218 "
            "\uc5c6\uc2b5\ub2c8\ub2e4."
        ),
        "page_erased": "\uc0ad\uc81c\ub428",
        "page_erased_body": "\ub370\uc774\ud130\uac00 \uc0ad\uc81c\ub418\uc5c8\uc2b5\ub2c8\ub2e4.",
        "page_gone": (
            "\uc774 \ub9c1\ud06c\ub294 \ub354 \uc774\uc0c1 \uc720\ud6a8\ud558\uc9c0 "
            "\uc54a\uc2b5\ub2c8\ub2e4."
        ),
    },
    "vi": {
        "page_language": "Ng\u00f4n ng\u1eef c\u1ee7a tin nh\u1eafn",
        "page_prefs_title": "T\u00f9y ch\u1ecdn c\u1ee7a b\u1ea1n",
        "page_email_from": "Email t\u1eeb {org} g\u1eedi \u0111\u1ebfn {address}.",
        "page_unsubscribe_button": (
            "H\u1ee7y \u0111\u0103ng k\u00fd nh\u1eadn c\u00e1c email n\u00e0y"
        ),
        "page_email": "Email",
        "page_sms": "Tin nh\u1eafn SMS",
        "page_stopped": (
            "S\u1ed1 n\u00e0y \u0111\u00e3 tr\u1ea3 l\u1eddi STOP n\u00ean kh\u00f4ng "
            "nh\u1eadn tin nh\u1eafn n\u1eefa. Nh\u1eafn START \u0111\u1ebfn s\u1ed1 "
            "c\u1ee7a ch\u00fang t\u00f4i \u0111\u1ec3 nh\u1eadn l\u1ea1i."
        ),
        "page_discreet": (
            "Ch\u1ebf \u0111\u1ed9 k\u00edn \u0111\u00e1o: tin nh\u1eafn v\u00e0 ti\u00eau "
            "\u0111\u1ec1 kh\u00f4ng n\u00eau t\u00ean v\u1ea5n \u0111\u1ec1"
        ),
        "page_name": "T\u00ean ch\u00fang t\u00f4i d\u00f9ng \u0111\u1ec3 ch\u00e0o b\u1ea1n",
        "page_pronouns": "\u0110\u1ea1i t\u1eeb c\u1ee7a b\u1ea1n",
        "page_unchanged": "kh\u00f4ng \u0111\u1ed5i",
        "page_clear_names": (
            "Ch\u00e0o t\u00f4i m\u00e0 kh\u00f4ng d\u00f9ng t\u00ean hay \u0111\u1ea1i t\u1eeb"
        ),
        "page_names_note": (
            "T\u00ean v\u00e0 \u0111\u1ea1i t\u1eeb ch\u00fang t\u00f4i l\u01b0u kh\u00f4ng "
            "hi\u1ec3n th\u1ecb tr\u00ean trang n\u00e0y. \u0110\u1ec3 tr\u1ed1ng m\u1ed9t "
            "\u00f4 \u0111\u1ec3 gi\u1eef nguy\u00ean."
        ),
        "page_share": (
            "Chia s\u1ebb th\u00f4ng tin li\u00ean l\u1ea1c c\u1ee7a t\u00f4i v\u1edbi "
            "c\u00e1c t\u1ed5 ch\u1ee9c \u0111\u1ed1i t\u00e1c t\u00f4i \u0111\u00e3 "
            "ch\u1ecdn khi k\u00fd"
        ),
        "page_share_note": (
            "B\u1ecf ch\u1ecdn \u0111\u1ec3 d\u1eebng: m\u1ed7i t\u1ed5 ch\u1ee9c s\u1ebd "
            "\u0111\u01b0\u1ee3c y\u00eau c\u1ea7u x\u00f3a th\u00f4ng tin ch\u00fang "
            "t\u00f4i \u0111\u00e3 g\u1eedi."
        ),
        "page_save": "L\u01b0u",
        "page_erase": "X\u00f3a d\u1eef li\u1ec7u c\u1ee7a t\u00f4i",
        "page_erase_note": (
            "Ch\u00fang t\u00f4i s\u1ebd g\u1eedi email cho b\u1ea1n m\u1ed9t li\u00ean "
            "k\u1ebft \u0111\u1ec3 x\u00e1c nh\u1eadn."
        ),
        "page_not_saved": "Ch\u01b0a l\u01b0u",
        "page_too_long": (
            "{label}: t\u1ed1i \u0111a {limit} k\u00fd t\u1ef1, kh\u00f4ng c\u00f3 k\u00fd "
            "t\u1ef1 \u0111i\u1ec1u khi\u1ec3n."
        ),
        "page_check_email": "H\u00e3y ki\u1ec3m tra email c\u1ee7a b\u1ea1n",
        "page_erase_sent": (
            "Ch\u00fang t\u00f4i \u0111\u00e3 g\u1eedi cho b\u1ea1n m\u1ed9t li\u00ean "
            "k\u1ebft \u0111\u1ec3 x\u00e1c nh\u1eadn. M\u1ed7i gi\u1edd ch\u00fang t\u00f4i "
            "g\u1eedi t\u1ed1i \u0111a m\u1ed9t email: n\u1ebfu b\u1ea1n v\u1eeba y\u00eau "
            "c\u1ea7u, h\u00e3y t\u00ecm email \u0111\u00f3."
        ),
        "page_held": "\u0110\u00e3 l\u01b0u. M\u1ed9t s\u1ed1 thay \u0111\u1ed5i khi\u1ebfn b"
        "\u1ea1n d\u1ec5 b\u1ecb nh\u1eadn di\u1ec7n ho\u1eb7c li\u00ean l\u1ea1c h\u01a1n: ch"
        "\u00fang t\u00f4i \u0111\u00e3 g\u1eedi email cho b\u1ea1n m\u1ed9t li\u00ean k\u1ebft "
        "\u0111\u1ec3 x\u00e1c nh\u1eadn, \u0111\u1ec3 kh\u00f4ng ai c\u00f3 email \u0111\u01b0"
        "\u1ee3c chuy\u1ec3n ti\u1ebfp c\u00f3 th\u1ec3 thay \u0111\u1ed5i thay cho b\u1ea1n.",
        "page_saved": "\u0110\u00e3 l\u01b0u",
        "page_saved_body": (
            "T\u00f9y ch\u1ecdn c\u1ee7a b\u1ea1n \u0111\u00e3 \u0111\u01b0\u1ee3c l\u01b0u."
        ),
        "page_confirm_title": "X\u00e1c nh\u1eadn thay \u0111\u1ed5i",
        "page_confirm_lead": (
            "B\u1ea1n \u0111\u00e3 y\u00eau c\u1ea7u nh\u1eefng thay \u0111\u1ed5i sau:"
        ),
        "page_changes_replaced": (
            "Nh\u1eefng thay \u0111\u1ed5i m\u00e0 li\u00ean k\u1ebft n\u00e0y x\u00e1c nh\u1eadn"
            " \u0111\u00e3 kh\u00e1c \u0111i sau khi b\u1ea1n m\u1edf trang. Vui l\u00f2ng ki"
            "\u1ec3m tra l\u1ea1i:"
        ),
        "page_confirm_button": "X\u00e1c nh\u1eadn",
        "page_changes_saved": (
            "C\u00e1c thay \u0111\u1ed5i c\u1ee7a b\u1ea1n \u0111\u00e3 \u0111\u01b0\u1ee3c "
            "l\u01b0u."
        ),
        "page_none": "(kh\u00f4ng c\u00f3)",
        "page_discreet_off": (
            "T\u1eaft ch\u1ebf \u0111\u1ed9 k\u00edn \u0111\u00e1o: ti\u00eau \u0111\u1ec1 "
            "v\u00e0 tin nh\u1eafn c\u00f3 th\u1ec3 n\u00eau t\u00ean v\u1ea5n \u0111\u1ec1"
        ),
        "page_email_on": "B\u1eadt email",
        "page_sms_on": "B\u1eadt tin nh\u1eafn SMS",
        "page_erase_lead": (
            "Thao t\u00e1c n\u00e0y x\u00f3a th\u00f4ng tin li\u00ean l\u1ea1c v\u00e0 "
            "t\u00f9y ch\u1ecdn c\u1ee7a b\u1ea1n kh\u1ecfi m\u1ecdi d\u1ecbch v\u1ee5 "
            "Kinship. Kh\u00f4ng th\u1ec3 ho\u00e0n t\u00e1c."
        ),
        "page_erased": "\u0110\u00e3 x\u00f3a",
        "page_erased_body": (
            "D\u1eef li\u1ec7u c\u1ee7a b\u1ea1n \u0111\u00e3 \u0111\u01b0\u1ee3c x\u00f3a."
        ),
        "page_gone": "Li\u00ean k\u1ebft n\u00e0y kh\u00f4ng c\u00f2n hi\u1ec7u l\u1ef1c.",
    },
    "tl": {
        "page_language": "Wika ng mga mensahe",
        "page_prefs_title": "Iyong mga preference",
        "page_email_from": "Email mula sa {org} para sa {address}.",
        "page_unsubscribe_button": "Mag-unsubscribe sa mga email na ito",
        "page_email": "Email",
        "page_sms": "Mga text message",
        "page_stopped": (
            "Sumagot ng STOP ang numerong ito, kaya walang text na ipinapadala rito. I-text "
            "ang START sa aming numero para makatanggap muli."
        ),
        "page_discreet": "Discreet mode: mga text at subject na hindi binabanggit ang adbokasiya",
        "page_name": "Ang pangalang ginagamit namin sa pagbati sa iyo",
        "page_pronouns": "Iyong mga panghalip",
        "page_unchanged": "walang pagbabago",
        "page_clear_names": "Batiin ako nang walang pangalan o panghalip",
        "page_names_note": (
            "Hindi ipinapakita sa pahinang ito ang pangalan at mga panghalip na hawak namin. "
            "Iwanang blangko ang isang field para hindi ito mabago."
        ),
        "page_share": (
            "Ibahagi ang aking contact details sa mga partner na organisasyong pinili ko "
            "nang pumirma"
        ),
        "page_share_note": (
            "Alisin ang tsek para itigil: sasabihan ang bawat isa na burahin ang mga "
            "detalyeng ipinadala namin."
        ),
        "page_save": "I-save",
        "page_erase": "Burahin ang aking data",
        "page_erase_note": "Magpapadala kami sa iyo ng link sa email para kumpirmahin.",
        "page_not_saved": "Hindi na-save",
        "page_too_long": "{label}: hanggang {limit} character lamang, at walang control character.",
        "page_check_email": "Tingnan ang iyong email",
        "page_erase_sent": (
            "Nagpadala kami sa iyo ng link para kumpirmahin. Isa lang kada oras ang "
            "ipinapadala namin: kung kanina ka lang humiling, hanapin ang email na iyon."
        ),
        "page_held": (
            "Na-save. Ang ilan sa iyong mga pagbabago ay nagpapadali na makilala o makontak "
            "ka: nagpadala kami sa iyo ng link sa email para kumpirmahin ang mga ito, para "
            "walang sinumang may hawak ng ipinasang email ang makagawa nito para sa iyo."
        ),
        "page_saved": "Na-save",
        "page_saved_body": "Na-save ang iyong mga preference.",
        "page_confirm_title": "Kumpirmahin ang iyong mga pagbabago",
        "page_confirm_lead": "Hiniling mo ang mga pagbabagong ito:",
        "page_changes_replaced": (
            "Nagbago ang kinukumpirma ng link na ito matapos mong buksan ito. Pakitingnan muli:"
        ),
        "page_confirm_button": "Kumpirmahin",
        "page_changes_saved": "Na-save ang iyong mga pagbabago.",
        "page_none": "(wala)",
        "page_discreet_off": "Naka-off ang discreet mode: maaaring banggitin ng mga subject at tex"
        "t ang adbokasiya",
        "page_email_on": "Naka-on ang email",
        "page_sms_on": "Naka-on ang mga text message",
        "page_erase_lead": (
            "Binubura nito ang iyong contact details at mga preference sa bawat serbisyo ng "
            "Kinship. Hindi na ito maibabalik."
        ),
        "page_erased": "Nabura na",
        "page_erased_body": "Nabura na ang iyong data.",
        "page_gone": "Hindi na balido ang link na ito.",
    },
}
