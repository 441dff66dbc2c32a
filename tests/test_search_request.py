"""Policy-enforced search requests through the service layer, on SQLite and PostgreSQL.

Every refusal must leave no search row, no probe row and no probe file,
only its refusal event in the audit log. Candidates reach assigned examiners
only, and every view is audited with the subject ids shown.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image

from facelead.config import Settings
from facelead.domain.access import PERMISSIONS, SYSTEM, Action, Actor, Role
from facelead.domain.cases import ReviewRole, SearchStatus
from facelead.domain.gallery import BookingRef
from facelead.domain.search import ProbeProvenance, SearchReceipt, SearchRequest
from facelead.services.cases import approve_quality_override, close_case, open_case
from facelead.services.context import Services
from facelead.services.gallery import enroll_photo
from facelead.services.search import (
    assign_examiner,
    search_status,
    submit_search,
    view_candidates,
)
from tests.conftest import make_services
from tests.test_cases import INVESTIGATOR, SUPERVISOR, actor, assert_refused, audit_events

DEFAULT_MODEL = Settings().model_id

CASE = "24-000123"
EXAMINER = actor("erin", Role.EXAMINER)
LAPSED = dt.date.today() - dt.timedelta(days=1)
REQUEST = SearchRequest(
    purpose="criminal-investigation",
    justification="Armed robbery of a pharmacy on 5th Street, suspect on the shop camera",
    provenance=ProbeProvenance(
        "cctv-still", "exported from the pharmacy DVR by Det. Ruiz", "pharmacy CCTV", ("crop",)
    ),
    top_k=3,
)
TABLES = ("searches", "probes", "candidates", "search_assignments", "quality_overrides")


def stored(services: Services) -> dict[str, int]:
    """Rows of every search table and files in the probe store."""
    with services.db.engine.connect() as conn:
        counts = {t: int(conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) or 0) for t in TABLES}
    root = services.settings.probes_dir
    counts["probe_files"] = sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0
    return counts


def assert_refused_leaves_nothing(services: Services, call: Callable[[], Any], code: str) -> None:
    """The refusal's code, nothing stored, and exactly one new audit event: the refusal."""
    before, events_before = stored(services), audit_events(services)
    assert_refused(call, code)
    assert stored(services) == before
    new = audit_events(services)[len(events_before) :]
    assert [e.outcome for e in new] == [f"refused:{code}"], new


def _save(im: Image.Image, fmt: str, **options: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


def _frames() -> list[Image.Image]:
    return [Image.new("RGB", (64, 64), (200, 0, 0)), Image.new("RGB", (64, 64), (90, 90, 90))]


def _jpeg(pixels: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Services:
    services = make_services(tmp_path / "home", database_url)
    open_case(services, INVESTIGATOR, CASE, "robbery")
    return services


@pytest.fixture
def probe(meds_dir: Path) -> bytes:
    return (meds_dir / "S001-03-t10_01.jpg").read_bytes()


# --- refusals before any face processing (no models needed) ----------------------


def _with(**changes: Any) -> SearchRequest:
    provenance = dataclasses.replace(REQUEST.provenance, **changes.pop("provenance", {}))
    return dataclasses.replace(REQUEST, provenance=provenance, **changes)


REFUSED_REQUESTS = [
    (_with(purpose=""), "purpose_required"),
    (_with(purpose="curiosity"), "purpose_not_permitted"),
    (_with(justification=" "), "justification_required"),
    (_with(justification="robbery"), "justification_too_short"),
    (_with(justification="Identify protesters at the Main Street rally"), "prohibited_purpose"),
    (_with(justification="Check the immigration status of this man"), "prohibited_purpose"),
    (_with(provenance={"captured_by": ""}), "provenance_required"),
    (_with(provenance={"source_type": "body-worn-camera"}), "probe_source_refused"),
    (_with(provenance={"source_type": "in-car-camera"}), "probe_source_refused"),
    (_with(provenance={"source_type": "composite-sketch"}), "probe_source_refused"),
    (_with(provenance={"source_type": "ai-generated"}), "probe_source_refused"),
    (_with(provenance={"how_obtained": "still from BWC footage"}), "probe_source_refused"),
    (_with(provenance={"source_type": "drone"}), "unknown_probe_source"),
    (_with(provenance={"edits": ("crop", "feature-paste")}), "probe_edit_refused"),
    (_with(provenance={"edits": ("beautify",)}), "unknown_probe_edit"),
    (_with(top_k=0), "invalid_top_k"),
    (_with(top_k=51), "invalid_top_k"),
]


@pytest.mark.parametrize(("request_", "code"), REFUSED_REQUESTS)
def test_refused_request_leaves_only_its_refusal_event(
    services: Services, probe: bytes, request_: SearchRequest, code: str
) -> None:
    def call() -> SearchReceipt:
        return submit_search(services, INVESTIGATOR, CASE, probe, request_)

    assert_refused_leaves_nothing(services, call, code)
    event = audit_events(services)[-1]
    assert (event.action, event.case_number, event.actor) == ("search.submit", CASE, "ivy")
    assert event.details["purpose_text"] == request_.justification
    assert event.details["probe_sha256"] == hashlib.sha256(probe).hexdigest()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2mp41", "video_not_allowed"),
        (b"rtsp://10.0.0.5/stream1", "url_not_allowed"),
        (b"https://example.org/cam.jpg", "url_not_allowed"),
        (b"", "empty_file"),
        (b"this is a text file named .jpg", "unsupported_format"),
    ],
)
def test_input_policy_codes_surface_unchanged(services: Services, data: bytes, code: str) -> None:
    def call() -> SearchReceipt:
        return submit_search(services, INVESTIGATOR, CASE, data, REQUEST)

    assert_refused_leaves_nothing(services, call, code)


