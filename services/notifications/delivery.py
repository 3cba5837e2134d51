"""Send what the ledger holds: alert batches from the dispatch topic and queued single messages.

Every path is: claim ledger rows (committed) -> call the provider outside any transaction ->
record the outcome (committed, with the alert's counters in the same transaction).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, select, update

from services.notifications import audience, compliance, ledger, messages
from services.notifications.audience import Supporter
from services.notifications.bootstrap import Deps
from services.notifications.domain import (
    TokenBucket,
    backoff_delay,
    next_sms_window,
    pick_variant,
    shared_values,
)
from services.notifications.senders import (
    Accepted,
    CredentialsRefused,
    EmailBatch,
    PermanentSendError,
    Recipient,
    Sms,
    TransientSendError,
)
from services.notifications.store import alerts, deliveries
from shared import metrics
from shared.db import aware, is_transient_error, one_of
from shared.events.envelope import parse_time
from shared.privacy import email_hash
from shared.templates import with_opt_out

log = logging.getLogger(__name__)
T = TypeVar("T")


# A welcome text older than this (since its opt-in was recorded) keeps quiet hours.
WELCOME_FRESH = timedelta(minutes=10)


class Stopped(Exception):
    """The worker is stopping: the work in hand was released, not finished."""


class Busy(Exception):
    """Another live worker still holds this batch's rows: try the batch again later."""


class ClaimLost(Exception):
    """Rows released for a backoff wait were taken over meanwhile (the wait outlasted the batch
    lease and a rebalance handed the batch to another worker): theirs to send now, not ours."""


class ProviderDown(Exception):
    """A provider kept refusing a dispatch batch's request, surely without sending it: its rows
    are queued again, and the sender pauses before trying the batch again (fanout)."""


class RetriesExhausted(Exception):
    """A provider kept failing; the rows were marked failed."""


@dataclass(frozen=True)
class AlertInfo:
    alert_id: str
    campaign_id: str
    organization_id: str
    status: str
    default_locale: str
    content: dict[str, dict[str, Any]]
    org_name: str
    postal_address: str
    org_tag: str
    campaign_titles: dict[str, str]

    def shared_values(self, locale: str) -> dict[str, str]:
        """The values of the content's {{ variables }} that every recipient shares."""
        return shared_values(
            self.org_name, self.postal_address, self.campaign_titles, locale, self.default_locale
        )


