"""Misuse report: a generated activity set with planted misuse, fully flagged, no false flags.

The generator writes a realistic, correctly chained log: clean investigators
search a few times a working day (Los Angeles time, across the DST change of
9 March 2025), examiners view candidates, dispose and verify, requesters read
released leads. Each planted pattern belongs to one named user.
"""

from __future__ import annotations

import io
import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from facelead.audit.chain import GENESIS_HASH, AuditRecord, event_hash, format_ts
from facelead.audit.report import (
    CANDIDATES_VIEW,
    LEAD_REPORT,
    REVIEW_DISPOSE,
    REVIEW_RESOLVE,
    REVIEW_VERIFY,
    SEARCH_SUBMIT,
    AuditReport,
    ReportConfig,
    build_report,
)
from facelead.audit.report_render import render
from facelead.domain.access import Action, Role
from facelead.services import audit as audit_service
from facelead.services.context import Services
from tests.conftest import audit_actor, load_audit_records

LA = ZoneInfo("America/Los_Angeles")
PERIOD = (datetime(2025, 3, 3, tzinfo=LA), datetime(2025, 3, 15, tzinfo=LA))
CONFIG = ReportConfig(timezone="America/Los_Angeles")
EXPECTED = {
    "volume.own_baseline": {"spike"},
    "volume.agency_baseline": {"spike", "heavy"},
    "hours.off_hours": {"night"},
    "purpose.protected_terms": {"protest"},
    "case.many_searches": {"hammer"},
    "subject.many_cases": {"stalker"},
    "candidates.unassigned_view": {"snoop"},
    "lead.unreviewed_release": {"rogue"},
    "training.probe_refusals": {"trainee"},
    "training.expired_attempts": {"lapsed", "lapsed_ex"},
}
CLEAN_PURPOSES = (
    "armed robbery of a convenience store, suspect on CCTV",
    "identify an unconscious patient brought to the emergency room",
    "burglary series, suspect photographed by a doorbell camera still",
    "fraudulent cheque cashing, teller photo of the suspect",
)


