"""Examiner review, blind peer verification, corroboration and outcomes: the rules, pure.

Sources (docs/review.md): FISWG "Facial Image Comparison Feature List for
Morphological Analysis" (the checklist), the FBI FACE Services workflow (one
or two candidates returned, never a list), NYPD's two-person review and the
2024 Detroit settlement (no arrest, search warrant or photo lineup on a face
match alone; lineups built from a lead are not independent evidence).

Every rule is a function of its inputs that returns a value or raises a
``FaceLeadError`` with a stable code, so the services can run them inside
their audited transaction and a refusal changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from facelead.domain.cases import SearchStatus, advance
from facelead.errors import ConflictError, InputError, PermissionDenied, PolicyRefusal

REPORT_DISCLAIMER = (
    "Investigative lead only — not a positive identification — not probable cause for arrest, "
    "detention, a search warrant or a photo lineup. Must be corroborated by independent evidence."
)
"""Printed on every lead report, no-lead report and disclosure package; fixed, never configured."""

FEATURES: dict[str, str] = {
    "face-shape": "Face and head outline",
    "face-proportions": "Face and head composition (proportions)",
    "hairline": "Hair and hairline",
    "forehead": "Forehead",
    "eyebrows": "Eyebrows",
    "eyes": "Eyes",
    "cheeks": "Cheeks",
    "nose": "Nose",
    "ears": "Ears",
    "mouth": "Mouth and lips",
    "chin-jawline": "Chin and jawline",
    "neck": "Neck",
    "facial-hair": "Facial hair",
    "facial-lines": "Facial lines and wrinkles",
    "scars": "Scars",
    "facial-marks": "Facial marks (moles, freckles, birthmarks)",
    "tattoos-piercings": "Alterations: tattoos and piercings",
}
"""The FISWG feature-list components an examiner accounts for before any disposition."""

FEATURE_ALIASES = {
    "head-shape": "face-shape", "hair": "hairline", "brows": "eyebrows", "lips": "mouth",
    "chin": "chin-jawline", "jaw": "chin-jawline", "jawline": "chin-jawline",
    "beard": "facial-hair", "moustache": "facial-hair", "wrinkles": "facial-lines",
    "marks": "facial-marks", "moles": "facial-marks", "tattoos": "tattoos-piercings",
    "piercings": "tattoos-piercings",
}  # fmt: skip

T = TypeVar("T")


def _name(text: str) -> str:
    return re.sub(r"[\s_]+", "-", (text or "").strip().lower())


class FeatureStatus(StrEnum):
    COMPARED = "compared"
    NOT_VISIBLE = "not_visible"  # not assessable in the probe (pose, occlusion, resolution)
    NOT_COMPARED = "not_compared"


def feature_checklist(
    compared: Iterable[str], not_visible: Iterable[str], min_compared: int
) -> dict[str, str]:
    """Every checklist feature with its status; refuses unknown names and too few comparisons.

    Recording what was compared before deciding anything is the FISWG
    morphological method: it makes the examiner look at the face, feature by
    feature, instead of at the similarity score.
    """
    seen: dict[str, FeatureStatus] = {}
    listed = ((FeatureStatus.COMPARED, compared), (FeatureStatus.NOT_VISIBLE, not_visible))
    for status, names in listed:
        for raw in names:
            name = FEATURE_ALIASES.get(_name(raw), _name(raw))
            if name not in FEATURES:
                raise InputError(
                    f"unknown feature {raw!r}; the checklist is: {', '.join(FEATURES)}",
                    code="unknown_feature",
                )
            if seen.get(name, status) != status:
                raise InputError(
                    f"feature {name} is listed as both compared and not visible",
                    code="feature_conflict",
                )
            seen[name] = status
    count = sum(1 for s in seen.values() if s == FeatureStatus.COMPARED)
    if count < min_compared:
        raise PolicyRefusal(
            f"compare at least {min_compared} facial features before any disposition "
            f"({count} compared)",
            code="too_few_features",
            min_compared=min_compared,
        )
    return {name: seen.get(name, FeatureStatus.NOT_COMPARED).value for name in FEATURES}


def compared_features(checklist: Mapping[str, str] | None) -> list[str]:
    return [n for n, s in (checklist or {}).items() if s == FeatureStatus.COMPARED]


class Disposition(StrEnum):
    EXCLUDE = "exclude"
    INCONCLUSIVE = "inconclusive"
    POSSIBLE_LEAD = "possible_lead"


def parse_disposition(text: str) -> Disposition:
    name = _name(text).replace("-", "_")
    try:
        return Disposition(name)
    except ValueError:
        raise InputError(
            f"disposition {text!r} is not one of: {', '.join(d.value for d in Disposition)}",
            code="unknown_disposition",
        ) from None


@dataclass(frozen=True)
class Decision:
    """One reviewer's disposition of one candidate, with the reasons in their words."""

    disposition: Disposition
    notes: str = ""


