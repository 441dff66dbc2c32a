"""``facelead retention run``: purge probe images and candidate lists past their time.

``plan_retention`` computes, for one instant, exactly what is due; the dry
run prints that plan and the real run applies that same plan, one audited
transaction per search (candidates and dispositions deleted, a
``retention_actions`` row written), then deletes the probe files no search
still needs. The action row is what makes the run idempotent: a search with
one is never planned again. The audit log is never purged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from facelead.domain.access import Action, Actor
from facelead.domain.retention import (
    PlannedDeletion,
    RetentionPlan,
    RetentionRule,
    RetentionRules,
    SearchFacts,
    due_rule,
)
from facelead.services.context import Services
from facelead.services.uow import perform
from facelead.store import retention as repo
from facelead.store.models import utcnow


def rules_of(services: Services) -> RetentionRules:
    s = services.settings
    return RetentionRules(s.retention_no_lead_days, s.retention_closed_case_years)


def _plan(
    session: Session, services: Services, rules: RetentionRules, now: dt.datetime
) -> RetentionPlan:
    due: list[tuple[SearchFacts, str, str, RetentionRule]] = []
    for sid, status, created, closed, before, number, sha in repo.unapplied_searches(session):
        facts = SearchFacts(sid, status, created, closed, before)
        rule = due_rule(facts, rules, now)
        if rule is not None:
            due.append((facts, number, sha, rule))
    counts = repo.candidate_counts(session, [f.search_id for f, *_ in due])
    needing = repo.searches_needing_probe(session, {sha for _, _, sha, _ in due})
    due_ids = {f.search_id for f, *_ in due}
    last_user: dict[str, int] = {}
    for facts, _, sha, _ in due:  # the highest due search id releasing a shared probe deletes it
        if needing[sha] <= due_ids:
            last_user[sha] = max(last_user.get(sha, 0), facts.search_id)
    deletions = tuple(
        PlannedDeletion(
            search_id=facts.search_id,
            case_number=number,
            rule=rule,
            candidates=counts[facts.search_id][0],
            dispositions=counts[facts.search_id][1],
            probe_sha256=sha,
            delete_probe_file=last_user.get(sha) == facts.search_id and services.probes.exists(sha),
        )
        for facts, number, sha, rule in due
    )
    orphans = tuple(
        sha for sha in sorted(repo.released_probe_shas(session)) if services.probes.exists(sha)
    )
    return RetentionPlan(now, rules, deletions, orphans)


def plan_retention(
    services: Services, actor: Actor, now: dt.datetime | None = None
) -> RetentionPlan:
    """The dry run: what a real run at ``now`` deletes; audited as a read (dry_run true)."""
    now = now or utcnow()
    with perform(services, actor, Action.RETENTION_RUN, object_type="retention") as scope:
        plan = _plan(scope.session, services, rules_of(services), now)
        scope.details.update(dry_run=True, **_totals(plan))
    return plan


def _totals(plan: RetentionPlan) -> dict[str, object]:
    return {
        "at": plan.now.isoformat(),
        "no_lead_days": plan.rules.no_lead_days,
        "closed_case_years": plan.rules.closed_case_years,
        "searches": len(plan.deletions),
        "candidates": sum(d.candidates for d in plan.deletions),
        "probe_files": sum(d.delete_probe_file for d in plan.deletions)
        + len(plan.orphan_probe_files),
    }


@dataclass(frozen=True)
class RetentionReport:
    plan: RetentionPlan
    applied: tuple[PlannedDeletion, ...]
    probe_files_deleted: int


def apply_retention(
    services: Services, actor: Actor, now: dt.datetime | None = None
) -> RetentionReport:
    """The real run: plan at ``now``, then one audited transaction per due search."""
    plan = plan_retention(services, actor, now)
    applied = []
    files = 0
    for item in plan.deletions:
        if _apply_one(services, actor, item):
            applied.append(item)
            if item.delete_probe_file and services.probes.delete(item.probe_sha256):
                files += 1
    if plan.orphan_probe_files:
        with perform(services, actor, Action.RETENTION_RUN, object_type="probe_store") as scope:
            gone = [sha for sha in plan.orphan_probe_files if services.probes.delete(sha)]
            scope.details.update(rule="released_probe_files", probe_sha256=gone)
        files += len(gone)
    return RetentionReport(plan, tuple(applied), files)


def _apply_one(services: Services, actor: Actor, item: PlannedDeletion) -> bool:
    with perform(
        services,
        actor,
        Action.RETENTION_RUN,
        object_type="search",
        object_id=str(item.search_id),
        case_number=item.case_number,
    ) as scope:
        if repo.has_action(scope.session, item.search_id):  # a concurrent run got there first
            scope.details["already_applied"] = True
            return False
        candidates, dispositions = repo.delete_candidate_list(scope.session, item.search_id)
        repo.add_action(
            scope.session,
            search_id=item.search_id,
            rule=item.rule.value,
            probe_sha256=item.probe_sha256,
            probe_file_deleted=item.delete_probe_file,
            candidates_deleted=candidates,
            dispositions_deleted=dispositions,
            applied_by=actor.username,
        )
        scope.details.update(
            retention_rule=item.rule.value,
            candidates_deleted=candidates,
            dispositions_deleted=dispositions,
            probe_sha256=item.probe_sha256,
            probe_file_deleted=item.delete_probe_file,
        )
    return True
