"""One SIGKILL loop for the crash-safety tests (issue 10).

Every crash test does the same thing: start the real ``facelead`` command in a
process group of its own, wait until it reaches a point of its run (the n-th
audit event it appends, and optionally some other sign, such as a file on
disk), sleep a seeded delay and SIGKILL the group; then ``facelead doctor``
must find no error and ``facelead audit verify`` must pass. What the home must
look like besides (nothing half-written, a rerun completes the command) is each
test's own business, done in the body of its ``for kill in kill_loop(...)``.

The checks run the console-script entry point in this process
(tests/test_cli_roles.invoke) to keep a run short; only the killed command
needs a process of its own.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.test_cli_roles import Ran, invoke

FACELEAD = Path(sys.executable).parent / "facelead"
STRESS = os.environ.get("FACELEAD_STRESS") == "1"
START_WAIT_S = 120.0
"""How long to wait at most for a run to reach its kill point (it may have hung)."""

# Rows that change with every login and check, and moments in time: not the state of a home.
SKIPPED_TABLES = frozenset({"audit_events", "audit_head", "audit_checkpoints", "alembic_version"})


def cli_env(home: Path, token: str) -> dict[str, str]:
    """The environment of a ``facelead`` process on ``home`` (SQLite) as the token's user."""
    env = {**os.environ, "FACELEAD_HOME": str(home), "FACELEAD_TOKEN": token}
    env.pop("FACELEAD_DATABASE_URL", None)
    return env


def read_only(home: Path) -> sqlite3.Connection:
    """A read-only connection: looking must never change what a kill left behind."""
    return sqlite3.connect(f"file:{home / 'facelead.db'}?mode=ro", uri=True, timeout=10)


def audit_count(home: Path) -> int:
    """Audit events in ``home``; 0 before the database or its schema exists."""
    if not (home / "facelead.db").exists():
        return 0
    conn = read_only(home)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0])
    except sqlite3.OperationalError:  # schema not there yet
        return 0
    finally:
        conn.close()


def snapshot(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the audit log, without timestamps, ordered.

    Two homes with equal snapshots hold the same records: the way to say "exactly
    as before the command, or exactly as after a clean run of it".
    """
    conn = read_only(home)
    try:
        tables = [
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if row[0] not in SKIPPED_TABLES and not row[0].startswith("sqlite_")
        ]
        state = {}
        for table in sorted(tables):
            columns = [
                name
                for _, name, kind, *_ in conn.execute(f'PRAGMA table_info("{table}")')
                if not name.endswith("_at") and "DATETIME" not in kind.upper()
            ]
            listed = ", ".join(f'"{c}"' for c in columns)
            rows = conn.execute(f'SELECT {listed} FROM "{table}"').fetchall()
            state[table] = sorted(rows, key=repr)
        return state
    finally:
        conn.close()


@dataclass(frozen=True)
class Target:
    """A command to kill in a home of its own, and who may check that home afterwards."""

    home: Path
    argv: tuple[str, ...]
    token: str  # the killed command's user
    records: str  # may run ``facelead doctor``
    auditor: str  # may run ``facelead audit verify``


@dataclass(frozen=True)
class KillPoint:
    """Kill ``delay`` s after the command's ``events``-th audit event (its token login is
    the first) and, when ``ready`` is given, once ``ready(home)`` also holds."""

    events: int
    delay: float
    ready: Callable[[Path], bool] | None = None
    label: str = ""


@dataclass(frozen=True)
class Kill:
    """One kill of the loop and what it left."""

    n: int
    target: Target
    point: KillPoint
    code: int  # -SIGKILL when the kill landed; the command's own status if it finished first
    doctor: Ran  # ``facelead doctor`` after the kill: its warnings name the leftovers

    @property
    def home(self) -> Path:
        return self.target.home

    @property
    def landed(self) -> bool:
        return self.code == -signal.SIGKILL

    def summary(self) -> tuple[str | int, float, int]:
        return (self.point.label or self.point.events, round(self.point.delay, 3), self.code)


def _reached(home: Path, point: KillPoint, base: int) -> bool:
    if audit_count(home) < base + point.events:
        return False
    return point.ready is None or point.ready(home)


def kill_run(target: Target, point: KillPoint, *, poll_s: float) -> int:
    """Start ``facelead ARGV``; SIGKILL its process group at ``point``; its exit status."""
    base = audit_count(target.home)
    proc = subprocess.Popen(
        [str(FACELEAD), *target.argv],
        env=cli_env(target.home, target.token),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(round(START_WAIT_S / poll_s)):
            if proc.poll() is not None or _reached(target.home, point, base):
                break
            time.sleep(poll_s)
        time.sleep(point.delay)
    finally:
        if proc.poll() is None:
            kill_group(proc)
        proc.wait()
    return proc.returncode


def _group_alive(pgid: int) -> bool:
    """Any process of the group still running (zombies excluded: they write nothing)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def kill_group(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGKILL a run's whole process group and wait until none of it runs any more.

    Waiting for the parent is not enough: a worker process dies a moment later, and a
    commit it had under way can still land in between, so a test reading the database
    right after ``proc.wait()`` could see a state that then changes.
    """
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + timeout_s
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def check_consistent(home: Path, records: str, auditor: str) -> Ran:
    """``facelead doctor`` finds no error and ``facelead audit verify`` passes; doctor's run."""
    doctor = invoke(home, ["doctor"], FACELEAD_TOKEN=records)
    assert doctor.code == 0 and "OK: 0 errors" in doctor.out, doctor
    verify = invoke(home, ["audit", "verify"], FACELEAD_TOKEN=auditor)
    assert verify.code == 0 and verify.out.startswith("OK"), verify
    return doctor


def kill_loop(
    kills: int,
    seed: int | str,
    prepare: Callable[[int], Target],
    aim: Callable[[int, random.Random], KillPoint],
    *,
    poll_s: float,
) -> Iterator[Kill]:
    """``kills`` kill-and-check cycles, each on the home ``prepare(n)`` makes.

    ``aim`` draws each kill point from one ``random.Random(seed)``, so a seed
    replays the same kills. Each kill is yielded after the shared checks for the
    caller's own; its home is removed when the caller asks for the next one (a
    failed assertion leaves it in place to look at).
    """
    rng = random.Random(seed)
    for n in range(kills):
        target = prepare(n)
        point = aim(n, rng)
        code = kill_run(target, point, poll_s=poll_s)
        doctor = check_consistent(target.home, target.records, target.auditor)
        yield Kill(n, target, point, code, doctor)
        shutil.rmtree(target.home)
