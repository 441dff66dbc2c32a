"""The stable export schema for SIEM tools: CSV or JSON Lines, one event per row.

Columns, in order, are :data:`EXPORT_FIELDS` (documented in docs/audit.md).
A JSON line is the canonical encoding of the event including ``prev_hash``
and ``hash``: drop ``hash``, re-encode canonically, SHA-256, and you have
``hash`` again, so an exported log can be verified without FaceLead.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from facelead.audit.chain import CONTENT_FIELDS, AuditRecord, canonical_json

EXPORT_FIELDS = (*CONTENT_FIELDS, "prev_hash", "hash")
FORMATS = ("csv", "jsonl")


def jsonl_line(record: AuditRecord) -> str:
    return canonical_json(record.as_dict()).decode("utf-8") + "\n"


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet runs a cell starting with one of these as a formula (OWASP: CSV injection)."""


def neutralise_formula(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet would evaluate: a username typed at a login prompt
    or a file name reaches the export, and an auditor opens exports in a spreadsheet."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_cell(value: object) -> str:
    """Null is an empty cell; details are their canonical JSON text; formulas are defused.

    A bare carriage return is written as ``\\r``: Python 3.11's writer does not quote it
    (the line terminator is ``\\n``), so it would split the row in a reader. The CSV is
    for reading; verification uses the JSON Lines export, which is unaltered.
    """
    if value is None:
        return ""
    if isinstance(value, dict):
        return canonical_json(value).decode("utf-8")
    return neutralise_formula(str(value).replace("\r", "\\r"))


def export_lines(records: Iterable[AuditRecord], fmt: str) -> Iterator[str]:
    """Text chunks of the export, header first for CSV; streamed, never held in memory."""
    if fmt == "jsonl":
        for record in records:
            yield jsonl_line(record)
        return
    if fmt != "csv":
        raise ValueError(f"export format must be one of {FORMATS}, not {fmt!r}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    for record in records:
        row = record.as_dict()
        writer.writerow([csv_cell(row[name]) for name in EXPORT_FIELDS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def record_from_json(line: str) -> AuditRecord:
    """Inverse of :func:`jsonl_line` (used to verify an exported file)."""
    row = json.loads(line)
    return AuditRecord(**{name: row[name] for name in EXPORT_FIELDS})
