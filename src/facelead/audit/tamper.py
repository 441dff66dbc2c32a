"""Naming the tampering at the first event verification cannot vouch for.

Pure functions over a bounded window of events around that point. They only
need each event's numbers, hashes and a way to re-hash it under another seq
(:class:`Hashed`), so this module stands apart from the chain's encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

CLASSIFY_WINDOW = 64
"""How far around the first bad event verification looks to name the tampering."""


class Hashed(Protocol):
    """What classification needs of a stored event (``chain.AuditRecord`` is one)."""

    @property
    def seq(self) -> int: ...

    @property
    def prev_hash(self) -> str: ...

    @property
    def hash(self) -> str: ...

    def rehash(self, seq: int | None = None) -> str: ...


class TamperKind(StrEnum):
    EDITED = "edited"  # a field changed after the event was hashed
    DELETED = "deleted"  # events missing (a gap, or later events renumbered down)
    INSERTED = "inserted"  # events that were never appended by FaceLead
    REORDERED = "reordered"  # the right events in the wrong order
    TRUNCATED = "truncated"  # the log ends before a signed checkpoint
    FOREIGN_CHECKPOINT = "foreign_checkpoint"  # not signed by the trusted key
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"  # chain rewritten before a signed checkpoint
    BROKEN_LINK = "broken_link"  # an event does not commit to its predecessor


@dataclass(frozen=True)
class Issue:
    seq: int  # the first sequence number that cannot be vouched for
    kind: TamperKind
    message: str


def original_seq(record: Hashed, window: int = CLASSIFY_WINDOW) -> int | None:
    """The seq under which ``record`` was hashed: its own, a nearby one if renumbered, or None."""
    if record.rehash() == record.hash:
        return record.seq
    for offset in range(1, window + 1):
        for seq in (record.seq + offset, record.seq - offset):
            if seq > 0 and record.rehash(seq) == record.hash:
                return seq
    return None


def classify(
    record: Hashed,
    expected: int,
    prev_hash: str,
    recent: Sequence[Hashed],
    ahead: Sequence[Hashed],
) -> Issue:
    """Name the first bad seq and the kind of tampering at the first event that fails.

    ``recent`` are the last vouched-for events before it, ``ahead`` the ones
    after it. Renumbered events still verify under their original seq, which
    tells a deletion (moved down, original never reappears), a reorder (moved
    down, original appears later) and an insertion (moved up) apart.
    """
    if record.seq != expected:
        return _misnumbered(record, expected, ahead)
    origin = original_seq(record)
    if origin is None:
        return Issue(expected, TamperKind.EDITED, f"event {expected} no longer matches its hash")
    if origin > expected:
        return _moved_down(expected, origin, ahead)
    if origin < expected:
        return Issue(
            origin,
            TamperKind.INSERTED,
            f"event {origin} was renumbered to {expected}: events {origin}..{expected - 1} "
            "were inserted before it",
        )
    return _unlinked(record, expected, prev_hash, recent, ahead)


def _misnumbered(record: Hashed, expected: int, ahead: Sequence[Hashed]) -> Issue:
    if record.seq < expected:
        return Issue(
            record.seq,
            TamperKind.INSERTED,
            f"a second event claims seq {record.seq} (expected {expected})",
        )
    return _moved_down(expected, record.seq, ahead)


def _moved_down(expected: int, origin: int, ahead: Sequence[Hashed]) -> Issue:
    missing = range(expected, origin)
    if any(x.seq in missing or original_seq(x) in missing for x in ahead):
        return Issue(
            expected,
            TamperKind.REORDERED,
            f"event {origin} sits where event {expected} belongs; {expected} appears later",
        )
    last = origin - 1
    span = f"event {expected}" if last == expected else f"events {expected}..{last}"
    return Issue(expected, TamperKind.DELETED, f"{span} missing from the chain")


def _unlinked(
    record: Hashed,
    expected: int,
    prev_hash: str,
    recent: Sequence[Hashed],
    ahead: Sequence[Hashed],
) -> Issue:
    """The event is intact but does not follow its predecessor."""
    for earlier in recent:
        if earlier.hash == record.prev_hash:
            return Issue(
                earlier.seq + 1,
                TamperKind.INSERTED,
                f"event {expected} follows event {earlier.seq}: events "
                f"{earlier.seq + 1}..{expected - 1} were inserted",
            )
    if any(later.hash == record.prev_hash for later in ahead):
        return Issue(
            expected - 1 if expected > 1 else 1,
            TamperKind.REORDERED,
            f"event {expected} follows an event stored after it",
        )
    bad = max(expected - 1, 1)
    return Issue(
        bad,
        TamperKind.BROKEN_LINK,
        f"event {expected} does not commit to event {expected - 1} "
        f"(prev_hash {record.prev_hash[:12]}…, found {prev_hash[:12]}…): "
        f"event {bad} was rewritten and re-hashed, or events between them removed",
    )
