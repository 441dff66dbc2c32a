"""``facelead case ...``: open, close, show; quality overrides; outcomes; disclosure packages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facelead.cli.auth import UserOption, current_actor
from facelead.cli.output import console
from facelead.domain.cases import Case, CaseView
from facelead.services.cases import (
    approve_quality_override,
    close_case,
    open_case,
    show_case,
)
from facelead.services.context import Services
from facelead.services.corroboration import record_outcome
from facelead.services.disclosure import disclose_case

case_app = typer.Typer(
    help="Cases: every search is filed under an open case of your agency.", no_args_is_help=True
)

NumberArg = Annotated[str, typer.Argument(help="The case number, as your agency writes it.")]


def _services() -> Services:
    services = Services()
    services.initialise()
    return services


def _print_case(case: Case) -> None:
    console.print(
        f"case {case.number}: {case.status.value}, {case.offence_category}, agency {case.agency}, "
        f"opened by {case.opened_by} at {case.opened_at:%Y-%m-%d %H:%M} UTC",
        markup=False,
    )
    if case.closed_at is not None:
        console.print(f"closed by {case.closed_by} at {case.closed_at:%Y-%m-%d %H:%M} UTC")


@case_app.command("open")
def open_command(
    number: NumberArg,
    offence: Annotated[
        str, typer.Option(help="Offence category, from the configured list (e.g. robbery).")
    ],
    user: UserOption = None,
) -> None:
    """Open a case for your agency."""
    services = _services()
    _print_case(open_case(services, current_actor(services, user), number, offence))


@case_app.command("close")
def close_command(number: NumberArg, user: UserOption = None) -> None:
    """Close a case: no further searches can be filed under it."""
    services = _services()
    _print_case(close_case(services, current_actor(services, user), number))


@case_app.command("show")
def show_command(number: NumberArg, user: UserOption = None) -> None:
    """Show a case and the status of its searches (never their candidates)."""
    services = _services()
    view: CaseView = show_case(services, current_actor(services, user), number)
    _print_case(view.case)
    for s in view.searches:
        examiners = ", ".join(s.examiners) or "unassigned"
        override = " (quality override)" if s.quality_override else ""
        console.print(
            f"  search {s.search_id}: {s.status.value}{override}, {s.purpose}, "
            f"by {s.requester} at {s.created_at:%Y-%m-%d %H:%M} UTC, examiners: {examiners}",
            markup=False,
        )
    if not view.searches:
        console.print("  no searches")


@case_app.command("approve-override")
def approve_override_command(
    number: NumberArg,
    probe_sha256: Annotated[
        str, typer.Option("--probe", help="SHA-256 of the refused probe (from the refusal).")
    ],
    requester: Annotated[
        str, typer.Option("--for-user", help="The investigator whose resubmission may proceed.")
    ],
    justification: Annotated[
        str, typer.Option(help="Why this below-floor probe should be searched (recorded).")
    ],
    user: UserOption = None,
) -> None:
    """Supervisor: let one below-quality probe be searched once on this case."""
    services = _services()
    actor = current_actor(services, user)
    override_id = approve_quality_override(
        services, actor, number, probe_sha256, requester, justification
    )
    console.print(
        f"quality override {override_id} approved for {requester} on case {number}; "
        "it is used up by their next submission of that probe",
        markup=False,
    )


@case_app.command("outcome")
def outcome_command(
    number: NumberArg,
    search: Annotated[int, typer.Option(help="The search of this case to close.")],
    outcome: Annotated[
        str | None,
        typer.Option(help="confirmed (needs corroboration), excluded or unresolved."),
    ] = None,
    notes: Annotated[str, typer.Option(help="What decided the outcome (recorded).")] = "",
    user: UserOption = None,
) -> None:
    """Close one search of a case with its outcome; a search never closes without one."""
    services = _services()
    actor = current_actor(services, user)
    summary = record_outcome(services, actor, number, search, outcome, notes)
    console.print(
        f"search {summary.search_id} of case {summary.case_number}: {summary.status.value} "
        f"({outcome})",
        markup=False,
    )


@case_app.command("disclose")
def disclose_command(
    number: NumberArg,
    out: Annotated[Path, typer.Option(help="Folder for the ZIP package.")] = Path("."),
    user: UserOption = None,
) -> None:
    """Supervisor: write the disclosure package (ZIP with SHA-256 manifest) of a case."""
    services = _services()
    package = disclose_case(services, current_actor(services, user), number)
    out.mkdir(parents=True, exist_ok=True)
    path = out / package.filename
    path.write_bytes(package.data)
    console.print(
        f"wrote {path}: {package.searches} searches, {len(package.manifest)} files, "
        f"{package.audit_events} audit events; sha256 {package.sha256}",
        markup=False,
    )
