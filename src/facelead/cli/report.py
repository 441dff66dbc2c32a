"""``facelead report ...``: reports for the public and for oversight bodies.

``transparency`` is the aggregate report for a community advisory group:
counts only, small counts suppressed (docs/transparency.md). Auditors and
supervisors generate it; each generation is recorded in the audit log with
the SHA-256 of the file. The dates are checked before anyone logs in, so a
typo costs nothing but one line on standard error and exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from facelead.cli.auth import UserOption, current_actor
from facelead.cli.output import err_console
from facelead.domain.transparency import parse_period
from facelead.errors import InputError
from facelead.services.context import Services
from facelead.services.transparency import FORMATS, RESULTS_DIR, transparency_report

report_app = typer.Typer(
    help="Public reports: the aggregate transparency report (no personal data).",
    no_args_is_help=True,
)


@report_app.command("transparency")
def transparency_command(
    start: Annotated[
        str, typer.Option("--from", help="First day of the period: YYYY-MM-DD, or YYYY-MM.")
    ],
    end: Annotated[
        str,
        typer.Option("--to", help="Last day of the period (inclusive): YYYY-MM-DD, or YYYY-MM."),
    ],
    fmt: Annotated[
        str, typer.Option("--format", help="html (with charts), csv (one tidy table) or pdf.")
    ] = "html",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of standard output.")
    ] = None,
    results: Annotated[
        Path,
        typer.Option(
            "--results",
            help="Folder of the evaluation results (accuracy-lfw.json, fairness-lfw.json).",
        ),
    ] = RESULTS_DIR,
    user: UserOption = None,
) -> None:
    """Searches, refusals, outcomes, review times, audit findings, removals and the model's
    measured accuracy and fairness for a period; every count under 5 suppressed."""
    first, last = parse_period(start, end)
    if fmt not in FORMATS:
        raise InputError(f"report format must be one of {', '.join(FORMATS)}", code="format")
    services = Services()
    services.initialise()
    actor = current_actor(services, user)
    file = transparency_report(services, actor, first, last, fmt, results_dir=results)
    if out is None:
        sys.stdout.buffer.write(file.data)
        sys.stdout.buffer.flush()
        return
    try:
        out.write_bytes(file.data)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}", code="unwritable") from exc
    err_console.print(f"written to {out} (sha256 {file.sha256})", markup=False)
