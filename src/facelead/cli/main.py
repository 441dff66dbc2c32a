"""The ``facelead`` command."""

from __future__ import annotations

import contextlib
import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from facelead.cli.audit import audit_app
from facelead.cli.auth import UserOption, current_actor
from facelead.cli.cases import case_app
from facelead.cli.doctor import doctor_command
from facelead.cli.eval import eval_app
from facelead.cli.gallery import gallery_app
from facelead.cli.keys import keys_app
from facelead.cli.lifecycle import backup_command, import_command, restore_command, retention_app
from facelead.cli.output import banner, console, err_console, fail
from facelead.cli.report import report_app
from facelead.cli.review import corroborate_app, lead_app, review_app
from facelead.cli.serve import serve_command
from facelead.cli.users import first_admin, users_app
from facelead.domain.gallery import EnrolmentStatus, read_manifest
from facelead.domain.search import ProbeProvenance, SearchRequest
from facelead.errors import FaceLeadError, InputError
from facelead.services.context import Services
from facelead.services.gallery import enroll_files
from facelead.services.search import submit_search

app = typer.Typer(
    help="FaceLead: face search for investigative leads. A result is never an identification.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(gallery_app, name="gallery")
app.add_typer(retention_app, name="retention")
app.command("import")(import_command)
app.command("backup")(backup_command)
app.command("restore")(restore_command)
app.add_typer(users_app, name="user")
app.add_typer(case_app, name="case")
app.add_typer(audit_app, name="audit")
app.add_typer(review_app, name="review")
app.add_typer(lead_app, name="lead")
app.add_typer(corroborate_app, name="corroborate")
app.add_typer(eval_app, name="eval")
app.add_typer(report_app, name="report")
app.add_typer(keys_app, name="keys")
app.command("serve")(serve_command)
app.command("doctor")(doctor_command)

MAX_REFUSALS_SHOWN = 10
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def services() -> Services:
    return Services()


@app.command()
def init(
    admin_user: Annotated[
        str, typer.Option(help="Username of the first administrator (fresh install only).")
    ] = "admin",
    agency: Annotated[str, typer.Option(help="Code of the installing agency.")] = "LOCAL",
    agency_name: Annotated[
        str, typer.Option(help="Full name of the installing agency.")
    ] = "Local agency",
) -> None:
    """Create the data folder (FACELEAD_HOME), the database schema and the first admin.

    The admin's password comes from FACELEAD_ADMIN_PASSWORD or a prompt; the
    TOTP secret is printed once.
    """
    svc = services()
    svc.initialise()
    console.print(f"FaceLead home ready at {svc.settings.resolved_home}")
    first_admin(svc, admin_user, agency, agency_name)


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.exists():
            files.append(path)
        else:
            raise InputError(f"no such file or folder: {path}", code="not_found")
    return files


@app.command()
def enroll(
    paths: Annotated[list[Path], typer.Argument(help="Booking photos or folders of them.")],
    manifest: Annotated[
        Path | None,
        typer.Option(help="CSV: path,subject_id,booking_number[,booking_date,agency,view]."),
    ] = None,
    subject: Annotated[
        str | None, typer.Option(help="Subject id for all photos (default: file name).")
    ] = None,
    agency: Annotated[str, typer.Option(help="Booking agency when no manifest.")] = "UNKNOWN",
    user: UserOption = None,
) -> None:
    """Enrol booking photos into the gallery (records bureau); refusals are listed with codes."""
    svc = services()
    svc.initialise()
    actor = current_actor(svc, user)
    refs = read_manifest(manifest) if manifest else None
    files = _expand(paths)
    counts: dict[str, int] = {}
    refusals = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Enrolling", total=len(files))
        for result in enroll_files(svc, actor, files, refs, subject, agency):
            counts[result.status] = counts.get(result.status, 0) + 1
            if result.status is EnrolmentStatus.REFUSED:
                refusals.append(result)
            progress.advance(task)
    for result in refusals[:MAX_REFUSALS_SHOWN]:
        console.print(f"refused [{result.code}] {result.source}: {result.message}", markup=False)
    if len(refusals) > MAX_REFUSALS_SHOWN:
        console.print(f"… and {len(refusals) - MAX_REFUSALS_SHOWN} more refusals")
    console.print(", ".join(f"{status}: {n}" for status, n in sorted(counts.items())) or "nothing")


@app.command()
def search(
    probe: Annotated[Path, typer.Argument(help="One still probe image (no video, no URL).")],
    case: Annotated[str, typer.Option("--case", help="The open case this search is for.")],
    purpose: Annotated[
        str,
        typer.Option(
            help="Permitted purpose: criminal-investigation, imminent-threat-to-life, "
            "identify-deceased-or-incapacitated or at-risk-or-missing-person."
        ),
    ],
    justification: Annotated[
        str, typer.Option(help="Why this search is needed: the conduct or the person at risk.")
    ],
    source: Annotated[
        str, typer.Option(help="Probe source type, e.g. cctv-still, phone-photo, social-media.")
    ],
    obtained_by: Annotated[
        str, typer.Option("--obtained-by", help="How the probe was obtained (e.g. warrant).")
    ],
    captured_by: Annotated[
        str, typer.Option("--captured-by", help="Who captured the image (person or device).")
    ],
    edit: Annotated[
        list[str] | None,
        typer.Option(
            "--edit", help="An edit made to the image, once per edit, in order (crop, rotate...)."
        ),
    ] = None,
    face: Annotated[
        int | None, typer.Option(help="Which face when several are found (0 = largest).")
    ] = None,
    top: Annotated[
        int | None, typer.Option(help="Candidates to keep for review (default 20, max 50).")
    ] = None,
    user: UserOption = None,
) -> None:
    """Submit one probe for a case; prints the search id and status, never candidates."""
    svc = services()
    svc.initialise()
    actor = current_actor(svc, user)
    try:
        data = probe.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {probe}: {exc.strerror}", code="unreadable") from exc
    provenance = ProbeProvenance(source, obtained_by, captured_by, tuple(edit or ()))
    request = SearchRequest(purpose, justification, provenance, face_index=face, top_k=top)
    receipt = submit_search(svc, actor, case, data, request)
    console.print(
        f"search {receipt.search_id}: {receipt.status.value} (case {receipt.case_number}, "
        f"probe {receipt.probe_sha256[:12]})",
        markup=False,
    )
    console.print("Candidates are shown only to the examiners assigned to this search.")
    banner(receipt.disclaimer)


def _click_errors(name: str) -> tuple[type[Exception], ...]:
    """A click exception class wherever this typer keeps click (vendored since 0.2x)."""
    found = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


def run() -> None:
    """Console-script entry: domain errors and usage mistakes (an unknown option, a
    missing argument) become one line and exit status 2, never a box or a traceback."""
    try:
        status = app(standalone_mode=False)
    except FaceLeadError as exc:
        fail(exc)
    except _click_errors("UsageError") as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: typer printed its help
            sys.exit(2)
        where = ctx.command_path if ctx else "facelead"
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        fail(InputError(f"{message} (see '{where} --help')", code="usage"))
    except (typer.Abort, *_click_errors("Abort")):  # type: ignore[misc]
        err_console.print("aborted")
        sys.exit(1)
    if isinstance(status, int) and status:  # typer.Exit(n) comes back as a return value
        sys.exit(status)
