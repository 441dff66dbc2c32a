"""Check-then-act races, each forced open in-process so that its outcome does not
depend on luck: the mixed workload (test_concurrent_workload.py) finds such races only
when two requests happen to collide inside a window of a few milliseconds.

- Two transactions read a row with SELECT ... FOR UPDATE and write what they read
  plus one: on SQLite, which ignores FOR UPDATE, both read the same value and one
  increment was lost (no models needed: it runs everywhere).

- Two examiners assigned to one search dispose at once. The review step reads the
  search and the round, decides, then writes; both must not pass the checks on the
  same state (on SQLite the reads ran outside any transaction, so both did, and both
  reviews were recorded as the round's first: a lost update).
- A search whose candidate re-check runs while a seal is deleting the subject
  (uncommitted) must either come before the seal or not list the subject (on
  PostgreSQL the re-check read the last committed templates, then waited for the
  seal and stored a candidate of the sealed subject, or failed with a foreign-key
  violation: a 500).

Real models, real databases; the hooks only hold a thread at a point of the real code.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from facelead.domain.access import Actor
from facelead.domain.cases import ReviewRole
from facelead.domain.gallery import BookingRef, RemovalKind, RemovalOrder
from facelead.domain.review import Decision, Disposition
from facelead.domain.search import ProbeProvenance, SearchRequest
from facelead.errors import FaceLeadError
from facelead.services import review as review_service
from facelead.services.cases import open_case
from facelead.services.gallery import enroll_photo
from facelead.services.lifecycle import remove_subject
from facelead.services.search import submit_search
from facelead.store import lifecycle as lifecycle_repo
from facelead.store import removal as removal_repo
from facelead.store.db import Database
from facelead.store.models import IndexState
from tests.conftest import Installed, install
from tests.serve_helpers import assert_linear_chain, audit_details, audit_seqs

CERTIFIED = dt.date.today() + dt.timedelta(days=90)
GALLERY = ["S001-01", "S001-02", "S002-01", "S003-01", "S004-01"]
PROBE = "S001-03"  # a later booking of S001, not enrolled
FEATURES = ["face-shape", "eyebrows", "eyes", "nose", "mouth"]
REQUEST = SearchRequest(
    "criminal-investigation",
    "Robbery at the corner shop, suspect filmed by the shop camera",
    ProbeProvenance("cctv-still", "DVR export by Det. Ruiz", "shop camera"),
    top_k=4,
)
PATIENCE_S = 2.0
"""How long a thread held at a hook waits for its rival. Not a speed assertion: when the
step is serialised the rival cannot arrive at all, and waiting longer changes nothing."""


@dataclass
class World:
    installed: Installed
    actors: dict[str, Actor]
    meds: Path
    case: str = "C-RACE-1"

    def probe(self) -> bytes:
        return (self.meds / f"{PROBE}-t10_01.jpg").read_bytes()


@dataclass
class Meeting:
    """A hook that holds each thread until its rival arrives or PATIENCE_S passes.

    ``met`` is True only if both threads were at the hook at the same time, that is,
    both had passed every check before either wrote: the race is open.
    """

    barrier: threading.Barrier = field(default_factory=lambda: threading.Barrier(2))
    met: bool = False

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def held(*args: Any, **kwargs: Any) -> Any:
            try:
                self.barrier.wait(timeout=PATIENCE_S)
                self.met = True
            except threading.BrokenBarrierError:
                pass
            return original(*args, **kwargs)

        return held


def test_a_locking_read_serialises_read_modify_write(database: Database) -> None:
    """Both backends: what a FOR UPDATE read returns is still current when the transaction
    writes, so two increments at once both count."""
    with database.session() as session:
        session.add(IndexState(model_id="counter", generation=0))
    meeting = Meeting()
    held = meeting.wrap(lambda: None)

    def increment() -> None:
        with database.session() as session:
            locked = select(IndexState).where(IndexState.model_id == "counter").with_for_update()
            row = session.scalars(locked).one()
            held()  # both here at once means both read the same value
            row.generation += 1

    results = run_both({"a": increment, "b": increment})
    assert results == {"a": None, "b": None}, results
    with database.session() as session:
        counter = session.get(IndexState, "counter")
        assert counter is not None and counter.generation == 2, "an increment was lost"
    assert not meeting.met, "both transactions read before either wrote"


@pytest.fixture
def world(tmp_path: Path, database_url: str, meds_dir: Path) -> Iterator[World]:
    """A gallery of 4 subjects (2 photos of S001), an open case, people for each role."""
    installed = install(tmp_path / "home", database_url)
    people = {"rita": "records", "ivy": "investigator", "sam": "supervisor"}
    people |= {"erin": "examiner", "ezra": "examiner"}
    for name, role in people.items():
        installed.add(name, role, certified_until=CERTIFIED)
    actors = {name: installed.login(name) for name in people}
    services = installed.services
    for name in GALLERY:
        data = (meds_dir / f"{name}-t10_01.jpg").read_bytes()
        ref = BookingRef(name.split("-")[0], name, agency="MEDS")
        assert enroll_photo(services, actors["rita"], data, name, ref).photo_id is not None
    found = World(installed, actors, meds_dir)
    open_case(services, actors["ivy"], found.case, "robbery")
    yield found
    services.db.dispose()


def in_thread(
    results: dict[str, object], name: str, call: Callable[[], object]
) -> threading.Thread:
    """Start ``call`` in a thread that files its result, or the exception it raised, under
    ``name`` (the test inspects what each thread ended with)."""

    def one() -> None:
        try:
            results[name] = call()
        except Exception as exc:
            results[name] = exc

    thread = Thread(target=one)
    thread.start()
    return thread


def run_both(calls: dict[str, Callable[[], object]]) -> dict[str, object]:
    """Run each call in its own thread; the result or the exception, by name."""
    results: dict[str, object] = {}
    for thread in [in_thread(results, name, call) for name, call in calls.items()]:
        thread.join()
    return results


def submit(world: World) -> int:
    services, ivy = world.installed.services, world.actors["ivy"]
    return submit_search(services, ivy, world.case, world.probe(), REQUEST).search_id


@pytest.mark.models
def test_two_examiners_disposing_at_once_record_one_review(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    services, actors = world.installed.services, world.actors
    sid = submit(world)
    for examiner in ("erin", "ezra"):
        review_service.assign_reviewer(services, actors["sam"], sid, examiner, ReviewRole.EXAMINER)
        review_service.record_features(services, actors[examiner], sid, FEATURES)
    meeting = Meeting()
    # After every check of ``dispose`` and before its first write.
    hooked = meeting.wrap(review_service.candidates_by_subject)
    monkeypatch.setattr(review_service, "candidates_by_subject", hooked)
    lead = {"S001": Decision(Disposition.POSSIBLE_LEAD, "same scar over the left eyebrow")}
    results = run_both(
        {
            "erin": lambda: review_service.dispose(
                services, actors["erin"], sid, lead, Disposition.EXCLUDE
            ),
            "ezra": lambda: review_service.dispose(
                services, actors["ezra"], sid, {}, Disposition.EXCLUDE
            ),
        }
    )
    refused = {k: v.code for k, v in results.items() if isinstance(v, FaceLeadError)}
    won = [k for k, v in results.items() if not isinstance(v, Exception)]
    assert len(won) == 1 and set(refused.values()) <= {"review_already_done"}, results
    assert not meeting.met, "both examiners passed the checks before either wrote"
    first_reviews = sa.text(
        "SELECT examiner_username, conclusion FROM reviews WHERE search_id = :s "
        "AND review_role = 'examiner' AND completed_at IS NOT NULL"
    )
    with services.db.engine.connect() as conn:
        completed = list(conn.execute(first_reviews, {"s": sid}))
        status = conn.scalar(sa.text("SELECT status FROM searches WHERE id = :s"), {"s": sid})
    assert [row[0] for row in completed] == won, completed  # one first review, the winner's
    assert status == completed[0][1], (status, completed)  # the status is that review's
    steps = [e["step"] for e in audit_details(services, "review.dispose", str(sid))]
    assert steps.count("dispositions") == 1, steps
    assert_linear_chain(services)


@dataclass
class Pause:
    """Holds the seal's transaction open after it deleted the subject, before it commits."""

    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def held(*args: Any, **kwargs: Any) -> Any:
            self.reached.set()
            self.release.wait(timeout=300)  # bounded: the test releases it long before
            return original(*args, **kwargs)

        return held


