"""SMS through Twilio's Messages API with the official SDK."""

from __future__ import annotations

import os
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from services.notifications.senders import Accepted, PermanentSendError, Sms, TransientSendError

OPT_OUT_CODES = {"21610"}  # recipient replied STOP to this sender


class _HttpClient(TwilioHttpClient):  # type: ignore[misc]  # untyped library
    """The SDK's HTTP client, remembering each thread's own last response.

    The SDK keeps one last response per client, and the SMS lanes share one client: between a
    429 and the read of its Retry-After, another lane's request replaced it.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._own = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Response:
        response = super().request(*args, **kwargs)
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
        """A sender whose pool keeps `connections` open: as many as texts sent at once. The
        SDK's pool keeps min(32, cores + 4) (https) or requests' 10 (http); a busier process
        would discard a connection after each extra request and open a new one for the next."""
        http = _HttpClient(timeout=timeout)
        # requests reads the proxy and CA settings from the environment on every request (a
        # fifth of the SDK's CPU a text); read them once, for the one host this client calls.
        assert http.session is not None  # pooled connections: the SDK's default
        for scheme in ("https://", "http://"):
            http.session.mount(scheme, HTTPAdapter(pool_maxsize=connections))
        http.session.trust_env = False
        http.session.proxies.update(requests.utils.get_environ_proxies(base_url))
        http.session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        client = Client(account_sid, auth_token, http_client=http)
        client.api.base_url = base_url
        return cls(client, messaging_service_sid=messaging_service_sid, from_number=from_number)

    def _retry_after(self) -> float | None:
        # The SDK's exception carries no headers; our client keeps each thread's last response.
        http = self.client.http_client
        response = http.last_response() if isinstance(http, _HttpClient) else None
        raw = response.headers.get("Retry-After") if response is not None else None
        try:
            return float(raw) if raw is not None else None
        except (TypeError, ValueError):
            return None

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
            raise PermanentSendError(
                f"twilio {status} {code}", code, opt_out=code in OPT_OUT_CODES
            ) from None
        except requests.exceptions.Timeout as exc:
            raise TransientSendError(
                f"twilio timeout: {type(exc).__name__}", ambiguous=True
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise TransientSendError(
                f"twilio transport: {type(exc).__name__}", ambiguous=True
            ) from None
        return Accepted(message.sid)
