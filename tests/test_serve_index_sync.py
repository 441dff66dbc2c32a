"""Serving processes keep their memory-mapped index at the database's change sequence.

Real processes, real databases: ``facelead serve --workers 2`` on SQLite (two
uvicorn workers sharing one index directory), and two ``facelead serve`` nodes
with their own index directories on one PostgreSQL database. A seal and an
enrolment committed by another process must reach every worker, and every
state a worker reports must be a whole generation (never a change half-applied).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facelead.config import Settings
from facelead.store import Database
from facelead.store import gallery as g
from tests import serve_helpers

DIM = 8
WAIT_S = 60.0  # a timeout for the wait, not a speed assertion (bench/ measures speed)


def _enrol(db: Database, model: str, external_id: str, photos: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with db.session() as s:
        subject = g.get_or_create_subject(s, external_id)
        for n in range(photos):
            photo = g.add_photo(
                s,
                subject=subject,
                booking=None,
                image_sha256=uuid.uuid4().hex * 2,
                view="frontal",
                width=640,
                height=480,
                face_box=[1.0, 2.0, 100.0, 120.0],
                landmarks=[[10.0, 20.0]],
                quality={},
                source_name=f"{external_id}-{n}.jpg",
            )
            g.add_template(s, photo, model, rng.standard_normal(DIM).astype(np.float32))


def _generation(db: Database, model: str) -> int:
    with db.session() as s:
        return g.index_generation(s, model)


class Node:
    """One ``facelead serve`` process (its own process group: workers die with it)."""

    def __init__(self, home: Path, env: dict[str, str], workers: int) -> None:
        self.home = home
        self.server = serve_helpers.start(home, env, workers, home / "serve.log")

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        return self.server.proc

    def log_tail(self) -> str:
        return self.server.log_tail()

    def statuses(self) -> list[dict[str, Any]]:
        out = []
        for path in (self.home / "index" / "workers").glob("*.json"):
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError):  # pragma: no cover - atomic rename
                continue
        return out

    def stop(self) -> None:
        serve_helpers.stop(self.server)


def _wait_all(nodes: list[Node], workers: int, generation: int, live_at: dict[int, int]) -> float:
    """Wait until every worker of every node reports ``generation``; check that each
    report seen on the way is a whole generation (its live count is that generation's)."""
    start = time.monotonic()
    while time.monotonic() - start < WAIT_S:
        reports = [s for node in nodes for s in node.statuses()]
        for report in reports:
            assert report["live"] == live_at[report["generation"]], report
        current = [r for r in reports if r["generation"] == generation]
        if len(reports) == len(current) == workers * len(nodes):
            return time.monotonic() - start
        for node in nodes:
            assert node.proc.poll() is None, node.log_tail()
        time.sleep(0.02)
    logs = [node.log_tail() for node in nodes]
    raise AssertionError(f"workers did not reach generation {generation}: {reports}\n{logs}")


def _run_scenario(db: Database, nodes_env: list[tuple[Path, dict[str, str]]], workers: int) -> None:
    model = Settings().model_id
    for i in range(4):
        _enrol(db, model, f"S{i}", photos=3, seed=i)
    live_at = {_generation(db, model): 12}
    nodes = [Node(home, env, workers) for home, env in nodes_env]
    try:
        _wait_all(nodes, workers, max(live_at), live_at)
        pids = {r["pid"] for node in nodes for r in node.statuses()}
        assert len(pids) == workers * len(nodes)  # distinct processes, each with its index

        with db.session() as s:  # a seal, committed by another process
            subject = g.find_subject(s, "S1")
            assert subject is not None
            g.seal_subject(s, subject)
        live_at[_generation(db, model)] = 9
        lag = _wait_all(nodes, workers, max(live_at), live_at)
        print(f"seal visible in every worker after {lag:.2f} s")

        _enrol(db, model, "S9", photos=1, seed=9)  # an enrolment
        live_at[_generation(db, model)] = 10
        lag = _wait_all(nodes, workers, max(live_at), live_at)
        print(f"enrolment visible in every worker after {lag:.2f} s")
    finally:
        for node in nodes:
            node.stop()


def _env(database_url: str) -> dict[str, str]:
    """The serve environment; each Node sets its own FACELEAD_HOME."""
    return serve_helpers.facelead_env(database_url)


def test_two_workers_share_one_index_and_both_see_a_seal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'facelead.db'}"
    db = Database(url)
    db.upgrade()
    try:
        _run_scenario(db, [(tmp_path / "home", _env(url))], workers=2)
        saved = list((tmp_path / "home" / "index").glob("*/*.vectors.npy"))
        assert len(saved) == 1  # one shared set of index files, not one per worker
    finally:
        db.dispose()


@pytest.mark.postgres
def test_two_nodes_on_one_postgresql_stay_in_sync(tmp_path: Path, pg_url: str) -> None:
    db = Database(pg_url)
    db.upgrade()
    try:
        homes = [(tmp_path / f"node{i}", _env(pg_url)) for i in range(2)]
        _run_scenario(db, homes, workers=1)
        for home, _ in homes:  # each node built its own index from the database
            assert len(list((home / "index").glob("*/*.vectors.npy"))) == 1
    finally:
        db.dispose()