def test_animated_and_multi_frame_probes_are_refused(services: Services) -> None:
    first, *rest = _frames()
    for data, code in [
        (_save(first, "GIF", save_all=True, append_images=rest, loop=0), "animated_not_allowed"),
        (_save(first, "PNG", save_all=True, append_images=rest), "animated_not_allowed"),
        (_save(first, "TIFF", save_all=True, append_images=rest), "multi_frame_not_allowed"),
    ]:
        assert_refused_leaves_nothing(
            services, partial(submit_search, services, INVESTIGATOR, CASE, data, REQUEST), code
        )


def test_one_probe_per_request(services: Services, probe: bytes) -> None:
    batch: Any = [probe, probe]
    assert_refused_leaves_nothing(
        services,
        lambda: submit_search(services, INVESTIGATOR, CASE, batch, REQUEST),
        "batch_not_allowed",
    )


def test_case_must_exist_be_open_and_belong_to_the_agency(services: Services, probe: bytes) -> None:
    def submit(who: Actor, case: str) -> Callable[[], SearchReceipt]:
        return lambda: submit_search(services, who, case, probe, REQUEST)

    assert_refused_leaves_nothing(services, submit(INVESTIGATOR, "NOPE-1"), "case_not_found")
    lasd = actor("lou", Role.INVESTIGATOR, agency="LASD")
    assert_refused_leaves_nothing(services, submit(lasd, CASE), "case_agency_mismatch")
    close_case(services, INVESTIGATOR, CASE)
    assert_refused_leaves_nothing(services, submit(INVESTIGATOR, CASE), "case_closed")


def test_only_trained_investigators_submit(services: Services, probe: bytes) -> None:
    for role in Role:
        if role in PERMISSIONS[Action.SEARCH_SUBMIT]:
            continue  # the allowed role succeeds in test_submit_records_search_without_candidates
        who = actor(f"u-{role.value}", role)
        assert_refused_leaves_nothing(
            services, partial(submit_search, services, who, CASE, probe, REQUEST), "forbidden"
        )
    lapsed = actor("old", Role.INVESTIGATOR, certified=LAPSED)
    assert_refused_leaves_nothing(
        services,
        lambda: submit_search(services, lapsed, CASE, probe, REQUEST),
        "training_expired",
    )


def test_rate_limit_refusal_is_flagged(tmp_path: Path, database_url: str, probe: bytes) -> None:
    services = make_services(tmp_path / "limited", database_url)
    services.settings.daily_search_limit = 0
    open_case(services, INVESTIGATOR, CASE, "robbery")
    assert_refused_leaves_nothing(
        services,
        lambda: submit_search(services, INVESTIGATOR, CASE, probe, REQUEST),
        "rate_limited",
    )
    assert audit_events(services)[-1].details["flag"] == "rate_limit"


# --- quality overrides (no models needed to approve) --------------------------------


