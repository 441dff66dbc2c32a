"""The audit log, for auditors (and supervisors where the matrix allows): verify, report,
export, checkpoint. Each reading is itself recorded in the log it reads.
"""

from __future__ import annotations

import datetime as dt
import io
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Response

from facelead.api.deps import CurrentActor, ServicesDep
from facelead.api.fields import ONE_LINE
from facelead.api.models import CheckpointOut, IssueOut, VerificationOut
from facelead.errors import InputError
from facelead.services.audit import (
    audit_report,
    export_events,
    issue_checkpoint,
    render_report,
    verify_log,
)

router = APIRouter(prefix="/audit", tags=["audit"])

REPORT_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
DEFAULT_PERIOD = dt.timedelta(days=30)
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


class ReportFormat(StrEnum):
    JSON = "json"
    HTML = "html"
    CSV = "csv"


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


MEDIA = {"json": "application/json", "html": "text/html", "csv": "text/csv"}
EXPORT_MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv"}
When = Annotated[
    dt.datetime | None, Query(description="ISO date-time with offset; end is exclusive.")
]


def _period(start: dt.datetime | None, end: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    """Aware datetimes within what the database stores; default: the last 30 days."""
    for value in (start, end):
        if value is not None and (value.tzinfo is None or not EARLIEST <= value <= LATEST):
            raise InputError(
                "from and to need a UTC offset and a year between 1970 and 9000",
                code="bad_period",
            )
    end = end or dt.datetime.now(dt.UTC)
    return start or end - DEFAULT_PERIOD, end


def _text(body: str, media: str, fmt: str) -> Response:
    headers = {"Content-Security-Policy": REPORT_CSP} if fmt == "html" else {}
    return Response(body, media_type=f"{media}; charset=utf-8", headers=headers)


@router.get("/verify")
def verify_route(actor: CurrentActor, services: ServicesDep) -> VerificationOut:
    """Recompute the whole hash chain and check it against the signed checkpoints.

    Tampering is a finding (``intact: false`` with the first bad seq), not an error.
    """
    report = verify_log(services, actor)
    return VerificationOut(
        intact=report.ok,
        events_checked=report.events_checked,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        checkpoints_checked=report.checkpoints_checked,
        issues=[IssueOut.model_validate(issue) for issue in report.issues],
    )


@router.get(
    "/report",
    response_class=Response,
    responses={200: {"content": {m: {} for m in MEDIA.values()}, "description": "The report."}},
)
def report_route(
    actor: CurrentActor,
    services: ServicesDep,
    start: When = None,
    end: When = None,
    timezone: Annotated[str, Query(max_length=64, pattern=ONE_LINE)] = "UTC",
    fmt: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.JSON,
) -> Response:
    """Misuse and training signals for [start, end) (default: the last 30 days)."""
    start, end = _period(start, end)
    report = audit_report(services, actor, start, end, timezone=timezone)
    return _text(render_report(report, fmt.value), MEDIA[fmt.value], fmt.value)


@router.get(
    "/export",
    response_class=Response,
    responses={
        200: {"content": {m: {} for m in EXPORT_MEDIA.values()}, "description": "The events."}
    },
)
def export_route(
    actor: CurrentActor,
    services: ServicesDep,
    start: When = None,
    end: When = None,
    fmt: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.JSONL,
) -> Response:
    """Events in seq order in the stable SIEM schema (JSON lines or CSV)."""
    _period(start, end)
    sink = io.StringIO()
    count = export_events(services, actor, sink, fmt=fmt.value, start=start, end=end)
    response = _text(sink.getvalue(), EXPORT_MEDIA[fmt.value], fmt.value)
    response.headers["X-Event-Count"] = str(count)
    return response


@router.post("/checkpoints", status_code=201)
def checkpoint_route(actor: CurrentActor, services: ServicesDep) -> CheckpointOut:
    """Sign the current chain head (after verifying it); keep the result outside the database."""
    return CheckpointOut.model_validate(issue_checkpoint(services, actor).checkpoint)
