"""SIGKILL ``review dispose``, ``review verify`` and ``gallery seal`` at seeded random moments.

Each run starts from a copy of one prepared home (a real MEDS search waiting
for its examiner, or for its verifier) and runs the real ``facelead`` command in
a subprocess. The kill lands a seeded delay after the command's n-th audit event
(its token login is the first; for a seal the second is the committed removal,
so n = 2 kills while files are deleted and the index rebuilt). Afterwards:

- the database is exactly as before the command or exactly as after a clean run
  (every table but the audit log and timestamps compared): no half-written
  review, no seal that removed some photos and kept others;
- ``facelead doctor`` finds no error and ``facelead audit verify`` passes;
- running the command again completes it: a review left before is recorded,
  a review already recorded is refused as a state conflict and changes nothing,
  a seal already committed is "already applied" and ``gallery sweep`` deletes any
  image file the kill left behind, after which no file of the sealed subject remains.

``make test`` kills each command 3 times; ``make stress`` (FACELEAD_STRESS=1) 12 times.
The kill loop and the checks after each kill are tests/crash_helpers.py; they run
the console-script entry point in-process to keep the run short, and only the
killed command needs its own process.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from facelead.config import Settings
from facelead.domain.access import Actor
from facelead.domain.cases import ReviewRole
from facelead.domain.gallery import BookingRef
from facelead.domain.review import Decision, parse_disposition
from facelead.domain.search import ProbeProvenance, SearchRequest
from facelead.services import identity as identity_service
from facelead.services.cases import open_case
from facelead.services.context import Services
from facelead.services.gallery import enroll_photo
from facelead.services.lifecycle import subject_hash
from facelead.services.review import assign_reviewer, dispose, record_features
from facelead.services.search import submit_search
from tests.conftest import install
from tests.crash_helpers import (
    FACELEAD,
    STRESS,
    KillPoint,
    Target,
    check_consistent,
    cli_env,
    kill_loop,
    read_only,
    snapshot,
)
from tests.test_cli_roles import Ran, invoke

pytestmark = pytest.mark.models

SEED = 2027
POLL_S = 0.005
CERTIFIED = dt.date.today() + dt.timedelta(days=90)
PEOPLE = {
    "ivy": "investigator",
    "sam": "supervisor",
    "erin": "examiner",
    "ezra": "examiner",
    "rita": "records",
    "audra": "auditor",
}
LEAD = "S001=possible-lead:scar over the left brow, same ear helix"
FEATURES = ["face-shape", "eyes", "nose", "mouth"]
SEALED = "S001"


@dataclass(frozen=True)
class Scenario:
    """One command to kill: which prepared home, as whom, and where the kill may land."""

    home: str  # "review" (waiting for the examiner) or "verify" (waiting for the verifier)
    who: str
    argv: tuple[str, ...]
    kill_points: tuple[tuple[int, float], ...]
    """Taken in turn, kill after kill: (n, d) kills a seeded delay of up to d seconds after
    the command's n-th audit event."""


SCENARIOS = {
    "dispose": Scenario(
        "review", "erin", ("review", "dispose", "1", "--set", LEAD, "--others", "exclude"),
        ((1, 0.12),),
    ),
    "verify": Scenario(
        "verify", "ezra", ("review", "verify", "1", "--set", "S001=possible-lead:same scar"),
        ((1, 0.12),),
    ),
    "seal": Scenario(
        "review", "rita",
        ("gallery", "seal", SEALED, "--order", "LASC-2026-SEAL-7", "--reason", "PC 851.91"),
        ((1, 0.03), (2, 0.15)),  # in the removal's transaction; among its file deletions
    ),
}  # fmt: skip


