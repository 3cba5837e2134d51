"""SMS through Twilio's Messages API with the official SDK."""

from __future__ import annotations

import logging
import os
import threading
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

import certifi
import urllib3
from twilio.base.exceptions import TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from services.notifications.senders import (
    CREDENTIALS_STATUSES,
    Accepted,
    CredentialsRefused,
    PermanentSendError,
    Sms,
    TransientSendError,
    retry_after_seconds,
)

OPT_OUT_CODES = {"21610"}  # recipient replied STOP to this sender
# Twilio refusing our sender, not the message: an invalid 'From' (21212) or one not on the
# account (21660), a Messaging Service missing, unavailable or without numbers (21701-21705).
# Every text would fail the same way until an operator fixes TWILIO_FROM_NUMBER or
# TWILIO_MESSAGING_SERVICE_SID: sending pauses, as for refused credentials, failing nobody.
# (21606 and 21659 can depend on the recipient's country, a short code texting abroad: they
# stay that text's own failure, or one foreign number would pause every text for ever.)
SENDER_CODES = frozenset({"21212", "21660", "21701", "21702", "21703", "21704", "21705"})
CA_BUNDLE_VARIABLES = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
)  # recipient replied STOP to this sender


class _HttpClient(HttpClient):  # type: ignore[misc]  # untyped library
    """The SDK's HTTP client contract, over urllib3 itself instead of requests.

    The SDK's own client (requests: a Request, a prepared request, hooks and settings merged
    per call) took 0.87-1.30 ms of CPU a text against the fake; urllib3's pool, 0.37-0.50 ms
    (docs/runtime-facts.md). The SDK still builds every request and reads every answer.

    It remembers each thread's own last response: the SMS lanes share one client, and between
    a 429 and the read of its Retry-After another lane's request replaced the SDK's one.
    """

    def __init__(self, base_url: str, timeout: float, connections: int) -> None:
        super().__init__(logging.getLogger("twilio.http_client"), False, timeout)
        # The proxy and CA settings requests would read from the environment, read once.
        target = urlsplit(base_url)
        proxy = urllib.request.getproxies().get(target.scheme)
        if proxy and urllib.request.proxy_bypass(target.hostname or ""):
            proxy = None
        # requests' variables first, then OpenSSL's, which the SendGrid SDK (urllib) reads.
        bundle = next((os.environ[n] for n in CA_BUNDLE_VARIABLES if os.environ.get(n)), None)
        ca_certs = bundle or certifi.where()
        options: dict[str, Any] = {"maxsize": connections, "ca_certs": ca_certs}
        self.pool: urllib3.PoolManager = (
            urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        )
        self._own = threading.local()

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        headers = dict(headers or {})
        if auth:
            headers.update(urllib3.make_headers(basic_auth=":".join(auth)))
        if params:
            uri = f"{uri}?{urlencode(params, doseq=True)}"
        body = None
        if data is not None:
            body = urlencode(data, doseq=True)
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        answer = self.pool.request(
            method.upper(), uri, body=body, headers=headers,
            timeout=timeout or self.timeout, retries=False, redirect=allow_redirects,
        )  # fmt: skip
        response = Response(answer.status, answer.data.decode("utf-8"), answer.headers)
        self._own.response = response
        return response

    def last_response(self) -> Response | None:
        """This thread's last response."""
        return getattr(self._own, "response", None)


class TwilioSender:
    """Creates one message per call; maps SDK errors to transient or permanent."""

    def __init__(
        self, client: Client, *, messaging_service_sid: str = "", from_number: str = ""
    ) -> None:
        if not messaging_service_sid and not from_number:
            raise ValueError("TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER is required")
        self.client = client
        self.messaging_service_sid = messaging_service_sid
        self.from_number = from_number

    @classmethod
    def build(
        cls,
        account_sid: str,
        auth_token: str,
        base_url: str,
        *,
        messaging_service_sid: str = "",
        from_number: str = "",
        timeout: float = 15.0,
        connections: int = 10,
    ) -> TwilioSender:
        """A sender whose pool keeps `connections` open: as many as texts sent at once."""
        http = _HttpClient(base_url, timeout=timeout, connections=connections)
        client = Client(account_sid, auth_token, http_client=http)
        client.api.base_url = base_url
        return cls(client, messaging_service_sid=messaging_service_sid, from_number=from_number)

    def _retry_after(self) -> float | None:
        # The SDK's exception carries no headers; our client keeps each thread's last response.
        http = self.client.http_client
        response = http.last_response() if isinstance(http, _HttpClient) else None
        return retry_after_seconds(
            response.headers.get("Retry-After") if response is not None else None
        )

    def send(self, sms: Sms) -> Accepted:
        params: dict[str, Any] = {"to": sms.to, "body": sms.body}
        if self.messaging_service_sid:
            params["messaging_service_sid"] = self.messaging_service_sid
        else:
            params["from_"] = self.from_number
        if sms.status_callback:
            params["status_callback"] = sms.status_callback
        try:
            message = self.client.messages.create(**params)
        except TwilioRestException as exc:
            status = int(exc.status or 0)
            if status == 429 or status >= 500:
                raise TransientSendError(f"twilio {status}", self._retry_after()) from None
            code = str(exc.code or status)
            if status in CREDENTIALS_STATUSES:  # a rotated auth token, a suspended account
                raise CredentialsRefused(f"twilio {status} {exc.code}") from None
            if code in SENDER_CODES:
                raise CredentialsRefused(f"twilio {status} {code}: our sender is refused") from None
            raise PermanentSendError(
                f"twilio {status} {code}", code, opt_out=code in OPT_OUT_CODES
            ) from None
        except urllib3.exceptions.ConnectTimeoutError as exc:
            # No connection was made (urllib3 counts refused, unreachable and unresolvable
            # among these): Twilio never saw the request. An outage, waited out as a 5xx.
            raise TransientSendError(f"twilio unreachable: {type(exc).__name__}") from None
        except urllib3.exceptions.TimeoutError as exc:
            raise TransientSendError(
                f"twilio timeout: {type(exc).__name__}", ambiguous=True
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # Refused or reset before an answer: the request may or may not have been read.
            raise TransientSendError(
                f"twilio transport: {type(exc).__name__}", ambiguous=True
            ) from None
        return Accepted(message.sid)
