"""Appending to and reading the audit log, inside the caller's transaction.

Appends are serialised by one UPDATE of the ``audit_head`` row, which is the
first write of the append: on PostgreSQL it takes the row lock (concurrent
writers queue behind it until commit), on SQLite it takes the database write
lock before the head is read. Either way ``seq`` is gapless (a rolled-back
transaction rolls back its number too) and the chain is linear.

Automatic checkpoints need the signing key, which lives with the deployment's
settings, not in the database: the services layer registers the key file for
each database URL with :func:`configure_checkpoints`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, select, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from facelead.audit.chain import (
    CONTENT_FIELDS,
    AuditIntegrityError,
    AuditRecord,
    Checkpoint,
    event_hash,
    format_ts,
    parse_ts,
)
from facelead.audit.checkpoint import load_or_create_key, sign_checkpoint
from facelead.store.audit_models import HEAD_ROW_ID, AuditCheckpoint, AuditEvent, AuditHead
from facelead.store.models import utcnow

CHECKPOINT_EVERY = 1000
"""Sign a checkpoint automatically after every this many events."""

MAX_DETAILS_BYTES = 16 * 1024
"""Details are context, not content: anything bigger is a bug (or an image) and is refused."""

READ_BATCH = 5000


@dataclass(frozen=True)
class _Signing:
    key_path: Path
    every: int


_SIGNING: dict[str, _Signing] = {}
_KEYS: dict[Path, Ed25519PrivateKey] = {}
_KEYS_LOCK = threading.Lock()


def _url_key(url: str | URL) -> str:
    return make_url(url).render_as_string(hide_password=False)


def configure_checkpoints(
    database_url: str, key_path: Path | None, every: int | None = None
) -> None:
    """Sign a checkpoint every ``every`` events appended to this database; None key: stop.

    ``every`` None keeps the interval already configured for this database
    (else :data:`CHECKPOINT_EVERY`), so re-attaching never resets a tuned one.
    """
    key = _url_key(database_url)
    if key_path is None:
        _SIGNING.pop(key, None)
        return
    current = _SIGNING.get(key)
    interval = every if every is not None else (current.every if current else CHECKPOINT_EVERY)
    if interval < 1:
        raise ValueError("checkpoint interval must be at least 1")
    _SIGNING[key] = _Signing(key_path, interval)


def signing_key(key_path: Path) -> Ed25519PrivateKey:
    """The (cached) private key at ``key_path``, created on first use."""
    with _KEYS_LOCK:
        if key_path not in _KEYS:
            _KEYS[key_path] = load_or_create_key(key_path)
        return _KEYS[key_path]


def _plain(value: Any) -> Any:
    """``json.dumps`` fallback: a few harmless types become JSON; bytes never do."""
    if isinstance(value, bytes | bytearray | memoryview):
        raise TypeError("audit details must not hold bytes: image data never enters the log")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()  # a numpy scalar
    raise TypeError(f"audit details must be plain JSON, not {type(value).__name__}")


def normalise_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """The JSON form the database will hand back, so the hash survives a round trip."""
    text = json.dumps(dict(details or {}), default=_plain, allow_nan=False)
    if len(text.encode("utf-8")) > MAX_DETAILS_BYTES:
        raise ValueError(f"audit details exceed {MAX_DETAILS_BYTES} bytes: blobs do not belong")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def append_event(
    session: Session,
    *,
    actor: str,
    action: str,
    outcome: str,
    actor_id: int | None = None,
    role: str | None = None,
    agency: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    case_number: str | None = None,
    purpose: str | None = None,
    client_address: str | None = None,
    interface: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """Append one hash-chained event in the caller's transaction and return it.

    Every ``CHECKPOINT_EVERY``-th event also gets a signed checkpoint. If the
    signing key cannot be loaded the action still goes ahead (a broken key
    file must not halt every search) and the event says so in
    ``details.checkpoint_error``, for the auditors to see.
    """
    if outcome != "ok" and not outcome.startswith("refused:"):
        raise ValueError(f"outcome must be 'ok' or 'refused:<code>', not {outcome!r}")
    body = normalise_details(details)
    seq, prev_hash = _claim_next(session)
    key, problem = _checkpoint_key(session, seq)
    if problem is not None:
        body["checkpoint_error"] = problem
    now = utcnow()
    fields: dict[str, Any] = {
        "seq": seq,
        "actor": actor,
        "actor_id": actor_id,
        "role": role,
        "agency": agency,
        "action": action,
        "outcome": outcome,
        "object_type": object_type,
        "object_id": None if object_id is None else str(object_id),
        "case_number": case_number,
        "purpose": purpose,
        "client_address": client_address,
        "interface": interface,
        "details": body,
    }
    digest = event_hash(prev_hash, {**fields, "ts": format_ts(now)})
    session.execute(insert(AuditEvent).values(**fields, ts=now, prev_hash=prev_hash, hash=digest))
    session.execute(
        update(AuditHead).where(AuditHead.id == HEAD_ROW_ID).values(seq=seq, hash=digest),
        execution_options={"synchronize_session": False},
    )
    if key is not None:
        store_checkpoint(session, sign_checkpoint(key, seq, digest, now))
    return AuditRecord(**fields, ts=format_ts(now), prev_hash=prev_hash, hash=digest)


def _claim_next(session: Session) -> tuple[int, str]:
    """Lock the head row (the first write of the append) and take the next seq."""
    seq, prev_hash = session.execute(
        update(AuditHead)
        .where(AuditHead.id == HEAD_ROW_ID)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.hash),
        execution_options={"synchronize_session": False},
    ).one()
    return _continue_after(session, int(seq), str(prev_hash))


def _checkpoint_key(session: Session, seq: int) -> tuple[Ed25519PrivateKey | None, str | None]:
    """The key to sign a checkpoint after event ``seq``, if one is due: (key, problem)."""
    signing = _SIGNING.get(_url_key(session.get_bind().engine.url))
    if signing is None or seq % signing.every:
        return None, None
    try:
        return signing_key(signing.key_path), None
    except (OSError, ValueError, TypeError, AuditIntegrityError) as exc:
        return None, f"checkpoint not signed: {type(exc).__name__}: {exc}"[:500]


def _continue_after(session: Session, seq: int, prev_hash: str) -> tuple[int, str]:
    """Never collide with rows beyond the head row (someone inserted them by hand).

    The new event then chains onto the last stored row, so appends keep
    working and verification names the tampering. A head row ahead of the
    rows (a truncated tail) is kept: the gap it leaves is the evidence.
    """
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    if last is not None and last.seq >= seq:
        return int(last.seq) + 1, str(last.hash)
    return seq, prev_hash


def store_checkpoint(session: Session, checkpoint: Checkpoint) -> None:
    session.execute(insert(AuditCheckpoint).values(**_checkpoint_row(checkpoint)))


def _checkpoint_row(cp: Checkpoint) -> dict[str, Any]:
    return {**cp.as_dict(), "ts": parse_ts(cp.ts)}


def issue_checkpoint(session: Session, private_key: Ed25519PrivateKey) -> Checkpoint:
    """Sign the current head (a past prefix stays true, so no lock is needed) and store it."""
    seq, head = current_head(session)
    checkpoint = sign_checkpoint(private_key, seq, head, utcnow())
    store_checkpoint(session, checkpoint)
    return checkpoint


def current_head(session: Session) -> tuple[int, str]:
    """What the writers' head row claims: (last seq, its hash)."""
    row = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ROW_ID)
    ).one()
    return int(row.seq), str(row.hash)