def waiting_on_a_lock(world: World) -> bool:
    """Whether a session of this database is waiting for a row lock (PostgreSQL)."""
    query = sa.text(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )
    with world.installed.services.db.engine.connect() as conn:
        return bool(conn.scalar(query))


@pytest.mark.models
@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_search_racing_an_uncommitted_seal_never_lists_the_subject(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL only: on SQLite the search's first write already waits for the seal's
    commit (one writer at a time), which the workload test exercises."""
    services, actors = world.installed.services, world.actors
    services.index()  # models and index loaded before the race, not inside it
    _ = services.pipeline
    pause = Pause()
    # After the seal's deletes and stubs, before its audit event and commit.
    hooked = pause.wrap(lifecycle_repo.scrub_import_items)
    monkeypatch.setattr(removal_repo, "scrub_import_items", hooked)
    order = RemovalOrder(RemovalKind.SEALED, "S001", "LASC-RACE-1")
    with services.db.engine.connect() as conn:
        sealed_id = conn.scalar(sa.text("SELECT id FROM subjects WHERE external_id = 'S001'"))
    results: dict[str, object] = {}
    seal = in_thread(results, "seal", lambda: remove_subject(services, actors["rita"], order))
    assert pause.reached.wait(timeout=300), "the seal never reached its last step"
    search = in_thread(results, "search", lambda: submit(world))
    for _ in range(3000):  # bounded: until the search waits on the seal's locks, or ends
        if waiting_on_a_lock(world) or not search.is_alive():
            break
        search.join(timeout=0.1)
    pause.release.set()
    seal.join()
    search.join()
    assert not isinstance(results["seal"], Exception), results["seal"]
    sid = results["search"]
    assert isinstance(sid, int), f"the search failed: {sid!r}"
    query = sa.text("SELECT subject_id FROM candidates WHERE search_id = :s")
    with services.db.engine.connect() as conn:
        listed = set(conn.scalars(query, {"s": sid}))
    assert sealed_id not in listed, "a search committed after the seal lists the sealed subject"
    [sealed_at] = audit_seqs(services, "gallery.seal")
    assert audit_seqs(services, "search.submit", str(sid)) > [sealed_at]  # it waited
    assert_linear_chain(services)
