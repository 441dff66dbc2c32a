"""Role × action matrix of the lifecycle services, on SQLite and PostgreSQL.

Backup, restore, retention and re-templating have their own actions
(``system.backup``, ``system.restore``, ``retention.run``, ``gallery.reindex``)
instead of borrowing ``gallery.purge`` and ``gallery.enrol``. For each role, a
person holding only that role calls each service: where PERMISSIONS allows
it the call has its effect and is audited ``ok``; otherwise it is refused
with ``forbidden``, audited as refused, and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from facelead.domain.access import PERMISSIONS, SYSTEM, Action, Actor, Role
from facelead.errors import PermissionDenied
from facelead.services.backup import MANIFEST, backup
from facelead.services.context import ACTIVE_MODEL, Services
from facelead.services.lifecycle import expunge_booking
from facelead.services.reindex import reindex, switch_model
from facelead.services.restore import restore
from facelead.services.retention import apply_retention, plan_retention
from facelead.store import cases as case_repo
from facelead.store.audit_models import AuditEvent
from facelead.store.case_models import CandidateRecord, SearchRecord
from facelead.store.lifecycle_models import GallerySetting
from facelead.store.models import Booking
from tests.conftest import audit_actor, make_services
from tests.lifecycle_fixtures import booked_gallery, cite

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)  # every no-lead search is due


@dataclass(frozen=True)
class World:
    services: Services
    tmp: Path
    search_id: int
    backup: Path


@dataclass(frozen=True)
class Call:
    action: Action
    run: Callable[[World, Actor], object]
    effect: Callable[[World, Actor], bool]  # did it happen?
    postgres_only: bool = False


def _ok_events(world: World, action: Action, who: Actor) -> int:
    with world.services.db.session() as session:
        stmt = sa.select(sa.func.count()).where(
            AuditEvent.action == action.value,
            AuditEvent.actor == who.username,
            AuditEvent.outcome == "ok",
        )
        return int(session.scalar(stmt) or 0)


def _candidates(world: World) -> int:
    with world.services.db.session() as session:
        stmt = sa.select(sa.func.count()).where(CandidateRecord.search_id == world.search_id)
        return int(session.scalar(stmt) or 0)


def _booking_left(world: World) -> bool:
    with world.services.db.session() as session:
        return session.scalar(sa.select(Booking).where(Booking.booking_number == "PB-1")) is None


def _switched_by(world: World, who: Actor) -> bool:
    with world.services.db.session() as session:
        row = session.get(GallerySetting, ACTIVE_MODEL)
        return row is not None and row.updated_by_username == who.username


def _replaced(world: World, who: Actor) -> bool:
    """The restored log ends with the restore, by this person."""
    with world.services.db.session() as session:
        last = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        return last is not None and (last.action, last.actor, last.outcome) == (
            "system.restore",
            who.username,
            "ok",
        )


CALLS = {
    "backup": Call(
        Action.SYSTEM_BACKUP,
        lambda w, a: backup(w.services, a, w.tmp / f"backup-{a.username}"),
        lambda w, a: (w.tmp / f"backup-{a.username}" / MANIFEST).is_file(),
    ),
    "retention_dry_run": Call(
        Action.RETENTION_RUN,
        lambda w, a: plan_retention(w.services, a, LATER),
        lambda w, a: _ok_events(w, Action.RETENTION_RUN, a) == 1,
    ),
    "retention_run": Call(
        Action.RETENTION_RUN,
        lambda w, a: apply_retention(w.services, a, LATER),
        lambda w, a: _candidates(w) == 0,
    ),
    "reindex": Call(
        Action.GALLERY_REINDEX,
        lambda w, a: list(reindex(w.services, a, w.services.settings.model_id)),
        lambda w, a: _ok_events(w, Action.GALLERY_REINDEX, a) == 1,
    ),
    "switch_model": Call(
        Action.GALLERY_REINDEX,
        lambda w, a: switch_model(w.services, a, w.services.settings.model_id),
        _switched_by,
    ),
    "expunge_booking": Call(
        Action.GALLERY_SEAL,
        lambda w, a: expunge_booking(w.services, a, "PB-1", "LASC-EXP-1"),
        lambda w, a: _booking_left(w),
    ),
    "restore_replace": Call(  # last: it puts the deployment back as it was at the backup
        Action.SYSTEM_RESTORE,
        lambda w, a: restore(w.services.settings, w.backup, actor=a, replace=True),
        _replaced,
        postgres_only=True,
    ),
}


def test_lifecycle_actions_belong_to_the_documented_roles() -> None:
    """docs/lifecycle.md, "Who may run what": a change here is a policy change."""
    assert PERMISSIONS[Action.SYSTEM_BACKUP] == {Role.ADMIN}
    assert PERMISSIONS[Action.SYSTEM_RESTORE] == {Role.ADMIN}
    assert PERMISSIONS[Action.RETENTION_RUN] == {Role.RECORDS, Role.ADMIN}
    assert PERMISSIONS[Action.GALLERY_REINDEX] == {Role.RECORDS, Role.ADMIN}
    assert PERMISSIONS[Action.GALLERY_SEAL] == {Role.RECORDS}


def _world(tmp_path: Path, database_url: str) -> World:
    services = make_services(tmp_path / "home", database_url)
    photos = booked_gallery(services, {"P": {"PB-1": 1, "PB-2": 1}})
    search_id = cite(services, [photos["PB-2"][0].photo_id])
    with services.db.session() as session:
        search = session.get(SearchRecord, search_id)
        assert search is not None
        case_repo.set_search_status(session, search, "no_lead")
    backup(services, SYSTEM, tmp_path / "reference-backup")
    return World(services, tmp_path, search_id, tmp_path / "reference-backup")


@pytest.mark.parametrize("role", list(Role))
def test_role_action_matrix(tmp_path: Path, database_url: str, role: Role) -> None:
    world = _world(tmp_path, database_url)
    postgres = not world.services.db.is_sqlite
    actor = audit_actor(role, name=f"{role.value}-user")
    outcomes: dict[str, str] = {}
    expected: dict[str, str] = {}
    for name, call in CALLS.items():
        if call.postgres_only and not postgres:
            continue
        expected[name] = "ok" if role in PERMISSIONS[call.action] else "forbidden"
        try:
            call.run(world, actor)
        except PermissionDenied as refused:
            changed = " but changed" if call.effect(world, actor) else ""
            outcomes[name] = refused.code + changed
            with world.services.db.session() as session:
                last = session.scalars(
                    sa.select(AuditEvent).order_by(AuditEvent.seq.desc())
                ).first()
            assert last is not None
            assert (last.action, last.outcome) == (call.action.value, "refused:forbidden")
        else:
            outcomes[name] = "ok" if call.effect(world, actor) else "no effect"
    assert outcomes == expected
    world.services.db.dispose()