def load_checkpoints(session: Session) -> list[Checkpoint]:
    rows = session.execute(
        select(AuditCheckpoint).order_by(AuditCheckpoint.seq, AuditCheckpoint.id)
    )
    return [
        Checkpoint(cp.seq, cp.head_hash, format_ts(cp.ts), cp.key_id, cp.signature)
        for cp in rows.scalars()
    ]


_EVENTS = AuditEvent.__table__
_COLUMNS = tuple(_EVENTS.c[name] for name in (*CONTENT_FIELDS, "prev_hash", "hash"))


def iter_records(
    session: Session,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    actions: Sequence[str] | None = None,
    object_ids: Sequence[str] | None = None,
) -> Iterator[AuditRecord]:
    """Events in ``seq`` order, streamed in batches; filters are ANDed, ``end`` exclusive."""
    query = select(*_COLUMNS).order_by(_EVENTS.c.seq)
    if start is not None:
        query = query.where(AuditEvent.ts >= start)
    if end is not None:
        query = query.where(AuditEvent.ts < end)
    if actions is not None:
        query = query.where(AuditEvent.action.in_(list(actions)))
    if object_ids is not None:
        query = query.where(AuditEvent.object_id.in_(list(object_ids)))
    result = session.connection().execute(query.execution_options(yield_per=READ_BATCH))
    for row in result:
        yield AuditRecord(
            row[0],
            format_ts(row[1]),
            *row[2:],  # type: ignore[arg-type]
        )
