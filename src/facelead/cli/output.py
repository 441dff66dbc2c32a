"""Rendering and parsing helpers shared by the commands."""

from __future__ import annotations

import datetime as dt
import sys
from typing import NoReturn

from rich.console import Console
from rich.table import Table

from facelead.domain.search import CandidateList
from facelead.errors import FaceLeadError, InputError

# Wide enough for the candidate table when piped (make demo, logs).
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True)


def parse_date(text: str) -> dt.date:
    """A YYYY-MM-DD option; anything else is one line, ``invalid_date``."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"not a date (YYYY-MM-DD): {text!r}", code="invalid_date") from None


def fail(exc: FaceLeadError) -> NoReturn:
    """One readable line and exit status 2: never a traceback for bad input."""
    err_console.print(f"error [{exc.code}]: {exc.message}", markup=False, soft_wrap=True)
    for face in exc.details.get("faces", []) if exc.code.startswith("face_") else []:
        err_console.print(f"  face {face.get('index')}: box={face['box']} score={face['score']}")
    sys.exit(2)


def candidate_table(result: CandidateList) -> Table:
    table = Table(
        title=f"Candidates (model {result.model_id}, gallery {result.gallery_size} subjects)",
        caption=result.disclaimer,
    )
    for column in ("rank", "score", "est. FMR", "subject", "booking", "date", "agency", "photo"):
        table.add_column(column)
    for c in result.candidates:
        table.add_row(
            str(c.rank),
            f"{c.score:.4f}",
            "—" if c.estimated_fmr is None else f"{c.estimated_fmr:.1e}",
            c.subject_id,
            c.booking_number or "—",
            c.booking_date.isoformat() if c.booking_date else "—",
            c.agency or "—",
            c.photo_sha256[:12],
        )
    return table


def banner(text: str) -> None:
    console.rule(f"[bold yellow]{text}[/]")
