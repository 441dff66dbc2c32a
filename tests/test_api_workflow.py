"""One MEDS search through the REST API, from enrolment to a closed, disclosed case.

Real face models, real accounts and tokens, on SQLite and PostgreSQL. Every
step is taken by a role allowed to take it and refused (403) for one that is
not; the candidates stay with the assigned examiners throughout.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from facelead import DISCLAIMER
from tests.conftest import Api

pytestmark = pytest.mark.models

ROUTES = {
    ("POST", "/gallery/photos"),
    ("POST", "/searches"),
    ("GET", "/searches/{search_id}"),
    ("GET", "/review/queue"),
    ("POST", "/searches/{search_id}/assignments"),
    ("GET", "/searches/{search_id}/review"),
    ("GET", "/searches/{search_id}/probe"),
    ("GET", "/searches/{search_id}/photos/{photo_sha256}"),
    ("POST", "/searches/{search_id}/review/features"),
    ("POST", "/searches/{search_id}/review/dispositions"),
    ("GET", "/searches/{search_id}/candidates"),
    ("POST", "/searches/{search_id}/review/verification"),
    ("POST", "/searches/{search_id}/review/resolution"),
    ("POST", "/searches/{search_id}/lead-report"),
    ("POST", "/searches/{search_id}/corroboration"),
    ("POST", "/cases/{number}/outcomes"),
}
CASE = "LA-2025-0042"
GALLERY = [  # file, subject, booking, booking date
    ("S001-01-t10_01.jpg", "S001", "S001-01", "2011-03-02"),
    ("S002-01-t10_01.jpg", "S002", "S002-01", "2022-01-05"),
    ("S003-01-t10_01.jpg", "S003", "S003-01", None),
    ("S004-01-t10_01.jpg", "S004", "S004-01", "2023-08-30"),
]
PROBE = "S001-03-t10_01.jpg"
SEARCH = {
    "case": CASE,
    "purpose": "criminal-investigation",
    "justification": "Armed robbery of a pharmacy on 5th Street, suspect on the shop camera",
    "source": "cctv-still",
    "obtained_by": "DVR export by Det. Ruiz",
    "captured_by": "pharmacy CCTV",
    "edits": ["crop"],
    "top_k": "4",
}
FEATURES = {"compared": ["face-shape", "hairline", "eyebrows", "eyes", "nose", "mouth"]}
LEAD = {"disposition": "possible_lead", "notes": "same ear shape and scar over the left eyebrow"}


def last_event(api: Api) -> tuple[str, str, str, list[str]]:
    with api.services.db.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT actor, action, outcome, details FROM audit_events ORDER BY seq DESC")
        ).first()
    assert row is not None
    details = row.details if isinstance(row.details, dict) else json.loads(row.details)
    return row.actor, row.action, row.outcome, details.get("subject_ids", [])


def enrol(api: Api, meds_dir: Path) -> None:
    for file, subject, booking, when in GALLERY:
        fields = {"subject_id": subject, "booking_number": booking, "agency": "MEDS"}
        fields |= {"booking_date": when} if when else {}
        image = {"image": (file, (meds_dir / file).read_bytes(), "image/jpeg")}
        result = api.call("rita", "POST", "/gallery/photos", 201, data=fields, files=image).json()
        assert (result["status"], result["subject_id"]) == ("enrolled", subject)
    image = {"image": (file, (meds_dir / GALLERY[0][0]).read_bytes(), "image/jpeg")}
    fields = {"subject_id": "S001", "booking_number": "S001-01"}
    api.call("ivy", "POST", "/gallery/photos", 403, "forbidden", data=fields, files=image)


def submit(api: Api, meds_dir: Path) -> int:
    api.call("ivy", "POST", "/cases", 201, json={"number": CASE, "offence_category": "robbery"})
    probe = {"probe": (PROBE, (meds_dir / PROBE).read_bytes(), "image/jpeg")}
    api.call("erin", "POST", "/searches", 403, "forbidden", data=SEARCH, files=probe)
    receipt = api.call("ivy", "POST", "/searches", 201, data=SEARCH, files=probe).json()
    assert receipt["status"] == "candidates_ready" and receipt["disclaimer"] == DISCLAIMER
    assert "candidates" not in receipt
    sid = {"search_id": receipt["search_id"]}
    api.call("rita", "GET", "/searches/{search_id}", 403, "forbidden", path=sid)
    status = api.call("ivy", "GET", "/searches/{search_id}", 200, path=sid).json()
    assert status["status"] == "candidates_ready" and status["examiners"] == []
    return int(receipt["search_id"])


def first_review(api: Api, sid: dict[str, int], meds_dir: Path) -> None:
    """Blind review by erin: packet, images, features, dispositions; S001 is the lead."""
    api.call("ivy", "GET", "/review/queue", 403, "forbidden")
    queue = api.call("sam", "GET", "/review/queue", 200).json()
    assert [(q["search_id"], q["waiting_for"]) for q in queue] == [
        (sid["search_id"], "examiner review")
    ]
    assign = {"examiner": "erin"}
    route = "/searches/{search_id}/assignments"
    api.call("ivy", "POST", route, 403, "forbidden", path=sid, json=assign)
    api.call("sam", "POST", route, 201, path=sid, json=assign)

    api.call("ivy", "GET", "/searches/{search_id}/review", 403, path=sid)
    packet = api.call("erin", "GET", "/searches/{search_id}/review", 200, path=sid).json()
    assert packet["blind"] and not packet["scores_visible"]
    assert packet["provenance"] == {
        "source_type": "cctv-still",
        "how_obtained": "DVR export by Det. Ruiz",
        "captured_by": "pharmacy CCTV",
        "edits": ["crop"],
    }
    assert {c["subject_id"] for c in packet["candidates"]} == {"S001", "S002", "S003", "S004"}
    assert all(c["score"] is None and c["rank"] is None for c in packet["candidates"])
    # The ranked list stays closed while erin's blind review is open.
    api.call("erin", "GET", "/searches/{search_id}/candidates", 403, "blind_review", path=sid)

    probe = api.call("ivy", "GET", "/searches/{search_id}/probe", 200, path=sid)
    assert probe.content == (meds_dir / PROBE).read_bytes()
    assert probe.headers["content-type"] == "image/jpeg"
    assert probe.headers["cache-control"] == "no-store"
    api.call("erin", "GET", "/searches/{search_id}/probe", 200, path=sid)
    api.call("audra", "GET", "/searches/{search_id}/probe", 403, "forbidden", path=sid)
    s001 = next(c for c in packet["candidates"] if c["subject_id"] == "S001")
    photo = {**sid, "photo_sha256": s001["photo_sha256"]}
    route = "/searches/{search_id}/photos/{photo_sha256}"
    image = api.call("erin", "GET", route, 200, path=photo)
    assert hashlib.sha256(image.content).hexdigest() == s001["photo_sha256"]
    assert image.headers["cache-control"] == "no-store"
    assert last_event(api) == ("erin", "candidates.view", "ok", ["S001"])
    api.call("ivy", "GET", route, 403, "forbidden", path=photo)  # never the requester
    api.call("ezra", "GET", route, 403, "not_assigned", path=photo)
    other = {**sid, "photo_sha256": hashlib.sha256(b"not a candidate").hexdigest()}
    api.call("erin", "GET", route, 404, "image_not_found", path=other)

    route = "/searches/{search_id}/review/features"
    api.call("ivy", "POST", route, 403, path=sid, json=FEATURES)
    api.call("erin", "POST", route, 200, path=sid, json=FEATURES)
    decisions = {"decisions": {"S001": LEAD}, "others": "exclude"}
    route = "/searches/{search_id}/review/dispositions"
    api.call("ivy", "POST", route, 403, path=sid, json=decisions)
    done = api.call("erin", "POST", route, 200, path=sid, json=decisions).json()
    assert done["status"] == "possible_lead"


def candidates_only_for_assigned_examiners(api: Api, sid: dict[str, int]) -> None:
    route = "/searches/{search_id}/candidates"
    listed = api.call("erin", "GET", route, 200, path=sid).json()
    assert listed["candidates"][0]["subject_id"] == "S001"  # the mate, at rank 1
    assert [c["rank"] for c in listed["candidates"]] == [1, 2, 3, 4]
    assert listed["disclaimer"] == DISCLAIMER
    api.call("ezra", "GET", route, 403, "not_assigned", path=sid)  # an examiner, not assigned
    for who in ("ivy", "sam", "rita", "audra"):  # requester, supervisor, records, auditor
        api.call(who, "GET", route, 403, "forbidden", path=sid)


def verification(api: Api, sid: dict[str, int]) -> None:
    """ezra disagrees and escalates; sam (who took no part in the review) upholds the lead."""
    verifier = {"examiner": "ezra", "role": "verifier"}
    api.call("sam", "POST", "/searches/{search_id}/assignments", 201, path=sid, json=verifier)
    seen = api.call("ezra", "GET", "/searches/{search_id}/review", 200, path=sid).json()
    assert [c["subject_id"] for c in seen["candidates"]] == ["S001"]
    api.call("ezra", "POST", "/searches/{search_id}/review/features", 200, path=sid, json=FEATURES)
    disagree = {
        "decisions": {"S001": {"disposition": "inconclusive", "notes": "ear hidden by hair"}},
        "escalate": True,
    }
    route = "/searches/{search_id}/review/verification"
    api.call("ivy", "POST", route, 403, path=sid, json=disagree)
    escalated = api.call("ezra", "POST", route, 200, path=sid, json=disagree).json()
    assert escalated["status"] == "escalated"
    uphold = {"decision": "uphold", "notes": "scar and ear helix visible in the second frame"}
    route = "/searches/{search_id}/review/resolution"
    api.call("erin", "POST", route, 403, "forbidden", path=sid, json=uphold)
    resolved = api.call("sam", "POST", route, 200, path=sid, json=uphold).json()
    assert resolved["status"] == "verified"


def release_and_close(api: Api, sid: dict[str, int]) -> None:
    route = "/searches/{search_id}/lead-report"
    api.call("audra", "POST", route, 403, "forbidden", path=sid)
    report = api.call("ivy", "POST", route, 200, path=sid).json()
    assert report["kind"] == "lead" and [x["subject_id"] for x in report["leads"]] == ["S001"]
    assert "not a positive identification" in report["disclaimer"].lower()
    pdf = api.call("ivy", "POST", route, 200, path=sid, params={"format": "pdf"})
    assert pdf.content.startswith(b"%PDF") and pdf.headers["content-type"] == "application/pdf"
    html = api.call("ivy", "POST", route, 200, path=sid, params={"format": "html"})
    assert "img-src data:" in html.headers["content-security-policy"]

    evidence = {
        "type": "vehicle-information",
        "description": "Registered owner of the getaway car per DMV record 7ABC123",
    }
    route = "/searches/{search_id}/corroboration"
    api.call("erin", "POST", route, 403, "forbidden", path=sid, json=evidence)
    item = api.call("ivy", "POST", route, 201, path=sid, json=evidence).json()
    assert (item["supports"], item["status"]) == (True, "corroborated")

    outcome = {
        "search_id": sid["search_id"],
        "outcome": "confirmed",
        "notes": "Suspect arrested on the DMV and witness evidence",
    }
    route, case = "/cases/{number}/outcomes", {"number": CASE}
    api.call("erin", "POST", route, 403, "forbidden", path=case, json=outcome)
    closed = api.call("ivy", "POST", route, 200, path=case, json=outcome).json()
    assert closed["status"] == "closed"
    api.call("ivy", "POST", "/cases/{number}/close", 200, path=case)


def test_meds_search_through_the_api(api: Api, meds_dir: Path) -> None:
    enrol(api, meds_dir)
    sid = {"search_id": submit(api, meds_dir)}
    first_review(api, sid, meds_dir)
    candidates_only_for_assigned_examiners(api, sid)
    verification(api, sid)
    release_and_close(api, sid)
    api.assert_covered(ROUTES)
    verified = api.call("audra", "GET", "/audit/verify", 200).json()
    assert verified["intact"] is True
