"""Cross-agency access: no route lets one agency's users touch another agency's cases.

tests/test_api_routes.py proves every route refuses the wrong *role*; this module
proves every route that names a case or a search (or an image of one) refuses the
right role of the wrong *agency*. Agency A (LACRIS) builds real work through the
API: cases, searches in every review state, an examiner's open review, a blind
verification, an escalation, a released lead. Then one user per role of agency B
(LAPD), all certified, calls each such operation of the OpenAPI document on A's
objects with a valid body (one A's own people could send: a 422 for a malformed
body would prove nothing). Each call must be refused with the JSON error body,
audited as that refusal, and leave A's records as they were; the review queue
of B's people lists B's work only. The table below says how to call each
operation; an operation with a case or search path parameter and no entry fails
the test, so a new route is covered as soon as it exists.

Refusal codes: a role the permission matrix allows gets ``case_agency_mismatch``
(a policy refusal, 422, docs/api.md); any other role gets ``forbidden`` (403)
before the object is looked up. Every agency refusal uses that one code: none
answers 404 for an existing case of another agency, and none reveals the state
of A's objects (a closed case is refused the same way as an open one).

Searches are written through the case repository (no face models: this stays
fast); everything after the search runs through the API as A's people do it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image

from facelead.api.app import create_app
from facelead.config import Settings
from facelead.domain.access import PERMISSIONS, Action, Role
from facelead.services import identity as identity_service
from facelead.services.context import Services
from facelead.store import cases as case_repo
from facelead.store import gallery as gallery_repo
from tests.conftest import API_CERTIFIED, USER_PASSWORD, Api
from tests.lifecycle_fixtures import record_search

AGENCY_B = "LAPD"
OUTSIDERS = {role: f"lapd-{role.value}" for role in Role}  # one user per role of agency B
MISMATCH = (422, "case_agency_mismatch")
FORBIDDEN = (403, "forbidden")
SUBJECTS = ("XA-S1", "XA-S2", "XA-S3")
CASE, EMPTY_CASE, CLOSED_CASE, B_CASE = "LA-XA-1", "LA-XA-2", "LA-XA-3", "LAPD-77"
NOTES = "observed in the second frame of the store camera"
FEATURES = {"compared": ["face-shape", "hairline", "eyebrows", "eyes", "nose", "mouth"]}
LEAD = {"disposition": "possible_lead", "notes": NOTES}
IGNORED_TABLES = {"audit_events", "audit_head", "audit_checkpoints"}  # refusals append here
WORK_TABLES = ("cases", "searches", "search_assignments", "reviews", "lead_reports")


@dataclass
class World:
    """Agency A's objects (by what state they are in) and who called what."""

    api: Api
    searches: dict[str, int] = field(default_factory=dict)
    photo: str = ""  # a candidate photo the examiner's open review presents
    b_search: int = 0
    closed: bool = False  # name A's closed case instead of its open ones
    results: dict[tuple[str, str], set[tuple[int, str]]] = field(default_factory=dict)

    def search(self, state: str) -> dict[str, object]:
        return {"search_id": self.searches[state]}

    def case(self, number: str) -> str:
        return CLOSED_CASE if self.closed else number


Build = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Op:
    """One operation on an agency-A object, with a body that would pass in agency A.

    ``action`` is the permission the service checks (and the refusal is audited
    under); ``path`` and ``send`` fill the path parameters and the request.
    ``names_case``: the operation names a case (in its path or its body), so it is
    also called on A's closed case.
    """

    action: Action
    path: Build
    send: Build = lambda w: {}
    names_case: bool = False


def _case(number: str) -> Build:
    return lambda w: {"number": w.case(number)}


def _search(state: str) -> Build:
    return lambda w: w.search(state)


def jpeg(shade: int) -> bytes:
    """A small, real JPEG (reports decode the probe); ``shade`` makes each one unique."""
    out = io.BytesIO()
    Image.new("RGB", (48, 48), (shade, 90, 255 - shade)).save(out, "JPEG")
    return out.getvalue()


SEARCH_FORM = {
    "purpose": "criminal-investigation",
    "justification": "Armed robbery of a pharmacy, suspect on the shop camera",
    "source": "cctv-still",
    "obtained_by": "DVR export by the detective",
    "captured_by": "pharmacy CCTV",
}

