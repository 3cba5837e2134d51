"""Events campaigns consumes: notifications' progress reports of the alerts it published."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Connection

from services.campaigns import alerts
from shared.events import Event
from shared.events.catalog import NOTIFICATIONS, type_name
from shared.events.envelope import parse_time

log = logging.getLogger(__name__)
TOPICS = (NOTIFICATIONS,)


def handle_alert_progressed(event: Event, conn: Connection) -> None:
    """Keep the newest counts; reports that arrive late or for unknown alerts change nothing."""
    if not alerts.record_progress(conn, event.data, parse_time(event.data["at"])):
        log.info(
            "alert progress not applied (unknown alert or older report)",
            extra={"alert_id": event.data.get("alert_id")},
        )


HANDLERS: dict[str, list[Callable[[Event, Connection], None]]] = {
    type_name("alert.progressed"): [handle_alert_progressed],
}
