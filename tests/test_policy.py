"""Every search-request policy rule, accepted and refused, as pure functions (no I/O)."""

from __future__ import annotations

import pytest

from facelead.config import Settings
from facelead.domain import policy
from facelead.domain.cases import SearchStatus, advance, normalise_case_number
from facelead.domain.search import ProbeProvenance
from facelead.errors import (
    ConflictError,
    FaceLeadError,
    InputError,
    PermissionDenied,
    PolicyRefusal,
    RateLimited,
)

SETTINGS = Settings()
GOOD = ProbeProvenance("cctv-still", "exported from the shop's DVR by Det. Ruiz", "shop CCTV")


def _code(exc: pytest.ExceptionInfo[FaceLeadError]) -> str:
    return exc.value.code


# --- cases -----------------------------------------------------------------


@pytest.mark.parametrize("category", SETTINGS.offence_categories)
def test_configured_offence_categories_are_accepted(category: str) -> None:
    policy.check_offence_category(category, SETTINGS.offence_categories)
    policy.check_offence_category(category.upper().replace("-", " "), SETTINGS.offence_categories)


@pytest.mark.parametrize("category", ["", "jaywalking", "protest", "immigration"])
def test_other_offence_categories_are_refused(category: str) -> None:
    with pytest.raises(PolicyRefusal) as info:
        policy.check_offence_category(category, SETTINGS.offence_categories)
    assert _code(info) == "unknown_offence_category"


def test_open_case_required() -> None:
    policy.require_open_case("open", "C-1")
    with pytest.raises(PolicyRefusal) as info:
        policy.require_open_case("closed", "C-1")
    assert _code(info) == "case_closed"


def test_case_of_own_agency_required() -> None:
    policy.require_same_agency("LAPD", "LAPD")
    with pytest.raises(PolicyRefusal) as info:
        policy.require_same_agency("LAPD", "LASD")
    assert _code(info) == "case_agency_mismatch"


@pytest.mark.parametrize("number", ["24-00123", "LA/2024/77", "A", "hq:1.2_3"])
def test_case_numbers_accepted(number: str) -> None:
    assert normalise_case_number(f"  {number} ") == number


@pytest.mark.parametrize("number", ["", "   ", "-1", "a b", "x" * 65, "C-1;drop", "../etc"])
def test_case_numbers_refused(number: str) -> None:
    with pytest.raises(InputError) as info:
        normalise_case_number(number)
    assert _code(info) == "invalid_case_number"


def test_search_state_machine() -> None:
    assert advance(SearchStatus.SUBMITTED, SearchStatus.CANDIDATES_READY) is (
        SearchStatus.CANDIDATES_READY
    )
    assert advance(SearchStatus.SUBMITTED, SearchStatus.REJECTED) is SearchStatus.REJECTED
    for current, new in [
        (SearchStatus.CANDIDATES_READY, SearchStatus.SUBMITTED),
        (SearchStatus.REJECTED, SearchStatus.CANDIDATES_READY),
        (SearchStatus.SUBMITTED, SearchStatus.SUBMITTED),
    ]:
        with pytest.raises(ConflictError) as info:
            advance(current, new)
        assert _code(info) == "illegal_transition"


# --- purpose and justification -------------------------------------------------


@pytest.mark.parametrize("purpose", SETTINGS.search_purposes)
def test_permitted_purposes_are_accepted(purpose: str) -> None:
    policy.check_purpose(purpose, SETTINGS.search_purposes)
    policy.check_purpose(purpose.replace("-", "_").title(), SETTINGS.search_purposes)


def test_purpose_is_required() -> None:
    for empty in ("", "   "):
        with pytest.raises(PolicyRefusal) as info:
            policy.check_purpose(empty, SETTINGS.search_purposes)
        assert _code(info) == "purpose_required"


@pytest.mark.parametrize("purpose", ["curiosity", "surveillance", "watch-list", "civil"])
def test_other_purposes_are_refused(purpose: str) -> None:
    with pytest.raises(PolicyRefusal) as info:
        policy.check_purpose(purpose, SETTINGS.search_purposes)
    assert _code(info) == "purpose_not_permitted"


def test_justification_is_required_and_long_enough() -> None:
    policy.check_justification("Armed robbery of a pharmacy on 5th St", 20)
    for empty in ("", " \n\t "):
        with pytest.raises(PolicyRefusal) as info:
            policy.check_justification(empty, 20)
        assert _code(info) == "justification_required"
    with pytest.raises(PolicyRefusal) as info:
        policy.check_justification("robbery        x", 20)  # whitespace does not count
    assert _code(info) == "justification_too_short"


