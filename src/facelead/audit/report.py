"""Misuse and training signals over the audit log (pure: events in, findings out).

Every rule is data (:class:`Rule`) with its text written out, so the report a
supervisor reads states exactly what was tested. A finding is a lead for a
human auditor, never a verdict: it names the events behind it by ``seq``.

The rules read action names and detail keys that the services emit (see
docs/audit.md, "Report rules"); the vocabulary and the result types are in
``report_model``.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from facelead.audit.chain import AuditRecord
from facelead.audit.report_model import (
    CANDIDATES_VIEW,
    FREE_TEXT_DETAILS,
    LEAD_REPORT,
    PROTECTED_TERMS,
    REVIEW_ACTIONS,
    REVIEW_DISPOSE,
    REVIEW_RESOLVE,
    REVIEW_VERIFY,
    SEARCH_SUBMIT,
    TRAINING_EXPIRED,
    AuditReport,
    Finding,
    ReportConfig,
    Rule,
    RuleResult,
)

__all__ = [
    "CANDIDATES_VIEW",
    "FREE_TEXT_DETAILS",
    "LEAD_REPORT",
    "PROTECTED_TERMS",
    "REVIEW_ACTIONS",
    "REVIEW_DISPOSE",
    "REVIEW_RESOLVE",
    "REVIEW_VERIFY",
    "SEARCH_SUBMIT",
    "TRAINING_EXPIRED",
    "AuditReport",
    "Finding",
    "ReportConfig",
    "Rule",
    "RuleResult",
    "build_report",
    "refusal_table",
    "rules",
]


class _Context:
    """The events of one report, split once into the period and the baseline before it."""

    def __init__(
        self, events: Iterable[AuditRecord], start: datetime, end: datetime, config: ReportConfig
    ) -> None:
        self.config, self.tz = config, ZoneInfo(config.timezone)
        unique = {record.seq: record for record in events}
        self.all = [unique[seq] for seq in sorted(unique)]
        self.when = {r.seq: r.when for r in self.all}
        base_start = start - timedelta(days=config.baseline_days)
        self.period = [r for r in self.all if start <= self.when[r.seq] < end]
        self.baseline = [r for r in self.all if base_start <= self.when[r.seq] < start]

    def local(self, record: AuditRecord) -> datetime:
        return self.when[record.seq].astimezone(self.tz)

    def day(self, record: AuditRecord) -> date:
        return self.local(record).date()


def _user_days(ctx: _Context, records: Iterable[AuditRecord]) -> dict[tuple[str, date], list[int]]:
    counts: dict[tuple[str, date], list[int]] = defaultdict(list)
    for r in records:
        if r.action == SEARCH_SUBMIT:
            counts[(r.actor, ctx.day(r))].append(r.seq)
    return counts


def _volume(ctx: _Context, rule: Rule, by_agency: bool) -> RuleResult:
    cfg = ctx.config
    agency_of = {r.actor: r.agency or "" for r in ctx.all if r.action == SEARCH_SUBMIT}
    history: dict[str, list[int]] = defaultdict(list)
    for (user, _day), seqs in _user_days(ctx, ctx.baseline).items():
        history[agency_of[user] if by_agency else user].append(len(seqs))
    flagged: dict[str, list[tuple[date, list[int], float]]] = defaultdict(list)
    current = _user_days(ctx, ctx.period)
    for (user, day), seqs in sorted(current.items()):
        days = history.get(agency_of[user] if by_agency else user, [])
        if len(days) < cfg.min_baseline_days:
            continue
        base = float(statistics.median(days))
        if len(seqs) >= cfg.volume_min and len(seqs) > cfg.volume_factor * base:
            flagged[user].append((day, seqs, base))
    findings = []
    for user, days_flagged in sorted(flagged.items()):
        summary = "; ".join(f"{d}: {len(s)} searches (median {b:g})" for d, s, b in days_flagged)
        cited = tuple(seq for _, s, _ in days_flagged for seq in s)
        peak = max(len(s) for _, s, _ in days_flagged)
        findings.append(Finding(rule.id, user, (user,), peak, summary, cited))
    return RuleResult(rule, tuple(findings), len(current))


def _per_user(rule: Rule, hits: dict[str, list[AuditRecord]], describe: str) -> RuleResult:
    findings = tuple(
        Finding(
            rule.id, user, (user,), len(rs), f"{len(rs)} × {describe}", tuple(r.seq for r in rs)
        )
        for user, rs in sorted(hits.items())
    )
    return RuleResult(rule, findings, sum(len(rs) for rs in hits.values()))


def _off_hours(ctx: _Context, rule: Rule) -> RuleResult:
    cfg, hits = ctx.config, defaultdict(list)
    searches = [r for r in ctx.period if r.action == SEARCH_SUBMIT]
    for r in searches:
        local = ctx.local(r)
        if local.weekday() >= 5 or not cfg.work_start_hour <= local.hour < cfg.work_end_hour:
            hits[r.actor].append(r)
    result = _per_user(rule, hits, f"search outside working hours ({cfg.timezone})")
    return RuleResult(rule, result.findings, len(searches))


def _protected_terms(ctx: _Context, rule: Rule) -> RuleResult:
    terms = sorted(ctx.config.protected_terms, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(re.escape(t) for t in terms) + r")\b", re.IGNORECASE)
    hits: dict[str, list[AuditRecord]] = defaultdict(list)
    words: dict[str, set[str]] = defaultdict(set)
    for r in ctx.period:
        texts = [r.purpose or ""] + [str(r.details.get(k) or "") for k in FREE_TEXT_DETAILS]
        found = {m.lower() for text in texts for m in pattern.findall(text)}
        if found:
            hits[r.actor].append(r)
            words[r.actor] |= found
    findings = tuple(
        Finding(
            rule.id,
            user,
            (user,),
            len(rs),
            f"{len(rs)} × event with terms: {', '.join(sorted(words[user]))}",
            tuple(r.seq for r in rs),
        )
        for user, rs in sorted(hits.items())
    )
    return RuleResult(rule, findings, len(ctx.period))


def _case_volume(ctx: _Context, rule: Rule) -> RuleResult:
    cases: dict[str, list[AuditRecord]] = defaultdict(list)
    for r in ctx.period:
        if r.action == SEARCH_SUBMIT and r.case_number:
            cases[r.case_number].append(r)
    findings = tuple(
        Finding(
            rule.id,
            case,
            tuple(sorted({r.actor for r in rs})),
            len(rs),
            f"{len(rs)} searches on case {case}",
            tuple(r.seq for r in rs),
        )
        for case, rs in sorted(cases.items())
        if len(rs) >= ctx.config.case_search_limit
    )
    return RuleResult(rule, findings, len(cases))


def _subject_spread(ctx: _Context, rule: Rule) -> RuleResult:
    requester = {
        r.object_id: r.actor
        for r in ctx.all
        if r.action == SEARCH_SUBMIT and r.outcome == "ok" and r.object_id
    }
    cases: dict[str, set[str]] = defaultdict(set)
    views: dict[str, list[AuditRecord]] = defaultdict(list)
    for r in ctx.period:
        if r.action == CANDIDATES_VIEW and r.outcome == "ok" and r.case_number:
            for subject in r.details.get("subject_ids") or []:
                cases[str(subject)].add(r.case_number)
                views[str(subject)].append(r)
    findings = []
    for subject, case_set in sorted(cases.items()):
        if len(case_set) < ctx.config.subject_case_limit:
            continue
        rs = views[subject]
        users = {requester.get(r.object_id or "", r.actor) for r in rs}
        summary = f"subject {subject} in candidate lists of {len(case_set)} cases: "
        findings.append(
            Finding(
                rule.id,
                subject,
                tuple(sorted(users)),
                len(case_set),
                summary + ", ".join(sorted(case_set)),
                tuple(r.seq for r in rs),
            )
        )
    return RuleResult(rule, tuple(findings), len(cases))


def _unassigned_views(ctx: _Context, rule: Rule) -> RuleResult:
    hits: dict[str, list[AuditRecord]] = defaultdict(list)
    for r in ctx.period:
        refused = r.outcome.startswith("refused:") and r.outcome != TRAINING_EXPIRED
        if r.action == CANDIDATES_VIEW and refused:
            hits[r.actor].append(r)
    findings = tuple(
        Finding(
            rule.id,
            user,
            (user,),
            len(rs),
            f"{len(rs)} × refused candidate view: "
            + ", ".join(sorted({r.outcome.removeprefix("refused:") for r in rs})),
            tuple(r.seq for r in rs),
        )
        for user, rs in sorted(hits.items())
    )
    return RuleResult(rule, findings, sum(len(rs) for rs in hits.values()))


def _peer_reviewed(release: AuditRecord, reviews: list[AuditRecord]) -> list[int] | None:
    """The (disposition, verification) seqs that clear a release, or None."""
    earlier = [r for r in reviews if r.seq < release.seq and r.outcome == "ok"]
    disposed = [r for r in earlier if r.action == REVIEW_DISPOSE]
    verified = [r for r in earlier if _confirms(r)]
    for d in disposed:
        for v in verified:
            if v.actor != d.actor and v.seq > d.seq:
                return [d.seq, v.seq]
    return None


def _confirms(review: AuditRecord) -> bool:
    """A second person's confirmation: a verification, or a supervisor upholding the lead."""
    said = review.details.get("decision") or review.details.get("status")
    if review.action == REVIEW_VERIFY:
        return said in (None, "verified")
    return review.action == REVIEW_RESOLVE and said in ("uphold", "verified")