class Deliverer:
    """Runs the send paths for one worker thread (each thread has its own)."""

    def __init__(self, deps: Deps, stop: threading.Event | None = None) -> None:
        self.deps = deps
        self.stop = stop or threading.Event()
        self._alerts: dict[str, tuple[float, AlertInfo | None]] = {}
        self._alerts_lock = threading.Lock()  # the queue poller's lanes share this cache
        # Dispatch batch -> when (monotonic) a provider's outage first stopped it.
        self._down_since: dict[str, float] = {}
        # This worker's name in ledger claims, so a batch's next owner can tell it apart.
        self.instance = uuid.uuid4().hex[:8]

    @property
    def now(self) -> datetime:
        return self.deps.clock()

    # -- alert metadata --------------------------------------------------------------------------

    def alert(self, alert_id: str) -> AlertInfo | None:
        """Return an alert with its organization's footer details (cached a few seconds)."""
        hit = self._alerts.get(alert_id)
        if hit is not None and time.monotonic() - hit[0] < 5.0:
            return hit[1]
        with self.deps.engine.connect() as conn:
            row = conn.execute(select(alerts).where(alerts.c.alert_id == alert_id)).first()
            org = audience.organization(conn, row.organization_id) if row else None
            campaign = audience.campaign(conn, row.campaign_id) if row else None
        info = None
        if row is not None:
            info = AlertInfo(
                alert_id=row.alert_id,
                campaign_id=row.campaign_id,
                organization_id=row.organization_id,
                status=row.status,
                default_locale=row.default_locale,
                content=dict(row.content or {}),
                # As campaigns checked them at publishing: this service's copy of the
                # organization may not have its latest update yet (it is keyed apart).
                org_name=row.sender_name or (org.name if org else "Kinship"),
                postal_address=row.postal_address or ((org.postal_address or "") if org else ""),
                org_tag=org.token_tag
                if org
                else audience.org_token_tag(self.deps.settings.hash_key, row.organization_id),
                campaign_titles=dict(campaign.titles or {}) if campaign else {},
            )
        moment = time.monotonic()
        with self._alerts_lock:
            # Forget the alerts gone stale: a long-running sender sees thousands, each with its
            # content in every language.
            for stale in [k for k, (at, _) in self._alerts.items() if moment - at >= 5.0]:
                del self._alerts[stale]
            self._alerts[alert_id] = (moment, info)
        return info

    @staticmethod
    def cancelled(conn: Connection, alert_id: str) -> bool:
        """Whether the alert is cancelled, as stored now: the cached alert() is seconds old, and
        a sender that read it before an organizer's cancel would go on sending whole batches."""
        status = conn.execute(select(alerts.c.status).where(alerts.c.alert_id == alert_id))
        return status.scalar() == "cancelled"

    # -- retries ---------------------------------------------------------------------------------

    def wait(self, seconds: float) -> None:
        """Sleep for a backoff, unless the worker is asked to stop."""
        if self.stop.wait(seconds):
            raise Stopped()

    def with_retries(
        self,
        call: Callable[[], T],
        *,
        on_ambiguous: Callable[[], None],
        release: Callable[[], None],
        reclaim: Callable[[], bool],
        hold: Callable[[], bool],
        before_retry: Callable[[], None] | None = None,
    ) -> T:
        """Call a provider, retrying transient failures with backoff that honours Retry-After.

        Before waiting out a failure the provider surely refused, the rows are released to
        `queued`, so a crash during the wait leaves nothing ambiguous behind. After the wait
        they are taken back; if another worker took any of them meanwhile, nothing is sent
        (ClaimLost). After a failure that may have gone through (a timeout) the rows stay
        `sending`, held (their lease renewed) before and after the wait; if any was taken over
        meanwhile, nothing is sent again (ClaimLost), and the rows keep their state for
        whoever takes them over to count as ambiguous. before_retry runs after the wait, the
        rows held again: the send-time checks, which may raise to send nothing.
        """
        config = self.deps.config
        attempt = 0
        while True:
            attempt += 1
            try:
                return call()
            except TransientSendError as exc:
                if exc.ambiguous:
                    on_ambiguous()
                if attempt >= config.send_max_attempts:
                    raise
                delay = backoff_delay(
                    attempt, exc.retry_after, config.retry_base_delay, config.retry_max_delay
                )
                log.info(
                    "provider refused, will retry",
                    extra={"error": str(exc), "attempt": attempt, "delay": round(delay, 2)},
                )
                if not exc.ambiguous:
                    release()
                elif not hold():
                    raise ClaimLost() from exc
                self.wait(delay)  # Stopped leaves the rows released, for the next owner
                if not (hold() if exc.ambiguous else reclaim()):
                    raise ClaimLost() from exc
                if before_retry is not None:
                    before_retry()

    def settle_accepted(self, settle: Callable[[], T]) -> T:
        """Record what a provider accepted, however long the database takes to answer.

        The message went out: a settle lost to a database outage would leave its rows
        `sending`, and whoever took them over would send them again (and count them
        ambiguous). A settle that meets an outage (shared.db.is_transient_error) is tried
        again, 0.5 s then every 2 s, until it lands, also when the worker is asked to stop
        (a SIGTERM in the outage would otherwise cause that duplicate; a SIGKILL after the
        grace period leaves the rows counted ambiguous). Every 2 s, not more: past the rows'
        lease (an outage of minutes) other workers may claim them as soon as the database is
        back, and the first to ask wins."""
        delay = 0.5
        while True:
            try:
                return settle()
            except Exception as exc:
                if not is_transient_error(exc):
                    raise
                log.warning(
                    "recording a sent message waits for the database",
                    extra={"error": type(exc).__name__, "retry_in": delay},
                )
            time.sleep(delay)
            delay = 2.0

    # -- alert email batches ---------------------------------------------------------------------

    def send_alert_email_batch(self, data: Mapping[str, Any]) -> str:
        """Send one dispatch batch of an email alert; return 'done', 'skipped' or 'dead'."""
        info = self.alert(str(data["alert_id"]))
        if info is None:
            return "skipped"
        batch_id = str(data["batch_id"])
        batch_key = f"{batch_id}@{self.instance}"
        ids = [str(i) for i in data["supporter_ids"]]
        now = self.now
        with self.deps.engine.begin() as conn:
            people, allowed = audience.batch_recipients(conn, ids, info.organization_id, "email")
            cancelled = self.cancelled(conn, info.alert_id)

            def decide(sid: str) -> tuple[str, datetime | None]:
                if cancelled:
                    return CANCELLED
                return _email_decision(people.get(sid), sid in allowed)

            entries = [ledger.Entry(sid, decide(sid)[0], batch_key) for sid in ids]
            inserted = ledger.insert_batch(
                conn, entries, message_key=info.alert_id, channel="email", kind="alert",
                alert_id=info.alert_id, now=now,
            )  # fmt: skip
            fresh = ledger.by_status(inserted)
            mine = dict(fresh["sending"])  # _reclaim_own adds the rows it takes over
            moved = self._reclaim_own(
                conn, info.alert_id, "email", ids, fresh, batch_id, batch_key, mine, decide
            )
            ledger.bump(
                conn, info.alert_id, suppressed=len(fresh["suppressed"]) + moved["suppressed"],
                ambiguous=moved["ambiguous"],
            )  # fmt: skip
        if not mine:
            return "done"
        groups: dict[str, list[tuple[str, Supporter]]] = defaultdict(list)
        for sid, delivery_id in mine.items():
            person = people[sid]
            variant = (
                pick_variant(info.content, person.locale, info.default_locale, person.language)
                or ""
            )
            groups[variant].append((delivery_id, person))
        outcome = "done"
        order = list(groups.items())
        for index, (variant, members) in enumerate(order):
            # The language variants go one request each, one after another; the rows of those
            # still to go wait in `sending`, their lease renewed with the request's.
            later = [delivery_id for _, rest in order[index + 1 :] for delivery_id, _ in rest]
            # Stopped, a lost claim, refused credentials: rows no request carried are handed
            # back, so whoever takes them up sends them without counting them ambiguous.
            try:
                if index:
                    members = self._next_email_group(info, members, batch_key)
            except BaseException:
                self._release_unsent([d for d, _ in members] + later, batch_key)
                raise
            try:
                if members and self._send_email_group(info, variant, members, batch_key, later):
                    outcome = "dead"
            except BaseException:
                self._release_unsent(later, batch_key)
                raise
        return outcome

    def _next_email_group(
        self, info: AlertInfo, members: list[tuple[str, Supporter]], batch_key: str
    ) -> list[tuple[str, Supporter]]:
        """Take up a variant's rows after the variants before it went: still ours (else
        ClaimLost), and checked again as the batch's start checked them (an unsubscribe while
        the earlier requests waited out a Retry-After holds); return those that may go."""
        with self.deps.engine.begin() as conn:
            if not self._renew(conn, [delivery_id for delivery_id, _ in members], batch_key):
                raise ClaimLost()
        kept = self._recheck(info, "email", [(d, p, "") for d, p in members], batch_key)
        return [(delivery_id, person) for delivery_id, person, _ in kept]

    def _release_unsent(self, ids: Sequence[str], batch_key: str) -> None:
        """Hand back rows this batch holds in `sending` that no request carried."""
        if not ids:
            return
        try:
            with self.deps.engine.begin() as conn:
                ledger.transition(
                    conn, ids, "queued", self.now, from_status=("sending",), batch_key=batch_key
                )
        except Exception as exc:  # noqa: BLE001 - the rows stay held: counted ambiguous later
            log.warning("could not hand back unsent rows", extra={"error": type(exc).__name__})

    def _reclaim_own(
        self,
        conn: Connection,
        message_key: str,
        channel: str,
        ids: Sequence[str],
        fresh: Mapping[str, Mapping[str, str]],
        batch_id: str,
        batch_key: str,
        mine: dict[str, str],
        decide: Callable[[str], tuple[str, datetime | None]],
    ) -> dict[str, int]:
        """Take over rows an earlier delivery of this batch held; return how many of them are
        ambiguous, and how many moved to suppressed or deferred.

        Rows another worker touched within the lease belong to a worker that may still be
        sending them (a rebalance handed us its partition): raise Busy and come back later.
        Rows older than that were held by a worker that died; those it left in `sending` may
        or may not have reached the provider, and are resent and counted as ambiguous.
        The send-time checks apply to them as to fresh rows: decide(recipient) says whether a
        row may go now, is suppressed (an opt-out, a withdrawn consent or an erasure since the
        first delivery) or is deferred to a time (SMS quiet hours).
        """
        inserted = {sid for rows in fresh.values() for sid in rows}
        seen = [sid for sid in ids if sid not in inserted]
        counts = {"ambiguous": 0, "suppressed": 0, "deferred": 0}
        prefix = f"{batch_id}@"
        rows = [
            row
            for row in ledger.existing(conn, message_key, channel, seen)
            if row.status in ("queued", "sending") and str(row.batch_key or "").startswith(prefix)
        ]  # rows done already, or held by another batch, are never sent again here
        lease = timedelta(seconds=self.deps.config.batch_lease_seconds)
        if any(r.batch_key != batch_key and self.now - r.updated_at < lease for r in rows):
            raise Busy(batch_id)
        for row in rows:
            status, later = decide(row.recipient_id)
            if status == "deferred" and row.status == "sending":
                counts["ambiguous"] += 1  # it may have gone out already, and goes again later
            if status in ("suppressed", "deferred"):
                counts[status] += ledger.transition(
                    conn, [row.delivery_id], status, self.now, from_status=(row.status,),
                    batch_key=row.batch_key, keep_claim=status != "deferred", not_before=later,
                )  # fmt: skip
                continue  # not sent now (a suppressed one never again)
            # Each move is conditional on the row as read: one that changed since (its holder
            # took it back from a backoff wait) is still held, and not ours to send.
            if row.batch_key != batch_key and not ledger.transition(
                conn, [row.delivery_id], row.status, self.now,
                from_status=(row.status,), batch_key=row.batch_key, new_key=batch_key,
            ):  # fmt: skip
                raise Busy(batch_id)
            if row.status == "sending":
                counts["ambiguous"] += 1  # killed mid-request: it may have gone out already
            elif not ledger.transition(
                conn, [row.delivery_id], "sending", self.now,
                from_status=("queued",), batch_key=batch_key,
            ):  # fmt: skip
                raise Busy(batch_id)
            mine[row.recipient_id] = row.delivery_id
        return counts

    def _email_recipient(
        self, info: AlertInfo, delivery_id: str, person: Supporter, email: messages.BulkEmail
    ) -> Recipient:
        base = self.deps.settings.public_base_url
        token = compliance.list_token(self.deps.settings.hash_key, person.token, info.org_tag)
        return Recipient(
            email=str(person.email),
            name=person.given_name,
            # The alert id rides once, in the request's own custom_args, which SendGrid merges
            # into every personalization (and into each event it reports back).
            custom_args={"notification_id": delivery_id},
            headers=compliance.list_unsubscribe_header(compliance.unsubscribe_url(base, token)),
            substitutions=email.substitutions(token, person),
            subject=email.discreet_subject if person.discreet else None,
            # The organization's name in an inbox list can name the cause as well as a subject.
            from_name=self.deps.config.from_name if person.discreet else None,
        )

    def _send_email_group(
        self,
        info: AlertInfo,
        variant: str,
        members: list[tuple[str, Supporter]],
        batch_key: str,
        later: Sequence[str] = (),
    ) -> bool:
        """Send one variant's request; return whether the batch is dead (retries exhausted).
        later: the rows of the variants still to go, held along with these."""
        content = info.content.get(variant) or {}
        ids = [delivery_id for delivery_id, _ in members]
        if not content.get("email_subject") or not (
            content.get("email_text") or content.get("email_html")
        ):
            self._finish(ids, "failed", info.alert_id, batch_key, error_code="no_content")
            return False
        locale = variant or info.default_locale
        base, tag = self.deps.settings.public_base_url, messages.TOKEN_TAG
        footer = messages.Footer(
            info.org_name, info.postal_address, compliance.unsubscribe_url(base, tag),
            compliance.preferences_url(base, tag),
        )  # fmt: skip
        while members:
            # Built for the members as they are: after a regroup, one may have turned discreet
            # mode on during the wait (no preview of the text on a lock screen then).
            discreet = any(person.discreet for _, person in members)
            email = messages.bulk_email(
                content, locale, info.shared_values(locale), footer, discreet
            )
            ids = [delivery_id for delivery_id, _ in members]
            try:
                accepted = self._try_email_group(info, email, members, batch_key, later)
            except _Regroup as regroup:
                members = regroup.members  # some were suppressed during a retry's wait
                continue
            except PermanentSendError as exc:
                bad = {i for i in exc.bad_indices if i < len(members)}
                if bad and len(bad) < len(members):
                    # One bad address fails the whole request: fail it alone, send the rest.
                    bad_ids = [ids[i] for i in sorted(bad)]
                    self._finish(
                        bad_ids, "failed", info.alert_id, batch_key, error_code="invalid_address"
                    )
                    members = [m for i, m in enumerate(members) if i not in bad]
                    continue
                self._finish(ids, "failed", info.alert_id, batch_key, error_code=exc.code)
                return False
            except RetriesExhausted:
                return True
            self.settle_accepted(
                functools.partial(
                    self._finish, ids, "sent", info.alert_id, batch_key,
                    provider_message_id=accepted.provider_message_id,
                )
            )  # fmt: skip
            return False
        return False

    def _try_email_group(
        self,
        info: AlertInfo,
        email: messages.BulkEmail,
        members: list[tuple[str, Supporter]],
        batch_key: str,
        later: Sequence[str] = (),
    ) -> Accepted:
        """Send one request to members (rows held in `sending`), with its retries.

        A retry comes after a wait, as long as the provider's Retry-After: an unsubscribe, a
        bounce or an erasure in between holds for this request. Such rows move to suppressed
        before the retry, and _Regroup asks for a request without them."""
        batch = EmailBatch(
            from_email=self.deps.config.from_email,
            from_name=info.org_name or self.deps.config.from_name,
            subject=email.subject,
            text=email.text,
            html=email.html,
            recipients=[self._email_recipient(info, d, p, email) for d, p in members],
            custom_args={"alert_id": info.alert_id},
            headers=compliance.ONE_CLICK_HEADERS,
        )

        def recheck() -> None:
            kept = self._recheck(info, "email", [(d, p, "") for d, p in members], batch_key)
            if {d: _as_addressed(p) for d, p in members} != {
                d: _as_addressed(p) for d, p, _ in kept
            }:
                # Some were suppressed, or an address, a name or discreet mode changed, during
                # the wait: the request is built again for them as they are now.
                raise _Regroup([(delivery_id, person) for delivery_id, person, _ in kept])

        return self._send_rows(
            functools.partial(self.deps.email.send_batch, batch),
            [delivery_id for delivery_id, _ in members],
            info.alert_id,
            batch_key,
            before_retry=recheck,
            also_held=later,
        )

    def _renew(self, conn: Connection, ids: Sequence[str], batch_key: str) -> bool:
        """Renew the lease of rows held in `sending`; return whether every one is still ours."""
        renewed = ledger.transition(
            conn, ids, "sending", self.now, from_status=("sending",), batch_key=batch_key
        )
        return renewed == len(ids)

    def _send_rows(
        self,
        call: Callable[[], Accepted],
        ids: list[str],
        alert_id: str | None,
        batch_key: str,
        before_retry: Callable[[], None] | None = None,
        also_held: Sequence[str] = (),
    ) -> Accepted:
        """Call the provider for rows held in `sending`; on exhaustion mark them failed (and,
        for a dispatch batch's rows, the batch dead, in the same transaction).

        also_held: rows of the same batch waiting their own request, whose lease is renewed
        with these rows' (a long Retry-After must not leave them to another worker)."""

        def renew_later(conn: Connection) -> None:
            if also_held:
                self._renew(conn, also_held, batch_key)

        def ambiguous() -> None:
            with self.deps.engine.begin() as conn:
                ledger.bump(conn, alert_id, ambiguous=len(ids))

        def release() -> None:
            with self.deps.engine.begin() as conn:
                ledger.transition(
                    conn, ids, "queued", self.now, from_status=("sending",), batch_key=batch_key
                )
                renew_later(conn)

        def reclaim() -> bool:
            with self.deps.engine.begin() as conn:
                renew_later(conn)
                back = ledger.transition(
                    conn, ids, "sending", self.now, from_status=("queued",), batch_key=batch_key
                )
                if back == len(ids):
                    return True
                # Some were taken over during the wait: hand back the rest too, send none.
                ledger.transition(
                    conn, ids, "queued", self.now, from_status=("sending",), batch_key=batch_key
                )
                return False

        def hold() -> bool:
            with self.deps.engine.begin() as conn:
                renew_later(conn)
                return self._renew(conn, ids, batch_key)

        try:
            return self.with_retries(
                call, on_ambiguous=ambiguous, release=release, reclaim=reclaim, hold=hold,
                before_retry=before_retry,
            )  # fmt: skip
        except CredentialsRefused:
            release()  # refused before reading the message: nothing went out, nothing failed
            raise
        except TransientSendError as exc:
            batch_id = ledger.dispatch_batch(batch_key)
            if not exc.ambiguous and batch_id is not None and self._may_wait_out(batch_id):
                release()  # the provider refused it: nothing went out
                raise ProviderDown(str(exc)) from exc
            self._finish(
                ids, "failed", alert_id, batch_key, error_code=f"retries_exhausted:{exc}"[:64],
                dead_batch=batch_id,
            )  # fmt: skip
            raise RetriesExhausted(str(exc)) from exc

    def _may_wait_out(self, batch_id: str) -> bool:
        """Whether a provider's outage that stopped this batch is still young enough to wait
        out (config.provider_outage_seconds from the first time it stopped it)."""
        moment = time.monotonic()
        since = self._down_since.setdefault(batch_id, moment)
        return moment - since < self.deps.config.provider_outage_seconds

    def batch_finished(self, batch_id: str) -> None:
        """Forget a batch's outage once it is sent (or given up)."""
        self._down_since.pop(batch_id, None)

    def _finish(
        self,
        ids: list[str],
        status: str,
        alert_id: str | None,
        batch_key: str | None,
        *,
        provider_message_id: str | None = None,
        error_code: str | None = None,
        claim_next: str | None = None,
        dead_batch: str | None = None,
    ) -> bool:
        """Record an outcome for rows this worker holds and count it on the alert; in the same
        transaction claim the row claim_next (return whether it is now held) and record the
        dispatch batch dead_batch as dead."""
        held = False
        engine = self.deps.engine
        with engine.begin() as conn:
            if claim_next is not None:
                held = bool(
                    ledger.transition(
                        conn,
                        [claim_next],
                        "sending",
                        self.now,
                        from_status=("queued",),
                        batch_key=batch_key,
                    )  # fmt: skip
                )
            moved = ledger.transition(
                conn,
                ids,
                status,
                self.now,
                from_status=("sending", "queued"),
                batch_key=batch_key,
                provider_message_id=provider_message_id,
                error_code=error_code,
                count_attempt=True,
            )
            ledger.bump(conn, alert_id, **{status: moved})
            if dead_batch is not None and alert_id is not None:
                ledger.mark_dead_batch(conn, dead_batch, alert_id, self.now)
            if status == "failed" and alert_id is not None and moved:
                self._failed_events(conn, ids, error_code)
        return held

    def _failed_events(self, conn: Connection, ids: list[str], error_code: str | None) -> None:
        rows = conn.execute(
            select(deliveries).where(one_of(conn, deliveries.c.delivery_id, ids))
        ).all()
        for row in rows:
            event = compliance.delivery_event("failed", row, self.now, error_code)
            if event is not None:
                self.deps.outbox.add(conn, event)

    def fail_batch(self, data: Mapping[str, Any], channel: str, error_code: str) -> None:
        """Give a dispatch batch up: fail every recipient it still owes, and record it dead.

        For a batch that fails the same way however often it is tried (a fault in our own code
        or data, not in the provider or the database): without this its partition stalled for
        ever, and its alert never finished. Recipients the batch never reached get a failed
        row, so that later redeliveries send them nothing. Rows it left queued or sending (the
        error may have come mid-request) fail too; rows already settled stay as they are, and
        rows a live worker holds raise Busy, as when a batch is taken over."""
        alert_id, batch_id = str(data["alert_id"]), str(data["batch_id"])
        batch_key = f"{batch_id}@{self.instance}"
        ids = [str(i) for i in data["supporter_ids"]]
        now = self.now
        with self.deps.engine.begin() as conn:
            inserted = ledger.insert_batch(
                conn, [ledger.Entry(sid, "failed", None) for sid in ids], message_key=alert_id,
                channel=channel, kind="alert", alert_id=alert_id, now=now,
            )  # fmt: skip
            failed = [delivery_id for delivery_id, _, _ in inserted]
            ledger.transition(
                conn, failed, "failed", now, from_status=("failed",), error_code=error_code
            )
            fresh = {sid for _, sid, _ in inserted}
            seen = [sid for sid in ids if sid not in fresh]
            held = [
                row
                for row in ledger.existing(conn, alert_id, channel, seen)
                if row.status in ("queued", "sending")
                and str(row.batch_key or "").startswith(f"{batch_id}@")
            ]
            lease = timedelta(seconds=self.deps.config.batch_lease_seconds)
            if any(r.batch_key != batch_key and now - r.updated_at < lease for r in held):
                raise Busy(batch_id)
            for row in held:  # each under the key it was read with: a change since is kept
                if ledger.transition(
                    conn, [row.delivery_id], "failed", now, from_status=(row.status,),
                    batch_key=row.batch_key, error_code=error_code,
                ):  # fmt: skip
                    failed.append(row.delivery_id)
            ledger.bump(conn, alert_id, failed=len(failed))
            ledger.mark_dead_batch(conn, batch_id, alert_id, now)
            self._failed_events(conn, failed, error_code)

    def dead_batch_unlettered(self, batch_id: str) -> bool:
        """Return whether the batch died and is not on the dead-letter topic yet."""
        with self.deps.engine.connect() as conn:
            return ledger.dead_batch_unlettered(conn, batch_id)

    def dead_lettered(self, batch_id: str) -> None:
        with self.deps.engine.begin() as conn:
            ledger.stamp_dead_lettered(conn, batch_id, self.now)

    # -- alert SMS batches -----------------------------------------------------------------------

    def send_alert_sms_batch(self, data: Mapping[str, Any], bucket: TokenBucket) -> str:
        """Send one dispatch batch of an SMS alert, paced by the bucket; defer quiet hours."""
        info = self.alert(str(data["alert_id"]))
        if info is None:
            return "skipped"
        batch_id = str(data["batch_id"])
        batch_key = f"{batch_id}@{self.instance}"
        ids = [str(i) for i in data["supporter_ids"]]
        now = self.now
        with self.deps.engine.begin() as conn:
            people, allowed = audience.batch_recipients(conn, ids, info.organization_id, "sms")
            cancelled = self.cancelled(conn, info.alert_id)

            def decide(sid: str) -> tuple[str, datetime | None]:
                if cancelled:
                    return CANCELLED
                return self._sms_decision(people.get(sid), sid in allowed, now)

            entries = []
            for sid in ids:
                status, later = decide(sid)
                key = None if later else batch_key  # the poller picks deferred rows
                entries.append(ledger.Entry(sid, status, key, later))
            inserted = ledger.insert_batch(
                conn, entries, message_key=info.alert_id, channel="sms", kind="alert",
                alert_id=info.alert_id, now=now,
            )  # fmt: skip
            fresh = ledger.by_status(inserted)
            queued = fresh["queued"]
            held: dict[str, str] = {}
            moved = self._reclaim_own(
                conn, info.alert_id, "sms", ids, fresh, batch_id, batch_key, held, decide
            )
            ledger.bump(
                conn, info.alert_id, suppressed=len(fresh["suppressed"]) + moved["suppressed"],
                deferred=len(fresh["deferred"]) + moved["deferred"], ambiguous=moved["ambiguous"],
            )  # fmt: skip
        # Rows reclaimed by _reclaim_own are in `sending`; fresh ones still `queued`.
        work = [(d, people[s], "queued") for s, d in queued.items()]
        work += [(d, people[s], "sending") for s, d in held.items()]
        lanes = max(1, min(self.deps.config.sms_concurrency, len(work)))
        if lanes == 1:
            return self._send_sms_lane(info, work, batch_key, bucket)
        outcome, stopped = "done", False
        with ThreadPoolExecutor(lanes) as pool:
            futures = [
                pool.submit(self._send_sms_lane, info, work[i::lanes], batch_key, bucket)
                for i in range(lanes)
            ]
            for future in futures:
                try:
                    if future.result() == "dead":
                        outcome = "dead"
                except Stopped:
                    stopped = True
        if stopped:
            raise Stopped()
        return outcome

    def _sms_decision(
        self, person: Supporter | None, allowed: bool, now: datetime
    ) -> tuple[str, datetime | None]:
        """Whether a text may go to person now ("queued"), is "suppressed" (no consent, an
        opt-out, no number), or is "deferred" to the time returned (quiet hours)."""
        if not allowed or person is None or not person.phone:
            return "suppressed", None
        later = self._night_until(person, now)
        return ("deferred", later) if later else ("queued", None)

    def _night_until(self, person: Supporter, now: datetime) -> datetime | None:
        """When a text to person may go, None for now: the configured daytime in their zone
        (or in each of the zones it names, domain.next_sms_window)."""
        config = self.deps.config
        return next_sms_window(
            now, person.time_zone, config.quiet_start_hour, config.quiet_end_hour
        )

    def _recheck(
        self,
        info: AlertInfo,
        channel: str,
        work: Sequence[tuple[str, Supporter, str]],
        batch_key: str,
    ) -> list[tuple[str, Supporter, str]]:
        """Check messages still to go as the batch's start did; return those that may go.

        An email request's retry may come minutes later (a provider's Retry-After). A batch of
        texts takes its size over the SMS rate to send (10 s by default, 100 s at a long
        code's one text a second). A STOP, a withdrawn consent, a new number, the alert's
        cancellation or 21:00 in that time holds for the texts not yet sent: their rows move
        to suppressed, or to deferred for the queue poller, and are counted, in one
        transaction. Each text kept carries its
        supporter as now stored. A row this lane claimed ahead (`sending`, never requested)
        moves as a queued one does. It takes a transaction from the pool, beside the lane's
        own connection in autocommit, as a failed text's settling does."""
        ids = [person.supporter_id for _, person, _ in work]
        now = self.now
        kept: list[tuple[str, Supporter, str]] = []
        suppressed: list[str] = []
        deferred: dict[datetime, list[str]] = defaultdict(list)
        with self.deps.engine.begin() as conn:
            people, allowed = audience.batch_recipients(conn, ids, info.organization_id, channel)
            cancelled = self.cancelled(conn, info.alert_id)
            for delivery_id, person, state in work:
                sid = person.supporter_id
                if cancelled:
                    status, later = CANCELLED
                elif channel == "sms":
                    status, later = self._sms_decision(people.get(sid), sid in allowed, now)
                else:
                    status, later = _email_decision(people.get(sid), sid in allowed)
                if status == "suppressed":
                    suppressed.append(delivery_id)
                elif later is not None:
                    deferred[later].append(delivery_id)
                else:
                    kept.append((delivery_id, people[sid], state))
            moved = {"suppressed": ledger.transition(
                conn, suppressed, "suppressed", now,
                from_status=("queued", "sending"), batch_key=batch_key,
            ), "deferred": 0}  # fmt: skip
            for later, rows in deferred.items():
                moved["deferred"] += ledger.transition(
                    conn, rows, "deferred", now, from_status=("queued", "sending"),
                    batch_key=batch_key, keep_claim=False, not_before=later,
                )  # fmt: skip
            ledger.bump(conn, info.alert_id, **moved)
        return kept

    def _send_sms_lane(
        self,
        info: AlertInfo,
        work: list[tuple[str, Supporter, str]],
        batch_key: str,
        bucket: TokenBucket,
    ) -> str:
        """Send texts one after another, each claimed in the ledger before its request.

        A batch runs a few lanes at once (a provider's latency, not its rate, would otherwise
        cap one thread). Within a lane the outcome of one text and the claim of the next share
        one commit, so a text costs one transaction.
        """
        with self._lane_connection() as lane:
            return self._send_sms_lane_on(lane, info, work, batch_key, bucket)

    def _lane_connection(self) -> AbstractContextManager[Connection | None]:
        """A lane's own connection in autocommit for its texts' settles (PostgreSQL), or None.

        Every lane counts on the same alert row: inside BEGIN ... COMMIT that row stayed locked
        over two more round trips, and the lanes queued on it. Checked out once a lane, not
        once a text: the checkout and the switch to autocommit and back cost the client more
        CPU than the statement."""
        engine = self.deps.engine
        if engine.dialect.name != "postgresql":
            return nullcontext(None)
        return engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def _one_statement(self, lane: Connection | None) -> AbstractContextManager[Connection]:
        """Where a lane runs a single statement: on its own connection when it holds one.

        A lane that took a second connection from the pool for its claims waited there with
        every other lane; when the lanes held the whole pool, none could go on until the pool's
        timeout (30 s). Settling a text that failed still takes a transaction from the pool,
        which is sized for that (NotificationConfig.pool_size)."""
        return nullcontext(lane) if lane is not None else self.deps.engine.begin()

    def _send_sms_lane_on(
        self,
        lane: Connection | None,
        info: AlertInfo,
        work: list[tuple[str, Supporter, str]],
        batch_key: str,
        bucket: TokenBucket,
    ) -> str:
        outcome = "done"
        claimed = False  # whether the previous commit claimed this item already
        ahead: str | None = None  # the item it claimed
        recheck_every = self.deps.config.sms_recheck_seconds
        checked = time.monotonic()
        index = 0
        unsent: str | None = None  # the row in hand, until its request may have gone
        try:
            while index < len(work):
                if time.monotonic() - checked >= recheck_every:
                    work = work[:index] + self._recheck(info, "sms", work[index:], batch_key)
                    checked = time.monotonic()
                    if index == len(work):
                        break
                    # The row claimed ahead may be the one that moved; a kept one is still held.
                    claimed = claimed and work[index][0] == ahead
                delivery_id, person, state = work[index]
                index += 1
                unsent = delivery_id
                if self.stop.is_set():
                    raise Stopped()  # this row, claimed or not, is handed back below
                bucket.acquire()
                if self._night_until(person, self.now) is not None:
                    # The wait for a token (shared by every lane, at a long code's one text
                    # a second) ran past the evening's end in this person's zone: check this
                    # row and the rest again now, which defers them.
                    index -= 1
                    checked = time.monotonic() - recheck_every
                    continue
                if state == "queued" and not claimed:
                    with self._one_statement(lane) as conn:
                        if not ledger.transition(
                            conn, [delivery_id], "sending", self.now,
                            from_status=("queued",), batch_key=batch_key,
                        ):  # fmt: skip
                            continue  # no longer ours to send
                elif state == "sending":
                    # Taken over when the batch began: a slow lane may reach it after the lease,
                    # when yet another worker may have taken it over in turn.
                    with self._one_statement(lane) as conn:
                        if not self._renew(conn, [delivery_id], batch_key):
                            continue  # no longer ours to send
                following = work[index] if index < len(work) else None
                ahead = following[0] if following and following[2] == "queued" else None
                unsent = None
                sent, claimed = self._send_sms_row(
                    lane, info, delivery_id, person, batch_key, ahead
                )
                if sent == "dead":
                    outcome = "dead"
        except BaseException:
            # Rows this lane never requested go back to queued (a provider's outage, refused
            # credentials, a stop): left `sending`, the batch's next try counted each as
            # ambiguous, as if it might have gone out, once per try of an hour's outage.
            rest = [delivery_id for delivery_id, _, _ in work[index:]]
            self._release_unsent([unsent, *rest] if unsent else rest, batch_key)
            raise
        return outcome

    def _sms_body(self, info: AlertInfo, person: Supporter) -> str | None:
        variant = pick_variant(info.content, person.locale, info.default_locale, person.language)
        content = info.content.get(variant or "") or {}
        # A discreet supporter gets the discreet text or none: never the one naming the cause.
        # Their language may lack one that the default language has: better that than nothing.
        key = "sms_discreet_text" if person.discreet else "sms_text"
        template = content.get(key)
        if not template and person.discreet:
            fallback = info.content.get(info.default_locale) or {}
            if fallback.get(key):
                template, variant = fallback[key], info.default_locale
        if not template:
            return None
        locale = variant or info.default_locale
        body = messages.fill_text(template, locale, info.shared_values(locale), person)
        return with_opt_out(body, written=template, locale=locale)

    @staticmethod
    def _no_sms_body(person: Supporter) -> str:
        """Why an alert has no text for person (_sms_body gave None): the error code."""
        return "no_discreet_text" if person.discreet else "no_content"

    def _status_callback(self, delivery_id: str) -> str:
        return f"{self.deps.settings.public_base_url}/api/v1/callbacks/twilio/status/{delivery_id}"

    def _send_sms_row(
        self,
        lane: Connection | None,
        info: AlertInfo,
        delivery_id: str,
        person: Supporter,
        batch_key: str,
        claim_next: str | None = None,
    ) -> tuple[str, bool]:
        """Send one claimed text; return 'done' or 'dead', and whether claim_next is now held."""
        body = self._sms_body(info, person)
        if body is None or not person.phone:
            held = self._finish(
                [delivery_id], "failed", info.alert_id, batch_key,
                error_code=self._no_sms_body(person), claim_next=claim_next,
            )  # fmt: skip
            return "done", held
        sms = Sms(
            to=person.phone,
            body=body,
            status_callback=self._status_callback(delivery_id),
            custom_args={"notification_id": delivery_id, "alert_id": info.alert_id},
        )

        def recheck() -> None:
            # A retry comes after a wait, as long as the provider's Retry-After: a STOP, a new
            # number, discreet mode or 21:00 in between holds for this text as for those still
            # to go. The text is made again for the person as now stored (a 21610 then stops
            # the number it went to).
            nonlocal sms, person
            kept = self._recheck(info, "sms", [(delivery_id, person, "")], batch_key)
            if not kept:
                raise _Withheld()
            person = kept[0][1]
            again = self._sms_body(info, person)
            if again is None:  # discreet since, and the alert has no discreet text
                self._finish(
                    [delivery_id], "failed", info.alert_id, batch_key,
                    error_code=self._no_sms_body(person),
                )  # fmt: skip
                raise _Withheld()
            sms = dataclasses.replace(sms, to=str(person.phone), body=again)

        try:
            accepted = self._send_rows(
                lambda: self.deps.sms.send(sms), [delivery_id], info.alert_id, batch_key,
                before_retry=recheck,
            )  # fmt: skip
        except _Withheld:
            return "done", False  # moved to suppressed or deferred, and counted
        except PermanentSendError as exc:
            held = self._finish(
                [delivery_id], "failed", info.alert_id, batch_key,
                error_code=exc.code, claim_next=claim_next,
            )  # fmt: skip
            if exc.opt_out and person.phone_hash:
                with self.deps.engine.begin() as conn:
                    compliance.sms_stop(conn, self.deps.outbox, person.phone_hash, self.now)
            return "done", held
        except RetriesExhausted:
            return "dead", False  # the next text is claimed before its own request
        if lane is not None:  # one statement instead of three (PostgreSQL)
            try:
                held = ledger.settle_sent(
                    lane, delivery_id, batch_key, self.now, alert_id=info.alert_id,
                    provider_message_id=accepted.provider_message_id, claim_next=claim_next,
                )  # fmt: skip
                return "done", held
            except Exception as exc:
                if not is_transient_error(exc):
                    raise
                # The lane's connection met an outage: settle through the pool, as below.
        held = self.settle_accepted(
            functools.partial(
                self._finish, [delivery_id], "sent", info.alert_id, batch_key,
                provider_message_id=accepted.provider_message_id, claim_next=claim_next,
            )
        )  # fmt: skip
        return "done", held

    # -- queued single messages (transactional, deferred SMS) ------------------------------------

    def claim_due(self, limit: int = 50, channel: str | None = None) -> tuple[str, list[Any]]:
        """Claim due queued/deferred rows (and rows a dead poller held), of one channel if
        given; return claim and rows."""
        now = self.now
        lease = now - timedelta(seconds=self.deps.config.claim_lease_seconds)
        claim = f"poll:{uuid.uuid4()}"
        with self.deps.engine.begin() as conn:
            # A welcome or a link first: at 08:00 twenty thousand texts deferred overnight
            # are due, and sent at the SMS rate would hold a welcome up for half an hour.
            ids: list[str] = []
            for alerts in (False, True):
                candidates = ledger.pollable(now, lease, limit - len(ids), channel, alerts)
                if conn.dialect.name == "postgresql":
                    candidates = candidates.with_for_update(skip_locked=True)
                ids += conn.execute(candidates).scalars()
                if len(ids) >= limit:
                    break
            if not ids:
                return claim, []
            rows = conn.execute(select(deliveries).where(deliveries.c.delivery_id.in_(ids))).all()
            waking: dict[str | None, int] = defaultdict(int)
            for row in rows:
                if row.status == "deferred":
                    waking[row.alert_id] += 1
            conn.execute(
                update(deliveries)
                .where(deliveries.c.delivery_id.in_(ids))
                .values(batch_key=claim, claimed_at=now)
            )
            conn.execute(
                update(deliveries)
                .where(deliveries.c.delivery_id.in_(ids), deliveries.c.status == "deferred")
                .values(status="queued")
            )
            for alert_id, count in waking.items():
                ledger.bump(conn, alert_id, deferred=-count)
        return claim, list(rows)

    def send_claimed(self, claim: str, row: Any) -> None:
        """Send one claimed row once; transient failures reschedule it with backoff."""
        now = self.now
        if row.status == "sending":  # its poller died mid-request: it may have gone out
            self._count_ambiguous(row)
        try:
            call = self._prepare_single(row, claim)
        except _Skip as skip:
            self._finish_single(claim, row, skip.status, error_code=skip.code)
            return
        if call is None:
            return  # re-deferred
        with self.deps.engine.begin() as conn:
            # The claim's lease counts from here: a poller sends its rows one after another,
            # and one whose lease ran out on the earlier ones is still alive and sending this.
            held = ledger.transition(
                conn, [row.delivery_id], "sending", now,
                from_status=("queued", "sending"), batch_key=claim, new_key=claim,
            )  # fmt: skip
        if not held:
            return
        try:
            accepted = call()
        except CredentialsRefused:
            # Nothing is wrong with this message: it waits, unfailed, for the key to be fixed.
            pause = timedelta(seconds=self.deps.config.credentials_pause_seconds)
            with self.deps.engine.begin() as conn:
                ledger.transition(
                    conn, [row.delivery_id], "queued", self.now,
                    from_status=("sending",), batch_key=claim, keep_claim=False,
                    not_before=self.now + pause,
                )  # fmt: skip
            raise
        except TransientSendError as exc:
            if exc.ambiguous:
                self._count_ambiguous(row)
            attempts = int(row.attempts or 0) + 1
            config = self.deps.config
            if attempts >= config.queued_max_attempts:
                self._finish_single(claim, row, "failed", error_code="retries_exhausted")
                return
            delay = backoff_delay(
                attempts, exc.retry_after, config.retry_base_delay, config.queued_retry_max_delay
            )
            with self.deps.engine.begin() as conn:
                ledger.transition(
                    conn, [row.delivery_id], "queued", self.now,
                    from_status=("sending",), batch_key=claim, keep_claim=False,
                    not_before=self.now + timedelta(seconds=delay), count_attempt=True,
                )  # fmt: skip
            return
        except PermanentSendError as exc:
            self._finish_single(claim, row, "failed", error_code=exc.code)
            if exc.opt_out:
                self._opt_out(row)
            return
        self.settle_accepted(
            functools.partial(
                self._finish_single, claim, row, "sent",
                provider_message_id=accepted.provider_message_id,
            )
        )  # fmt: skip

    def _count_ambiguous(self, row: Any) -> None:
        """Count a possible duplicate: on its alert's counters, and (an alert's or not) in the
        metrics and the log, so that none goes unreported."""
        if row.alert_id is not None:
            with self.deps.engine.begin() as conn:
                ledger.bump(conn, row.alert_id, ambiguous=1)
        metrics.AMBIGUOUS_SENDS.labels(row.channel, row.kind).inc()
        log.warning(
            "message may be sent twice",
            extra={"delivery_id": row.delivery_id, "kind": row.kind, "channel": row.channel},
        )

    def note_error(self, claim: str, row: Any, exc: Exception) -> None:
        """Settle a claimed row whose sending raised an error of our own (not a provider's
        answer, not an outage): retried later like a provider's 5xx, up to
        queued_max_attempts, then failed (`error:<class>`), so one bad row neither holds up
        the rest of its claim until the lease runs out nor comes back for ever. A row already
        `sending` may have reached the provider: counted as ambiguous."""
        log.warning(
            "queued message not sent: an error of its own",
            extra={"delivery_id": row.delivery_id, "kind": row.kind, "error": type(exc).__name__},
        )
        with self.deps.engine.connect() as conn:
            current = ledger.by_id(conn, row.delivery_id)
        if current is None or current.batch_key != claim:
            return  # settled meanwhile, or taken over: not ours to move
        config = self.deps.config
        attempts = int(current.attempts or 0) + 1
        if attempts >= config.queued_max_attempts:
            self._finish_single(claim, row, "failed", error_code=f"error:{type(exc).__name__}"[:64])
            return
        delay = backoff_delay(
            attempts, None, config.retry_base_delay, config.queued_retry_max_delay
        )
        if current.status == "sending":
            # The request may have gone out (a reply the client could not read): counted, and
            # tried again no sooner than a dead poller's row would be.
            if row.status != "sending":  # send_claimed counted a dead poller's row already
                self._count_ambiguous(row)
            delay = max(delay, config.claim_lease_seconds)
        with self.deps.engine.begin() as conn:
            ledger.transition(
                conn, [row.delivery_id], "queued", self.now,
                from_status=("queued", "sending"), batch_key=claim, keep_claim=False,
                not_before=self.now + timedelta(seconds=delay), count_attempt=True,
            )  # fmt: skip

    def unclaim(self, claim: str, rows: Sequence[Any]) -> None:
        """Hand back claimed rows not sent (the poller pauses): due again at once."""
        with self.deps.engine.begin() as conn:
            ledger.transition(
                conn, [row.delivery_id for row in rows], "queued", self.now,
                from_status=("queued",), batch_key=claim, keep_claim=False,
            )  # fmt: skip

    def _opt_out(self, row: Any) -> None:
        with self.deps.engine.begin() as conn:
            people = audience.load_supporters(conn, [row.recipient_id])
            person = people.get(row.recipient_id)
            if person is not None and person.phone_hash:
                compliance.sms_stop(conn, self.deps.outbox, person.phone_hash, self.now)

    def _finish_single(
        self,
        claim: str,
        row: Any,
        status: str,
        *,
        provider_message_id: str | None = None,
        error_code: str | None = None,
    ) -> None:
        now = self.now
        with self.deps.engine.begin() as conn:
            moved = ledger.transition(
                conn,
                [row.delivery_id],
                status,
                now,
                from_status=("queued", "sending"),
                batch_key=claim,
                provider_message_id=provider_message_id,
                error_code=error_code,
                count_attempt=status != "suppressed",
            )
            if not moved:
                return
            if row.kind in SECRET_LINKS:
                # The rest stays: an unsubscribe from this email is for its organization.
                kept = {k: v for k, v in (row.params or {}).items() if k not in LINK_PARAMS}
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.delivery_id == row.delivery_id)
                    .values(params=kept or None)
                )
            ledger.bump(conn, row.alert_id, **{status: 1})
            if status in ("sent", "failed") and (row.alert_id is None or status == "failed"):
                fresh = ledger.by_id(conn, row.delivery_id)
                event = compliance.delivery_event(status, fresh, now, error_code)
                if event is not None:
                    self.deps.outbox.add(conn, event)

    def _prepare_single(self, row: Any, claim: str) -> Callable[[], Accepted] | None:
        """Render one queued row; return the provider call, None if re-deferred, or raise _Skip."""
        params = dict(row.params or {})
        with self.deps.engine.connect() as conn:
            if str(row.recipient_id).startswith(ledger.ORGANIZATION):
                org = audience.organization(conn, str(row.recipient_id)[len(ledger.ORGANIZATION) :])
                if org is None or not org.contact_email:
                    raise _Skip("failed", "no_contact")
                contact = str(org.contact_email)
                # Its own mail, whatever it unsubscribed from as a supporter; not to an address
                # that bounces or complained (held for every organization).
                if audience.suppressed_hashes(
                    conn, [email_hash(self.deps.settings.hash_key, contact)], "email", None,
                    ORGANIZATION_STOPPED_BY,
                ):  # fmt: skip
                    raise _Skip("suppressed", "suppressed")
                return self._single_email(row, params, contact, None, None, conn)
            person = audience.load_supporters(conn, [row.recipient_id]).get(row.recipient_id)
            if person is None:
                raise _Skip("suppressed", "erased")
            org_id = params.get("organization_id")
            if row.alert_id is not None:
                info = self.alert(str(row.alert_id))
                if info is None or self.cancelled(conn, info.alert_id):
                    raise _Skip("suppressed", "cancelled")
                org_id = info.organization_id
            if row.channel == "email":
                # Links the person needs to finish what they asked for go whatever they
                # unsubscribed from: the erasure link, and the link that confirms a signature
                # (else someone who once unsubscribed, or was erased, could never sign a double
                # opt-in petition again). An address that bounces still stops both; a spam
                # complaint stops a confirmation, which anyone can have sent by typing it.
                reasons = LINK_STOPPED_BY.get(row.kind)
                if not person.email or audience.suppressed_hashes(
                    conn, [person.email_hash], "email", org_id, reasons
                ):
                    raise _Skip("suppressed", "suppressed")
                return self._single_email(row, params, person.email, person, org_id, conn)
            if not person.phone or audience.suppressed_hashes(
                conn, [person.phone_hash], "sms", org_id
            ):
                raise _Skip("suppressed", "suppressed")
            # Every text, a welcome too, goes only under a consent standing now, to the number
            # it was given with: a welcome waiting for the morning must not reach a person who
            # turned texts off in the night, nor a number someone else typed with their address.
            if org_id is None or row.recipient_id not in audience.consented_ids(
                conn, [row.recipient_id], org_id, "sms"
            ):
                raise _Skip("suppressed", "no_consent")
            if row.alert_id is not None:
                later = self._night_until(person, self.now)
                if later is not None:
                    self._redefer(row, later, claim)
                    return None
                info = self.alert(str(row.alert_id))
                assert info is not None
                body = self._sms_body(info, person)
                if body is None:
                    raise _Skip("failed", self._no_sms_body(person))
                custom = {"notification_id": row.delivery_id, "alert_id": str(row.alert_id)}
            else:
                later = self._welcome_window(row, person, params)
                if later is not None:
                    self._redefer(row, later, claim)
                    return None
                if person.discreet or params.get("discreet"):
                    # Texts show on lock screens: a discreet supporter's never name the
                    # organization (the cause), as their alerts' discreet text does not.
                    params = {**params, "org": self.deps.config.from_name}
                body = messages.render_sms(row.kind, person.locale, params)
                custom = {"notification_id": row.delivery_id}
            if not body:
                raise _Skip("failed", "no_content")
            sms = Sms(person.phone, body, self._status_callback(row.delivery_id), custom)
            return lambda: self.deps.sms.send(sms)

    def _welcome_window(
        self, row: Any, person: Supporter, params: Mapping[str, Any]
    ) -> datetime | None:
        """When a welcome text may go, None for now. It answers the person's own opt-in, and
        goes at once while that is fresh (WELCOME_FRESH), as carriers expect; one sent later
        (a backlog, a retry, a provider's pause) waits for daytime as an alert's texts do.
        Fresh from the opt-in itself (the signature's time), not from when it was queued: a
        consumer catching up at 02:30 on a 23:00 signature queues it then."""
        opted = params.get("opted_in_at")
        since = parse_time(str(opted)) if opted else aware(row.created_at)
        if self.now - since <= WELCOME_FRESH:
            return None
        return self._night_until(person, self.now)

    def _redefer(self, row: Any, when: datetime, claim: str) -> None:
        """Defer a row this poller holds (a poller whose lease on it ran out, and another
        took it and is sending it, must leave it alone)."""
        with self.deps.engine.begin() as conn:
            moved = ledger.transition(
                conn, [row.delivery_id], "deferred", self.now, from_status=("queued", "sending"),
                batch_key=claim, keep_claim=False, not_before=when,
            )  # fmt: skip
            ledger.bump(conn, row.alert_id, deferred=moved)

    def _single_email(
        self,
        row: Any,
        params: dict[str, Any],
        address: str,
        person: Supporter | None,
        org_id: str | None,
        conn: Connection,
    ) -> Callable[[], Accepted]:
        locale = person.locale if person else str(params.get("locale") or "en")
        footer = None
        # An alert's test send comes from its lead, as the alert will (handle_alert_test).
        org_name = str(params.get("from_name") or self.deps.config.from_name)
        if person is not None and org_id:
            org = audience.organization(conn, org_id)
            tag = (
                org.token_tag
                if org
                else audience.org_token_tag(self.deps.settings.hash_key, org_id)
            )
            token = compliance.list_token(self.deps.settings.hash_key, person.token, tag)
            base = self.deps.settings.public_base_url
            org_name = org.name if org else org_name
            footer = messages.Footer(
                org_name,
                (org.postal_address or "") if org else "",
                compliance.unsubscribe_url(base, token),
                compliance.preferences_url(base, token),
            )
        params.setdefault("name", person.given_name if person else None)
        params.setdefault("pronouns", person.pronouns if person else None)
        language = person.language if person else None
        params.setdefault("title", self._petition_title(conn, params, locale, language))
        rendered = messages.render_transactional(row.kind, locale, params, footer)
        if (person is not None and person.discreet) or params.get("discreet"):
            # A subject, a preview and a sender's name show on lock screens and in shared
            # inboxes: a discreet supporter's never name the cause (petition, organization).
            rendered = messages.discreet(rendered, locale)
            org_name = self.deps.config.from_name
        subject = rendered.subject
        recipient = Recipient(
            email=address,
            name=person.given_name if person else None,
            custom_args={"notification_id": row.delivery_id},
        )
        batch = EmailBatch(
            from_email=self.deps.config.from_email,
            from_name=org_name,
            subject=subject,
            text=rendered.text,
            html=rendered.html,
            recipients=[recipient],
        )
        return lambda: self.deps.email.send_batch(batch)

    @staticmethod
    def _petition_title(
        conn: Connection, params: Mapping[str, Any], locale: str, language: str | None
    ) -> str:
        """The petition's title as the person read it: the variant they signed (params'
        locale), else the one in their language or the locale Kinship writes to them in."""
        petition_id = params.get("petition_id")
        row = audience.petition(conn, str(petition_id)) if petition_id else None
        if row is None:
            return str(params.get("title") or "")
        titles = dict(row.titles or {})
        signed = params.get("locale")
        if signed in titles:
            return str(titles[signed])
        key = pick_variant(titles, locale, row.default_locale, language)
        return str(titles.get(key or "", "")) if key else ""


