"""`kinship demo`: a coalition campaign from petition to delivered alert, over the public APIs.

A mixed-Asian-heritage organization leads, an LGBTQ+ organization joins as partner; a petition in
English and Traditional Chinese is signed by several supporters (partner attribution, consents,
one duplicate, one SMS opt-in); an alert goes out; the report says what each channel delivered.
Every run uses fresh organizations and addresses, so it can be repeated on the same stack.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import requests

from shared.cli.outbox import captured_messages, mask_email
from shared.config import SERVICES, var_dir
from shared.devstack import (
    DEFAULT_PORTS,
    notification_backends,
    read_stack_state,
    service_ports,
)

# One SMS signer's number, chosen so that it is daytime where they live: the notifications
# service holds texts outside 08:00-21:00 local time, and the demo should finish now. Numbers
# the regulators set aside for fiction (ACMA's 0491 570 xxx, ARCEP's 01 99 00 xx xx, the US
# 555-01xx), so a stack started with real Twilio credentials texts nobody.
SMS_SIGNERS = (
    # A Perth postcode: without one, an Australian number spans the country's zones, and the
    # text waits until it is daytime in all of them.
    ("+61491570156", "AU", "Australia/Perth", "6000"),
    ("+33199001234", "FR", "Europe/Paris", None),
    ("+12135550147", "US", "America/Los_Angeles", "90012"),
)


class DemoError(RuntimeError):
    """The demo could not finish; the message says which step and why."""


@dataclass
class Signer:
    given_name: str
    family_name: str
    email: str
    language: str
    country: str
    consents: dict[str, Any]
    source: str | None = None
    phone: str | None = None
    postal_code: str | None = None
    pronouns: str | None = None
    discreet: bool = False
    duplicate: bool = False

    def body(self) -> dict[str, Any]:
        person = {
            "given_name": self.given_name,
            "family_name": self.family_name,
            "email": self.email,
            "language": self.language,
            "country": self.country,
            "phone": self.phone,
            "postal_code": self.postal_code,
            "pronouns": self.pronouns,
            "discreet": self.discreet,
        }
        return {
            "person": {k: v for k, v in person.items() if v is not None},
            "consents": self.consents,
            "referrer_data": {"source": self.source},
            "locale": self.language,
        }


@dataclass
class Api:
    """A small client of the three services."""

    urls: dict[str, str]
    timeout: float
    session: requests.Session = field(default_factory=requests.Session)

    def call(
        self,
        service: str,
        method: str,
        path: str,
        key: str | None = None,
        body: Any = None,
        expect: tuple[int, ...] = (200, 201, 202, 204),
    ) -> Any:
        """Make one request; raise DemoError unless the status is expected."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if method == "POST" and body is not None:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        try:
            resp = self.session.request(
                method, self.urls[service] + path, json=body, headers=headers, timeout=30
            )
        except requests.RequestException as exc:
            raise DemoError(
                f"{service} is not answering at {self.urls[service]} ({type(exc).__name__}); "
                "is the stack up? (`kinship dev up`)"
            ) from None
        if resp.status_code not in expect:
            raise DemoError(f"{method} {service}{path}: {resp.status_code} {resp.text[:400]}")
        if resp.status_code == 204 or not resp.content:
            return None
        if "json" in resp.headers.get("Content-Type", ""):
            return resp.json()
        return resp.text

    def until(self, what: str, probe: Callable[[], Any]) -> Any:
        """Retry probe until it returns a truthy value (events take a moment to travel)."""
        deadline = time.monotonic() + self.timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                result = probe()
                if result:
                    return result
            except DemoError as exc:
                last = exc
            time.sleep(0.3)
        raise DemoError(f"timed out after {self.timeout:.0f} s waiting for {what}: {last or ''}")


def stack_urls() -> dict[str, str]:
    """Return the services' base URLs: from `kinship dev up`'s record, else the port settings."""
    state = read_stack_state(var_dir())
    recorded = state.get("urls")
    if isinstance(recorded, dict) and all(name in recorded for name in SERVICES):
        return {name: str(recorded[name]) for name in SERVICES}
    ports = service_ports(os.environ) if os.environ else DEFAULT_PORTS
    return {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}