@dataclass
class Prepared:
    homes: dict[str, Path]  # "review" / "verify" -> a home to copy
    tokens: dict[str, str]
    root: Path

    def copy(self, which: str, name: str) -> Path:
        target = self.root / name
        shutil.copytree(self.homes[which], target)
        return target

    def cli(self, home: Path, who: str, *argv: str) -> Ran:
        return invoke(home, list(argv), FACELEAD_TOKEN=self.tokens[who])

    def target(self, name: str, n: int) -> Target:
        """Kill ``n`` of scenario ``name``: its own copy of the prepared home."""
        scenario = SCENARIOS[name]
        home = self.copy(scenario.home, f"{name}-{n}")
        token = self.tokens[scenario.who]
        return Target(home, scenario.argv, token, self.tokens["rita"], self.tokens["audra"])


def _actor(services: Services, token: str) -> Actor:
    return identity_service.authenticate_token(services, token, "test-setup")


def _prepare_review(services: Services, tokens: dict[str, str], meds: Path) -> None:
    """Three booking photos, a case, one search of S001 (top 2), erin assigned, features done."""
    rita = _actor(services, tokens["rita"])
    for name, subject in [("S001-01", "S001"), ("S001-02", "S001"), ("S002-01", "S002")]:
        data = (meds / f"{name}-t10_01.jpg").read_bytes()
        enroll_photo(services, rita, data, name, BookingRef(subject, name, agency="MEDS"))
    ivy = _actor(services, tokens["ivy"])
    open_case(services, ivy, "C-9", "robbery")
    request = SearchRequest(
        "criminal-investigation",
        "Robbery at the corner shop, suspect filmed by the shop camera",
        ProbeProvenance("cctv-still", "DVR export by Det. Ruiz", "shop camera", ()),
        top_k=2,
    )
    probe = (meds / "S001-03-t10_01.jpg").read_bytes()
    assert submit_search(services, ivy, "C-9", probe, request).search_id == 1
    sam = _actor(services, tokens["sam"])
    assign_reviewer(services, sam, 1, "erin")
    record_features(services, _actor(services, tokens["erin"]), 1, FEATURES)
    services.index()  # the saved index, current (doctor would call it stale otherwise)
    subject_hash(services, SEALED)  # its key exists before the copies: one tombstone hash


def _prepare_verify(services: Services, tokens: dict[str, str]) -> None:
    """erin's disposition recorded (S001 a possible lead), ezra assigned to verify, features."""
    subject, _, rest = LEAD.partition("=")
    disposition, _, notes = rest.partition(":")
    lead = {subject: Decision(parse_disposition(disposition), notes)}
    dispose(services, _actor(services, tokens["erin"]), 1, lead, parse_disposition("exclude"))
    sam = _actor(services, tokens["sam"])
    assign_reviewer(services, sam, 1, "ezra", ReviewRole.VERIFIER)
    record_features(services, _actor(services, tokens["ezra"]), 1, FEATURES)


