"""A seeded mix of concurrent API clients against ``facelead serve --workers 2``.

Once on SQLite (WAL) and once on PostgreSQL (conftest's ``database_url``), real
models, real processes, loopback only. Every person logs in over the API
(password + TOTP) for a bearer session; then, at the same time:

- records clients enrol booking photos, two of them the same new subject from
  two clients at once and one the same bytes from two clients at once;
- investigators search in a bounded loop, probes of the subjects about to be
  sealed among them, until a few searches after the seals were seen committed;
- examiner/verifier pipelines review different searches of different cases,
  and on one search two examiners dispose at once and then two verifiers
  verify at once (exactly one of each may win);
- ``facelead gallery seal`` runs for two subjects, each in its own process.

Afterwards: no 5xx and no unexpected status; every 2xx enrolment is in the
database exactly once and no subject is duplicated; every accepted review step
is recorded and each search's state is that of its accepted steps (one first
review and one verification per round: no lost update); no search committed
after a seal (audit order) or sent after the seal was seen committed (clock)
lists the sealed subject, while searches before it do (so the test can tell);
the audit chain is linear and ``facelead audit verify`` and ``facelead doctor``
pass. The request counts by kind are printed. ``make stress``
(FACELEAD_STRESS=1) runs more clients, pipelines and seals.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from facelead.domain.identity import totp_code
from facelead.store.models import utcnow
from tests import serve_helpers
from tests.conftest import USER_PASSWORD, Installed, install
from tests.serve_helpers import assert_linear_chain, audit_details

pytestmark = pytest.mark.models

STRESS = os.environ.get("FACELEAD_STRESS") == "1"
CERTIFIED = dt.date.today() + dt.timedelta(days=90)
PEOPLE = {
    "rita": "records",
    "rhea": "records",
    "ivy": "investigator",
    "ian": "investigator",
    "erin": "examiner",
    "ezra": "examiner",
    "elle": "examiner",
    "eli": "examiner",
    "sam": "supervisor",
    "audra": "auditor",
}
EXAMINERS = ("erin", "ezra", "elle", "eli")
FEATURES = {"compared": ["face-shape", "hairline", "eyebrows", "eyes", "nose", "mouth"]}
SEARCH = {
    "purpose": "criminal-investigation",
    "justification": "Armed robbery of a pharmacy on 5th Street, suspect on the shop camera",
    "source": "cctv-still",
    "obtained_by": "DVR export by Det. Ruiz",
    "captured_by": "pharmacy CCTV",
    "top_k": "5",
}
TIMEOUT_S = 300  # per request: a bound, not a speed assertion
HELD_S = 60.0  # how long a contested request waits for its rival to be ready
LOST_RACE = {"dispose": "review_already_done", "verify": "not_ready_for_verification"}
"""The refusal of the second of two reviewers deciding one search at the same moment."""
STATUS = sa.text("SELECT status FROM searches WHERE id = :s")
EVENTS = sa.text(
    "SELECT object_id, seq, details FROM audit_events WHERE action = :a AND outcome = 'ok'"
)


@dataclass(frozen=True)
class Plan:
    """How much of each kind of work one run does (short in make test, long in stress)."""

    seed: int
    workers: int
    base: tuple[str, ...]  # bookings enrolled before the mix (MEDS "Sxxx-nn")
    sealed: tuple[tuple[str, str], ...]  # (enrolled booking, later booking used as probe)
    mates: tuple[tuple[str, str], ...]  # (enrolled booking, probe) of review searches
    contested: int  # of those review searches, how many have two examiners racing
    enrol_lanes: tuple[tuple[str, ...], ...]  # per records client, its own bookings
    twins: tuple[tuple[str, str], ...]  # same subject, two bookings, two clients at once
    same_bytes: tuple[str, ...]  # one booking sent by two clients at once
    searchers: int
    max_searches: int  # per search client: the loop's bound
    after_seal: int  # searches of each sealed probe per client once the seals are seen


SHORT = Plan(
    seed=10,
    workers=2,
    base=("S002-01", "S003-01", "S004-01", "S005-01"),
    sealed=(("S001-01", "S001-03"), ("S006-01", "S006-02")),
    mates=(("S015-01", "S015-02"), ("S022-01", "S022-02"), ("S023-01", "S023-02")),
    contested=1,
    enrol_lanes=(("S007-01", "S009-01"), ("S010-01", "S011-01")),
    twins=(("S044-01", "S044-02"),),
    same_bytes=("S046-01",),
    searchers=2,
    max_searches=30,
    after_seal=1,
)
LONG = Plan(
    seed=1010,
    workers=2,
    base=("S002-01", "S003-01", "S004-01", "S005-01", "S012-01", "S014-01"),
    sealed=(
        ("S001-01", "S001-03"),
        ("S006-01", "S006-02"),
        ("S008-01", "S008-02"),
        ("S013-01", "S013-02"),
    ),
    mates=(
        ("S015-01", "S015-02"),
        ("S022-01", "S022-02"),
        ("S023-01", "S023-02"),
        ("S029-01", "S029-02"),
        ("S030-01", "S030-02"),
        ("S031-01", "S031-02"),
        ("S032-01", "S032-02"),
        ("S033-01", "S033-02"),
    ),
    contested=3,
    enrol_lanes=(
        ("S007-01", "S009-01", "S016-01", "S017-01", "S018-01"),
        ("S010-01", "S011-01", "S019-01", "S020-01", "S021-01"),
        ("S024-01", "S025-01", "S026-01", "S027-01", "S028-01"),
    ),
    twins=(("S044-01", "S044-02"), ("S048-01", "S048-02"), ("S036-01", "S036-02")),
    same_bytes=("S046-01", "S034-01", "S035-01"),
    searchers=4,
    max_searches=60,
    after_seal=3,
)


@dataclass(frozen=True)
class Sent:
    """One request as the client saw it."""

    kind: str
    who: str
    status: int
    expected: bool
    started: float  # time.monotonic() when it was sent
    body: Any  # the JSON answer (or the start of the text)
    sent: dict[str, Any]  # what the test needs to check it later


@dataclass
class Ledger:
    """Every request of the run, appended from any client thread."""

    entries: list[Sent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: Sent) -> None:
        with self.lock:
            self.entries.append(entry)

    def of(self, kind: str) -> list[Sent]:
        return [e for e in self.entries if e.kind == kind]

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(e.kind for e in self.entries).items()))

    def statuses(self) -> dict[str, int]:
        return dict(sorted(Counter(f"{e.kind} {e.status}" for e in self.entries).items()))


@dataclass
class Client:
    """One API client (its own connection) acting as ``who`` with a bearer session."""

    base: str
    who: str
    token: str
    ledger: Ledger

    def call(
        self,
        kind: str,
        method: str,
        path: str,
        expect: set[int],
        sent: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Sent:
        """Send one request, record it, and return what came back (never raises on status)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        started = time.monotonic()
        with httpx.Client(base_url=self.base, timeout=TIMEOUT_S) as http:
            response = http.request(method, "/api/v1" + path, headers=headers, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = response.text[:300]
        status = response.status_code
        entry = Sent(kind, self.who, status, status in expect, started, body, sent or {})
        self.ledger.add(entry)
        return entry

    def must(self, kind: str, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        """A step a pipeline cannot go on without: anything but ``expect`` stops it."""
        entry = self.call(kind, method, path, {expect}, **kwargs)
        if entry.status != expect:
            raise AssertionError(f"{self.who} {method} {path}: {entry.status} {entry.body}")
        return entry.body


@dataclass
class World:
    """One deployment: its home and database, the running server and who is logged in."""

    installed: Installed
    url: str
    meds: Path
    plan: Plan
    ledger: Ledger = field(default_factory=Ledger)
    tokens: dict[str, str] = field(default_factory=dict)
    base: str = ""

    @property
    def home(self) -> Path:
        return self.installed.services.settings.resolved_home

    def env(self, **extra: str) -> dict[str, str]:
        return serve_helpers.facelead_env(self.url, self.home, **extra)

    def client(self, who: str) -> Client:
        return Client(self.base, who, self.tokens[who], self.ledger)

    def image(self, booking: str) -> bytes:
        return (self.meds / f"{booking}-t10_01.jpg").read_bytes()

    def subject_row(self, external_id: str) -> int:
        with self.installed.services.db.engine.connect() as conn:
            query = sa.text("SELECT id FROM subjects WHERE external_id = :s")
            return int(conn.scalar(query, {"s": external_id}))


def log_in(world: World, who: str) -> None:
    """Password + TOTP over the API for a session token (each person once: codes are single-use)."""
    code = totp_code(world.installed.secrets[who], utcnow())
    started = time.monotonic()
    body = {"username": who, "password": USER_PASSWORD, "totp": code}
    response = httpx.post(world.base + "/api/v1/auth/login", json=body, timeout=TIMEOUT_S)
    world.ledger.add(
        Sent("login", who, response.status_code, response.status_code == 200, started, {}, {})
    )
    assert response.status_code == 200, response.text[:300]
    world.tokens[who] = response.json()["token"]


def enrol(client: Client, world: World, booking: str, kind: str = "enrol") -> Sent:
    fields = {"subject_id": booking.split("-")[0], "booking_number": booking, "agency": "MEDS"}
    image = {"image": (f"{booking}.jpg", world.image(booking), "image/jpeg")}
    sha = hashlib.sha256(world.image(booking)).hexdigest()
    sent = {**fields, "sha256": sha}
    return client.call(kind, "POST", "/gallery/photos", {201}, sent, data=fields, files=image)


def search(client: Client, world: World, case: str, probe: str, kind: str = "search") -> Sent:
    image = {"probe": (f"{probe}.jpg", world.image(probe), "image/jpeg")}
    form = {**SEARCH, "case": case}
    return client.call(kind, "POST", "/searches", {201}, {"probe": probe}, data=form, files=image)


def set_up(world: World) -> list[int]:
    """Log everyone in, open the cases, enrol the base gallery, submit the searches to review.

    Returns the review searches' ids, in the order of ``plan.mates``."""
    plan = world.plan
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda who: log_in(world, who), PEOPLE))
    ivy, records = world.client("ivy"), [world.client("rita"), world.client("rhea")]
    cases = [f"C-REV-{n}" for n in range(len(plan.mates))]
    cases += [f"C-SEARCH-{n}" for n in range(plan.searchers)]
    for case in cases:
        ivy.must(
            "setup", "POST", "/cases", 201, json={"number": case, "offence_category": "robbery"}
        )
    enrolled = [*plan.base, *(s for s, _ in plan.sealed), *(m for m, _ in plan.mates)]
    with ThreadPoolExecutor(2) as pool:  # one per worker
        done = pool.map(
            lambda n: enrol(records[n % 2], world, enrolled[n], "setup"), range(len(enrolled))
        )
        assert all(e.status == 201 for e in done)
    found = [search(ivy, world, f"C-REV-{n}", p, "setup") for n, (_, p) in enumerate(plan.mates)]
    assert all(s.status == 201 for s in found), [s.body for s in found]
    return [int(s.body["search_id"]) for s in found]