def _is_release(r: AuditRecord) -> bool:
    return r.action == LEAD_REPORT and r.outcome == "ok" and r.details.get("kind") != "no_lead"


def _unreviewed_releases(ctx: _Context, rule: Rule) -> RuleResult:
    reviews: dict[str, list[AuditRecord]] = defaultdict(list)
    for r in ctx.all:
        if r.action in REVIEW_ACTIONS and r.object_id:
            reviews[r.object_id].append(r)
    releases = [r for r in ctx.period if _is_release(r)]
    findings = []
    for r in releases:
        if _peer_reviewed(r, reviews.get(r.object_id or "", [])) is None:
            findings.append(
                Finding(
                    rule.id,
                    f"search {r.object_id}",
                    (r.actor,),
                    1,
                    f"lead for search {r.object_id} (case {r.case_number}) released by "
                    f"{r.actor} without a disposition and a verification by another examiner",
                    (r.seq, *(x.seq for x in reviews.get(r.object_id or "", []))),
                )
            )
    note = (
        f"Proven for this log: all {len(releases)} lead releases in the period were preceded by "
        "a disposition and a verification by a different examiner."
        if not findings
        else f"{len(findings)} of {len(releases)} lead releases lack peer review."
    )
    return RuleResult(rule, tuple(findings), len(releases), note)


