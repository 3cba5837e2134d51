"""Keyed hashes of contact details: dedupe and suppression without keeping the address."""

from __future__ import annotations

import functools
import hashlib
import hmac
import uuid

from email_validator import EmailNotValidError, validate_email

from shared.errors import FieldError

# Providers whose mailboxes deliver user+tag@ to user@ (subaddressing).
_PLUS_TAG_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "fastmail.com",
        "fastmail.fm",
        "protonmail.com",
        "proton.me",
        "pm.me",
        "zoho.com",
        "yandex.com",
        "yandex.ru",
    }
)
# The longest address mail can carry (RFC 5321's 256-octet path less its angle brackets).
EMAIL_MAX = 254
# Providers that ignore dots in the local part.
_DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}


def normalize_email(address: str) -> str:
    """Return the mailbox an address reaches: case, spaces, and provider-ignored dots and tags."""
    address = address.strip().lower()
    local, sep, domain = address.rpartition("@")
    if not sep:
        return address
    domain = domain.rstrip(".")
    if domain in _PLUS_TAG_DOMAINS:
        local = local.split("+", 1)[0]
    if domain in _DOTLESS_DOMAINS:
        local = local.replace(".", "")
    domain = _DOMAIN_ALIASES.get(domain, domain)
    return f"{local}@{domain}"


def clean_email(address: str, field: str = "person.email") -> str:
    """Return the address as it should be used for sending; raise FieldError if it is not one."""
    try:
        result = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise FieldError(field, f"Not a valid email address: {exc}") from None
    return str(result.normalized)


def keyed_hash(key: str, purpose: str, value: str | bytes) -> str:
    """Return a hex HMAC-SHA256 of value for one purpose; without the key it reveals nothing."""
    return keyed_digest(key, purpose, value).hex()


def keyed_digest(key: str, purpose: str, value: str | bytes) -> bytes:
    """Return the HMAC-SHA256 of value for one purpose (keyed_hash's bytes).

    From a copy of the key's HMAC state, with the purpose fed already: keying an HMAC is most
    of its cost for a short value, and an alert's sender makes one for every recipient's
    unsubscribe token (a million for a million supporters)."""
    mac = _keyed_state(key, purpose).copy()
    mac.update(value.encode() if isinstance(value, str) else value)
    return mac.digest()


@functools.lru_cache(maxsize=64)
def _keyed_state(key: str, purpose: str) -> hmac.HMAC:
    return hmac.new(key.encode(), purpose.encode() + b"\x00", hashlib.sha256)


def email_hash(key: str, address: str) -> str:
    """Return the keyed hash of a normalized email address (same in every service)."""
    return keyed_hash(key, "email", normalize_email(address))


def phone_hash(key: str, e164: str) -> str:
    """Return the keyed hash of an E.164 phone number."""
    return keyed_hash(key, "phone", e164.strip())


def supporter_id(key: str, address: str) -> str:
    """Return the stable supporter id of an email address, the same in every service."""
    digest = bytes.fromhex(keyed_hash(key, "supporter", normalize_email(address)))
    return str(uuid.UUID(bytes=digest[:16], version=4))
