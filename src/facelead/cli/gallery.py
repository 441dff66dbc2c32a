"""``facelead gallery``: statistics, lookups, sealing, expungement, purges, re-templating."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from facelead.cli.auth import UserOption, current_actor
from facelead.cli.lifecycle import expunge_booking_command
from facelead.cli.output import console
from facelead.domain.gallery import RemovalKind, normalise_order, read_orders
from facelead.services.context import Services
from facelead.services.gallery import gallery_stats
from facelead.services.lifecycle import (
    apply_orders,
    lookup_removed,
    lookup_subject,
    remove_subject,
    sweep_removed_files,
)
from facelead.services.reindex import reindex, switch_model

gallery_app = typer.Typer(
    help="The gallery of enrolled booking photos: inspect, seal, expunge, purge, re-template.",
    no_args_is_help=True,
)

OrderOption = Annotated[
    str | None,
    typer.Option("--order", help="Court order or records reference (kept in the tombstone)."),
]
SyncOption = Annotated[
    Path | None,
    typer.Option("--sync", help="CSV of orders from the RMS: action,subject_id,order[,reason]."),
]
ReasonOption = Annotated[str, typer.Option(help="Why, in words (kept in the tombstone).")]


def services() -> Services:
    svc = Services()
    svc.initialise()
    return svc


@gallery_app.command("stats")
def stats(user: UserOption = None) -> None:
    """Counts of subjects, bookings, photos and templates per model."""
    svc = services()
    console.print_json(json.dumps(gallery_stats(svc, current_actor(svc, user))))


@gallery_app.command("show")
def show(
    subject: Annotated[str, typer.Argument(help="Subject id.")], user: UserOption = None
) -> None:
    """A live subject's bookings, photo count and templates per model."""
    svc = services()
    view = lookup_subject(svc, current_actor(svc, user), subject)
    console.print_json(json.dumps(view.__dict__))


@gallery_app.command("removed")
def removed(
    subject: Annotated[str, typer.Argument(help="Subject id.")], user: UserOption = None
) -> None:
    """Auditors: was this subject sealed, expunged or purged, and under which order."""
    svc = services()
    for record in lookup_removed(svc, current_actor(svc, user), subject):
        console.print(
            f"record removed: {record.kind.value} under order {record.order_ref} on "
            f"{record.removed_at:%Y-%m-%d %H:%M} UTC by {record.removed_by} "
            f"({len(record.photo_hashes)} photo hashes kept)",
            markup=False,
        )


def _remove(
    kind: RemovalKind,
    subject: str | None,
    order: str | None,
    reason: str,
    sync: Path | None,
    user: str | None,
) -> None:
    svc = services()
    actor = current_actor(svc, user)
    if sync is not None:
        failed = 0
        for outcome in apply_orders(svc, actor, read_orders(sync, kind.value)):
            o = outcome.order
            if outcome.result is None:
                failed += 1
                err = outcome.error or {}
                console.print(
                    f"refused [{err.get('code')}] {o.kind.value} {o.subject_id} "
                    f"({o.order_ref}): {err.get('message')}",
                    markup=False,
                )
            else:
                note = "already applied" if outcome.result.already_applied else "removed"
                console.print(
                    f"{o.kind.value} {o.subject_id} ({o.order_ref}): {note}", markup=False
                )
        if failed:
            raise typer.Exit(1)
        return
    if not subject or not order:
        raise typer.BadParameter("give SUBJECT and --order, or --sync CSV")
    result = remove_subject(svc, actor, normalise_order(kind.value, subject, order, reason))
    if result.already_applied:
        console.print(f"order {order} was already applied (tombstone {result.tombstone_id})")
        return
    console.print(
        f"{kind.value}: {result.photos} photos, {result.templates} templates and "
        f"{result.image_files} image files removed; tombstone {result.tombstone_id} kept",
        markup=False,
    )


SubjectArg = Annotated[str | None, typer.Argument(help="Subject id (omit with --sync).")]


@gallery_app.command("seal")
def seal(
    subject: SubjectArg = None,
    order: OrderOption = None,
    reason: ReasonOption = "",
    sync: SyncOption = None,
    user: UserOption = None,
) -> None:
    """Seal a subject's record under a court order: templates, photos and index rows go."""
    _remove(RemovalKind.SEALED, subject, order, reason, sync, user)


@gallery_app.command("expunge")
def expunge(
    subject: SubjectArg = None,
    order: OrderOption = None,
    reason: ReasonOption = "",
    sync: SyncOption = None,
    booking: Annotated[
        str | None,
        typer.Option(
            "--booking",
            help="Expunge only this booking (one arrest); the subject's other bookings stay.",
        ),
    ] = None,
    user: UserOption = None,
) -> None:
    """Expunge a subject's record, or with --booking one arrest, under a court order."""
    if booking is not None and sync is None:
        expunge_booking_command(booking, subject, order, reason, user)
        return
    if booking is not None:
        raise typer.BadParameter("--booking applies one order; --sync takes subjects")
    _remove(RemovalKind.EXPUNGED, subject, order, reason, sync, user)


@gallery_app.command("purge")
def purge(
    subject: SubjectArg = None,
    order: OrderOption = None,
    reason: ReasonOption = "",
    sync: SyncOption = None,
    user: UserOption = None,
) -> None:
    """Purge a subject by policy (never charged, charges dropped, acquitted)."""
    _remove(RemovalKind.PURGED, subject, order, reason, sync, user)


@gallery_app.command("sweep")
def sweep(user: UserOption = None) -> None:
    """Delete image files of removed subjects that an interrupted removal left behind."""
    svc = services()
    count = sweep_removed_files(svc, current_actor(svc, user))
    console.print(f"{count} leftover image files deleted")


@gallery_app.command("reindex")
def reindex_command(
    model: Annotated[str, typer.Option("--model", help="Model id to build templates for.")],
    workers: Annotated[int, typer.Option(help="Processes (0: one per CPU core).")] = 0,
    switch: Annotated[
        bool, typer.Option(help="Make the model active once every photo has its template.")
    ] = True,
    allow_missing: Annotated[
        bool, typer.Option("--allow-missing", help="Switch even if some photos failed.")
    ] = False,
    user: UserOption = None,
) -> None:
    """Build templates of another model next to the old ones (resumable), then switch."""
    svc = services()
    actor = current_actor(svc, user)
    processes = workers or os.cpu_count() or 1
    written, refused = 0, 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"Templating for {model}", total=None)
        for batch in reindex(svc, actor, model, processes):
            written += batch.written
            refused += len(batch.refused)
            progress.advance(task, batch.written + len(batch.refused))
    console.print(f"{written} templates written, {refused} photos refused", markup=False)
    if switch:
        previous = switch_model(svc, actor, model, allow_missing)
        console.print(f"active model: {model} (was {previous})", markup=False)
