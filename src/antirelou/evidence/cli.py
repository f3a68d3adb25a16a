"""`antirelou evidence ...` and `antirelou retention ...`: click groups the main CLI adds.

antirelou evidence key                      print the public key and its fingerprint
antirelou evidence checkpoint               sign the chain's head now
antirelou evidence verify [FILE.zip]        the whole log, or a bundle offline
antirelou evidence export (--incident ID | --sender NUMBER | --since T --until T | --all)
                          --out FILE.zip [--lang fr|en]
antirelou retention run                     purge what retention allows, now
antirelou retention hold (--incident ID | --sender NUMBER [--line L]) [--release]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from antirelou.clitypes import ROW_ID

F = TypeVar("F", bound=Callable[..., Any])
EXIT_BROKEN = 1
EXIT_USAGE = 2


def _config(func: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="TOML configuration file (default: $ANTIRELOU_CONFIG, else built-in defaults).",
    )(func)


def _service(config_path: Path | None) -> Any:
    from antirelou.cli import open_service, settings_from

    return open_service(settings_from(config_path))


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date (2017-10-30 or 2017-10-30T16:00)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@click.group()
def evidence() -> None:
    """The tamper-evident log: keys, checkpoints, verification and export bundles."""


@evidence.command("key")
@_config
def key_command(config_path: Path | None) -> None:
    """Print the instance's public key (PEM) and fingerprint; create the key if needed."""
    from antirelou.cli import settings_from
    from antirelou.evidence import keys
    from antirelou.evidence.settings import evidence_settings

    config = evidence_settings(settings_from(config_path))
    key = keys.load_or_create(config.key_path)
    click.echo(keys.public_pem(key).decode(), nl=False)
    click.echo(f"fingerprint: {keys.fingerprint(keys.public_raw(key).hex())}")
    click.echo(f"private key: {Path(config.key_path).resolve()} (keep it safe, never share it)")


@evidence.command("checkpoint")
@_config
def checkpoint_command(config_path: Path | None) -> None:
    """Sign (and timestamp, if configured) the chain's head now."""
    from antirelou.evidence.checkpoints import take

    taken = take(_service(config_path), "manual")
    stamped = "timestamped" if taken.tsa_token else "not timestamped"
    click.echo(f"checkpoint {taken.id}: {taken.seq} records, head {taken.head_hash} ({stamped})")


@evidence.command("verify")
@_config
@click.argument(
    "bundle", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def verify_command(config_path: Path | None, bundle: Path | None) -> None:
    """Check the whole log (no argument) or a bundle FILE.zip offline; exit 1 if broken."""
    if bundle is not None:
        from antirelou.evidence.bundle_verify import verify_bundle

        report = verify_bundle(bundle)
        subject = str(bundle)
    else:
        from antirelou.evidence.verify import verify_database

        report = verify_database(_service(config_path))
        subject = "the evidence log"
    print_report(subject, report)
    if not report.ok:
        sys.exit(EXIT_BROKEN)


def print_report(subject: str, report: Any) -> None:
    for note in report.notes:
        click.echo(f"note: {note}")
    summary = (
        f"{report.records} records, {report.checkpoints} checkpoints "
        f"({report.stamped} timestamped), {report.purged} contents purged by retention"
    )
    if report.ok:
        click.echo(f"OK: {subject} verifies: {summary}")
        return
    click.echo(f"BROKEN: {subject} does not verify ({summary})", err=True)
    click.echo(f"first broken: {report.first}", err=True)
    for problem in report.problems[:20]:
        click.echo(f"  - {problem}", err=True)


@evidence.command("export")
@_config
@click.option("--incident", type=ROW_ID, help="The texts of one incident.")
@click.option("--sender", help="Everything from (and to) one number.")
@click.option("--since", help="Start of a period (UTC unless an offset is given).")
@click.option("--until", help="End of a period (excluded).")
@click.option("--all", "everything", is_flag=True, help="The whole log.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--lang", type=click.Choice(["fr", "en"]), default="fr", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def export_command(
    config_path: Path | None,
    incident: int | None,
    sender: str | None,
    since: str | None,
    until: str | None,
    everything: bool,
    out: Path,
    lang: str,
    quiet: bool,
) -> None:
    """Write a bundle (texts, chain, checkpoints, report.pdf, VERIFY.md) to --out."""
    from antirelou.evidence.bundle import ExportError, export
    from antirelou.evidence.selection import Selection, SelectionError

    try:
        selection = Selection(incident, sender, _when(since), _when(until), everything)
    except SelectionError as exc:
        raise click.UsageError(str(exc)) from None
    service = _service(config_path)
    try:
        with _progress(quiet) as progress:
            done = export(service, selection, out, lang, progress)
    except ExportError as exc:
        click.echo(f"antirelou: {exc}", err=True)
        sys.exit(EXIT_BROKEN)
    click.echo(
        f"{out}: {done.texts} texts, {done.selected} records selected, {done.records} chain "
        f"records up to signed checkpoint {done.checkpoint.id} (record {done.checkpoint.seq})"
    )


class _progress:
    """A rich progress bar on a terminal (nothing when --quiet or not a terminal)."""

    def __init__(self, quiet: bool) -> None:
        self.bar: Any = None
        if not quiet and sys.stderr.isatty():
            from rich.progress import Progress

            self.bar = Progress(transient=True)

    def __enter__(self) -> Callable[[int, int], None] | None:
        if self.bar is None:
            return None
        self.bar.start()
        task = self.bar.add_task("exporting records", total=None)
        return lambda done, total: self.bar.update(task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


@click.group()
def retention() -> None:
    """Forget personal data no complaint needs; legal holds keep it."""


@retention.command("run")
@_config
def retention_run(config_path: Path | None) -> None:
    """Purge texts and numbers past their retention period now."""
    from antirelou.evidence.retention import run

    done = run(_service(config_path))
    click.echo(f"purged: {done.describe()}")


@retention.command("hold")
@_config
@click.option("--incident", type=ROW_ID, help="Keep this incident's texts (and its senders').")
@click.option("--sender", help="Keep this number's texts.")
@click.option("--line", help="The line the sender texted (default: the first line).")
@click.option("--note", default="", help="Why (e.g. the complaint's reference).")
@click.option("--release", is_flag=True, help="End the hold instead.")
def retention_hold(
    config_path: Path | None,
    incident: int | None,
    sender: str | None,
    line: str | None,
    note: str,
    release: bool,
) -> None:
    """Put (or end) a legal hold on an incident or a sender."""
    import getpass

    from antirelou.operations import OperationError
    from antirelou.web.actions import set_incident_hold, set_sender_hold

    if (incident is None) == (sender is None):
        raise click.UsageError("choose one of --incident or --sender")
    service = _service(config_path)
    actor = f"cli:{getpass.getuser()}"
    try:
        if incident is not None:
            set_incident_hold(service, incident, not release, actor)
        else:
            assert sender is not None
            where = line or service.settings.lines[0].number
            set_sender_hold(service, where, sender, not release, note, actor)
    except OperationError as exc:
        click.echo(f"antirelou: {exc}", err=True)
        sys.exit(EXIT_BROKEN)
    click.echo(f"legal hold {'ended' if release else 'set'} on {incident or sender}")
