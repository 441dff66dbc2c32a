"""The public transparency report: what is counted, how, and what may be printed.

Pure: plain facts in (``Activity``, never a name, user id, case number or
subject id), a ``TransparencyReport`` out in which every count has already
been through small-count suppression (``domain.suppression``). A hidden
count is not even carried in the report (``Cell.value`` is None), so no
renderer can print it by mistake. Searches are counted by the UTC month they
were made in; their outcome is the state they are in when the report is
generated.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from facelead.domain.cases import AWAITING_REVIEW, SearchStatus
from facelead.domain.gallery import RemovalKind
from facelead.domain.retention import RetentionRule
from facelead.domain.suppression import (
    LEGEND,
    MIN_SHOWN,
    SYMBOLS,
    Mark,
    Suppression,
    suppress,
    suppress_group,
)
from facelead.errors import InputError

MAX_MONTHS = 120
NOT_MEASURED = "not measured yet"
FINDINGS_RESOLUTION = (
    "FaceLead records each finding of the misuse report, but not yet how it was resolved: "
    "follow-up by the audit unit happens outside the system, so this report states no "
    "resolutions (not recorded)."
)

REFUSAL_REASONS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("probe_quality", "Probe quality (no usable face, or below the quality floor)",
     frozenset({"low_quality_probe", "no_face", "face_choice_required",
                "face_index_out_of_range"})),
    ("prohibited_source", "Prohibited source or edit (body-worn or in-car camera, video, "
     "sketch, morph...)",
     frozenset({"probe_source_refused", "unknown_probe_source", "probe_edit_refused",
                "unknown_probe_edit", "video_not_allowed", "animated_not_allowed",
                "multi_frame_not_allowed", "url_not_allowed"})),
    ("prohibited_purpose", "Prohibited or missing purpose (First Amendment activity, "
     "protected class, immigration status...)",
     frozenset({"prohibited_purpose", "purpose_not_permitted", "purpose_required"})),
    ("rate_limit", "Daily search limit reached", frozenset({"rate_limited"})),
    ("expired_training", "Training certification lapsed or missing",
     frozenset({"training_expired"})),
)  # fmt: skip
OTHER_REFUSAL = (
    "other",
    "Other (incomplete request, closed case, no permission, unreadable image...)",
)
"""Every refused search request has one reason; the codes are those of docs/errors.md."""

OUTCOMES: tuple[tuple[str, str], ...] = (
    ("no_lead", "No lead: the examiners found no candidate worth investigating"),
    ("lead", "Lead: verified by a second examiner, not (yet) corroborated"),
    ("corroborated", "Corroborated: independent evidence supports the lead"),
    ("excluded", "Excluded: the investigation ruled the lead out"),
    ("in_review", "Still in review"),
    ("ended", "Ended without a conclusion (closed before review)"),
)

_LEADS = frozenset({SearchStatus.VERIFIED, SearchStatus.LEAD_RELEASED})
_MONTH = re.compile(r"\d{4}-\d{2}")


@dataclass(frozen=True)
class SearchFact:
    """One search, reduced to what the report counts."""

    created_at: dt.datetime
    purpose: str
    offence: str
    outcome: str  # a key of OUTCOMES (``classify_outcome``)
    review_hours: float | None  # search to the first examiner's conclusion


@dataclass(frozen=True)
class Activity:
    """Everything counted in one period."""

    searches: Sequence[SearchFact] = ()
    refusal_codes: Sequence[str] = ()  # one per refused search request
    findings: Sequence[tuple[str, str, int]] = ()  # misuse rule id, its title, findings
    removals: Sequence[str] = ()  # RemovalKind of each sealing, expungement, purge
    retention: Sequence[str] = ()  # RetentionRule of each search purged by retention


@dataclass(frozen=True)
class ModelFigures:
    """The current model and its measured figures, copied from the evaluation results."""

    model_id: str
    accuracy: tuple[tuple[str, str], ...] = ()
    accuracy_source: str = NOT_MEASURED
    fairness: tuple[tuple[str, str], ...] = ()
    fairness_source: str = NOT_MEASURED


@dataclass(frozen=True)
class Cell:
    key: str
    title: str
    value: int | None  # None unless printed
    mark: Mark

    @property
    def text(self) -> str:
        return str(self.value) if self.mark is Mark.SHOWN else SYMBOLS[self.mark]


@dataclass(frozen=True)
class CountTable:
    key: str  # the CSV section
    title: str
    heading: str  # what the rows are
    cells: tuple[Cell, ...]
    total: Cell
    note: str = ""
    dropped: bool = False
    by_month: bool = False


@dataclass(frozen=True)
class ReviewRow:
    month: str  # YYYY-MM, or "all"
    reviewed: Cell
    median_hours: float | None  # printed only when at least 5 searches were reviewed
    p90_hours: float | None


@dataclass(frozen=True)
class TransparencyReport:
    start: dt.date
    end: dt.date  # inclusive
    generated_at: dt.datetime
    searches: CountTable
    purposes: CountTable
    offences: CountTable
    refusals: CountTable
    outcomes: CountTable
    review_times: tuple[ReviewRow, ...]
    review_overall: ReviewRow
    findings: CountTable
    removals: CountTable
    retention: CountTable
    model: ModelFigures
    integrity: str
    findings_resolution: str = FINDINGS_RESOLUTION
    legend: str = LEGEND
    refusal_codes: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def tables(self) -> tuple[CountTable, ...]:
        return (self.searches, self.purposes, self.offences, self.refusals, self.outcomes,
                self.findings, self.removals, self.retention)  # fmt: skip


def parse_day(text: str, *, end: bool = False) -> dt.date:
    """YYYY-MM-DD, or YYYY-MM: its first day, or with ``end`` its last."""
    value = (text or "").strip()
    try:
        if _MONTH.fullmatch(value):
            first = dt.date.fromisoformat(value + "-01")
            return month_end(first) if end else first
        if len(value) == 10:
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise InputError(f"not a date (YYYY-MM-DD or YYYY-MM): {text!r}", code="bad_period")


def month_end(day: dt.date) -> dt.date:
    following = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


def parse_period(start: str, end: str) -> tuple[dt.date, dt.date]:
    """The inclusive period of ``--from`` and ``--to``; refused when empty or over 10 years."""
    first, last = parse_day(start), parse_day(end, end=True)
    check_period(first, last)
    return first, last


def check_period(first: dt.date, last: dt.date) -> None:
    if first > last:
        raise InputError(f"the period ends ({last}) before it starts ({first})", code="bad_period")
    if len(months(first, last)) > MAX_MONTHS:
        raise InputError(f"the period is longer than {MAX_MONTHS} months", code="bad_period")


def months(first: dt.date, last: dt.date) -> list[str]:
    """Every calendar month the period touches, as YYYY-MM."""
    out, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def refusal_reason(code: str) -> str:
    for key, _, codes in REFUSAL_REASONS:
        if code in codes:
            return key
    return OTHER_REFUSAL[0]


def classify_outcome(status: str, outcome: str | None, status_before: str | None) -> str:
    """Where a search stands: the outcome recorded when it closed, else its status."""
    current = SearchStatus(status)
    state = (
        SearchStatus(status_before) if current is SearchStatus.CLOSED and status_before else current
    )
    if outcome == "excluded" and (state in _LEADS or state is SearchStatus.CORROBORATED):
        return "excluded"
    if state is SearchStatus.CORROBORATED or outcome == "confirmed":
        return "corroborated"
    if state in _LEADS:
        return "lead"
    if state is SearchStatus.NO_LEAD:
        return "no_lead"
    if current is not SearchStatus.CLOSED and (
        state in AWAITING_REVIEW or state is SearchStatus.SUBMITTED
    ):
        return "in_review"
    return "ended"


def nearest_rank(values: Sequence[float], fraction: float) -> float:
    """The smallest value with at least ``fraction`` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _rows(
    labels: Sequence[tuple[str, str]], counts: Counter[str], other: tuple[str, str]
) -> list[tuple[str, str, int]]:
    """One row per known label (zeros included), then anything else as one "other" row."""
    rows = [(key, title, counts.get(key, 0)) for key, title in labels]
    known = {key for key, _ in labels}
    rest = sum(n for key, n in counts.items() if key not in known)
    return [*rows, (other[0], other[1], rest)] if rest else rows