# The suppressions that stop a message a person needs to act on (kind: reasons); any
# suppression stops every other message.
ORGANIZATION_STOPPED_BY = (*audience.UNDELIVERABLE, "complaint")
LINK_STOPPED_BY = {
    "erase": audience.UNDELIVERABLE,
    "confirm_preferences": audience.UNDELIVERABLE,
    "confirm": (*audience.UNDELIVERABLE, "complaint"),
}
# Messages whose link acts for the person: the link is kept only until sent (the request keeps
# only the token's hash), not for anyone who can read the ledger to use. A signature's
# confirmation link counts a signature someone else may have typed, grants its boxes and hands
# the person's details to the partners ticked: as much a secret as the others.
SECRET_LINKS = frozenset({"erase", "confirm_preferences", "confirm"})
LINK_PARAMS = frozenset({"erase_url", "confirm_url"})


class _Withheld(Exception):
    """A text found, before a retry, to be suppressed or deferred now (its row moved)."""


class _Regroup(Exception):
    """Some of an email request's recipients were found suppressed before a retry (their rows
    moved), or at a new address: send the request again to members, as they stand now."""

    def __init__(self, members: list[tuple[str, Supporter]]) -> None:
        super().__init__(f"{len(members)} left")
        self.members = members


def _as_addressed(person: Supporter) -> tuple[Any, ...]:
    """What of a supporter an email request carries: a change during a retry's wait rebuilds
    it (a discreet supporter gets the neutral subject and sender, and no preview)."""
    return (person.email, person.given_name, person.discreet)


# A batch of an alert cancelled while it was sending: its recipients are counted, not sent to
# (the alert's total keeps adding up: sent + failed + suppressed).
CANCELLED: tuple[str, datetime | None] = ("suppressed", None)


def _email_decision(person: Supporter | None, allowed: bool) -> tuple[str, datetime | None]:
    """Whether an email may go to person now ("sending") or is "suppressed" (no consent, an
    opt-out, a bounce, no address)."""
    ok = allowed and person is not None and person.email
    return ("sending" if ok else "suppressed"), None


class _Skip(Exception):
    def __init__(self, status: str, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
