"""The hash chain: canonical encoding, event hashes and verification.

Pure functions, no I/O. Each event's ``hash`` is

    SHA-256( canonical_json( event fields + {"prev_hash": previous event's hash} ) )

where the first event's ``prev_hash`` is :data:`GENESIS_HASH`. ``seq`` and
``ts`` are inside the hashed object, so renumbering or re-timing an event
breaks it. Signed checkpoints (RFC 6962-style tree heads, see
:func:`checkpoint_message`) pin the chain head at a sequence number with a
key that lives outside the database, so a rewrite of the whole chain before
a checkpoint, or its truncation after one, is caught too.

Verification walks the events in ``seq`` order and stops at the first event
it cannot vouch for; ``tamper.classify`` then looks at a bounded window
around it to name the kind of tampering. Everything after it is untrusted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from facelead.audit.tamper import CLASSIFY_WINDOW, Issue, TamperKind, classify
from facelead.errors import FaceLeadError

__all__ = [
    "CHECKPOINT_ORIGIN",
    "CONTENT_FIELDS",
    "GENESIS_HASH",
    "AuditIntegrityError",
    "AuditRecord",
    "Checkpoint",
    "Issue",
    "TamperKind",
    "VerificationReport",
    "canonical_json",
    "checkpoint_message",
    "checkpoint_signed_by",
    "event_hash",
    "format_ts",
    "parse_ts",
    "public_key_id",
    "verify_chain",
]

GENESIS_HASH = "0" * 64
"""``prev_hash`` of event 1: there is nothing before it."""

CHECKPOINT_ORIGIN = "facelead.audit/v1"
"""First line of every signed checkpoint body; names the log and the format."""

CONTENT_FIELDS = (
    "seq", "ts", "actor", "actor_id", "role", "agency", "action", "outcome", "object_type",
    "object_id", "case_number", "purpose", "client_address", "interface", "details",
)  # fmt: skip
"""The event fields covered by its hash (plus ``prev_hash``); the stable export schema."""


class AuditIntegrityError(FaceLeadError):
    """The audit log or a checkpoint cannot be trusted (tampered, malformed, wrong key)."""

    code = "audit_integrity"
    http_status = 500


def canonical_json(value: Any) -> bytes:
    """The one byte encoding that is hashed: sorted keys, no whitespace, UTF-8.

    Raises ``TypeError`` for anything that is not plain JSON (bytes included)
    and ``ValueError`` for NaN or infinities, which JSON cannot represent.
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)  # fmt: skip
    return text.encode("utf-8")


def format_ts(ts: datetime) -> str:
    """UTC, microseconds, ``Z``: e.g. ``2025-03-03T17:04:05.123456Z`` (what both databases keep)."""
    if ts.tzinfo is None:
        raise AuditIntegrityError("audit timestamps must be timezone-aware UTC")
    return ts.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def parse_ts(text: str) -> datetime:
    """Inverse of :func:`format_ts`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def event_hash(prev_hash: str, event: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical event (``CONTENT_FIELDS``) chained to ``prev_hash``."""
    body = {name: event[name] for name in CONTENT_FIELDS}
    body["prev_hash"] = prev_hash
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored event as verification and the report see it (``ts`` pre-formatted)."""

    seq: int
    ts: str
    actor: str
    actor_id: int | None
    role: str | None
    agency: str | None
    action: str
    outcome: str
    object_type: str | None
    object_id: str | None
    case_number: str | None
    purpose: str | None
    client_address: str | None
    interface: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def content(self, seq: int | None = None) -> dict[str, Any]:
        """The hashed fields; ``seq`` substitutes another number (used to spot renumbering)."""
        return {
            "seq": self.seq if seq is None else seq,
            "ts": self.ts,
            "actor": self.actor,
            "actor_id": self.actor_id,
            "role": self.role,
            "agency": self.agency,
            "action": self.action,
            "outcome": self.outcome,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "case_number": self.case_number,
            "purpose": self.purpose,
            "client_address": self.client_address,
            "interface": self.interface,
            "details": self.details,
        }

    def rehash(self, seq: int | None = None) -> str:
        """:func:`event_hash` of this record (under another ``seq`` if given), in one pass."""
        body = self.content(seq)
        body["prev_hash"] = self.prev_hash
        return hashlib.sha256(canonical_json(body)).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        """Export form: every hashed field plus ``prev_hash`` and ``hash``."""
        return {**self.content(), "prev_hash": self.prev_hash, "hash": self.hash}

    @property
    def when(self) -> datetime:
        return parse_ts(self.ts)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement "after event ``seq`` the chain head was ``head_hash``"."""

    seq: int
    head_hash: str
    ts: str
    key_id: str
    signature: str  # base64 Ed25519 signature of checkpoint_message(...)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "head_hash": self.head_hash,
            "ts": self.ts,
            "key_id": self.key_id,
            "signature": self.signature,
        }


def checkpoint_message(seq: int, head_hash: str, ts: str) -> bytes:
    """The signed body, one field per line like a C2SP/RFC 6962 signed tree head."""
    return f"{CHECKPOINT_ORIGIN}\n{seq}\n{head_hash}\n{ts}\n".encode("ascii")


