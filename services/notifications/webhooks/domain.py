"""Webhook rules as plain functions: retry schedule, URL safety, and what a partner may see."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What partners may subscribe to (short names, as in the payload's "type").
EVENT_TYPES = (
    "campaign.created",
    "campaign.launched",
    "campaign.updated",
    "campaign.closed",
    "campaign.partner_joined",
    "campaign.partner_removed",
    "petition.published",
    "petition.updated",
    "petition.closed",
    "petition.milestone_reached",
    "signature.created",
    "signature.confirmed",
)
TEST_EVENT_TYPE = "webhook.test"
# Delete the details you were sent of this person: erased everywhere, or they withdrew their
# consent to share them with you. Payload {"supporter_id", "at"}.
DELETIONS = ("person.erased", "consent.withdrawn")
# Delivered to the endpoints they are addressed to, whatever those subscribed to: a test send,
# and a deletion of a person whose details an endpoint was sent.
UNFILTERED = (TEST_EVENT_TYPE, *DELETIONS)
# Written pending whatever the endpoint's state, and never failed by disabling it: they go out
# once it is enabled again (its owner still holds the details a deletion asks to delete).
HELD = DELETIONS
# Why an endpoint was disabled without its owner: its events are still kept (as failed) and
# its organization is told. One its owner turned off ("partner") gets nothing.
AUTO_DISABLED = ("gone", "failing")
MAX_RETRY_AFTER = 24 * 3600.0
# Ranges refused even though Python may call some of them global (CGNAT, cloud metadata).
BLOCKED_NETWORKS: tuple[IpNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/96",  # the unspecified and loopback addresses, and the old IPv4-compatible form
        "64:ff9b:1::/48",  # NAT64 for a local network's own translators (RFC 8215)
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",  # site-local (deprecated, still routed inside some networks; not global)
        "ff00::/8",
        "fd00:ec2::254/128",
    )
)


class UnsafeUrl(ValueError):
    """The URL, or the address it resolves to, may not receive webhooks."""


# -- retries -------------------------------------------------------------------------------------


def retry_delay(
    attempts: int, schedule: Sequence[float], jitter: float, rng: random.Random | None = None
) -> float | None:
    """Return the delay before the next try after `attempts` failed tries, or None when done."""
    if attempts < 1 or attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    spread = (rng or random).uniform(-jitter, jitter)
    return max(0.0, base * (1.0 + spread))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Return the seconds a Retry-After header asks for (delta-seconds or HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError, OverflowError):
            return None
    if seconds != seconds or seconds < 0:  # NaN or the past
        return 0.0
    return min(seconds, MAX_RETRY_AFTER)


def next_attempt_at(
    attempts: int,
    now: datetime,
    schedule: Sequence[float],
    jitter: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> datetime | None:
    """Return when to try again after a failure (Retry-After wins if longer), or None: give up."""
    delay = retry_delay(attempts, schedule, jitter, rng)
    if delay is None:
        return None
    if retry_after is not None:
        delay = max(delay, retry_after)
    return now + timedelta(seconds=delay)


def is_success(status: int | None) -> bool:
    """Only a 2xx answer delivers a message; redirects are failures (never followed)."""
    return status is not None and 200 <= status < 300


def should_disable(
    failing_since: datetime | None, now: datetime, disable_after_seconds: float
) -> bool:
    """Return True when an endpoint has failed with no success for too long."""
    if failing_since is None:
        return False
    return (now - failing_since).total_seconds() >= disable_after_seconds


# -- URL safety ----------------------------------------------------------------------------------


def parse_networks(values: Iterable[str]) -> tuple[IpNetwork, ...]:
    """Parse the configured allow-list of networks."""
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def check_url(url: str, https_required: bool) -> tuple[str, str, int]:
    """Return (scheme, host, port) of a well-formed endpoint URL, or raise UnsafeUrl."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl("is not a valid URL") from exc
    scheme = parts.scheme.lower()
    allowed = ("https",) if https_required else ("https", "http")
    if scheme not in allowed:
        raise UnsafeUrl("must use HTTPS" if https_required else "must use http or https")
    if not parts.hostname:
        raise UnsafeUrl("has no host")
    if parts.username or parts.password:
        raise UnsafeUrl("must not carry credentials")
    if parts.fragment:
        raise UnsafeUrl("must not have a fragment")
    if len(url) > 2000:
        raise UnsafeUrl("is too long")
    if any(not "!" <= c <= "~" for c in parts.path + parts.query):
        # http.client sends the request line as ASCII: anything else could never be delivered.
        raise UnsafeUrl("must use only printable ASCII in its path and query (percent-encode)")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known prefix (RFC 6052)
TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # IPv4-translated addresses (RFC 2765)


