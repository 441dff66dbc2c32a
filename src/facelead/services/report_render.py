"""Lead report rendering: one self-contained HTML page and one PDF with the same content.

Both carry the fixed disclaimer at the top and the bottom. The PDF embeds
DejaVu Sans (shipped with matplotlib) because the PDF core fonts cannot
print the disclaimer's dashes or "≈".
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from PIL import Image

from facelead.services.reports import LeadReport, ReportLead

_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
_CSS = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#111}"
    ".disclaimer{border:3px solid #b00;padding:.8em;font-weight:bold;color:#b00}"
    "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.3em .6em;"
    "text-align:left;vertical-align:top}img{max-width:18em;max-height:18em}"
    ".stale{color:#b00;font-weight:bold}"
)


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _img(data: bytes, alt: str) -> str:
    mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    if not data.startswith((b"\x89PNG", b"\xff\xd8")):
        data, mime = _as_png(data), "image/png"
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:{mime};base64,{encoded}">'


def _as_png(data: bytes) -> bytes:
    out = io.BytesIO()
    with Image.open(io.BytesIO(data)) as image:
        image.convert("RGB").save(out, "PNG")
    return out.getvalue()


def booking_line(lead: ReportLead, stale_years: int) -> str:
    if lead.booking_date is None:
        return "booking date not recorded: the age of this photo is unknown"
    line = f"{lead.booking_date.isoformat()} ({lead.age_years or 0:.1f} years ago)"
    if lead.stale:
        line += f" - POSSIBLY STALE: older than {stale_years} years"
    return line


def facts(report: LeadReport) -> list[tuple[str, str]]:
    """The header rows both formats print, in order."""
    prov = report.provenance
    return [
        ("Result", "POSSIBLE LEAD (peer verified)" if report.kind == "lead" else "NO LEAD"),
        ("Case", f"{report.case_number} ({report.offence_category}, agency {report.agency})"),
        ("Search", f"{report.search_id}, requested by {report.requester} on "
                   f"{report.requested_at:%Y-%m-%d %H:%M} UTC for {report.purpose}"),
        ("Issued", f"to {report.requester} by {report.issued_by} on "
                   f"{report.issued_at:%Y-%m-%d %H:%M} UTC"),
        ("Model", f"{report.model_id}; gallery of {report.gallery_size} subjects"),
        ("Probe", f"sha256 {report.probe_sha256}"),
        ("Provenance", f"{prov.source_type}; obtained: {prov.how_obtained}; "
                       f"captured by: {prov.captured_by}"),
        ("Edits", ", ".join(prov.edits) or "none"),
    ]  # fmt: skip


def reviewer_rows(report: LeadReport) -> list[tuple[str, str, str, str]]:
    return [
        (
            r.role,
            r.username,
            f"{r.conclusion}" + (f" on {r.at:%Y-%m-%d %H:%M} UTC" if r.at else ""),
            ", ".join(r.features_compared) or "-",
        )
        for r in report.reviewers
    ]


def render_html(report: LeadReport) -> str:
    title = f"Lead report: case {report.case_number}, search {report.search_id}"
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>",
        f"<p class='disclaimer'>{_e(report.disclaimer)}</p><table>",
        *(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts(report)),
        "</table><h2>Probe</h2>",
        _img(report.probe, "probe"),
        "<h2>Reviews</h2><table><tr><th>role</th><th>examiner</th><th>conclusion</th>"
        "<th>features compared</th></tr>",
        *(
            "<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>"
            for row in reviewer_rows(report)
        ),
        "</table>",
    ]
    if report.kind == "lead":
        parts.append("<h2>Possible lead</h2>")
        parts.extend(_lead_html(lead, report.stale_after_years) for lead in report.leads)
    else:
        parts.append(
            "<h2>No lead</h2><p>The examiners found no candidate worth investigating. "
            "No candidate is disclosed.</p>"
        )
    parts.append(f"<p class='disclaimer'>{_e(report.disclaimer)}</p></body></html>")
    return "\n".join(parts)


def _lead_html(lead: ReportLead, stale_years: int) -> str:
    booking = booking_line(lead, stale_years)
    rows = [
        ("Subject", lead.subject_id),
        ("Booking", f"{lead.booking_number or '-'} ({lead.agency or 'agency not recorded'})"),
        ("Booking date", booking),
        ("Score", f"{lead.score:.4f} (rank {lead.rank})"),
        ("Estimated FMR", lead.estimated_fmr),
        ("Photo", f"sha256 {lead.photo_sha256}"),
        ("Examiners' notes", " | ".join(lead.notes) or "-"),
    ]
    cells = "".join(
        f"<tr><th>{_e(k)}</th><td{' class=stale' if k == 'Booking date' and lead.stale else ''}>"
        f"{_e(v)}</td></tr>"
        for k, v in rows
    )
    return f"<div>{_img(lead.photo, lead.subject_id)}<table>{cells}</table></div>"


class _Pdf(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.add_font("DejaVu", "", str(_FONT_DIR / "DejaVuSans.ttf"))
        self.add_font("DejaVu", "B", str(_FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_auto_page_break(True, margin=15)

    def line_of(self, text: str, bold: bool = False, size: int = 10) -> None:
        self.set_font("DejaVu", "B" if bold else "", size)
        self.multi_cell(0, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def picture(self, data: bytes, width: float = 60) -> None:
        if not data.startswith((b"\x89PNG", b"\xff\xd8")):
            data = _as_png(data)
        self.image(io.BytesIO(data), w=width)
        self.ln(2)


def render_pdf(report: LeadReport) -> bytes:
    pdf = _Pdf()
    pdf.set_title(f"Lead report {report.case_number} / {report.search_id}")
    pdf.set_creation_date(report.issued_at)
    pdf.add_page()
    pdf.line_of(f"Lead report: case {report.case_number}, search {report.search_id}", True, 14)
    pdf.set_text_color(176, 0, 0)
    pdf.line_of(report.disclaimer, True, 10)
    pdf.set_text_color(0, 0, 0)
    pdf.ln(2)
    for key, value in facts(report):
        pdf.line_of(f"{key}: {value}")
    pdf.line_of("Probe", True, 12)
    pdf.picture(report.probe)
    pdf.line_of("Reviews", True, 12)
    for role, who, conclusion, features in reviewer_rows(report):
        pdf.line_of(f"{role}: {who}, {conclusion}; features compared: {features}")
    if report.kind == "lead":
        for lead in report.leads:
            pdf.line_of(f"Possible lead: {lead.subject_id}", True, 12)
            pdf.picture(lead.photo)
            pdf.line_of(f"Booking {lead.booking_number or '-'} ({lead.agency or '-'})")
            pdf.line_of(f"Booking date: {booking_line(lead, report.stale_after_years)}", lead.stale)
            pdf.line_of(f"Score {lead.score:.4f} (rank {lead.rank}); estimated FMR "
                        f"{lead.estimated_fmr}; photo sha256 {lead.photo_sha256}")  # fmt: skip
            pdf.line_of("Examiners' notes: " + (" | ".join(lead.notes) or "-"))
    else:
        pdf.line_of("No lead", True, 12)
        pdf.line_of("The examiners found no candidate worth investigating. No candidate is "
                    "disclosed.")  # fmt: skip
    pdf.ln(2)
    pdf.set_text_color(176, 0, 0)
    pdf.line_of(report.disclaimer, True, 10)
    return bytes(pdf.output())