def with_others(
    presented: Sequence[str], decisions: Mapping[str, Decision], others: Disposition | None
) -> dict[str, Decision]:
    """The examiner's decisions, plus ``others`` for every presented candidate not named."""
    filled = dict(decisions)
    if others is not None:
        for key in presented:
            filled.setdefault(key, Decision(others))
    return filled


def check_dispositions(
    presented: Sequence[str], decisions: Mapping[str, Decision], max_leads: int
) -> tuple[str, ...]:
    """Exactly one disposition per presented candidate; returns the possible leads.

    At most ``max_leads`` possible leads: the FBI returns one or two, a longer
    list invites an investigator to pick whichever suspect suits them.
    """
    unknown = sorted(set(decisions) - set(presented))
    if unknown:
        raise InputError(
            f"not a candidate of this review: {', '.join(unknown)}", code="unknown_candidate"
        )
    missing = [key for key in presented if key not in decisions]
    if missing:
        raise InputError(
            f"every candidate needs a disposition; missing: {', '.join(missing)}",
            code="dispositions_incomplete",
            missing=missing,
        )
    for key, decision in decisions.items():
        if decision.disposition is not Disposition.EXCLUDE and not decision.notes.strip():
            raise InputError(
                f"say why {key} is {decision.disposition.value} (notes are required)",
                code="notes_required",
            )
    leads = tuple(k for k in presented if decisions[k].disposition is Disposition.POSSIBLE_LEAD)
    if len(leads) > max_leads:
        raise PolicyRefusal(
            f"at most {max_leads} possible leads per search ({len(leads)} given)",
            code="too_many_leads",
            max_leads=max_leads,
        )
    return leads


def review_conclusion(leads: Sequence[str]) -> SearchStatus:
    return SearchStatus.POSSIBLE_LEAD if leads else SearchStatus.NO_LEAD


def presentation_order(items: Sequence[T], search_id: int, examiner: str, round_no: int) -> list[T]:
    """Blind order: shuffled with a seed of (search, examiner, round), so it is reproducible.

    The rank order tells an examiner what the algorithm thinks; shuffling
    removes that anchor. The same examiner sees the same order every time they
    look, and an auditor can recompute it.
    """
    seed = hashlib.sha256(f"{search_id}:{examiner}:{round_no}".encode()).digest()
    shuffled = list(items)
    random.Random(int.from_bytes(seed[:8], "big")).shuffle(shuffled)
    return shuffled


def scores_visible(blind: bool, completed: bool) -> bool:
    """In blind mode scores and ranks appear only once the reviewer's decisions are recorded."""
    return not blind or completed


def check_distinct_reviewers(person: str, requester: str, reviewers: Collection[str]) -> None:
    """Two-person rule: nobody reviews a search they requested or reviews it twice."""
    if person == requester:
        raise PermissionDenied(
            "the requester of a search never reviews it", code="requester_cannot_review"
        )
    if person in reviewers:
        raise PermissionDenied(
            f"{person} has already reviewed this search; a second person must",
            code="same_reviewer",
        )


def check_notes(text: str, min_chars: int) -> str:
    notes = " ".join((text or "").split())
    if len(notes) < min_chars:
        raise InputError(
            f"notes of at least {min_chars} characters are required", code="notes_required"
        )
    return notes


