"""``facelead serve --workers N`` as a real process group on a free loopback port.

Shared by the tests that need several worker processes (index sync, searches
racing a seal, the mixed concurrent workload): each worker imports OpenCV and
dlib and loads its own models, so only a real ``serve`` shows what several
processes on one database do. The server runs in its own process group, so
stopping it also stops every worker, and nothing outside 127.0.0.1 is used.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from facelead.domain.access import Actor, Role
from facelead.services.audit import verify_log
from facelead.services.context import Services

FACELEAD = Path(sys.executable).parent / "facelead"
HEALTH_PATH = "/api/v1/openapi.json"
START_POLLS = 3000  # x 0.1 s: a bounded wait of 5 minutes (workers import OpenCV and dlib)
STOP_WAIT_S = 20


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at this instant."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def facelead_env(database_url: str, home: Path | None = None, **extra: str) -> dict[str, str]:
    """This process's environment without any FACELEAD_ setting of the caller's, so the
    child sees exactly this database and home (and the model id, if one was forced)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEAD_")}
    if "FACELEAD_MODEL_ID" in os.environ:
        env["FACELEAD_MODEL_ID"] = os.environ["FACELEAD_MODEL_ID"]
    env["FACELEAD_DATABASE_URL"] = database_url
    if home is not None:
        env["FACELEAD_HOME"] = str(home)
    return {**env, **extra}


@dataclass
class Server:
    """One running ``facelead serve``: its process (group leader), base URL and log file."""

    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def worker_pids(self) -> set[str]:
        """Worker processes uvicorn reported starting (several means really several)."""
        return set(re.findall(r"Started server process \[(\d+)\]", self.log.read_text()))

    def alive(self) -> bool:
        return self.proc.poll() is None


def start(home: Path, env: Mapping[str, str], workers: int, log: Path) -> Server:
    """Start ``facelead serve`` for ``home`` on a free port; returns at once (see wait_healthy)."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [str(FACELEAD), "serve", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as sink:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            cmd,
            env={**env, "FACELEAD_HOME": str(home)},
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Server(proc, f"http://127.0.0.1:{port}", log)


def wait_healthy(server: Server) -> None:
    """Poll until the API answers (a bounded loop); fail with the log if it dies or never does."""
    for _ in range(START_POLLS):
        if not server.alive():
            raise AssertionError(f"serve exited: {server.log_tail()}")
        try:
            if httpx.get(server.base + HEALTH_PATH, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop(server)
    raise AssertionError(f"serve did not answer: {server.log_tail()}")


def stop(server: Server) -> None:
    """SIGTERM the process group (supervisor and workers); SIGKILL it if it lingers."""
    if server.proc.poll() is not None:
        return
    os.killpg(server.proc.pid, signal.SIGTERM)
    try:
        server.proc.wait(timeout=STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()


@contextmanager
def serving(home: Path, env: Mapping[str, str], workers: int, log: Path) -> Iterator[Server]:
    """A healthy ``facelead serve --workers N`` for the block, always stopped afterwards."""
    server = start(home, env, workers, log)
    try:
        wait_healthy(server)
        yield server
    finally:
        stop(server)


def assert_linear_chain(services: Services) -> int:
    """The audit log is one chain: seq 1..n without a gap, each prev_hash the hash before
    it, and the verifier agrees. Returns n."""
    with services.db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT seq, prev_hash, hash FROM audit_events ORDER BY seq"))
        chain = [tuple(row) for row in rows]
    assert [r[0] for r in chain] == list(range(1, len(chain) + 1)), "seq has a gap or a fork"
    assert all(b[1] == a[2] for a, b in itertools.pairwise(chain)), "prev_hash does not link"
    auditor = Actor(user_id=None, username="audra", roles=frozenset({Role.AUDITOR}), agency="")
    assert verify_log(services, auditor).ok
    return len(chain)


def audit_details(services: Services, action: str, object_id: str) -> list[dict[str, Any]]:
    """The details of each successful ``action`` event on ``object_id``, in chain order."""
    query = sa.text(
        "SELECT details FROM audit_events WHERE action = :a AND outcome = 'ok' "
        "AND object_id = :o ORDER BY seq"
    )
    with services.db.engine.connect() as conn:
        rows = conn.scalars(query, {"a": action, "o": object_id})
        return [d if isinstance(d, dict) else json.loads(d) for d in rows]


def audit_seqs(services: Services, action: str, object_id: str | None = None) -> list[int]:
    """The seq of each successful ``action`` event (on ``object_id`` if given), ascending."""
    query = "SELECT seq FROM audit_events WHERE action = :a AND outcome = 'ok'"
    params = {"a": action}
    if object_id is not None:
        query, params = query + " AND object_id = :o", {**params, "o": object_id}
    with services.db.engine.connect() as conn:
        return [int(seq) for seq in conn.scalars(sa.text(query + " ORDER BY seq"), params)]
