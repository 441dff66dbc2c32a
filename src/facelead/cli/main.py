"""The ``facelead`` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from facelead.cli.output import banner, candidate_table, console, fail
from facelead.domain.access import SYSTEM
from facelead.domain.gallery import EnrolmentStatus, read_manifest
from facelead.errors import FaceLeadError, InputError
from facelead.services.context import Services
from facelead.services.gallery import enroll_files, gallery_stats
from facelead.services.search import search_probe

app = typer.Typer(
    help="FaceLead: face search for investigative leads. A result is never an identification.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
gallery_app = typer.Typer(
    help="Inspect the gallery of enrolled booking photos.", no_args_is_help=True
)
app.add_typer(gallery_app, name="gallery")

MAX_REFUSALS_SHOWN = 10
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def services() -> Services:
    return Services()


@app.command()
def init() -> None:
    """Create the data folder (FACELEAD_HOME) and the database schema."""
    svc = services()
    svc.initialise()
    console.print(f"FaceLead home ready at {svc.settings.resolved_home}")


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
) -> None:
    """Enrol booking photos into the gallery; refusals are listed with their codes."""
    svc = services()
    svc.initialise()
    refs = read_manifest(manifest) if manifest else None
    files = _expand(paths)
    counts: dict[str, int] = {}
    refusals = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Enrolling", total=len(files))
        for result in enroll_files(svc, SYSTEM, files, refs, subject, agency):
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
    probe: Annotated[Path, typer.Argument(help="One still probe image.")],
    face: Annotated[
        int | None, typer.Option(help="Which face when several are found (0 = largest).")
    ] = None,
    top: Annotated[
        int | None, typer.Option(help="Candidates to list (default 20, max 50).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Search one probe photo; prints a ranked candidate list, never a match verdict."""
    svc = services()
    svc.initialise()
    try:
        data = probe.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {probe}: {exc.strerror}", code="unreadable") from exc
    result = search_probe(svc, data, face, top)
    if as_json:
        console.print_json(json.dumps(_as_json(result), default=str))
        return
    banner(result.disclaimer)
    console.print(candidate_table(result))


def _as_json(result: object) -> object:
    from dataclasses import asdict

    return asdict(result)  # type: ignore[call-overload]


@gallery_app.command("stats")
def stats() -> None:
    """Counts of subjects, bookings, photos and templates per model."""
    svc = services()
    svc.initialise()
    console.print_json(json.dumps(gallery_stats(svc, SYSTEM)))


def run() -> None:
    """Console-script entry: domain errors become one line and exit status 2."""
    try:
        app()
    except FaceLeadError as exc:
        fail(exc)