def verification_path(
    leads: Sequence[str], decisions: Mapping[str, Decision], escalate: bool
) -> tuple[SearchStatus, ...]:
    """The verifier's independent dispositions decide: all leads agreed -> verified.

    Any disagreement returns the whole search for review (or escalates it to a
    supervisor): a lead the second examiner did not see the same way is
    never released.
    """
    agreed = all(decisions[k].disposition is Disposition.POSSIBLE_LEAD for k in leads)
    if agreed:
        if escalate:
            raise InputError(
                "nothing to escalate: you agree with every possible lead",
                code="nothing_to_escalate",
            )
        return (SearchStatus.VERIFIED,)
    back = (SearchStatus.RETURNED_FOR_REVIEW,)
    return (*back, SearchStatus.ESCALATED) if escalate else back


class Resolution(StrEnum):
    UPHOLD = "uphold"  # the supervisor sides with the possible lead: verified
    NO_LEAD = "no_lead"  # the supervisor sides with the verifier: no lead
    RE_REVIEW = "re_review"  # a new, blind review round


def parse_resolution(text: str) -> Resolution:
    try:
        return Resolution(_name(text).replace("-", "_"))
    except ValueError:
        raise InputError(
            f"decision {text!r} is not one of: uphold, no-lead, re-review",
            code="unknown_resolution",
        ) from None


def resolution_path(current: SearchStatus, decision: Resolution) -> tuple[SearchStatus, ...]:
    """A supervisor resolves a returned or escalated search; nothing else can be resolved."""
    if current not in (SearchStatus.RETURNED_FOR_REVIEW, SearchStatus.ESCALATED):
        raise ConflictError(
            f"search is {current.value}; only a returned or escalated search is resolved",
            code="nothing_to_resolve",
        )
    target = {
        Resolution.UPHOLD: SearchStatus.VERIFIED,
        Resolution.NO_LEAD: SearchStatus.NO_LEAD,
        Resolution.RE_REVIEW: SearchStatus.CANDIDATES_READY,
    }[decision]
    if current is SearchStatus.RETURNED_FOR_REVIEW and decision is Resolution.RE_REVIEW:
        return (target,)
    steps = () if current is SearchStatus.ESCALATED else (SearchStatus.ESCALATED,)
    return (*steps, target)


def walk(current: SearchStatus, path: Iterable[SearchStatus]) -> SearchStatus:
    """Apply each step through the state machine; the first illegal one raises."""
    for step in path:
        current = advance(current, step)
    return current


# --- lead report -----------------------------------------------------------------

RELEASABLE = frozenset(
    {SearchStatus.VERIFIED, SearchStatus.LEAD_RELEASED, SearchStatus.CORROBORATED}
)


def report_kind(status: SearchStatus, closed_from: SearchStatus | None = None) -> str:
    """``lead`` after verification, ``no_lead`` after a no-lead review; refused otherwise."""
    effective = closed_from if status is SearchStatus.CLOSED and closed_from else status
    if effective in RELEASABLE:
        return "lead"
    if effective is SearchStatus.NO_LEAD:
        return "no_lead"
    raise PolicyRefusal(
        f"search is {status.value}; a lead report is released only after peer verification",
        code="lead_not_verified",
    )


def photo_age_years(booking_date: dt.date | None, today: dt.date) -> float | None:
    if booking_date is None:
        return None
    return (today - booking_date).days / 365.25


def is_stale(booking_date: dt.date | None, today: dt.date, years: int) -> bool:
    """A booking photo older than ``years`` may no longer look like the person today."""
    age = photo_age_years(booking_date, today)
    return age is not None and age > years


def check_examiner_account(
    *,
    exists: bool,
    disabled: bool,
    roles: Collection[str],
    certified_until: dt.date | None,
    agency: str | None,
    case_agency: str,
    today: dt.date,
) -> None:
    """Only an enabled, certified examiner of the case's agency is assigned a review."""
    if not exists:
        raise PermissionDenied("no such user account", code="user_not_found")
    if disabled:
        raise PermissionDenied("this account is disabled", code="user_disabled")
    if "examiner" not in roles:
        raise PermissionDenied("this user does not hold the examiner role", code="not_an_examiner")
    if certified_until is None or today > certified_until:
        raise PermissionDenied(
            "this examiner's training certification has lapsed or is missing",
            code="examiner_not_certified",
        )
    if agency != case_agency:
        raise PolicyRefusal(
            f"the examiner belongs to agency {agency}, not {case_agency}",
            code="examiner_agency_mismatch",
        )
