"""python -m services.campaigns.worker: outbox relay, consumer and alert scheduler."""

from __future__ import annotations

from services.campaigns import store
from services.campaigns.bootstrap import Deps, build
from services.campaigns.handlers import HANDLERS, TOPICS
from services.campaigns.scheduler import AlertScheduler
from shared.service import worker_parts
from shared.worker import Stoppable, run_all


def parts(deps: Deps) -> list[Stoppable]:
    """Return the worker's parts: relay, consumer and scheduler."""
    relay, runner = worker_parts(
        deps.settings,
        deps.engine,
        store.outbox_table,
        store.processed_table,
        TOPICS,
        HANDLERS,
    )
    return [relay, runner, AlertScheduler(deps)]


def main() -> None:
    run_all(parts(build()))


if __name__ == "__main__":
    main()