@pytest.fixture(scope="module")
def prepared(meds_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    root = tmp_path_factory.mktemp("crash-review-seal")
    installed = install(root / "base-review")
    services = installed.services
    for name, role in PEOPLE.items():
        installed.add(name, role, certified_until=CERTIFIED)
    tokens = {
        name: identity_service.issue_token(services, installed.admin, name, days=1).token
        for name in PEOPLE
    }
    _prepare_review(services, tokens, meds_dir)
    services.db.dispose()
    shutil.copytree(root / "base-review", root / "base-verify")
    verify_services = Services(Settings(home=root / "base-verify"))
    _prepare_verify(verify_services, tokens)
    verify_services.db.dispose()
    yield Prepared({"review": root / "base-review", "verify": root / "base-verify"}, tokens, root)


def reference(prepared: Prepared, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The state before the command and after one clean, complete run of it."""
    scenario = SCENARIOS[name]
    home = prepared.copy(scenario.home, f"reference-{name}")
    before = snapshot(home)
    done = subprocess.run(
        [str(FACELEAD), *scenario.argv],
        env=cli_env(home, prepared.tokens[scenario.who]),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    after = snapshot(home)
    assert before != after, f"{name} changed nothing: the test could not tell"
    # A clean run is consistent (a seal keeps the stubs of photos past candidate lists cite).
    check_consistent(home, prepared.tokens["rita"], prepared.tokens["audra"])
    shutil.rmtree(home)
    return before, after


def sealed_files_left(home: Path, before: dict[str, Any]) -> list[str]:
    """Image files on disk of the sealed subject's photos (by their hashes before the seal)."""
    subject_ids = {row[0] for row in before["subjects"] if SEALED in row}
    photo_columns = sqlite_columns(home, "photos")
    sha_at, subject_at = photo_columns.index("image_sha256"), photo_columns.index("subject_id")
    hashes = {row[sha_at] for row in before["photos"] if row[subject_at] in subject_ids}
    assert hashes, "the sealed subject had no photos"
    return [sha for sha in hashes if (home / "images" / sha[:2] / sha[2:4] / sha).exists()]


def sqlite_columns(home: Path, table: str) -> list[str]:
    conn = read_only(home)
    try:
        return [
            name
            for _, name, kind, *_ in conn.execute(f'PRAGMA table_info("{table}")')
            if not name.endswith("_at") and "DATETIME" not in kind.upper()
        ]
    finally:
        conn.close()


def rerun(prepared: Prepared, name: str, home: Path, landed: str) -> None:
    """Run the command again after the kill; it completes, or was complete already."""
    scenario = SCENARIOS[name]
    again = prepared.cli(home, scenario.who, *scenario.argv)
    if landed == "before" or name == "seal":
        assert again.code == 0, again
        if landed == "after" and name == "seal":
            assert "already applied" in again.out, again
    else:  # the review is recorded: a second one is a state conflict, one line, no change
        lines = [line for line in again.err.splitlines() if line.strip()]
        assert again.code == 2 and len(lines) == 1 and lines[0].startswith("error ["), again
    if name == "seal":
        swept = prepared.cli(home, "rita", "gallery", "sweep")
        assert swept.code == 0, swept


def run_kills(prepared: Prepared, name: str, kills: int) -> list[tuple[int, float, str, int]]:
    scenario = SCENARIOS[name]
    before, after = reference(prepared, name)

    def aim(n: int, rng: random.Random) -> KillPoint:
        point, max_delay = scenario.kill_points[n % len(scenario.kill_points)]
        return KillPoint(events=point, delay=rng.uniform(0.0, max_delay))

    happened = []
    target = functools.partial(prepared.target, name)
    for kill in kill_loop(kills, f"{SEED}-{name}", target, aim, poll_s=POLL_S):
        home = kill.home
        state = snapshot(home)
        assert state in (before, after), f"{name} kill {kill.n}: half-written state"
        landed = "before" if state == before else "after"
        rerun(prepared, name, home, landed)
        assert snapshot(home) == after, f"{name} kill {kill.n}: the rerun did not complete it"
        check_consistent(home, prepared.tokens["rita"], prepared.tokens["audra"])
        if name == "seal":
            assert sealed_files_left(home, before) == []
        happened.append((kill.point.events, round(kill.point.delay, 3), landed, kill.code))
    assert any(code == -signal.SIGKILL for *_, code in happened), f"{name}: nothing was killed"
    return happened


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sigkill_leaves_the_state_before_or_after(prepared: Prepared, name: str) -> None:
    happened = run_kills(prepared, name, 3)
    print(f"{name} kills (after n events, delay s, state, exit):", happened)


@pytest.mark.stress
@pytest.mark.skipif(not STRESS, reason="set FACELEAD_STRESS=1 (make stress)")
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sigkill_stress(prepared: Prepared, name: str) -> None:
    happened = run_kills(prepared, name, 12)
    states = {state for _, _, state, _ in happened}
    print(f"{name} kills (after n events, delay s, state, exit):", happened)
    assert len(happened) == 12 and states  # both states are typical; neither is required
