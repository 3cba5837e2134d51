"""`kinship dev up|down|status`, `kinship outbox` and `kinship demo`."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from shared.config import SERVICES


def _stack() -> Any:
    from shared.cli.main import local_kafka
    from shared.config import var_dir
    from shared.devstack import DevStack

    return DevStack(var_dir(), local_kafka(), echo=lambda line: click.echo(f"  {line}"))


@click.group()
def dev() -> None:
    """The whole local stack in the background: Kafka, migrations, three services, workers."""


@dev.command("up")
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait for /readyz.")
def dev_up(timeout: float) -> None:
    """Start everything not yet running and wait until every service is ready."""
    from shared.devstack import DevStackError, notification_backends

    stack = _stack()
    click.echo("Starting Kinship (a second `up` only starts what is missing)...")
    try:
        report = stack.up(timeout=timeout)
    except DevStackError as exc:
        click.echo(f"kinship dev up: {exc}", err=True)
        sys.exit(1)
    settings = notification_backends()
    click.echo("")
    click.echo(f"Kinship is up. {report.kafka}; data in {stack.var}")
    for name in SERVICES:
        url = f"http://127.0.0.1:{stack.ports[name]}"
        click.echo(f"  {name:<14} {url}/api/v1/docs   (OpenAPI {url}/api/v1/openapi.json)")
    click.echo(f"  email: {settings[0]}, SMS: {settings[1]}   (`kinship outbox` lists captured)")
    click.echo(f"  logs:  {stack.log_dir}/<part>.log   (Kafka: {stack.kafka.home}/logs)")
    click.echo("Next: `.venv/bin/kinship demo`; stop with `.venv/bin/kinship dev down`.")


@dev.command("down")
@click.option("--grace", default=60.0, show_default=True, help="Seconds before SIGKILL.")
def dev_down(grace: float) -> None:
    """Stop everything `up` started: SIGTERM, wait, no process left behind."""
    stopped = _stack().down(grace=grace)
    click.echo(f"Stopped: {', '.join(stopped)}." if stopped else "Nothing was running.")


@dev.command("status")
def dev_status() -> None:
    """Show each part; exit 3 unless every part is running and every API is ready."""
    rows = _stack().status()
    for row in rows:
        state = f"running (pid {row.pid})" if row.running else "stopped"
        ready = {True: "ready", False: "NOT READY", None: ""}[row.ready]
        click.echo(f"{row.name:<22} {state:<22} {ready:<9} {row.url or ''}  log: {row.log}")
    if not all(row.running and row.ready is not False for row in rows):
        sys.exit(3)


# -- outbox --------------------------------------------------------------------------------------


@click.command("outbox")
@click.option("--alert", "alert_id", default=None, help="Only this alert's messages.")
@click.option("--supporter", "supporter_id", default=None, help="Only this supporter's messages.")
@click.option("--channel", type=click.Choice(["email", "sms"]), default=None)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option(
    "--show",
    is_flag=True,
    help="Show recipients, their names and pronouns, and the tokens of personal links in full"
    " (masked otherwise).",
)
@click.option("--as-json", "as_json", is_flag=True, help="One JSON object per line.")
def outbox(
    alert_id: str | None,
    supporter_id: str | None,
    channel: str | None,
    limit: int,
    show: bool,
    as_json: bool,
) -> None:
    """List the emails and SMS held by the `capture` senders, newest first."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from shared.cli.outbox import captured_messages, format_message

    try:
        rows = captured_messages(alert_id, supporter_id, channel, limit, show)
    except (FileNotFoundError, OperationalError, ProgrammingError):
        click.echo("kinship outbox: no notifications database yet; run `kinship dev up`.", err=True)
        sys.exit(1)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False, default=str))
        return
    if not rows:
        click.echo("No captured messages (the capture senders hold mail only in the local run).")
        return
    for row in rows:
        click.echo(format_message(row))


# -- demo ----------------------------------------------------------------------------------------


@click.command("demo")
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait per step.")
@click.option("--quiet", is_flag=True, help="No progress bar (CI).")
def demo(timeout: float, quiet: bool) -> None:
    """Run a coalition campaign from petition to delivered alert against the running stack."""
    from shared.cli.demo import DemoError, run_demo

    try:
        report = run_demo(timeout=timeout, progress=not quiet and sys.stdout.isatty())
    except DemoError as exc:
        click.echo(f"kinship demo: {exc}", err=True)
        sys.exit(1)
    click.echo(report)


def register(cli: click.Group) -> None:
    """Add these commands to the `kinship` group."""
    cli.add_command(dev)
    cli.add_command(outbox)
    cli.add_command(demo)
