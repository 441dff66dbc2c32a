"""Corroboration and outcomes: what makes a lead actionable, and how a search ends.

DESIGN.md principle 3: a lead becomes actionable only after corroboration of
an independent kind. Evidence that comes from the face match itself (a photo
lineup built from the lead, the candidate's booking photo, another face
search) is refused with ``derived_from_face_match``; the 2024 Detroit
settlement forbids lineups built on a face-recognition lead alone. A search
closes only with an outcome, and ``confirmed`` needs a corroborated lead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from facelead.domain.cases import SearchStatus, advance
from facelead.errors import ConflictError, InputError, PolicyRefusal


def _name(text: str) -> str:
    return re.sub(r"[\s_]+", "-", (text or "").strip().lower())


# --- corroboration ---------------------------------------------------------------


class CorroborationType(StrEnum):
    VEHICLE_INFORMATION = "vehicle-information"
    OPEN_SOURCE_MEDIA = "open-source-media"
    WITNESS_STATEMENT = "witness-statement"
    ALIBI_CHECK = "alibi-check"
    PHYSICAL_OR_FORENSIC_EVIDENCE = "physical-or-forensic-evidence"
    OTHER = "other"


DERIVED_TYPES = frozenset(
    {
        "photo-lineup", "lineup", "line-up", "photo-array", "six-pack", "show-up", "showup",
        "face-match", "facial-recognition", "face-recognition", "face-search",
        "candidate-photo", "booking-photo", "mugshot",
    }
)  # fmt: skip
"""Kinds of 'evidence' that come from the face match itself (Detroit settlement, 2024)."""

_DERIVED_RE = re.compile(
    r"\b(?:photo ?line[- ]?ups?|line[- ]?ups?|photo arrays?|photo spreads?|six[- ]?packs?|"
    r"show[- ]?ups?|facial recognition|face recognition|face match\w*|face search\w*|"
    r"(?:candidate|booking|lead'?s?) (?:photo|image|picture)s?|mugshots?)\b",
    re.IGNORECASE,
)


def refuse_derived_evidence(kind: str, description: str) -> None:
    """Evidence built on the face match (a lineup of the lead, the candidate's photo) is refused.

    A witness shown the lead's photo in a lineup is confirming the algorithm's
    pick, not supplying independent evidence (Detroit settlement, 2024).
    """
    found = _DERIVED_RE.search(description or "")
    if _name(kind) in DERIVED_TYPES or found:
        term = found.group(0).lower() if found else _name(kind)
        raise PolicyRefusal(
            f"evidence derived from the face match itself ({term}) is not independent "
            "corroboration",
            code="derived_from_face_match",
            term=term,
        )


def parse_corroboration_type(kind: str) -> CorroborationType:
    try:
        return CorroborationType(_name(kind))
    except ValueError:
        raise InputError(
            f"corroboration type {kind!r} is not one of: "
            f"{', '.join(t.value for t in CorroborationType)}",
            code="unknown_corroboration_type",
        ) from None


def check_corroboration_state(status: SearchStatus) -> None:
    """Corroboration follows a released lead; before release there is nothing to corroborate."""
    if status not in (SearchStatus.LEAD_RELEASED, SearchStatus.CORROBORATED):
        raise ConflictError(
            f"search is {status.value}; corroboration is recorded for a released lead",
            code="lead_not_released",
        )


def status_after_corroboration(status: SearchStatus, supports: bool) -> SearchStatus:
    """A supporting independent item makes a released lead corroborated; a contradiction not."""
    if supports and status is SearchStatus.LEAD_RELEASED:
        return advance(status, SearchStatus.CORROBORATED)
    return status


# --- outcome ---------------------------------------------------------------------


class Outcome(StrEnum):
    CONFIRMED = "confirmed"  # independent evidence confirms the lead
    EXCLUDED = "excluded"  # the lead was excluded (alibi, contradicting facts...)
    UNRESOLVED = "unresolved"  # neither


def parse_outcome(text: str | None) -> Outcome:
    if not (text or "").strip():
        raise PolicyRefusal(
            "a search closes only with an outcome: confirmed, excluded or unresolved",
            code="outcome_required",
        )
    try:
        return Outcome(_name(text or ""))
    except ValueError:
        raise InputError(
            f"outcome {text!r} is not one of: confirmed, excluded, unresolved",
            code="unknown_outcome",
        ) from None


def check_outcome(status: SearchStatus, outcome: Outcome, supporting: int) -> SearchStatus:
    """The closed status; ``confirmed`` needs a corroborated lead (>= 1 independent item)."""
    if status is SearchStatus.CLOSED:
        raise ConflictError("the search is already closed with an outcome", code="search_closed")
    if outcome is Outcome.CONFIRMED and (status is not SearchStatus.CORROBORATED or supporting < 1):
        raise PolicyRefusal(
            "a lead is confirmed only after independent corroboration is recorded",
            code="corroboration_required",
        )
    return advance(status, SearchStatus.CLOSED)


def require_outcomes(unclosed: Sequence[int]) -> None:
    """A case closes only when every one of its searches has an outcome."""
    if unclosed:
        raise PolicyRefusal(
            "record an outcome for each search first (facelead case outcome): search "
            + ", ".join(str(s) for s in unclosed),
            code="outcome_required",
            searches=list(unclosed),
        )