def test_override_approval_rules(services: Services) -> None:
    sha = "ab" * 32
    why = "Only image of the suspect; blur from the camera, lead still worth a review"
    approve = approve_quality_override
    override_id = approve(services, SUPERVISOR, CASE, sha, "ivy", why)
    assert stored(services)["quality_overrides"] == 1 and override_id > 0
    event = audit_events(services)[-1]
    assert (event.action, event.outcome, event.case_number) == (
        "search.quality_override",
        "ok",
        CASE,
    )
    assert event.details["probe_sha256"] == sha and event.details["justification"] == why
    both = actor("ivy", Role.INVESTIGATOR, Role.SUPERVISOR)
    for who, args, code in [
        (both, (CASE, sha, "ivy", why), "self_override_not_allowed"),
        (SUPERVISOR, (CASE, sha, "ivy", "blurry"), "justification_too_short"),
        (SUPERVISOR, (CASE, "not-a-hash", "ivy", why), "invalid_probe_sha256"),
        (SUPERVISOR, ("NOPE-1", sha, "ivy", why), "case_not_found"),
        (
            actor("sid", Role.SUPERVISOR, agency="LASD"),
            (CASE, sha, "ivy", why),
            "case_agency_mismatch",
        ),
        (
            actor("old", Role.SUPERVISOR, certified=LAPSED),
            (CASE, sha, "ivy", why),
            "training_expired",
        ),
    ]:
        assert_refused_leaves_nothing(services, partial(approve, services, who, *args), code)
    for role in Role:
        if role not in PERMISSIONS[Action.SEARCH_QUALITY_OVERRIDE]:
            who = actor(f"u-{role.value}", role)
            assert_refused_leaves_nothing(
                services, partial(approve, services, who, CASE, sha, "ivy", why), "forbidden"
            )
    close_case(services, SUPERVISOR, CASE)
    assert_refused_leaves_nothing(
        services, lambda: approve(services, SUPERVISOR, CASE, sha, "ivy", why), "case_closed"
    )


# --- real searches (models) ---------------------------------------------------------


@dataclass(frozen=True)
class Searched:
    services: Services
    receipt: SearchReceipt
    probe: bytes


@pytest.fixture
def searched(services: Services, meds_dir: Path, probe: bytes) -> Searched:
    """A small gallery (S001 twice, S002, S003) and one mated search of S001 by ivy."""
    for name, subject in [
        ("S001-01-t10_01.jpg", "S001"),
        ("S001-02-t10_01.jpg", "S001"),
        ("S002-01-t10_01.jpg", "S002"),
        ("S003-01-t10_01.jpg", "S003"),
    ]:
        data = (meds_dir / name).read_bytes()
        enroll_photo(services, SYSTEM, data, name, BookingRef(subject, name[:7], agency="MEDS"))
    receipt = submit_search(services, INVESTIGATOR, CASE, probe, REQUEST)
    return Searched(services, receipt, probe)


@pytest.mark.models
def test_submit_records_search_without_candidates(searched: Searched) -> None:
    services, receipt = searched.services, searched.receipt
    sha = hashlib.sha256(searched.probe).hexdigest()
    assert receipt.status is SearchStatus.CANDIDATES_READY and receipt.case_number == CASE
    assert receipt.probe_sha256 == sha and not receipt.quality_override
    assert not hasattr(receipt, "candidates")
    assert stored(services) == {
        "searches": 1,
        "probes": 1,
        "candidates": 3,
        "search_assignments": 0,
        "quality_overrides": 0,
        "probe_files": 1,
    }
    assert services.probes.exists(sha) and not services.images.exists(sha)
    event = audit_events(services)[-1]
    assert (event.action, event.outcome, event.purpose) == (
        "search.submit",
        "ok",
        "criminal-investigation",
    )
    assert event.details["purpose_text"] == REQUEST.justification
    assert event.details["search_id"] == receipt.search_id
    assert "subject_ids" not in event.details
    status = search_status(services, INVESTIGATOR, receipt.search_id)
    assert status.status is SearchStatus.CANDIDATES_READY and status.requester == "ivy"


@pytest.mark.models
def test_candidates_reach_assigned_examiners_only(searched: Searched) -> None:
    services, search_id = searched.services, searched.receipt.search_id
    assert_refused(lambda: view_candidates(services, INVESTIGATOR, search_id), "forbidden")
    assert_refused_leaves_nothing(
        services, lambda: view_candidates(services, EXAMINER, search_id), "not_assigned"
    )
    assert audit_events(services)[-1].details["search_id"] == search_id
    assign_examiner(services, SUPERVISOR, search_id, "erin")
    result = view_candidates(services, EXAMINER, search_id)
    assert result.search_id == search_id and result.model_id == DEFAULT_MODEL
    assert [c.rank for c in result.candidates] == [1, 2, 3]
    assert result.candidates[0].subject_id == "S001"
    event = audit_events(services)[-1]
    assert (event.action, event.outcome, event.case_number) == ("candidates.view", "ok", CASE)
    assert event.details["search_id"] == search_id
    assert event.details["subject_ids"] == [c.subject_id for c in result.candidates]
    other = actor("ezra", Role.EXAMINER)
    assert_refused(lambda: view_candidates(services, other, search_id), "not_assigned")
    lapsed = actor("erin", Role.EXAMINER, certified=LAPSED)
    assert_refused(lambda: view_candidates(services, lapsed, search_id), "training_expired")