def _table(
    key: str,
    title: str,
    heading: str,
    rows: Sequence[tuple[str, str, int]],
    sup: Suppression,
    *,
    by_month: bool = False,
) -> CountTable:
    cells = tuple(
        Cell(k, t, n if mark is Mark.SHOWN else None, mark)
        for (k, t, n), mark in zip(rows, sup.cells, strict=True)
    )
    total = sum(n for _, _, n in rows)
    return CountTable(
        key,
        title,
        heading,
        cells,
        Cell("total", "Total", total if sup.total is Mark.SHOWN else None, sup.total),
        dropped=sup.dropped,
        by_month=by_month,
    )


def _counted(key: str, title: str, heading: str, rows: list[tuple[str, str, int]]) -> CountTable:
    return _table(key, title, heading, rows, suppress([n for *_, n in rows]))


def _month(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m")


def _search_tables(
    facts: Sequence[SearchFact], month_list: Sequence[str], purposes: Sequence[str],
    offences: Sequence[str],
) -> list[CountTable]:  # fmt: skip
    """Searches by month, purpose, offence and outcome: one total, suppressed together."""
    other = ("other", "Other (not on the configured list)")
    by_month = Counter(_month(f.created_at) for f in facts)
    outcomes = Counter(f.outcome for f in facts)
    rows = [
        [(m, m, by_month.get(m, 0)) for m in month_list],
        _rows([(p, p) for p in purposes], Counter(f.purpose for f in facts), other),
        _rows([(o, o) for o in offences], Counter(f.offence for f in facts), other),
        [(key, title, outcomes.get(key, 0)) for key, title in OUTCOMES],
    ]
    sups = suppress_group([[n for *_, n in table] for table in rows])
    meta = [
        ("searches_per_month", "Searches per month", "Month", True),
        ("purposes", "Searches by purpose", "Purpose", False),
        ("offence_categories", "Searches by offence category", "Offence category", False),
        ("outcomes", "Outcomes of these searches (as of the report date)", "Outcome", False),
    ]
    return [
        _table(key, title, heading, table, sup, by_month=monthly)
        for (key, title, heading, monthly), table, sup in zip(meta, rows, sups, strict=True)
    ]


def _review_row(month: str, hours: Sequence[float], mark: Mark, dropped: bool) -> ReviewRow:
    n = len(hours)
    cell = Cell("searches_reviewed", "Searches reviewed", n if mark is Mark.SHOWN else None, mark)
    if n < MIN_SHOWN or dropped:
        return ReviewRow(month, cell, None, None)
    return ReviewRow(
        month, cell, round(statistics.median(hours), 1), round(nearest_rank(hours, 0.9), 1)
    )


def _review_times(
    facts: Sequence[SearchFact], month_list: Sequence[str]
) -> tuple[tuple[ReviewRow, ...], ReviewRow]:
    """Hours from search to the first examiner's conclusion, by the month of the search."""
    hours: dict[str, list[float]] = {m: [] for m in month_list}
    for fact in facts:
        if fact.review_hours is not None:
            hours[_month(fact.created_at)].append(fact.review_hours)
    sup = suppress([len(hours[m]) for m in month_list])
    rows = tuple(
        _review_row(m, hours[m], mark, sup.dropped)
        for m, mark in zip(month_list, sup.cells, strict=True)
    )
    everything = [h for m in month_list for h in hours[m]]
    return rows, _review_row("all", everything, sup.total, sup.dropped)


def build_report(
    start: dt.date,
    end: dt.date,
    activity: Activity,
    *,
    purposes: Sequence[str],
    offences: Sequence[str],
    model: ModelFigures,
    integrity: str,
    generated_at: dt.datetime,
) -> TransparencyReport:
    """Count, suppress and assemble; ``activity`` holds the period's facts only."""
    check_period(start, end)
    month_list = months(start, end)
    facts = [f for f in activity.searches if _month(f.created_at) in set(month_list)]
    searches, by_purpose, by_offence, outcomes = _search_tables(
        facts, month_list, purposes, offences
    )
    review_rows, review_all = _review_times(facts, month_list)
    reasons = Counter(refusal_reason(code) for code in activity.refusal_codes)
    refusal_rows = [
        (k, t, reasons.get(k, 0)) for k, t, _ in (*REFUSAL_REASONS, (*OTHER_REFUSAL, None))
    ]
    kinds, rules = Counter(activity.removals), Counter(activity.retention)
    return TransparencyReport(
        start=start,
        end=end,
        generated_at=generated_at,
        searches=searches,
        purposes=by_purpose,
        offences=by_offence,
        refusals=_counted("refusals", "Refused search requests, by reason", "Reason",
                          refusal_rows),
        outcomes=outcomes,
        review_times=review_rows,
        review_overall=review_all,
        findings=_counted("audit_findings", "Misuse report findings, by rule", "Rule",
                          [(rid, title, n) for rid, title, n in activity.findings]),
        removals=_counted("gallery_removals", "Removal orders applied to the gallery",
                          "Order", _rows([(k.value, _REMOVALS[k]) for k in RemovalKind], kinds,
                                         ("other", "Other"))),
        retention=_counted("retention", "Searches whose probe and candidate list were "
                           "deleted by retention", "Rule",
                           _rows([(r.value, _RETENTION[r]) for r in RetentionRule], rules,
                                 ("other", "Other"))),
        model=model,
        integrity=integrity,
        refusal_codes=tuple((title, ", ".join(sorted(codes))) for _, title, codes in
                            REFUSAL_REASONS),
    )  # fmt: skip


_REMOVALS = {
    RemovalKind.SEALED: "Sealed by court order",
    RemovalKind.EXPUNGED: "Expunged by court order",
    RemovalKind.PURGED: "Purged under policy (not charged, charges dropped, acquitted)",
}
_RETENTION = {
    RetentionRule.NO_LEAD: "No lead: the search found no lead, past the no-lead period",
    RetentionRule.CLOSED_CASE: "Closed case: past the period after the case closed",
}