def check_address(address: str, allowed: Sequence[IpNetwork]) -> IpAddress:
    """Return the address if webhooks may go there, or raise UnsafeUrl.

    An IPv6 address that carries an IPv4 one (mapped, translated, NAT64, 6to4) is judged by
    the IPv4 address it reaches: 64:ff9b::a9fe:a9fe is the cloud metadata service behind a
    NAT64, ::ffff:0:7f00:1 the loopback behind a stateless translator.
    """
    ip: IpAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip in NAT64 or ip in TRANSLATED:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in net for net in allowed if net.version == ip.version):
        return ip
    if not ip.is_global or any(ip in net for net in BLOCKED_NETWORKS if net.version == ip.version):
        raise UnsafeUrl("resolves to a private, loopback, link-local or reserved address")
    return ip


def literal_address(host: str) -> IpAddress | None:
    """Return the host as an IP address when it is one."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


# -- who receives what ---------------------------------------------------------------------------


def short_type(full: str) -> str:
    """Return 'signature.created' for 'kinship.signature.created.v1'."""
    parts = full.split(".")
    return ".".join(parts[1:-1]) if len(parts) >= 4 and parts[0] == "kinship" else full


def wants(event_types: Sequence[str], short: str) -> bool:
    """Return whether an endpoint's filter (empty: everything) admits an event type."""
    return not event_types or short in event_types


def _pick(data: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {k: data[k] for k in keys if k in data}


# Allow-lists, never deny-lists: a field added to an event later stays private until listed here.
# Community identity ("communities", pronouns, interests) is on no list.
_CAMPAIGN = (
    "campaign_id", "lead_organization_id", "partner_organization_ids", "titles",
    "descriptions", "default_locale", "status", "at",
)  # fmt: skip
_PETITION = (
    "petition_id", "campaign_id", "organization_id", "titles", "default_locale", "goal", "at",
)  # fmt: skip
_PUBLIC = {
    "campaign.partner_joined": ("campaign_id", "organization_id", "at"),
    "campaign.partner_removed": ("campaign_id", "organization_id", "left", "at"),
    "petition.published": _PETITION,
    "petition.updated": _PETITION,
    "petition.closed": ("petition_id", "campaign_id", "total", "at"),
    "petition.milestone_reached": (
        "petition_id",
        "campaign_id",
        "milestone",
        "total",
        "next_goal",
        "at",
    ),  # fmt: skip
}
_SIGNATURE = ("signature_id", "petition_id", "campaign_id", "organization_id", "locale", "at")
_PERSON = ("given_name", "family_name", "email", "phone", "postal_code", "country", "language")


def signature_recipients(data: Mapping[str, Any]) -> set[str]:
    """Return the organizations a signature concerns: its owner, its recruiter, its shares."""
    if data.get("duplicate"):
        return set()  # a repeat changes nothing and must not reveal that someone signed
    orgs = {str(data["organization_id"])}
    attributed = (data.get("attribution") or {}).get("partner_organization_id")
    if attributed:
        orgs.add(str(attributed))
    orgs.update(str(o) for o in (data.get("consents") or {}).get("partner_organization_ids", []))
    return orgs


def payload_data(short: str, data: Mapping[str, Any], organization_id: str) -> dict[str, Any]:
    """Return what one organization may see of an event (personal data only if shared with it).

    A double opt-in signature is only a claim until the address's owner confirms it (anyone can
    type anyone's address): its `signature.created` is the non-personal part for everyone, and
    the details go with `signature.confirmed`.
    """
    if short.startswith("campaign.") and short not in _PUBLIC:
        return _pick(data, _CAMPAIGN)
    if short in DELETIONS:  # the id they were given with the details: delete them
        return _pick(data, ("supporter_id", "at"))
    if short in _PUBLIC:
        return _pick(data, _PUBLIC[short])
    if short not in ("signature.created", "signature.confirmed"):
        raise ValueError(f"no webhook payload for {short!r}")
    out = _pick(data, _SIGNATURE)
    pending = False
    if short == "signature.created":
        attribution = data.get("attribution") or {}
        credited = attribution.get("partner_organization_id")
        # Who recruited a signer is told only to the petition's organization and the partner
        # credited: another partner sent the person's details would also learn which list
        # (an LGBTQ+ group's, say) the person came through.
        if organization_id in (data.get("organization_id"), credited):
            out["attribution"] = {
                "source": attribution.get("source"),
                "partner_organization_id": credited,
            }
        out["double_opt_in"] = pending = bool(data.get("double_opt_in"))
    ticked = (data.get("consents") or {}).get("partner_organization_ids", [])
    shared = not pending and organization_id in ticked
    out["shared_with_you"] = shared
    if shared:
        out["supporter_id"] = data.get("supporter_id")
        out["person"] = _pick(data.get("person") or {}, _PERSON)
    return out


def body(short: str, time: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Return a Standard Webhooks body: type, timestamp and data."""
    return {"type": short, "timestamp": time, "data": dict(data)}


def excerpt(raw: bytes, limit: int) -> str:
    """Return the start of a response body as text PostgreSQL can store, for the attempt log.

    A NUL would make the whole recording transaction fail, and its deliveries go out again
    after their lease, for ever. The UTF-8 decoder already replaces encoded surrogates.
    """
    return raw[:limit].decode("utf-8", errors="replace").replace("\x00", "")
