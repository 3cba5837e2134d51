"""The `kinship` command."""

from __future__ import annotations

import os
import sys

import click

from shared.local_kafka import KAFKA_VERSION, LocalKafka, LocalKafkaError


def local_kafka() -> LocalKafka:
    """Return the local broker of this checkout (var/kafka, port KAFKA_PORT, else the one it
    runs on, whoever started it, else the one the stack last started it on, else 9092)."""
    from shared.config import var_dir
    from shared.devstack import read_stack_state

    home = var_dir() / "kafka"
    heap = os.environ.get("KAFKA_HEAP") or "512m"
    raw = (os.environ.get("KAFKA_PORT") or "").strip()  # empty counts as unset
    if not raw:
        running = LocalKafka(home).running_record() or {}
        if isinstance(running.get("port"), int):
            controller = running.get("controller_port")
            return LocalKafka(
                home,
                port=running["port"],
                controller_port=controller if isinstance(controller, int) else None,
                heap=heap,
            )
        state = read_stack_state(var_dir())
        recorded = str(state.get("kafka_bootstrap") or "").rpartition(":")[2]
        raw = recorded if state.get("kafka_owned") and recorded.isdigit() else "9092"
    port = int(raw)
    controller = os.environ.get("KAFKA_CONTROLLER_PORT")
    return LocalKafka(
        home,
        port=port,
        controller_port=int(controller) if controller else None,
        heap=heap,
    )


@click.group()
def cli() -> None:
    """Kinship: coalition campaigns, petitions, alerts and partner webhooks."""


@cli.group()
def kafka() -> None:
    """The local single-node Apache Kafka (KRaft) for development and tests."""


@kafka.command("fetch")
def kafka_fetch() -> None:
    """Resolve the Kafka jars with mvn into the cache (once; later runs need no network)."""
    try:
        libs = local_kafka().ensure_jars()
    except LocalKafkaError as exc:
        click.echo(f"kinship kafka fetch: {exc}", err=True)
        sys.exit(1)
    click.echo(f"Kafka {KAFKA_VERSION} jars in {libs}")


@kafka.command("start")
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for readiness.")
def kafka_start(timeout: float) -> None:
    """Start Kafka (fetching its jars with mvn on first use) and wait until it answers."""
    broker = local_kafka()
    try:
        status = broker.start(timeout=timeout)
    except LocalKafkaError as exc:
        click.echo(f"kinship kafka start: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"Kafka {KAFKA_VERSION} is running on {status.bootstrap} (pid {status.pid}); "
        f"data in {status.home}"
    )


@kafka.command("stop")
def kafka_stop() -> None:
    """Stop the local Kafka cleanly."""
    if local_kafka().stop():
        click.echo("Kafka stopped.")
    else:
        click.echo("Kafka was not running.")


@kafka.command("status")
def kafka_status() -> None:
    """Say whether the local Kafka is running; exit 3 when it is not."""
    status = local_kafka().status()
    if status.running:
        click.echo(f"running: Kafka {KAFKA_VERSION} on {status.bootstrap} (pid {status.pid})")
    else:
        click.echo(f"stopped (data in {status.home})")
        sys.exit(3)


@cli.command("migrate")
@click.argument("services", nargs=-1)
def migrate(services: tuple[str, ...]) -> None:
    """Upgrade each service's database to its newest schema (default: every service)."""
    from sqlalchemy.exc import OperationalError

    from shared.config import SERVICES, Settings
    from shared.db import is_connection_error
    from shared.local_kafka import PROJECT_ROOT
    from shared.logging import error_text
    from shared.migrate import upgrade

    unknown = [name for name in services if name not in SERVICES]
    if unknown:
        click.echo(f"kinship migrate: unknown service(s) {', '.join(unknown)}", err=True)
        sys.exit(2)
    for name in services or SERVICES:
        if not (PROJECT_ROOT / "services" / name / "migrations" / "env.py").exists():
            if services:
                click.echo(f"kinship migrate: {name} has no migrations", err=True)
                sys.exit(1)
            continue
        try:
            upgrade(name, Settings.from_env(name).database_url)
        except ValueError as exc:  # a setting refused (shared.config)
            click.echo(f"kinship migrate: {name}: {exc}", err=True)
            sys.exit(1)
        except OperationalError as exc:
            if not is_connection_error(exc):
                raise
            reason = error_text(exc, 300)
            click.echo(f"kinship migrate: {name}: cannot reach the database: {reason}", err=True)
            sys.exit(1)
        click.echo(f"{name}: database at the newest schema")


def _add_service_commands() -> None:
    """Register the services' command groups (their modules import nothing heavy at load)."""
    from services.campaigns.cli import keys

    cli.add_command(keys)


_add_service_commands()


def _add_dev_commands() -> None:
    """Register `dev`, `demo`, `outbox` and `dlq` (their modules import nothing heavy at load)."""
    from shared.cli.dev import register
    from shared.cli.dlq import dlq

    register(cli)
    cli.add_command(dlq)


_add_dev_commands()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
