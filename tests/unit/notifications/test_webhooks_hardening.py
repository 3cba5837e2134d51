"""Webhook rules found wanting in review: double opt-in privacy, URLs that could never be sent,
host names the IDNA codec refuses, and a transport that must answer rather than raise."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from services.notifications.webhooks import domain
from services.notifications.webhooks.transport import GuardedTransport

LEAD, TICKED, OTHER = "org-lead", "org-ticked", "org-other"


def doi_signature(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "signature_id": "sig-1", "petition_id": "pet-1", "campaign_id": "camp-1",
        "organization_id": LEAD, "supporter_id": "sup-1", "duplicate": False,
        "double_opt_in": True, "locale": "en", "at": "2026-11-28T12:00:00Z",
        "person": {"given_name": "Ana", "family_name": "Lee", "email": "ana@example.org",
                   "phone": "+14155550111", "postal_code": "94601", "pronouns": "she/her"},
        "consents": {"email": True, "sms": False, "partner_organization_ids": [TICKED]},
        "attribution": {"source": None, "partner_organization_id": OTHER},
    }  # fmt: skip
    data.update(changes)
    return data


def test_a_pending_double_opt_in_signature_reaches_nobody_with_personal_data() -> None:
    data = doi_signature()
    for org in domain.signature_recipients(data):
        sent = domain.payload_data("signature.created", data, org)
        assert "person" not in sent and "supporter_id" not in sent, org
        assert sent["shared_with_you"] is False and sent["double_opt_in"] is True
        assert "ana@example.org" not in repr(sent)
    # Without double opt-in the ticked partner still gets the details at once.
    direct = domain.payload_data("signature.created", doi_signature(double_opt_in=False), TICKED)
    assert direct["person"]["email"] == "ana@example.org"


def test_who_recruited_a_signer_is_told_only_to_the_lead_and_the_partner_credited() -> None:
    """A partner the signer shared with must not learn which other partner's list (an LGBTQ+
    group's, say) the person came through."""
    data = doi_signature(double_opt_in=False)
    data["attribution"] = {"source": "rainbow-newsletter", "partner_organization_id": OTHER}
    assert domain.signature_recipients(data) == {LEAD, TICKED, OTHER}
    ticked = domain.payload_data("signature.created", data, TICKED)
    assert ticked["person"]["email"] == "ana@example.org"
    assert "attribution" not in ticked
    assert OTHER not in repr(ticked) and "rainbow-newsletter" not in repr(ticked)
    for org in (LEAD, OTHER):
        sent = domain.payload_data("signature.created", data, org)
        assert sent["attribution"] == {
            "source": "rainbow-newsletter",
            "partner_organization_id": OTHER,
        }, org


def test_the_confirmation_carries_the_details_to_the_ticked_partner_only() -> None:
    assert "signature.confirmed" in domain.EVENT_TYPES
    data = doi_signature()
    del data["double_opt_in"], data["attribution"], data["duplicate"]  # not in the event
    assert domain.signature_recipients(data) == {LEAD, TICKED}
    ticked = domain.payload_data("signature.confirmed", data, TICKED)
    assert ticked["shared_with_you"] is True and ticked["supporter_id"] == "sup-1"
    assert ticked["person"]["email"] == "ana@example.org" and "pronouns" not in ticked["person"]
    for org in (LEAD, OTHER):
        sent = domain.payload_data("signature.confirmed", data, org)
        assert sent["shared_with_you"] is False and "person" not in sent


@pytest.mark.parametrize(
    "url",
    [
        "https://partner.org/hooks/café", "https://partner.org/hooks?name=José",
        "https://partner.org/hooks/a b", "https://partner.org/hooks/\u2028",
    ],
)  # fmt: skip
def test_a_url_http_client_cannot_send_is_refused(url: str) -> None:
    with pytest.raises(domain.UnsafeUrl, match="ASCII"):
        domain.check_url(url, https_required=True)


def test_percent_encoded_paths_and_international_host_names_are_accepted() -> None:
    assert domain.check_url("https://partner.org/hooks/caf%C3%A9?x=%20", True)[1] == "partner.org"
    assert domain.check_url("https://café.example/hooks", True)[1] == "café.example"


@pytest.mark.parametrize("host", ["a..b.com", "a" * 64 + ".example.org", ".example.org"])
def test_a_host_name_the_idna_codec_refuses_is_an_invalid_url_not_a_crash(host: str) -> None:
    transport = GuardedTransport((), https_required=False)
    with pytest.raises(domain.UnsafeUrl, match="invalid host name"):
        transport.resolve(host, 443)


