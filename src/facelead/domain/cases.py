"""Cases and the search records that belong to them, as services hand them out.

A search exists only inside an open case: the case number is what ties a
face search to a law-enforcement purpose an auditor can check. ``TRANSITIONS``
is the whole search state machine of DESIGN.md: the quality gate, examiner
review, blind peer verification (with return for review or escalation to a
supervisor), release of the lead report, corroboration, and closing with an
outcome. The services call ``advance`` before every status change, so an
illegal move raises before anything is written.
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
    CANDIDATES_READY = "candidates_ready"  # waiting for (another round of) examiner review
    NO_LEAD = "no_lead"  # the examiner found no candidate worth investigating
    POSSIBLE_LEAD = "possible_lead"  # 1..N possible leads, waiting for blind verification
    RETURNED_FOR_REVIEW = "returned_for_review"  # the verifier disagreed
    ESCALATED = "escalated"  # a supervisor resolves the disagreement
    VERIFIED = "verified"  # two examiners agree (or a supervisor resolved): may be released
    LEAD_RELEASED = "lead_released"  # the lead report went to the requester
    CORROBORATED = "corroborated"  # independent evidence supports the lead
    CLOSED = "closed"  # an outcome is recorded; nothing changes any more


_S = SearchStatus
TRANSITIONS: dict[SearchStatus, frozenset[SearchStatus]] = {
    _S.SUBMITTED: frozenset({_S.REJECTED, _S.CANDIDATES_READY, _S.CLOSED}),
    _S.REJECTED: frozenset({_S.CLOSED}),
    _S.CANDIDATES_READY: frozenset({_S.NO_LEAD, _S.POSSIBLE_LEAD, _S.CLOSED}),
    _S.NO_LEAD: frozenset({_S.CLOSED}),
    _S.POSSIBLE_LEAD: frozenset({_S.VERIFIED, _S.RETURNED_FOR_REVIEW, _S.CLOSED}),
    _S.RETURNED_FOR_REVIEW: frozenset({_S.CANDIDATES_READY, _S.ESCALATED, _S.CLOSED}),
    _S.ESCALATED: frozenset({_S.VERIFIED, _S.NO_LEAD, _S.CANDIDATES_READY, _S.CLOSED}),
    _S.VERIFIED: frozenset({_S.LEAD_RELEASED, _S.CLOSED}),
    _S.LEAD_RELEASED: frozenset({_S.CORROBORATED, _S.CLOSED}),
    _S.CORROBORATED: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
}
"""Allowed next states (DESIGN.md "Search workflow"); anything else is an illegal transition.

``closed`` is reachable from every other state because an investigation can end
at any point, but only through recording an outcome (``domain.review.check_outcome``).
"""

AWAITING_REVIEW: frozenset[SearchStatus] = frozenset(
    {_S.CANDIDATES_READY, _S.POSSIBLE_LEAD, _S.RETURNED_FOR_REVIEW, _S.ESCALATED}
)
"""States in which a search waits in the review queue for an examiner or a supervisor."""


class ReviewRole(StrEnum):
    """What an assigned examiner does with a search (domain.review holds the rules)."""

    EXAMINER = "examiner"  # first review: compares the probe with each candidate
    VERIFIER = "verifier"  # blind peer verification of the first examiner's leads


def advance(current: SearchStatus, new: SearchStatus) -> SearchStatus:
    """The new status if the state machine allows it; an illegal move changes nothing."""
    current, new = SearchStatus(current), SearchStatus(new)
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
