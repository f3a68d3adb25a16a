"""The `antirelou` command: a thin layer over the service objects."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from antirelou import logs, migrate
from antirelou.clitypes import ROW_ID
from antirelou.logs import FORMATS, LogFormat
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
@click.option(
    "--log-format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="Log lines as text or as one JSON object per line (phone numbers masked in both).",
)
def main(verbose: bool, log_format: LogFormat) -> None:
    """antirelou: a decoy phone number that answers once, politely, and survives raids."""
    logs.configure(log_format, verbose)


def _add_command_groups() -> None:
    from antirelou.evidence.cli import evidence, retention
    from antirelou.web.cli_users import tokens, users

    for group in (evidence, retention, users, tokens):
        main.add_command(group)


_add_command_groups()


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: Path | None) -> None:
    """Create or migrate the database schema to the latest version."""
    from antirelou.db import null_pool_engine

    settings = settings_from(config_path)
    check_database_files(settings.database_url)
    engine = null_pool_engine(settings.database_url)
    migrate.upgrade(engine)
    click.echo(f"database at revision {migrate.current_revision(engine)}")


@db.command("backup")
@config_option
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
def db_backup(config_path: Path | None, dest: Path) -> None:
    """Copy the database to DEST while the service runs, and check the copy.

    SQLite: a copy of the file. PostgreSQL: a pg_dump archive (custom format) of the very
    snapshot whose evidence is checked. DEST must not exist (a backup is never overwritten).
    The copy is readable by its owner only; its evidence chain is checked as `evidence
    verify` does (exit 1 if broken: the copy is kept, as evidence of it). Keep the key
    files apart (docs/deployment.md)."""
    from antirelou.backup import BackupError, back_up
    from antirelou.dbfiles import sqlite_path
    from antirelou.evidence.cli import print_report
    from antirelou.operations import record_backup
    from antirelou.pgbackup import back_up_postgres

    settings = settings_from(config_path)
    copy = back_up if sqlite_path(settings.database_url) else back_up_postgres
    try:
        done = copy(settings, dest)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    service = open_service(settings)
    try:
        where = str(done.path.resolve())
        record_backup(service, where, done.size, done.evidence.records, _actor())
    finally:
        service.dispose()
    size = f"{done.size / 1_000_000:.1f} MB"
    click.echo(f"backed up to {done.path} ({size}, schema {done.revision}, integrity ok)")
    if done.inbox is not None:
        click.echo(f"texts waiting for their decision: {done.inbox}")
    print_report("the copy's evidence log", done.evidence)
    click.echo(
        "not in the copy, to keep apart: the evidence key "
        f"({settings.evidence.key_path}) and the second-factor key ({settings.web.totp_key_path})"
    )
    if not done.evidence.ok:
        sys.exit(1)


@db.command("restore")
@config_option
@click.argument("backup", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--even-if-broken", is_flag=True, help="Restore a backup whose evidence is broken.")
def db_restore(config_path: Path | None, backup: Path, even_if_broken: bool) -> None:
    """Put BACKUP (made by `db backup`) in place of the database, checked first.

    SQLite: stop serve and worker first: the database is only replaced when nothing has it
    open, and the one it replaces is kept beside it, under a dated name. PostgreSQL: the
    archive goes into an empty database only (createdb a new one), then its evidence is
    checked there (exit 1 if broken, unless --even-if-broken)."""
    from antirelou.backup import BackupError
    from antirelou.dbfiles import sqlite_path
    from antirelou.evidence.cli import print_report
    from antirelou.operations import record_restore
    from antirelou.restore import restore

    settings = settings_from(config_path)
    if sqlite_path(settings.database_url) is None:
        _restore_postgres(settings, backup, even_if_broken)
        return
    try:
        done = restore(settings, backup, even_if_broken=even_if_broken)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    print_report("the restored evidence log", done.evidence)
    if done.kept is not None:
        click.echo(f"the database it replaced is kept at {done.kept}")
    if done.reparked:
        click.echo(f"{done.reparked} texts of the backup's inbox wait for their decision")
    service = open_service(settings)  # migrates a backup made by an older version
    try:
        record_restore(service, str(backup.resolve()), str(done.kept or ""), _actor())
    finally:
        service.dispose()
    click.echo(f"restored {backup} to {done.path} (schema {done.revision}); start antirelou")


def _restore_postgres(settings: Settings, archive: Path, even_if_broken: bool) -> None:
    from antirelou.backup import BackupError
    from antirelou.evidence.cli import print_report
    from antirelou.operations import record_restore
    from antirelou.pgbackup import restore_postgres

    try:
        revision, evidence = restore_postgres(settings, archive)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    print_report("the restored evidence log", evidence)
    service = open_service(settings)  # the schema as this version wants it
    try:
        record_restore(service, str(archive.resolve()), "", _actor())
    finally:
        service.dispose()
    click.echo(f"restored {archive} (schema {revision}); start antirelou")
    if not evidence.ok and not even_if_broken:
        click.echo(
            "the restored evidence chain is broken: this database holds the backup as it was "
            "(it was empty before); drop it if you do not want it",
            err=True,
        )
        sys.exit(1)


def open_service(settings: Settings, serving: bool = False) -> Any:
    """A ready service: schema checked (SQLite is migrated automatically), lines synced.
    For the long-running commands (`serving`: `serve`, `worker`) it waits up to
    `database_wait` for a database that does not answer yet, or that goes away while they
    start, and last seals second-factor secrets stored before sealing existed; one-shot
    commands do neither."""
    from antirelou.service import Service

    check_database_files(settings.database_url)
    service = Service.from_settings(settings)
    if serving:
        wait = settings.database_wait.total_seconds()
        when_reachable(service.engine, wait, lambda: _ready(service, serving=True))
    else:
        _ready(service, serving=False)
    return service


def when_reachable(engine: Any, timeout: float, steps: Callable[[], None]) -> None:
    """Run `steps` (a start-up's reads and writes) once the database answers, and again when
    it goes away while they run (a PostgreSQL restarted as the service starts): waited for,
    up to `timeout` in all, not a traceback and an exit. The steps can be run twice."""
    from sqlalchemy.exc import OperationalError

    deadline = time.monotonic() + timeout
    while True:
        _wait_for_database(engine, max(1.0, deadline - time.monotonic()))
        try:
            steps()
            return
        except OperationalError as error:
            if time.monotonic() >= deadline:
                click.echo(f"antirelou: the database still fails after {timeout:.0f} s", err=True)
                sys.exit(2)
            reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            click.echo(f"antirelou: the database went away while starting ({reason})", err=True)


def _ready(service: Any, serving: bool) -> None:
    """The schema checked (SQLite: migrated), the inbox checked, the lines synced, the
    operators' overrides applied; for a long-running command, second factors sealed."""
    from antirelou import inbox

    if service.engine.dialect.name == "sqlite":
        migrate.upgrade(service.engine)
    elif not migrate.is_up_to_date(service.engine):
        click.echo("antirelou: the database schema is out of date: run `antirelou db upgrade`")
        sys.exit(2)
    try:
        inbox.check(service)
    except inbox.InboxVersionError as exc:
        click.echo(f"antirelou: {exc}", err=True)
        sys.exit(2)
    service.sync_lines()
    _apply_overrides(service)
    if serving:
        _seal_second_factors(service)


def _senders(settings: Settings) -> Any:
    """The providers' clients, or a stop at start with the reason when one cannot be built
    (a proxy the environment names that is not http://, say) rather than a traceback."""
    from antirelou.providers.registry import build_senders

    try:
        return build_senders(settings)
    except ValueError as exc:
        click.echo(f"antirelou: {exc}", err=True)
        sys.exit(2)


def check_database_files(url: str) -> None:
    """Stop with what to run when a SQLite database's files cannot be written by this user;
    warn when root is about to create one (see dbfiles.py)."""
    from antirelou import dbfiles

    problem = dbfiles.write_problem(url)
    if problem is not None:
        click.echo(f"antirelou: {problem}", err=True)
        sys.exit(2)
    warning = dbfiles.root_creates(url)
    if warning is not None:
        click.echo(f"antirelou: warning: {warning}", err=True)


def _wait_for_database(engine: Any, timeout: float) -> None:
    from sqlalchemy.exc import OperationalError

    from antirelou.db import wait_until_reachable

    def say(error: OperationalError) -> None:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        click.echo(f"antirelou: the database does not answer ({reason}); waiting up to "
                   f"{timeout:.0f} s", err=True)  # fmt: skip

    try:
        wait_until_reachable(engine, timeout, say)
    except OperationalError:
        click.echo(f"antirelou: the database still does not answer after {timeout:.0f} s", err=True)
        sys.exit(2)


def _seal_second_factors(service: Any) -> None:
    """Seal second-factor secrets stored before sealing existed (web/sealing.py). A key
    that cannot be used is said, not fatal: texts must still be answered."""
    from antirelou.web import totp
    from antirelou.web.sealing import SealError

    try:
        sealed = totp.seal_plain_secrets(service)
    except SealError as exc:
        click.echo(f"antirelou: second factors not sealed: {exc}", err=True)
        return
    if sealed:
        click.echo(
            f"  sealed {sealed} second-factor secret(s) with {totp.box_of(service).key_path}"
        )


def _apply_overrides(service: Any) -> None:
    """The reply and caps operators edited on the dashboard override the file."""
    from antirelou.web.overrides import LiveSettings

    LiveSettings(service).refresh()


@main.command()
@config_option
@click.option("--host", help="Address to listen on (default: web.host, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default: web.port, 8000).")
@click.option("--no-worker", is_flag=True, help="Serve webhooks only; run `antirelou worker`.")
@click.option(
    "--workers",
    "processes",
    type=click.IntRange(1, 64),
    help="Web processes sharing the port (default: web.workers, 1). The worker that sends "
    "replies still runs once.",
)
def serve(
    config_path: Path | None,
    host: str | None,
    port: int | None,
    no_worker: bool,
    processes: int | None,
) -> None:
    """Run the web app (webhooks, dashboard) and, by default, the worker."""
    import uvicorn

    from antirelou.heap import freeze_heap
    from antirelou.web.app import create_app

    settings = settings_from(config_path)
    processes = processes or settings.web.workers
    service = open_service(settings, serving=True)
    worker_here = settings.worker.enabled and not no_worker
    apart = worker_here and _worker_apart(settings, service)
    # Before any provider metric exists: the web processes and the worker share them.
    scratch = _share_across_processes(config_path) if processes > 1 or apart else None
    if processes > 1 and service.engine.dialect.name == "sqlite":
        click.echo(
            f"antirelou: warning: {processes} web processes on SQLite take turns to write; "
            "use PostgreSQL for several processes (see docs/deployment.md)",
            err=True,
        )
    # One process: the app lives here. Several: each web process builds its own from the
    # environment (ANTIRELOU_CONFIG). Either way, one worker: a child, or a thread here.
    app = create_app(service) if processes == 1 else None
    stop = threading.Event()
    runner = None
    thread = None
    child = None
    if apart:
        for sender in _senders(settings).values():  # the child would die of it, again and again
            sender.close()
        child = _child_worker(config_path)
        if app is not None:
            app.state.antirelou.on_reply.append(child.wake)
    elif worker_here:
        runner = _worker(service)
        if app is not None:
            app.state.antirelou.on_reply.append(runner.wake.set)
        thread = threading.Thread(target=runner.run_forever, args=(stop,), name="worker")
        thread.start()
    _describe(settings, host, port)
    if processes > 1:
        click.echo(f"  {processes} web processes")
    if child:
        click.echo("  the worker runs in its own process")
    _hint_first_account(service)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    web = settings.web
    if app is not None:
        freeze_heap()  # the web processes of --workers N do it themselves
    try:
        uvicorn.run(
            app if app is not None else "antirelou.web.app:app_from_environment",
            factory=app is None,
            workers=processes if app is None else None,
            host=host or web.host,
            port=port or web.port,
            log_level="warning",
            log_config=logs.current_config(),
            proxy_headers=True,
            forwarded_allow_ips=web.forwarded_allow_ips,
            timeout_keep_alive=web.timeout_keep_alive,
            limit_concurrency=web.limit_concurrency or None,
        )
    finally:
        stop.set()
        if child:
            child.stop()
        if runner and thread:
            runner.wake.set()
            thread.join(timeout=15)
            runner.close()
        service.dispose()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _worker_apart(settings: Settings, service: Any) -> bool:
    """Whether `serve` runs its worker as a child process (childworker.py): queued intake
    always, otherwise [worker] own_process; never for a database in memory."""
    from antirelou.db import is_memory

    if is_memory(service.engine):
        return False
    return settings.web.intake == "queued" or settings.worker.own_process


def _share_across_processes(config_path: Path | None) -> str | None:
    """What the web processes `serve --workers N` starts need from this one: the config
    file's path, and a directory where the worker here leaves its provider metrics for
    their /metrics (observability.py). Returns that directory if it was made here."""
    from antirelou.observability import MULTIPROC_ENV

    if config_path is not None:
        os.environ["ANTIRELOU_CONFIG"] = str(config_path.resolve())
    if os.environ.get(MULTIPROC_ENV):
        return None  # the operator's own (shared with a separate `antirelou worker`)
    scratch = tempfile.mkdtemp(prefix="antirelou-metrics-")
    os.environ[MULTIPROC_ENV] = scratch
    return scratch


def _exit_on_sigterm(_signum: int, _frame: Any) -> None:
    """After its graceful shutdown uvicorn raises the SIGTERM it caught again; by default
    that kills the process on the spot and `serve` never stops and joins its worker."""
    raise SystemExit(0)


def _describe(settings: Settings, host: str | None, port: int | None) -> None:
    where = f"http://{host or settings.web.host}:{port or settings.web.port}"
    click.echo(f"antirelou listening on {where}")
    for line in settings.lines:
        click.echo(f"  line {line.number} via {line.provider}")


def _hint_first_account(service: Any) -> None:
    from antirelou.web.accounts import count_users

    with service.engine.connect() as conn:
        if count_users(conn) == 0:
            click.echo(
                "  no dashboard account yet: `antirelou users add EMAIL --role admin`, "
                "then open /dashboard"
            )


def _child_worker(config_path: Path | None) -> Any:
    from antirelou.childworker import ChildWorker, worker_command

    options = click.get_current_context().find_root().params
    command = worker_command(config_path, options["log_format"], options["verbose"])
    child = ChildWorker(command)
    child.start()
    return child


def _worker(service: Any) -> Any:
    from antirelou.balances import BalanceWatch
    from antirelou.providers.multipart import receive_stale_parts
    from antirelou.providers.preflight import WITH_BALANCE, fetch_balance
    from antirelou.web.overrides import LiveSettings
    from antirelou.worker import Worker

    live = LiveSettings(service)
    # A worker in its own process must see the reply and caps edited on the dashboard; it
    # also asks the providers what is left on their accounts (balances.py).
    chores: list[Callable[[], object]] = [
        lambda: receive_stale_parts(service),
        live.maybe_refresh,
        BalanceWatch(service, fetch_balance, WITH_BALANCE),
    ]
    return Worker(service, _senders(service.settings), chores=chores)


@main.command()
@config_option
@click.option("--wake-on-stdin", is_flag=True, hidden=True, help="serve's child worker.")
def worker(config_path: Path | None, wake_on_stdin: bool) -> None:
    """Run the worker alone (to scale it apart from the web processes)."""
    from antirelou.heap import freeze_heap

    service = open_service(settings_from(config_path), serving=True)
    stop = threading.Event()
    runner = _worker(service)

    def finish(*_: object) -> None:
        stop.set()
        runner.nudge()  # an idle worker waits up to poll_interval otherwise

    # SIGTERM (systemd, kill) and Ctrl-C let the provider calls under way end, then stop: a
    # reply being sent is recorded before exit. A SIGKILL is covered by leases and reconciliation.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, finish)
    if wake_on_stdin:
        threading.Thread(
            target=_wake_on_stdin, args=(runner, finish), name="wake", daemon=True
        ).start()
    freeze_heap()
    try:
        runner.run_forever(stop)
    finally:
        runner.close()
        service.dispose()


def _wake_on_stdin(runner: Any, finish: Callable[[], None]) -> None:
    """serve's child worker: each byte from serve is a nudge (a reply was queued); the end
    of the pipe means serve is gone, and the worker stops as on SIGTERM."""
    stdin = sys.stdin.fileno()
    while os.read(stdin, 4096):
        runner.nudge()
    finish()


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


def _actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def _operate(action: Callable[[], Any]) -> Any:
    from antirelou.operations import OperationError

    try:
        return action()
    except OperationError as exc:
        click.echo(f"antirelou: {exc}", err=True)
        sys.exit(1)


@lines.command("pause")
@config_option
@click.argument("number")
@click.option("--reason", default="", help="Why (kept in the audit log).")
def lines_pause(config_path: Path | None, number: str, reason: str) -> None:
    """Kill switch: stop every reply of a line at once (texts are still stored)."""
    from antirelou.operations import set_paused

    service = open_service(settings_from(config_path))
    _operate(lambda: set_paused(service, number, True, _actor(), reason))
    click.echo(f"{number} paused: no reply will be sent until `antirelou lines resume {number}`")


@lines.command("resume")
@config_option
@click.argument("number")
def lines_resume(config_path: Path | None, number: str) -> None:
    """Let a paused line reply again."""
    from antirelou.operations import set_paused

    service = open_service(settings_from(config_path))
    _operate(lambda: set_paused(service, number, False, _actor()))
    click.echo(f"{number} resumed")


@main.group()
def incidents() -> None:
    """Raids: list, open and close incidents."""


@incidents.command("list")
@config_option
def incidents_list(config_path: Path | None) -> None:
    """Every incident, newest first."""
    from antirelou.reports import incident_rows

    service = open_service(settings_from(config_path))
    for row in incident_rows(service):
        click.echo(row)


@incidents.command("open")
@config_option
@click.argument("number")
@click.option("--note", default="", help="What you saw.")
def incidents_open(config_path: Path | None, number: str, note: str) -> None:
    """Open an incident by hand: replies to new senders are held until it is closed."""
    from antirelou.operations import open_incident

    service = open_service(settings_from(config_path))
    incident_id = _operate(lambda: open_incident(service, number, _actor(), note))
    click.echo(f"incident {incident_id} opened on {number}")


@incidents.command("close")
@config_option
@click.argument("incident_id", type=ROW_ID)
def incidents_close(config_path: Path | None, incident_id: int) -> None:
    """Close an incident; held replies are then released at the normal pace."""
    from antirelou.operations import close_incident

    service = open_service(settings_from(config_path))
    _operate(lambda: close_incident(service, incident_id, _actor()))
    click.echo(f"incident {incident_id} closed")


@main.command("check")
@config_option
@click.option(
    "--providers",
    is_flag=True,
    help="Also ask each provider (read-only, free): credentials, money on the account, "
    "and whether each line's texts come to this server's webhook.",
)
def check(config_path: Path | None, providers: bool) -> None:
    """Is this instance ready for its number to be handed out? Accounts, second factors,
    alerts, the pot, the lines, and the webhook addresses to paste into each provider's
    console. Exits 1 when something would stop the replies."""
    from antirelou.readiness import Level, findings, report

    service = open_service(settings_from(config_path))
    try:
        found = findings(service, providers=providers)
    finally:
        service.dispose()
    click.echo(report(found))
    if any(finding.level == Level.FAIL for finding in found):
        sys.exit(1)


@main.group()
def money() -> None:
    """The pot, donations and spending."""


@money.command("donate")
@config_option
@click.argument("euros", type=float)
@click.option("--note", default="", help="Who or what (e.g. the fundraiser's name).")
def money_donate(config_path: Path | None, euros: float, note: str) -> None:
    """Add a donation to the pot (negative to correct a mistake)."""
    from antirelou.operations import donate

    service = open_service(settings_from(config_path))
    _operate(lambda: donate(service, euros, note, _actor()))
    click.echo(f"{euros:.2f} EUR recorded")


@money.command("status")
@config_option
def money_status(config_path: Path | None) -> None:
    """Spend today against the cap, spend per day, the pot and days of pot left."""
    from antirelou.reports import money_report

    click.echo(money_report(open_service(settings_from(config_path))))


@main.group()
def held() -> None:
    """Replies held during incidents."""


@held.command("cancel")
@config_option
@click.option("--line", "number", help="Only this line.")
def held_cancel(config_path: Path | None, number: str | None) -> None:
    """Cancel held replies (they will not be sent)."""
    from antirelou.operations import cancel_held_replies

    service = open_service(settings_from(config_path))
    count = _operate(lambda: cancel_held_replies(service, number, _actor()))
    click.echo(f"{count} held replies cancelled")


@main.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--drain", default="24h", help="Virtual time to run on after the last text.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def replay(
    scenario: Path, config_path: Path | None, out_dir: Path, drain: str, quiet: bool
) -> None:
    """Replay SCENARIO.jsonl through the live code on a virtual clock."""
    import json

    from antirelou.durations import parse_duration
    from antirelou.replay import ScenarioError, run_replay

    try:
        drain_for = parse_duration(drain, longest=MAX_DRAIN)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--drain") from None
    settings = settings_from(config_path)
    try:
        summary = run_replay(scenario, settings, out_dir, drain_for, not quiet)
    except ScenarioError as exc:
        click.echo(f"antirelou: {scenario}: {exc}", err=True)
        sys.exit(2)
    click.echo(json.dumps(summary, indent=2))


MAX_DRAIN = timedelta(days=366)  # a year of virtual time after the last text is plenty


@main.command()
@click.argument("name")
@click.option("--seed", default=1, type=int, show_default=True)
@click.option("--out", "out_dir", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--line", default="+33939000021", show_default=True, help="The decoy number.")
def simulate(name: str, seed: int, out_dir: Path, line: str) -> None:
    """Write scenario NAME (texts, and separately who is who) for `antirelou replay`."""
    from antirelou.simulate import SCENARIOS, write_scenario

    if name not in SCENARIOS:
        click.echo(f"antirelou: unknown scenario {name!r}; known: {', '.join(SCENARIOS)}", err=True)
        sys.exit(2)
    texts, truth = write_scenario(name, seed, out_dir, line)
    click.echo(f"wrote {texts} and {truth}")


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
