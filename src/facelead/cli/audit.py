"""``facelead audit ...``: verify, checkpoint, report and export the audit log.

Auditors (and supervisors, per the permission matrix) only; every command is
itself recorded in the log it reads. ``verify`` exits 0 when the log is
intact and 1 when tampering is found; refusals and bad input exit 2.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from facelead.cli.auth import UserOption, current_actor
from facelead.cli.output import console, err_console
from facelead.errors import InputError
from facelead.services.audit import (
    audit_report,
    export_events,
    issue_checkpoint,
    render_report,
    verify_log,
)
from facelead.services.context import Services

audit_app = typer.Typer(
    help="The tamper-evident audit log: verify it, sign checkpoints, report misuse, export.",
    no_args_is_help=True,
)

OutOption = Annotated[
    Path | None, typer.Option("--out", help="Write to this file instead of standard output.")
]
ZoneOption = Annotated[
    str,
    typer.Option(
        "--timezone", help="Local time zone for days and working hours (IANA name, e.g. UTC)."
    ),
]


def _services() -> Services:
    services = Services()
    services.initialise()
    return services


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"unknown time zone {name!r}", code="invalid_timezone") from exc


def parse_when(text: str, zone: ZoneInfo, *, end: bool = False) -> datetime:
    """ISO date or date-time; a bare date means the start of that day, or with ``end`` its end."""
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip()) + timedelta(days=1 if end else 0)
            return datetime.combine(day, time(), tzinfo=zone)
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InputError(f"not an ISO date or date-time: {text!r}", code="bad_period") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text, encoding="utf-8")
    err_console.print(f"written to {out}", markup=False)


@audit_app.command("verify")
def verify_command(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="Also hold the log to the checkpoints in this JSON-lines file "
            "(exported earlier with 'facelead audit checkpoint').",
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="Trust checkpoints signed with this Ed25519 key (PEM) instead of the local key.",
        ),
    ] = None,
    user: UserOption = None,
) -> None:
    """Recompute the hash chain and check checkpoint signatures; exit 1 on tampering."""
    services = _services()
    actor = current_actor(services, user)
    report = verify_log(services, actor, checkpoint_file=checkpoint, public_key_file=public_key)
    if report.first is None:
        console.print(
            f"OK: {report.events_checked} events chain correctly (head seq {report.head_seq}, "
            f"hash {report.head_hash[:16]}…); {report.checkpoints_checked} checkpoints verified"
        )
        return
    first = report.first
    console.print(
        f"TAMPERED: first bad seq {first.seq} ({first.kind.value}): {first.message}", markup=False
    )
    for issue in report.issues[1:]:
        console.print(f"  also seq {issue.seq} ({issue.kind.value}): {issue.message}", markup=False)
    console.print(f"events vouched for: 1..{report.head_seq}")
    raise typer.Exit(code=1)


@audit_app.command("checkpoint")
def checkpoint_command(out: OutOption = None, user: UserOption = None) -> None:
    """Sign a checkpoint of the chain head now and export all checkpoints as JSON lines.

    Keep the export somewhere the database administrators cannot write.
    """
    services = _services()
    issued = issue_checkpoint(services, current_actor(services, user))
    cp = issued.checkpoint
    err_console.print(f"checkpoint signed at seq {cp.seq}, head {cp.head_hash[:16]}…", markup=False)
    _emit(issued.jsonl(), out)


@audit_app.command("report")
def report_command(
    start: Annotated[
        str, typer.Option("--from", help="Start of the period (ISO date or date-time, inclusive).")
    ],
    end: Annotated[
        str, typer.Option("--to", help="End of the period (ISO date: through that whole day).")
    ],
    fmt: Annotated[str, typer.Option("--format", help="html (with charts), csv or json.")] = "html",
    timezone: ZoneOption = "UTC",
    out: OutOption = None,
    user: UserOption = None,
) -> None:
    """Misuse and training signals for a period, each rule written out."""
    zone = _zone(timezone)
    services = _services()
    actor = current_actor(services, user)
    report = audit_report(
        services,
        actor,
        parse_when(start, zone),
        parse_when(end, zone, end=True),
        timezone=timezone,
    )
    _emit(render_report(report, fmt), out)


@audit_app.command("export")
def export_command(
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl (JSON Lines).")] = "jsonl",
    start: Annotated[
        str | None, typer.Option("--from", help="Only events from this UTC date or date-time.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Only events through this UTC date (inclusive).")
    ] = None,
    out: OutOption = None,
    user: UserOption = None,
) -> None:
    """Export events for SIEM tools in the stable schema of docs/audit.md."""
    utc = ZoneInfo("UTC")
    since = parse_when(start, utc) if start else None
    until = parse_when(end, utc, end=True) if end else None
    services = _services()
    actor = current_actor(services, user)
    with ExitStack() as stack:
        sink: TextIO = (
            stack.enter_context(out.open("w", encoding="utf-8", newline="")) if out else sys.stdout
        )
        rows = export_events(services, actor, sink, fmt=fmt, start=since, end=until)
    err_console.print(f"{rows} events exported", markup=False)
