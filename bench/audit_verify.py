"""How long ``facelead audit verify`` takes on a million events, on one core.

Generates a correctly chained log (checkpoints every 1000 events, as in
production), verifies it from an in-memory list, then bulk-loads it into a
SQLite file under /tmp and verifies it end to end through the service (the
path ``facelead audit verify`` takes: read, re-hash, check signatures, and
append its own audited event). The target is under 60 s (issue 4).

    .venv/bin/python bench/audit_verify.py [--events 1000000]

Writes bench/results/audit-verify.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from facelead.audit.chain import (
    GENESIS_HASH,
    AuditRecord,
    Checkpoint,
    event_hash,
    format_ts,
    verify_chain,
)
from facelead.audit.checkpoint import sign_checkpoint
from facelead.audit.log import CHECKPOINT_EVERY, signing_key
from facelead.config import Settings
from facelead.domain.access import Actor, Role
from facelead.services import audit as audit_service
from facelead.services.context import Services

RESULTS = Path(__file__).resolve().parent / "results" / "audit-verify.json"
WORKDIR = Path("/tmp/facelead-bench-audit")
ACTIONS = ("search.submit", "candidates.view", "review.dispose", "review.verify", "case.read")
TARGET_S = 60.0
T = TypeVar("T")


def one_core() -> int:
    """Pin this process to a single CPU so the figure is a one-core figure."""
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def generate(n: int, start: datetime) -> Iterator[AuditRecord]:
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        body = {
            "seq": seq,
            "ts": format_ts(start + timedelta(seconds=seq * 2.5)),
            "actor": f"user{seq % 97:02d}",
            "actor_id": seq % 97,
            "role": "investigator",
            "agency": ("LASD", "LAPD", "LBPD")[seq % 3],
            "action": ACTIONS[seq % len(ACTIONS)],
            "outcome": "ok" if seq % 50 else "refused:low_quality_probe",
            "object_type": "search",
            "object_id": str(seq // 4),
            "case_number": f"C-{seq // 40:06d}",
            "purpose": "criminal-investigation",
            "client_address": "10.20.30.40",
            "interface": "web",
            "details": {"search_id": seq // 4, "purpose_text": "armed robbery, CCTV still"},
        }
        digest = event_hash(prev, body)
        yield AuditRecord(**body, prev_hash=prev, hash=digest)  # type: ignore[arg-type]
        prev = digest


def sqlite_row(r: AuditRecord) -> tuple[object, ...]:
    """The row as SQLAlchemy stores it on SQLite (naive UTC text, JSON text)."""
    ts = r.ts.replace("T", " ").removesuffix("Z")
    details = json.dumps(r.details)
    return (
        r.seq,
        ts,
        r.actor,
        r.actor_id,
        r.role,
        r.agency,
        r.action,
        r.outcome,
        r.object_type,
        r.object_id,
        r.case_number,
        r.purpose,
        r.client_address,
        r.interface,
        details,
        r.prev_hash,
        r.hash,
    )


def load_sqlite(db_file: Path, records: list[AuditRecord], checkpoints: list[Checkpoint]) -> None:
    conn = sqlite3.connect(db_file)
    with conn:
        conn.executemany(
            "INSERT INTO audit_events (seq, ts, actor, actor_id, role, agency, action, outcome, "
            "object_type, object_id, case_number, purpose, client_address, interface, details, "
            "prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (sqlite_row(r) for r in records),
        )
        conn.executemany(
            "INSERT INTO audit_checkpoints (seq, head_hash, ts, key_id, signature) "
            "VALUES (?,?,?,?,?)",
            [
                (
                    c.seq,
                    c.head_hash,
                    c.ts.replace("T", " ").removesuffix("Z"),
                    c.key_id,
                    c.signature,
                )
                for c in checkpoints
            ],
        )
        conn.execute("UPDATE audit_head SET seq = ?, hash = ?", (records[-1].seq, records[-1].hash))
    conn.close()


def timed(call: Callable[[], T]) -> tuple[T, float, float]:
    """``call()`` with its wall-clock and CPU seconds (CPU shows contention from other work)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = call()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def measure(n: int, cpu: int) -> dict[str, object]:
    shutil.rmtree(WORKDIR, ignore_errors=True)
    services = Services(Settings(home=WORKDIR, database_url=f"sqlite:///{WORKDIR / 'audit.db'}"))
    services.initialise()
    key = signing_key(audit_service.signing_key_path(services.settings))
    records, generate_s, _ = timed(lambda: list(generate(n, datetime(2025, 1, 1, tzinfo=UTC))))
    cps = [
        sign_checkpoint(key, r.seq, r.hash, r.when + timedelta(seconds=1))
        for r in records[CHECKPOINT_EVERY - 1 :: CHECKPOINT_EVERY]
    ]
    memory, memory_s, memory_cpu_s = timed(lambda: verify_chain(records, cps, key.public_key()))
    assert memory.ok and memory.events_checked == n, memory.first
    _, load_s, _ = timed(lambda: load_sqlite(WORKDIR / "audit.db", records, cps))
    auditor = Actor(user_id=None, username="bench", roles=frozenset({Role.AUDITOR}), agency="X")
    report, db_s, db_cpu_s = timed(lambda: audit_service.verify_log(services, auditor))
    assert report.ok and report.events_checked == n, report.first
    return {
        "events": n,
        "checkpoints": len(cps),
        "verify_from_database_s": round(db_s, 2),
        "verify_from_database_cpu_s": round(db_cpu_s, 2),
        "verify_in_memory_s": round(memory_s, 2),
        "verify_in_memory_cpu_s": round(memory_cpu_s, 2),
        "events_per_second_database": round(n / db_s),
        "target_s": TARGET_S,
        "within_target": db_s < TARGET_S,
        "generate_s": round(generate_s, 2),
        "bulk_load_s": round(load_s, 2),
        "database": "SQLite " + sqlite3.sqlite_version + " (file under /tmp)",
        "cpu": f"{platform.processor() or platform.machine()} (pinned to CPU {cpu})",
        "python": sys.version.split()[0],
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate")
    args = parser.parse_args()
    result = measure(args.events, one_core())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"verify {args.events:,} events on one core: {result['verify_from_database_s']} s wall "
        f"({result['verify_from_database_cpu_s']} s CPU) from SQLite via the service, "
        f"{result['verify_in_memory_s']} s wall ({result['verify_in_memory_cpu_s']} s CPU) "
        f"in memory; target < {TARGET_S:.0f} s"
    )
    print(json.dumps(result, indent=2))
    shutil.rmtree(WORKDIR, ignore_errors=True)


if __name__ == "__main__":
    main()
