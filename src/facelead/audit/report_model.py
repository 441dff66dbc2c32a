"""What a misuse report is made of: its vocabulary, thresholds, rules and findings.

The audit layer sits below the domain, so the action names the rules read
are mirrored here as strings; a test holds them equal to
``facelead.domain.access.Action``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from facelead.audit.chain import AuditRecord

SEARCH_SUBMIT = "search.submit"
CANDIDATES_VIEW = "candidates.view"
REVIEW_DISPOSE = "review.dispose"
REVIEW_VERIFY = "review.verify"
REVIEW_RESOLVE = "review.resolve"
LEAD_REPORT = "lead.report"
REVIEW_ACTIONS = (REVIEW_DISPOSE, REVIEW_VERIFY, REVIEW_RESOLVE)

TRAINING_EXPIRED = "refused:training_expired"
FREE_TEXT_DETAILS = ("purpose_text", "justification")

PROTECTED_TERMS = (
    "protest", "protests", "protester", "protesters", "protestor", "protestors", "protesting",
    "demonstration", "demonstrations", "demonstrator", "demonstrators", "rally", "rallies",
    "marcher", "marchers", "picket", "pickets", "picketing", "vigil", "vigils", "sit-in",
    "boycott", "petition", "petitions", "activist", "activists", "activism",
    "first amendment", "free speech", "lawful assembly", "political", "religious", "religion",
    "worship", "prayer", "church", "mosque", "synagogue", "journalist", "journalists",
    "journalism", "union member", "union members", "labor union", "labour union",
    "immigration", "undocumented",
)  # fmt: skip
"""Words that point at protected activity (speech, assembly, religion, press, labour, status)."""


@dataclass(frozen=True)
class ReportConfig:
    timezone: str = "UTC"
    work_start_hour: int = 7  # working hours are [start, end) local time, Monday to Friday
    work_end_hour: int = 19
    baseline_days: int = 28
    min_baseline_days: int = 5
    volume_factor: float = 3.0
    volume_min: int = 10
    case_search_limit: int = 20
    subject_case_limit: int = 5
    refusal_training_min: int = 3
    protected_terms: tuple[str, ...] = PROTECTED_TERMS


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    text: str


@dataclass(frozen=True)
class Finding:
    rule_id: str
    subject: str  # what is flagged: a user, a user-day, a case, a gallery subject, a search
    users: tuple[str, ...]  # the people an auditor should talk to
    value: int  # the figure charted
    summary: str
    seqs: tuple[int, ...]  # the events behind it


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    findings: tuple[Finding, ...]
    checked: int  # how many items the rule examined
    note: str = ""


@dataclass(frozen=True)
class AuditReport:
    start: datetime
    end: datetime
    config: ReportConfig
    events_examined: int  # events inside the period
    results: tuple[RuleResult, ...]
    refusals: dict[str, dict[str, list[int]]]  # user -> refusal code -> seqs (training topics)
    events: dict[int, AuditRecord] = field(repr=False)  # every event a finding cites
    integrity: str = ""

    def flagged_users(self) -> dict[str, set[str]]:
        """Rule id -> users named by its findings."""
        return {r.rule.id: {u for f in r.findings for u in f.users} for r in self.results}