def _probe_refusals(ctx: _Context, rule: Rule) -> RuleResult:
    findings = []
    table = refusal_table(ctx.period)
    for user, reasons in sorted(table.items()):
        for reason, seqs in sorted(reasons.items()):
            if len(seqs) >= ctx.config.refusal_training_min:
                subject = f"{user}: {reason}"
                findings.append(
                    Finding(
                        rule.id, subject, (user,), len(seqs), f"{len(seqs)} × {reason}", tuple(seqs)
                    )
                )
    return RuleResult(
        rule, tuple(findings), sum(len(s) for r in table.values() for s in r.values())
    )


def refusal_table(records: Iterable[AuditRecord]) -> dict[str, dict[str, list[int]]]:
    """Refused searches per user and reason (training topics); lapsed training has its own rule."""
    table: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        refused = r.outcome.startswith("refused:") and r.outcome != TRAINING_EXPIRED
        if r.action == SEARCH_SUBMIT and refused:
            table[r.actor][r.outcome.removeprefix("refused:")].append(r.seq)
    return {user: dict(reasons) for user, reasons in table.items()}


def _expired_training(ctx: _Context, rule: Rule) -> RuleResult:
    hits: dict[str, list[AuditRecord]] = defaultdict(list)
    for r in ctx.period:
        if r.outcome == TRAINING_EXPIRED:
            hits[r.actor].append(r)
    return _per_user(rule, hits, "attempt with lapsed training")


