"""``facelead import``, ``retention run``, ``backup``, ``restore`` and per-booking expungement."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from facelead.cli.auth import UserOption, current_actor
from facelead.cli.output import console, parse_date
from facelead.config import Settings
from facelead.errors import InputError
from facelead.services.backup import backup
from facelead.services.context import Services
from facelead.services.importer import (
    ImportOptions,
    ItemOutcome,
    collect,
    prepare_import,
    run_import,
    summarise,
)
from facelead.services.lifecycle import expunge_booking
from facelead.services.restore import restore
from facelead.services.retention import apply_retention, plan_retention

retention_app = typer.Typer(help="Retention of probes and candidate lists.", no_args_is_help=True)


def services() -> Services:
    svc = Services()
    svc.initialise()
    return svc


class RateColumn(ProgressColumn):
    """Images per second over the run so far (rich's own speed column counts bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("—/s" if speed is None else f"{speed:.1f} img/s")


def import_command(
    sources: Annotated[
        list[Path],
        typer.Argument(help="Folders (with manifest.csv), manifest CSVs, ANSI/NIST-ITL files."),
    ],
    manifest: Annotated[
        Path | None,
        typer.Option(
            help="Manifest for a folder: path,subject_id,booking_number,booking_date,agency,"
            "pose,date_of_birth|age_at_booking."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes (default FACELEAD_IMPORT_WORKERS or all cores).")
    ] = None,
    allow_juvenile: Annotated[
        bool | None,
        typer.Option("--allow-juvenile", help="Enrol records of people under 18 at booking."),
    ] = None,
    retry_refused: Annotated[
        bool, typer.Option("--retry-refused", help="Try earlier refusals again.")
    ] = False,
    user: UserOption = None,
) -> None:
    """Bulk-enrol booking records; resumable (re-run after any interruption) and parallel."""
    svc = services()
    actor = current_actor(svc, user)
    options = ImportOptions.from_settings(
        svc.settings, workers=workers, allow_juvenile=allow_juvenile, retry_refused=retry_refused
    )
    plan = prepare_import(svc, actor, collect(sources, manifest), options)
    console.print(
        f"{plan.total} items: {plan.already_done} done and {plan.already_refused} refused "
        f"before, {len(plan.records)} to process on {options.processes(len(plan.records))} "
        "processes",
        markup=False,
    )
    outcomes: list[ItemOutcome] = []
    columns = (
        TextColumn("Importing"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("import", total=len(plan.records))
        for outcome in run_import(svc, actor, plan, options):
            outcomes.append(outcome)
            progress.advance(task)
    _print_summary(outcomes)


def _print_summary(outcomes: list[ItemOutcome]) -> None:
    summary = summarise(outcomes)
    console.print(
        ", ".join(f"{k}: {n}" for k, n in sorted(summary.statuses.items())) or "nothing to do"
    )
    if summary.refusals:
        table = Table(title="Refusals by reason")
        table.add_column("code")
        table.add_column("items", justify="right")
        for code, n in sorted(summary.refusals.items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(code, str(n))
        console.print(table)


def _retention_instant(at: str | None, apply: bool) -> dt.datetime | None:
    """``--at`` as a UTC instant. A dry run may look ahead ("what goes on 1 March?");
    a real run may not: deleting as of a future date would destroy probes and candidate
    lists before their retention period ends."""
    if at is None:
        return None
    day = parse_date(at)
    if apply and day > dt.datetime.now(dt.UTC).date():
        raise InputError(
            f"--apply as of {day} is in the future: records would be deleted before their "
            "retention period ends (a dry run may look ahead)",
            code="retention_in_future",
        )
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@retention_app.command("run")
def retention_run(
    apply: Annotated[
        bool, typer.Option("--apply", help="Delete for real (default: dry run, nothing deleted).")
    ] = False,
    at: Annotated[
        str | None, typer.Option(help="Evaluate the rules as of this UTC date (YYYY-MM-DD).")
    ] = None,
    user: UserOption = None,
) -> None:
    """Delete probe images and candidate lists past their retention period (dry run first)."""
    now = _retention_instant(at, apply)
    svc = services()
    actor = current_actor(svc, user)
    if apply:
        report = apply_retention(svc, actor, now)
        plan = report.plan
        verb = "deleted"
    else:
        plan = plan_retention(svc, actor, now)
        verb = "would delete"
    table = Table(title=f"Retention {'run' if apply else 'dry run'} at {plan.now:%Y-%m-%d %H:%M}")
    for col in ("search", "case", "rule", "candidates", "dispositions", "probe file"):
        table.add_column(col)
    for d in plan.deletions:
        table.add_row(
            str(d.search_id),
            d.case_number,
            d.rule.value,
            str(d.candidates),
            str(d.dispositions),
            d.probe_sha256[:12] if d.delete_probe_file else "kept",
        )
    console.print(table)
    files = sum(d.delete_probe_file for d in plan.deletions) + len(plan.orphan_probe_files)
    console.print(
        f"{verb}: {len(plan.deletions)} searches' candidate lists, "
        f"{sum(d.candidates for d in plan.deletions)} candidates, {files} probe files",
        markup=False,
    )


def backup_command(
    out: Annotated[Path, typer.Argument(help="New (or empty) folder to write the backup into.")],
    user: UserOption = None,
) -> None:
    """Back up the database (SQLite backup API or pg_dump), image stores and keys (admins)."""
    svc = services()
    report = backup(svc, current_actor(svc, user), out)
    console.print(f"backup written to {report.path}", markup=False, soft_wrap=True)
    console.print(
        f"{report.database} database, {report.photos} photos, {report.probes} probes, "
        f"{report.keys} key files, audit log up to event {report.audit_events}",
        markup=False,
    )


def restore_command(
    source: Annotated[Path, typer.Argument(help="A folder written by facelead backup.")],
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="PostgreSQL: replace this live deployment's database and files (admins, --user).",
        ),
    ] = False,
    user: UserOption = None,
) -> None:
    """Restore a backup onto an empty home and database (or --replace), then verify it."""
    settings = Settings()
    actor = None
    if replace:
        svc = Services(settings)
        try:
            actor = current_actor(svc, user)
        finally:
            svc.db.dispose()
    report = restore(settings, source, actor=actor, replace=replace)
    how = "replaced the deployment at" if report.replaced else "restored into"
    console.print(f"{how} {report.home}", markup=False, soft_wrap=True)
    console.print(
        f"{report.database} database restored; audit chain of {report.audit_events} events "
        "verified",
        markup=False,
    )


def expunge_booking_command(
    booking: str, subject: str | None, order: str | None, reason: str, user: str | None
) -> None:
    """``facelead gallery expunge --booking B --order REF``: one arrest leaves the gallery."""
    if not order:
        raise typer.BadParameter("give --order with --booking")
    svc = services()
    result = expunge_booking(
        svc, current_actor(svc, user), booking, order, reason, subject_id=subject
    )
    if result.already_applied:
        console.print(
            f"order {order} was already applied to booking {booking} "
            f"(tombstone {result.tombstone_id})",
            markup=False,
        )
        return
    console.print(
        f"expunged booking {booking}: {result.photos} photos, {result.templates} templates and "
        f"{result.image_files} image files removed; tombstone {result.tombstone_id} kept",
        markup=False,
    )
    if result.subject_removed:
        console.print("it was the subject's last booking: the subject left the gallery")
    else:
        console.print("the subject's other bookings stay searchable")