def enrol_lane(world: World, lane: int, barriers: list[threading.Barrier]) -> None:
    """A records client: its own bookings in a seeded order; the first two clients also
    send each contested booking at the same moment (one barrier per contested booking,
    met in the same order by both, so neither waits for the other in a cycle)."""
    plan = world.plan
    client = world.client(("rita", "rhea")[lane % 2])
    rng = random.Random(plan.seed * 100 + lane)
    own = list(plan.enrol_lanes[lane])
    rng.shuffle(own)
    contested = [twin[lane] for twin in plan.twins] + list(plan.same_bytes) if lane < 2 else []
    steps: list[tuple[str, threading.Barrier | None]] = [(b, None) for b in own]
    slots = sorted(rng.randrange(len(own) + 1) for _ in contested)
    for slot, booking, barrier in reversed(list(zip(slots, contested, barriers, strict=False))):
        steps.insert(slot, (booking, barrier))  # from the last: contested keep their order
    for booking, rival in steps:
        if rival is not None:
            held(rival)
        enrol(client, world, booking, "enrol" if rival is None else "enrol-contested")


def held(barrier: threading.Barrier) -> None:
    """Wait for the rival request to be ready too; a broken barrier only loses the overlap."""
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=HELD_S)


@dataclass
class Signals:
    """What the search clients and the seal driver tell each other."""

    ready: list[threading.Event]  # each search client had its first answers
    sealed: threading.Event = field(default_factory=threading.Event)  # every seal seen


