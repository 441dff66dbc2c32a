"""``facelead doctor [--repair]``: do the database, image stores, index and audit chain agree?

Exit 0 when there is no error (warnings are safe leftovers), 1 when there is
one; refusals exit 2 like every other command.
"""

from __future__ import annotations

from typing import Annotated

import typer

from facelead.cli.auth import UserOption, current_actor
from facelead.cli.output import console
from facelead.services.context import Services
from facelead.services.doctor import diagnose


def doctor_command(
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Delete orphan and temporary image files (older than 15 minutes) and "
            "rebuild stale indexes; errors are only reported.",
        ),
    ] = False,
    user: UserOption = None,
) -> None:
    """Check that database, image stores, index and audit chain agree (records, admin)."""
    services = Services()
    services.initialise()
    report = diagnose(services, current_actor(services, user), repair=repair)
    for finding in report.findings:
        mark = " (repaired)" if finding.repaired else ""
        console.print(
            f"{finding.severity.upper()} {finding.check} {finding.subject}: {finding.detail}{mark}",
            markup=False,
            soft_wrap=True,
        )
    errors = len(report.errors)
    console.print(
        f"{'OK' if report.ok else 'FAILED'}: {errors} errors, "
        f"{len(report.findings) - errors} warnings",
        markup=False,
    )
    if not report.ok:
        raise typer.Exit(code=1)
