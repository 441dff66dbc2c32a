"""The auditor's dashboard: the misuse report of a period, as charts with their evidence.

Reading the report is itself audited (``audit.read``) by the service; the
log's integrity is verified with every reading and shown first.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request, Response

from facelead.errors import InputError
from facelead.services.audit import REPORT_FORMATS, AuditReport, audit_report, render_report
from facelead.web.charts import bar_chart
from facelead.web.context import page, web_app
from facelead.web.forms import date
from facelead.web.routing import WebRoute, secure
from facelead.web.security import ActorDep

router = APIRouter(route_class=WebRoute)

DEFAULT_DAYS = 7
ZONES = ("UTC", "America/Los_Angeles", "America/New_York", "Europe/London")
MEDIA = {"html": "text/html; charset=utf-8", "csv": "text/csv", "json": "application/json"}


def _period(start: str, end: str) -> tuple[dt.date, dt.date]:
    """Whole days; ``end`` inclusive on the form, exclusive in the report."""
    today = dt.datetime.now(dt.UTC).date()
    last = date(end, "to") if end else today
    first = date(start, "from") if start else last - dt.timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InputError("the period starts after it ends", code="bad_period")
    return first, last


def _report(request: Request, actor: Any, start: str, end: str, tz: str) -> AuditReport:
    first, last = _period(start, end)
    begin = dt.datetime.combine(first, dt.time(), dt.UTC)
    finish = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)
    zone = tz if tz in ZONES else "UTC"
    return audit_report(web_app(request).services, actor, begin, finish, timezone=zone)


def _charts(report: AuditReport) -> dict[str, Any]:
    per_rule = [
        (result.rule.title, len(result.findings), f"#rule-{i}")
        for i, result in enumerate(report.results)
    ]
    refusals = [
        (f"{user}: {reason}", len(seqs), f"#refusal-{n}")
        for n, (user, reason, seqs) in enumerate(_refusal_rows(report))
    ]
    rules = [
        bar_chart(
            r.rule.title,
            [(f.subject, f.value, f"#finding-{i}-{n}") for n, f in enumerate(r.findings)],
        )
        for i, r in enumerate(report.results)
    ]
    return {
        "summary_chart": bar_chart("Findings per rule", per_rule),
        "refusal_chart": bar_chart("Refused searches by user and reason", refusals),
        "rule_charts": rules,
    }


def _refusal_rows(report: AuditReport) -> list[tuple[str, str, list[int]]]:
    return [
        (user, reason, seqs)
        for user, reasons in sorted(report.refusals.items())
        for reason, seqs in sorted(reasons.items())
    ]


@router.get("/audit")
def dashboard(
    request: Request, actor: ActorDep, start: str = "", end: str = "", tz: str = "UTC"
) -> Response:
    report = _report(request, actor, start, end, tz)
    first, last = _period(start, end)
    return page(
        request,
        "audit.html",
        report=report,
        start=first.isoformat(),
        end=last.isoformat(),
        tz=tz if tz in ZONES else "UTC",
        zones=ZONES,
        findings=sum(len(r.findings) for r in report.results),
        tampered=report.integrity.startswith("TAMPERED"),
        refusal_rows=_refusal_rows(report),
        formats=REPORT_FORMATS,
        **_charts(report),
    )


@router.get("/audit/report.{fmt}")
def download(
    request: Request, fmt: str, actor: ActorDep, start: str = "", end: str = "", tz: str = "UTC"
) -> Response:
    """The same report as a self-contained file to archive (HTML), or for a SIEM (CSV, JSON)."""
    if fmt not in MEDIA:
        raise InputError(f"report format must be one of {', '.join(MEDIA)}", code="format")
    report = _report(request, actor, start, end, tz)
    first, last = _period(start, end)
    response = Response(render_report(report, fmt), media_type=MEDIA[fmt])
    name = f"facelead-audit-{first.isoformat()}-{last.isoformat()}.{fmt}"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return secure(response)
