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
    GALLERY_ENROL = "gallery.enrol"
    GALLERY_READ = "gallery.read"
    SEARCH_SUBMIT = "search.submit"


PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.GALLERY_ENROL: frozenset({Role.RECORDS, Role.ADMIN}),
    Action.GALLERY_READ: frozenset({Role.RECORDS, Role.ADMIN, Role.SUPERVISOR, Role.AUDITOR}),
    Action.SEARCH_SUBMIT: frozenset({Role.INVESTIGATOR, Role.EXAMINER}),
}

NEEDS_TRAINING: frozenset[Action] = frozenset({Action.SEARCH_SUBMIT})
"""Actions that require a current training certification."""


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
