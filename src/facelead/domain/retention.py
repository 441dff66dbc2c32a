"""Retention rules: when a search's probe image and candidate list must go.

DESIGN.md principle 7: what is no longer needed is purged, and the purge is
itself audited. The rules are pure functions of a search's facts and a clock,
so a dry run and a real run computed at the same instant cannot disagree.
What goes: the probe image (bytes) and the candidate list (with the examiners'
per-candidate dispositions, which cannot outlive the candidates). What stays:
the search row, its provenance statement, the reviews' conclusions, the
reports' hashes and the audit log, which is never purged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from facelead.errors import InputError

NO_LEAD_STATUSES = frozenset({"rejected", "no_lead"})
"""Search statuses that mean the search produced no lead."""

UNREVIEWED_OR_NO_LEAD = frozenset({"submitted", "rejected", "candidates_ready", "no_lead"})
"""A closed search whose status before closing was one of these never had a lead."""


class RetentionRule(StrEnum):
    NO_LEAD = "no_lead"  # no lead: N days after the search
    CLOSED_CASE = "closed_case"  # case closed: M years after the closure


@dataclass(frozen=True)
class RetentionRules:
    no_lead_days: int
    closed_case_years: int

    def __post_init__(self) -> None:
        if self.no_lead_days < 0 or self.closed_case_years < 0:
            raise InputError("retention periods must not be negative", code="invalid_retention")


@dataclass(frozen=True)
class SearchFacts:
    """What the rules look at; read from the searches, cases and outcomes tables."""

    search_id: int
    status: str
    searched_at: dt.datetime
    case_closed_at: dt.datetime | None
    status_before_close: str | None = None  # from the outcome record of a closed search


def add_years(when: dt.datetime, years: int) -> dt.datetime:
    """Calendar years; 29 February becomes 28 February in a common year."""
    try:
        return when.replace(year=when.year + years)
    except ValueError:
        return when.replace(year=when.year + years, day=28)


def had_no_lead(facts: SearchFacts) -> bool:
    if facts.status in NO_LEAD_STATUSES:
        return True
    return facts.status == "closed" and facts.status_before_close in UNREVIEWED_OR_NO_LEAD


def due_rule(facts: SearchFacts, rules: RetentionRules, now: dt.datetime) -> RetentionRule | None:
    """The first rule whose period has run out for this search, else None."""
    if had_no_lead(facts) and facts.searched_at + dt.timedelta(days=rules.no_lead_days) <= now:
        return RetentionRule.NO_LEAD
    closed = facts.case_closed_at
    if closed is not None and add_years(closed, rules.closed_case_years) <= now:
        return RetentionRule.CLOSED_CASE
    return None


@dataclass(frozen=True)
class PlannedDeletion:
    """One search's share of a retention run: exactly what the real run deletes."""

    search_id: int
    case_number: str
    rule: RetentionRule
    candidates: int
    dispositions: int
    probe_sha256: str
    delete_probe_file: bool  # False while another search still needs the same image


@dataclass(frozen=True)
class RetentionPlan:
    now: dt.datetime
    rules: RetentionRules
    deletions: tuple[PlannedDeletion, ...]
    orphan_probe_files: tuple[str, ...]  # probes every search has released, still on disk

    @property
    def empty(self) -> bool:
        return not self.deletions and not self.orphan_probe_files
