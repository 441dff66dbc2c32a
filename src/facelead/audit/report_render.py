"""The misuse report as HTML (inline SVG charts), CSV or JSON.

Every figure links back to the events behind it: each bar links to a
finding row, each finding row links to ``#event-<seq>`` anchors in the event
table appended to the page. The HTML is one self-contained file (no scripts,
no external assets) so it can be archived with the case file.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import UTC, datetime
from html import escape
from typing import Any

from facelead.audit.chain import canonical_json
from facelead.audit.export import neutralise_formula
from facelead.audit.report import AuditReport, Finding

FORMATS = ("html", "csv", "json")
CSV_FIELDS = ("rule_id", "rule_title", "subject", "users", "value", "summary", "seqs", "rule_text")
BAR_HEIGHT = 20
LABEL_WIDTH = 330
LABEL_CHARS = 50
BAR_WIDTH = 420


def render(report: AuditReport, fmt: str) -> str:
    if fmt == "html":
        return to_html(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "json":
        return to_json(report)
    raise ValueError(f"report format must be one of {FORMATS}, not {fmt!r}")


def to_json(report: AuditReport) -> str:
    body: dict[str, Any] = {
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "config": asdict(report.config),
        "integrity": report.integrity,
        "events_examined": report.events_examined,
        "rules": [
            {
                **asdict(result.rule),
                "checked": result.checked,
                "note": result.note,
                "findings": [asdict(f) for f in result.findings],
            }
            for result in report.results
        ],
        "refusals": report.refusals,
        "events": [record.as_dict() for record in report.events.values()],
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def to_csv(report: AuditReport) -> str:
    """One row per finding, each carrying its rule's text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for result in report.results:
        for f in result.findings:
            writer.writerow(
                [
                    result.rule.id,
                    result.rule.title,
                    neutralise_formula(f.subject),  # names typed by users: defuse formulas
                    neutralise_formula(" ".join(f.users)),
                    f.value,
                    neutralise_formula(f.summary),
                    " ".join(map(str, f.seqs)),
                    result.rule.text,
                ]
            )
    return buffer.getvalue()


