"""The public transparency report: right counts, small counts hidden, no personal data.

The end-to-end test builds an activity set through the real services on a
real database (SQLite and PostgreSQL), with the real face models on MEDS
photos: 24 searches over four months by three investigators, every kind of
refused request, reviews to every outcome, sealing, a purge and a retention
run. Only the search and review timestamps are moved back afterwards (plain
columns, outside the hash-chained audit log), so that the searches span
several months. The report is rendered as HTML, CSV and PDF and each format
is checked: the counts, every count of 1 to 4 hidden, and none of the
usernames, case numbers, subject ids or booking numbers anywhere.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image

from facelead.domain.access import PERMISSIONS, Action, Actor, Role
from facelead.domain.cases import ReviewRole
from facelead.domain.gallery import BookingRef, RemovalKind, RemovalOrder
from facelead.domain.review import Decision, Disposition
from facelead.domain.search import ProbeProvenance, SearchRequest
from facelead.domain.transparency import (
    Activity,
    ModelFigures,
    SearchFact,
    build_report,
    classify_outcome,
    nearest_rank,
    parse_period,
    refusal_reason,
)
from facelead.errors import FaceLeadError, InputError, PermissionDenied
from facelead.services.audit import audit_report
from facelead.services.cases import open_case
from facelead.services.context import Services
from facelead.services.corroboration import add_corroboration, record_outcome
from facelead.services.gallery import enroll_files
from facelead.services.lifecycle import remove_subject
from facelead.services.reports import lead_report
from facelead.services.retention import apply_retention
from facelead.services.review import assign_reviewer, dispose, record_features, verify
from facelead.services.search import submit_search
from facelead.services.transparency import model_figures, transparency_report
from facelead.services.transparency_render import render
from facelead.store.case_models import SearchRecord
from facelead.store.models import utcnow
from facelead.store.review_models import ReviewRecord
from tests.conftest import Installed, audit_actor, provision_token
from tests.test_cli import one_error_line, run

# --- the pure parts ---


def test_outcome_of_a_search() -> None:
    assert classify_outcome("candidates_ready", None, None) == "in_review"
    assert classify_outcome("escalated", None, None) == "in_review"
    assert classify_outcome("no_lead", None, None) == "no_lead"
    assert classify_outcome("verified", None, None) == "lead"
    assert classify_outcome("lead_released", None, None) == "lead"
    assert classify_outcome("corroborated", None, None) == "corroborated"
    assert classify_outcome("closed", "confirmed", "corroborated") == "corroborated"
    assert classify_outcome("closed", "excluded", "lead_released") == "excluded"
    assert classify_outcome("closed", "unresolved", "lead_released") == "lead"
    assert classify_outcome("closed", "unresolved", "no_lead") == "no_lead"
    assert classify_outcome("closed", "unresolved", "candidates_ready") == "ended"


def test_refusal_reasons() -> None:
    assert refusal_reason("low_quality_probe") == "probe_quality"
    assert refusal_reason("no_face") == "probe_quality"
    assert refusal_reason("probe_source_refused") == "prohibited_source"
    assert refusal_reason("video_not_allowed") == "prohibited_source"
    assert refusal_reason("prohibited_purpose") == "prohibited_purpose"
    assert refusal_reason("rate_limited") == "rate_limit"
    assert refusal_reason("training_expired") == "expired_training"
    assert refusal_reason("case_closed") == "other"


def test_period_and_percentile() -> None:
    assert parse_period("2025-01", "2025-02") == (dt.date(2025, 1, 1), dt.date(2025, 2, 28))
    assert parse_period("2024-02-03", "2024-02-29") == (dt.date(2024, 2, 3), dt.date(2024, 2, 29))
    for start, end in (("2025-13-01", "2025-12-31"), ("yesterday", "2025-01-01"),
                       ("2025-03-01", "2025-02-01"), ("2000-01", "2025-01")):  # fmt: skip
        with pytest.raises(InputError) as info:
            parse_period(start, end)
        assert info.value.code == "bad_period"
    assert nearest_rank([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9
    assert nearest_rank([5.0], 0.9) == 5.0


def test_hidden_counts_never_reach_a_renderer() -> None:
    when = dt.datetime(2025, 1, 6, 10, tzinfo=dt.UTC)
    facts = [SearchFact(when, "criminal-investigation", "robbery", "no_lead", 2.0)] * 3
    report = build_report(
        dt.date(2025, 1, 1), dt.date(2025, 1, 31), Activity(searches=facts),
        purposes=["criminal-investigation"], offences=["robbery"],
        model=ModelFigures("fusion-v2"), integrity="verified", generated_at=when,
    )  # fmt: skip
    for table in report.tables():
        for cell in (*table.cells, table.total):
            assert cell.value is None or not 1 <= cell.value <= 4, (table.key, cell)
    assert report.searches.total.text == "<5" and report.review_overall.median_hours is None


# --- the model's figures ---


def test_model_figures_say_not_measured_yet_without_results(tmp_path: Path) -> None:
    figures = model_figures("fusion-v2", tmp_path)
    assert figures.accuracy == () and figures.accuracy_source == "not measured yet"
    assert figures.fairness == () and figures.fairness_source == "not measured yet"


def test_model_figures_come_from_the_results_files(tmp_path: Path) -> None:
    accuracy = {
        "model_id": "fusion-v2",
        "models": {
            "fusion-v2": {
                "verification": {"mean_accuracy": 0.99517, "tar_at_target_fmr": 0.9876},
                "identification": {"fnir_at_rank": {"1": 0.0123}, "fnir_at_fpir": {"0.01": 0.05}},
            }
        },
    }
    group = {"ratio": 2.19, "ratio_ci": [1.8, 2.65], "verdict": "higher"}
    fairness = {
        "model_id": "fusion-v2",
        "models": {
            "fusion-v2": {
                "verification": {
                    "women_men_fmr_ratio": {"ratio": 1.31, "ci": [1.1, 1.6]},
                    "sex": {"fmr": {"reference": "M", "groups": {"F": group}}},
                },
            }
        },
    }
    (tmp_path / "accuracy-lfw.json").write_text(json.dumps(accuracy))
    (tmp_path / "fairness-lfw.json").write_text(json.dumps(fairness))
    figures = model_figures("fusion-v2", tmp_path)
    assert dict(figures.accuracy) == {
        "1:1 accuracy on LFW (10-fold mean)": "99.52%",
        "1:1 true accept rate at false match rate 0.1%": "98.76%",
        "1:N miss rate (FNIR) at rank 1": "1.23%",
        "1:N miss rate (FNIR) at false positive rate (FPIR) 1%": "5.00%",
    }
    assert dict(figures.fairness) == {
        "1:1 false match rate, women to men": "1.31x (95% CI 1.10-1.60)",
        "1:1 false match rate, sex F, to the lowest group": "2.19x (95% CI 1.80-2.65); higher",
    }
    assert figures.accuracy_source.startswith("accuracy-lfw.json")
    other = model_figures("sface-v1", tmp_path)  # measured files, but not for this model
    assert other.accuracy == () and other.accuracy_source.startswith("not measured yet for")
    assert other.fairness == () and other.fairness_source.startswith("not measured yet for")


# --- who may generate it ---


def _events(services: Services) -> list[tuple[str, str, dict[str, Any]]]:
    with services.db.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT action, outcome, details FROM audit_events ORDER BY seq")
        )
        return [(a, o, d if isinstance(d, dict) else json.loads(d)) for a, o, d in rows]


@pytest.mark.parametrize("role", list(Role))
def test_only_auditors_and_supervisors_may_generate_it(
    audit_services: Services, role: Role, tmp_path: Path
) -> None:
    actor = audit_actor(role, name="qz-someone")
    before = len(_events(audit_services))
    today = dt.date.today()
    if role in PERMISSIONS[Action.REPORT_TRANSPARENCY]:
        file = transparency_report(audit_services, actor, today, today, "csv", results_dir=tmp_path)
        assert file.data.startswith(b"section,label,month,value\n")
        action, outcome, details = _events(audit_services)[-1]
        assert (action, outcome) == ("report.transparency", "ok")
        assert details["sha256"] == file.sha256 and details["format"] == "csv"
    else:
        with pytest.raises(PermissionDenied) as info:
            transparency_report(audit_services, actor, today, today, "csv", results_dir=tmp_path)
        assert info.value.code == "forbidden" and info.value.http_status == 403
        assert _events(audit_services)[-1][:2] == ("report.transparency", "refused:forbidden")
    assert len(_events(audit_services)) == before + 1  # one event either way


def test_a_bad_period_or_format_is_refused_and_audited(audit_services: Services) -> None:
    auditor = audit_actor(Role.AUDITOR)
    for start, end, fmt, code in (
        (dt.date(2025, 3, 1), dt.date(2025, 2, 1), "html", "bad_period"),
        (dt.date(2025, 1, 1), dt.date(2025, 1, 31), "docx", "format"),
    ):
        with pytest.raises(InputError) as info:
            transparency_report(audit_services, auditor, start, end, fmt)
        assert info.value.code == code
        assert _events(audit_services)[-1][:2] == ("report.transparency", f"refused:{code}")


# --- the command ---


def test_bad_dates_are_one_line_and_exit_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for dates in (("2025-13-01", "2025-12-31"), ("2025-03-01", "2025-02-01"), ("soon", "later")):
        result = run(home, "report", "transparency", "--from", dates[0], "--to", dates[1])
        one_error_line(result, "bad_period")
    assert not home.exists()  # refused before anything was opened or asked


def test_the_command_writes_the_report(tmp_path: Path) -> None:
    home = tmp_path / "home"
    token = provision_token(home, "qz-aud", "auditor")
    out = tmp_path / "report.csv"
    args = ["--format", "csv", "--out", str(out), "--results", str(tmp_path)]
    result = run(home, "report", "transparency", "--from", "2025-01", "--to", "2025-02", *args,
                 token=token)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(out.read_text().splitlines()))
    assert rows[0] == ["section", "label", "month", "value"]
    assert ["searches_per_month", "searches", "2025-02", "0"] in rows
    assert ["model", "Accuracy", "all", "not measured yet"] in rows
    refused = run(home, "report", "transparency", "--from", "2025-01", "--to", "2025-02",
                  "--format", "docx", token=token)  # fmt: skip
    one_error_line(refused, "format")


# --- the generated activity set, end to end ---

CERTIFIED = dt.date.today() + dt.timedelta(days=365)
PEOPLE = {
    "qz-rec": "records", "qz-inv-a": "investigator", "qz-inv-b": "investigator",
    "qz-inv-c": "investigator", "qz-exam-a": "examiner", "qz-exam-b": "examiner",
    "qz-sup": "supervisor", "qz-aud": "auditor",
}  # fmt: skip
LAPSED = "qz-lapsed"  # an investigator whose training was never certified
INVESTIGATORS = ("qz-inv-a", "qz-inv-b", "qz-inv-c")
CASES = {"QZC-4411-01": "robbery", "QZC-4411-02": "robbery", "QZC-4411-03": "burglary",
         "QZC-4411-04": "homicide"}  # fmt: skip
GALLERY = {"S001": "QZS-0001", "S002": "QZS-0002", "S003": "QZS-0003", "S004": "QZS-0004",
           "S010": "QZS-0005", "S011": "QZS-0006", "S012": "QZS-0007"}  # fmt: skip
LEAD = "QZS-0001"
PROBES = ("S005", "S006", "S007", "S008", "S009")
FEATURES = ["face-shape", "hairline", "eyebrows", "eyes", "nose", "mouth", "chin-jawline"]
REQUEST = SearchRequest(
    "criminal-investigation",
    "Armed hold-up at a pharmacy, suspect filmed by the shop camera at the till",
    ProbeProvenance("cctv-still", "DVR export by the store manager", "pharmacy CCTV"),
)
# (months before the current one, outcome, hours from search to the examiner's conclusion)
PLAN: list[tuple[int, str, float | None]] = [
    *[(3, "lead", h) for h in (2, 4, 6, 8)], (3, "corroborated", 10), (3, "excluded", 12),
    (3, "excluded", 14),
    *[(2, "no_lead", h) for h in (1, 2, 3, 4, 5)], (2, "lead", 6), (2, "lead", 7),
    (2, "corroborated", 8), (2, "corroborated", 9),
    (1, "no_lead", 20), (1, "no_lead", 30), (1, "no_lead", 40), (1, "in_review", None),
    *[(0, "in_review", None)] * 4,
]  # fmt: skip


@dataclass
class World:
    services: Services
    people: dict[str, Actor]
    start: dt.date
    end: dt.date

    def __getitem__(self, name: str) -> Actor:
        return self.people[name]


def _case_of(index: int) -> str:
    return list(CASES)[0 if index < 8 else 1 if index < 14 else 2 if index < 21 else 3]


def _month_start(months_back: int) -> dt.datetime:
    first = utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(months_back):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return first


def _review(world: World, sid: int, case: str, requester: str, outcome: str) -> None:
    """Take one search through the real review workflow to ``outcome``."""
    svc, sup, first, second = (
        world.services,
        world["qz-sup"],
        world["qz-exam-a"],
        world["qz-exam-b"],
    )
    assign_reviewer(svc, sup, sid, "qz-exam-a")
    record_features(svc, first, sid, FEATURES)
    if outcome == "no_lead":
        dispose(svc, first, sid, {}, Disposition.EXCLUDE)
        return
    lead = Decision(Disposition.POSSIBLE_LEAD, "same scar over the left eyebrow and ear shape")
    dispose(svc, first, sid, {LEAD: lead}, Disposition.EXCLUDE)
    assign_reviewer(svc, sup, sid, "qz-exam-b", ReviewRole.VERIFIER)
    record_features(svc, second, sid, FEATURES)
    verify(svc, second, sid, {LEAD: lead})
    if outcome == "lead":
        return
    lead_report(svc, world[requester], sid)
    if outcome == "corroborated":
        add_corroboration(svc, world[requester], sid, "vehicle-information",
                          "Getaway car plate is registered to the candidate's address")  # fmt: skip
    else:
        record_outcome(svc, world[requester], case, sid, "excluded",
                       "The candidate was in custody on the day of the hold-up")  # fmt: skip


def _backdate(services: Services, sid: int, when: dt.datetime, hours: float | None) -> None:
    with services.db.session() as session:
        session.execute(
            sa.update(SearchRecord).where(SearchRecord.id == sid).values(created_at=when)
        )
        if hours is not None:
            session.execute(
                sa.update(ReviewRecord)
                .where(ReviewRecord.search_id == sid, ReviewRecord.review_role == "examiner")
                .values(completed_at=when + dt.timedelta(hours=hours))
            )


def _refused(call: Any, code: str) -> None:
    with pytest.raises(FaceLeadError) as info:
        call()
    assert info.value.code == code, info.value.as_dict()


def _refusals(world: World) -> None:
    """5 probe quality, 6 prohibited source, 3 purpose, 2 rate limit, 1 training, 2 other."""
    svc, ivy = world.services, world["qz-inv-a"]
    buffer = io.BytesIO()
    Image.new("RGB", (320, 320), (128, 128, 128)).save(buffer, "PNG")
    blank = buffer.getvalue()

    def attempt(code: str, actor: Actor = ivy, **changes: Any) -> None:
        request = dataclasses.replace(REQUEST, **changes)
        _refused(lambda: submit_search(svc, actor, "QZC-4411-01", blank, request), code)

    def provenance(source: str, *edits: str) -> ProbeProvenance:
        return ProbeProvenance(source, "handed over by a witness", "a phone", edits)

    for _ in range(5):
        attempt("no_face")
    sources = [*[("body-worn-camera", (), "probe_source_refused")] * 3,
               ("in-car-camera", (), "probe_source_refused"),
               *[("phone-photo", ("face-swap",), "probe_edit_refused")] * 2]  # fmt: skip
    for source, edits, code in sources:
        attempt(code, provenance=provenance(source, *edits))
    for _ in range(3):
        attempt("prohibited_purpose", justification="Identify who organised the protest downtown")
    for _ in range(2):
        attempt("justification_too_short", justification="hold-up")
    attempt("training_expired", actor=world[LAPSED])
    limit = svc.settings.daily_search_limit
    svc.settings.daily_search_limit = 8  # qz-inv-a made 8 searches today
    try:
        for _ in range(2):
            attempt("rate_limited")
    finally:
        svc.settings.daily_search_limit = limit


def build_world(installed: Installed, meds_dir: Path) -> World:
    svc = installed.services
    for name, role in PEOPLE.items():
        installed.add(name, role, certified_until=CERTIFIED)
    installed.add(LAPSED, "investigator")
    people = {name: installed.login(name) for name in (*PEOPLE, LAPSED)}
    files = [meds_dir / f"{s}-01-t10_01.jpg" for s in GALLERY]
    refs = {f.resolve(): BookingRef(GALLERY[f.name[:4]], f"QZB-{f.name[:4]}", agency="MEDS")
            for f in files}  # fmt: skip
    results = list(enroll_files(svc, people["qz-rec"], files, refs))
    assert [r.status.value for r in results] == ["enrolled"] * len(GALLERY)
    for number, offence in CASES.items():
        open_case(svc, people["qz-inv-a"], number, offence)
    world = World(svc, people, _month_start(3).date(), utcnow().date())
    searches = []
    for i, (_, outcome, _) in enumerate(PLAN):
        requester = INVESTIGATORS[i % 3]
        purpose = "at-risk-or-missing-person" if i >= 21 else "criminal-investigation"
        probe = (meds_dir / f"{PROBES[i % len(PROBES)]}-01-t10_01.jpg").read_bytes()
        request = dataclasses.replace(REQUEST, purpose=purpose)
        receipt = submit_search(svc, people[requester], _case_of(i), probe, request)
        searches.append(receipt.search_id)
        if outcome != "in_review":
            _review(world, receipt.search_id, _case_of(i), requester, outcome)
    _refusals(world)
    for i, (sid, (back, _, hours)) in enumerate(zip(searches, PLAN, strict=True)):
        if back:
            _backdate(svc, sid, _month_start(back) + dt.timedelta(days=2 + i % 20, hours=10), hours)
    apply_retention(svc, people["qz-rec"], now=utcnow() + dt.timedelta(days=400))
    for n, subject in enumerate(GALLERY.values()):
        kind = RemovalKind.PURGED if subject == LEAD else RemovalKind.SEALED
        remove_subject(svc, people["qz-rec"], RemovalOrder(kind, subject, f"QZO-{n:03d}"))
    return world


@pytest.fixture
def world(installed: Installed, meds_dir: Path) -> Iterator[World]:
    yield build_world(installed, meds_dir)


def _months(world: World) -> list[str]:
    return [_month_start(back).strftime("%Y-%m") for back in (3, 2, 1, 0)]


def expected(world: World) -> dict[tuple[str, str, str], str]:
    """The CSV cells this activity set must produce, worked out by hand."""
    m0, m1, m2, m3 = _months(world)
    cells = {
        ("searches_per_month", "searches", m0): "x",  # 7, withheld: 4 + 4 would pin M2 and M3
        ("searches_per_month", "searches", m1): "9",
        ("searches_per_month", "searches", m2): "<5",
        ("searches_per_month", "searches", m3): "<5",
        ("searches_per_month", "searches", "all"): "24",
        ("purposes", "criminal-investigation", "all"): "x",  # 21: the only other non-zero
        ("purposes", "at-risk-or-missing-person", "all"): "<5",
        ("purposes", "imminent-threat-to-life", "all"): "0",
        ("purposes", "total", "all"): "24",
        ("offence_categories", "robbery", "all"): "14",
        ("offence_categories", "burglary", "all"): "x",  # 7, the next smallest
        ("offence_categories", "homicide", "all"): "<5",
        ("offence_categories", "fraud", "all"): "0",
        ("refusals", "probe_quality", "all"): "5",
        ("refusals", "prohibited_source", "all"): "6",
        ("refusals", "prohibited_purpose", "all"): "<5",
        ("refusals", "rate_limit", "all"): "<5",
        ("refusals", "expired_training", "all"): "<5",
        ("refusals", "other", "all"): "<5",
        ("refusals", "total", "all"): "19",
        ("outcomes", "no_lead", "all"): "8",
        ("outcomes", "lead", "all"): "6",
        ("outcomes", "corroborated", "all"): "<5",
        ("outcomes", "excluded", "all"): "<5",
        ("outcomes", "in_review", "all"): "5",
        ("outcomes", "ended", "all"): "0",
        ("outcomes", "total", "all"): "24",
        ("gallery_removals", "sealed", "all"): "x",  # 6: 1 purged + total 7 would tell
        ("gallery_removals", "expunged", "all"): "0",
        ("gallery_removals", "purged", "all"): "<5",
        ("gallery_removals", "total", "all"): "7",
        ("retention", "no_lead", "all"): "8",
        ("retention", "closed_case", "all"): "0",
        ("time_to_review", "searches_reviewed", m0): "x",  # 7 (withheld for the 3 of M2)
        ("time_to_review", "median_hours", m0): "8.0",
        ("time_to_review", "p90_hours", m0): "14.0",
        ("time_to_review", "searches_reviewed", m1): "9",
        ("time_to_review", "median_hours", m1): "5.0",
        ("time_to_review", "p90_hours", m1): "9.0",
        ("time_to_review", "searches_reviewed", m2): "<5",
        ("time_to_review", "median_hours", m2): "",
        ("time_to_review", "searches_reviewed", m3): "0",
        ("time_to_review", "searches_reviewed", "all"): "19",
        ("time_to_review", "median_hours", "all"): "7.0",
        ("time_to_review", "p90_hours", "all"): "30.0",
        ("audit_findings", "training.expired_attempts", "all"): "<5",  # qz-lapsed, once
        ("audit_findings", "resolution", "all"): "not recorded",
        ("model", "Accuracy", "all"): "not measured yet",
        ("model", "Fairness (demographic differentials)", "all"): "not measured yet",
    }
    return cells


COUNT_SECTIONS = {"searches_per_month", "purposes", "offence_categories", "refusals", "outcomes",
                  "audit_findings", "gallery_removals", "retention"}  # fmt: skip


def secrets(world: World) -> list[str]:
    """Everything personal the activity set holds: none of it may reach the report."""
    return [*world.people, *CASES, *GALLERY.values(), *(f"QZB-{s}" for s in GALLERY), "QZO-0"]


def pdf_text(data: bytes) -> str:
    """The text shown in a PDF written with core fonts: the (...) Tj strings of its streams."""
    shown = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            content = zlib.decompress(stream)
        except zlib.error:
            continue
        shown += [s.decode("latin-1") for s in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", content)]
    return "\n".join(s.replace("\\(", "(").replace("\\)", ")") for s in shown)


@pytest.mark.models
def test_transparency_report_of_a_generated_activity_set(world: World, tmp_path: Path) -> None:
    svc, auditor = world.services, world["qz-aud"]
    with svc.db.engine.connect() as conn:  # the personal data is really there to leak
        hits = conn.scalar(sa.text("SELECT count(*) FROM audit_events WHERE case_number = :c"),
                           {"c": "QZC-4411-01"})  # fmt: skip
    assert hits and hits > 8
    before = len(_events(svc))
    files = {
        fmt: transparency_report(svc, auditor if fmt != "pdf" else world["qz-sup"], world.start,
                                 world.end, fmt, results_dir=tmp_path)
        for fmt in ("csv", "html", "pdf")
    }  # fmt: skip
    events = _events(svc)[before:]
    assert [(a, o, d["format"], d["sha256"]) for a, o, d in events] == [
        ("report.transparency", "ok", fmt, f.sha256) for fmt, f in files.items()
    ]
    report = files["csv"].report
    assert report.integrity.startswith("verified: all")

    # CSV: every expected cell, and no count of 1 to 4 anywhere
    rows = list(csv.DictReader(io.StringIO(files["csv"].data.decode())))
    cells = {(r["section"], r["label"], r["month"]): r["value"] for r in rows}
    for key, value in expected(world).items():
        assert cells.get(key) == value, (key, cells.get(key), value)
    assert [r for r in rows if r["section"] in COUNT_SECTIONS | {"time_to_review"}
            and r["value"] in {"1", "2", "3", "4"}] == []  # fmt: skip

    # the misuse report's findings, suppressed the same way
    since = dt.datetime.combine(world.start, dt.time(), tzinfo=dt.UTC)
    until = dt.datetime.combine(world.end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    misuse = audit_report(svc, auditor, since, until)
    found = {r.rule.id: len(r.findings) for r in misuse.results}
    assert found["training.expired_attempts"] == 1 and found["training.probe_refusals"] == 3
    published = {c.key: c for c in report.findings.cells}
    assert set(published) == set(found)
    for rule, n in found.items():
        assert published[rule].value in (n, None), rule
        assert (published[rule].text == "<5") == (1 <= n <= 4), rule

    # HTML: two charts; outside them, no count of 1 to 4 and nothing personal
    page = files["html"].data.decode()
    assert page.count('src="data:image/png;base64,') == 2
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert re.findall(r"<td class=n>[1-4]</td>", text) == []
    assert "<td class=n>&lt;5</td>" in text and "<td class=n>x</td>" in text
    assert "<td>robbery</td><td class=n>14</td>" in text

    # PDF: the same figures, readable in the file
    shown = pdf_text(files["pdf"].data)
    assert "Searches per month" in shown and "robbery" in shown and "<5" in shown
    assert not set(shown.splitlines()) & {"1", "2", "3", "4"}

    for fmt, body in (("csv", files["csv"].data.decode()), ("html", text), ("pdf", shown)):
        leaked = [s for s in secrets(world) if s.lower() in body.lower()]
        assert leaked == [], (fmt, leaked)


def test_report_renders_every_format_on_an_empty_deployment(
    audit_services: Services, tmp_path: Path
) -> None:
    auditor = audit_actor(Role.SUPERVISOR)
    today = dt.date.today()
    file = transparency_report(audit_services, auditor, today, today, "pdf", results_dir=tmp_path)
    assert file.data.startswith(b"%PDF") and "not measured yet" in pdf_text(file.data)
    html = render(file.report, "html").decode()
    assert "Searches per month" in html and "not measured yet" in html
