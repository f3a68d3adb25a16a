"""The `antirelou` command: a thin layer over the service objects."""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from antirelou import migrate
from antirelou.settings import ConfigError, Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def config_option(func: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="TOML configuration file (default: $ANTIRELOU_CONFIG, else built-in defaults).",
    )(func)


def settings_from(config_path: Path | None) -> Settings:
    try:
        return load_settings(config_path)
    except ConfigError as exc:
        click.echo(f"antirelou: {exc}", err=True)
        sys.exit(2)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
def main(verbose: bool) -> None:
    """antirelou: a decoy phone number that answers once, politely, and survives raids."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: Path | None) -> None:
    """Create or migrate the database schema to the latest version."""
    from antirelou.db import null_pool_engine

    settings = settings_from(config_path)
    engine = null_pool_engine(settings.database_url)
    migrate.upgrade(engine)
    click.echo(f"database at revision {migrate.current_revision(engine)}")


def open_service(settings: Settings) -> Any:
    """A ready service: schema checked (SQLite is migrated automatically), lines synced."""
    from antirelou.service import Service

    service = Service.from_settings(settings)
    if service.engine.dialect.name == "sqlite":
        migrate.upgrade(service.engine)
    elif not migrate.is_up_to_date(service.engine):
        click.echo("antirelou: the database schema is out of date: run `antirelou db upgrade`")
        sys.exit(2)
    service.sync_lines()
    return service


@main.command()
@config_option
@click.option("--host", help="Address to listen on (default: web.host, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default: web.port, 8000).")
@click.option("--no-worker", is_flag=True, help="Serve webhooks only; run `antirelou worker`.")
def serve(config_path: Path | None, host: str | None, port: int | None, no_worker: bool) -> None:
    """Run the web app (webhooks, dashboard) and, by default, the worker."""
    import uvicorn

    from antirelou.web.app import create_app

    settings = settings_from(config_path)
    service = open_service(settings)
    app = create_app(service)
    stop = threading.Event()
    thread = None
    if settings.worker.enabled and not no_worker:
        worker = _worker(service)
        app.state.antirelou.on_reply.append(worker.wake.set)
        thread = threading.Thread(target=worker.run_forever, args=(stop,), name="worker")
        thread.start()
    _describe(settings, host, port)
    try:
        uvicorn.run(
            app,
            host=host or settings.web.host,
            port=port or settings.web.port,
            log_level="warning",
            proxy_headers=True,
        )
    finally:
        stop.set()
        if thread:
            thread.join(timeout=15)


def _describe(settings: Settings, host: str | None, port: int | None) -> None:
    where = f"http://{host or settings.web.host}:{port or settings.web.port}"
    click.echo(f"antirelou listening on {where}")
    for line in settings.lines:
        click.echo(f"  line {line.number} via {line.provider}")


def _worker(service: Any) -> Any:
    from antirelou.providers.registry import build_senders
    from antirelou.worker import Worker

    return Worker(service, build_senders(service.settings))


@main.command()
@config_option
def worker(config_path: Path | None) -> None:
    """Run the worker alone (to scale it apart from the web processes)."""
    service = open_service(settings_from(config_path))
    stop = threading.Event()
    try:
        _worker(service).run_forever(stop)
    except KeyboardInterrupt:
        stop.set()


@main.group()
def lines() -> None:
    """The decoy numbers."""


@lines.command("check")
@config_option
def lines_check(config_path: Path | None) -> None:
    """Show each line's reply: encoding, segments, cost, and a cheaper rewrite if any."""
    from antirelou.replycheck import describe_line

    settings = settings_from(config_path)
    for line in settings.lines:
        click.echo(describe_line(line, settings.pricing.outbound_segment))


@main.group()
def sandbox() -> None:
    """Try the service without a provider account."""


@sandbox.command("send")
@config_option
@click.option("--from", "sender", required=True, help="The sender's number, e.g. +33612345678.")
@click.option("--to", "line", help="The line texted (default: the first line).")
@click.argument("text")
def sandbox_send(config_path: Path | None, sender: str, line: str | None, text: str) -> None:
    """Inject a text as if a provider had delivered it (same path as a webhook)."""
    from antirelou.inbound import receive
    from antirelou.providers.base import InboundSms

    settings = settings_from(config_path)
    service = open_service(settings)
    to = line or settings.lines[0].number
    sms = InboundSms("sandbox", f"SB{uuid.uuid4().hex}", sender, to, text, {"Body": text})
    receipt = receive(service, sms)
    reasons = ", ".join(r.value for r in receipt.decision.reasons)
    click.echo(f"message {receipt.message_id}: {receipt.decision.action.value} ({reasons})")
    if receipt.reply_id is not None:
        click.echo(f"reply {receipt.reply_id} queued; a running `serve` or `worker` sends it")
