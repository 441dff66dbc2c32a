"""Property tests of the search-request policy rules (domain/policy.py).

The example tests in test_policy.py pin one case per code; these generate the
spellings, lists and numbers a hostile or careless requester might send and
check that each rule's answer depends only on what the rule is about: no
spelling of a refused source or edit gets through, no configured list can
re-enable them, and a limit is exact at its boundary.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from facelead.domain import policy
from facelead.domain.search import ProbeProvenance
from facelead.errors import FaceLeadError

NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20).filter(
    lambda s: s.strip("-") == s and "--" not in s
)
SAFE_WORDS = st.sampled_from(
    ["suspect", "vehicle", "store", "camera", "still", "wallet", "night", "clerk", "the", "a"]
)
SAFE_TEXT = st.lists(SAFE_WORDS, min_size=3, max_size=30).map(" ".join)
FIRST_AMENDMENT_TERMS = st.sampled_from(
    ["protest", "protesters", "demonstration", "rally", "church", "mosque", "journalist"]
)
PROTECTED_TERMS = st.sampled_from(["race", "ethnicity", "sexual orientation", "disability"])


def respell(name: str, data: st.DataObject) -> str:
    """The same name as a person might type it: any case, spaces or underscores for hyphens."""
    joiner = data.draw(st.sampled_from(["-", " ", "_", "  "]))
    cased = "".join(c.upper() if data.draw(st.booleans()) else c for c in name.replace("-", joiner))
    return (
        data.draw(st.sampled_from(["", " ", "\t"])) + cased + data.draw(st.sampled_from(["", " "]))
    )


def code_of(call: object, *args: object) -> str | None:
    """The stable code a rule refuses with, or None when it passes."""
    assert callable(call)
    try:
        call(*args)
    except FaceLeadError as exc:
        return exc.code
    return None


@given(name=NAMES, data=st.data())
def test_normalise_ignores_case_spacing_and_underscores(name: str, data: st.DataObject) -> None:
    once = policy.normalise(respell(name, data))
    assert once == policy.normalise(name) == policy.normalise(once)


@given(allowed=st.lists(NAMES, min_size=1, max_size=5), data=st.data())
def test_a_permitted_purpose_passes_in_any_spelling(
    allowed: list[str], data: st.DataObject
) -> None:
    chosen = data.draw(st.sampled_from(allowed))
    assert code_of(policy.check_purpose, respell(chosen, data), allowed) is None


@given(allowed=st.lists(NAMES, max_size=5), purpose=NAMES)
def test_any_other_purpose_is_refused(allowed: list[str], purpose: str) -> None:
    known = {policy.normalise(a) for a in allowed}  # "grayscale" is "greyscale"
    expected = None if policy.normalise(purpose) in known else "purpose_not_permitted"
    assert code_of(policy.check_purpose, purpose, allowed) == expected
    assert code_of(policy.check_purpose, " \t", allowed) == "purpose_required"


@given(text=st.text(max_size=80), minimum=st.integers(min_value=1, max_value=60))
def test_justification_length_counts_words_not_padding(text: str, minimum: int) -> None:
    collapsed = " ".join(text.split())
    expected = (
        "justification_required"
        if not collapsed
        else "justification_too_short"
        if len(collapsed) < minimum
        else None
    )
    assert code_of(policy.check_justification, text, minimum) == expected


@given(before=SAFE_TEXT, after=SAFE_TEXT, term=FIRST_AMENDMENT_TERMS | PROTECTED_TERMS)
def test_a_prohibited_basis_anywhere_in_the_text_is_refused(
    before: str, after: str, term: str
) -> None:
    justification = f"{before} {term.upper() if len(before) % 2 else term} {after}"
    assert code_of(policy.refuse_prohibited_basis, "criminal-investigation", justification) == (
        "prohibited_purpose"
    )


@given(text=SAFE_TEXT)
def test_a_plain_description_of_conduct_passes(text: str) -> None:
    assert code_of(policy.refuse_prohibited_basis, "criminal-investigation", text) is None


@given(text=SAFE_TEXT, crime=st.sampled_from(["robbery", "fraud", "assault", "trafficking"]))
def test_immigration_status_alone_is_refused_but_not_beside_a_crime(text: str, crime: str) -> None:
    alone = f"{text} immigration status"
    assert code_of(policy.refuse_prohibited_basis, "criminal-investigation", alone) == (
        "prohibited_purpose"
    )
    beside = f"{alone} {crime}"
    assert code_of(policy.refuse_prohibited_basis, "criminal-investigation", beside) is None


@given(
    source=st.sampled_from(sorted(policy.REFUSED_SOURCES)), extra=st.lists(NAMES), data=st.data()
)
def test_refused_sources_stay_refused_whatever_the_configuration(
    source: str, extra: list[str], data: st.DataObject
) -> None:
    allowed = [*extra, source]  # even a deployment that lists it cannot re-enable it
    assert code_of(policy.check_probe_source, respell(source, data), allowed) == (
        "probe_source_refused"
    )


@given(
    edits=st.lists(NAMES, max_size=4),
    refused=st.sampled_from(sorted(policy.REFUSED_EDITS)),
    at=st.integers(min_value=0, max_value=4),
    data=st.data(),
)
def test_a_refused_edit_anywhere_in_the_list_is_refused(
    edits: list[str], refused: str, at: int, data: st.DataObject
) -> None:
    allowed = [e for e in edits if e not in policy.REFUSED_EDITS] + [refused]
    clean = [e for e in edits if e not in policy.REFUSED_EDITS]
    assert code_of(policy.check_edits, clean, allowed) is None
    listed = [*clean[:at], respell(refused, data), *clean[at:]]
    assert code_of(policy.check_edits, listed, allowed) == "probe_edit_refused"


@given(
    how=SAFE_TEXT,
    hint=st.sampled_from(["body-worn camera", "BWC", "bodycam", "dash cam", "live stream"]),
)
def test_a_refused_source_named_in_the_free_text_is_refused(how: str, hint: str) -> None:
    hidden = ProbeProvenance("cctv-still", f"{how} from the {hint}", "Det. Ray")
    assert code_of(policy.refuse_hidden_source, hidden) == "probe_source_refused"
    assert code_of(policy.refuse_hidden_source, ProbeProvenance("cctv-still", how, "x")) is None


@given(today=st.integers(min_value=0, max_value=500), limit=st.integers(min_value=0, max_value=500))
def test_the_rate_limit_is_exact_at_its_boundary(today: int, limit: int) -> None:
    expected = "rate_limited" if today >= limit else None
    assert code_of(policy.check_rate_limit, today, limit) == expected


@given(
    failures=st.lists(st.sampled_from(["blur", "face_too_small", "pose", "dark"]), max_size=3),
    overridden=st.booleans(),
)
def test_the_quality_gate_refuses_exactly_unoverridden_failures(
    failures: list[str], overridden: bool
) -> None:
    expected = "low_quality_probe" if failures and not overridden else None
    assert code_of(policy.quality_gate, failures, {"blur": 1.0}, "ab" * 32, overridden) == expected


@given(
    viewer=NAMES,
    requester=NAMES,
    assigned=st.sets(NAMES, max_size=4),
)
def test_candidates_reach_only_assigned_examiners_never_the_requester(
    viewer: str, requester: str, assigned: set[str]
) -> None:
    got = code_of(policy.check_candidate_access, viewer, requester, assigned)
    if viewer == requester:
        assert got == "requester_cannot_view"
    else:
        assert got == (None if viewer in assigned else "not_assigned")


@given(
    case_agency=st.text("LAlaPD", min_size=1, max_size=4),
    actor_agency=st.text("LAlaPD", max_size=4),
)
def test_a_user_acts_only_for_their_own_agency(case_agency: str, actor_agency: str) -> None:
    expected = None if case_agency == actor_agency else "case_agency_mismatch"
    assert code_of(policy.require_same_agency, case_agency, actor_agency) == expected


@pytest.mark.parametrize("probe", [[b"a", b"b"], "path.jpg", None, {"image": b"x"}])
def test_anything_but_one_image_is_a_batch(probe: object) -> None:
    assert code_of(policy.require_single_probe, probe) == "batch_not_allowed"
    assert code_of(policy.require_single_probe, b"\xff\xd8") is None
