"""Audit use cases: verify the chain, sign a checkpoint, misuse report, SIEM export.

Each runs through ``perform`` with its AUDIT_* action, so only the roles the
permission matrix allows can read the log, and every reading is itself an
audit event (appended after the reading, in the same transaction).

Reads happen in a fixed order: checkpoints, then the head row, then the
events. Appends only ever add, so whatever was signed or claimed before the
events were read is covered by them, and a concurrent writer can never make
an intact log look truncated.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from facelead.audit import log
from facelead.audit.chain import AuditRecord, Checkpoint, VerificationReport, verify_chain
from facelead.audit.checkpoint import KEY_FILE, from_jsonl, load_public_key, to_jsonl
from facelead.audit.export import FORMATS as EXPORT_FORMATS
from facelead.audit.export import export_lines
from facelead.audit.report import LEAD_REPORT, REVIEW_ACTIONS, AuditReport, ReportConfig
from facelead.audit.report import build_report as _build_report
from facelead.audit.report_render import FORMATS as REPORT_FORMATS
from facelead.audit.report_render import render
from facelead.config import Settings
from facelead.domain.access import Action, Actor
from facelead.errors import InputError, NotFoundError
from facelead.services.context import Services
from facelead.services.uow import perform

__all__ = [
    "EXPORT_FORMATS",
    "REPORT_FORMATS",
    "AuditReport",
    "CheckpointIssued",
    "VerificationReport",
    "attach",
    "audit_report",
    "export_events",
    "issue_checkpoint",
    "render_report",
    "verify_log",
]

LOOKUP_CHUNK = 500


def signing_key_path(settings: Settings) -> Path:
    """The checkpoint signing key: under FACELEAD_HOME/keys, never in the database."""
    return settings.keys_dir / KEY_FILE


def attach(services: Services, every: int | None = None) -> None:
    """Have appends to this deployment's database sign a checkpoint every ``every`` events.

    Call once per process for each ``Services`` (the audit commands do it
    themselves); ``every`` None keeps an interval already set, else 1000.
    """
    log.configure_checkpoints(
        services.settings.effective_database_url, signing_key_path(services.settings), every
    )


def trusted_public_key(services: Services, public_key_file: Path | None = None) -> Ed25519PublicKey:
    """The key checkpoints must be signed with: a given file, else the deployment's own."""
    if public_key_file is not None:
        if not public_key_file.is_file():
            raise NotFoundError(f"no public key file {public_key_file}", code="not_found")
        return load_public_key(public_key_file)
    return log.signing_key(signing_key_path(services.settings)).public_key()