@dataclass
class Activity:
    """Events (unchained until :meth:`chain`) and the seqs each planted pattern produced."""

    rng: random.Random
    rows: list[tuple[datetime, dict[str, object]]] = field(default_factory=list)
    planted: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    search_ids: int = 0
    case_ids: int = 0

    def add(self, when: datetime, plant: str | None = None, **fields: object) -> int:
        self.rows.append((when, {**fields, "_plant": plant}))
        return len(self.rows)

    def chain(self) -> list[AuditRecord]:
        """Order by time, number from 1, hash-chain; planted rows map to their final seqs."""
        order = sorted(range(len(self.rows)), key=lambda i: (self.rows[i][0], i))
        records: list[AuditRecord] = []
        self.planted.clear()
        for seq, i in enumerate(order, start=1):
            when, spec = self.rows[i]
            spec = dict(spec)
            plant = spec.pop("_plant")
            if plant:
                self.planted[str(plant)].append(seq)
            body = {
                "seq": seq,
                "ts": format_ts(when.astimezone(UTC)),
                "actor": spec["actor"],
                "actor_id": None,
                "role": spec.get("role"),
                "agency": spec.get("agency"),
                "action": spec["action"],
                "outcome": spec.get("outcome", "ok"),
                "object_type": spec.get("object_type"),
                "object_id": spec.get("object_id"),
                "case_number": spec.get("case_number"),
                "purpose": spec.get("purpose"),
                "client_address": "10.1.2.3",
                "interface": "web",
                "details": spec.get("details", {}),
            }
            prev = records[-1].hash if records else GENESIS_HASH
            records.append(AuditRecord(**body, prev_hash=prev, hash=event_hash(prev, body)))  # type: ignore[arg-type]
        return records

    def search(
        self,
        user: str,
        agency: str,
        when: datetime,
        case: str,
        plant: str | None = None,
        outcome: str = "ok",
        text: str | None = None,
    ) -> str:
        self.search_ids += 1
        sid = str(self.search_ids)
        details = {"purpose_text": text or self.rng.choice(CLEAN_PURPOSES), "search_id": sid}
        self.add(
            when,
            plant,
            actor=user,
            role="investigator",
            agency=agency,
            action=SEARCH_SUBMIT,
            outcome=outcome,
            object_type="search",
            object_id=sid if outcome == "ok" else None,
            case_number=case,
            purpose="criminal-investigation",
            details=details,
        )
        return sid

    def review(
        self,
        sid: str,
        case: str,
        when: datetime,
        requester: str,
        examiners: list[str],
        subjects: list[str] | None = None,
        plant: str | None = None,
    ) -> None:
        a, b = self.rng.sample(examiners, 2)
        shown = subjects or [f"S{self.rng.randrange(10**7):07d}" for _ in range(10)]
        common = {
            "object_type": "search",
            "object_id": sid,
            "case_number": case,
            "role": "examiner",
            "agency": "LACRIS",
        }
        view = {"search_id": sid, "subject_ids": shown}
        self.add(
            when + timedelta(hours=1),
            plant,
            actor=a,
            action=CANDIDATES_VIEW,
            details=view,
            **common,
        )
        reader = {**common, "role": "investigator"}
        if self.rng.random() < 0.3:  # no lead: its report needs no second examiner
            self.add(
                when + timedelta(hours=2),
                actor=a,
                action=REVIEW_DISPOSE,
                details={"decision": "no_lead"},
                **common,
            )
            self.add(
                when + timedelta(hours=3),
                actor=requester,
                action=LEAD_REPORT,
                details={"kind": "no_lead"},
                **reader,
            )
            return
        self.add(
            when + timedelta(hours=2),
            actor=a,
            action=REVIEW_DISPOSE,
            details={"decision": "possible_lead"},
            **common,
        )
        self.add(
            when + timedelta(hours=3),
            plant,
            actor=b,
            action=CANDIDATES_VIEW,
            details=view,
            **common,
        )
        disagree = self.rng.random() < 0.15  # returned, then a supervisor upholds the lead
        self.add(
            when + timedelta(hours=4),
            actor=b,
            action=REVIEW_VERIFY,
            details={"decision": "returned_for_review" if disagree else "verified"},
            **common,
        )
        if disagree:
            self.add(
                when + timedelta(hours=4, minutes=30),
                actor="sup01",
                action=REVIEW_RESOLVE,
                details={"decision": "uphold"},
                **{**common, "role": "supervisor"},
            )
        self.add(
            when + timedelta(hours=5),
            actor=requester,
            action=LEAD_REPORT,
            details={"kind": "lead"},
            **reader,
        )

    def new_case(self, user: str) -> str:
        self.case_ids += 1
        return f"{user.upper()}-{self.case_ids:05d}"


def working_days(first: date, last: date) -> list[date]:
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [d for d in days if d.weekday() < 5]


def at(day: date, hour: float) -> datetime:
    return datetime.combine(day, time(int(hour), int(hour % 1 * 60)), tzinfo=LA)


def generate(clean_per_agency: int = 6, seed: int = 4) -> tuple[list[AuditRecord], Activity]:
    rng = random.Random(seed)
    act = Activity(rng)
    examiners = [f"ex{n:02d}" for n in range(1, 7)]
    history = working_days(date(2025, 2, 3), date(2025, 3, 14))
    period = working_days(date(2025, 3, 3), date(2025, 3, 14))
    people = [(f"inv{a}{n:02d}", a) for a in ("LASD", "LAPD") for n in range(clean_per_agency)]
    people += [(name, "LASD") for name in ("spike", "night", "protest", "hammer", "trainee")]
    people += [("lapsed", "LASD"), ("heavy", "LAPD"), ("stalker", "LAPD")]
    for user, agency in people:
        case, used = act.new_case(user), 0
        for day in history:
            per_day = 30 if user == "heavy" else (2 if user == "spike" else rng.randint(1, 5))
            for _ in range(per_day):
                if used == 4:
                    case, used = act.new_case(user), 0
                used += 1
                when = at(day, rng.uniform(8.0, 17.5))
                sid = act.search(user, agency, when, case)
                if user != "heavy" and rng.random() < 0.7:
                    act.review(sid, case, when, user, examiners)
        if user.startswith("inv") and user.endswith("01"):  # clean noise, below every threshold
            act.search(user, agency, at(period[1], 10), case, outcome="refused:low_quality_probe")
            act.search(user, agency, at(period[4], 10), case, outcome="refused:low_quality_probe")
            act.search(user, agency, at(period[6], 10), case, outcome="refused:purpose_required")
    plant(act, period, examiners)
    return act.chain(), act