OPERATIONS: dict[tuple[str, str], Op] = {
    ("GET", "/cases/{number}"): Op(Action.CASE_READ, _case(CASE), names_case=True),
    ("POST", "/cases/{number}/close"): Op(Action.CASE_CLOSE, _case(EMPTY_CASE), names_case=True),
    ("POST", "/cases/{number}/quality-overrides"): Op(
        Action.SEARCH_QUALITY_OVERRIDE,
        _case(CASE),
        lambda w: {"json": {"probe_sha256": "ab" * 32, "requester": "ivy", "justification": NOTES}},
        names_case=True,
    ),
    ("POST", "/cases/{number}/outcomes"): Op(
        Action.CASE_OUTCOME,
        _case(CASE),
        lambda w: {
            "json": {"search_id": w.searches["released"], "outcome": "unresolved", "notes": NOTES}
        },
        names_case=True,
    ),
    ("POST", "/cases/{number}/disclosure"): Op(Action.CASE_DISCLOSE, _case(CASE), names_case=True),
    ("POST", "/searches"): Op(  # names the case in its form, not its path
        Action.SEARCH_SUBMIT,
        lambda w: {},
        lambda w: {
            "data": {**SEARCH_FORM, "case": w.case(CASE)},
            "files": {"probe": ("still.jpg", jpeg(200), "image/jpeg")},
        },
        names_case=True,
    ),
    ("GET", "/searches/{search_id}"): Op(Action.SEARCH_STATUS, _search("ready")),
    ("GET", "/searches/{search_id}/candidates"): Op(Action.CANDIDATES_VIEW, _search("ready")),
    ("GET", "/searches/{search_id}/probe"): Op(Action.IMAGE_VIEW, _search("ready")),
    ("GET", "/searches/{search_id}/photos/{photo_sha256}"): Op(
        Action.CANDIDATES_VIEW, lambda w: {**w.search("ready"), "photo_sha256": w.photo}
    ),
    ("POST", "/searches/{search_id}/assignments"): Op(
        Action.REVIEW_ASSIGN, _search("ready"), lambda w: {"json": {"examiner": "ezra"}}
    ),
    ("GET", "/searches/{search_id}/review"): Op(Action.CANDIDATES_VIEW, _search("ready")),
    ("POST", "/searches/{search_id}/review/features"): Op(
        Action.REVIEW_DISPOSE, _search("ready"), lambda w: {"json": FEATURES}
    ),
    ("POST", "/searches/{search_id}/review/dispositions"): Op(
        Action.REVIEW_DISPOSE,
        _search("ready"),
        lambda w: {"json": {"decisions": {SUBJECTS[0]: LEAD}, "others": "exclude"}},
    ),
    ("POST", "/searches/{search_id}/review/verification"): Op(
        Action.REVIEW_VERIFY,
        _search("possible"),
        lambda w: {"json": {"decisions": {SUBJECTS[0]: LEAD}}},
    ),
    ("POST", "/searches/{search_id}/review/resolution"): Op(
        Action.REVIEW_RESOLVE,
        _search("escalated"),
        lambda w: {"json": {"decision": "uphold", "notes": NOTES}},
    ),
    ("POST", "/searches/{search_id}/lead-report"): Op(
        Action.LEAD_REPORT, _search("verified"), lambda w: {"params": {"format": "json"}}
    ),
    ("POST", "/searches/{search_id}/corroboration"): Op(
        Action.CORROBORATION_ADD,
        _search("released"),
        lambda w: {"json": {"type": "vehicle-information", "description": NOTES}},
    ),
}


def operations(home: Path) -> set[tuple[str, str]]:
    """Every operation of the OpenAPI document, as (METHOD, path below /api/v1)."""
    spec = create_app(Services(Settings(home=home)), web=False).openapi()
    return {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, item in spec["paths"].items()
        for method in item
    }


def names_case_or_search(route: str) -> bool:
    return "{number}" in route or "{search_id}" in route


def test_every_case_and_search_route_is_in_the_table(tmp_path: Path) -> None:
    """A route naming a case or a search without a cross-agency entry fails here."""
    ops = operations(tmp_path)
    named = {op for op in ops if names_case_or_search(op[1])}
    assert named, "the path parameter names changed: update names_case_or_search"
    missing = sorted(named - set(OPERATIONS))
    assert not missing, f"routes with no cross-agency entry in OPERATIONS: {missing}"
    stale = sorted(set(OPERATIONS) - ops)
    assert not stale, f"OPERATIONS entries for routes that no longer exist: {stale}"


# --- agency A's work, built through the API (searches through the repository) ---


