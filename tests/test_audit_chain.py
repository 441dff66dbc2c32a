"""The hash chain and checkpoints as pure functions: encoding, hashing, naming tampering."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from facelead.audit.chain import (
    GENESIS_HASH,
    AuditIntegrityError,
    AuditRecord,
    Checkpoint,
    TamperKind,
    canonical_json,
    event_hash,
    format_ts,
    verify_chain,
)
from facelead.audit.checkpoint import from_jsonl, sign_checkpoint, to_jsonl
from facelead.audit.export import EXPORT_FIELDS, export_lines, jsonl_line, record_from_json
from facelead.audit.log import MAX_DETAILS_BYTES, normalise_details
from facelead.errors import FaceLeadError

KEY = Ed25519PrivateKey.generate()
T0 = datetime(2025, 3, 3, 17, 0, tzinfo=UTC)


def record(seq: int, prev_hash: str, **overrides: object) -> AuditRecord:
    body: dict[str, object] = {
        "seq": seq,
        "ts": format_ts(T0 + timedelta(seconds=seq)),
        "actor": f"user{seq % 3}",
        "actor_id": seq % 3,
        "role": "investigator",
        "agency": "LASD",
        "action": "search.submit",
        "outcome": "ok",
        "object_type": "search",
        "object_id": str(seq),
        "case_number": f"C-{seq // 4}",
        "purpose": "criminal-investigation",
        "client_address": "10.0.0.1",
        "interface": "cli",
        "details": {"n": seq, "note": "é"},
    }
    body.update(overrides)
    return AuditRecord(**body, prev_hash=prev_hash, hash=event_hash(prev_hash, body))  # type: ignore[arg-type]


def chain(n: int) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    for seq in range(1, n + 1):
        records.append(record(seq, records[-1].hash if records else GENESIS_HASH))
    return records


def checkpoint(records: list[AuditRecord], seq: int, key: Ed25519PrivateKey = KEY) -> Checkpoint:
    return sign_checkpoint(key, seq, records[seq - 1].hash, T0 + timedelta(hours=1))


def first(records: list[AuditRecord], *cps: Checkpoint) -> tuple[int, TamperKind] | None:
    report = verify_chain(records, cps, KEY.public_key())
    return None if report.first is None else (report.first.seq, report.first.kind)


def renumber(r: AuditRecord, seq: int) -> AuditRecord:
    return dataclasses.replace(r, seq=seq)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'.encode()
    with pytest.raises(TypeError):
        canonical_json({"image": b"\xff\xd8"})
    with pytest.raises(ValueError):
        canonical_json({"score": float("nan")})


def test_event_hash_follows_the_documented_formula() -> None:
    r = record(1, GENESIS_HASH)
    body = {**r.content(), "prev_hash": GENESIS_HASH}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert r.hash == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert event_hash("1" * 64, r.content()) != r.hash  # the predecessor is bound in


def test_details_are_normalised_and_never_hold_bytes() -> None:
    # An int key on purpose (outside the declared str keys): it comes back as JSON's "3".
    loose: dict[Any, Any] = {"ids": ("a", "b"), 3: {"x": 1}}
    assert normalise_details(loose) == {"ids": ["a", "b"], "3": {"x": 1}}
    with pytest.raises(TypeError, match="bytes"):
        normalise_details({"error": {"probe": b"\x89PNG"}})
    with pytest.raises(ValueError, match="exceed"):
        normalise_details({"blob": "A" * MAX_DETAILS_BYTES})


def test_an_intact_chain_verifies_and_reports_its_head() -> None:
    records = chain(30)
    report = verify_chain(
        records, [checkpoint(records, 10), checkpoint(records, 30)], KEY.public_key()
    )
    assert report.ok and report.first is None
    assert (report.events_checked, report.head_hash) == (30, records[-1].hash)
    assert verify_chain([], [], KEY.public_key()).ok


@settings(max_examples=60, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=19),
    name=st.sampled_from(
        [
            "ts",
            "actor",
            "actor_id",
            "role",
            "agency",
            "action",
            "outcome",
            "object_id",
            "case_number",
            "purpose",
            "client_address",
            "interface",
            "details",
        ]
    ),
)
def test_any_edited_field_is_named_at_its_seq(index: int, name: str) -> None:
    records = chain(20)
    old = getattr(records[index], name)
    new: object = {"n": -1} if name == "details" else (7 if name == "actor_id" else f"{old}x")
    edit: dict[str, Any] = {name: new}  # the field is chosen at run time: no static type
    records[index] = dataclasses.replace(records[index], **edit)
    assert first(records) == (index + 1, TamperKind.EDITED)


def test_deleted_events_are_named_gap_or_renumbered() -> None:
    records = chain(20)
    assert first(records[:6] + records[7:]) == (7, TamperKind.DELETED)
    shifted = records[:6] + [renumber(r, r.seq - 1) for r in records[7:]]
    assert first(shifted) == (7, TamperKind.DELETED)


def test_an_inserted_event_is_named() -> None:
    records = chain(20)
    forged = record(7, records[5].hash, actor="mallory", purpose="forged")
    shifted = [renumber(r, r.seq + 1) for r in records[6:]]
    assert first([*records[:6], forged, *shifted]) == (7, TamperKind.INSERTED)
    duplicate = [*records[:7], record(7, records[5].hash, actor="mallory"), *records[7:]]
    assert first(duplicate) == (7, TamperKind.INSERTED)


def test_reordered_events_are_named() -> None:
    records = chain(20)
    swapped = [*records[:6], renumber(records[7], 7), renumber(records[6], 8), *records[8:]]
    assert first(swapped) == (7, TamperKind.REORDERED)
    out_of_order = [*records[:6], records[7], records[6], *records[8:]]
    assert first(out_of_order) == (7, TamperKind.REORDERED)


def test_truncation_after_a_checkpoint_is_named() -> None:
    records = chain(30)
    assert first(records[:25], checkpoint(records, 30)) == (26, TamperKind.TRUNCATED)
    report = verify_chain(records[:25], [], KEY.public_key(), expected_head=(30, records[-1].hash))
    assert report.first is not None and report.first.seq == 26
    assert report.first.kind is TamperKind.TRUNCATED


def test_a_checkpoint_signed_by_another_key_is_named() -> None:
    records = chain(30)
    assert first(records, checkpoint(records, 20, Ed25519PrivateKey.generate())) == (
        20,
        TamperKind.FOREIGN_CHECKPOINT,
    )
    genuine = checkpoint(records, 20)
    moved = dataclasses.replace(genuine, seq=21, head_hash=records[20].hash)
    assert first(records, moved) == (21, TamperKind.FOREIGN_CHECKPOINT)


def test_a_rewritten_and_rehashed_chain_is_caught_by_the_next_checkpoint() -> None:
    records = chain(30)
    cps = (checkpoint(records, 10), checkpoint(records, 20))
    rewritten = records[:14]
    for seq in range(15, 31):
        rewritten.append(record(seq, rewritten[-1].hash, purpose="innocent" if seq == 15 else None))
    assert first(rewritten, *cps) == (11, TamperKind.CHECKPOINT_MISMATCH)
    assert first(rewritten) is None  # without a checkpoint a full rewrite is undetectable


def test_rehashed_single_event_breaks_the_link_to_its_successor() -> None:
    records = chain(20)
    records[6] = record(7, records[5].hash, purpose="innocent")
    assert first(records) == (7, TamperKind.BROKEN_LINK)


def test_checkpoints_round_trip_as_json_lines_and_refuse_garbage() -> None:
    records = chain(12)
    cps = [checkpoint(records, 5), checkpoint(records, 12)]
    assert from_jsonl(to_jsonl(cps)) == cps
    with pytest.raises(AuditIntegrityError, match="line 2") as caught:
        from_jsonl(to_jsonl(cps[:1]) + '{"seq": "five"}\n')
    assert isinstance(caught.value, FaceLeadError) and caught.value.code == "audit_integrity"


def test_raise_if_tampered_carries_the_first_bad_seq() -> None:
    records = chain(10)
    records[3] = dataclasses.replace(records[3], purpose="edited")
    report = verify_chain(records, [], KEY.public_key())
    with pytest.raises(AuditIntegrityError) as caught:
        report.raise_if_tampered()
    assert caught.value.details == {"seq": 4, "kind": "edited"}


def test_exported_json_lines_verify_without_facelead() -> None:
    records = chain(5)
    lines = "".join(export_lines(records, "jsonl")).splitlines()
    for line, original in zip(lines, records, strict=True):
        row = json.loads(line)
        claimed = row.pop("hash")
        assert hashlib.sha256(canonical_json(row)).hexdigest() == claimed == original.hash
        assert record_from_json(line) == original
    assert jsonl_line(records[0]) == lines[0] + "\n"
    header, *rows = "".join(export_lines(records, "csv")).splitlines()
    assert header.split(",") == list(EXPORT_FIELDS) and len(rows) == 5
