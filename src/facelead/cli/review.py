"""``facelead review|lead|corroborate ...``: the human review workflow on the command line.

Thin: parse, call a service, print. Every refusal (role, state, two-person
rule, blind rules) comes from the services as one ``error [code]`` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from facelead.cli.auth import UserOption, current_actor
from facelead.cli.output import banner, console
from facelead.domain.cases import ReviewRole, SearchSummary
from facelead.domain.review import FEATURES, REPORT_DISCLAIMER, Decision, parse_disposition
from facelead.domain.review import parse_resolution as _resolution
from facelead.errors import InputError
from facelead.services.context import Services
from facelead.services.corroboration import add_corroboration
from facelead.services.reports import lead_report
from facelead.services.review import (
    assign_reviewer,
    dispose,
    record_features,
    resolve,
    review_queue,
    verify,
)
from facelead.services.review_view import ReviewPacket, show_review

review_app = typer.Typer(
    help="Examiner review: queue, assignment, blind review, peer verification, resolution.",
    no_args_is_help=True,
)
lead_app = typer.Typer(
    help="Lead reports: to the requester, only after peer verification.", no_args_is_help=True
)
corroborate_app = typer.Typer(
    help="Record independent evidence for or against a released lead.", no_args_is_help=True
)

SearchArg = Annotated[int, typer.Argument(help="The search id (from facelead search).")]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="SUBJECT=DISPOSITION[:NOTES], once per candidate; DISPOSITION is exclude, "
        "inconclusive or possible-lead (notes required except for exclude).",
    ),
]


def _services() -> Services:
    services = Services()
    services.initialise()
    return services


def _print_summary(summary: SearchSummary) -> None:
    console.print(
        f"search {summary.search_id}: {summary.status.value} (case {summary.case_number}); "
        f"reviewers: {', '.join(summary.examiners) or 'none'}",
        markup=False,
    )


def parse_decisions(specs: list[str] | None) -> dict[str, Decision]:
    """``SUBJECT=DISPOSITION[:NOTES]`` options into decisions keyed by subject id."""
    decisions: dict[str, Decision] = {}
    for spec in specs or ():
        subject, sep, rest = spec.partition("=")
        if not sep or not subject.strip():
            raise InputError(
                f"--set {spec!r}: write SUBJECT=DISPOSITION[:NOTES]", code="invalid_disposition"
            )
        name, _, notes = rest.partition(":")
        if subject.strip() in decisions:
            raise InputError(f"{subject} is given twice", code="invalid_disposition")
        decisions[subject.strip()] = Decision(parse_disposition(name), notes.strip())
    return decisions


def _fmr(value: float | None, hidden: bool) -> str:
    """Estimated FMR as printed: hidden while blind, a dash if the model is uncalibrated."""
    if hidden:
        return "hidden"
    return "-" if value is None else f"{value:.1e}"


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


@review_app.command("queue")
def queue_command(user: UserOption = None) -> None:
    """Searches of your agency waiting for an examiner, a verifier or a supervisor."""
    services = _services()
    items = review_queue(services, current_actor(services, user))
    table = Table(title="Review queue (candidates are never listed here)")
    for column in ("search", "case", "status", "waiting for", "round", "requester", "reviewers"):
        table.add_column(column)
    for item in items:
        requester = f"{item.requester} (you)" if item.own_request else item.requester
        reviewers = ", ".join(f"{name} ({role})" for name, role in item.reviewers) or "-"
        table.add_row(
            str(item.search_id), item.case_number, item.status.value, item.waiting_for,
            str(item.round), requester, reviewers,
        )  # fmt: skip
    console.print(table if items else "nothing waiting for review")


@review_app.command("assign")
def assign_command(
    search: SearchArg,
    examiner: Annotated[str, typer.Option(help="Username of a certified examiner to assign.")],
    role: Annotated[
        str, typer.Option(help="examiner (first review) or verifier (blind peer verification).")
    ] = "examiner",
    blind: Annotated[
        bool | None,
        typer.Option(
            "--blind/--no-blind",
            help="Shuffle candidates and hide scores until dispositions are in (default: on).",
        ),
    ] = None,
    user: UserOption = None,
) -> None:
    """Assign a search to an examiner or verifier (never its requester, never twice)."""
    try:
        review_role = ReviewRole(role.strip().lower())
    except ValueError:
        raise InputError("--role is examiner or verifier", code="invalid_review_role") from None
    services = _services()
    actor = current_actor(services, user)
    _print_summary(assign_reviewer(services, actor, search, examiner, review_role, blind))


def _print_packet(packet: ReviewPacket) -> None:
    console.print(
        f"search {packet.search_id} (case {packet.case_number}): {packet.status.value}; "
        f"you review as {packet.review_role.value}, round {packet.round}, "
        f"{'blind' if packet.blind else 'not blind'}; model {packet.model_id}",
        markup=False,
    )
    prov = packet.provenance
    console.print(
        f"probe {packet.probe_sha256[:12]}: {prov.source_type}, {prov.how_obtained}, "
        f"captured by {prov.captured_by}; edits: {', '.join(prov.edits) or 'none'}",
        markup=False,
    )
    if packet.features is None:
        console.print("features: not recorded yet (facelead review features)")
    table = Table(title="Candidates" + ("" if packet.scores_visible else " (blind: shuffled)"))
    for column in ("#", "subject", "booking", "date", "rank", "score", "est. FMR", "your decision"):
        table.add_column(column)
    for n, c in enumerate(packet.candidates, start=1):
        hidden = "hidden"
        decision = f"{c.decision.disposition.value} {c.decision.notes}" if c.decision else "-"
        table.add_row(
            str(n), c.subject_id, c.booking_number or "-",
            c.booking_date.isoformat() if c.booking_date else "-",
            hidden if c.rank is None else str(c.rank),
            hidden if c.score is None else f"{c.score:.4f}",
            _fmr(c.estimated_fmr, c.score is None), decision.strip(),
        )  # fmt: skip
    console.print(table)
    for path in packet.images:
        console.print(f"wrote {path}", markup=False)
    banner(packet.disclaimer)


@review_app.command("show")
def show_command(
    search: SearchArg,
    images: Annotated[
        Path | None, typer.Option(help="Write the probe and the candidate photos to this folder.")
    ] = None,
    user: UserOption = None,
) -> None:
    """Your review of a search: the probe and the candidates you must decide on."""
    services = _services()
    _print_packet(show_review(services, current_actor(services, user), search, images))


@review_app.command("features")
def features_command(
    search: SearchArg,
    compared: Annotated[
        list[str],
        typer.Option(help="Features compared (repeat or comma-separate): " + ", ".join(FEATURES)),
    ],
    not_visible: Annotated[
        list[str] | None,
        typer.Option("--not-visible", help="Features not assessable in the probe."),
    ] = None,
    note: Annotated[str, typer.Option(help="Anything about the comparison as a whole.")] = "",
    user: UserOption = None,
) -> None:
    """Record the FISWG features compared; required before any disposition."""
    services = _services()
    actor = current_actor(services, user)
    checklist = record_features(
        services, actor, search, _split(compared), _split(not_visible), note
    )
    done = [name for name, status in checklist.items() if status == "compared"]
    console.print(f"search {search}: features recorded ({len(done)} compared: {', '.join(done)})")


@review_app.command("dispose")
def dispose_command(
    search: SearchArg,
    set_: SetOption = None,
    others: Annotated[
        str | None,
        typer.Option(help="Disposition for every candidate not named with --set (e.g. exclude)."),
    ] = None,
    user: UserOption = None,
) -> None:
    """First examiner: one disposition per candidate; the result is no lead or possible leads."""
    services = _services()
    actor = current_actor(services, user)
    rest = parse_disposition(others) if others else None
    _print_summary(dispose(services, actor, search, parse_decisions(set_), rest))


@review_app.command("verify")
def verify_command(
    search: SearchArg,
    set_: SetOption = None,
    escalate: Annotated[
        bool,
        typer.Option(help="If you disagree, escalate to a supervisor instead of returning it."),
    ] = False,
    user: UserOption = None,
) -> None:
    """Second examiner: your own blind disposition of each possible lead."""
    services = _services()
    actor = current_actor(services, user)
    _print_summary(verify(services, actor, search, parse_decisions(set_), escalate))


@review_app.command("resolve")
def resolve_command(
    search: SearchArg,
    decision: Annotated[str, typer.Option(help="uphold, no-lead or re-review.")],
    notes: Annotated[str, typer.Option(help="Why: recorded and disclosed.")],
    user: UserOption = None,
) -> None:
    """Supervisor: resolve a disagreement between examiner and verifier."""
    services = _services()
    actor = current_actor(services, user)
    _print_summary(resolve(services, actor, search, _resolution(decision), notes))


@lead_app.command("report")
def report_command(
    search: SearchArg,
    out: Annotated[Path, typer.Option(help="Folder for the HTML and PDF files.")] = Path("."),
    user: UserOption = None,
) -> None:
    """Issue the lead (or no-lead) report of a verified search to its requester."""
    services = _services()
    files = lead_report(services, current_actor(services, user), search)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"lead-report-{files.report.case_number}-{search}".replace("/", "_")
    html_path, pdf_path = stem.with_suffix(".html"), stem.with_suffix(".pdf")
    html_path.write_text(files.html, encoding="utf-8")
    pdf_path.write_bytes(files.pdf)
    console.print(
        f"{files.report.kind.replace('_', ' ')} report for search {search}:", markup=False
    )
    for lead in files.report.leads:
        console.print(
            f"  possible lead {lead.subject_id}: score {lead.score:.4f}, estimated FMR "
            f"{lead.estimated_fmr}{', POSSIBLY STALE photo' if lead.stale else ''}",
            markup=False,
        )
    console.print(f"wrote {html_path}\nwrote {pdf_path}", markup=False)
    console.print(REPORT_DISCLAIMER, style="bold yellow", markup=False)


@corroborate_app.command("add")
def add_command(
    search: SearchArg,
    type_: Annotated[
        str,
        typer.Option(
            "--type",
            help="vehicle-information, open-source-media, witness-statement, alibi-check, "
            "physical-or-forensic-evidence or other (never a lineup built from the lead).",
        ),
    ],
    description: Annotated[str, typer.Option(help="What was found, where and by whom.")],
    contradicts: Annotated[
        bool, typer.Option(help="The fact contradicts the lead (e.g. a tattoo the suspect lacks).")
    ] = False,
    user: UserOption = None,
) -> None:
    """Record independent evidence, or a fact that contradicts the lead."""
    services = _services()
    actor = current_actor(services, user)
    item = add_corroboration(services, actor, search, type_, description, contradicts)
    what = "contradicting fact" if not item.supports else "supporting evidence"
    console.print(
        f"search {search}: {what} {item.item_id} ({item.kind.value}) recorded; "
        f"status {item.status.value}",
        markup=False,
    )
