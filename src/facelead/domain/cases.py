"""Cases and the search records that belong to them, as services hand them out.

A search exists only inside an open case: the case number is what ties a
face search to a law-enforcement purpose an auditor can check. The search
state machine here covers submission only (``submitted -> rejected |
candidates_ready``); the review states of DESIGN.md extend ``TRANSITIONS``
later without changing these.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from facelead.errors import ConflictError, InputError

_CASE_NUMBER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class SearchStatus(StrEnum):
    SUBMITTED = "submitted"
    REJECTED = "rejected"  # reserved: a probe found unusable after the record exists
    CANDIDATES_READY = "candidates_ready"


TRANSITIONS: dict[SearchStatus, frozenset[SearchStatus]] = {
    SearchStatus.SUBMITTED: frozenset({SearchStatus.REJECTED, SearchStatus.CANDIDATES_READY}),
    SearchStatus.REJECTED: frozenset(),
    SearchStatus.CANDIDATES_READY: frozenset(),
}
"""Allowed next states; anything else is an illegal transition."""


class ReviewRole(StrEnum):
    """What an assigned examiner does with a search (the review itself comes later)."""

    EXAMINER = "examiner"  # first review: compares the probe with each candidate
    VERIFIER = "verifier"  # blind peer verification of the first examiner's leads


def advance(current: SearchStatus, new: SearchStatus) -> SearchStatus:
    """The new status if the state machine allows it; an illegal move changes nothing."""
    if new not in TRANSITIONS.get(current, frozenset()):
        raise ConflictError(
            f"a search cannot go from {current.value} to {new.value}",
            code="illegal_transition",
            current=current.value,
            requested=new.value,
        )
    return new


def normalise_case_number(number: str) -> str:
    """Case numbers are agency formats; only their character set and length are checked.

    Restricting the characters keeps a case number safe to print, to use in a
    file name of a disclosure package and to match exactly in the audit log.
    """
    text = (number or "").strip()
    if _CASE_NUMBER_RE.fullmatch(text) is None:
        raise InputError(
            "a case number is 1-64 letters, digits or . _ : / - and starts with a letter or digit",
            code="invalid_case_number",
        )
    return text


@dataclass(frozen=True)
class Case:
    number: str
    agency: str
    offence_category: str
    status: CaseStatus
    opened_by: str
    opened_at: dt.datetime
    closed_by: str | None = None
    closed_at: dt.datetime | None = None


@dataclass(frozen=True)
class SearchSummary:
    """What anyone allowed to see a search's status sees: never its candidates."""

    search_id: int
    case_number: str
    status: SearchStatus
    purpose: str
    requester: str
    model_id: str
    created_at: dt.datetime
    quality_override: bool
    examiners: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaseView:
    case: Case
    searches: tuple[SearchSummary, ...]
