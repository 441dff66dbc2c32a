"""Who may do what: roles, actions and the permission matrix.

The matrix is data, enforced in one place (services.uow.authorise), so the
CLI, API and web UI cannot drift apart. Training certification is checked
separately: an expired certificate blocks searching and reviewing whatever
the role.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    INVESTIGATOR = "investigator"  # requests searches, records corroboration
    EXAMINER = "examiner"  # reviews candidate lists, verifies peers' conclusions
    SUPERVISOR = "supervisor"  # overrides the quality gate, resolves disagreements
    AUDITOR = "auditor"  # reads the audit log and misuse reports
    ADMIN = "admin"  # manages users and training records
    RECORDS = "records"  # records bureau: enrols, seals and purges booking photos


class Action(StrEnum):
    AUTH_LOGIN = "auth.login"
    GALLERY_ENROL = "gallery.enrol"
    GALLERY_READ = "gallery.read"
    GALLERY_SEAL = "gallery.seal"
    GALLERY_PURGE = "gallery.purge"
    GALLERY_REINDEX = "gallery.reindex"
    CASE_OPEN = "case.open"
    CASE_CLOSE = "case.close"
    CASE_READ = "case.read"
    CASE_OUTCOME = "case.outcome"
    CASE_DISCLOSE = "case.disclose"
    SEARCH_SUBMIT = "search.submit"
    SEARCH_STATUS = "search.status"
    IMAGE_VIEW = "image.view"
    SEARCH_QUALITY_OVERRIDE = "search.quality_override"
    CANDIDATES_VIEW = "candidates.view"
    REVIEW_QUEUE = "review.queue"
    REVIEW_ASSIGN = "review.assign"
    REVIEW_DISPOSE = "review.dispose"
    REVIEW_VERIFY = "review.verify"
    REVIEW_RESOLVE = "review.resolve"
    LEAD_REPORT = "lead.report"
    CORROBORATION_ADD = "corroboration.add"
    USER_MANAGE = "user.manage"
    USER_READ = "user.read"
    TRAINING_CERTIFY = "training.certify"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    AUDIT_CHECKPOINT = "audit.checkpoint"
    AUDIT_EXPORT = "audit.export"
    EVAL_RUN = "eval.run"
    REPORT_TRANSPARENCY = "report.transparency"
    RETENTION_RUN = "retention.run"
    SYSTEM_BACKUP = "system.backup"
    SYSTEM_RESTORE = "system.restore"
    SYSTEM_KEY_ROTATE = "system.key_rotate"


_R = Role
_ANY = frozenset(Role)
PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.AUTH_LOGIN: _ANY,
    Action.GALLERY_ENROL: frozenset({_R.RECORDS, _R.ADMIN}),
    Action.GALLERY_READ: frozenset({_R.RECORDS, _R.ADMIN, _R.SUPERVISOR, _R.AUDITOR}),
    Action.GALLERY_SEAL: frozenset({_R.RECORDS}),
    Action.GALLERY_PURGE: frozenset({_R.RECORDS, _R.ADMIN}),
    Action.GALLERY_REINDEX: frozenset({_R.RECORDS, _R.ADMIN}),  # docs/lifecycle.md: who
    Action.CASE_OPEN: frozenset({_R.INVESTIGATOR, _R.SUPERVISOR}),
    Action.CASE_CLOSE: frozenset({_R.INVESTIGATOR, _R.SUPERVISOR}),
    Action.CASE_READ: frozenset({_R.INVESTIGATOR, _R.EXAMINER, _R.SUPERVISOR, _R.AUDITOR}),
    Action.CASE_OUTCOME: frozenset({_R.INVESTIGATOR, _R.SUPERVISOR}),
    Action.CASE_DISCLOSE: frozenset({_R.SUPERVISOR}),
    Action.SEARCH_SUBMIT: frozenset({_R.INVESTIGATOR}),
    Action.SEARCH_STATUS: frozenset({_R.INVESTIGATOR, _R.EXAMINER, _R.SUPERVISOR, _R.AUDITOR}),
    # A probe image: its requester, its reviewers, the agency's supervisors (services/images.py)
    Action.IMAGE_VIEW: frozenset({_R.INVESTIGATOR, _R.EXAMINER, _R.SUPERVISOR}),
    Action.SEARCH_QUALITY_OVERRIDE: frozenset({_R.SUPERVISOR}),
    Action.CANDIDATES_VIEW: frozenset({_R.EXAMINER}),
    Action.REVIEW_QUEUE: frozenset({_R.EXAMINER, _R.SUPERVISOR}),
    Action.REVIEW_ASSIGN: frozenset({_R.EXAMINER, _R.SUPERVISOR}),
    Action.REVIEW_DISPOSE: frozenset({_R.EXAMINER}),
    Action.REVIEW_VERIFY: frozenset({_R.EXAMINER}),
    Action.REVIEW_RESOLVE: frozenset({_R.SUPERVISOR}),
    Action.LEAD_REPORT: frozenset({_R.INVESTIGATOR, _R.EXAMINER, _R.SUPERVISOR}),
    Action.CORROBORATION_ADD: frozenset({_R.INVESTIGATOR}),
    Action.USER_MANAGE: frozenset({_R.ADMIN}),
    Action.USER_READ: frozenset({_R.ADMIN, _R.AUDITOR, _R.SUPERVISOR}),
    Action.TRAINING_CERTIFY: frozenset({_R.ADMIN}),
    Action.AUDIT_READ: frozenset({_R.AUDITOR, _R.SUPERVISOR}),
    Action.AUDIT_VERIFY: frozenset({_R.AUDITOR, _R.SUPERVISOR}),
    Action.AUDIT_CHECKPOINT: frozenset({_R.AUDITOR, _R.ADMIN}),
    Action.AUDIT_EXPORT: frozenset({_R.AUDITOR}),
    Action.EVAL_RUN: frozenset({_R.ADMIN, _R.SUPERVISOR, _R.AUDITOR}),
    Action.REPORT_TRANSPARENCY: frozenset({_R.AUDITOR, _R.SUPERVISOR}),
    Action.RETENTION_RUN: frozenset({_R.RECORDS, _R.ADMIN}),
    Action.SYSTEM_BACKUP: frozenset({_R.ADMIN}),
    Action.SYSTEM_RESTORE: frozenset({_R.ADMIN}),
    Action.SYSTEM_KEY_ROTATE: frozenset({_R.ADMIN}),  # image key rotation and retirement
}

NEEDS_TRAINING: frozenset[Action] = frozenset(
    {
        Action.SEARCH_SUBMIT,
        Action.SEARCH_QUALITY_OVERRIDE,
        Action.CANDIDATES_VIEW,
        Action.REVIEW_ASSIGN,
        Action.REVIEW_DISPOSE,
        Action.REVIEW_VERIFY,
        Action.REVIEW_RESOLVE,
    }
)
"""Actions that require a current training certification (searching and reviewing)."""


@dataclass(frozen=True)
class Actor:
    """An authenticated person acting through some interface."""

    user_id: int | None
    username: str
    roles: frozenset[Role]
    agency: str
    certified_until: dt.date | None = None
    client_address: str | None = None
    interface: str = "cli"
    extra: dict[str, str] = field(default_factory=dict)

    def role_for(self, action: Action) -> Role | None:
        """The role under which this actor may take the action (recorded in the audit)."""
        allowed = PERMISSIONS.get(action, frozenset())
        for role in Role:  # stable order: the first matching role is recorded
            if role in self.roles and role in allowed:
                return role
        return None

    def certified_on(self, day: dt.date) -> bool:
        return self.certified_until is not None and day <= self.certified_until


SYSTEM = Actor(
    user_id=None,
    username="system",
    roles=frozenset({Role.RECORDS, Role.ADMIN}),
    agency="SYSTEM",
    interface="system",
)
"""The installer itself (``facelead init``, the demo set-up); never a searcher."""