def _read_checkpoint_file(path: Path | None) -> list[Checkpoint]:
    if path is None:
        return []
    try:
        return from_jsonl(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", code="unreadable") from exc


def _verify(session: Session, key: Ed25519PublicKey, extra: list[Checkpoint]) -> VerificationReport:
    checkpoints = [*log.load_checkpoints(session), *extra]
    head = log.current_head(session)
    return verify_chain(log.iter_records(session), checkpoints, key, expected_head=head)


def verify_log(
    services: Services,
    actor: Actor,
    *,
    checkpoint_file: Path | None = None,
    public_key_file: Path | None = None,
) -> VerificationReport:
    """Recompute the whole chain; hold it to stored and exported checkpoints.

    Tampering is a result, not a refusal: the verification succeeded in
    finding it, and the event records the first bad seq and its kind.
    """
    attach(services)
    with perform(services, actor, Action.AUDIT_VERIFY, object_type="audit_log") as scope:
        scope.details["checkpoint_file"] = checkpoint_file.name if checkpoint_file else None
        extra = _read_checkpoint_file(checkpoint_file)
        report = _verify(scope.session, trusted_public_key(services, public_key_file), extra)
        first = report.first
        scope.details.update(
            intact=report.ok,
            events_checked=report.events_checked,
            checkpoints_checked=report.checkpoints_checked,
            first_bad_seq=first.seq if first else None,
            kind=first.kind.value if first else None,
        )
    return report


@dataclass(frozen=True)
class CheckpointIssued:
    checkpoint: Checkpoint
    all_checkpoints: list[Checkpoint]

    def jsonl(self) -> str:
        """Every checkpoint, for safekeeping outside the database."""
        return to_jsonl(self.all_checkpoints)


def issue_checkpoint(services: Services, actor: Actor) -> CheckpointIssued:
    """Sign the current head on demand, after verifying it: a checkpoint never blesses tampering."""
    attach(services)
    with perform(services, actor, Action.AUDIT_CHECKPOINT, object_type="audit_log") as scope:
        key = log.signing_key(signing_key_path(services.settings))
        report = _verify(scope.session, key.public_key(), [])
        report.raise_if_tampered()
        checkpoint = log.issue_checkpoint(scope.session, key)
        scope.object_id = str(checkpoint.seq)
        scope.details.update(
            checkpoint_seq=checkpoint.seq, head_hash=checkpoint.head_hash, key_id=checkpoint.key_id
        )
        return CheckpointIssued(checkpoint, log.load_checkpoints(scope.session))


def _report_events(
    session: Session, start: datetime, end: datetime, baseline: timedelta
) -> list[AuditRecord]:
    """The period and its baseline window, plus earlier reviews of leads released in the period."""
    events = list(log.iter_records(session, start=start - baseline, end=end))
    released = sorted(
        {
            r.object_id
            for r in events
            if r.action == LEAD_REPORT and r.object_id and start <= r.when < end
        }
    )
    for i in range(0, len(released), LOOKUP_CHUNK):
        chunk = released[i : i + LOOKUP_CHUNK]
        events.extend(log.iter_records(session, actions=REVIEW_ACTIONS, object_ids=chunk))
    return events


def audit_report(
    services: Services,
    actor: Actor,
    start: datetime,
    end: datetime,
    *,
    timezone: str = "UTC",
    check_integrity: bool = True,
) -> AuditReport:
    """Misuse and training signals for [start, end); states whether the log verified."""
    with perform(services, actor, Action.AUDIT_READ, object_type="audit_log") as scope:
        scope.details.update(start=start.isoformat(), end=end.isoformat(), timezone=timezone)
        config = ReportConfig(timezone=_zone(timezone))
        if start.tzinfo is None or end.tzinfo is None or not start < end:
            raise InputError("the period needs aware datetimes with from < to", code="bad_period")
        integrity = ""
        if check_integrity:
            integrity = _integrity_line(_verify(scope.session, trusted_public_key(services), []))
        events = _report_events(scope.session, start, end, timedelta(days=config.baseline_days))
        report = _build_report(events, start, end, config, integrity)
        scope.details["findings"] = sum(len(r.findings) for r in report.results)
        return report


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"unknown time zone {name!r}", code="invalid_timezone") from exc
    return name


def _integrity_line(report: VerificationReport) -> str:
    if report.first is None:
        return (
            f"verified: {report.events_checked} events chain correctly and match "
            f"{report.checkpoints_checked} signed checkpoints"
        )
    first = report.first
    return f"TAMPERED: first bad seq {first.seq} ({first.kind.value}): {first.message}"


def render_report(report: AuditReport, fmt: str) -> str:
    if fmt not in REPORT_FORMATS:
        raise InputError(f"report format must be one of {', '.join(REPORT_FORMATS)}", code="format")
    return render(report, fmt)


def export_events(
    services: Services,
    actor: Actor,
    sink: TextIO,
    *,
    fmt: str = "jsonl",
    start: datetime | None = None,
    end: datetime | None = None,
) -> int:
    """Stream events (``seq`` order) to ``sink`` in the stable SIEM schema; returns the count."""
    with perform(services, actor, Action.AUDIT_EXPORT, object_type="audit_log") as scope:
        scope.details.update(
            format=fmt,
            start=start.isoformat() if start else None,
            end=end.isoformat() if end else None,
        )
        if fmt not in EXPORT_FORMATS:
            raise InputError(
                f"export format must be one of {', '.join(EXPORT_FORMATS)}", code="format"
            )
        counted = _Counter(log.iter_records(scope.session, start=start, end=end))
        for chunk in export_lines(counted, fmt):
            sink.write(chunk)
        scope.details["rows"] = counted.count
        return counted.count


class _Counter:
    """Counts records as the export streams them."""

    def __init__(self, records: Iterator[AuditRecord]) -> None:
        self.records, self.count = records, 0

    def __iter__(self) -> Iterator[AuditRecord]:
        for record in self.records:
            self.count += 1
            yield record