def bar_chart(title: str, bars: list[tuple[str, int, str]]) -> str:
    """A horizontal bar chart; each bar (label, value, href) is a link."""
    top = max((value for _, value, _ in bars), default=0) or 1
    height = BAR_HEIGHT * len(bars) + 30
    rows = [
        f'<svg class="chart" role="img" width="{LABEL_WIDTH + BAR_WIDTH + 60}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i, (label, value, href) in enumerate(bars):
        y = 20 + i * BAR_HEIGHT
        width = max(2, round(BAR_WIDTH * value / top))
        rows.append(
            f'<a href="{escape(href)}"><text x="{LABEL_WIDTH - 6}" y="{y + 14}" '
            f'text-anchor="end">{escape(_short(label))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 2}" width="{width}" height="{BAR_HEIGHT - 5}">'
            f"<title>{escape(label)}: {value}</title></rect>"
            f'<text x="{LABEL_WIDTH + width + 4}" y="{y + 14}">{value}</text></a>'
        )
    rows.append(f'<text x="0" y="13" class="caption">{escape(title)}</text></svg>')
    return "".join(rows)


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _event_links(seqs: tuple[int, ...] | list[int]) -> str:
    return " ".join(f'<a href="#event-{s}">{s}</a>' for s in seqs)


def _finding_rows(index: int, findings: tuple[Finding, ...]) -> str:
    rows = [
        f'<tr id="finding-{index}-{n}"><td>{escape(f.subject)}</td>'
        f"<td>{escape(', '.join(f.users))}</td><td>{f.value}</td><td>{escape(f.summary)}</td>"
        f'<td class="seqs">{_event_links(f.seqs)}</td></tr>'
        for n, f in enumerate(findings)
    ]
    head = "<tr><th>flagged</th><th>users</th><th>value</th><th>why</th><th>events</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _rule_sections(report: AuditReport) -> str:
    parts = []
    for index, result in enumerate(report.results):
        rule, findings = result.rule, result.findings
        parts.append(f'<section id="rule-{index}"><h2>{escape(rule.title)}</h2>')
        parts.append(f'<p class="rule"><b>Rule {escape(rule.id)}.</b> {escape(rule.text)}</p>')
        parts.append(f"<p>Examined {result.checked}; flagged {len(findings)}.</p>")
        if result.note:
            parts.append(f'<p class="note">{escape(result.note)}</p>')
        if findings:
            bars = [(f.subject, f.value, f"#finding-{index}-{n}") for n, f in enumerate(findings)]
            parts.append(bar_chart(rule.title, bars))
            parts.append(_finding_rows(index, findings))
        parts.append("</section>")
    return "".join(parts)


def _refusal_section(report: AuditReport) -> str:
    items = [
        (user, reason, seqs)
        for user, reasons in sorted(report.refusals.items())
        for reason, seqs in sorted(reasons.items())
    ]
    if not items:
        return "<section><h2>Probe refusals (training topics)</h2><p>None.</p></section>"
    bars = [(f"{u}: {r}", len(s), f"#refusal-{n}") for n, (u, r, s) in enumerate(items)]
    rows = "".join(
        f'<tr id="refusal-{n}"><td>{escape(u)}</td><td>{escape(r)}</td><td>{len(s)}</td>'
        f'<td class="seqs">{_event_links(s)}</td></tr>'
        for n, (u, r, s) in enumerate(items)
    )
    return (
        "<section><h2>Probe refusals per user and reason (training topics)</h2>"
        + bar_chart("Refused searches by user and reason", bars)
        + "<table><tr><th>user</th><th>reason</th><th>count</th><th>events</th></tr>"
        + rows
        + "</table></section>"
    )


def _event_table(report: AuditReport) -> str:
    cols = ("seq", "ts", "actor", "role", "agency", "action", "outcome", "object_type",
            "object_id", "case_number", "purpose", "details")  # fmt: skip
    head = "".join(f"<th>{c}</th>" for c in cols)
    rows = []
    for seq, record in report.events.items():
        row = record.as_dict()
        row["details"] = canonical_json(record.details).decode("utf-8")
        cells = "".join(f"<td>{escape('' if row[c] is None else str(row[c]))}</td>" for c in cols)
        rows.append(f'<tr id="event-{seq}">{cells}</tr>')
    return (
        '<section id="events"><h2>Events cited</h2>'
        f"<table class=events><tr>{head}</tr>{''.join(rows)}</table></section>"
    )


STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;"
    "margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%;vertical-align:top}"
    ".seqs{max-width:30em}.rule{background:#f4f4f4;padding:.5em}.note{color:#064}"
    "svg.chart rect{fill:#4a78b0}svg.chart text{font-size:12px}.caption{font-weight:bold}"
    "table.events td{font-family:monospace;font-size:80%}"
)


def to_html(report: AuditReport) -> str:
    summary = [
        (result.rule.title, len(result.findings), f"#rule-{index}")
        for index, result in enumerate(report.results)
    ]
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>FaceLead audit report</title><style>{STYLE}</style></head><body>"
        "<h1>FaceLead audit report: misuse and training signals</h1>"
        f"<p>Period {escape(report.start.isoformat())} to {escape(report.end.isoformat())} "
        f"(end exclusive); local time zone {escape(report.config.timezone)}; "
        f"{report.events_examined} events examined; generated {generated}.</p>"
        f"<p><b>Log integrity:</b> {escape(report.integrity or 'not checked')}</p>"
        "<p>A finding is a signal for an auditor to review, not a conclusion of misuse.</p>"
        + bar_chart("Findings per rule", summary)
        + _rule_sections(report)
        + _refusal_section(report)
        + _event_table(report)
        + "</body></html>\n"
    )