def public_key_id(public_key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the raw 32-byte public key: names the key without revealing anything."""
    return hashlib.sha256(public_key.public_bytes_raw()).hexdigest()


def checkpoint_signed_by(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> bool:
    """True when ``public_key`` signed exactly this (seq, head, ts)."""
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
        message = checkpoint_message(checkpoint.seq, checkpoint.head_hash, checkpoint.ts)
        public_key.verify(signature, message)
    except (InvalidSignature, binascii.Error, UnicodeEncodeError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class VerificationReport:
    events_checked: int  # events vouched for, from seq 1
    head_seq: int  # last vouched-for event (0 for an empty log)
    head_hash: str
    checkpoints_checked: int
    issues: tuple[Issue, ...] = field(default=())  # sorted: issues[0] is the first bad seq

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def first(self) -> Issue | None:
        return self.issues[0] if self.issues else None

    def raise_if_tampered(self) -> None:
        if self.first is not None:
            first = self.first
            raise AuditIntegrityError(
                f"audit log tampered at seq {first.seq} ({first.kind}): {first.message}",
                seq=first.seq,
                kind=first.kind.value,
            )


def verify_chain(
    events: Iterable[AuditRecord],
    checkpoints: Iterable[Checkpoint],
    public_key: Ed25519PublicKey,
    *,
    expected_head: tuple[int, str] | None = None,
) -> VerificationReport:
    """Recompute the chain from seq 1 and hold it to every validly signed checkpoint.

    ``events`` must come in storage order (``ORDER BY seq``); they are
    streamed, so a million events need no more memory than the classify
    window. ``expected_head`` is what the writers' head row claims; it only
    adds a truncation check and is never trusted for anything else.
    """
    issues: list[Issue] = []
    pinned: dict[int, set[str]] = {}
    cps = sorted(checkpoints, key=lambda c: c.seq)
    for cp in cps:
        if checkpoint_signed_by(cp, public_key):
            pinned.setdefault(cp.seq, set()).add(cp.head_hash)
        else:
            issues.append(_foreign(cp))
    walk = _walk(iter(events), pinned)
    issues.extend(walk.issues)
    if not walk.issues:
        issues.extend(_truncation(walk.head_seq, pinned, expected_head))
    issues.sort(key=lambda issue: (issue.seq, list(TamperKind).index(issue.kind)))
    return VerificationReport(walk.head_seq, walk.head_seq, walk.head_hash, len(cps), tuple(issues))


def _foreign(cp: Checkpoint) -> Issue:
    return Issue(
        cp.seq,
        TamperKind.FOREIGN_CHECKPOINT,
        f"checkpoint at seq {cp.seq} is not signed by the trusted key (key id {cp.key_id[:16]})",
    )


@dataclass
class _Walk:
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    issues: list[Issue] = field(default_factory=list)


def _walk(events: Iterator[AuditRecord], pinned: Mapping[int, set[str]]) -> _Walk:
    """Vouch for events one by one; stop at the first one that fails."""
    state = _Walk()
    recent: deque[AuditRecord] = deque(maxlen=CLASSIFY_WINDOW)
    last_matched = 0
    if GENESIS_HASH not in pinned.get(0, {GENESIS_HASH}):
        state.issues.append(Issue(1, TamperKind.CHECKPOINT_MISMATCH, "empty-log checkpoint"))
        return state
    for record in events:
        expected = state.head_seq + 1
        if (
            record.seq != expected
            or record.prev_hash != state.head_hash
            or record.rehash() != record.hash
        ):
            ahead = list(islice(events, CLASSIFY_WINDOW))
            state.issues.append(classify(record, expected, state.head_hash, recent, ahead))
            return state
        signed = pinned.get(record.seq)
        if signed is not None and record.hash not in signed:
            state.issues.append(_mismatch(last_matched, record.seq))
            return state
        if signed is not None:
            last_matched = record.seq
        recent.append(record)
        state.head_seq, state.head_hash = record.seq, record.hash
    return state


def _mismatch(last_matched: int, seq: int) -> Issue:
    return Issue(
        last_matched + 1,
        TamperKind.CHECKPOINT_MISMATCH,
        f"the chain at seq {seq} differs from its signed checkpoint: events "
        f"{last_matched + 1}..{seq} were rewritten and re-hashed",
    )


def _truncation(
    last_seq: int, pinned: Mapping[int, set[str]], expected_head: tuple[int, str] | None
) -> list[Issue]:
    beyond = [seq for seq in pinned if seq > last_seq]
    if beyond:
        return [
            Issue(
                last_seq + 1,
                TamperKind.TRUNCATED,
                f"the log ends at seq {last_seq} but a signed checkpoint covers seq {max(beyond)}",
            )
        ]
    if expected_head is not None and expected_head[0] > last_seq:
        return [
            Issue(
                last_seq + 1,
                TamperKind.TRUNCATED,
                f"the log ends at seq {last_seq} but its head row records seq {expected_head[0]}",
            )
        ]
    return []