def search_lane(world: World, n: int, signals: Signals) -> None:
    """An investigator searching in a bounded loop: every sealed subject's probe first (so
    each has a search before its seal), then seeded picks until the seals are seen, then
    ``after_seal`` more searches of each sealed probe."""
    plan = world.plan
    client, case = world.client(("ivy", "ian")[n % 2]), f"C-SEARCH-{n}"
    targets = [probe for _, probe in plan.sealed]
    probes = targets + [probe for _, probe in plan.mates]
    rng = random.Random(plan.seed * 1000 + n)
    try:
        for probe in targets[n % len(targets) :] + targets[: n % len(targets)]:
            search(client, world, case, probe)
    finally:
        signals.ready[n].set()  # a failed client must not keep the seals waiting
    for _ in range(plan.max_searches):
        if signals.sealed.is_set():
            break
        search(client, world, case, rng.choice(probes))
    assert signals.sealed.wait(timeout=TIMEOUT_S), "the seals were never seen committed"
    for probe in targets * plan.after_seal:
        search(client, world, case, probe)


@dataclass(frozen=True)
class SealRun:
    subject: str
    order: str
    seen: float  # monotonic time the tombstone was first visible (commit happened before)
    returncode: int
    output: str


def seal_driver(world: World, signals: Signals) -> list[SealRun]:
    """Once every search client had answers, seal each subject in its own ``facelead gallery
    seal`` process at once, and note when each seal's tombstone became visible."""
    try:
        return seal_all(world, signals)
    finally:
        signals.sealed.set()  # searchers never wait for a seal that will not come