def add_gallery(services: Services) -> list[tuple[int, int, str]]:
    """(subject row id, photo id, photo SHA-256) of each subject, with a real image each."""
    rows = []
    with services.db.session() as session:
        for n, name in enumerate(SUBJECTS):
            subject = gallery_repo.get_or_create_subject(session, name)
            booking = gallery_repo.get_or_create_booking(
                session, subject, f"{name}-B1", None, "LACRIS"
            )
            sha = services.images.put(jpeg(10 + 20 * n))
            photo = gallery_repo.add_photo(
                session, subject=subject, booking=booking, image_sha256=sha, view="frontal",
                width=48, height=48, face_box=[4, 4, 40, 40], landmarks=[], quality={},
            )  # fmt: skip
            rows.append((subject.id, photo.id, sha))
    return rows


def file_search(
    services: Services, number: str, requester: str, shade: int, gallery: list[tuple[int, int, str]]
) -> int:
    """A search with candidates, as submit_search records it (without running the models)."""
    with services.db.session() as session:
        case = case_repo.find_case(session, number)
        assert case is not None
        search = record_search(
            services, session, case, jpeg(shade), requester=requester, candidates=len(gallery)
        )
        hits = [
            case_repo.RankedHit(rank, round(0.9 - rank / 10, 4), subject, photo)
            for rank, (subject, photo, _) in enumerate(gallery, start=1)
        ]
        case_repo.add_candidates(session, search.id, hits)
        return search.id


def review_to(api: Api, search_id: int, state: str) -> None:
    """Walk one search of agency A through the review workflow as A's people do."""
    sid: dict[str, object] = {"search_id": search_id}
    assign = "/searches/{search_id}/assignments"
    api.call("sam", "POST", assign, 201, path=sid, json={"examiner": "erin"})
    api.call("erin", "POST", "/searches/{search_id}/review/features", 200, path=sid, json=FEATURES)
    if state == "ready":
        return
    disposed = {"decisions": {SUBJECTS[0]: LEAD}, "others": "exclude"}
    api.call(
        "erin", "POST", "/searches/{search_id}/review/dispositions", 200, path=sid, json=disposed
    )
    api.call("sam", "POST", assign, 201, path=sid, json={"examiner": "ezra", "role": "verifier"})
    api.call("ezra", "POST", "/searches/{search_id}/review/features", 200, path=sid, json=FEATURES)
    if state == "possible":
        return
    doubt = {"disposition": "inconclusive", "notes": NOTES}
    verdict: dict[str, Any] = {"decisions": {SUBJECTS[0]: doubt if state == "escalated" else LEAD}}
    route = "/searches/{search_id}/review/verification"
    verdict["escalate"] = state == "escalated"
    done = api.call("ezra", "POST", route, 200, path=sid, json=verdict)
    assert done.json()["status"] == ("escalated" if state == "escalated" else "verified")
    if state == "released":
        api.call("ivy", "POST", "/searches/{search_id}/lead-report", 200, path=sid)


def add_outsiders(api: Api) -> None:
    """One certified user per role in agency B, each with an API token."""
    services, admin = api.services, api.installed.admin
    for role, name in OUTSIDERS.items():
        identity_service.add_user(
            services, admin, name, USER_PASSWORD, [role.value], AGENCY_B,
            agency_name="Los Angeles Police Department",
        )  # fmt: skip
        identity_service.certify_user(services, admin, name, API_CERTIFIED)
        api.tokens[name] = identity_service.issue_token(services, admin, name, days=1).token


def build_world(api: Api) -> World:
    """Agency A's cases and searches in every review state; agency B's people and one search."""
    w = World(api)
    for number in (CASE, EMPTY_CASE, CLOSED_CASE):
        api.call(
            "ivy", "POST", "/cases", 201, json={"number": number, "offence_category": "robbery"}
        )
    api.call("ivy", "POST", "/cases/{number}/close", 200, path={"number": CLOSED_CASE})
    gallery = add_gallery(api.services)
    w.photo = gallery[0][2]
    for shade, state in enumerate(("ready", "possible", "escalated", "verified", "released")):
        w.searches[state] = file_search(api.services, CASE, "ivy", 100 + 10 * shade, gallery)
        review_to(api, w.searches[state], state)
    add_outsiders(api)
    investigator = OUTSIDERS[Role.INVESTIGATOR]
    opened = {"number": B_CASE, "offence_category": "robbery"}
    api.call(investigator, "POST", "/cases", 201, json=opened)
    w.b_search = file_search(api.services, B_CASE, investigator, 250, gallery)
    return w


@pytest.fixture
def world(api: Api) -> World:
    return build_world(api)


# --- what must not change, and what must be recorded ---

IGNORED_COLUMNS = {"api_tokens": {"last_used_at"}}  # the caller's own token bookkeeping


