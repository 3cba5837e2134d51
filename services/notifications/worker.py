"""python -m services.notifications.worker: relay, consumer, expander, senders, poller, progress.

--role all (default) runs every part; `core` runs the relay, consumer, expander, poller and
progress publisher; `email` / `sms` run only dispatch senders (scale these out).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from services.notifications import store
from services.notifications.bootstrap import Deps, build
from services.notifications.domain import TokenBucket
from services.notifications.fanout import DispatchSender, Expander, ProgressPublisher, QueuePoller
from services.notifications.handlers import handlers
from services.notifications.webhooks.dispatcher import from_deps as webhook_dispatcher
from shared.events.catalog import CAMPAIGNS, NOTIFICATIONS, PETITIONS, type_name
from shared.migrate import await_schema
from shared.service import start_logging, worker_parts
from shared.worker import Stoppable, run_all

ROLES = ("all", "core", "email", "sms")
ALERT_PUBLISHED = type_name("alert.published")


def parts(deps: Deps, role: str = "all", group: str = "notifications") -> list[Stoppable]:
    """Return the worker parts of a role (group: the consumer groups' common prefix)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    config = deps.config
    # One bucket per process: SMS_RATE_PER_SECOND is this process's share of the sender's rate.
    bucket = TokenBucket(config.sms_rate_per_second)
    result: list[Stoppable] = []
    if role in ("all", "core"):
        topics = [CAMPAIGNS, PETITIONS, NOTIFICATIONS]
        dispatcher = webhook_dispatcher(deps)
        expander = Expander(deps)
        pollers = [QueuePoller(deps, None, ["email"]), QueuePoller(deps, bucket, ["sms"])]

        def committed(event_types: AbstractSet[str]) -> None:
            dispatcher.wake()  # webhook messages written by the consumer go out now
            for poller in pollers:  # and so do the messages it queued (a thank-you, say)
                poller.wake()
            if ALERT_PUBLISHED in event_types:
                expander.wake()  # and a new alert starts now, not at the expander's next look

        relay, runner = worker_parts(
            deps.settings,
            deps.engine,
            store.outbox_table,
            store.processed_table,
            topics,
            handlers(deps),
            group=group,
            on_commit=committed,
        )
        result += [
            relay,
            runner,
            expander,
            *pollers,
            ProgressPublisher(deps),
            dispatcher,
        ]
    if role in ("all", "email"):
        result += [
            DispatchSender(deps, "email", f"e{i}", group=group)
            for i in range(config.email_sender_threads)
        ]
    if role in ("all", "sms"):
        result += [
            DispatchSender(deps, "sms", f"s{i}", bucket, group=group)
            for i in range(config.sms_sender_threads)
        ]
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Run the notifications worker until SIGTERM."""
    parser = argparse.ArgumentParser(prog="services.notifications.worker")
    parser.add_argument("--role", choices=ROLES, default="all")
    parser.add_argument("--group", default="notifications", help="consumer groups' prefix")
    args = parser.parse_args(argv)
    deps = build()
    start_logging("notifications-worker", deps.settings)
    await_schema("notifications", deps.engine)
    run_all(
        parts(deps, args.role, group=args.group),
        metrics_port=deps.settings.worker_metrics_port,
    )


if __name__ == "__main__":
    main()