def seal_all(world: World, signals: Signals) -> list[SealRun]:
    for ready in signals.ready:
        assert ready.wait(timeout=TIMEOUT_S), "a search client never had an answer"
    env = world.env(FACELEAD_TOKEN=world.tokens["rita"])
    sealed = [booking.split("-")[0] for booking, _ in world.plan.sealed]
    orders = {f"LASC-SEAL-{n}": subject for n, subject in enumerate(sealed)}
    procs = {
        order: command(env, "gallery", "seal", subject, "--order", order)
        for order, subject in orders.items()
    }
    seen = watch_tombstones(world, procs)
    signals.sealed.set()
    outputs = {order: proc.communicate(timeout=TIMEOUT_S)[0] for order, proc in procs.items()}
    return [
        SealRun(
            subject, order, seen[order], procs[order].returncode, outputs[order].decode()[-800:]
        )
        for order, subject in orders.items()
    ]


def command(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """A ``facelead`` command in its own process, output captured."""
    return subprocess.Popen(
        [str(serve_helpers.FACELEAD), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def watch_tombstones(world: World, procs: dict[str, subprocess.Popen[bytes]]) -> dict[str, float]:
    """Poll (bounded) until each order's tombstone is visible to another connection."""
    seen: dict[str, float] = {}
    query = sa.text("SELECT order_ref FROM gallery_tombstones")
    engine = world.installed.services.db.engine
    for _ in range(30000):  # 10 ms apart: until every seal is seen or its process ended
        with engine.connect() as conn:
            now, visible = time.monotonic(), set(conn.scalars(query))
        seen |= {order: now for order in visible if order in procs and order not in seen}
        if len(seen) == len(procs) or all(p.poll() is not None for p in procs.values()):
            break
        time.sleep(0.01)
    return {order: seen.get(order, time.monotonic()) for order in procs}


@dataclass(frozen=True)
class Review:
    """One review search of the mix and who works on it."""

    search_id: int
    mate: str  # the probe's subject: the one possible lead
    examiners: tuple[str, ...]  # one, or two who dispose at the same moment
    verifiers: tuple[str, ...]  # one, or two who verify at the same moment

    @property
    def path(self) -> str:
        return f"/searches/{self.search_id}"


def reviews_of(plan: Plan, search_ids: list[int]) -> list[Review]:
    """Examiners rotate over the searches; the first ``contested`` get two of each."""
    out = []
    for n, (sid, (booking, _)) in enumerate(zip(search_ids, plan.mates, strict=True)):
        pool = EXAMINERS[n % 4 :] + EXAMINERS[: n % 4]
        pairs = n < plan.contested
        examiners, verifiers = (pool[:2], pool[2:]) if pairs else (pool[:1], pool[1:2])
        out.append(Review(sid, booking.split("-")[0], examiners, verifiers))
    return out


def review_pipeline(world: World, review: Review) -> None:
    """Supervisor assigns; examiner(s) look, compare, dispose, and the one who won sees the
    ranked list (blind review over); supervisor assigns the verifier(s); they look,
    compare, verify. The requester checks the status in between."""
    sam, ivy = world.client("sam"), world.client("ivy")
    sam.must("queue", "GET", "/review/queue", 200)
    for role, people, step in (
        ("examiner", review.examiners, "dispose"),
        ("verifier", review.verifiers, "verify"),
    ):
        for who in people:
            body = {"examiner": who, "role": role}
            sam.must("assign", "POST", review.path + "/assignments", 201, json=body)
            look(world.client(who), review)
        for who in race(world, review, step, people):
            if step == "dispose":
                world.client(who).call("candidates", "GET", review.path + "/candidates", {200})
        ivy.must("status", "GET", review.path, 200)


def look(client: Client, review: Review) -> None:
    """The reviewer's packet, the mate's photo, the features compared."""
    packet = client.must("packet", "GET", review.path + "/review", 200)
    mate = next(c for c in packet["candidates"] if c["subject_id"] == review.mate)
    photo = f"{review.path}/photos/{mate['photo_sha256']}"
    client.call("photo", "GET", photo, {200})
    client.must("features", "POST", review.path + "/review/features", 200, json=FEATURES)


def race(world: World, review: Review, step: str, people: tuple[str, ...]) -> list[str]:
    """Each reviewer's decision, all sent at the same moment (one thread each); who won."""
    lead = {review.mate: {"disposition": "possible_lead", "notes": "same scar and ear helix"}}
    route, body = {
        "dispose": ("/review/dispositions", {"decisions": lead, "others": "exclude"}),
        "verify": ("/review/verification", {"decisions": lead}),
    }[step]
    barrier = threading.Barrier(len(people))
    expect = {200, 409} if len(people) > 1 else {200}

    def decide(who: str) -> Sent:
        held(barrier)
        sent = {"search_id": review.search_id}
        return world.client(who).call(step, "POST", review.path + route, expect, sent, json=body)

    done = run_threads([partial(decide, who) for who in people])
    return [e.who for e in done if isinstance(e, Sent) and e.status == 200]


def run_threads(calls: list[Callable[[], object]]) -> list[object]:
    """Run each call in its own thread; their results, re-raising the first failure."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


def run_mix(world: World, reviews: list[Review]) -> list[SealRun]:
    """Every client of the mix at once, each in its own thread; returns the seals."""
    plan = world.plan
    signals = Signals([threading.Event() for _ in range(plan.searchers)])
    contested = len(plan.twins) + len(plan.same_bytes)
    barriers = [threading.Barrier(2) for _ in range(contested)]
    calls: list[Callable[[], object]] = [lambda: seal_driver(world, signals)]
    calls += [partial(enrol_lane, world, lane, barriers) for lane in range(len(plan.enrol_lanes))]
    calls += [partial(search_lane, world, n, signals) for n in range(plan.searchers)]
    calls += [partial(review_pipeline, world, review) for review in reviews]
    results = run_threads(calls)
    seals = results[0]
    assert isinstance(seals, list)
    return seals


def check_statuses(ledger: Ledger) -> None:
    """No 5xx, and every request ended as its kind expects (409 only for a lost race)."""
    errors = [(e.kind, e.who, e.status, e.body) for e in ledger.entries if e.status >= 500]
    assert errors == [], errors
    unexpected = [(e.kind, e.who, e.status, e.body) for e in ledger.entries if not e.expected]
    assert unexpected == [], unexpected


def check_enrolments(world: World) -> int:
    """Every 2xx enrolment is in the database once, under its subject; no subject twice."""
    plan, sealed = world.plan, {booking for booking, _ in world.plan.sealed}
    # setup and mix enrolments alike
    accepted = [e for e in world.ledger.entries if e.status == 201 and "sha256" in e.sent]
    query = "SELECT p.id, p.image_sha256, s.external_id FROM photos p JOIN subjects s "
    with world.installed.services.db.engine.connect() as conn:
        rows = conn.execute(sa.text(query + "ON s.id = p.subject_id"))
        photos = {int(pid): (sha, subject) for pid, sha, subject in rows}
        subjects = Counter(conn.scalars(sa.text("SELECT external_id FROM subjects")))
    assert [s for s, n in subjects.items() if n > 1] == [], "a subject is duplicated"
    assert [s for s, n in Counter(v[0] for v in photos.values()).items() if n > 1] == []
    for e in accepted:
        if e.sent["booking_number"] in sealed:
            continue  # gone by design
        found = photos.get(int(e.body["photo_id"]))
        assert found == (e.sent["sha256"], e.sent["subject_id"]), (e.sent, e.body, found)
    for booking in plan.same_bytes:
        sent = [e.body for e in accepted if e.sent["booking_number"] == booking]
        assert sorted(b["status"] for b in sent) == ["duplicate", "enrolled"], sent
        assert len({b["photo_id"] for b in sent}) == 1, sent
    for twin in plan.twins:
        subject = twin[0].split("-")[0]
        mine = [v for v in photos.values() if v[1] == subject]
        assert subjects[subject] == 1 and len(mine) == len(twin), (subject, mine)
    return len(accepted)


def check_reviews(world: World, reviews: list[Review]) -> None:
    """One accepted disposition and one accepted verification per search, each recorded as
    the round's only completed review of its role; the search ends in their state."""
    services = world.installed.services
    query = sa.text(
        "SELECT review_role, examiner_username, conclusion FROM reviews "
        "WHERE search_id = :s AND completed_at IS NOT NULL ORDER BY review_role"
    )
    for review in reviews:
        won = {}
        for step, lost in LOST_RACE.items():
            tried = [e for e in world.ledger.of(step) if e.sent["search_id"] == review.search_id]
            accepted = [e for e in tried if e.status == 200]
            assert len(tried) == len(review.examiners) and len(accepted) == 1, tried
            assert all(e.body["code"] == lost for e in tried if e.status == 409), tried
            won[step] = accepted[0]
        with services.db.engine.connect() as conn:
            done = [tuple(r) for r in conn.execute(query, {"s": review.search_id})]
            status = conn.scalar(STATUS, {"s": review.search_id})
        assert done == [
            ("examiner", won["dispose"].who, "possible_lead"),
            ("verifier", won["verify"].who, "agree"),
        ], done
        assert status == won["verify"].body["status"] == "verified"
        steps = audit_details(services, "review.dispose", str(review.search_id))
        assert [d["step"] for d in steps].count("dispositions") == 1, steps
        assert len(audit_details(services, "review.verify", str(review.search_id))) == 1


@dataclass(frozen=True)
class Searched:
    """A 201 search: when it was sent, its place in the audit chain, whom it lists."""

    probe: str
    started: float
    seq: int
    listed: frozenset[int]  # subject row ids of its candidates


def searches_done(world: World) -> list[Searched]:
    with world.installed.services.db.engine.connect() as conn:
        seqs = {str(o): int(q) for o, q, _ in conn.execute(EVENTS, {"a": "search.submit"})}
        listed: dict[int, set[int]] = {}
        for sid, subject in conn.execute(sa.text("SELECT search_id, subject_id FROM candidates")):
            listed.setdefault(int(sid), set()).add(int(subject))
    out = []
    for e in world.ledger.entries:
        if "probe" in e.sent and e.status == 201:
            sid = int(e.body["search_id"])
            seq, subjects = seqs[str(sid)], frozenset(listed.get(sid, ()))
            out.append(Searched(e.sent["probe"], e.started, seq, subjects))
    return out


def check_seals(world: World, seals: list[SealRun], rows: dict[str, int]) -> dict[str, int]:
    """No search after a seal (in the chain, or sent after it was seen) lists the subject;
    searches of its probe before it do, so the test can tell. Returns counts per subject."""
    assert [(s.order, s.returncode) for s in seals if s.returncode] == [], seals
    with world.installed.services.db.engine.connect() as conn:
        events = conn.execute(EVENTS, {"a": "gallery.seal"})
        at = {json_of(details)["order"]: int(seq) for _, seq, details in events}
    done = searches_done(world)
    probes = {booking.split("-")[0]: probe for booking, probe in world.plan.sealed}
    summary = {}
    for seal in seals:
        row, probe = rows[seal.subject], probes[seal.subject]
        before = [s for s in done if s.seq < at[seal.order] and s.probe == probe]
        after = [s for s in done if s.seq > at[seal.order]]
        late = [s for s in done if s.started > seal.seen]
        assert before and all(row in s.listed for s in before), "its probe did not find it"
        assert any(s.probe == probe for s in late), "no search of its probe after the seal"
        assert [s.seq for s in after if row in s.listed] == [], "listed after the seal committed"
        assert [s.seq for s in late if row in s.listed] == [], "listed after the seal was seen"
        summary[seal.subject] = len(before)
    return summary


def json_of(details: Any) -> dict[str, Any]:
    return details if isinstance(details, dict) else dict(json.loads(details))


def check_cli(world: World) -> None:
    """``facelead audit verify`` (an auditor) and ``facelead doctor`` (records) both pass."""
    commands = {
        "audra": ["audit", "verify"],
        "rita": ["doctor"],
    }
    procs = [
        command(world.env(FACELEAD_TOKEN=world.tokens[who]), *args)
        for who, args in commands.items()
    ]
    for proc, args in zip(procs, commands.values(), strict=True):
        out = proc.communicate(timeout=TIMEOUT_S)[0].decode()
        assert proc.returncode == 0 and "OK" in out, (args, out[-2000:])


@pytest.fixture
def world(tmp_path: Path, database_url: str, meds_dir: Path) -> Iterator[World]:
    """A fresh deployment on this backend with one certified account per person."""
    installed = install(tmp_path / "home", database_url)
    for name, role in PEOPLE.items():
        installed.add(name, role, certified_until=CERTIFIED)
    yield World(installed, database_url, meds_dir, SHORT)
    installed.services.db.dispose()


@dataclass
class Laps:
    """Seconds spent in each phase, for the closing note (never asserted)."""

    last: float = field(default_factory=time.monotonic)
    phases: dict[str, float] = field(default_factory=dict)

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase], self.last = round(now - self.last, 1), now


def run(world: World, log: Path) -> str:
    plan, laps = world.plan, Laps()
    env = world.env(FACELEAD_DAILY_SEARCH_LIMIT="100000")
    with serve_helpers.serving(world.home, env, plan.workers, log) as server:
        laps.lap("serve up")
        world.base = server.base
        reviews = reviews_of(plan, set_up(world))
        rows = {b.split("-")[0]: world.subject_row(b.split("-")[0]) for b, _ in plan.sealed}
        laps.lap("setup")
        seals = run_mix(world, reviews)
        laps.lap("mix")
    assert len(server.worker_pids()) >= plan.workers, server.log_tail()
    check_statuses(world.ledger)
    enrolled = check_enrolments(world)
    check_reviews(world, reviews)
    before = check_seals(world, seals, rows)
    events = assert_linear_chain(world.installed.services)
    check_cli(world)
    laps.lap("checks")
    return (
        f"{world.url.split(':')[0]}: {len(world.ledger.entries)} requests, by kind and status "
        f"{world.ledger.statuses()}; {enrolled} enrolments accepted; searches of each sealed "
        f"subject listing it before its seal {before}; {events} audit events; seconds {laps.phases}"
    )


def test_concurrent_workload(world: World, tmp_path: Path) -> None:
    print(run(world, tmp_path / "serve.log"))


@pytest.mark.stress
@pytest.mark.skipif(not STRESS, reason="set FACELEAD_STRESS=1 (make stress)")
def test_concurrent_workload_stress(world: World, tmp_path: Path) -> None:
    world.plan = LONG
    print(run(world, tmp_path / "serve.log"))