def snapshot(services: Services) -> dict[str, list[str]]:
    """Every row of every table but the audit log's, and every stored image file."""
    with services.db.engine.connect() as conn:
        inspector = sa.inspect(conn)
        state: dict[str, list[str]] = {}
        for table in inspector.get_table_names():
            if table in IGNORED_TABLES:
                continue
            skip = IGNORED_COLUMNS.get(table, set())
            columns = [c["name"] for c in inspector.get_columns(table) if c["name"] not in skip]
            quoted = ", ".join(f'"{c}"' for c in columns)
            rows = conn.execute(sa.text(f'SELECT {quoted} FROM "{table}"')).all()
            state[table] = sorted(repr(tuple(row)) for row in rows)
    settings = services.settings
    for folder in (settings.images_dir, settings.probes_dir):
        files = (p for p in folder.rglob("*") if p.is_file())
        state[str(folder)] = sorted(f"{p.relative_to(folder)}:{p.stat().st_size}" for p in files)
    return state


def last_seq(services: Services) -> int:
    with services.db.engine.connect() as conn:
        return int(
            conn.execute(sa.text("SELECT COALESCE(MAX(seq), 0) FROM audit_events")).scalar_one()
        )


def events_since(services: Services, seq: int) -> list[tuple[str, str, str, str | None]]:
    query = "SELECT actor, action, outcome, agency FROM audit_events WHERE seq > :seq ORDER BY seq"
    with services.db.engine.connect() as conn:
        rows = conn.execute(sa.text(query), {"seq": seq})
        return [(r.actor, r.action, r.outcome, r.agency) for r in rows]


def expected(role: Role, op: Op) -> tuple[int, str]:
    """Allowed by role in their own agency: the agency rule refuses; otherwise the role one."""
    return MISMATCH if role in PERMISSIONS[op.action] else FORBIDDEN


def refuse_everyone(w: World, method: str, route: str, path: dict[str, Any]) -> None:
    """Each of agency B's users calls the operation; each is refused, audited, changes nothing."""
    op, services = OPERATIONS[(method, route)], w.api.services
    before = snapshot(services)
    for role, name in OUTSIDERS.items():
        status, code = expected(role, op)
        seq = last_seq(services)
        w.api.call(name, method, route, status, code, path=path, **op.send(w))
        w.results.setdefault((method, route), set()).add((status, code))
        # Each request also records the token's use (auth.login); the action's own event follows.
        recorded = [e for e in events_since(services, seq) if e[1] != Action.AUTH_LOGIN.value]
        refusal = (name, op.action.value, f"refused:{code}", AGENCY_B)
        assert recorded == [refusal], (method, route, name, recorded)
    assert snapshot(services) == before, f"{method} {route}: another agency changed A's records"


def lists_show_only_own_agency(w: World) -> None:
    """The review queue (and a case's search list) shows the caller's agency's work only."""
    waiting = {w.searches[s] for s in ("ready", "possible", "escalated")}
    own = {item["search_id"] for item in w.api.call("sam", "GET", "/review/queue", 200).json()}
    assert own == waiting, "agency A's supervisor should see exactly A's waiting searches"
    queue_roles = [role for role in OUTSIDERS if role in PERMISSIONS[Action.REVIEW_QUEUE]]
    assert queue_roles
    for role in queue_roles:
        items = w.api.call(OUTSIDERS[role], "GET", "/review/queue", 200).json()
        assert [item["search_id"] for item in items] == [w.b_search], (role, items)
        assert {item["case_number"] for item in items} == {B_CASE}
    investigator = OUTSIDERS[Role.INVESTIGATOR]
    shown = w.api.call(investigator, "GET", "/cases/{number}", 200, path={"number": B_CASE})
    assert [s["search_id"] for s in shown.json()["searches"]] == [w.b_search]


def test_another_agency_sees_nothing_and_changes_nothing(world: World) -> None:
    """Every role of agency B, every operation on agency A's objects: refused, audited, no change.

    Operations naming a case are called again on A's closed case: the refusal
    must not depend on (and so reveal) the state of another agency's case.
    One test, so the (slow to build) world is built once per database backend.
    """
    lists_show_only_own_agency(world)
    state = snapshot(world.api.services)
    assert all(state[table] for table in WORK_TABLES), "the snapshot would miss A's work"
    for method, route in sorted(OPERATIONS):
        op = OPERATIONS[(method, route)]
        assert op.names_case == ("{number}" in route or route == "/searches"), route
        for closed in (False, True) if op.names_case else (False,):
            world.closed = closed
            refuse_everyone(world, method, route, op.path(world))
        world.closed = False
    assert set(world.results) == set(OPERATIONS)
    agency_refusals = {key: codes - {FORBIDDEN} for key, codes in world.results.items()}
    assert all(codes == {MISMATCH} for codes in agency_refusals.values()), agency_refusals
