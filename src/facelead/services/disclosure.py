"""Disclosure package of a case: one ZIP for prosecution and defence alike.

Everything a court needs to weigh a face-recognition lead: each probe with
its provenance and edits, every candidate of every search (not only the
lead) with scores, the model id, every review and verification, supervisor
resolutions, lead report hashes, corroboration (supporting and contradicting),
outcomes, and every audit event of the case in the audit log's canonical,
self-verifying JSON encoding. ``SHA256SUMS`` (``sha256sum -c`` format) and
``manifest.json`` list the SHA-256 of every file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from facelead import __version__
from facelead.audit.chain import AuditRecord, format_ts
from facelead.audit.export import jsonl_line
from facelead.domain import policy
from facelead.domain.access import Action, Actor
from facelead.domain.cases import normalise_case_number
from facelead.domain.review import REPORT_DISCLAIMER
from facelead.eval.calibration import load_calibration
from facelead.eval.metrics import estimated_fmr
from facelead.services.cases import case_of, require_case
from facelead.services.context import Services
from facelead.services.review import candidates_by_subject
from facelead.services.review_view import image_suffix, safe_name
from facelead.services.uow import perform
from facelead.store import cases as cases_repo
from facelead.store import review as repo
from facelead.store.audit_models import AuditEvent
from facelead.store.case_models import SearchRecord
from facelead.store.review_models import ReviewRecord


@dataclass(frozen=True)
class DisclosurePackage:
    filename: str
    data: bytes
    manifest: dict[str, str]  # path in the ZIP -> SHA-256
    searches: int
    audit_events: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def disclose_case(services: Services, actor: Actor, number: str) -> DisclosurePackage:
    """Build the package of one case of the actor's agency (audited with its hash)."""
    with perform(services, actor, Action.CASE_DISCLOSE, case_number=number) as scope:
        number = normalise_case_number(number)
        scope.object_type, scope.object_id, scope.case_number = "case", number, number
        case = require_case(scope.session, number)
        policy.require_same_agency(case.agency, actor.agency)
        now = dt.datetime.now(dt.UTC)
        searches = cases_repo.searches_of_case(scope.session, case.id)
        files: dict[str, bytes] = {}
        for search in searches:
            files.update(_search_files(services, scope.session, search))
        events = repo.case_audit_events(scope.session, number, [s.id for s in searches])
        records = [_record(e) for e in events]
        files["audit/events.jsonl"] = "".join(jsonl_line(r) for r in records).encode()
        files["case.json"] = _json(_case_json(case_of(case), searches, actor, now, records))
        files["README.txt"] = _readme(number, now).encode()
        manifest = {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())}
        about = {"case": number, "generated_at": now.isoformat(), "generated_by": actor.username}
        files["manifest.json"] = _json({**about, "files": manifest})
        files["SHA256SUMS"] = "".join(f"{sha}  {p}\n" for p, sha in manifest.items()).encode()
        package = DisclosurePackage(
            f"disclosure-{safe_name(number)}-{now:%Y%m%dT%H%M%SZ}.zip",
            _zip(files, now),
            manifest,
            len(searches),
            len(records),
        )
        scope.details.update(
            package_sha256=package.sha256,
            manifest_sha256=hashlib.sha256(files["manifest.json"]).hexdigest(),
            files=len(files),
            searches=len(searches),
            audit_events=len(records),
        )
        return package


def _record(event: AuditEvent) -> AuditRecord:
    return AuditRecord(
        event.seq, format_ts(event.ts), event.actor, event.actor_id, event.role, event.agency,
        event.action, event.outcome, event.object_type, event.object_id, event.case_number,
        event.purpose, event.client_address, event.interface, dict(event.details),
        event.prev_hash, event.hash,
    )  # fmt: skip


def _case_json(
    case: Any, searches: list[SearchRecord], actor: Actor, now: dt.datetime, records: list[Any]
) -> dict[str, Any]:
    return {
        "disclaimer": REPORT_DISCLAIMER,
        "facelead_version": __version__,
        "generated_at": now.isoformat(),
        "generated_by": actor.username,
        "case": {
            "number": case.number,
            "agency": case.agency,
            "offence_category": case.offence_category,
            "status": case.status.value,
            "opened_by": case.opened_by,
            "opened_at": _iso(case.opened_at),
            "closed_by": case.closed_by,
            "closed_at": _iso(case.closed_at),
        },
        "searches": [{"search_id": s.id, "status": s.status} for s in searches],
        "audit_events": len(records),
        "audit_event_hashes_recompute": all(r.rehash() == r.hash for r in records),
    }


