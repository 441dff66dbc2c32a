"""The search state machine and the review rules, as pure functions (no database, no models)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facelead.domain import corroboration as corr
from facelead.domain import review as rules
from facelead.domain.cases import AWAITING_REVIEW, TRANSITIONS, SearchStatus, advance
from facelead.domain.review import Decision, Disposition, Resolution
from facelead.errors import FaceLeadError

S = SearchStatus
ALL = list(SearchStatus)
LEGAL = {(a, b) for a, nexts in TRANSITIONS.items() for b in nexts}


def code_of(call: object) -> str:
    with pytest.raises(FaceLeadError) as info:
        call()  # type: ignore[operator]
    return info.value.code


# --- state machine -------------------------------------------------------------------


def test_the_design_workflow_is_the_transition_table() -> None:
    assert set(TRANSITIONS) == set(SearchStatus)
    expected = {
        (S.SUBMITTED, S.REJECTED), (S.SUBMITTED, S.CANDIDATES_READY),
        (S.CANDIDATES_READY, S.NO_LEAD), (S.CANDIDATES_READY, S.POSSIBLE_LEAD),
        (S.POSSIBLE_LEAD, S.VERIFIED), (S.POSSIBLE_LEAD, S.RETURNED_FOR_REVIEW),
        (S.RETURNED_FOR_REVIEW, S.CANDIDATES_READY), (S.RETURNED_FOR_REVIEW, S.ESCALATED),
        (S.ESCALATED, S.VERIFIED), (S.ESCALATED, S.NO_LEAD), (S.ESCALATED, S.CANDIDATES_READY),
        (S.VERIFIED, S.LEAD_RELEASED), (S.LEAD_RELEASED, S.CORROBORATED),
    }  # fmt: skip
    closing = {(s, S.CLOSED) for s in SearchStatus if s is not S.CLOSED}
    assert expected | closing == LEGAL
    assert TRANSITIONS[S.CLOSED] == frozenset()
    waiting = {S.CANDIDATES_READY, S.POSSIBLE_LEAD, S.RETURNED_FOR_REVIEW, S.ESCALATED}
    assert frozenset(waiting) == AWAITING_REVIEW


@pytest.mark.parametrize(("current", "new"), [(a, b) for a in ALL for b in ALL])
def test_every_pair_is_allowed_or_refused(current: SearchStatus, new: SearchStatus) -> None:
    if (current, new) in LEGAL:
        assert advance(current, new) is new
    else:
        assert code_of(lambda: advance(current, new)) == "illegal_transition"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ALL), max_size=25))
def test_random_sequences_never_reach_an_illegal_state(steps: list[SearchStatus]) -> None:
    """Applying any sequence: legal steps move, illegal ones raise and leave the state as it was."""
    state = S.SUBMITTED
    for step in steps:
        before = state
        try:
            state = advance(state, step)
        except FaceLeadError as exc:
            assert exc.code == "illegal_transition"
            assert (before, step) not in LEGAL and state is before
        else:
            assert (before, step) in LEGAL
    if state is S.CLOSED:
        assert code_of(lambda: advance(S.CLOSED, S.SUBMITTED)) == "illegal_transition"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(ALL), max_size=30))
def test_no_release_without_verification(steps: list[SearchStatus]) -> None:
    """Whatever is tried, the history through the machine never skips the two-person rule."""
    history = [S.SUBMITTED]
    for step in steps:
        try:
            history.append(advance(history[-1], step))
        except FaceLeadError:
            continue
    if S.LEAD_RELEASED in history:
        assert S.VERIFIED in history[: history.index(S.LEAD_RELEASED)]
    if S.CORROBORATED in history:
        assert S.LEAD_RELEASED in history[: history.index(S.CORROBORATED)]
    if S.CLOSED in history:
        assert history[-1] is S.CLOSED


# --- features and dispositions ----------------------------------------------------------


def test_feature_checklist_covers_every_feature() -> None:
    checklist = rules.feature_checklist(
        ["Face shape", "hairline", "EYES", "nose"], ["ears"], min_compared=4
    )
    assert list(checklist) == list(rules.FEATURES)
    assert checklist["face-shape"] == "compared" and checklist["ears"] == "not_visible"
    assert checklist["tattoos-piercings"] == "not_compared"
    assert rules.feature_checklist(["chin", "lips"], ["tattoos"], 2)["chin-jawline"] == "compared"
    assert rules.compared_features(checklist) == ["face-shape", "hairline", "eyes", "nose"]
    assert code_of(lambda: rules.feature_checklist(["eyes", "gait"], [], 1)) == "unknown_feature"
    assert code_of(lambda: rules.feature_checklist(["eyes"], ["eyes"], 1)) == "feature_conflict"
    assert code_of(lambda: rules.feature_checklist(["eyes", "nose"], [], 4)) == "too_few_features"


def test_dispositions_one_per_candidate_with_reasons() -> None:
    shown = ["S1", "S2", "S3"]
    ok = {
        "S1": Decision(Disposition.POSSIBLE_LEAD, "ear shape"),
        "S2": Decision(Disposition.EXCLUDE),
    }
    filled = rules.with_others(shown, ok, Disposition.EXCLUDE)
    assert rules.check_dispositions(shown, filled, 2) == ("S1",)
    assert rules.review_conclusion(("S1",)) is S.POSSIBLE_LEAD
    assert rules.review_conclusion(()) is S.NO_LEAD
    assert code_of(lambda: rules.check_dispositions(shown, ok, 2)) == "dispositions_incomplete"
    extra = {**filled, "S9": Decision(Disposition.EXCLUDE)}
    assert code_of(lambda: rules.check_dispositions(shown, extra, 2)) == "unknown_candidate"
    bare = {**filled, "S2": Decision(Disposition.INCONCLUSIVE)}
    assert code_of(lambda: rules.check_dispositions(shown, bare, 2)) == "notes_required"
    three = {k: Decision(Disposition.POSSIBLE_LEAD, "similar") for k in shown}
    assert code_of(lambda: rules.check_dispositions(shown, three, 2)) == "too_many_leads"
    assert rules.parse_disposition("Possible-Lead") is Disposition.POSSIBLE_LEAD
    assert code_of(lambda: rules.parse_disposition("match")) == "unknown_disposition"


# --- blind rules --------------------------------------------------------------------------


def test_blind_order_is_a_reproducible_permutation() -> None:
    items = [f"S{n:03d}" for n in range(20)]
    first = rules.presentation_order(items, 7, "erin", 1)
    assert sorted(first) == sorted(items) and first != items
    assert rules.presentation_order(items, 7, "erin", 1) == first  # same reviewer, same order
    others = {
        tuple(rules.presentation_order(items, 7, name, n))
        for name, n in [("ezra", 1), ("erin", 2), ("eve", 1)]
    }
    assert tuple(first) not in others and len(others) == 3


def test_rank_one_is_not_always_shown_first() -> None:
    """Across searches the top-ranked candidate lands in every position about equally."""
    items = list(range(5))
    positions = Counter(rules.presentation_order(items, s, "erin", 1).index(0) for s in range(500))
    assert set(positions) == set(range(5)) and max(positions.values()) < 160


def test_scores_hidden_until_decided_in_blind_mode() -> None:
    assert not rules.scores_visible(blind=True, completed=False)
    assert rules.scores_visible(blind=True, completed=True)
    assert rules.scores_visible(blind=False, completed=False)


def test_two_person_rule() -> None:
    rules.check_distinct_reviewers("ezra", "ivy", {"erin"})
    assert (
        code_of(lambda: rules.check_distinct_reviewers("erin", "ivy", {"erin"})) == "same_reviewer"
    )
    assert (
        code_of(lambda: rules.check_distinct_reviewers("ivy", "ivy", set()))
        == "requester_cannot_review"
    )


def test_verification_and_resolution_paths() -> None:
    agree = {"S1": Decision(Disposition.POSSIBLE_LEAD, "same")}
    differ = {"S1": Decision(Disposition.EXCLUDE)}
    assert rules.verification_path(["S1"], agree, False) == (S.VERIFIED,)
    assert rules.verification_path(["S1"], differ, False) == (S.RETURNED_FOR_REVIEW,)
    assert rules.verification_path(["S1"], differ, True) == (S.RETURNED_FOR_REVIEW, S.ESCALATED)
    assert code_of(lambda: rules.verification_path(["S1"], agree, True)) == "nothing_to_escalate"
    returned, escalated = S.RETURNED_FOR_REVIEW, S.ESCALATED
    assert rules.resolution_path(returned, Resolution.RE_REVIEW) == (S.CANDIDATES_READY,)
    assert rules.resolution_path(returned, Resolution.UPHOLD) == (S.ESCALATED, S.VERIFIED)
    assert rules.resolution_path(escalated, Resolution.NO_LEAD) == (S.NO_LEAD,)
    for status in (S.POSSIBLE_LEAD, S.VERIFIED, S.CANDIDATES_READY):
        assert code_of(lambda s=status: rules.resolution_path(s, Resolution.UPHOLD)) == (
            "nothing_to_resolve"
        )
    for path in (rules.resolution_path(returned, d) for d in Resolution):
        rules.walk(returned, path)  # every path is legal in the state machine


def test_examiner_account_rules() -> None:
    today = dt.date(2025, 6, 1)
    good = dict(exists=True, disabled=False, roles=["examiner"], certified_until=today,
                agency="LACRIS", case_agency="LACRIS", today=today)  # fmt: skip
    rules.check_examiner_account(**good)  # type: ignore[arg-type]
    changes: list[tuple[dict[str, object], str]] = [
        ({"exists": False}, "user_not_found"),
        ({"disabled": True}, "user_disabled"),
        ({"roles": ["investigator"]}, "not_an_examiner"),
        ({"certified_until": dt.date(2025, 5, 31)}, "examiner_not_certified"),
        ({"certified_until": None}, "examiner_not_certified"),
        ({"agency": "LASD"}, "examiner_agency_mismatch"),
    ]
    for change, code in changes:
        args = {**good, **change}
        assert code_of(lambda a=args: rules.check_examiner_account(**a)) == code


# --- corroboration, outcome, report -----------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("photo-lineup", "victim viewed six photos"),
        ("Photo array", "six photos shown"),
        ("facial-recognition", "second system agrees"),
        ("witness-statement", "Witness picked him out of a photo line-up"),
        ("other", "showed the candidate photo to the store clerk"),
        ("witness-statement", "identified in a six-pack prepared from the lead"),
        ("open-source-media", "his mugshot compared with the probe"),
    ],
)
def test_evidence_from_the_face_match_is_refused(kind: str, text: str) -> None:
    assert code_of(lambda: corr.refuse_derived_evidence(kind, text)) == "derived_from_face_match"


def test_independent_evidence_types() -> None:
    for kind in corr.CorroborationType:
        corr.refuse_derived_evidence(kind.value, "plate 7ABC123 registered at his address")
        assert corr.parse_corroboration_type(kind.value.upper()) is kind
    assert code_of(lambda: corr.parse_corroboration_type("hunch")) == "unknown_corroboration_type"
    assert code_of(lambda: corr.check_corroboration_state(S.VERIFIED)) == "lead_not_released"
    assert corr.status_after_corroboration(S.LEAD_RELEASED, True) is S.CORROBORATED
    assert corr.status_after_corroboration(S.LEAD_RELEASED, False) is S.LEAD_RELEASED
    assert corr.status_after_corroboration(S.CORROBORATED, True) is S.CORROBORATED


def test_outcome_rules() -> None:
    assert code_of(lambda: corr.parse_outcome(None)) == "outcome_required"
    assert code_of(lambda: corr.parse_outcome(" ")) == "outcome_required"
    assert code_of(lambda: corr.parse_outcome("guilty")) == "unknown_outcome"
    confirmed = corr.Outcome.CONFIRMED
    assert corr.check_outcome(S.CORROBORATED, confirmed, 1) is S.CLOSED
    for status, support in [(S.LEAD_RELEASED, 0), (S.VERIFIED, 0), (S.CORROBORATED, 0)]:
        assert (
            code_of(lambda s=status, n=support: corr.check_outcome(s, confirmed, n))
            == "corroboration_required"
        )
    for status in set(SearchStatus) - {S.CLOSED}:
        assert corr.check_outcome(status, corr.Outcome.UNRESOLVED, 0) is S.CLOSED
    assert (
        code_of(lambda: corr.check_outcome(S.CLOSED, corr.Outcome.EXCLUDED, 0)) == "search_closed"
    )
    corr.require_outcomes([])
    assert code_of(lambda: corr.require_outcomes([3, 4])) == "outcome_required"


def test_report_kind_and_stale_photos() -> None:
    for status in (S.VERIFIED, S.LEAD_RELEASED, S.CORROBORATED):
        assert rules.report_kind(status) == "lead"
    assert rules.report_kind(S.NO_LEAD) == "no_lead"
    assert rules.report_kind(S.CLOSED, S.CORROBORATED) == "lead"
    for status in (S.CANDIDATES_READY, S.POSSIBLE_LEAD, S.RETURNED_FOR_REVIEW, S.ESCALATED):
        assert code_of(lambda s=status: rules.report_kind(s)) == "lead_not_verified"
    assert code_of(lambda: rules.report_kind(S.CLOSED, S.POSSIBLE_LEAD)) == "lead_not_verified"
    today = dt.date(2025, 6, 1)
    assert rules.is_stale(dt.date(2019, 5, 1), today, 5)
    assert not rules.is_stale(dt.date(2021, 5, 1), today, 5)
    assert not rules.is_stale(None, today, 5)
    assert "—" in rules.REPORT_DISCLAIMER and "photo lineup" in rules.REPORT_DISCLAIMER
