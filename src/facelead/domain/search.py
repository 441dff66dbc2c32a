"""Candidate lists: ranked, scored, never a verdict."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from facelead import DISCLAIMER
from facelead.domain.cases import SearchStatus
from facelead.errors import InputError


@dataclass(frozen=True)
class Candidate:
    """One gallery subject, represented by its best-scoring photo."""

    rank: int
    score: float
    subject_id: str
    photo_id: int
    photo_sha256: str
    booking_number: str | None
    booking_date: dt.date | None
    agency: str | None
    estimated_fmr: float | None = None


@dataclass(frozen=True)
class CandidateList:
    """A search result. There is deliberately no 'match' field."""

    model_id: str
    probe_sha256: str
    face_index: int
    faces_found: int
    quality: dict[str, float]
    gallery_size: int
    candidates: tuple[Candidate, ...]
    disclaimer: str = field(default=DISCLAIMER)
    search_id: int | None = None  # set when read back from a stored search


@dataclass(frozen=True)
class ProbeProvenance:
    """Where the probe came from; recorded with it so a court can weigh the lead.

    ``edits`` lists every change made to the image before submission, in
    order, by name from the allowed set (crop, rotate, brightness...).
    """

    source_type: str
    how_obtained: str
    captured_by: str
    edits: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchRequest:
    """Everything a requester states about one search besides the image itself."""

    purpose: str
    justification: str
    provenance: ProbeProvenance
    face_index: int | None = None
    top_k: int | None = None


@dataclass(frozen=True)
class SearchReceipt:
    """What the requester gets back: deliberately no candidates (human review first)."""

    search_id: int
    status: SearchStatus
    case_number: str
    probe_sha256: str
    quality_override: bool = False
    disclaimer: str = field(default=DISCLAIMER)


def validate_top_k(top_k: int, maximum: int) -> int:
    """k is bounded: long lists invite fishing through look-alikes."""
    if not 1 <= top_k <= maximum:
        raise InputError(
            f"top k must be between 1 and {maximum}, got {top_k}", code="invalid_top_k"
        )
    return top_k