def _search_files(services: Services, session: Session, search: SearchRecord) -> dict[str, bytes]:
    folder = f"searches/{search.id}"
    probe = search.probe
    data = services.probes.get(probe.image_sha256)
    files = {f"{folder}/probe{image_suffix(data)}": data}
    table = load_calibration(search.model_id)
    candidates = []
    for candidate, info in candidates_by_subject(session, search).values():
        photo = services.images.get(info.image_sha256)
        name = f"{folder}/candidates/{candidate.rank:02d}-{safe_name(info.subject_external_id)}"
        files[name + image_suffix(photo)] = photo
        candidates.append({
            "rank": candidate.rank, "score": candidate.score,
            "estimated_fmr": estimated_fmr(table, candidate.score) if table else None,
            "subject_id": info.subject_external_id, "booking_number": info.booking_number,
            "booking_date": _iso(info.booking_date), "agency": info.agency,
            "photo_sha256": info.image_sha256, "file": name + image_suffix(photo),
        })  # fmt: skip
    body = {
        "search_id": search.id, "status": search.status, "purpose": search.purpose,
        "justification": search.justification, "requester": search.requester_username,
        "requester_agency": search.requester_agency, "created_at": _iso(search.created_at),
        "model_id": search.model_id, "calibrated": table is not None,
        "face_index": search.face_index, "faces_found": search.faces_found,
        "top_k": search.top_k, "gallery_size": search.gallery_size,
        "quality": search.quality, "quality_failures": search.quality_failures,
        "quality_override_id": search.quality_override_id,
        "probe": {"sha256": probe.image_sha256, "source_type": probe.source_type,
                  "how_obtained": probe.how_obtained, "captured_by": probe.captured_by,
                  "edits": probe.edits, "format": probe.image_format,
                  "width": probe.width, "height": probe.height},
        "candidates": candidates,
        "assignments": [{"examiner": a.examiner_username, "review_role": a.review_role,
                         "assigned_by": a.assigned_by_username, "assigned_at": _iso(a.assigned_at)}
                        for a in search.assignments],
        "reviews": [_review(r) for r in repo.reviews_of(session, search.id)],
        "resolutions": [{"round": r.round, "supervisor": r.supervisor_username,
                         "decision": r.decision, "notes": r.notes, "at": _iso(r.created_at)}
                        for r in repo.resolutions_of(session, search.id)],
        "lead_reports": [{"kind": r.kind, "issued_to": r.issued_to_username,
                          "issued_by": r.issued_by_username, "at": _iso(r.created_at),
                          "html_sha256": r.html_sha256, "pdf_sha256": r.pdf_sha256}
                         for r in repo.lead_reports_of(session, search.id)],
        "corroboration": [{"kind": c.kind, "description": c.description,
                           "supports_lead": c.supports, "recorded_by": c.recorded_by_username,
                           "recorded_at": _iso(c.recorded_at)}
                          for c in repo.corroborations_of(session, search.id)],
        "outcome": _outcome(session, search.id),
    }  # fmt: skip
    files[f"{folder}/search.json"] = _json(body)
    return files


def _review(review: ReviewRecord) -> dict[str, Any]:
    return {
        "round": review.round, "review_role": review.review_role,
        "examiner": review.examiner_username, "blind": review.blind,
        "features": review.features, "features_note": review.features_note,
        "features_at": _iso(review.features_at), "conclusion": review.conclusion,
        "completed_at": _iso(review.completed_at),
        "dispositions": [{"rank": d.candidate.rank, "disposition": d.disposition,
                          "notes": d.notes, "at": _iso(d.recorded_at)}
                         for d in review.dispositions],
    }  # fmt: skip


def _outcome(session: Session, search_id: int) -> dict[str, Any] | None:
    row = repo.outcome_of(session, search_id)
    if row is None:
        return None
    return {
        "outcome": row.outcome,
        "status_before": row.status_before,
        "notes": row.notes,
        "recorded_by": row.recorded_by_username,
        "recorded_at": _iso(row.recorded_at),
    }


def _readme(number: str, now: dt.datetime) -> str:
    return (
        f"FaceLead disclosure package, case {number}, generated {now:%Y-%m-%d %H:%M} UTC.\n\n"
        f"{REPORT_DISCLAIMER}\n\n"
        "case.json                 the case and its searches\n"
        "searches/N/search.json    request, probe provenance and edits, every candidate with\n"
        "                          score and model id, reviews, verification, resolutions,\n"
        "                          lead report hashes, corroboration and outcome\n"
        "searches/N/probe.*        the probe as submitted\n"
        "searches/N/candidates/*   every candidate's gallery photo, by rank\n"
        "audit/events.jsonl        every audit event of the case, canonical JSON: drop 'hash',\n"
        "                          re-encode canonically, SHA-256 gives 'hash' again\n"
        "SHA256SUMS                check with: sha256sum -c SHA256SUMS\n"
        "The event recording this disclosure is appended after the package is built.\n"
    )


def _zip(files: dict[str, bytes], now: dt.datetime) -> bytes:
    stamp = now.timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[path])
    return buffer.getvalue()
