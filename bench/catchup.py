"""How long a new FaceLead node takes to catch up with N templates from PostgreSQL.

Multi-node deployments keep PostgreSQL as the system of record; each node keeps
its own memory-mapped index in sync from the database change sequence
(``index_state.generation``). This script fills a scratch PostgreSQL database
with N synthetic templates of the default model's dimension (``COPY``: subjects,
photos, templates, 3 photos a subject), then times, through the real service
code (``Services.index()``):

* ``new_node_s``: a node with an empty index directory reads every template,
  quantises, saves and maps the index (split into database read and build+save);
* ``restart_s``: the same node restarted (index file current: memory map only);
* ``seal_catchup_s``: a subject sealed by another node; this node's catch-up
  (one pass over the template table, bitmap, compaction);
* ``enrol_catchup_s``: a template enrolled by another node; catch-up (rebuild).

    .venv/bin/python bench/catchup.py [--n 1000000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Writes bench/results/catchup.json; the scratch database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import sqlalchemy as sa

from facelead.biometrics.embed import EMBEDDERS
from facelead.biometrics.fusion import model_config
from facelead.config import Settings
from facelead.services.context import Services
from facelead.store import Database
from facelead.store import gallery as g

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 50_000
PHOTOS_PER_SUBJECT = 3


def model_dim(model_id: str) -> int:
    """Fused template width: the sum of the member embedders' widths (no weights loaded)."""
    return sum(int(EMBEDDERS[name]().dim) for name in model_config(model_id).names)


def fill(conninfo: str, n: int, model_id: str, dim: int) -> float:
    """COPY n templates (unit vectors) with their photos and subjects; returns seconds."""
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    now = datetime.now(UTC).isoformat()
    subjects = -(-n // PHOTOS_PER_SUBJECT)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        with cur.copy("COPY subjects (id, external_id, created_at) FROM STDIN") as copy:
            for s in range(1, subjects + 1):
                copy.write_row((s, f"BENCH-{s}", now))
        photo_cols = (
            "id, subject_id, image_sha256, view, width, height, face_box, landmarks, "
            "quality, source_name, created_at"
        )
        with cur.copy(f"COPY photos ({photo_cols}) FROM STDIN") as copy:
            for p in range(1, n + 1):
                copy.write_row(
                    (
                        p,
                        (p - 1) // PHOTOS_PER_SUBJECT + 1,
                        f"{p:064x}",
                        "frontal",
                        640,
                        480,
                        "[0, 0, 100, 100]",
                        "[]",
                        "{}",
                        "",
                        now,
                    )
                )
        cols = "id, photo_id, model_id, dim, vector, created_at"
        with cur.copy(f"COPY templates ({cols}) FROM STDIN") as copy:
            for start in range(0, n, CHUNK):
                block = rng.standard_normal((min(CHUNK, n - start), dim), dtype=np.float32)
                block /= np.linalg.norm(block, axis=1, keepdims=True)
                for i, vec in enumerate(block.astype("<f4")):
                    row = start + i + 1
                    copy.write_row((row, row, model_id, dim, vec.tobytes(), now))
        for table in ("subjects", "photos", "templates"):
            cur.execute(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
        cur.execute("INSERT INTO index_state (model_id, generation) VALUES (%s, 1)", (model_id,))
        cur.execute("ANALYZE")
    return time.perf_counter() - started


def timed(services: Services) -> float:
    start = time.perf_counter()
    services.index()
    return time.perf_counter() - start


def db_read_seconds(services: Services, model_id: str) -> float:
    """One pass over the template table, as a catch-up reads it (decode included)."""
    start = time.perf_counter()
    with services.db.session() as session:
        count = sum(1 for _ in g.iter_templates(session, model_id))
    assert count > 0
    return time.perf_counter() - start


def measure(url: str, n: int, model_id: str, home: Path) -> dict[str, Any]:
    settings = Settings(home=home, database_url=url)
    node = Services(settings)
    node.initialise()
    out: dict[str, Any] = {"db_read_s": round(db_read_seconds(node, model_id), 2)}
    out["new_node_s"] = round(timed(node), 2)
    out["index_rows"] = node.index().rows
    restarted = Services(settings)
    out["restart_s"] = round(timed(restarted), 3)
    other = Services(Settings(home=home / "other", database_url=url))
    with other.db.session() as session:
        subject = g.find_subject(session, "BENCH-7")
        assert subject is not None
        g.seal_subject(session, subject)
    out["seal_catchup_s"] = round(timed(node), 2)
    with other.db.session() as session:
        subject = g.get_or_create_subject(session, "BENCH-NEW")
        photo = g.add_photo(
            session,
            subject=subject,
            booking=None,
            image_sha256=uuid.uuid4().hex * 2,
            view="frontal",
            width=640,
            height=480,
            face_box=[0.0, 0.0, 1.0, 1.0],
            landmarks=[],
            quality={},
            source_name="",
        )
        g.add_template(session, photo, model_id, np.ones(node.index().dim, np.float32))
    out["enrol_catchup_s"] = round(timed(node), 2)
    out["live_after"] = len(node.index())
    for services in (node, restarted, other):
        services.db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "catchup.json")
    args = parser.parse_args()
    model_id = Settings().model_id
    dim = model_dim(model_id)
    admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
    name = f"facelead_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name)
    try:
        Database(url.render_as_string(hide_password=False)).upgrade()
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        fill_s = fill(conninfo, args.n, model_id, dim)
        print(f"filled {args.n} {dim}-d templates in {fill_s:.1f} s", flush=True)
        with tempfile.TemporaryDirectory(prefix="facelead-catchup-") as home:
            result = measure(
                url.render_as_string(hide_password=False), args.n, model_id, Path(home)
            )
        result.update(
            {
                "n": args.n,
                "model_id": model_id,
                "dim": dim,
                "fill_s": round(fill_s, 1),
                "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
            }
        )
        print(json.dumps(result), flush=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