def test_the_transport_answers_a_failure_for_a_request_it_cannot_write() -> None:
    networks = domain.parse_networks(["127.0.0.1/32"])
    transport = GuardedTransport(networks, https_required=False)
    # A header value http.client cannot encode fails before any connection is made.
    reply = transport.post(
        "ep", "http://127.0.0.1:9/hooks", {"x-note": "\u2603"}, b"{}", timeout=1.0
    )
    assert reply.status is None and reply.error == "invalid request: UnicodeEncodeError"


@contextlib.contextmanager
def dripping_server(head: bytes, drop: bytes) -> Iterator[int]:
    """A server that reads the request, answers `head` and then one `drop` every 0.2 s until
    the test ends: each read gets something before its timeout. Yield its port."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(head)
            while not stop.is_set():
                try:
                    conn.sendall(drop)
                except OSError:
                    return
                time.sleep(0.2)

    threading.Thread(target=drip, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        server.close()


def test_an_endpoint_that_answers_a_byte_at_a_time_is_cut_off_at_the_deadline() -> None:
    """Each read gets a byte before its timeout, so only a deadline on the whole attempt ends
    it: a partner could otherwise hold a delivery thread, and its message, for days."""
    transport = GuardedTransport(domain.parse_networks(["127.0.0.1/32"]), https_required=False)
    started = time.monotonic()
    with dripping_server(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", b"x") as port:
        reply = transport.post("ep", f"http://127.0.0.1:{port}/hooks", {}, b"{}", timeout=0.5)
    assert reply.status is None and reply.error and reply.error.startswith("timeout")
    assert time.monotonic() - started < 5


def test_a_tls_handshake_fed_a_byte_at_a_time_is_cut_off_at_the_deadline() -> None:
    """The handshake runs before http.client knows the connection's socket, so the attempt's
    watchdog has nothing to cut then; what bounds it is CPython's ssl module, which gives the
    whole handshake the socket's timeout (one deadline, not one per read). Pinned here: else a
    partner's server could hold a delivery thread for days."""
    transport = GuardedTransport(domain.parse_networks(["127.0.0.1/32"]), https_required=True)
    replies: list[Any] = []
    started = time.monotonic()
    # After the ClientHello: a 16 KB handshake record begins, then a byte at a time.
    with dripping_server(b"\x16\x03\x03\x40\x00\x02", b"\x00") as port:
        sender = threading.Thread(
            target=lambda: replies.append(
                transport.post("ep", f"https://127.0.0.1:{port}/hooks", {}, b"{}", timeout=0.5)
            ),
            daemon=True,
        )
        sender.start()
        sender.join(timeout=10)
    assert replies, "the handshake was still running after 10 s"
    (reply,) = replies
    assert reply.status is None and reply.error and reply.error.startswith("timeout")
    assert time.monotonic() - started < 5


def test_idle_connections_past_their_age_are_closed_by_a_sweep() -> None:
    """A kept-alive connection was closed only when next taken: one of an endpoint deleted,
    re-pointed or quiet stayed open (often half-closed by the other end) for good."""
    import http.server

    class Ok(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    transport = GuardedTransport(
        domain.parse_networks(["127.0.0.1/32"]), https_required=False, max_age=0.2
    )
    try:
        assert transport.post("ep", url, {}, b"{}", timeout=2.0).status == 204
        assert transport.sweep() == 0  # still young: kept for the next message
        kept = [conn for idle in transport._idle.values() for _, conn in idle]
        assert len(kept) == 1 and kept[0].sock is not None
        time.sleep(0.3)
        assert transport.sweep() == 1
        assert kept[0].sock is None and not transport._idle
    finally:
        server.shutdown()
        server.server_close()


def test_a_claim_outlasts_the_slowest_chunk_the_deadline_allows() -> None:
    """A claim older than its lease is taken for a crashed dispatcher's and handed out again:
    it must outlast a chunk that waited in the pool's queue for as long as it may before
    claiming anew (a quarter of the lease), then had every message answered just inside the
    attempt's deadline, or the same message goes out twice at once."""
    from services.notifications.webhooks.config import DEADLINE_STEPS, WebhookConfig

    for config in (WebhookConfig(), WebhookConfig(timeout=60.0, batch_per_endpoint=50)):
        lease = config.claim_lease()
        sending = config.batch_per_endpoint * DEADLINE_STEPS * config.timeout
        assert lease / 4 + sending < lease
    assert WebhookConfig(claim_lease_seconds=30.0).claim_lease() == 30.0
