"""The transparency report as one self-contained HTML page, a PDF, or one tidy CSV table.

The same content model as the lead reports (``services.report_render``):
HTML with its charts embedded as PNG data URIs, and a PDF with the same
sections. Unlike the lead report, the PDF uses the built-in Helvetica font:
the report is plain ASCII, and text written with a core font stays readable
in the file, so archives can be searched (and tests can check what it says).
Charts are matplotlib (Agg): a hidden count gets no bar, only its "<5"/"x"
label, so a bar's height never gives it away. The CSV is one table
(section, label, month, value) with the same suppression.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Iterator, Sequence
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from matplotlib.ticker import MaxNLocator

from facelead.audit.export import neutralise_formula
from facelead.domain.transparency import (
    OUTCOMES,
    Cell,
    CountTable,
    ReviewRow,
    TransparencyReport,
)

TITLE = "FaceLead transparency report"
CSV_FIELDS = ("section", "label", "month", "value")
OUTCOME_LABELS = {
    "no_lead": "No lead", "lead": "Lead", "corroborated": "Corroborated",
    "excluded": "Excluded", "in_review": "In review", "ended": "Ended, no conclusion",
}  # fmt: skip
DROPPED = "Withheld: this breakdown would let a count under 5 be worked out."
REVIEW_NOTE = (
    "Hours from the search to the first examiner's conclusion, by the month of the search. "
    "The median and the 90th percentile (nearest rank) are printed only where at least 5 "
    "searches were reviewed."
)
SCOPE = (
    "Aggregate figures only: this report contains no names, user ids, case numbers or "
    "subject ids. Times are UTC; searches are counted in the month they were made, and "
    "their outcome is as of the date of the report."
)
_CSS = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#111}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #999;"
    "padding:.3em .6em;text-align:left}td.n{text-align:right}.note{color:#444}"
    ".legend{border:2px solid #456;padding:.6em}img{max-width:100%}"
)


def render(report: TransparencyReport, fmt: str) -> bytes:
    if fmt == "csv":
        return to_csv(report).encode("utf-8")
    if fmt == "html":
        return to_html(report).encode("utf-8")
    if fmt == "pdf":
        return to_pdf(report)
    raise ValueError(f"unknown format {fmt!r}")


# --- charts ---


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bar_chart(title: str, labels: Sequence[str], cells: Sequence[Cell], vertical: bool) -> bytes:
    """PNG bars of the printed counts; a hidden count is a label at zero, never a bar."""
    plt = _pyplot()
    heights = [c.value or 0 for c in cells]
    fig, ax = plt.subplots(figsize=(7.5, 3.4) if vertical else (7.5, 0.45 * len(cells) + 1))
    positions = list(range(len(cells)))
    if vertical:
        ax.bar(positions, heights, color="#35608c")
        ax.set_xticks(positions, labels, rotation=45 if len(cells) > 6 else 0, ha="right")
    else:
        ax.barh(positions, heights, color="#35608c")
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()
    for pos, cell, height in zip(positions, cells, heights, strict=True):
        xy = (pos, height) if vertical else (height, pos)
        offset = (0, 3) if vertical else (4, 0)
        ax.annotate(cell.text, xy, xytext=offset, textcoords="offset points",
                    ha="center" if vertical else "left", va="bottom" if vertical else "center",
                    fontsize=9)  # fmt: skip
    ax.set_title(title)
    (ax.yaxis if vertical else ax.xaxis).set_major_locator(MaxNLocator(integer=True))
    ax.margins(x=0.1, y=0.15)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return out.getvalue()


def charts(report: TransparencyReport) -> dict[str, bytes]:
    """The two charts: searches per month and outcomes (withheld tables get none)."""
    found: dict[str, bytes] = {}
    if not report.searches.dropped:
        cells = report.searches.cells
        found["searches"] = bar_chart("Searches per month", [c.key for c in cells], cells, True)
    if not report.outcomes.dropped:
        cells = report.outcomes.cells
        labels = [OUTCOME_LABELS.get(c.key, c.key) for c in cells]
        found["outcomes"] = bar_chart("Outcomes of the searches", labels, cells, False)
    return found


# --- shared text ---


def period(report: TransparencyReport) -> str:
    return (
        f"Period {report.start.isoformat()} to {report.end.isoformat()} (UTC), "
        f"generated {report.generated_at:%Y-%m-%d %H:%M} UTC."
    )


def review_rows(report: TransparencyReport) -> list[tuple[str, str, str, str]]:
    def stat(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    rows: list[ReviewRow] = [*report.review_times, report.review_overall]
    return [
        ("All months" if r.month == "all" else r.month, r.reviewed.text, stat(r.median_hours),
         stat(r.p90_hours))
        for r in rows
    ]  # fmt: skip


def model_lines(report: TransparencyReport) -> list[tuple[str, str]]:
    m = report.model
    lines = [("Model id", m.model_id)]
    for name, figures, source in (
        ("Accuracy", m.accuracy, m.accuracy_source),
        ("Fairness (demographic differentials)", m.fairness, m.fairness_source),
    ):
        if figures:
            lines.extend((f"{name}: {label}", value) for label, value in figures)
            lines.append((f"{name}: source", source))
        else:
            lines.append((name, source))
    return lines


def outcome_notes() -> str:
    return " ".join(f"{title}." for _, title in OUTCOMES)


def table_rows(table: CountTable) -> list[tuple[str, str]]:
    return [(c.title, c.text) for c in table.cells] + [("Total", table.total.text)]


# --- HTML ---


def _e(value: object) -> str:
    return html.escape(str(value))


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _html_table(headings: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headings)
    body = "".join(
        "<tr>" + "".join(
            f"<td{' class=n' if i else ''}>{_e(v)}</td>" for i, v in enumerate(row)
        ) + "</tr>"
        for row in rows
    )  # fmt: skip
    return f"<table><tr>{head}</tr>{body}</table>"


def _html_count(table: CountTable, extra: str = "") -> str:
    parts = [f"<h2>{_e(table.title)}</h2>", extra]
    if table.dropped:
        parts.append(f"<p>{_e(DROPPED)}</p>")
    else:
        parts.append(_html_table((table.heading, "Count"), table_rows(table)))
    if table.note:
        parts.append(f"<p class='note'>{_e(table.note)}</p>")
    return "\n".join(parts)


def to_html(report: TransparencyReport) -> str:
    images = charts(report)
    chart = {k: _img(v, k) for k, v in images.items()}
    refusal_note = "Codes counted under each reason: " + "; ".join(
        f"{title}: {codes}" for title, codes in report.refusal_codes
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(TITLE)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(TITLE)}</h1><p>{_e(period(report))}</p><p>{_e(SCOPE)}</p>",
        f"<p class='legend'>{_e(report.legend)}</p>",
        _html_count(report.searches, chart.get("searches", "")),
        _html_count(report.purposes),
        _html_count(report.offences),
        _html_count(report.refusals) + f"<p class='note'>{_e(refusal_note)}</p>",
        _html_count(report.outcomes, chart.get("outcomes", ""))
        + f"<p class='note'>{_e(outcome_notes())}</p>",
        "<h2>Time from search to review</h2>",
        _html_table(("Month", "Searches reviewed", "Median hours", "90th percentile hours"),
                    review_rows(report)),
        f"<p class='note'>{_e(REVIEW_NOTE)}</p>",
        _html_count(report.findings),
        f"<p class='note'>Resolution: {_e(report.findings_resolution)}</p>",
        f"<p class='note'>Audit log: {_e(report.integrity)}</p>",
        _html_count(report.removals),
        _html_count(report.retention),
        "<h2>Face model</h2>",
        _html_table(("Figure", "Value"), model_lines(report)),
        "</body></html>",
    ]  # fmt: skip
    return "\n".join(parts)


# --- CSV ---


def csv_rows(report: TransparencyReport) -> Iterator[tuple[str, str, str, str]]:
    yield "report", "from", "all", report.start.isoformat()
    yield "report", "to", "all", report.end.isoformat()
    yield "report", "generated_at", "all", report.generated_at.isoformat()
    for table in report.tables():
        for cell in table.cells:
            if table.by_month:
                yield table.key, "searches", cell.key, cell.text
            else:
                yield table.key, cell.key, "all", cell.text
        yield table.key, "searches" if table.by_month else "total", "all", table.total.text
    for row in (*report.review_times, report.review_overall):
        yield "time_to_review", "searches_reviewed", row.month, row.reviewed.text
        for label, hours in (("median_hours", row.median_hours), ("p90_hours", row.p90_hours)):
            yield "time_to_review", label, row.month, "" if hours is None else f"{hours:.1f}"
    yield "audit_findings", "resolution", "all", "not recorded"
    yield "audit_log", "integrity", "all", report.integrity
    for figure, text in model_lines(report):
        yield "model", figure, "all", text


def to_csv(report: TransparencyReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for row in csv_rows(report):
        writer.writerow([neutralise_formula(value) for value in row])
    return buffer.getvalue()


# --- PDF ---


def _latin(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


class _Pdf(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.set_auto_page_break(True, margin=15)

    def line_of(self, text: str, bold: bool = False, size: int = 10) -> None:
        self.set_font("Helvetica", "B" if bold else "", size)
        self.multi_cell(0, size * 0.5, _latin(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def grid(self, headings: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        self.set_font("Helvetica", "", 9)
        widths = (110, *([70 / (len(headings) - 1)] * (len(headings) - 1)))
        with self.table(col_widths=widths, text_align="LEFT", line_height=5) as table:
            for row in (headings, *rows):
                cells = table.row()
                for value in row:
                    cells.cell(_latin(value))
        self.ln(2)

    def counts(self, table: CountTable) -> None:
        self.line_of(table.title, True, 12)
        if table.dropped:
            self.line_of(DROPPED)
        else:
            self.grid((table.heading, "Count"), table_rows(table))


def to_pdf(report: TransparencyReport) -> bytes:
    pdf = _Pdf()
    pdf.set_title(TITLE)
    pdf.set_creation_date(report.generated_at)
    pdf.add_page()
    pdf.line_of(TITLE, True, 16)
    for text in (period(report), SCOPE, report.legend):
        pdf.line_of(text)
    pdf.ln(2)
    images = charts(report)
    for table in report.tables()[:5]:
        pdf.counts(table)
        chart = {"searches_per_month": "searches", "outcomes": "outcomes"}.get(table.key)
        if chart in images:
            pdf.image(io.BytesIO(images[chart]), w=170)
    pdf.line_of("Codes counted under each reason: " + "; ".join(
        f"{title}: {codes}" for title, codes in report.refusal_codes), size=8)  # fmt: skip
    pdf.line_of(outcome_notes(), size=8)
    pdf.line_of("Time from search to review", True, 12)
    pdf.grid(("Month", "Reviewed", "Median h", "P90 h"), review_rows(report))
    pdf.line_of(REVIEW_NOTE, size=8)
    pdf.counts(report.findings)
    pdf.line_of(f"Resolution: {report.findings_resolution}", size=8)
    pdf.line_of(f"Audit log: {report.integrity}", size=8)
    pdf.counts(report.removals)
    pdf.counts(report.retention)
    pdf.line_of("Face model", True, 12)
    pdf.grid(("Figure", "Value"), model_lines(report))
    return bytes(pdf.output())
