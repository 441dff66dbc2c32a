"""Tampering with a real database (SQLite and PostgreSQL) in each way verify must catch.

The log is written through the real unit of work (``perform``), checkpoints
are signed automatically every 10 events, and the tampering is done in SQL
after dropping the append-only triggers, as an administrator could.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from facelead.audit import log as audit_log
from facelead.audit.chain import (
    AuditIntegrityError,
    AuditRecord,
    event_hash,
    parse_ts,
    verify_chain,
)
from facelead.audit.checkpoint import sign_checkpoint, to_jsonl
from facelead.domain.access import Action, Role
from facelead.services import audit as audit_service
from facelead.services.context import Services
from facelead.services.uow import perform
from facelead.store.audit_models import AuditCheckpoint, AuditEvent
from tests.conftest import audit_actor, drop_audit_guards

AUDITOR = audit_actor(Role.AUDITOR)
INVESTIGATOR = audit_actor(Role.INVESTIGATOR, name="ivan")


def build_log(services: Services, n: int = 30) -> None:
    """``n`` audited actions, one transaction each (checkpoints land at 10, 20, 30)."""
    for i in range(n):
        with perform(
            services, INVESTIGATOR, Action.CASE_READ, object_type="case", case_number=f"C-{i // 5}"
        ) as scope:
            scope.details["i"] = i


def sql(services: Services, statement: str, **params: object) -> None:
    with services.db.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def stored(services: Services, seq: int) -> AuditRecord:
    with services.db.session() as session:
        return next(r for r in audit_log.iter_records(session) if r.seq == seq)


def renumber(services: Services, where: str, to: str) -> None:
    """Move seqs without tripping the primary key mid-statement (via negative numbers)."""
    sql(services, f"UPDATE audit_events SET seq = -seq WHERE {where}")
    sql(services, f"UPDATE audit_events SET seq = {to} WHERE seq < 0")


def edit(services: Services) -> None:
    sql(services, "UPDATE audit_events SET purpose = 'innocent' WHERE seq = 15")


def delete(services: Services) -> None:
    sql(services, "DELETE FROM audit_events WHERE seq = 15")


def insert(services: Services) -> None:
    """A careful forger: renumbers what follows and chains the forgery correctly."""
    before = stored(services, 14)
    renumber(services, "seq >= 15", "-seq + 1")
    forged = {**before.content(), "seq": 15, "actor": "mallory", "details": {"forged": True}}
    digest = event_hash(before.hash, forged)
    values = {**forged, "ts": parse_ts(before.ts), "prev_hash": before.hash, "hash": digest}
    with services.db.session() as session:
        session.execute(sa.insert(AuditEvent).values(**values))


def event_hash_of(services: Services, seq: int) -> str:
    return stored(services, seq).hash


def reorder(services: Services) -> None:
    renumber(services, "seq IN (15, 16)", "CASE WHEN seq = -15 THEN 16 ELSE 15 END")


def truncate(services: Services) -> None:
    """Cut the tail and make the head row agree, so only the checkpoint at 30 remains."""
    head = event_hash_of(services, 25)
    sql(services, "DELETE FROM audit_events WHERE seq > 25")
    sql(services, "UPDATE audit_head SET seq = 25, hash = :h", h=head)


def forge_checkpoint(services: Services) -> None:
    cp = sign_checkpoint(
        Ed25519PrivateKey.generate(), 20, event_hash_of(services, 20), datetime.now(UTC)
    )
    with services.db.session() as session:
        audit_log.store_checkpoint(session, cp)


WAYS: dict[str, tuple[Callable[[Services], None], int]] = {
    "edited": (edit, 15),
    "deleted": (delete, 15),
    "inserted": (insert, 15),
    "reordered": (reorder, 15),
    "truncated": (truncate, 26),
    "foreign_checkpoint": (forge_checkpoint, 20),
}


@pytest.mark.parametrize("way", list(WAYS))
def test_verify_names_the_first_bad_seq_and_kind(audit_services: Services, way: str) -> None:
    build_log(audit_services)
    assert audit_service.verify_log(audit_services, AUDITOR).ok
    drop_audit_guards(audit_services.db)
    tamper, bad_seq = WAYS[way]
    tamper(audit_services)
    report = audit_service.verify_log(audit_services, AUDITOR)
    assert report.first is not None, way
    assert (report.first.seq, report.first.kind.value) == (bad_seq, way)


def test_intact_log_verifies_and_checkpoints_are_automatic(audit_services: Services) -> None:
    build_log(audit_services, 25)
    with audit_services.db.session() as session:
        assert [cp.seq for cp in audit_log.load_checkpoints(session)] == [10, 20]
    report = audit_service.verify_log(audit_services, AUDITOR)
    assert report.ok and report.events_checked == 25 and report.checkpoints_checked == 2
    key_file = audit_service.signing_key_path(audit_services.settings)
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_truncation_hidden_from_the_database_is_caught_by_the_exported_file(
    audit_services: Services, tmp_path: Path
) -> None:
    build_log(audit_services)
    exported = tmp_path / "checkpoints.jsonl"
    exported.write_text(audit_service.issue_checkpoint(audit_services, AUDITOR).jsonl())
    drop_audit_guards(audit_services.db)
    truncate(audit_services)
    sql(audit_services, "DELETE FROM audit_checkpoints WHERE seq > 25")
    with audit_services.db.session() as session:  # the database alone now looks intact
        records = list(audit_log.iter_records(session))
        stored = audit_log.load_checkpoints(session)
    key = audit_log.signing_key(audit_service.signing_key_path(audit_services.settings))
    assert verify_chain(records, stored, key.public_key()).ok
    report = audit_service.verify_log(audit_services, AUDITOR, checkpoint_file=exported)
    assert report.first is not None
    assert (report.first.seq, report.first.kind.value) == (26, "truncated")


def test_a_foreign_checkpoint_in_the_exported_file_is_named(
    audit_services: Services, tmp_path: Path
) -> None:
    build_log(audit_services, 12)
    forged = sign_checkpoint(
        Ed25519PrivateKey.generate(), 12, event_hash_of(audit_services, 12), datetime.now(UTC)
    )
    file = tmp_path / "cp.jsonl"
    file.write_text(to_jsonl([forged]))
    report = audit_service.verify_log(audit_services, AUDITOR, checkpoint_file=file)
    assert report.first is not None
    assert (report.first.seq, report.first.kind.value) == (12, "foreign_checkpoint")


def test_a_rehashed_rewrite_is_caught_by_the_signed_checkpoint(audit_services: Services) -> None:
    build_log(audit_services)
    drop_audit_guards(audit_services.db)
    with audit_services.db.session() as session:
        records = list(audit_log.iter_records(session))
    prev = records[13].hash
    for r in records[14:]:  # rewrite 15..30 and re-chain every hash: internally consistent
        body = {**r.content(), "purpose": "innocent" if r.seq == 15 else r.purpose}
        digest = event_hash(prev, body)
        sql(
            audit_services,
            "UPDATE audit_events SET purpose = :p, prev_hash = :ph, hash = :h WHERE seq = :s",
            p=body["purpose"],
            ph=prev,
            h=digest,
            s=r.seq,
        )
        prev = digest
    report = audit_service.verify_log(audit_services, AUDITOR)
    assert report.first is not None
    assert (report.first.seq, report.first.kind.value) == (11, "checkpoint_mismatch")


def test_a_checkpoint_is_never_signed_over_a_tampered_log(audit_services: Services) -> None:
    build_log(audit_services, 12)
    drop_audit_guards(audit_services.db)
    sql(audit_services, "UPDATE audit_events SET actor = 'someone' WHERE seq = 11")
    with pytest.raises(AuditIntegrityError):
        audit_service.issue_checkpoint(audit_services, AUDITOR)
    with audit_services.db.session() as session:
        last = list(audit_log.iter_records(session))[-1]
        assert [cp.seq for cp in audit_log.load_checkpoints(session)] == [10]
    assert (last.action, last.outcome) == ("audit.checkpoint", "refused:audit_integrity")


def test_the_database_refuses_update_and_delete_of_audit_rows(audit_services: Services) -> None:
    build_log(audit_services, 10)
    attempts = [
        "UPDATE audit_events SET purpose = 'x' WHERE seq = 3",
        "DELETE FROM audit_events WHERE seq = 3",
        "UPDATE audit_checkpoints SET seq = 9",
        "DELETE FROM audit_checkpoints",
        "UPDATE audit_head SET seq = 2",
        "DELETE FROM audit_head",
    ]
    if not audit_services.db.is_sqlite:
        attempts += ["TRUNCATE audit_events", "TRUNCATE audit_checkpoints"]
    for statement in attempts:
        with pytest.raises(sa.exc.DBAPIError):
            sql(audit_services, statement)
    with audit_services.db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 10
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditCheckpoint)) == 1
    assert audit_service.verify_log(audit_services, AUDITOR).ok


def test_concurrent_writers_keep_seq_gapless_and_the_chain_linear(audit_services: Services) -> None:
    threads, per_thread, errors = 4, 15, []

    def work() -> None:
        try:
            build_log(audit_services, per_thread)
        except Exception as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    with audit_services.db.session() as session:
        seqs = [r.seq for r in audit_log.iter_records(session)]
    assert seqs == list(range(1, threads * per_thread + 1))
    report = audit_service.verify_log(audit_services, AUDITOR)
    assert report.ok and report.checkpoints_checked == threads * per_thread // 10


def test_a_broken_signing_key_is_recorded_and_never_halts_actions(
    audit_services: Services, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the keys folder should be")
    url = audit_services.settings.effective_database_url
    audit_log.configure_checkpoints(url, blocker / "key.pem", every=5)
    build_log(audit_services, 6)
    with audit_services.db.session() as session:
        records = list(audit_log.iter_records(session))
        assert audit_log.load_checkpoints(session) == []
    assert "checkpoint not signed" in records[4].details["checkpoint_error"]
    assert all("checkpoint_error" not in r.details for r in records if r.seq != 5)