def rules(config: ReportConfig) -> list[tuple[Rule, Callable[[_Context, Rule], RuleResult]]]:
    """The rules, their texts filled in from ``config``; the order of the report."""
    c = config
    volume = (
        f"For each user and calendar day ({c.timezone}) in the period, count search.submit "
        f"events (any outcome). Flag the day when the count is at least {c.volume_min} and more "
        f"than {c.volume_factor:g} times the median daily count of "
    )
    basis = f"in the {c.baseline_days} days before the period (at least {c.min_baseline_days})."
    table = [
        ("volume.own_baseline", "Search volume against the user's own baseline",
         volume + f"that user's own active days {basis}", lambda x, r: _volume(x, r, False)),
        ("volume.agency_baseline", "Search volume against the agency's baseline",
         volume + f"all active user-days of the user's agency {basis}",
         lambda x, r: _volume(x, r, True)),
        ("hours.off_hours", "Searches outside working hours",
         f"Flag each search.submit event at or after {c.work_end_hour}:00 or before "
         f"{c.work_start_hour}:00 {c.timezone} time, or on a Saturday or Sunday.", _off_hours),
        ("purpose.protected_terms", "Purposes mentioning protected activity",
         "Flag each event whose purpose, details.purpose_text or details.justification contains "
         "one of these whole words (any case): " + ", ".join(c.protected_terms) + ".",
         _protected_terms),
        ("case.many_searches", "Many searches on one case",
         f"Flag each case number with at least {c.case_search_limit} search.submit events "
         "(any outcome) in the period.", _case_volume),
        ("subject.many_cases", "One subject viewed across many unrelated cases",
         f"Flag each gallery subject listed in details.subject_ids of successful candidates.view "
         f"events for at least {c.subject_case_limit} distinct case numbers; the users named are "
         "the requesters of those searches.", _subject_spread),
        ("candidates.unassigned_view", "Candidate views by someone not assigned",
         "Flag each candidates.view event that was refused (not_assigned, "
         "requester_cannot_view, forbidden...), other than for lapsed training.",
         _unassigned_views),
        ("lead.unreviewed_release", "Leads released without peer review",
         "Flag each successful lead.report event (other than details.kind 'no_lead') unless, "
         "earlier in the log, the same search (object_id) has a successful review.dispose and "
         "a later confirmation by a different user: a successful review.verify whose "
         "details.decision (or details.status), if present, is 'verified', or a successful "
         "review.resolve whose details.decision is 'uphold'.", _unreviewed_releases),
        ("training.probe_refusals", "Probe refusals per user, by reason",
         f"Flag each user and refusal code with at least {c.refusal_training_min} refused "
         "search.submit events in the period (a training topic); every refusal is tabled.",
         _probe_refusals),
        ("training.expired_attempts", "Attempts with lapsed training",
         "Flag each event refused with code training_expired.", _expired_training),
    ]  # fmt: skip
    return [(Rule(rid, title, text), check) for rid, title, text, check in table]


def build_report(
    events: Iterable[AuditRecord],
    start: datetime,
    end: datetime,
    config: ReportConfig | None = None,
    integrity: str = "",
) -> AuditReport:
    """Run every rule over ``events`` (period plus its baseline window, any order)."""
    cfg = config or ReportConfig()
    ctx = _Context(events, start, end, cfg)
    results = tuple(check(ctx, rule) for rule, check in rules(cfg))
    by_seq = {r.seq: r for r in ctx.all}
    cited = {seq for result in results for f in result.findings for seq in f.seqs}
    table = refusal_table(ctx.period)
    cited |= {seq for reasons in table.values() for seqs in reasons.values() for seq in seqs}
    return AuditReport(
        start=start,
        end=end,
        config=cfg,
        events_examined=len(ctx.period),
        results=results,
        refusals=table,
        events={seq: by_seq[seq] for seq in sorted(cited) if seq in by_seq},
        integrity=integrity,
    )