@pytest.mark.parametrize(
    "text",
    [
        "Armed robbery of a pharmacy; suspect seen on the shop camera",
        "Unidentified deceased male found at the river bank",
        "Missing 9-year-old, last seen with an unknown adult",
        "Human smuggling ring moving undocumented migrants across the border",
        "Visa fraud: suspect forged passports for a trafficking ring",
        "Threat to shoot staff made at the school gate",
        "Suspect disabled the alarm before the burglary",  # 'disabled' is not 'disability'
        "Street racing crash, driver fled",
    ],
)
def test_lawful_bases_are_accepted(text: str) -> None:
    policy.refuse_prohibited_basis("criminal-investigation", text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Identify protesters at the city hall rally", "first_amendment"),
        ("Who is organising the demonstration on Sunday", "first_amendment"),
        ("Regular attendee of the mosque on Elm St", "first_amendment"),
        ("Find members of this church group", "first_amendment"),
        ("He is a member of a neighbourhood association we are watching", "first_amendment"),
        ("Identify the activist quoted in the paper", "first_amendment"),
        ("Suspect's political views are extreme", "first_amendment"),
        ("Check the person because of their race", "protected_class"),
        ("Determine his ethnicity and national origin", "protected_class"),
        ("Find out the sexual orientation of the man", "protected_class"),
        ("Person with a disability seen at the station", "protected_class"),
        ("Check the immigration status of the worker", "immigration_status"),
        ("Possibly undocumented, find out who he is", "immigration_status"),
        ("Suspected visa overstay", "immigration_status"),
    ],
)
def test_prohibited_bases_are_refused(text: str, category: str) -> None:
    with pytest.raises(PolicyRefusal) as info:
        policy.refuse_prohibited_basis("criminal-investigation", text)
    assert _code(info) == "prohibited_purpose"
    assert info.value.details["category"] == category


def test_prohibited_basis_in_a_configured_purpose_is_refused() -> None:
    with pytest.raises(PolicyRefusal) as info:
        policy.refuse_prohibited_basis("protest-monitoring", "Robbery at the corner shop")
    assert info.value.details == {"category": "first_amendment", "term": "protest"}


# --- provenance, source and edits ------------------------------------------------


def test_complete_provenance_is_accepted() -> None:
    policy.require_provenance(GOOD)


@pytest.mark.parametrize(
    ("provenance", "missing"),
    [
        (ProbeProvenance("", "x", "y"), ["source_type"]),
        (ProbeProvenance("cctv-still", " ", "y"), ["how_obtained"]),
        (ProbeProvenance("cctv-still", "x", ""), ["captured_by"]),
        (ProbeProvenance("", "", ""), ["source_type", "how_obtained", "captured_by"]),
    ],
)
def test_incomplete_provenance_is_refused(provenance: ProbeProvenance, missing: list[str]) -> None:
    with pytest.raises(PolicyRefusal) as info:
        policy.require_provenance(provenance)
    assert _code(info) == "provenance_required"
    assert info.value.details["missing"] == missing


@pytest.mark.parametrize("source", SETTINGS.probe_sources)
def test_allowed_sources_are_accepted(source: str) -> None:
    policy.check_probe_source(source, SETTINGS.probe_sources)


@pytest.mark.parametrize("source", [*policy.REFUSED_SOURCES, "Body Worn Camera", "bodycam"])
def test_refused_sources_are_refused_even_if_configured(source: str) -> None:
    for allowed in (SETTINGS.probe_sources, [*SETTINGS.probe_sources, source]):
        with pytest.raises(PolicyRefusal) as info:
            policy.check_probe_source(source, allowed)
        assert _code(info) == "probe_source_refused"


def test_unknown_source_is_refused() -> None:
    with pytest.raises(PolicyRefusal) as info:
        policy.check_probe_source("drone", SETTINGS.probe_sources)
    assert _code(info) == "unknown_probe_source"