def plant(act: Activity, period: list[date], examiners: list[str]) -> None:
    """One misuse pattern per named user (the clean activity above is theirs too)."""
    rng = act.rng
    for n in range(40):  # spike: 40 searches in one day, 8 cases of 5
        act.search("spike", "LASD", at(period[2], 9 + n * 0.17), f"SPIKE-{n // 5}", "spike")
    for hour, day in ((2.5, period[1]), (3.2, period[3]), (22.0, period[6])):
        act.search("night", "LASD", at(day, hour), act.new_case("night"), "night")
    act.search("night", "LASD", at(date(2025, 3, 8), 11), act.new_case("night"), "night")
    act.search(
        "protest",
        "LASD",
        at(period[2], 11),
        act.new_case("protest"),
        "protest",
        outcome="refused:prohibited_purpose",
        text="identify the organiser of the protest rally at City Hall",
    )
    for n in range(22):  # hammer: 22 searches on one case over two weeks
        act.search("hammer", "LASD", at(period[n % 10], 13 + n / 20), "HAMMER-1", "hammer")
    for n in range(6):  # stalker: one person's face under six case numbers
        case = act.new_case("stalker")
        when = at(period[n], 10)
        sid = act.search("stalker", "LAPD", when, case)
        target = ["S9999999"] + [f"S{rng.randrange(10**7):07d}" for _ in range(9)]
        act.review(sid, case, when, "stalker", examiners, subjects=target, plant="stalker")
    for n in range(3):  # snoop: candidate lists of searches not assigned to them
        act.add(
            at(period[n], 15),
            "snoop",
            actor="snoop",
            role="examiner",
            action=CANDIDATES_VIEW,
            outcome="refused:not_assigned",
            object_type="search",
            object_id=str(n + 1),
        )
    plant_rogue(act, period, examiners)
    for n, reason in enumerate(["low_quality_probe"] * 4 + ["probe_source_refused"] * 3):
        act.search(
            "trainee",
            "LASD",
            at(period[n], 14),
            "TRAINEE-1",
            "trainee",
            outcome=f"refused:{reason}",
        )
    for n in range(2):
        act.search(
            "lapsed",
            "LASD",
            at(period[n], 9),
            "LAPSED-1",
            "lapsed",
            outcome="refused:training_expired",
        )
    act.add(
        at(period[5], 9),
        "lapsed_ex",
        actor="lapsed_ex",
        role=None,
        action=CANDIDATES_VIEW,
        outcome="refused:training_expired",
        object_type="search",
        object_id="7",
    )


def plant_rogue(act: Activity, period: list[date], examiners: list[str]) -> None:
    """Releases without a valid two-person review: none, self-verified, verifier disagreed."""
    common = {"object_type": "search", "role": "supervisor", "agency": "LACRIS"}
    for n, verifier in enumerate((None, ("ex01", "verified"), ("ex02", "returned_for_review"))):
        when = at(period[7 + n], 10)
        sid = act.search("invLASD02", "LASD", when, "ROGUE-1")
        if verifier is not None:
            act.add(
                when + timedelta(hours=1),
                actor="ex01",
                action=REVIEW_DISPOSE,
                object_id=sid,
                case_number="ROGUE-1",
                object_type="search",
            )
            act.add(
                when + timedelta(hours=2),
                actor=verifier[0],
                action=REVIEW_VERIFY,
                object_id=sid,
                case_number="ROGUE-1",
                object_type="search",
                details={"decision": verifier[1]},
            )
        act.add(
            when + timedelta(hours=3),
            "rogue",
            actor="rogue",
            action=LEAD_REPORT,
            object_id=sid,
            case_number="ROGUE-1",
            **common,
        )


@pytest.fixture(scope="module")
def generated() -> tuple[list[AuditRecord], Activity]:
    return generate()


def assert_fully_flagged(report: AuditReport, act: Activity) -> None:
    """Exactly the planted users are flagged, and every planted event is cited by its rule."""
    assert report.flagged_users() == EXPECTED
    for result in report.results:
        cited = {seq for f in result.findings for seq in f.seqs}
        for user in EXPECTED[result.rule.id]:
            assert set(act.planted[user]) <= cited, (result.rule.id, user)