def check_capture_senders() -> None:
    """Refuse a stack that sends through SendGrid or Twilio: the demo's supporters are
    fictional (example.org addresses, numbers set aside for fiction), so a real provider
    would bounce every one (and a sender's reputation suffers from bounces), and the report
    reads what each channel delivered from the capture outbox."""
    recorded = read_stack_state(var_dir()).get("backends")
    if isinstance(recorded, dict):
        email, sms = str(recorded.get("email")), str(recorded.get("sms"))
    else:  # a stack not started by `kinship dev up`: this environment says
        email, sms = notification_backends()
    real = [name for name in (email, sms) if name != "capture"]
    if real:
        raise DemoError(
            f"this stack sends through {' and '.join(real)}: the demo's supporters are "
            "fictional, so a real provider would bounce them, and its report reads the "
            "capture outbox. Run it against the capture senders: `kinship dev down`, then "
            "`EMAIL_BACKEND=capture SMS_BACKEND=capture kinship dev up`."
        )


def admin_key(tag: str) -> str:
    """Issue a platform admin key with `kinship keys create` (how a fresh install bootstraps)."""
    cmd = [
        sys.executable,
        "-m",
        "shared.cli.main",
        "keys",
        "create",
        "--org",
        "kinship-platform",
        "--org-name",
        "Kinship platform",
        "--role",
        "admin",
        "--create-org",
        "--name",
        f"demo {tag}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.strip():
        raise DemoError(f"kinship keys create failed: {result.stderr.strip()[-400:]}")
    return result.stdout.strip().splitlines()[-1]


def sms_signer(now: datetime) -> tuple[str, str, str | None]:
    """Return (phone, country, postal code) of a signer for whom it is daytime now."""
    for phone, country, zone, postal in SMS_SIGNERS:
        if 9 <= now.astimezone(ZoneInfo(zone)).hour < 20:
            return phone, country, postal
    return SMS_SIGNERS[0][0], SMS_SIGNERS[0][1], SMS_SIGNERS[0][3]


@dataclass
class Story:
    """What the demo created, for the report."""

    tag: str
    lead: dict[str, Any] = field(default_factory=dict)
    partner: dict[str, Any] = field(default_factory=dict)
    campaign: dict[str, Any] = field(default_factory=dict)
    petition: dict[str, Any] = field(default_factory=dict)
    signers: list[Signer] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    alert: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    partner_rows: list[dict[str, str]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    hook_note: str = ""
    # Captured messages up to this id were there before this run (the same phone numbers recur).
    baseline: int = 0


def run_demo(
    timeout: float = 180.0, progress: bool = False, echo: Callable[[str], None] | None = None
) -> str:
    """Run the story against the running stack and return the report."""
    say = echo or (lambda line: print(line, flush=True))
    check_capture_senders()
    api = Api(stack_urls(), timeout)
    for name in SERVICES:
        api.call(name, "GET", "/readyz")
    tag = secrets.token_hex(3)
    story = Story(tag)
    try:
        story.baseline = max((int(m["id"]) for m in captured_messages(limit=1)), default=0)
    except FileNotFoundError:
        story.baseline = 0
    say(f"[1/6] Coalition: organizations and keys (run {tag})")
    keys: dict[str, str] = {}
    try:
        build_coalition(api, story, keys)
        say("[2/6] Campaign: bilingual, partner invited and joined, launched")
        launch_campaign(api, story, keys)
        say("[3/6] Petition: English and Traditional Chinese, one counter")
        publish_petition(api, story, keys)
        with Receiver() as receiver:
            subscribe_partner(api, story, keys, receiver)
            say("[4/6] Signatures: partner attribution, consents, one duplicate, one SMS opt-in")
            sign(api, story)
            wait_for_welcomes(api, story)
            say("[5/6] Alert: email and SMS to the campaign's supporters")
            send_alert(api, story, keys, progress, say)
            say("[6/6] Report")
            collect(api, story, keys)
            wait_for_webhooks(api, story, receiver)
    except BaseException:
        with contextlib.suppress(DemoError):  # the first failure is the one to tell
            revoke_keys(api, keys)
        raise
    revoke_keys(api, keys)
    return report(story)


def revoke_keys(api: Api, keys: dict[str, str]) -> None:
    """Revoke every key the demo issued (so far, when it failed on the way), its platform
    admin key last, so that none outlives it."""
    admin = keys.get("admin")
    if admin is None:
        return
    failed: DemoError | None = None
    for role in ("lead", "partner_organizer", "partner", "admin"):
        if role not in keys:
            continue
        try:  # each on its own: one refused must not leave the others (the admin's) active
            key_id = api.call("campaigns", "GET", "/api/v1/keys/me", keys[role])["key_id"]
            api.call("campaigns", "DELETE", f"/api/v1/keys/{key_id}", admin)
        except DemoError as exc:
            failed = failed or exc
    if failed is not None:
        raise failed


def build_coalition(api: Api, story: Story, keys: dict[str, str]) -> None:
    """Create the two organizations and their keys, each key kept in keys as soon as it is
    issued (to be revoked however the demo ends)."""
    admin = keys["admin"] = admin_key(story.tag)
    story.lead = api.call(
        "campaigns",
        "POST",
        "/api/v1/organizations",
        admin,
        {
            "name": "Hapa Voices Collective",
            "slug": f"hapa-voices-{story.tag}",
            "communities": ["mixed-Asian-heritage", "multiracial families"],
            "contact_email": "organizers@hapavoices.example.org",
            "postal_address": "1 Kinship Way, Oakland, CA 94612, USA",
        },
    )
    story.partner = api.call(
        "campaigns",
        "POST",
        "/api/v1/organizations",
        admin,
        {
            "name": "Rainbow Lantern Alliance",
            "slug": f"rainbow-lantern-{story.tag}",
            "communities": ["LGBTQ+", "Asian diaspora"],
            "contact_email": "hello@rainbowlantern.example.org",
            "postal_address": "2 Lantern Street, Taipei 100, Taiwan",
        },
    )

    def issue(org: dict[str, Any], role: str) -> str:
        body = {"organization": org["slug"], "role": role, "name": f"demo {role}"}
        return str(api.call("campaigns", "POST", "/api/v1/keys", admin, body)["secret"])

    keys["lead"] = issue(story.lead, "organizer")
    keys["partner_organizer"] = issue(story.partner, "organizer")
    keys["partner"] = issue(story.partner, "partner")


def launch_campaign(api: Api, story: Story, keys: dict[str, str]) -> None:
    campaign = api.call(
        "campaigns",
        "POST",
        "/api/v1/campaigns",
        keys["lead"],
        {
            "default_locale": "en",
            "titles": {
                "en": "Language access at every county clinic",
                "zh-Hant": "每一間縣立診所都提供語言協助",
            },
            "descriptions": {
                "en": "Interpreters and translated forms for our families, in our languages.",
                "zh-Hant": "為我們的家庭提供口譯與翻譯表格，用我們的語言。",
            },
            "communities": ["mixed-Asian-heritage", "LGBTQ+"],
        },
    )
    cid = campaign["campaign_id"]
    partner = story.partner["slug"]
    api.call(
        "campaigns",
        "POST",
        f"/api/v1/campaigns/{cid}/partners",
        keys["lead"],
        {"organization": partner},
    )
    api.call(
        "campaigns",
        "POST",
        f"/api/v1/campaigns/{cid}/partners/{partner}/accept",
        keys["partner_organizer"],
    )
    story.campaign = api.call("campaigns", "POST", f"/api/v1/campaigns/{cid}/launch", keys["lead"])


def publish_petition(api: Api, story: Story, keys: dict[str, str]) -> None:
    body = {
        "campaign_id": story.campaign["campaign_id"],
        "default_locale": "en",
        "texts": {
            "en": {
                "title": "Language access at every county clinic",
                "summary": "Ask the county health board for interpreters and translated forms.",
                "text": "We ask the County Health Board to provide interpreters and translated "
                "intake forms at every clinic, and to train staff to respect chosen names and "
                "pronouns.",
            },
            "zh-Hant": {
                "title": "每一間縣立診所都提供語言協助",
                "summary": "請縣衛生委員會提供口譯員與翻譯表格。",
                "text": "我們請求縣衛生委員會在每一間診所提供口譯員與翻譯的登記表格，"
                "並訓練員工尊重我們選擇的名字與代名詞。",
            },
        },
        "targets": [{"name": "County Health Board", "organization": "County of Alameda"}],
    }

    def create() -> Any:
        # The petitions service learns of the key and the campaign from events: retry briefly.
        return api.call("petitions", "POST", "/api/v1/petitions", keys["lead"], body)

    petition = api.until("the petitions service to learn of the campaign", create)
    pid = petition["petition_id"]
    api.call("petitions", "POST", f"/api/v1/petitions/{pid}/publish", keys["lead"])
    partner_id = story.partner["organization_id"]

    def partner_box() -> Any:
        shown = api.call("petitions", "GET", f"/api/v1/petitions/{pid}?locale=zh-Hant")
        ids = {p["organization_id"] for p in shown.get("partners", [])}
        return shown if partner_id in ids else None

    story.petition = api.until("the partner's box on the petition", partner_box)


class Receiver:
    """The partner's webhook receiver: a local HTTP server that keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append({"headers": dict(self.headers.items()), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # keep the demo's output to its story

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/kinship-hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def subscribe_partner(api: Api, story: Story, keys: dict[str, str], receiver: Receiver) -> None:
    """Register the partner's endpoint for signatures (skipped, with a note, if refused)."""
    body = {
        "url": receiver.url,
        "description": "Rainbow Lantern CRM (demo)",
        "event_types": ["signature.created"],
    }
    try:
        story.webhook = api.call(
            "notifications", "POST", "/api/v1/webhooks/endpoints", keys["partner"], body
        )
    except DemoError as exc:
        story.hook_note = f"endpoint not registered: {exc}"


def wait_for_webhooks(api: Api, story: Story, receiver: Receiver) -> None:
    """Wait for one signed delivery per signature the partner may see, and verify each."""
    if not story.webhook:
        return
    from standardwebhooks import Webhook

    code = story.partner["source_code"]
    partner = story.partner["slug"]
    expected = sum(
        1
        for s in story.signers
        if not s.duplicate and (s.source == code or s.consents.get("partners", {}).get(partner))
    )
    try:
        api.until("the partner's webhook deliveries", lambda: len(receiver.received) >= expected)
    except DemoError as exc:
        story.hook_note = str(exc)
    verifier = Webhook(story.webhook["secret"])
    for hook in receiver.received:
        payload = verifier.verify(hook["body"], hook["headers"])
        story.hooks.append(payload if isinstance(payload, dict) else json.loads(hook["body"]))


def signers(story: Story) -> list[Signer]:
    domain = f"demo-{story.tag}.example.org"
    code = story.partner["source_code"]
    partner = story.partner["slug"]
    phone, country, postal = sms_signer(datetime.now(UTC))
    return [
        Signer("Mei", "Tanaka-Reyes", f"mei.tanaka@{domain}", "en", "US",
               {"email": True, "partners": {partner: True}}, source=code, postal_code="94612",
               pronouns="she/her"),
        Signer("怡君", "陳", f"yichun.chen@{domain}", "zh-Hant", "TW", {"email": True}),
        Signer("Alex", "Nguyen-Okafor", f"alex.no@{domain}", "en", country,
               {"email": True, "sms": True, "partners": {partner: True}}, source=code,
               phone=phone, postal_code=postal, pronouns="they/them"),
        Signer("家豪", "林", f"jiahao.lin@{domain}", "zh-Hant", "TW", {}, source="newsletter"),
        Signer("Sam", "Kealoha-Park", f"sam.kp@{domain}", "en", "US", {"email": True},
               source=code, postal_code="96813", discreet=True),
        # The same person again, typed differently: answered exactly like a new signature.
        Signer("Mei", "Tanaka-Reyes", f"  MEI.TANAKA@{domain.upper()} ", "en", "US",
               {"email": True}, duplicate=True),
    ]  # fmt: skip


def sign(api: Api, story: Story) -> None:
    pid = story.petition["petition_id"]
    story.signers = signers(story)
    answers = set()
    for signer in story.signers:
        answer = api.call("petitions", "POST", f"/api/v1/petitions/{pid}/signatures", None,
                          signer.body(), expect=(200, 201, 202))  # fmt: skip
        answers.add(str(sorted(answer.items())))
    if len(answers) != 1:
        raise DemoError("a duplicate signature was answered differently from a new one")


def _addresses(story: Story) -> set[str]:
    return {s.email.strip().lower() for s in story.signers} | {
        s.phone for s in story.signers if s.phone
    }


def _ours(story: Story, limit: int = 2000) -> list[dict[str, Any]]:
    mine = _addresses(story)
    return [
        m
        for m in captured_messages(limit=limit, show=True)
        if m["to"].lower() in mine and int(m["id"]) > story.baseline
    ]


def wait_for_welcomes(api: Api, story: Story) -> None:
    """Wait until notifications has projected every consenting signer (their welcome arrived)."""
    consenting = {
        s.email.lower()
        for s in story.signers
        if not s.duplicate and (s.consents.get("email") or s.consents.get("sms"))
    }
    phones = {s.phone for s in story.signers if s.phone and s.consents.get("sms")}

    def arrived() -> bool:
        seen = {m["to"].lower() for m in _ours(story) if m["kind"] == "transactional"}
        return consenting <= seen and phones <= seen

    api.until("the thank-you emails and the SMS welcome", arrived)


def send_alert(
    api: Api, story: Story, keys: dict[str, str], progress: bool, say: Callable[[str], None]
) -> None:
    cid = story.campaign["campaign_id"]
    alert = api.call(
        "campaigns",
        "POST",
        f"/api/v1/campaigns/{cid}/alerts",
        keys["lead"],
        {
            "name": "Board vote on Thursday",
            "channels": ["email", "sms"],
            "default_locale": "en",
            "content": {
                "en": {
                    "email_subject": "{{ given_name }}, the county health board votes Thursday",
                    "email_html": "<p>The board votes on language access this Thursday. "
                    "Please call your supervisor today.</p>",
                    "email_text": "The board votes on language access this Thursday. "
                    "Please call your supervisor today.",
                    "sms_text": "{{ given_name }}: the board votes Thursday on clinic language "
                    "access. Call your supervisor today.",
                    # For supporters in discreet mode (Sam): nothing that names the cause.
                    "discreet_email_subject": "{{ given_name }}, a note for you",
                    "sms_discreet_text": "{{ given_name }}: a reminder from your group.",
                },
                "zh-Hant": {
                    "email_subject": "{{ given_name }}，縣衛生委員會星期四投票",
                    "email_html": "<p>委員會本週四就語言協助投票，請今天致電您的縣議員。</p>",
                    "email_text": "委員會本週四就語言協助投票，請今天致電您的縣議員。",
                    "sms_text": "{{ given_name }}：委員會週四就診所語言協助投票，"
                    "請今天致電縣議員。",
                    "discreet_email_subject": "{{ given_name }}，給您的消息",
                    "sms_discreet_text": "{{ given_name }}：來自您的團體的提醒。",
                },
            },
        },
    )
    aid = alert["alert_id"]
    api.call("campaigns", "POST", f"/api/v1/alerts/{aid}/schedule", keys["lead"], {})
    story.alert = alert

    def read() -> dict[str, Any] | None:
        found = api.call(
            "notifications", "GET", f"/api/v1/alerts/{aid}/progress", keys["lead"],
            expect=(200, 404),
        )  # fmt: skip
        return found if isinstance(found, dict) and "total" in found else None

    def accounted(p: dict[str, Any]) -> bool:
        return bool(p["total"] > 0 and p["sent"] + p["failed"] + p["suppressed"] >= p["total"])

    deadline = time.monotonic() + api.timeout
    bar = _Bar(progress, say)
    current: dict[str, Any] | None = None
    complete_since: float | None = None
    while time.monotonic() < deadline:
        current = read()
        if current is not None:
            bar.update(current)
            if current["status"] == "done":
                break
            # The status turns "done" on the progress publisher's next round; do not wait
            # long for it once every delivery is accounted for.
            if accounted(current):
                complete_since = complete_since or time.monotonic()
                if time.monotonic() - complete_since > 10:
                    break
        time.sleep(0.3)
    bar.close()
    if current is None or not (current["status"] == "done" or accounted(current)):
        raise DemoError(f"the alert's fan-out did not finish within {api.timeout:.0f} s: {current}")
    story.progress = current


class _Bar:
    """A rich progress bar on a terminal, plain lines otherwise."""

    def __init__(self, fancy: bool, say: Callable[[str], None]) -> None:
        self.say = say
        self.last = ""
        self.progress: Any = None
        if fancy:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(
                TextColumn("fan-out"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
            )
            self.progress.start()
            self.task = self.progress.add_task("fan-out", total=None, detail="")

    def update(self, p: dict[str, Any]) -> None:
        done = p["sent"] + p["failed"] + p["suppressed"]
        detail = f"sent {p['sent']} failed {p['failed']} suppressed {p['suppressed']}"
        if self.progress is not None:
            self.progress.update(self.task, total=p["total"] or None, completed=done, detail=detail)
            return
        line = f"  fan-out: {done}/{p['total']} ({detail})"
        if line != self.last:
            self.say(line)
            self.last = line

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def collect(api: Api, story: Story, keys: dict[str, str]) -> None:
    pid = story.petition["petition_id"]
    story.counts = api.call("petitions", "GET", f"/api/v1/petitions/{pid}/counts", keys["lead"])
    org = story.partner["organization_id"]
    text = api.call(
        "petitions", "GET", f"/api/v1/petitions/{pid}/exports/partners/{org}.csv", keys["partner"]
    )
    story.partner_rows = list(csv.DictReader(io.StringIO(text or "")))
    story.messages = _ours(story)


def report(story: Story) -> str:
    """Return the demo's report as plain text."""
    lead, partner = story.lead, story.partner
    names = {lead["organization_id"]: lead["slug"], partner["organization_id"]: partner["slug"]}
    c = story.counts
    p = story.progress
    signed = [s for s in story.signers if not s.duplicate]

    def listing(values: dict[str, int]) -> str:
        named = sorted((names.get(k, k), v) for k, v in values.items())
        return ", ".join(f"{name} {count}" for name, count in named) or "none"

    by_channel: dict[str, Counter[str]] = {"email": Counter(), "sms": Counter()}
    for m in story.messages:
        by_channel[m["channel"]][m["kind"]] += 1
    alert_id = story.alert["alert_id"]
    samples: dict[str, dict[str, Any]] = {}
    for m in story.messages:
        if m["alert_id"] == alert_id:
            samples.setdefault(m["channel"], m)
    recruited = int(c.get("by_partner", {}).get(partner["organization_id"], 0))
    shared = [mask_email(row.get("email", "")) for row in story.partner_rows]
    lines = [
        "",
        "Kinship demo report",
        "===================",
        f"Coalition:  {lead['name']} (lead; mixed-Asian-heritage) + {partner['name']} "
        "(partner; LGBTQ+)",
        f"Campaign:   {story.campaign['campaign_id']} ({story.campaign['status']})",
        f"Petition:   {story.petition['petition_id']} open in en, zh-Hant",
        f"Signatures: {c['total']} counted from {len(story.signers)} submissions "
        f"({len(story.signers) - len(signed)} duplicate, answered like the others)",
        f"  by locale:  {listing(c.get('by_locale', {}))}",
        f"  by partner: {listing(c.get('by_partner', {}))}",
        f"  by source:  {listing(c.get('by_source', {}))}",
        f"Alert:      {alert_id} {p['status']}: total {p['total']}, sent {p['sent']}, "
        f"delivered {p['delivered']}, failed {p['failed']}, suppressed {p['suppressed']}, "
        f"deferred {p.get('deferred', 0)}",
        "Delivered by channel (kinship outbox):",
    ]
    for channel in ("email", "sms"):
        counts = by_channel[channel]
        lines.append(
            f"  {channel:<6} alert {counts['alert']}, transactional {counts['transactional']}"
        )
    if "email" in samples:
        m = samples["email"]
        unsub = " with List-Unsubscribe" if m["list_unsubscribe"] else ""
        lines.append(f"  e.g. email to {mask_email(m['to'])}: {m['subject']!r}{unsub}")
    if "sms" in samples:
        m = samples["sms"]
        lines.append(f"  e.g. SMS: {' '.join(m['body'].split())[:120]!r}")
    lines += partner_section(story, recruited, shared)
    lines += [
        "",
        f"See every message: kinship outbox --alert {alert_id}",
    ]
    return "\n".join(lines)


def partner_section(story: Story, recruited: int, shared: list[str]) -> list[str]:
    """Describe what the partner's webhook received (or, without one, what it would)."""
    partner = story.partner
    if not story.hooks:
        lines = [
            f"Partner webhook ({partner['name']}) would receive:",
            f"  signature.created for the {recruited} signatures recruited with its code "
            f"{partner['source_code']!r}",
            f"  contact details only for the {len(shared)} supporters who ticked its box: "
            f"{', '.join(shared) or 'none'}",
        ]
        return lines + ([f"  ({story.hook_note})"] if story.hook_note else [])
    types = Counter(str(h.get("type")) for h in story.hooks)
    with_person = [h["data"]["person"] for h in story.hooks if (h.get("data") or {}).get("person")]
    emails = [mask_email(str(p.get("email", ""))) for p in with_person]
    leaked = [k for p in with_person for k in ("pronouns", "interests", "discreet") if k in p]
    kinds = ", ".join(f"{name} x{count}" for name, count in sorted(types.items()))
    return [
        f"Partner webhook ({partner['name']}) received {len(story.hooks)} signed deliveries "
        "(Standard Webhooks signatures verified):",
        f"  {kinds}, for the {recruited} signatures recruited with its code "
        f"{partner['source_code']!r}",
        f"  contact details only for the {len(with_person)} supporters who ticked its box: "
        f"{', '.join(emails) or 'none'}; the others carry no personal data",
        f"  (its partner export holds the same {len(shared)} people; pronouns, interests and "
        f"discreet flags sent: {len(leaked)})",
    ]