@pytest.mark.parametrize(
    ("how_obtained", "source"),
    [
        ("frame grab from BWC footage of the arrest", "body-worn-camera"),
        ("still from Officer Lee's body-worn camera", "body-worn-camera"),
        ("dashcam of unit 12", "in-car-camera"),
        ("screenshot of a live stream on the station monitor", "live-video"),
        ("scan of the composite sketch", "composite-sketch"),
        ("copy of the artist's drawing", "artist-drawing"),
        ("found online, may be a deepfake", "ai-generated"),
        ("morphed from two booking photos", "morphed"),
    ],
)
def test_refused_source_in_free_text_is_refused(how_obtained: str, source: str) -> None:
    with pytest.raises(PolicyRefusal) as info:
        policy.refuse_hidden_source(ProbeProvenance("cctv-still", how_obtained, "Det. Ruiz"))
    assert _code(info) == "probe_source_refused"
    assert info.value.details["source_type"] == source


def test_plain_free_text_provenance_is_accepted() -> None:
    policy.refuse_hidden_source(GOOD)
    policy.refuse_hidden_source(ProbeProvenance("phone-photo", "victim's phone", "the victim"))


def test_allowed_edits_are_accepted() -> None:
    policy.check_edits([], SETTINGS.probe_edits)
    policy.check_edits(SETTINGS.probe_edits, SETTINGS.probe_edits)
    policy.check_edits(["Crop", "color balance", "grayscale"], SETTINGS.probe_edits)


@pytest.mark.parametrize("edit", [*policy.REFUSED_EDITS, "Feature Paste", "face_swap"])
def test_identity_changing_edits_are_refused(edit: str) -> None:
    with pytest.raises(PolicyRefusal) as info:
        policy.check_edits(["crop", edit], [*SETTINGS.probe_edits, edit])
    assert _code(info) == "probe_edit_refused"


def test_unknown_edit_is_refused() -> None:
    with pytest.raises(PolicyRefusal) as info:
        policy.check_edits(["crop", "beautify"], SETTINGS.probe_edits)
    assert _code(info) == "unknown_probe_edit"


# --- input, quality and rate ------------------------------------------------------


def test_one_probe_per_request() -> None:
    for one in (b"\xff\xd8", bytearray(b"\xff\xd8"), memoryview(b"\xff\xd8")):
        policy.require_single_probe(one)
    for batch in ([b"a", b"b"], (b"a",), {"a": b"a"}, None):
        with pytest.raises(PolicyRefusal) as info:
            policy.require_single_probe(batch)
        assert _code(info) == "batch_not_allowed"


def test_quality_gate() -> None:
    sha = "a" * 64
    policy.quality_gate((), {"sharpness": 80.0}, sha, overridden=False)
    policy.quality_gate(("sharpness",), {"sharpness": 3.0}, sha, overridden=True)
    with pytest.raises(PolicyRefusal) as info:
        policy.quality_gate(("sharpness", "brightness"), {"sharpness": 3.0}, sha, False)
    assert _code(info) == "low_quality_probe"
    assert info.value.details["failures"] == ["sharpness", "brightness"]
    assert info.value.details["measures"] == {"sharpness": 3.0}
    assert info.value.details["probe_sha256"] == sha


def test_rate_limit() -> None:
    policy.check_rate_limit(0, 1)
    policy.check_rate_limit(24, 25)
    for count, limit in ((25, 25), (30, 25), (0, 0)):
        with pytest.raises(RateLimited) as info:
            policy.check_rate_limit(count, limit)
        assert _code(info) == "rate_limited"


# --- overrides, assignment and candidate visibility --------------------------------


def test_supervisor_cannot_override_own_search() -> None:
    policy.refuse_self_override("sup", "inv")
    with pytest.raises(PolicyRefusal) as info:
        policy.refuse_self_override("sup", "sup")
    assert _code(info) == "self_override_not_allowed"


def test_only_searches_with_candidates_are_assigned() -> None:
    policy.require_ready_search("candidates_ready")
    for status in ("submitted", "rejected"):
        with pytest.raises(PolicyRefusal) as info:
            policy.require_ready_search(status)
        assert _code(info) == "search_not_ready"


def test_examiner_is_never_the_requester() -> None:
    policy.check_examiner_not_requester("exa", "inv")
    with pytest.raises(PolicyRefusal) as info:
        policy.check_examiner_not_requester("inv", "inv")
    assert _code(info) == "examiner_is_requester"


def test_candidates_only_for_assigned_examiners() -> None:
    policy.check_candidate_access("exa", "inv", ["exa", "exb"])
    with pytest.raises(PermissionDenied) as info:
        policy.check_candidate_access("inv", "inv", ["inv"])
    assert _code(info) == "requester_cannot_view"
    with pytest.raises(PermissionDenied) as info:
        policy.check_candidate_access("exc", "inv", ["exa"])
    assert _code(info) == "not_assigned"
