"""One action = authorise + one transaction + its audit event in that transaction.

Every use case runs inside ``perform``. A refusal (any FaceLeadError) is
recorded as its own audit event in a separate transaction and re-raised, so a
refused action leaves nothing behind but the record of the refusal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from facelead.audit.log import append_event
from facelead.domain.access import NEEDS_TRAINING, Action, Actor, Role
from facelead.errors import FaceLeadError, PermissionDenied
from facelead.services.context import Services


@dataclass
class Scope:
    """What the use case tells the audit event about itself while it runs."""

    session: Session
    actor: Actor
    action: Action
    role: Role | None
    object_type: str | None = None
    object_id: str | None = None
    case_number: str | None = None
    purpose: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def authorise(actor: Actor, action: Action, today: dt.date | None = None) -> Role:
    role = actor.role_for(action)
    if role is None:
        raise PermissionDenied(
            f"{actor.username} may not {action.value}", code="forbidden", action=action.value
        )
    if action in NEEDS_TRAINING and not actor.certified_on(today or dt.date.today()):
        raise PermissionDenied(
            f"{actor.username}'s training certification has lapsed or is missing",
            code="training_expired",
            action=action.value,
        )
    return role


@contextmanager
def perform(
    services: Services,
    actor: Actor,
    action: Action,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    case_number: str | None = None,
    purpose: str | None = None,
) -> Iterator[Scope]:
    """Run one authorised, audited action in one transaction."""
    scope: Scope | None = None
    try:
        role = authorise(actor, action)
        with services.db.session() as session:
            scope = Scope(
                session, actor, action, role, object_type, object_id, case_number, purpose
            )
            yield scope
            _append(session, scope, outcome="ok")
    except FaceLeadError as exc:
        refused = Scope(
            session=None,  # type: ignore[arg-type]
            actor=actor,
            action=action,
            role=actor.role_for(action),
            object_type=scope.object_type if scope else object_type,
            object_id=scope.object_id if scope else object_id,
            case_number=scope.case_number if scope else case_number,
            purpose=scope.purpose if scope else purpose,
            details={**(scope.details if scope else {}), "error": exc.as_dict()},
        )
        with services.db.session() as session:
            _append(session, refused, outcome=f"refused:{exc.code}")
        raise


def record_refusal(
    services: Services, actor: Actor, action: Action, error: FaceLeadError, **fields: Any
) -> None:
    """Audit a refusal outside ``perform`` (e.g. a login by an unknown name: no role to claim)."""
    with services.db.session() as session:
        scope = Scope(session, actor, action, None, **fields)
        scope.details["error"] = error.as_dict()
        _append(session, scope, outcome=f"refused:{error.code}")


def _append(session: Session, scope: Scope, outcome: str) -> None:
    append_event(
        session,
        actor=scope.actor.username,
        actor_id=scope.actor.user_id,
        role=scope.role.value if scope.role else None,
        agency=scope.actor.agency,
        action=scope.action.value,
        outcome=outcome,
        object_type=scope.object_type,
        object_id=scope.object_id,
        case_number=scope.case_number,
        purpose=scope.purpose,
        client_address=scope.actor.client_address,
        interface=scope.actor.interface,
        details=scope.details,
    )