def test_action_names_match_the_domain() -> None:
    names = {SEARCH_SUBMIT, CANDIDATES_VIEW, REVIEW_DISPOSE, REVIEW_VERIFY, REVIEW_RESOLVE}
    names.add(LEAD_REPORT)
    assert names <= {a.value for a in Action}


def test_generated_activity_is_fully_flagged_with_no_false_flags(
    generated: tuple[list[AuditRecord], Activity],
) -> None:
    records, act = generated
    assert len(records) > 3000
    report = build_report(records, *PERIOD, CONFIG)
    assert_fully_flagged(report, act)
    by_rule = {r.rule.id: r for r in report.results}
    assert [f.subject for f in by_rule["case.many_searches"].findings] == ["HAMMER-1"]
    assert [f.subject for f in by_rule["subject.many_cases"].findings] == ["S9999999"]
    assert len(by_rule["lead.unreviewed_release"].findings) == 3
    noise = {reason: len(seqs) for reason, seqs in report.refusals["invLASD01"].items()}
    assert noise == {"low_quality_probe": 2, "purpose_required": 1}  # tabled, not flagged
    assert {f.subject for f in by_rule["training.probe_refusals"].findings} == {
        "trainee: low_quality_probe",
        "trainee: probe_source_refused",
    }


def test_clean_activity_flags_nobody_and_proves_peer_review() -> None:
    records, act = generate(clean_per_agency=8, seed=11)
    planted = {seq for seqs in act.planted.values() for seq in seqs}
    named = {
        "spike",
        "heavy",
        "night",
        "protest",
        "hammer",
        "trainee",
        "lapsed",
        "lapsed_ex",
        "stalker",
        "snoop",
        "rogue",
    }
    clean = [r for r in records if r.seq not in planted and r.actor not in named]
    releases = sum(
        r.action == LEAD_REPORT and r.details["kind"] == "lead" and r.when >= PERIOD[0]
        for r in clean
    )
    resolved = sum(r.action == REVIEW_RESOLVE and r.when >= PERIOD[0] for r in clean)
    report = build_report(clean, *PERIOD, CONFIG)
    assert all(not r.findings for r in report.results), report.flagged_users()
    note = next(r.note for r in report.results if r.rule.id == "lead.unreviewed_release")
    assert releases > 50 and resolved > 5
    assert note.startswith(f"Proven for this log: all {releases} lead releases")


def test_every_figure_links_to_the_events_behind_it(
    generated: tuple[list[AuditRecord], Activity],
) -> None:
    records, _ = generated
    report = build_report(records, *PERIOD, CONFIG)
    html = render(report, "html")
    anchors = set(re.findall(r'id="([^"]+)"', html))
    links = re.findall(r'href="#([^"]+)"', html)
    assert links and all(link in anchors for link in links)
    for result in report.results:
        assert result.rule.text in html.replace("&#x27;", "'")  # each rule written out
        for f in result.findings:
            assert all(f"event-{seq}" in anchors for seq in f.seqs)
    assert html.count("<svg") >= 1 + sum(1 for r in report.results if r.findings)
    rows = render(report, "csv").splitlines()
    assert len(rows) == 1 + sum(len(r.findings) for r in report.results)
    body = json.loads(render(report, "json"))
    assert {rule["id"] for rule in body["rules"]} == set(EXPECTED)


def test_the_service_report_reads_a_real_database_and_is_itself_audited(
    audit_services: Services,
) -> None:
    records, act = generate(clean_per_agency=3, seed=5)
    load_audit_records(audit_services.db, records)
    auditor = audit_actor(Role.AUDITOR)
    start, end = (moment.astimezone(UTC) for moment in PERIOD)
    report = audit_service.audit_report(
        audit_services, auditor, start, end, timezone="America/Los_Angeles"
    )
    assert report.integrity.startswith("verified")
    assert_fully_flagged(report, act)
    sink = io.StringIO()
    exported = audit_service.export_events(audit_services, auditor, sink, fmt="jsonl")
    assert exported == len(records) + 1 == len(sink.getvalue().splitlines())  # + report's event
    last = audit_service.verify_log(audit_services, auditor)
    assert last.ok and last.events_checked == len(records) + 2