@pytest.mark.models
def test_requester_never_examines_own_search(searched: Searched) -> None:
    services = searched.services
    both = actor("dual", Role.INVESTIGATOR, Role.EXAMINER)
    receipt = submit_search(services, both, CASE, searched.probe, REQUEST)
    assert_refused_leaves_nothing(
        services,
        lambda: assign_examiner(services, SUPERVISOR, receipt.search_id, "dual"),
        "examiner_is_requester",
    )
    assert_refused_leaves_nothing(
        services,
        lambda: assign_examiner(services, both, receipt.search_id, "dual"),
        "examiner_is_requester",
    )
    assert_refused(
        lambda: view_candidates(services, both, receipt.search_id), "requester_cannot_view"
    )
    summary = assign_examiner(services, SUPERVISOR, receipt.search_id, "erin")
    assert summary.examiners == ("erin",)
    assert_refused_leaves_nothing(
        services,
        lambda: assign_examiner(
            services, SUPERVISOR, receipt.search_id, "erin", ReviewRole.VERIFIER
        ),
        "already_assigned",
    )
    verifier = assign_examiner(services, EXAMINER, receipt.search_id, "ezra", ReviewRole.VERIFIER)
    assert verifier.examiners == ("erin", "ezra")
    assert_refused(lambda: assign_examiner(services, SUPERVISOR, 9999, "erin"), "search_not_found")
    assert_refused_leaves_nothing(
        services,
        lambda: assign_examiner(services, SUPERVISOR, receipt.search_id, "9 bad"),
        "invalid_username",
    )
    upper = assign_examiner(services, SUPERVISOR, searched.receipt.search_id, " Erin ")
    assert upper.examiners == ("erin",)  # usernames compare case-insensitively


@pytest.mark.models
def test_role_matrix_for_search_calls(searched: Searched) -> None:
    """Each allowed role succeeds and each other role is refused, for every search call."""
    services, search_id = searched.services, searched.receipt.search_id
    calls: dict[Action, Callable[[Actor, str], object]] = {
        Action.SEARCH_STATUS: lambda who, _: search_status(services, who, search_id),
        Action.REVIEW_ASSIGN: lambda who, name: assign_examiner(services, who, search_id, name),
        Action.CANDIDATES_VIEW: lambda who, _: view_candidates(services, who, search_id),
    }
    for action, call in calls.items():
        for role in Role:
            who = actor(f"{role.value}-{action.value}", role)
            if role in PERMISSIONS[action]:
                if action is Action.CANDIDATES_VIEW:
                    assign_examiner(services, SUPERVISOR, search_id, who.username)
                call(who, f"x-{who.username}")
            else:
                assert_refused(lambda c=call, w=who: c(w, "x"), "forbidden")
    lapsed = actor("sue", Role.SUPERVISOR, certified=LAPSED)
    assert_refused(lambda: assign_examiner(services, lapsed, search_id, "zed"), "training_expired")


@pytest.mark.models
def test_rate_limit_counts_todays_searches(searched: Searched) -> None:
    services = searched.services
    services.settings.daily_search_limit = 2
    submit_search(services, INVESTIGATOR, CASE, searched.probe, REQUEST)
    assert_refused_leaves_nothing(
        services,
        lambda: submit_search(services, INVESTIGATOR, CASE, searched.probe, REQUEST),
        "rate_limited",
    )
    assert audit_events(services)[-1].details["flag"] == "rate_limit"
    other = actor("ian", Role.INVESTIGATOR)  # the limit is per user
    submit_search(services, other, CASE, searched.probe, REQUEST)


@pytest.mark.models
def test_quality_override_lets_one_resubmission_through(searched: Searched, meds_dir: Path) -> None:
    services = searched.services
    bgr = cv2.imread(str(meds_dir / "S001-04-t10_01.jpg"))
    assert bgr is not None
    pixels = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    dark = _jpeg((pixels * 0.08).astype(np.uint8))
    sha = hashlib.sha256(dark).hexdigest()

    def submit(who: Actor = INVESTIGATOR) -> SearchReceipt:
        return submit_search(services, who, CASE, dark, REQUEST)

    assert_refused_leaves_nothing(services, submit, "low_quality_probe")
    refusal = audit_events(services)[-1].details["error"]["details"]
    assert refusal["failures"] and refusal["probe_sha256"] == sha and refusal["measures"]
    why = "Only image of the suspect in a violent robbery; reviewed by supervisor"
    approve_quality_override(services, SUPERVISOR, CASE, sha, "ivy", why)
    other = actor("ian", Role.INVESTIGATOR)
    assert_refused_leaves_nothing(services, lambda: submit(other), "low_quality_probe")
    receipt = submit()
    assert receipt.status is SearchStatus.CANDIDATES_READY and receipt.quality_override
    assert services.probes.exists(sha)
    event = audit_events(services)[-1]
    assert event.details["quality_override_id"] and event.outcome == "ok"
    assert search_status(services, SUPERVISOR, receipt.search_id).quality_override
    assert_refused(submit, "low_quality_probe")  # used up: one override, one search
